//! One fuzz run against one storage: seed, fuzz with several drivers at once, then verify
//! that nothing the fuzzer did not ask to change has changed and that the server is whole.

pub mod calls;
pub mod jobs;
pub mod model;
pub mod properties;
pub mod rng;
pub mod shapes;
pub mod shared;
pub mod target;
pub mod values;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use calls::{Body, Gen, Pool, REFUSED_IDS};
use model::short;
use rng::Rng;
use shared::Shared;
use target::{Backend, Target};

/// The seed when `SNEAKPEEK_FUZZ_SEED` is not set: a fixed one, so that the test command
/// is deterministic. `SNEAKPEEK_FUZZ_SEED=random` picks a new one (printed).
const DEFAULT_SEED: u64 = 0x5EED_F022;
/// Generated JSON-RPC requests per storage when `SNEAKPEEK_FUZZ_REQUESTS` is not set; the
/// HTTP-shape driver sends a fifth as many on top, the property tests and the hostile jobs
/// a few hundred more.
const DEFAULT_REQUESTS: u64 = 10_000;
/// Drivers sending generated JSON-RPC requests at once: a few connections, as clients do.
const DRIVERS: u64 = 4;

/// The server's flags. Jobs of scrapers without a timeout stop after 2 s (instead of an
/// hour) and at most 8 run at once, so that the scripts the fuzzer's scrapers run cannot
/// take the 2 cores from the API for long; finished jobs are kept, so that the fuzzer can
/// read how each of its jobs ended (by default the ephemeral runs share 100). None of this
/// changes what the API must answer.
const FLAGS: &[&str] = &[
    "--job-timeout-seconds",
    "2",
    "--worker-concurrency",
    "8",
    "--keep-jobs",
    "1000000",
    "--shutdown-grace-seconds",
    "2",
];

fn seed() -> u64 {
    match std::env::var("SNEAKPEEK_FUZZ_SEED") {
        Err(_) => DEFAULT_SEED,
        Ok(text) if text == "random" => rng::mix(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64,
        ),
        Ok(text) => match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        }
        .expect("SNEAKPEEK_FUZZ_SEED: a number (decimal or 0x…) or `random`"),
    }
}

fn requests() -> u64 {
    std::env::var("SNEAKPEEK_FUZZ_REQUESTS").map_or(DEFAULT_REQUESTS, |text| {
        text.parse().expect("SNEAKPEEK_FUZZ_REQUESTS: a number")
    })
}

/// Runs the fuzz test against `backend` on a runtime of its own, whose threads are named
/// after the run so that the panics and logs on them are the run's.
pub fn run_test(backend: Backend) {
    watch::install();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(format!("fuzz-{}", backend.name()))
        .enable_all()
        .build()
        .expect("a runtime");
    let report = runtime.block_on(run(backend));
    // Blocking threads may still run a script of a job the shutdown abandoned.
    runtime.shutdown_timeout(Duration::from_secs(5));
    if let Err(report) = report {
        panic!("{report}");
    }
}

/// Scrapers seeded before fuzzing: plain, with unicode, NUL and control characters, with
/// a crontab kept while inactive, extract with plugins and the longest timeout, and large.
fn seeds() -> Vec<Value> {
    let mut deep = json!("bottom");
    for _ in 0..60 {
        deep = json!({ "level": deep });
    }
    vec![
        json!({"name": "Seed plain", "schedule": "inactive", "handler": "script", "config": {"params": {"source": "\"seed\""}, "plugins": null}}),
        json!({"name": "Seed \u{fc}n\u{ef}c\u{f8}d\u{e9} \u{1f980} \u{202e}rtl", "schedule": "inactive", "schedule_crontab": "0 6 * * 1-5", "handler": "script",
               "config": {"params": {"source": "1", "args": {"k": [1, 2.5, null, true, "\u{0}"]}}}, "state": "state with NUL \u{0} and \u{1b}[31m control", "schedule_priority": 1}),
        json!({"name": "Seed extract", "schedule": "inactive", "handler": "extract",
               "config": {"params": {"url": "https://example.com/", "fields": {"title": {"css": "h1"}}}, "plugins": {"robots_txt": {"enabled": false}}},
               "schedule_priority": 0, "timeout_seconds": 604_800}),
        json!({"name": "Seed big", "schedule": "inactive", "handler": "script", "config": {"params": {"source": "1", "deep": deep}}, "state": "s".repeat(64 * 1024)}),
    ]
}

async fn run(backend: Backend) -> Result<(), String> {
    let started = Instant::now();
    let (seed, requests) = (seed(), requests());
    println!("fuzz [{}]: seed {seed:#x} (SNEAKPEEK_FUZZ_SEED), {requests} requests (SNEAKPEEK_FUZZ_REQUESTS)", backend.name());
    let target = Target::start(backend, FLAGS).await;
    let mut shared = Shared::new(
        backend,
        seed,
        target.address.clone(),
        target.port,
        target.max_body_bytes,
    );

    // Seeds, and how they read back before fuzzing: byte for byte, and as JSON.
    let mut before: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
    for scraper in seeds() {
        let created = shared
            .result("create_scraper", json!({ "scraper": scraper }))
            .await
            .expect("a seed is created");
        let id = created["id"].as_i64().expect("an id");
        let (bytes, value) = read_scraper(&shared, id).await;
        shared.seeded.insert(id, value);
        shared.seeded_ids.push(id);
        before.insert(id, bytes);
    }
    // The hostile scripts name seeded scrapers 1 and 2 in the calls they try to make.
    assert_eq!(
        shared.seeded_ids,
        [1, 2, 3, 4],
        "a fresh server numbers scrapers from 1"
    );
    let shared = Arc::new(shared);

    let mut drivers = Vec::new();
    for stream in 1..=DRIVERS {
        let shared = shared.clone();
        let count = requests / DRIVERS + u64::from(stream <= requests % DRIVERS);
        drivers.push(tokio::spawn(async move {
            rpc_driver(&shared, stream, count).await
        }));
    }
    let shapes = {
        let shared = shared.clone();
        tokio::spawn(async move { shapes::run(&shared, 10, requests / 5).await })
    };
    let properties = {
        let shared = shared.clone();
        tokio::spawn(async move { properties::run(&shared, 11).await })
    };
    let hostile = {
        let shared = shared.clone();
        tokio::spawn(async move { jobs::run(&shared, 12).await })
    };
    // When each driver finished, for the report.
    let mut timings = Vec::new();
    for driver in drivers {
        if let Err(error) = driver.await {
            shared.fail(format!("a fuzz driver panicked: {error}"), b"", "");
        }
    }
    timings.push(("JSON-RPC drivers", started.elapsed()));
    if let Err(error) = shapes.await {
        shared.fail(format!("the HTTP shapes driver panicked: {error}"), b"", "");
    }
    timings.push(("HTTP shapes", started.elapsed()));
    let property_calls = properties.await.unwrap_or_else(|error| {
        shared.fail(format!("the property driver panicked: {error}"), b"", "");
        0
    });
    timings.push(("property checks", started.elapsed()));
    let outcomes = hostile.await.unwrap_or_else(|error| {
        shared.fail(
            format!("the hostile jobs driver panicked: {error}"),
            b"",
            "",
        );
        Vec::new()
    });
    timings.push(("hostile jobs", started.elapsed()));

    verify(&shared, &target, &before).await;
    timings.push(("verification", started.elapsed()));
    let prefix = format!("fuzz-{}", backend.name());
    for panic in watch::panics(&prefix) {
        let first = panic.lines().take(2).collect::<Vec<_>>().join(" ");
        shared.fail(format!("a panic: {}", short(&first, 200)), b"", &panic);
    }
    if !target.is_serving() {
        shared.fail("the server's task has ended", b"", "");
    }
    if let Err(error) = target.stop(Duration::from_secs(30)).await {
        shared.fail(format!("shutdown: {error}"), b"", "");
    }

    let report = report(&shared, property_calls, &outcomes, &timings, &prefix);
    println!("{report}");
    if shared.failure_count() == 0 {
        Ok(())
    } else {
        Err(format!(
            "fuzz [{}] (seed {seed:#x}) found {} failure classes; see the report above",
            backend.name(),
            shared.failure_count()
        ))
    }
}

/// `get_scraper` of `id`: the reply's bytes, and its result.
async fn read_scraper(shared: &Shared, id: i64) -> (Vec<u8>, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "get_scraper", "params": {"id": id}})
        .to_string();
    let response = shared
        .client
        .post(shared.url("/api/v1/jsonrpc"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let bytes = response.bytes().await.expect("a body").to_vec();
    let reply: Value = serde_json::from_slice(&bytes).expect("JSON");
    (bytes, reply["result"].clone())
}

/// Sends `count` generated JSON-RPC requests: method calls with hostile params (now and
/// then with a 1-5 MB string), broken envelopes, batches and malformed JSON.
async fn rpc_driver(shared: &Shared, stream: u64, count: u64) {
    let mut rng = Rng::new(shared.seed, stream);
    let mut pool = Pool::new(stream);
    for n in 0..count {
        let begun = Instant::now();
        let mut g = Gen {
            rng: &mut rng,
            pool: &mut pool,
            seeded: &shared.seeded_ids,
            port: shared.port,
            counter: n * 1_000,
        };
        let (kind, body) = match (n, g.rng.below(1000)) {
            // Each driver sends one batch of 10,000 calls and one of 1,000: far over the
            // limit, they must be refused whole (and none of their creates run).
            (0, _) => ("batch", Body::Json(calls::oversized_batch(&mut g, 10_000))),
            (1, _) => ("batch", Body::Json(calls::oversized_batch(&mut g, 1_000))),
            // 10,000 levels of nesting, whole and in the params.
            (4, _) => (
                "malformed JSON",
                Body::Raw(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
            ),
            (5, _) => {
                let deep = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
                let body =
                    format!(r#"{{"jsonrpc":"2.0","id":5,"method":"get_scraper","params":{deep}}}"#);
                ("malformed JSON", Body::Raw(body.into_bytes()))
            }
            // And two calls with a 1-5 MB string (most often over the body limit); a few
            // more come at random.
            (2 | 3, _) | (_, 898 | 899) => {
                let method = calls::method(&mut g);
                let mut call = calls::call(&mut g, method);
                calls::plant_huge(&mut g, &mut call);
                ("1-5 MB string", Body::Json(call))
            }
            (_, 0..=139) => ("malformed JSON", Body::Raw(calls::malformed(&mut g))),
            (_, 140..=279) => (
                "broken envelope",
                Body::Json(calls::broken_envelope(&mut g)),
            ),
            (_, 280..=897) => {
                let method = calls::method(&mut g);
                (method, Body::Json(calls::call(&mut g, method)))
            }
            _ => ("batch", Body::Json(calls::batch(&mut g))),
        };
        let body = match body {
            Body::Raw(bytes) => bytes,
            Body::Json(mut value) => {
                calls::secure(&mut value, &mut g);
                value.to_string().into_bytes()
            }
        };
        shared.exchange(&mut pool, body).await;
        shared.time(kind, begun.elapsed());
    }
}

/// The checks after fuzzing: every ephemeral run ended; the seeded scrapers are byte for
/// byte as before and have no jobs; the storage holds no scraper or job the fuzzer did not
/// create; the server is healthy and ready.
async fn verify(shared: &Shared, target: &Target, before: &BTreeMap<i64, Vec<u8>>) {
    // Ephemeral runs have an hour's timeout; the fuzzer's are short, or fail at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let runs = shared.ephemeral.lock().unwrap().clone();
    for (scraper_id, job_id) in runs {
        loop {
            let Some(job) = shared
                .result(
                    "get_scraper_job",
                    json!({"scraper_id": scraper_id, "job_id": job_id}),
                )
                .await
            else {
                break;
            };
            let status = job["status"].as_str().unwrap_or_default();
            if status != "pending" && status != "started" {
                break;
            }
            if Instant::now() > deadline {
                shared.fail(
                    format!("an ephemeral run still {status} a minute after the fuzzing"),
                    short(&job["scraper"]["config"].to_string(), 400).as_bytes(),
                    &short(&job.to_string(), 400),
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    for (id, bytes) in before {
        let (now, _) = read_scraper(shared, *id).await;
        if now != *bytes {
            shared.fail(
                "a seeded scraper changed",
                String::from_utf8_lossy(bytes).as_bytes(),
                &String::from_utf8_lossy(&now),
            );
        }
        let jobs = shared
            .result("get_scraper_jobs", json!({ "scraper_id": id }))
            .await;
        if jobs.is_some_and(|jobs| jobs != json!([])) {
            shared.fail("a seeded scraper has jobs", id.to_string().as_bytes(), "");
        }
    }

    // The storage itself, behind the API.
    let created = shared.created.lock().unwrap().clone();
    let ephemeral: Vec<i64> = shared
        .ephemeral
        .lock()
        .unwrap()
        .iter()
        .map(|(scraper, _)| *scraper)
        .collect();
    match target.engine.get_scrapers().await {
        Err(error) => shared.fail(
            "the storage cannot list the scrapers",
            b"",
            &error.describe(),
        ),
        Ok(scrapers) => {
            for scraper in scrapers {
                let id = scraper.id;
                if let Some(seeded) = shared.seeded.get(&id) {
                    let stored = serde_json::to_value(&scraper).expect("a scraper is JSON");
                    if stored != *seeded {
                        shared.fail(
                            "a seeded scraper changed in the storage",
                            seeded.to_string().as_bytes(),
                            &stored.to_string(),
                        );
                    }
                } else if REFUSED_IDS.contains(&id) {
                    shared.fail("a call the server had to refuse (cross-site, or in a batch over the limit) created a scraper", id.to_string().as_bytes(), &short(&serde_json::to_string(&scraper).unwrap_or_default(), 300));
                } else if !created.contains(&id) {
                    shared.fail(
                        "a scraper the fuzzer never created exists",
                        id.to_string().as_bytes(),
                        &short(&serde_json::to_string(&scraper).unwrap_or_default(), 300),
                    );
                }
            }
        }
    }
    match target.engine.get_last_jobs().await {
        Err(error) => shared.fail("the storage cannot list the jobs", b"", &error.describe()),
        Ok(jobs) => {
            for (scraper_id, job) in jobs {
                let known = if scraper_id < 0 {
                    ephemeral.contains(&scraper_id)
                } else {
                    created.contains(&scraper_id)
                };
                if shared.seeded.contains_key(&scraper_id) {
                    shared.fail(
                        "a seeded scraper has a job in the storage",
                        scraper_id.to_string().as_bytes(),
                        &short(&serde_json::to_string(&job).unwrap_or_default(), 300),
                    );
                } else if !known {
                    shared.fail(
                        "a job of a scraper the fuzzer never created exists",
                        scraper_id.to_string().as_bytes(),
                        &short(&serde_json::to_string(&job).unwrap_or_default(), 300),
                    );
                }
            }
        }
    }

    for path in ["/healthz", "/readyz"] {
        match shared.client.get(shared.url(path)).send().await {
            Ok(response) if response.status() == 200 => {}
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                shared.fail(format!("{path} answers {status} after fuzzing"), b"", &text);
            }
            Err(error) => shared.fail(
                format!("{path} does not answer after fuzzing"),
                b"",
                &error.to_string(),
            ),
        }
    }
}

/// What the run did and found, for people.
fn report(
    shared: &Shared,
    property_calls: usize,
    outcomes: &[jobs::Outcome],
    timings: &[(&str, Duration)],
    prefix: &str,
) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "fuzz [{}] seed {:#x}: {} HTTP requests holding {} JSON-RPC calls ({property_calls} of them property checks), {} hostile jobs",
        shared.backend.name(),
        shared.seed,
        shared.requests.load(Ordering::Relaxed),
        shared.calls.load(Ordering::Relaxed),
        outcomes.len(),
    );
    let timings: Vec<String> = timings
        .iter()
        .map(|(what, at)| format!("{what} {:.1} s", at.as_secs_f64()))
        .collect();
    let _ = writeln!(text, "done after: {}", timings.join(", "));
    let kinds: Vec<String> = shared
        .kinds
        .lock()
        .unwrap()
        .iter()
        .map(|(kind, (count, took))| format!("{count} {kind} ({:.1} s)", took.as_secs_f64()))
        .collect();
    let _ = writeln!(
        text,
        "requests by kind (time spent on them): {}",
        kinds.join(", ")
    );
    let _ = writeln!(text, "replies per method (how far the calls got):");
    for (method, outcomes) in shared.outcomes.lock().unwrap().iter() {
        let outcomes: Vec<String> = outcomes
            .iter()
            .map(|(outcome, count)| format!("{count} × {outcome}"))
            .collect();
        let _ = writeln!(text, "  {method}: {}", outcomes.join(", "));
    }
    let _ = writeln!(text, "hostile jobs (label: status after seconds: result):");
    for outcome in outcomes {
        let _ = writeln!(
            text,
            "  {}: {} after {:.1} s: {}",
            outcome.label, outcome.status, outcome.seconds, outcome.result
        );
    }
    // Server log lines, grouped with their numbers taken out.
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    for line in watch::logs(prefix) {
        let line = line
            .split_once("] ")
            .map_or(line.as_str(), |(_, rest)| rest);
        let normal: String = line
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        *lines.entry(short(&normal, 240)).or_default() += 1;
    }
    let _ = writeln!(
        text,
        "server warnings and errors logged ({} kinds):",
        lines.len()
    );
    let mut lines: Vec<_> = lines.into_iter().collect();
    lines.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    for (line, count) in lines.iter().take(25) {
        let _ = writeln!(text, "  {count:>6} × {line}");
    }
    let failures = shared.failures.lock().unwrap();
    let _ = writeln!(text, "failure classes: {}", failures.len());
    for (class, example) in failures.iter() {
        let _ = writeln!(
            text,
            "- [{} ×] {class}\n    request:  {}\n    response: {}",
            example.count,
            example.request.replace('\n', "\n              "),
            example.response.replace('\n', "\n              ")
        );
    }
    text
}

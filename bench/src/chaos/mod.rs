//! `sneakpeek-bench chaos`: proves, or disproves, that a group of replicas loses nothing
//! under faults.
//!
//! # The setup
//!
//! - A private PostgreSQL cluster ([`cluster`]), so that the run may restart it and cut its
//!   connections.
//! - A target website in this process ([`target`]) that counts the fetches of each page and
//!   tells which replica process made them.
//! - `--replicas` (3) processes of the server binary ([`replicas`]) sharing the database, with
//!   short timeouts (heartbeat 1 s, dead timeout 6 s, lease 3 s, shutdown grace 5 s, API
//!   request timeout 5 s), printed at the start of the run and kept in its JSON.
//! - A steady stream of one-shot jobs enqueued over the JsonRPC API ([`load`]), ten a second,
//!   whose page the target answers after a second so that jobs are always in flight, and
//!   [`SCHEDULED_SCRAPERS`] scrapers on `every_second` whose page is answered at once, all
//!   scraping the target with `extract`.
//! - `--faults` faults from a seeded sequence ([`faults`]), each once the replicas are back to
//!   normal (all ready, one leader) and after a seeded pause of 1.5 to 3 s: SIGKILL of a
//!   random replica (started again a second later), SIGKILL of the leader, SIGTERM of a random
//!   replica while a live UI stream is open to it, SIGSTOP of the leader for the lease plus
//!   5 s (then SIGCONT), `pg_terminate_backend` of every connection of the replicas'
//!   database, and `pg_ctl restart -m fast` of PostgreSQL.
//!
//! After the last fault the stream stops, every acknowledged job gets up to [`DRAIN_BOUND`]
//! to be final, and [`audit`] counts.
//!
//! # What is counted
//!
//! A one-shot job's enqueue is **acknowledged** when `create_scraper` and `enqueue_scraper`
//! both answered a result within the request timeout. Its page is `/hit/{token}` with a
//! token of its own, so the target's count for the token is how many times its handler ran.
//!
//! Goal 0, each; the run exits non-zero when one is missed:
//!
//! - **acknowledged jobs lost**: not in the database at the end, or still `pending` or
//!   `started` after the drain.
//! - **jobs run more than once per attempt**: tokens whose page the target served more
//!   times than their job had attempts (acknowledged or not). A lost worker's job is retried
//!   (the replicas run with a 1 s retry delay, 3 attempts), which runs its handler again by
//!   design; two attempts never run at once.
//! - **results lost**: acknowledged jobs whose page was served, that did not end `succeeded`
//!   with the token in their result; except those whose fetching process was killed
//!   (SIGKILL) or frozen (SIGSTOP) between the job's start and the moment it was declared
//!   finished (or the end of the run): a crashed process cannot report, and those are counted
//!   apart as *lost with their replica*. A fetch the target cannot attribute excuses nothing.
//! - **logs cut short**: acknowledged jobs that succeeded with their result but whose last
//!   attempt's log is not an unbroken run of lines from its first ending with `Job succeeded`.
//! - **duplicate scheduled fires**: jobs beyond the first with the same scraper and
//!   `scheduled_for`, over the whole database.
//!
//! Timings, reported against their goals:
//!
//! - **leader failover after SIGKILL** (goal 3 s) and **after SIGSTOP** (goal lease + 3 s): from
//!   the signal until another replica's `GET /metrics` reports
//!   `sneakpeek_replicas{type="active_scheduler"} 1` (each replica's own view of its
//!   scheduler, polled every 100 ms). No failover within the bound (30 s after a kill, the
//!   freeze's length after a freeze) is reported as the bound.
//! - **ready after a PostgreSQL restart** (goal 10 s): from `pg_ctl restart` returning (the
//!   database accepts connections again) until every replica answers `GET /readyz` with 200.
//!   The same after `pg_terminate_backend` is reported without a goal.
//! - **exit after SIGTERM with a live stream** (goal: the shutdown grace): from the signal to
//!   the process's exit; one still running 10 s after it is killed, and reported as 10 s.
//! - **longest gap between every_second fires**, by their `scheduled_for`, from the first
//!   fault to the end of the last, counting both ends (no goal: a fire is skipped while the
//!   scraper's previous job is still active, so a job lost with its replica holds the next
//!   fires back until it is declared dead).
//!
//! Context: the faults injected of each kind, the enqueues acknowledged, refused and failed,
//! the acknowledged jobs by final status, and the jobs lost with their replica.

pub mod audit;
mod cluster;
pub mod faults;
mod load;
mod replicas;
mod target;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::http::client::Client;
use crate::report::{Better, Report};
use crate::BoxResult;
use audit::Audit;
use cluster::Cluster;
use faults::{Fault, Injector, Kind, Rng};
use replicas::{Incarnation, ReplicaSettings, Replicas};
use target::Target;

/// The `every_second` scrapers.
pub const SCHEDULED_SCRAPERS: usize = 5;
/// How long the acknowledged jobs get to be final after the last fault.
pub const DRAIN_BOUND: Duration = Duration::from_secs(60);
/// The seeded pause before each fault.
const PAUSE: (Duration, Duration) = (Duration::from_millis(1500), Duration::from_secs(3));
/// Where the replicas' and PostgreSQL's logs go by default.
pub const LOGS: &str = "target/chaos";

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// How many faults to inject.
    #[arg(long, default_value_t = 100)]
    pub faults: usize,
    /// Seed of the faults' order, their victims and the pauses between them.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The server binary the replicas run.
    #[arg(long, default_value = "target/release/sneakpeek")]
    pub binary: PathBuf,
    /// How many replicas (at least 2: a failover needs someone to fail over to).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..))]
    pub replicas: u8,
    /// A log file per replica, and PostgreSQL's, go here.
    #[arg(long, default_value = LOGS)]
    pub logs: PathBuf,
    /// Also write the whole outcome here, as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Everything a run found.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub seed: u64,
    pub replicas: u8,
    pub binary: PathBuf,
    pub settings: ReplicaSettings,
    pub freeze_seconds: u64,
    pub enqueue_every_ms: u128,
    pub started: DateTime<Utc>,
    pub seconds: f64,
    pub faults: Vec<Fault>,
    pub injected: BTreeMap<Kind, usize>,
    /// What went wrong besides the faults: replicas that exited on their own, or that were
    /// not back to normal before the next fault.
    pub incidents: Vec<String>,
    /// Every replica process of the run, to tell whose pid is in a fault or a fetch.
    pub incarnations: Vec<Incarnation>,
    pub enqueues: Enqueues,
    pub drain_seconds: f64,
    pub audit: Audit,
}

#[derive(Debug, Serialize)]
pub struct Enqueues {
    pub acknowledged: usize,
    pub refused: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The subcommand: runs, prints the outcome and its table, writes the JSON; `Ok(false)` when
/// a zero goal was missed.
pub async fn command(options: Options) -> BoxResult<bool> {
    // Dropping the run on Ctrl-C or SIGTERM still stops the replicas and removes the cluster.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let outcome = tokio::select! {
        outcome = run(&options) => outcome?,
        _ = tokio::signal::ctrl_c() => return Err("interrupted".into()),
        _ = terminate.recv() => return Err("terminated".into()),
    };
    println!();
    let report = report(&outcome);
    println!("\n{}", report.table());
    if let Some(path) = &options.json {
        write_json(path, &outcome, &report)?;
        println!("written: {}", path.display());
    }
    let met = zero_goals_met(&outcome.audit);
    println!(
        "{} in {:.0} s; logs in {}",
        if met {
            "every zero goal met"
        } else {
            "ZERO GOAL MISSED"
        },
        outcome.seconds,
        options.logs.display()
    );
    Ok(met)
}

pub fn zero_goals_met(audit: &Audit) -> bool {
    audit.lost_enqueues == 0
        && audit.ran_more_than_once == 0
        && audit.results_lost == 0
        && audit.logs_lost == 0
        && audit.duplicate_fires == 0
}

pub async fn run(options: &Options) -> BoxResult<Outcome> {
    let started = Instant::now();
    let started_at = Utc::now();
    if !options.binary.exists() {
        return Err(format!(
            "{}: no such binary (cargo build -p server --bin sneakpeek, or --release)",
            options.binary.display()
        )
        .into());
    }
    std::fs::create_dir_all(&options.logs)?;
    let count = usize::from(options.replicas);
    for index in 0..count {
        // Each run's logs start empty; a replica's restarts append to its file.
        let _ = std::fs::remove_file(options.logs.join(format!("replica-{index}.log")));
    }
    let settings = replicas::settings();
    println!(
        "chaos: {} faults, seed {}, {count} replicas of {}",
        options.faults,
        options.seed,
        options.binary.display()
    );
    println!(
        "  replicas: heartbeat {} s, dead timeout {} s, lease {} s, shutdown grace {} s, API timeout {} s, middleware {}, retries {}",
        settings.heartbeat_seconds,
        settings.dead_timeout_seconds,
        settings.lease_seconds,
        settings.shutdown_grace_seconds,
        settings.request_timeout_seconds,
        settings.middleware,
        settings.default_retry
    );
    println!(
        "  load: a one-shot job every {} ms (its page answered after {} ms), {SCHEDULED_SCRAPERS} every_second scrapers; the leader is frozen for {} s",
        load::EVERY.as_millis(),
        load::HOLD.as_millis(),
        faults::FREEZE.as_secs()
    );

    let cluster = Cluster::start(&options.logs).await?;
    let url = cluster.url(cluster::DATABASE);
    println!(
        "  PostgreSQL: private cluster on 127.0.0.1:{}",
        cluster.port
    );
    let mut replicas = Replicas::new(&options.binary, url.clone(), &options.logs, count)?;
    let target = Target::start(replicas.roster.clone()).await?;
    replicas.start_all(faults::READY_BOUND).await?;
    let scheduled = create_scheduled(replicas.addresses[0], target.address).await?;
    wait_first_fires(&url, &scheduled).await?;

    let mut rng = Rng::new(options.seed);
    let plan = faults::plan(options.faults, &mut rng);
    let address = target.address;
    let stream = load::Stream::start(replicas.roster.clone(), move |token| {
        target::page(address, token, load::HOLD)
    });
    let mut injector = Injector {
        replicas: &mut replicas,
        cluster: &cluster,
        streamed_scraper: scheduled[0],
        rng,
        interruptions: Vec::new(),
    };
    let mut faults = Vec::with_capacity(plan.len());
    let mut incidents = Vec::new();
    let window_start = Utc::now();
    for (index, kind) in plan.into_iter().enumerate() {
        settle(&mut injector, &mut incidents).await;
        let pause = injector.rng.between(PAUSE.0, PAUSE.1);
        tokio::time::sleep(pause).await;
        let fault = match injector.inject(index + 1, kind).await {
            Ok(fault) => fault,
            Err(error) => Fault {
                number: index + 1,
                kind,
                at: Utc::now(),
                injected: false,
                replica: None,
                pid: None,
                seconds: None,
                note: format!("failed: {error}"),
            },
        };
        println!("{}", describe(&fault, options.faults));
        faults.push(fault);
    }
    settle(&mut injector, &mut incidents).await;
    let window_end = Utc::now();
    let interruptions = std::mem::take(&mut injector.interruptions);
    let tally = stream.stop().await?;
    let job_ids: Vec<i64> = tally.acknowledged.iter().map(|job| job.job_id).collect();
    println!("draining: {} acknowledged jobs", job_ids.len());
    let drained = audit::wait_final(&url, &job_ids, DRAIN_BOUND).await?;
    let fetches = target.fetches();
    let audit = audit::audit(
        &url,
        &audit::Inputs {
            acknowledged: &tally.acknowledged,
            fetches: &fetches,
            interruptions: &interruptions,
            incarnations: &replicas.incarnations,
            scheduled: &scheduled,
            window: (window_start, window_end),
        },
    )
    .await?;
    let mut injected = BTreeMap::new();
    for fault in faults.iter().filter(|fault| fault.injected) {
        *injected.entry(fault.kind).or_default() += 1;
    }
    let outcome = Outcome {
        seed: options.seed,
        replicas: options.replicas,
        binary: options.binary.clone(),
        settings,
        freeze_seconds: faults::FREEZE.as_secs(),
        enqueue_every_ms: load::EVERY.as_millis(),
        started: started_at,
        seconds: started.elapsed().as_secs_f64(),
        faults,
        injected,
        incidents,
        incarnations: replicas.incarnations.clone(),
        enqueues: Enqueues {
            acknowledged: tally.acknowledged.len(),
            refused: tally.refused,
            failed: tally.failed,
            skipped: tally.skipped,
        },
        drain_seconds: drained.as_secs_f64(),
        audit,
    };
    print_details(&outcome);
    Ok(outcome)
}

/// The outcome with its table rows, as JSON.
pub fn write_json(path: &std::path::Path, outcome: &Outcome, report: &Report) -> BoxResult<()> {
    let json = json!({"outcome": outcome, "rows": report.rows});
    std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

/// The outcome's rows of the benchmark table.
pub fn report(outcome: &Outcome) -> Report {
    let mut report = Report::default();
    add_rows(outcome, &mut report);
    report
}

fn add_rows(outcome: &Outcome, report: &mut Report) {
    let audit = &outcome.audit;
    let workload = format!(
        "chaos ({} faults, {} replicas)",
        outcome.faults.len(),
        outcome.replicas
    );
    let exact = |report: &mut Report, metric: &str, unit: &str, value: usize, note: String| {
        report
            .add(&workload, metric, unit, value as f64, Better::Exact)
            .goal(0.0)
            .note(note);
    };
    exact(
        report,
        "acknowledged jobs lost",
        "jobs",
        audit.lost_enqueues,
        format!(
            "missing, or not final {} s after the last fault",
            DRAIN_BOUND.as_secs()
        ),
    );
    exact(
        report,
        "jobs run more than once per attempt",
        "jobs",
        audit.ran_more_than_once,
        "the target served the job's page more times than the job had attempts".to_owned(),
    );
    exact(
        report,
        "results lost",
        "jobs",
        audit.results_lost,
        format!("the handler ran but the job did not succeed with its result; not counting {} lost with a killed or frozen replica", audit.lost_with_their_replica),
    );
    exact(
        report,
        "logs cut short",
        "jobs",
        audit.logs_lost,
        "succeeded, but the last attempt's log is not an unbroken run of lines ending with `Job succeeded`".to_owned(),
    );
    exact(
        report,
        "duplicate scheduled fires",
        "jobs",
        audit.duplicate_fires,
        "jobs beyond one per scraper and scheduled_for".to_owned(),
    );

    let longest = |kind: Kind, bound: Duration| -> Option<(f64, usize)> {
        let timed: Vec<Option<f64>> = outcome
            .faults
            .iter()
            .filter(|fault| fault.injected && fault.kind == kind)
            .map(|fault| fault.seconds)
            .collect();
        let missing = timed.iter().filter(|seconds| seconds.is_none()).count();
        let longest = timed
            .iter()
            .map(|seconds| seconds.unwrap_or(bound.as_secs_f64()))
            .reduce(f64::max)?;
        Some((longest, missing))
    };
    let settings = &outcome.settings;
    let timings = [
        (
            Kind::KillLeader,
            "leader failover after SIGKILL, longest",
            Some(3.0),
            Duration::from_secs(30),
            "no failover within 30 s",
        ),
        (
            Kind::FreezeLeader,
            "leader failover after SIGSTOP, longest",
            Some(settings.lease_seconds as f64 + 3.0),
            faults::FREEZE,
            "no failover while frozen",
        ),
        (
            Kind::RestartPostgres,
            "all ready after a PostgreSQL restart, longest",
            Some(10.0),
            faults::READY_BOUND,
            "not all ready within 60 s",
        ),
        (
            Kind::TerminateConnections,
            "all ready after pg_terminate_backend, longest",
            None,
            faults::READY_BOUND,
            "not all ready within 60 s",
        ),
        (
            Kind::TermWithLiveStream,
            "exit after SIGTERM with a live stream, longest",
            Some(settings.shutdown_grace_seconds as f64),
            faults::TERM_BOUND,
            "killed: still running",
        ),
    ];
    for (kind, metric, goal, bound, missing_note) in timings {
        let Some((seconds, missing)) = longest(kind, bound) else {
            continue;
        };
        let injected = outcome.injected.get(&kind).copied().unwrap_or(0);
        let row = report
            .add(&workload, metric, "s", seconds, Better::Lower)
            .note(format!("{injected} injected; {missing_note}: {missing}"));
        if let Some(goal) = goal {
            row.goal(goal);
        }
    }
    report
        .add(
            &workload,
            "longest gap between every_second fires",
            "s",
            audit.longest_fire_gap_seconds,
            Better::Lower,
        )
        .note(format!(
            "{} fires of {SCHEDULED_SCRAPERS} scrapers during the faults",
            audit.fires
        ));
    report
        .add(
            &workload,
            "results lost with a killed or frozen replica",
            "jobs",
            audit.lost_with_their_replica as f64,
            Better::Lower,
        )
        .note("the process that ran the job was SIGKILLed or SIGSTOPped while it held it, and its retries ran out");
    report
        .add(
            &workload,
            "lost workers' jobs retried to success",
            "jobs",
            audit.retried_to_success as f64,
            Better::Higher,
        )
        .note("acknowledged jobs that lost their worker and succeeded on a later attempt");
    let statuses: Vec<String> = audit
        .by_status
        .iter()
        .map(|(status, count)| format!("{count} {status}"))
        .collect();
    report
        .add(
            &workload,
            "jobs acknowledged",
            "jobs",
            audit.acknowledged as f64,
            Better::Higher,
        )
        .note(statuses.join(", "));
    let kinds: Vec<String> = outcome
        .injected
        .iter()
        .map(|(kind, count)| format!("{count} {}", kind.describe()))
        .collect();
    report
        .add(
            &workload,
            "faults injected",
            "faults",
            outcome.injected.values().sum::<usize>() as f64,
            Better::Higher,
        )
        .note(kinds.join(", "));
}

/// Brings the replicas back to normal, printing and keeping what was wrong.
async fn settle(injector: &mut Injector<'_>, incidents: &mut Vec<String>) {
    for incident in injector.settle().await {
        println!("incident: {incident}");
        incidents.push(incident);
    }
}

/// A port of 127.0.0.1 that is free now.
pub fn free_port() -> BoxResult<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The `every_second` scrapers, created over the API.
async fn create_scheduled(
    replica: std::net::SocketAddr,
    target: std::net::SocketAddr,
) -> BoxResult<Vec<i64>> {
    let mut client = Client::connect(replica).await?;
    let mut ids = Vec::with_capacity(SCHEDULED_SCRAPERS);
    for number in 0..SCHEDULED_SCRAPERS {
        let token = format!("tick-{number}");
        let scraper = load::scraper(
            &format!("chaos {token}"),
            "every_second",
            &target::page(target, &token, Duration::ZERO),
        );
        let created = client
            .ok("create_scraper", json!({"scraper": scraper}))
            .await?;
        ids.push(created["id"].as_i64().ok_or("a scraper id")?);
    }
    Ok(ids)
}

/// Waits until every scheduled scraper has fired once: the scheduler works before the faults.
async fn wait_first_fires(url: &str, scheduled: &[i64]) -> BoxResult<()> {
    let mut connection = PgConnection::connect(url).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fired: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT scraper_id) FROM scraper_jobs WHERE scraper_id = ANY($1)",
        )
        .bind(scheduled)
        .fetch_one(&mut connection)
        .await?;
        if fired as usize == scheduled.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {fired} of {} every_second scrapers fired within 30 s of the start",
                scheduled.len()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn describe(fault: &Fault, total: usize) -> String {
    let victim = match (fault.replica, fault.pid) {
        (Some(replica), Some(pid)) => format!(" (replica {replica}, pid {pid})"),
        _ => String::new(),
    };
    let seconds = fault
        .seconds
        .map_or("-".to_owned(), |seconds| format!("{seconds:.2} s"));
    format!(
        "fault {}/{total} {}: {}{victim}: {seconds}; {}",
        fault.number,
        fault.at.format("%H:%M:%S"),
        fault.kind.describe(),
        fault.note
    )
}

fn print_details(outcome: &Outcome) {
    let audit = &outcome.audit;
    let enqueues = &outcome.enqueues;
    println!(
        "\nenqueues: {} acknowledged, {} refused, {} failed or timed out, {} ticks skipped; drained in {:.1} s",
        enqueues.acknowledged, enqueues.refused, enqueues.failed, enqueues.skipped, outcome.drain_seconds
    );
    let statuses: Vec<String> = audit
        .by_status
        .iter()
        .map(|(status, count)| format!("{count} {status}"))
        .collect();
    println!("acknowledged jobs at the end: {}", statuses.join(", "));
    println!(
        "ended without running: {}; fetches not attributed to a replica: {}; incidents: {}",
        audit.ended_without_running,
        audit.unattributed_fetches,
        outcome.incidents.len()
    );
    for (figure, cases) in &audit.evidence {
        println!("{figure}:");
        for case in cases {
            let job = case.job_id.map_or("-".to_owned(), |id| id.to_string());
            let time = |at: Option<DateTime<Utc>>| {
                at.map_or("-".to_owned(), |at| at.format("%H:%M:%S%.3f").to_string())
            };
            println!(
                "  job {job} ({}): {}, started {}, finished {}; fetched {}; {}",
                case.token,
                case.status,
                time(case.started_at),
                time(case.finished_at),
                if case.fetches.is_empty() {
                    "never".to_owned()
                } else {
                    case.fetches.join(", ")
                },
                case.detail
            );
        }
    }
}

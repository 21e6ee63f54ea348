//! `sneakpeek-bench`: every benchmark of `scripts/bench.sh` in one run, side by side with its
//! baselines measured in the same run (the original Sneakpeek 0.1.7, graphile-worker,
//! pgbench), so ratios hold even where absolute times drift between runs.
//!
//! It drives the engine in this process for the queue, scheduler and memory workloads, starts
//! the release `sneakpeek` binary and the original for the HTTP workloads, and prints one
//! table, also written as JSON and Markdown (and into the README between its markers).
//! `scripts/bench.sh` builds and installs everything it needs first; see the README.

mod baselines;
mod chaos;
mod direct;
mod http;
mod pg;
mod report;
mod rss;
mod ui;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use direct::{quantile_ms, Store};
use report::{Better, Report};

pub type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The workloads' sizes, as the issue states them.
const BURN_DOWN_JOBS: usize = 100_000;
const PICKUP_SAMPLES: usize = 1_000;
const SCHEDULED_SCRAPERS: usize = 1_000;
const SCHEDULER_SECONDS: i64 = 30;
const MEMORY_SCRAPERS: usize = 10_000;
const MEMORY_JOBS_PER_SCRAPER: usize = 10;
const API_CLIENTS: usize = 32;
const API_SECONDS: u64 = 10;
const API_SCRAPERS: usize = 1_000;
const API_PICKUP_SAMPLES: usize = 200;
/// The original picks a job up about once a second: fewer samples keep its run short.
const ORIGINAL_PICKUP_SAMPLES: usize = 60;
const END_TO_END_JOBS: usize = 200;
const RENDER_SAMPLES: usize = 20;
const PGBENCH_SECONDS: u32 = 10;
/// The chaos run of a full run: at least 100 faults, the same ones every time.
const CHAOS_FAULTS: usize = 100;
const CHAOS_SEED: u64 = 1;

const ORIGINAL: &str = "original 0.1.7";
const GRAPHILE: &str = "graphile-worker";

#[derive(Parser)]
#[command(
    name = "sneakpeek-bench",
    about = "Sneakpeek's benchmarks, side by side with their baselines"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Internal: measures an engine's memory in a process of its own.
    #[command(hide = true)]
    MemoryProbe {
        scrapers: usize,
        jobs_per_scraper: usize,
    },
    /// Faults against replicas of the server on a private PostgreSQL: exits non-zero when
    /// anything acknowledged is lost.
    Chaos(chaos::Options),
}

#[derive(clap::Args)]
struct Settings {
    /// A PostgreSQL where fresh databases may be created (and dropped).
    #[arg(
        long,
        env = "SNEAKPEEK_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// The release server binary and its site (`cargo leptos build --release --split`).
    #[arg(long, default_value = "target/release/sneakpeek")]
    server: PathBuf,
    #[arg(long, default_value = "target/site")]
    site_root: PathBuf,
    /// Python of the virtualenv with `sneakpeek-py==0.1.7`, and the original's start script.
    #[arg(long, default_value = "target/bench/venv/bin/python")]
    python: PathBuf,
    #[arg(long, default_value = "tools/bench/original_sneakpeek.py")]
    original: PathBuf,
    /// The graphile-worker script (its node_modules installed beside it).
    #[arg(long, default_value = "tools/bench/graphile.mjs")]
    graphile: PathBuf,
    #[arg(long, default_value = "pgbench")]
    pgbench: PathBuf,
    /// What `cargo bench -p engine --features runtime --bench extract` printed.
    #[arg(long, default_value = "target/bench/extract.txt")]
    extract_output: PathBuf,
    /// Where results.json, results.md and the servers' logs go.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// A README whose table between the bench markers is replaced with this run's.
    #[arg(long)]
    readme: Option<PathBuf>,
    /// Run only these sections (all by default).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    Pgbench,
    Queue,
    Pickup,
    Scheduler,
    Memory,
    Api,
    Original,
    Ui,
    Extract,
    Chaos,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::MemoryProbe {
            scrapers,
            jobs_per_scraper,
        }) => direct::memory::probe(scrapers, jobs_per_scraper).await,
        Some(Command::Chaos(options)) => match chaos::command(options).await {
            Ok(true) => Ok(()),
            Ok(false) => Err("a zero goal of the chaos run was missed".into()),
            Err(error) => Err(error),
        },
        None => run(cli.run).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> BoxResult<()> {
    let started = Instant::now();
    let wanted = |section: Section| settings.only.is_empty() || settings.only.contains(&section);
    let admin = settings.database_url.as_str();
    std::fs::create_dir_all(settings.out_dir.join("logs"))?;
    pg::drop_leftovers(admin).await?;
    let mut report = Report::default();

    if wanted(Section::Pgbench) {
        section("pgbench: durable commits/s of this machine (context)");
        for clients in [1, 8] {
            let tps =
                baselines::pgbench(&settings.pgbench, admin, clients, PGBENCH_SECONDS).await?;
            report
                .add(
                    "pgbench (context)",
                    &format!("1-insert commits, {clients} client(s)"),
                    "commits/s",
                    tps,
                    Better::Higher,
                )
                .note("the physical limit of durable commits on this machine");
        }
    }

    if wanted(Section::Queue) {
        section("queue burn-down: 100,000 no-op jobs");
        let memory = direct::queue::burn_down(&Store::Memory, BURN_DOWN_JOBS).await?;
        report
            .add(
                "queue burn-down (memory)",
                "drain",
                "jobs/s",
                memory.drain_per_second,
                Better::Higher,
            )
            .goal(200_000.0);
        report.add(
            "queue burn-down (memory)",
            "enqueue",
            "jobs/s",
            memory.enqueue_per_second,
            Better::Higher,
        );

        let database = pg::Database::create(admin, "queue").await?;
        let postgres = direct::queue::burn_down(&Store::Postgres(&database), BURN_DOWN_JOBS).await;
        database.drop().await?;
        let postgres = postgres?;
        let graphile: baselines::GraphileBurnDown =
            baselines::graphile(&settings.graphile, admin, "burn-down", BURN_DOWN_JOBS).await?;
        report
            .add(
                "queue burn-down (PostgreSQL)",
                "drain",
                "jobs/s",
                postgres.drain_per_second,
                Better::Higher,
            )
            .baseline(GRAPHILE, graphile.jobs_per_second)
            .goal(10_000.0);
        report
            .add(
                "queue burn-down (PostgreSQL)",
                "commits per job, drain",
                "commits",
                postgres.drain_commits_per_job.unwrap_or(f64::NAN),
                Better::Lower,
            )
            .baseline(GRAPHILE, graphile.commits_per_job);
        report.add(
            "queue burn-down (PostgreSQL)",
            "enqueue, 32 callers",
            "jobs/s",
            postgres.enqueue_per_second,
            Better::Higher,
        );
        report.add(
            "queue burn-down (PostgreSQL)",
            "commits per job, enqueue",
            "commits",
            postgres.enqueue_commits_per_job.unwrap_or(f64::NAN),
            Better::Lower,
        );
    }

    if wanted(Section::Pickup) {
        section("idle pickup latency: 1,000 sequential enqueue -> handler start");
        let mut memory = direct::queue::pickup(&Store::Memory, PICKUP_SAMPLES).await?;
        report
            .add(
                "pickup latency (memory)",
                "p50",
                "ms",
                quantile_ms(&mut memory, 0.5),
                Better::Lower,
            )
            .goal(1.0);
        report.add(
            "pickup latency (memory)",
            "p99",
            "ms",
            quantile_ms(&mut memory, 0.99),
            Better::Lower,
        );

        let database = pg::Database::create(admin, "pickup").await?;
        let postgres = direct::queue::pickup(&Store::Postgres(&database), PICKUP_SAMPLES).await;
        database.drop().await?;
        let mut postgres = postgres?;
        let graphile: baselines::GraphilePickup =
            baselines::graphile(&settings.graphile, admin, "pickup", PICKUP_SAMPLES).await?;
        report
            .add(
                "pickup latency (PostgreSQL)",
                "p50",
                "ms",
                quantile_ms(&mut postgres, 0.5),
                Better::Lower,
            )
            .baseline(GRAPHILE, graphile.p50_ms)
            .goal(10.0);
        report
            .add(
                "pickup latency (PostgreSQL)",
                "p99",
                "ms",
                quantile_ms(&mut postgres, 0.99),
                Better::Lower,
            )
            .baseline(GRAPHILE, graphile.p99_ms)
            .goal(25.0);
    }

    if wanted(Section::Scheduler) {
        section("scheduler precision: 1,000 every_second scrapers for 30 s");
        let memory =
            direct::scheduler::precision(&Store::Memory, SCHEDULED_SCRAPERS, SCHEDULER_SECONDS)
                .await?;
        scheduler_rows(&mut report, "memory", &memory);
        let database = pg::Database::create(admin, "scheduler").await?;
        let postgres = direct::scheduler::precision(
            &Store::Postgres(&database),
            SCHEDULED_SCRAPERS,
            SCHEDULER_SECONDS,
        )
        .await;
        database.drop().await?;
        scheduler_rows(&mut report, "PostgreSQL", &postgres?);
    }

    if wanted(Section::Memory) {
        section("memory: an engine in memory, idle and loaded");
        let footprint = direct::memory::measure(MEMORY_SCRAPERS, MEMORY_JOBS_PER_SCRAPER).await?;
        report.add(
            "engine memory",
            "RSS idle (engine alone)",
            "MiB",
            footprint.idle_mib,
            Better::Lower,
        );
        report
            .add(
                "engine memory",
                "RSS, 10,000 scrapers + 100,000 jobs",
                "MiB",
                footprint.loaded_mib,
                Better::Lower,
            )
            .note(format!(
                "{} scrapers, {} retained jobs",
                footprint.scrapers, footprint.jobs
            ));
    }

    let launchers = http::server::Launchers {
        ours: settings.server.clone(),
        site_root: settings.site_root.clone(),
        python: settings.python.clone(),
        original: settings.original.clone(),
        logs: settings.out_dir.join("logs"),
    };
    let original = if wanted(Section::Original) {
        section("the original Sneakpeek 0.1.7 over its JsonRPC API");
        Some(original_api(&launchers).await?)
    } else {
        None
    };
    if wanted(Section::Api) {
        section("our server over the JsonRPC API, in memory");
        let server = launchers.ours(None, 18080).await?;
        let memory = our_api(&server, &mut report, "memory", original.as_ref()).await;
        if memory.is_ok() {
            section("UI: the scrapers page with 1,000 scrapers, rendered on the server");
            let (mut times, size) = http::render(server.address, RENDER_SAMPLES).await?;
            report
                .add(
                    "UI",
                    "GET / with 1,000 scrapers, p50",
                    "ms",
                    quantile_ms(&mut times, 0.5),
                    Better::Lower,
                )
                .goal(50.0)
                .note(format!("{} KiB of HTML", size / 1024));
        }
        server.stop().await;
        memory?;

        section("our server over the JsonRPC API, on PostgreSQL");
        let database = pg::Database::create(admin, "api").await?;
        let server = launchers.ours(Some(&database.url), 18081).await;
        let postgres = match server {
            Ok(server) => {
                let outcome = our_api(&server, &mut report, "PostgreSQL", original.as_ref()).await;
                server.stop().await;
                outcome
            }
            Err(error) => Err(error),
        };
        database.drop().await?;
        postgres?;
    }

    if wanted(Section::Ui) {
        let weight = ui::wasm_weight(&settings.site_root.join("pkg"))?;
        let (heaviest, first_load) = weight.heaviest_page;
        report.add(
            "UI",
            "wasm every page loads, raw",
            "KiB",
            weight.main.raw,
            Better::Lower,
        );
        // The budget is the bundle every page waits for; a lazy route's modules come on top, on
        // its first visit, and are reported beside it.
        report
            .add(
                "UI",
                "wasm every page loads, gzip -9",
                "KiB",
                weight.main.gzip,
                Better::Lower,
            )
            .goal(350.0)
            .note("the main module; the scrapers list needs nothing more");
        report
            .add(
                "UI",
                "wasm first load of the heaviest page, gzip -9",
                "KiB",
                first_load.gzip,
                Better::Lower,
            )
            .note(format!(
                "{heaviest}: the main module and its route's modules, {:.0} KiB raw",
                first_load.raw
            ));
        report.add(
            "UI",
            "wasm, all modules, gzip -9",
            "KiB",
            weight.all.gzip,
            Better::Lower,
        );
    }

    if wanted(Section::Extract) {
        let output = std::fs::read_to_string(&settings.extract_output).map_err(|error| {
            format!(
                "{}: {error} (scripts/bench.sh runs the extract bench first)",
                settings.extract_output.display()
            )
        })?;
        let pages =
            baselines::parse_extract(&output).ok_or("no pages/s in the extract bench's output")?;
        report
            .add(
                "scraping",
                "extract, 20 KB page, 5 fields",
                "pages/s",
                pages,
                Better::Higher,
            )
            .goal(1_000.0)
            .note("cargo bench -p engine --features runtime --bench extract");
    }

    if wanted(Section::Chaos) {
        section("chaos: 100 faults against 3 replicas on a private PostgreSQL");
        let options = chaos::Options {
            faults: CHAOS_FAULTS,
            seed: CHAOS_SEED,
            binary: settings.server.clone(),
            replicas: 3,
            logs: PathBuf::from(chaos::LOGS),
            json: None,
        };
        let outcome = chaos::run(&options).await?;
        let rows = chaos::report(&outcome);
        chaos::write_json(&settings.out_dir.join("chaos.json"), &outcome, &rows)?;
        report.rows.extend(rows.rows);
    }

    let elapsed = started.elapsed();
    finish(&settings, &report, elapsed, admin).await
}

fn section(title: &str) {
    println!("\n== {title}");
}

fn scheduler_rows(report: &mut Report, store: &str, precision: &direct::scheduler::Precision) {
    let workload = format!("scheduler precision ({store})");
    let due = precision.due as f64;
    report
        .add(
            &workload,
            "fires enqueued within 100 ms",
            "%",
            100.0 * precision.on_time as f64 / due,
            Better::Higher,
        )
        .note(format!("{} fires due", precision.due));
    report.add(
        &workload,
        "enqueue lateness p50",
        "ms",
        precision.late_p50_ms,
        Better::Lower,
    );
    report.add(
        &workload,
        "enqueue lateness p99",
        "ms",
        precision.late_p99_ms,
        Better::Lower,
    );
    report
        .add(
            &workload,
            "duplicates",
            "fires",
            precision.duplicates as f64,
            Better::Exact,
        )
        .goal(0.0);
    report
        .add(&workload, "skipped: previous run still active", "fires", precision.skipped_running as f64, Better::Lower)
        .note("one active job per scraper: a fire is refused while the last one is pending or running");
    report
        .add(&workload, "skipped: scheduler behind", "fires", precision.skipped_behind as f64, Better::Lower)
        .note("the scraper was free but its fire was never enqueued: the scheduler skips missed fires instead of bursting");
}

/// The original's figures, measured before ours so each server has the machine to itself.
struct OriginalFigures {
    idle_rss_mib: f64,
    loaded_rss_mib: f64,
    get_scraper: http::Load,
    pickup_p50_ms: f64,
    pickup_p99_ms: f64,
    end_to_end_seconds: f64,
}

async fn original_api(launchers: &http::server::Launchers) -> BoxResult<OriginalFigures> {
    let server = launchers.original(18180).await?;
    let outcome = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_rss_mib = server.memory()?.rss_mib;
        let ids = http::create_scrapers(server.address, API_SCRAPERS, API_CLIENTS, &http::Trivial::original()).await?;
        // Its scheduler runs each new inactive scraper once (quirk Q1) within a 5 s tick.
        tokio::time::sleep(Duration::from_secs(7)).await;
        http::settle(server.address, &ids, Duration::from_secs(120)).await?;
        let get_scraper = http::get_scraper_load(server.address, &ids, API_CLIENTS, Duration::from_secs(API_SECONDS)).await?;
        let mut pickup = http::pickup(server.address, &ids, ORIGINAL_PICKUP_SAMPLES, Duration::from_millis(20)).await?;
        let end_to_end = http::end_to_end(server.address, &ids[..END_TO_END_JOBS], API_CLIENTS, Duration::from_millis(20)).await?;
        let loaded_rss_mib = server.memory()?.rss_mib;
        let figures = OriginalFigures {
            idle_rss_mib,
            loaded_rss_mib,
            get_scraper,
            pickup_p50_ms: quantile_ms(&mut pickup, 0.5),
            pickup_p99_ms: quantile_ms(&mut pickup, 0.99),
            end_to_end_seconds: end_to_end.as_secs_f64(),
        };
        println!(
            "  original: get_scraper {:.0} req/s, pickup p50 {:.0} ms, 200 jobs in {:.2} s, RSS {:.1} MiB idle",
            figures.get_scraper.requests_per_second, figures.pickup_p50_ms, figures.end_to_end_seconds, figures.idle_rss_mib
        );
        BoxResult::Ok(figures)
    }
    .await;
    server.stop().await;
    outcome
}

/// Our server's HTTP figures, each beside the original's where it has one.
async fn our_api(
    server: &http::server::Server,
    report: &mut Report,
    store: &str,
    original: Option<&OriginalFigures>,
) -> BoxResult<()> {
    let workload = |name: &str| format!("{name} ({store})");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.memory()?.rss_mib;
    let row = report.add(
        &workload("server memory"),
        "RSS idle",
        "MiB",
        idle,
        Better::Lower,
    );
    with_original(row, original.map(|figures| figures.idle_rss_mib)).goal(30.0);

    let ids = http::create_scrapers(
        server.address,
        API_SCRAPERS,
        API_CLIENTS,
        &http::Trivial::ours(),
    )
    .await?;
    let load = http::get_scraper_load(
        server.address,
        &ids,
        API_CLIENTS,
        Duration::from_secs(API_SECONDS),
    )
    .await?;
    let goal = if store == "memory" {
        30_000.0
    } else {
        10_000.0
    };
    let row = report
        .add(
            &workload("JsonRPC get_scraper, 32 clients"),
            "throughput",
            "req/s",
            load.requests_per_second,
            Better::Higher,
        )
        .goal(goal)
        .note(format!(
            "{} errors; the load generator shares the 2 cores",
            load.errors
        ));
    with_original(
        row,
        original.map(|figures| figures.get_scraper.requests_per_second),
    );
    let row = report.add(
        &workload("JsonRPC get_scraper, 32 clients"),
        "p99",
        "ms",
        load.p99_ms,
        Better::Lower,
    );
    with_original(row, original.map(|figures| figures.get_scraper.p99_ms));

    let (cycles, load) = http::enqueue_cycles(
        server.address,
        &ids[..API_CLIENTS],
        Duration::from_secs(API_SECONDS),
    )
    .await?;
    let cycle_workload = workload("JsonRPC enqueue + poll to finish, 32 clients");
    report
        .add(
            &cycle_workload,
            "cycles",
            "cycles/s",
            cycles,
            Better::Higher,
        )
        .note("enqueue_scraper, then get_scraper_job every 1 ms until finished (a trivial script)");
    report.add(
        &cycle_workload,
        "requests",
        "req/s",
        load.requests_per_second,
        Better::Higher,
    );
    report.add(
        &cycle_workload,
        "cycle p99",
        "ms",
        load.p99_ms,
        Better::Lower,
    );

    let mut pickup = http::pickup(
        server.address,
        &ids,
        API_PICKUP_SAMPLES,
        Duration::from_millis(2),
    )
    .await?;
    let row = report
        .add(
            &workload("API pickup latency"),
            "p50",
            "ms",
            quantile_ms(&mut pickup, 0.5),
            Better::Lower,
        )
        .note("started_at - created_at of jobs enqueued one at a time over the API");
    with_original(row, original.map(|figures| figures.pickup_p50_ms));
    let row = report.add(
        &workload("API pickup latency"),
        "p99",
        "ms",
        quantile_ms(&mut pickup, 0.99),
        Better::Lower,
    );
    with_original(row, original.map(|figures| figures.pickup_p99_ms));

    let end_to_end = http::end_to_end(
        server.address,
        &ids[..END_TO_END_JOBS],
        API_CLIENTS,
        Duration::from_millis(20),
    )
    .await?;
    let row = report
        .add(
            &workload("end to end, 200 jobs over the API"),
            "enqueue to all finished",
            "s",
            end_to_end.as_secs_f64(),
            Better::Lower,
        )
        .note("32 clients enqueue 200 scrapers' jobs, then poll get_scraper_jobs every 20 ms");
    with_original(row, original.map(|figures| figures.end_to_end_seconds));

    let loaded = server.memory()?;
    let row = report.add(
        &workload("server memory"),
        "RSS after the API workloads",
        "MiB",
        loaded.rss_mib,
        Better::Lower,
    );
    with_original(row, original.map(|figures| figures.loaded_rss_mib)).note(format!(
        "1,000 scrapers and their jobs; peak {:.1} MiB",
        loaded.peak_mib
    ));
    Ok(())
}

/// Adds the original's figure to a row when the original was measured.
fn with_original(row: report::RowBuilder<'_>, value: Option<f64>) -> report::RowBuilder<'_> {
    match value {
        Some(value) => row.baseline(ORIGINAL, value),
        None => row,
    }
}

/// Prints the table and writes it as JSON, Markdown and (when asked) into the README.
async fn finish(
    settings: &Settings,
    report: &Report,
    elapsed: Duration,
    admin: &str,
) -> BoxResult<()> {
    let machine = machine(admin).await?;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    println!("\nSneakpeek benchmarks, {date}, {machine}\n");
    print!("{}", report.table());
    println!(
        "\n(ratio: how many times better ours is than the baseline; the run took {:.0} s)",
        elapsed.as_secs_f64()
    );

    let json = serde_json::json!({
        "date": date,
        "machine": machine,
        "seconds": elapsed.as_secs_f64(),
        "rows": report.rows,
    });
    let results = settings.out_dir.join("results.json");
    std::fs::write(&results, serde_json::to_string_pretty(&json)?)?;
    let markdown = format!(
        "Measured {date} on {machine} by `scripts/bench.sh` ({:.0} min). Ratio: how many times better ours is than the baseline.\n\n{}",
        elapsed.as_secs_f64() / 60.0,
        report.markdown()
    );
    std::fs::write(settings.out_dir.join("results.md"), &markdown)?;
    println!("written: {}", results.display());
    if let Some(readme) = &settings.readme {
        replace_between_markers(readme, &markdown)?;
        println!("updated: {}", readme.display());
    }
    Ok(())
}

const START_MARKER: &str = "<!-- bench:start -->";
const END_MARKER: &str = "<!-- bench:end -->";

fn replace_between_markers(path: &std::path::Path, content: &str) -> BoxResult<()> {
    let text = std::fs::read_to_string(path)?;
    let (start, end) = match (text.find(START_MARKER), text.find(END_MARKER)) {
        (Some(start), Some(end)) if start < end => (start + START_MARKER.len(), end),
        _ => {
            return Err(format!(
                "{} has no {START_MARKER} ... {END_MARKER} section",
                path.display()
            )
            .into())
        }
    };
    std::fs::write(
        path,
        format!(
            "{}\n{}\n{}",
            &text[..start],
            content.trim_end(),
            &text[end..]
        ),
    )?;
    Ok(())
}

/// CPU model and count, memory, PostgreSQL version.
async fn machine(admin: &str) -> BoxResult<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let postgres = pg::server_version(admin)
        .await
        .unwrap_or_else(|_| "unknown".to_owned());
    Ok(format!(
        "{cores} cores ({model}), {memory_gib:.0} GiB RAM, PostgreSQL {postgres}"
    ))
}

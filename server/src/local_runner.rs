//! `sneakpeek run-once`: runs one scraper once, in this process, without storages, scheduler
//! or web server — the way to debug a handler or a script locally. The job log goes to stderr
//! as it is written, the result to stdout; the exit code says whether the run succeeded.
//!
//! ```text
//! sneakpeek run-once --handler extract --config '{"params": {"url": "https://example.com", "fields": {"title": {"css": "h1"}}}}'
//! sneakpeek run-once --script scraper.rhai --args '{"page": 2}'
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::model::{BuiltinHandler, Scraper};
use engine::scraper::{
    async_trait, run_scraper, Handlers, JobHooks, LogLevel, Runtime, RuntimeSettings,
};
use serde_json::{json, Map, Value};

/// Arguments of `sneakpeek run-once`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunOnce {
    /// The handler to run: `extract`, `script`, or one your binary registers.
    #[arg(long, required_unless_present = "script", conflicts_with = "script")]
    handler: Option<String>,

    /// The scraper's config, as JSON: `{"params": {…}, "plugins": {…}}`.
    #[arg(long, default_value = "{}")]
    config: String,

    /// A Rhai script to run with the `script` handler (its text becomes `params.source`).
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,

    /// The script's `args`, as a JSON object.
    #[arg(long, value_name = "JSON", requires = "script")]
    args: Option<String>,

    /// The scraper state the run starts from (what `state()` returns).
    #[arg(long)]
    state: Option<String>,

    /// Global middleware settings, as JSON (default: the server's `--middleware`).
    #[arg(long, value_name = "JSON")]
    middleware: Option<String>,

    /// Fails the run after this many seconds (default: the server's
    /// `--job-timeout-seconds`).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
}

/// Runs the scraper `arguments` describe with `handlers`, under the server's `settings`
/// (egress policy, limits, default timeout); prints its log, result and final state.
pub async fn run_once(
    handlers: &Handlers,
    settings: RuntimeSettings,
    arguments: RunOnce,
) -> ExitCode {
    let (scraper, runtime) = match prepare(settings, arguments.clone()) {
        Ok(prepared) => prepared,
        Err(message) => {
            eprintln!("sneakpeek run-once: {message}");
            return ExitCode::from(2);
        }
    };
    let hooks = Arc::new(PrintingHooks {
        scraper: Mutex::new(scraper.clone()),
    });
    let seconds = runtime.job_timeout_seconds(&scraper);
    let run = run_scraper(handlers, &runtime, scraper, hooks.clone());
    let outcome = match tokio::time::timeout(Duration::from_secs(seconds), run).await {
        Ok(outcome) => outcome.map_err(|error| error.to_string()),
        Err(_) => Err(format!("timed out after {seconds} s")),
    };
    let final_state = engine::sync::lock(&hooks.scraper).state.clone();
    if final_state != arguments.state {
        eprintln!("state: {}", final_state.as_deref().unwrap_or("(none)"));
    }
    match outcome {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The scraper and runtime to run, or what is wrong with the arguments.
fn prepare(
    mut settings: RuntimeSettings,
    arguments: RunOnce,
) -> Result<(Scraper, Runtime), String> {
    let mut config: Value = serde_json::from_str(&arguments.config)
        .map_err(|error| format!("--config is not JSON: {error}"))?;
    let handler = match &arguments.script {
        Some(path) => {
            let source = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            let args: Value = match &arguments.args {
                Some(args) => serde_json::from_str(args)
                    .map_err(|error| format!("--args is not JSON: {error}"))?,
                None => json!({}),
            };
            let params = config
                .as_object_mut()
                .ok_or("--config must be a JSON object")?
                .entry("params")
                .or_insert_with(|| Value::Object(Map::new()));
            let params = params
                .as_object_mut()
                .ok_or("--config's params must be a JSON object")?;
            params.insert("source".to_owned(), Value::String(source));
            params.insert("args".to_owned(), args);
            BuiltinHandler::Script.name().to_owned()
        }
        None => arguments
            .handler
            .clone()
            .expect("clap requires --handler without --script"),
    };
    let scraper: Scraper = serde_json::from_value(json!({
        "id": 0,
        "name": "run-once",
        "schedule": "inactive",
        "handler": handler,
        "config": config,
        "state": arguments.state,
        "timeout_seconds": arguments.timeout,
    }))
    .map_err(|error| format!("invalid --config: {error}"))?;
    if let Some(text) = &arguments.middleware {
        settings.middleware =
            serde_json::from_str(text).map_err(|error| format!("invalid --middleware: {error}"))?;
    }
    let runtime = Runtime::from_settings(settings).map_err(|error| error.to_string())?;
    Ok((scraper, runtime))
}

/// Job hooks for a run without a queue: heartbeats always succeed, the state is kept in
/// memory, log lines go to stderr.
struct PrintingHooks {
    scraper: Mutex<Scraper>,
}

#[async_trait]
impl JobHooks for PrintingHooks {
    async fn heartbeat(&self) -> Result<(), engine::Error> {
        Ok(())
    }

    async fn update_scraper_state(
        &self,
        state: Option<String>,
    ) -> Result<Option<String>, engine::Error> {
        let mut scraper = engine::sync::lock(&self.scraper);
        scraper.state = state;
        Ok(scraper.state.clone())
    }

    fn log(&self, level: LogLevel, message: String) {
        eprintln!("[{}] {message}", format!("{level:?}").to_uppercase());
    }
}

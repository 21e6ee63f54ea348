//! The server's configuration: one typed struct, read from CLI flags or their environment
//! variables, with the defaults `sneakpeek --help` shows.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};
use engine::retry::RetryPolicy;
use engine::scheduler::SchedulerSettings;
use engine::scraper::{EgressRule, MiddlewareSettings, RuntimeSettings};
use engine::worker::WorkerSettings;

use crate::startup::StartupError;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "sneakpeek",
    version,
    about = "Sneakpeek: a self-hosted platform for running web scrapers"
)]
pub struct Settings {
    /// Address the UI and API listen on.
    #[arg(long, env = "SNEAKPEEK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// PostgreSQL URL. Without it everything is kept in memory (and lost at exit).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// Refuse every change to the scrapers list (create, update, delete).
    #[arg(long, env = "SNEAKPEEK_READ_ONLY", default_value_t = false)]
    pub read_only: bool,

    /// Log level filter, e.g. `info` or `sneakpeek=debug,info`.
    #[arg(long, env = "SNEAKPEEK_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "SNEAKPEEK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// API token. When set, the JsonRPC API requires `Authorization: Bearer <token>` and the
    /// UI asks for it once.
    #[arg(long, env = "SNEAKPEEK_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<Secret>,

    /// Origins allowed to call the API from a browser (CORS), e.g. `https://tools.example.com`.
    /// Repeat or separate with commas. Default: same origin only.
    #[arg(long, env = "SNEAKPEEK_CORS_ALLOW_ORIGIN", value_delimiter = ',')]
    pub cors_allow_origin: Vec<String>,

    /// Host names the server answers to besides `localhost` and IP addresses, e.g.
    /// `scrapers.example.com`, or `*` for any; other `Host` headers are refused (they are how
    /// DNS rebinding reaches a server). Repeat or separate with commas.
    #[arg(long, env = "SNEAKPEEK_ALLOWED_HOSTS", value_delimiter = ',', value_parser = crate::guard::parse_allowed_host)]
    pub allowed_hosts: Vec<String>,

    /// Mark the sign-in cookie `Secure`: set it when browsers reach the server over HTTPS.
    #[arg(long, env = "SNEAKPEEK_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` headers are believed:
    /// addresses or ranges, e.g. `127.0.0.1,10.0.0.0/8`. Repeat or separate with commas.
    #[arg(long, env = "SNEAKPEEK_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::proxy::parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "SNEAKPEEK_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds an API request may take before it is answered with 408.
    #[arg(long, env = "SNEAKPEEK_REQUEST_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_seconds: u64,

    /// A JSON or YAML file with a list of scrapers. In memory they are the starting list
    /// (with --read-only, the fixed list); on PostgreSQL the ones whose name is not stored
    /// yet are created at start.
    #[arg(long, env = "SNEAKPEEK_SCRAPERS_FILE")]
    pub scrapers_file: Option<std::path::PathBuf>,

    /// Global middleware defaults as JSON, e.g. `{"rate_limiter": {"max_requests": 10}}`
    /// (scrapers override them in `config.plugins`); see docs/middleware.md.
    #[arg(long, env = "SNEAKPEEK_MIDDLEWARE", value_parser = parse_middleware, default_value = "{}")]
    pub middleware: MiddlewareSettings,

    #[command(flatten)]
    pub scraping: ScrapingSettings,

    #[command(flatten)]
    pub components: Components,

    #[command(flatten)]
    pub jobs: JobSettings,
}

/// What scrapers may reach and take, beyond what they configure themselves.
#[derive(Debug, Clone, Args)]
pub struct ScrapingSettings {
    /// Addresses, ranges and host names scrapers may reach although they are refused by
    /// default (loopback, private, link-local and other internal ranges), e.g.
    /// `127.0.0.1/32,10.0.0.0/8,intranet.example`. Repeat or separate with commas.
    #[arg(long, env = "SNEAKPEEK_EGRESS_ALLOW", value_delimiter = ',', value_parser = clap::value_parser!(EgressRule), global = true)]
    pub egress_allow: Vec<EgressRule>,
    /// The longest timeout, in seconds, a scraper may give a request (`limits.timeout`).
    #[arg(long, env = "SNEAKPEEK_MAX_FETCH_TIMEOUT_SECONDS", default_value_t = RuntimeSettings::default().max_fetch_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub max_fetch_timeout_seconds: u64,
    /// The largest response, in bytes, a scraper may read into memory
    /// (`limits.max_response_bytes`).
    #[arg(long, env = "SNEAKPEEK_MAX_FETCH_BYTES", default_value_t = RuntimeSettings::default().max_fetch_bytes, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_fetch_bytes: u64,
    /// Seconds a job may run when its scraper sets no `timeout_seconds`.
    #[arg(long, env = "SNEAKPEEK_JOB_TIMEOUT_SECONDS", default_value_t = RuntimeSettings::default().default_job_timeout_seconds, value_parser = clap::value_parser!(u64).range(1..))]
    pub job_timeout_seconds: u64,
    /// The retry policy of jobs whose scraper sets no `retry`, as JSON, e.g.
    /// `{"max_attempts":3,"backoff":"exponential","delay_seconds":60,"max_delay_seconds":3600,"jitter_percent":10,"retry_on":["dead","timeout"]}`.
    /// Default: a lost worker's job is tried 3 times in all; see docs/api.md.
    #[arg(long, env = "SNEAKPEEK_DEFAULT_RETRY", value_parser = parse_retry_policy)]
    pub default_retry: Option<RetryPolicy>,
}

/// Which parts of the platform this replica runs. Any number of replicas may share one
/// PostgreSQL database; one of those running a scheduler leads at a time.
#[derive(Debug, Clone, Args)]
pub struct Components {
    /// Do not serve the UI and the API (a worker- or scheduler-only replica).
    #[arg(long, env = "SNEAKPEEK_NO_WEB", default_value_t = false)]
    pub no_web: bool,
    /// Do not run a scheduler in this replica.
    #[arg(long, env = "SNEAKPEEK_NO_SCHEDULER", default_value_t = false)]
    pub no_scheduler: bool,
    /// Do not run a worker in this replica.
    #[arg(long, env = "SNEAKPEEK_NO_WORKER", default_value_t = false)]
    pub no_worker: bool,
}

/// How jobs are run and looked after.
#[derive(Debug, Clone, Args)]
pub struct JobSettings {
    /// Jobs one worker runs at once.
    #[arg(long, env = "SNEAKPEEK_WORKER_CONCURRENCY", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub worker_concurrency: u32,
    /// With a backlog, jobs a worker claims beyond its free slots (0: none).
    #[arg(long, env = "SNEAKPEEK_WORKER_CLAIM_AHEAD", default_value_t = 50)]
    pub worker_claim_ahead: u32,
    /// Seconds between heartbeats of a running job.
    #[arg(long, env = "SNEAKPEEK_HEARTBEAT_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_seconds: u64,
    /// Seconds without heartbeat after which a started job is marked dead.
    #[arg(long, env = "SNEAKPEEK_DEAD_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub dead_timeout_seconds: u64,
    /// Finished jobs kept per scraper; older ones are pruned.
    #[arg(long, env = "SNEAKPEEK_KEEP_JOBS", default_value_t = 100)]
    pub keep_jobs: usize,
    /// Seconds the scheduler lease is advertised for (renewed every second).
    #[arg(long, env = "SNEAKPEEK_LEASE_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..))]
    pub lease_seconds: u64,
    /// Seconds running jobs get to finish on shutdown before they are failed.
    #[arg(long, env = "SNEAKPEEK_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that must never be printed: the API token, or a database URL that may hold a
/// password. Its `Debug` shows only that it is set, so no log line or error that prints the
/// settings can leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret(value.to_owned()))
    }
}

impl Settings {
    /// Settings with every default (and the `SNEAKPEEK_*` / `DATABASE_URL` environment).
    pub fn defaults() -> Self {
        Settings::parse_from(["sneakpeek"])
    }

    /// Checks what clap cannot: relations between settings.
    pub fn validate(&self) -> Result<(), String> {
        if self
            .api_token
            .as_ref()
            .is_some_and(|token| token.expose().trim().len() < 8)
        {
            return Err(
                "--api-token / SNEAKPEEK_API_TOKEN must be at least 8 characters".to_owned(),
            );
        }
        for origin in &self.cors_allow_origin {
            if origin.parse::<axum::http::HeaderValue>().is_err()
                || !(origin.starts_with("http://") || origin.starts_with("https://"))
            {
                return Err(format!(
                    "--cors-allow-origin: {origin:?} is not an origin like https://example.com"
                ));
            }
        }
        if self.jobs.dead_timeout_seconds <= self.jobs.heartbeat_seconds {
            return Err(format!(
                "--dead-timeout-seconds ({}) must be longer than --heartbeat-seconds ({}), or every running job would be declared dead",
                self.jobs.dead_timeout_seconds, self.jobs.heartbeat_seconds
            ));
        }
        Ok(())
    }

    /// The scraping runtime's settings: the global middleware settings and [`ScrapingSettings`].
    pub fn runtime(&self) -> RuntimeSettings {
        let scraping = &self.scraping;
        RuntimeSettings {
            middleware: self.middleware.clone(),
            egress: scraping.egress_allow.iter().cloned().collect(),
            max_fetch_timeout: Duration::from_secs(scraping.max_fetch_timeout_seconds),
            max_fetch_bytes: scraping.max_fetch_bytes,
            default_job_timeout_seconds: scraping.job_timeout_seconds,
            default_retry: scraping.default_retry.clone().unwrap_or_default(),
        }
    }

    pub fn scheduler(&self) -> Option<SchedulerSettings> {
        (!self.components.no_scheduler).then(|| SchedulerSettings {
            lease_duration: Duration::from_secs(self.jobs.lease_seconds),
            dead_timeout: Duration::from_secs(self.jobs.dead_timeout_seconds),
            keep_jobs_per_scraper: self.jobs.keep_jobs,
            ..SchedulerSettings::default()
        })
    }

    pub fn worker(&self) -> Option<WorkerSettings> {
        (!self.components.no_worker).then(|| WorkerSettings {
            max_concurrency: self.jobs.worker_concurrency as usize,
            claim_ahead: self.jobs.worker_claim_ahead as usize,
            heartbeat_interval: Duration::from_secs(self.jobs.heartbeat_seconds),
            shutdown_grace: Duration::from_secs(self.jobs.shutdown_grace_seconds),
            ..WorkerSettings::default()
        })
    }
}

/// Reads a scrapers file: a JSON or YAML list of scrapers (YAML unless it ends in `.json`).
pub fn read_scrapers_file(
    path: &std::path::Path,
) -> Result<Vec<engine::model::Scraper>, StartupError> {
    let text = std::fs::read_to_string(path).map_err(|source| StartupError::ReadScrapersFile {
        path: path.to_owned(),
        source,
    })?;
    let parsed = if path
        .extension()
        .is_some_and(|extension| extension == "json")
    {
        serde_json::from_str(&text).map_err(|error| error.to_string())
    } else {
        serde_yaml_ng::from_str(&text).map_err(|error| error.to_string())
    };
    parsed.map_err(|message| StartupError::ParseScrapersFile {
        path: path.to_owned(),
        message,
    })
}

fn parse_middleware(text: &str) -> Result<MiddlewareSettings, String> {
    let settings: MiddlewareSettings =
        serde_json::from_str(text).map_err(|error| error.to_string())?;
    settings.validate().map_err(|error| error.to_string())?;
    Ok(settings)
}

fn parse_retry_policy(text: &str) -> Result<RetryPolicy, String> {
    let policy: RetryPolicy = serde_json::from_str(text).map_err(|error| error.to_string())?;
    match policy.problems(&[]).as_slice() {
        [] => Ok(policy),
        problems => Err(problems
            .iter()
            .map(|problem| format!("{}: {}", problem.loc.join("."), problem.msg))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_retry_policy_is_json_checked_at_startup() {
        let settings = Settings::parse_from(["sneakpeek"]);
        assert_eq!(settings.runtime().default_retry, RetryPolicy::default());
        let policy = r#"{"max_attempts":5,"delay_seconds":10,"max_delay_seconds":60,"retry_on":["timeout"]}"#;
        let settings = Settings::parse_from(["sneakpeek", "--default-retry", policy]);
        let retry = settings.runtime().default_retry;
        assert_eq!(
            (retry.max_attempts, retry.retry_on),
            (5, vec![engine::retry::RetryReason::Timeout])
        );
        let refused = Settings::try_parse_from([
            "sneakpeek",
            "--default-retry",
            r#"{"max_attempts":0,"delay_seconds":10,"max_delay_seconds":60,"retry_on":[]}"#,
        ])
        .unwrap_err()
        .to_string();
        assert!(
            refused.contains("max_attempts: must be from 1 to 20"),
            "{refused}"
        );
    }

    #[test]
    fn printing_the_settings_shows_neither_the_token_nor_the_database_password() {
        let settings = Settings::parse_from([
            "sneakpeek",
            "--api-token",
            "token-0123456789",
            "--database-url",
            "postgres://sneakpeek:hunter2-password@db.example/sneakpeek",
        ]);
        let printed = format!("{settings:?}");
        assert!(!printed.contains("token-0123456789"), "{printed}");
        assert!(!printed.contains("hunter2-password"), "{printed}");
        assert_eq!(
            settings.api_token.as_ref().map(Secret::expose),
            Some("token-0123456789")
        );
    }
}

//! The server's configuration: one typed struct, read from CLI flags or their environment
//! variables, with the defaults `sneakpeek --help` shows.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(name = "sneakpeek", version, about = "Sneakpeek: a self-hosted platform for running web scrapers")]
pub struct Settings {
    /// Address the UI and API listen on.
    #[arg(long, env = "SNEAKPEEK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// PostgreSQL URL. Without it everything is kept in memory (and lost at exit).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Refuse every change to the scrapers list (create, update, delete).
    #[arg(long, env = "SNEAKPEEK_READ_ONLY", default_value_t = false)]
    pub read_only: bool,

    /// Log level filter, e.g. `info` or `sneakpeek=debug,info`.
    #[arg(long, env = "SNEAKPEEK_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "SNEAKPEEK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Settings {
    /// Settings with every default, for embedding and tests.
    pub fn defaults() -> Self {
        Settings::parse_from(["sneakpeek"])
    }
}

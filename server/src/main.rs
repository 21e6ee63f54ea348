//! `sneakpeek`: the server binary with the built-in handlers. Without a subcommand it serves;
//! `sneakpeek run-once …` runs one scraper once locally (see [`local_runner`]).

mod local_runner;

use clap::{Parser, Subcommand};
use server::settings::LogFormat;
use server::{Server, Settings};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sneakpeek",
    version,
    about = "Sneakpeek: a self-hosted platform for running web scrapers"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scraper once, without a server; print its log and result.
    RunOnce(local_runner::RunOnce),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Cli { settings, command } = Cli::parse();
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|error| {
        eprintln!("invalid --log / SNEAKPEEK_LOG {:?}: {error}", settings.log);
        std::process::exit(2);
    });
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match settings.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    if let Some(Command::RunOnce(arguments)) = command {
        let handlers = engine::scraper::builtin_handlers();
        return local_runner::run_once(&handlers, settings.runtime(), arguments).await;
    }

    let server = match Server::builder().settings(settings).build().await {
        Ok(server) => server,
        Err(error) => {
            tracing::error!("could not start: {}", engine::error::report(&error));
            return std::process::ExitCode::FAILURE;
        }
    };
    match server.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("server failed: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

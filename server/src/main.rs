//! `sneakpeek`: the server binary with the built-in handlers.

use clap::Parser;
use server::settings::LogFormat;
use server::{Server, Settings};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = Settings::parse();
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|error| {
        eprintln!("invalid --log / SNEAKPEEK_LOG {:?}: {error}", settings.log);
        std::process::exit(2);
    });
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match settings.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

    let server = match Server::builder().settings(settings).build().await {
        Ok(server) => server,
        Err(error) => {
            tracing::error!("could not start: {error:?}");
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

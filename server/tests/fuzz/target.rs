//! The server under test: a real `sneakpeek` server, built from command-line flags as the
//! binary builds it, serving on 127.0.0.1:0 in this process, in memory or on a fresh
//! PostgreSQL database. Unlike the other tests' helper it keeps the serving task, to tell
//! whether the server died, and the engine, to look at the storage behind the API.

use clap::Parser;
use engine::testing::TestDatabase;
use engine::Engine;
use server::{Server, Settings};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Postgres => "postgres",
        }
    }
}

pub struct Target {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub port: u16,
    pub engine: Engine,
    /// The largest body the server accepts (`--max-body-bytes`).
    pub max_body_bytes: usize,
    serving: JoinHandle<std::io::Result<()>>,
    stop: oneshot::Sender<()>,
    database: Option<TestDatabase>,
}

impl Target {
    pub async fn start(backend: Backend, flags: &[&str]) -> Target {
        let database = match backend {
            Backend::Memory => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let mut arguments = vec!["sneakpeek".to_owned()];
        if let Some(database) = &database {
            arguments.extend(["--database-url".to_owned(), database.url.clone()]);
        }
        arguments.extend(flags.iter().map(|flag| (*flag).to_owned()));
        let settings = Settings::try_parse_from(arguments).expect("valid fuzz flags");
        let max_body_bytes = settings.max_body_bytes;
        let server = Server::builder()
            .settings(settings)
            .build()
            .await
            .expect("the server builds");
        let engine = server.engine().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Target {
            address: format!("http://127.0.0.1:{port}"),
            port,
            engine,
            max_body_bytes,
            serving,
            stop,
            database,
        }
    }

    /// Whether the serving task still runs: it ends only when asked to, or by a fault.
    pub fn is_serving(&self) -> bool {
        !self.serving.is_finished()
    }

    /// Shuts the server down as SIGTERM would and waits for it to finish; `Err` says how it
    /// ended otherwise. The database is dropped afterwards.
    pub async fn stop(self, within: std::time::Duration) -> Result<(), String> {
        let _ = self.stop.send(());
        let outcome = match tokio::time::timeout(within, self.serving).await {
            Err(_) => Err(format!("the server did not stop within {within:?}")),
            Ok(Err(join)) => Err(format!("the serving task failed: {join}")),
            Ok(Ok(Err(io))) => Err(format!("the server stopped with an error: {io}")),
            Ok(Ok(Ok(()))) => Ok(()),
        };
        drop(self.database);
        outcome
    }
}

//! Starting a real server for a test: on port 0, in memory or on a fresh PostgreSQL database,
//! with the flags the test gives, stopped when the value is dropped.

#![allow(dead_code)] // each test binary uses a different part of this module

use clap::Parser;
use engine::testing::TestDatabase;
use serde_json::{json, Value};
use server::{Server, Settings};
use tokio::net::TcpListener;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
    _database: Option<TestDatabase>,
}

/// Which storage a test server runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Memory,
    Postgres,
}

impl TestApp {
    /// A server in memory with these command-line flags.
    pub async fn spawn(flags: &[&str]) -> TestApp {
        Self::spawn_on(Backend::Memory, flags).await
    }

    pub async fn spawn_on(backend: Backend, flags: &[&str]) -> TestApp {
        let database = match backend {
            Backend::Memory => None,
            Backend::Postgres => Some(TestDatabase::create().await),
        };
        let mut arguments = vec!["sneakpeek".to_owned()];
        if let Some(database) = &database {
            arguments.extend(["--database-url".to_owned(), database.url.clone()]);
        }
        arguments.extend(flags.iter().map(|flag| (*flag).to_owned()));
        let settings = Settings::try_parse_from(arguments).expect("valid test flags");
        let server = Server::builder()
            .settings(settings)
            .build()
            .await
            .expect("the server builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp {
            address,
            client,
            _stop: stop,
            _database: database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Posts a raw body to the JsonRPC endpoint; returns the status and the body text.
    pub async fn post_raw(&self, body: &str) -> (u16, String) {
        let response = self
            .client
            .post(self.url("/api/v1/jsonrpc"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Calls a method and returns the whole reply envelope.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let (status, body) = self
            .post_raw(
                &json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params}).to_string(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|error| panic!("not JSON ({error}): {body}"))
    }

    /// Calls a method that must succeed and returns its result.
    pub async fn result(&self, method: &str, params: Value) -> Value {
        let reply = self.call(method, params).await;
        assert!(reply.get("error").is_none(), "{method} failed: {reply}");
        reply["result"].clone()
    }

    /// Calls a method that must fail and returns its error object.
    pub async fn error(&self, method: &str, params: Value) -> Value {
        let reply = self.call(method, params).await;
        assert!(
            reply.get("result").is_none(),
            "{method} should have failed: {reply}"
        );
        reply["error"].clone()
    }
}

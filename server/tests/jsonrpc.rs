//! The JsonRPC endpoint over real HTTP: a server on port 0, called with reqwest.

use serde_json::{json, Value};
use server::{Server, Settings};
use tokio::net::TcpListener;

struct TestApp {
    address: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestApp {
    async fn spawn() -> TestApp {
        let server = Server::builder().settings(Settings::defaults()).build().await.expect("server builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        TestApp { address, client: reqwest::Client::new(), _stop: stop }
    }

    async fn post_raw(&self, body: &str) -> (u16, String) {
        let response = self.client.post(format!("{}/api/v1/jsonrpc", self.address)).body(body.to_owned()).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        let (status, body) = self.post_raw(&json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params}).to_string()).await;
        assert_eq!(status, 200);
        serde_json::from_str(&body).unwrap()
    }
}

#[tokio::test]
async fn get_schedules_answers_exactly_as_the_original() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post_raw(r#"{"jsonrpc":"2.0","id":0,"method":"get_schedules","params":{}}"#).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"jsonrpc":"2.0","result":["inactive","every_second","every_minute","every_hour","every_day","every_week","every_month","crontab"],"id":0}"#
    );
}

#[tokio::test]
async fn get_priorities_answers_exactly_as_the_original() {
    let app = TestApp::spawn().await;
    let (_, body) = app.post_raw(r#"{"jsonrpc":"2.0","id":0,"method":"get_priorities","params":{}}"#).await;
    assert_eq!(body, r#"{"jsonrpc":"2.0","result":[{"name":"UTMOST","value":0},{"name":"HIGH","value":1},{"name":"NORMAL","value":2}],"id":0}"#);
}

#[tokio::test]
async fn no_arg_methods_accept_absent_or_empty_list_params() {
    let app = TestApp::spawn().await;
    let (_, body) = app.post_raw(r#"{"jsonrpc":"2.0","id":7,"method":"is_read_only"}"#).await;
    assert_eq!(body, r#"{"jsonrpc":"2.0","result":false,"id":7}"#);
    let reply = app.call("get_scrapers", json!([])).await;
    assert_eq!(reply["result"], json!([]));
}

#[tokio::test]
async fn bad_json_is_a_parse_error_with_a_null_id() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post_raw("{not json").await;
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["error"]["code"], -32700);
    assert_eq!(reply["id"], Value::Null);
}

#[tokio::test]
async fn unknown_methods_and_bad_envelopes_get_their_codes() {
    let app = TestApp::spawn().await;
    assert_eq!(app.call("no_such_method", json!({})).await["error"]["code"], -32601);
    let (_, body) = app.post_raw(r#"{"jsonrpc":"1.0","id":1,"method":"get_schedules"}"#).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], -32600);
}

#[tokio::test]
async fn missing_and_mistyped_params_are_reported_by_path() {
    let app = TestApp::spawn().await;
    let reply = app.call("enqueue_scraper", json!({"scraper_id": 1, "priority": "HIGH"})).await;
    assert_eq!(reply["error"]["code"], -32602);
    assert_eq!(reply["error"]["data"]["errors"][0]["loc"], json!(["priority"]));
    assert_eq!(reply["error"]["data"]["errors"][0]["msg"], "value is not a valid enumeration member; permitted: 0, 1, 2");
    let reply = app.call("create_scraper", json!({"scraper": {"schedule": "inactive", "handler": "x"}})).await;
    assert_eq!(reply["error"]["data"]["errors"][0]["loc"], json!(["scraper", "name"]));
    assert_eq!(reply["error"]["data"]["errors"][0]["msg"], "field required");
}

#[tokio::test]
async fn an_unknown_scraper_is_error_5000_with_its_id() {
    let app = TestApp::spawn().await;
    let reply = app.call("get_scraper", json!({"id": 12345})).await;
    assert_eq!(reply, json!({"jsonrpc":"2.0","error":{"code":5000,"message":"Scraper not found","data":12345},"id":0}));
}

#[tokio::test]
async fn batches_answer_every_call_and_notifications_get_no_reply() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post_raw(r#"{"jsonrpc":"2.0","method":"get_schedules"}"#).await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (_, body) = app
        .post_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"is_read_only"},{"jsonrpc":"2.0","method":"is_read_only"},{"jsonrpc":"2.0","id":2,"method":"nope"}]"#)
        .await;
    let replies: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(replies.as_array().unwrap().len(), 2);
    assert_eq!(replies[0]["result"], json!(false));
    assert_eq!(replies[1]["error"]["code"], -32601);
}

#[tokio::test]
async fn each_method_also_answers_at_its_own_path() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/api/v1/jsonrpc/get_schedules", app.address))
        .body(r#"{"jsonrpc":"2.0","id":0,"method":"get_schedules","params":{}}"#)
        .send()
        .await
        .unwrap();
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["result"][0], "inactive");
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn().await;
    let response = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn the_scrapers_page_is_rendered_on_the_server() {
    let app = TestApp::spawn().await;
    let response = app.client.get(format!("{}/", app.address)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("<h1>Scrapers</h1>"), "{html}");
    assert!(html.contains("No scrapers yet"), "{html}");
}

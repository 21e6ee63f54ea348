//! The JsonRPC 2.0 API at `POST /api/v1/jsonrpc`, compatible with Sneakpeek v0.1.7 clients.
//!
//! Named params, HTTP 200 for every JsonRPC outcome, batches, notifications (no `id`: no
//! response). Each method is also served at `POST /api/v1/jsonrpc/<method>`. Methods are thin:
//! they parse params and call the [`Engine`]; errors map to the codes in `engine::error`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::model::{Scraper, ScraperConfig, ScraperId, ScraperJobId, ScraperJobPriority};
use engine::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::AppState;

/// A JsonRPC error object.
#[derive(Debug, Serialize)]
pub struct RpcError {
    code: i64,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: &str) -> Self {
        RpcError { code, message: message.to_owned(), data: None }
    }

    fn parse_error() -> Self {
        Self::new(-32700, "Parse error")
    }

    fn invalid_request(reason: &str) -> Self {
        RpcError { data: Some(json!({ "errors": [{ "loc": [], "msg": reason, "type": "value_error" }] })), ..Self::new(-32600, "Invalid Request") }
    }

    fn method_not_found(method: &str) -> Self {
        RpcError { data: Some(json!({ "method": method })), ..Self::new(-32601, "Method not found") }
    }

    /// `-32602` with one entry per bad field, as pydantic reports them: `loc`, `msg`, `type`.
    fn invalid_params(errors: Vec<Value>) -> Self {
        RpcError { data: Some(json!({ "errors": errors })), ..Self::new(-32602, "Invalid params") }
    }
}

impl From<engine::Error> for RpcError {
    fn from(error: engine::Error) -> Self {
        if let engine::Error::Internal(detail) | engine::Error::Unavailable(detail) = &error {
            // The detail may name tables or hosts: it goes to the log, not to the client.
            tracing::error!(%detail, "internal error in a JsonRPC method");
        }
        RpcError { code: error.code(), message: error.to_string(), data: error.data() }
    }
}

#[derive(Serialize)]
struct Success<'a> {
    jsonrpc: &'static str,
    result: Value,
    id: &'a Value,
}

#[derive(Serialize)]
struct Failure<'a> {
    jsonrpc: &'static str,
    error: RpcError,
    id: &'a Value,
}

fn respond(id: &Value, outcome: Result<Value, RpcError>) -> Value {
    let response = match outcome {
        Ok(result) => serde_json::to_value(Success { jsonrpc: "2.0", result, id }),
        Err(error) => serde_json::to_value(Failure { jsonrpc: "2.0", error, id }),
    };
    response.expect("responses are plain JSON")
}

/// `POST /api/v1/jsonrpc` (and `/api/v1/jsonrpc/<method>`).
pub async fn endpoint(State(state): State<AppState>, body: Bytes) -> Response {
    let reply = match serde_json::from_slice::<Value>(&body) {
        Err(_) => Some(respond(&Value::Null, Err(RpcError::parse_error()))),
        Ok(Value::Array(calls)) if calls.is_empty() => Some(respond(&Value::Null, Err(RpcError::invalid_request("empty batch")))),
        Ok(Value::Array(calls)) => {
            let mut replies = Vec::with_capacity(calls.len());
            for call in calls {
                replies.extend(handle_call(&state.engine, call).await);
            }
            (!replies.is_empty()).then_some(Value::Array(replies))
        }
        Ok(call) => handle_call(&state.engine, call).await,
    };
    match reply {
        Some(reply) => ([(header::CONTENT_TYPE, "application/json")], reply.to_string()).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// One call of a request or batch; `None` for a notification.
async fn handle_call(engine: &Engine, call: Value) -> Option<Value> {
    let Value::Object(mut call) = call else {
        return Some(respond(&Value::Null, Err(RpcError::invalid_request("a call must be an object"))));
    };
    let id = call.remove("id");
    let reply_id = id.clone().unwrap_or(Value::Null);
    if !matches!(reply_id, Value::Null | Value::Number(_) | Value::String(_)) {
        return Some(respond(&Value::Null, Err(RpcError::invalid_request("id must be a number, a string or null"))));
    }
    if call.get("jsonrpc") != Some(&json!("2.0")) {
        return Some(respond(&reply_id, Err(RpcError::invalid_request("jsonrpc must be \"2.0\""))));
    }
    let Some(Value::String(method)) = call.remove("method") else {
        return Some(respond(&reply_id, Err(RpcError::invalid_request("method must be a string"))));
    };
    let started = std::time::Instant::now();
    let outcome = dispatch(engine, &method, call.remove("params")).await;
    // Unknown method names come from clients: keep them out of the metric labels.
    let label = if matches!(&outcome, Err(error) if error.code == -32601) { "unknown" } else { method.as_str() };
    crate::metrics::record_invocation("api", label, started, outcome.is_ok());
    id.map(|_| respond(&reply_id, outcome))
}

/// Params of a method with none: absent, `{}` and `[]` are all fine.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Deserialize)]
struct IdParams {
    id: ScraperId,
}

#[derive(Deserialize)]
struct ScraperParams {
    scraper: Scraper,
}

#[derive(Deserialize)]
struct SearchParams {
    name_filter: Option<String>,
    max_items: Option<i64>,
    last_id: Option<i64>,
}

#[derive(Deserialize)]
struct EnqueueParams {
    scraper_id: ScraperId,
    priority: ScraperJobPriority,
}

#[derive(Deserialize)]
struct ScraperJobsParams {
    scraper_id: ScraperId,
}

#[derive(Deserialize)]
struct ScraperJobParams {
    scraper_id: ScraperId,
    job_id: ScraperJobId,
}

#[derive(Deserialize)]
struct LogParams {
    scraper_id: ScraperId,
    job_id: ScraperJobId,
    /// Only lines after this line id (the last one the caller has).
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    max_lines: Option<usize>,
}

#[derive(Deserialize)]
struct EphemeralParams {
    handler: String,
    #[serde(default)]
    config: ScraperConfig,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    priority: ScraperJobPriority,
}

/// Parses named params, reporting each problem with its path like the original does.
fn params<T: DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    let params = match params {
        None | Some(Value::Null) => json!({}),
        Some(Value::Array(list)) if list.is_empty() => json!({}),
        Some(Value::Array(_)) => {
            return Err(RpcError::invalid_params(vec![json!({ "loc": [], "msg": "params must be an object of named params", "type": "type_error.dict" })]))
        }
        Some(other) => other,
    };
    serde_path_to_error::deserialize::<_, T>(params).map_err(|error| {
        let mut loc: Vec<Value> = error
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(json!(key)),
                serde_path_to_error::Segment::Seq { index } => Some(json!(index)),
                _ => None,
            })
            .collect();
        let message = error.inner().to_string();
        // serde reports a missing field at its parent; the original points at the field.
        let (msg, kind) = match message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
            Some(field) => {
                loc.push(json!(field));
                ("field required".to_owned(), "value_error.missing")
            }
            None => (message, "type_error"),
        };
        RpcError::invalid_params(vec![json!({ "loc": loc, "msg": msg, "type": kind })])
    })
}

fn to_value(value: impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|error| engine::Error::internal(error).into())
}

/// Every method by name.
async fn dispatch(engine: &Engine, method: &str, raw: Option<Value>) -> Result<Value, RpcError> {
    match method {
        "get_schedules" => {
            params::<NoParams>(raw)?;
            to_value(engine.get_schedules())
        }
        "get_priorities" => {
            params::<NoParams>(raw)?;
            to_value(engine.get_priorities())
        }
        "get_scraper_handlers" => {
            params::<NoParams>(raw)?;
            to_value(engine.get_scraper_handlers())
        }
        "is_read_only" => {
            params::<NoParams>(raw)?;
            to_value(engine.is_read_only())
        }
        "get_scrapers" => {
            params::<NoParams>(raw)?;
            to_value(engine.get_scrapers().await?)
        }
        "search_scrapers" => {
            let SearchParams { name_filter, max_items, last_id } = params(raw)?;
            to_value(engine.search_scrapers(name_filter.as_deref(), max_items, last_id).await?)
        }
        "get_scraper" => {
            let IdParams { id } = params(raw)?;
            to_value(engine.get_scraper(id).await?)
        }
        "create_scraper" => {
            let ScraperParams { scraper } = params(raw)?;
            to_value(engine.create_scraper(scraper).await?)
        }
        "update_scraper" => {
            let ScraperParams { scraper } = params(raw)?;
            to_value(engine.update_scraper(scraper).await?)
        }
        "delete_scraper" => {
            let IdParams { id } = params(raw)?;
            to_value(engine.delete_scraper(id).await?)
        }
        "enqueue_scraper" => {
            let EnqueueParams { scraper_id, priority } = params(raw)?;
            to_value(engine.enqueue_scraper(scraper_id, priority).await?)
        }
        "get_scraper_jobs" => {
            let ScraperJobsParams { scraper_id } = params(raw)?;
            to_value(engine.get_scraper_jobs(scraper_id).await?)
        }
        "get_scraper_job" => {
            let ScraperJobParams { scraper_id, job_id } = params(raw)?;
            to_value(engine.get_scraper_job(scraper_id, job_id).await?)
        }
        "kill_scraper_job" => {
            let ScraperJobParams { scraper_id, job_id } = params(raw)?;
            to_value(engine.kill_scraper_job(scraper_id, job_id).await?)
        }
        "get_scraper_job_logs" => {
            let LogParams { scraper_id, job_id, after, max_lines } = params(raw)?;
            to_value(engine.get_scraper_job_logs(scraper_id, job_id, after, max_lines).await?)
        }
        "run_ephemeral" => {
            let EphemeralParams { handler, config, state, priority } = params(raw)?;
            to_value(engine.run_ephemeral(handler, config, state, priority).await?)
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

//! The JsonRPC 2.0 API at `POST /api/v1/jsonrpc`, compatible with Sneakpeek v0.1.7 clients.
//!
//! Named params, HTTP 200 for every JsonRPC outcome, batches, notifications (no `id`: no
//! response). Each method is also served at `POST /api/v1/jsonrpc/<method>`. This module is
//! the envelope: it reads calls, decodes their params and writes replies. The methods are in
//! [`methods`], each declared once; they are thin: they call the [`Engine`], and its errors
//! map to the codes in `engine::error`.
//!
//! What one request can cost is bounded: the body by `--max-body-bytes`, a batch to
//! [`MAX_BATCH_CALLS`] calls, the replies of a batch to about [`MAX_BATCH_REPLY_BYTES`] (each
//! reply is written out as soon as its call is done, and once they reach the limit the calls
//! left are not run), and the strings a client sends and gets back to fixed lengths.

pub mod methods;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

pub use methods::METHOD_NAMES;

use crate::AppState;
use methods::Method;

/// The most calls one batch may hold; a larger batch gets one -32600 error.
pub const MAX_BATCH_CALLS: usize = 100;
/// Once the replies of a batch add up to this many bytes, the calls after are not run and get
/// [`RpcError::batch_reply_too_large`]. A single call's reply is as large as its result.
pub const MAX_BATCH_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// The longest method name, in characters; no method has a name near it.
pub const MAX_METHOD_CHARS: usize = 64;
/// The longest string `id`, in characters: it is echoed in the reply.
pub const MAX_ID_CHARS: usize = 256;

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
        RpcError {
            code,
            message: message.to_owned(),
            data: None,
        }
    }

    fn parse_error() -> Self {
        Self::new(-32700, "Parse error")
    }

    fn invalid_request(reason: &str) -> Self {
        RpcError {
            data: Some(json!({ "errors": [{ "loc": [], "msg": reason, "type": "value_error" }] })),
            ..Self::new(-32600, "Invalid Request")
        }
    }

    fn method_not_found(method: &str) -> Self {
        RpcError {
            data: Some(json!({ "method": method })),
            ..Self::new(-32601, "Method not found")
        }
    }

    /// `-32602` with one entry per bad field, as pydantic reports them: `loc`, `msg`, `type`.
    fn invalid_params(errors: Vec<Value>) -> Self {
        RpcError {
            data: Some(json!({ "errors": errors })),
            ..Self::new(-32602, "Invalid params")
        }
    }

    /// A call of a batch left unrun: the replies before it reached [`MAX_BATCH_REPLY_BYTES`].
    fn batch_reply_too_large() -> Self {
        RpcError {
            data: Some(json!({ "limit": MAX_BATCH_REPLY_BYTES })),
            ..Self::new(-32002, "Batch reply too large")
        }
    }
}

impl From<engine::Error> for RpcError {
    fn from(error: engine::Error) -> Self {
        if let engine::Error::Internal(_) | engine::Error::Unavailable(_) = &error {
            // The cause may name tables or hosts: it goes to the log, not to the client.
            tracing::error!(error = %error.report(), "a JsonRPC method failed");
        }
        RpcError {
            code: error.code(),
            message: error.to_string(),
            data: error.data(),
        }
    }
}

#[derive(Serialize)]
struct Failure<'a> {
    jsonrpc: &'static str,
    error: RpcError,
    id: &'a Value,
}

/// The reply to a call, as JSON text. `outcome` holds the result already as JSON text, so a
/// large result is serialized once, straight from the engine's types.
fn respond(id: &Value, outcome: Result<String, RpcError>) -> String {
    match outcome {
        // The same text serde would write for `{"jsonrpc", "result", "id"}`, in that order.
        Ok(result) => format!(r#"{{"jsonrpc":"2.0","result":{result},"id":{id}}}"#),
        Err(error) => serde_json::to_string(&Failure {
            jsonrpc: "2.0",
            error,
            id,
        })
        .expect("errors are plain JSON"),
    }
}

/// `POST /api/v1/jsonrpc` (and `/api/v1/jsonrpc/<method>`).
pub async fn endpoint(State(state): State<AppState>, body: Bytes) -> Response {
    let reply = match serde_json::from_slice::<Value>(&body) {
        Err(_) => Some(respond(&Value::Null, Err(RpcError::parse_error()))),
        Ok(Value::Array(calls)) if calls.is_empty() => Some(respond(
            &Value::Null,
            Err(RpcError::invalid_request("empty batch")),
        )),
        Ok(Value::Array(calls)) if calls.len() > MAX_BATCH_CALLS => Some(respond(
            &Value::Null,
            Err(RpcError::invalid_request(&format!(
                "a batch may hold at most {MAX_BATCH_CALLS} calls; this one holds {}",
                calls.len()
            ))),
        )),
        Ok(Value::Array(calls)) => batch(&state.engine, calls).await,
        Ok(call) => handle_call(&state.engine, call).await,
    };
    match reply {
        Some(reply) => ([(header::CONTENT_TYPE, "application/json")], reply).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// Runs the calls of a batch in order, writing each reply into the batch's reply as soon as
/// it is done; once that reaches [`MAX_BATCH_REPLY_BYTES`], the calls left are not run.
async fn batch(engine: &Engine, calls: Vec<Value>) -> Option<String> {
    let mut replies = String::from("[");
    let mut any = false;
    for call in calls {
        let reply = if replies.len() < MAX_BATCH_REPLY_BYTES {
            handle_call(engine, call).await
        } else {
            not_run(call)
        };
        if let Some(reply) = reply {
            if any {
                replies.push(',');
            }
            replies.push_str(&reply);
            any = true;
        }
    }
    replies.push(']');
    any.then_some(replies)
}

/// The reply to a call left unrun at the end of a large batch (none to a notification).
fn not_run(call: Value) -> Option<String> {
    let Value::Object(mut call) = call else {
        return Some(not_an_object());
    };
    match call_id(&mut call) {
        Ok(None) => None,
        Ok(Some(id)) => Some(respond(&id, Err(RpcError::batch_reply_too_large()))),
        Err(error) => Some(respond(&Value::Null, Err(error))),
    }
}

fn not_an_object() -> String {
    respond(
        &Value::Null,
        Err(RpcError::invalid_request("a call must be an object")),
    )
}

/// The call's `id`: `None` for a notification.
fn call_id(call: &mut serde_json::Map<String, Value>) -> Result<Option<Value>, RpcError> {
    match call.remove("id") {
        Some(Value::String(id)) if id.chars().count() > MAX_ID_CHARS => Err(
            RpcError::invalid_request(&format!("id must be at most {MAX_ID_CHARS} characters")),
        ),
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Ok(Some(id)),
        Some(_) => Err(RpcError::invalid_request(
            "id must be a number, a string or null",
        )),
        None => Ok(None),
    }
}

/// One call of a request or batch; `None` for a notification.
async fn handle_call(engine: &Engine, call: Value) -> Option<String> {
    let Value::Object(mut call) = call else {
        return Some(not_an_object());
    };
    let id = match call_id(&mut call) {
        Ok(id) => id,
        Err(error) => return Some(respond(&Value::Null, Err(error))),
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if call.get("jsonrpc") != Some(&json!("2.0")) {
        return Some(respond(
            &reply_id,
            Err(RpcError::invalid_request("jsonrpc must be \"2.0\"")),
        ));
    }
    let Some(Value::String(method)) = call.remove("method") else {
        return Some(respond(
            &reply_id,
            Err(RpcError::invalid_request("method must be a string")),
        ));
    };
    if method.chars().count() > MAX_METHOD_CHARS {
        return Some(respond(
            &reply_id,
            Err(RpcError::invalid_request(&format!(
                "method must be at most {MAX_METHOD_CHARS} characters"
            ))),
        ));
    }
    let started = std::time::Instant::now();
    let outcome = methods::dispatch(engine, &method, call.remove("params")).await;
    // Unknown method names come from clients: keep them out of the metric labels.
    let label = if matches!(&outcome, Err(error) if error.code == -32601) {
        "unknown"
    } else {
        method.as_str()
    };
    crate::metrics::record_invocation("api", label, started, outcome.is_ok());
    id.map(|_| respond(&reply_id, outcome))
}

/// Parses named params, reporting each problem with its path like the original does.
fn decode_params<T: DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    let params = match params {
        None | Some(Value::Null) => json!({}),
        Some(Value::Array(list)) if list.is_empty() => json!({}),
        Some(Value::Array(_)) => {
            return Err(RpcError::invalid_params(vec![
                json!({ "loc": [], "msg": "params must be an object of named params", "type": "type_error.dict" }),
            ]))
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
        let (msg, kind) = match message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(field) => {
                loc.push(json!(field));
                ("field required".to_owned(), "value_error.missing")
            }
            None => (message, "type_error"),
        };
        RpcError::invalid_params(vec![json!({ "loc": loc, "msg": msg, "type": kind })])
    })
}

/// Calls `M` with the params of a call, and writes its result as JSON text.
async fn run<M: Method>(engine: &Engine, params: Option<Value>) -> Result<String, RpcError> {
    let params = decode_params::<M::Params>(params)?;
    let result = M::call(engine, params).await?;
    serde_json::to_string(&result).map_err(|error| engine::Error::internal(error).into())
}

//! The built-in `script` handler: a scraper written in [Rhai](https://rhai.rs), a sandboxed
//! embedded language, so a scraper can be written in the UI without building Rust.
//!
//! `config.params`: `source` (the script) and optional `args` (an object). The script sees
//! `params` and `args` as constants and calls the context through functions (HTTP verbs,
//! `select`, `regex`, `state`/`set_state`, `log`; see docs/handlers.md). Its value is the
//! job's result: a string as it is, anything else JSON-encoded.
//!
//! The sandbox: no file system, no modules, network only through the context (so every
//! middleware applies), and limits on operations, string/array/map sizes and nesting. The
//! script runs on a blocking thread; the job's timeout or kill drops the handler's future,
//! which cancels the script's token: a call the script is blocked in (a request, say) returns
//! at once, and the script stops at its next operation, so its thread ends with the job.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map as RhaiMap, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::params::parse_params;
use super::parse;
use super::{HandlerError, LogLevel, Method, Request, Response, ScraperContext, ScraperHandler};

/// What one script run may use. The defaults let a script walk a few thousand pages and stop
/// a runaway loop within a second or two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptLimits {
    /// Rhai operations (roughly: expressions evaluated) per run.
    pub max_operations: u64,
    /// Bytes in one string, fetched pages included.
    pub max_string_size: usize,
    /// Elements in one array (default 100,000); a script building a larger one fails.
    pub max_array_size: usize,
    /// Entries in one object map (default 100,000); a script building a larger one fails.
    pub max_map_size: usize,
    /// Depth of nested function calls.
    pub max_call_levels: usize,
    /// Depth of nested expressions in the source.
    pub max_expr_depth: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            max_operations: 10_000_000,
            max_string_size: 16 * 1024 * 1024,
            max_array_size: 100_000,
            max_map_size: 100_000,
            max_call_levels: 64,
            max_expr_depth: 64,
        }
    }
}

/// The `script` handler.
#[derive(Debug, Clone, Default)]
pub struct ScriptHandler {
    limits: ScriptLimits,
}

impl ScriptHandler {
    /// A `script` handler whose runs are held to `limits` (the server registers it with
    /// [`ScriptLimits::default`]).
    pub fn new(limits: ScriptLimits) -> Self {
        ScriptHandler { limits }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptParams {
    source: String,
    #[serde(default)]
    args: Map<String, Value>,
}

/// Why a script failed, with where: what the job's result shows.
#[derive(Debug, thiserror::Error)]
enum ScriptError {
    #[error("script syntax error at line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("script error at line {line}: {message}")]
    Runtime { line: usize, message: String },
}

#[async_trait]
impl ScraperHandler for ScriptHandler {
    fn name(&self) -> &str {
        crate::model::BuiltinHandler::Script.name()
    }

    async fn run(&self, context: &ScraperContext) -> Result<String, HandlerError> {
        let params: ScriptParams = parse_params(context.params())?;
        let stopped = CancellationToken::new();
        // Dropping this future (job timeout, kill) cancels the token: the call the script
        // waits in returns, and the script checks the token at every operation.
        let _stop_on_drop = stopped.clone().drop_guard();
        let (context, limits) = (context.clone(), self.limits);
        let bridge = Bridge {
            handle: Handle::current(),
            stopped,
        };
        let result =
            tokio::task::spawn_blocking(move || execute(&params, limits, context, bridge)).await?;
        Ok(result?)
    }
}

/// How the script's thread waits for the async context: on the runtime, until the job stops.
#[derive(Clone)]
struct Bridge {
    handle: Handle,
    stopped: CancellationToken,
}

/// What a call blocked when its job stopped returns (the script ends at its next operation).
const STOPPED: &str = "the job was stopped";

impl Bridge {
    /// Runs `future` to its end, or until the job stops (then the future is dropped, which
    /// aborts a request in flight).
    fn block_on<T>(&self, future: impl Future<Output = T>) -> ScriptResult<T> {
        self.handle.block_on(async {
            tokio::select! {
                biased;
                () = self.stopped.cancelled() => Err(STOPPED.into()),
                output = future => Ok(output),
            }
        })
    }
}

/// Compiles and evaluates the script on the current (blocking) thread.
fn execute(
    params: &ScriptParams,
    limits: ScriptLimits,
    context: ScraperContext,
    bridge: Bridge,
) -> Result<String, ScriptError> {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
        .on_progress({
            let stopped = bridge.stopped.clone();
            move |_| stopped.is_cancelled().then(|| Dynamic::from(STOPPED))
        });
    register_api(&mut engine, &context, &bridge);

    let ast = engine
        .compile(&params.source)
        .map_err(|error| ScriptError::Syntax {
            line: error.1.line().unwrap_or(0),
            message: error.0.to_string(),
        })?;
    let mut scope = Scope::new();
    scope.push_constant_dynamic(
        "params",
        to_script(&Value::Object(context.params().clone())),
    );
    scope.push_constant_dynamic("args", to_script(&Value::Object(params.args.clone())));
    let value: Dynamic = engine
        .eval_ast_with_scope(&mut scope, &ast)
        .map_err(|error| runtime_error(&error, &limits))?;
    if value.is_string() {
        return Ok(value.into_string().expect("checked to be a string"));
    }
    serde_json::to_string(&value).map_err(|error| ScriptError::Runtime {
        line: 0,
        message: format!("the result cannot be JSON-encoded: {error}"),
    })
}

/// Names the innermost error (the one inside a called script function) and its line.
fn runtime_error(error: &EvalAltResult, limits: &ScriptLimits) -> ScriptError {
    let inner = error.unwrap_inner();
    let line = inner
        .position()
        .line()
        .or(error.position().line())
        .unwrap_or(0);
    let message = match inner {
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "the script exceeded its limit of {} operations",
            limits.max_operations
        ),
        EvalAltResult::ErrorTerminated(..) => {
            "the script was stopped because its job ended (timeout or kill)".to_owned()
        }
        // Values the script throws, and errors of context calls, are shown as they are.
        EvalAltResult::ErrorRuntime(value, _) => value.to_string(),
        // The line is reported apart: drop Rhai's " (line 3, position 7)" suffix.
        other => {
            let text = other.to_string();
            let position = format!(" ({})", other.position());
            text.strip_suffix(&position).unwrap_or(&text).to_owned()
        }
    };
    ScriptError::Runtime { line, message }
}

type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

/// The functions a script calls. Each one blocks this thread on the async context: the
/// script runs on a blocking thread, never on the runtime's workers.
fn register_api(engine: &mut Engine, context: &ScraperContext, bridge: &Bridge) {
    let fetch = {
        let (context, bridge) = (context.clone(), bridge.clone());
        move |request: Request| -> ScriptResult<RhaiMap> {
            bridge
                .block_on(context.request(request))?
                .map(|response| response_to_script(&response))
                .map_err(|error| error.to_string().into())
        }
    };
    for (name, method) in [
        ("get", Method::GET),
        ("delete", Method::DELETE),
        ("head", Method::HEAD),
        ("options", Method::OPTIONS),
    ] {
        let fetch = fetch.clone();
        engine.register_fn(name, move |url: &str| {
            fetch(Request::new(method.clone(), url))
        });
    }
    for (name, method) in [("post", Method::POST), ("put", Method::PUT)] {
        let fetch = fetch.clone();
        engine.register_fn(name, move |url: &str, body: Dynamic| {
            fetch(with_body(Request::new(method.clone(), url), &body)?)
        });
    }
    {
        let fetch = fetch.clone();
        engine.register_fn("request", move |options: RhaiMap| {
            fetch(request_from_script(&options)?)
        });
    }
    {
        let (context, bridge) = (context.clone(), bridge.clone());
        engine.register_fn(
            "get_all",
            move |urls: Array, max_concurrency: i64| -> ScriptResult<Array> {
                let max_concurrency = usize::try_from(max_concurrency).map_err(|_| {
                    format!("get_all: max_concurrency must be 0 (the default) or more, got {max_concurrency}")
                })?;
                let requests = urls
                    .iter()
                    .map(|url| Ok(Request::get(url.clone().into_string()?)))
                    .collect::<Result<Vec<_>, &str>>()?;
                let responses = bridge
                    .block_on(context.request_all(requests, max_concurrency))?
                    .map_err(|error| error.to_string())?;
                Ok(responses
                    .iter()
                    .map(|response| Dynamic::from_map(response_to_script(response)))
                    .collect())
            },
        );
    }
    engine.register_fn(
        "select",
        |html: &str, selector: &str| -> ScriptResult<Dynamic> {
            let elements = parse::select(html, selector).map_err(|error| error.to_string())?;
            Ok(to_script(
                &serde_json::to_value(elements).expect("elements serialize"),
            ))
        },
    );
    engine.register_fn(
        "regex",
        |text: &str, pattern: &str| -> ScriptResult<Dynamic> {
            let matches = parse::regex(text, pattern).map_err(|error| error.to_string())?;
            Ok(to_script(
                &serde_json::to_value(matches).expect("matches serialize"),
            ))
        },
    );
    {
        let context = context.clone();
        engine.register_fn("state", move || -> Dynamic {
            context.state().map_or(Dynamic::UNIT, Dynamic::from)
        });
    }
    {
        let (context, bridge) = (context.clone(), bridge.clone());
        engine.register_fn("set_state", move |state: Dynamic| -> ScriptResult<()> {
            let state = if state.is_unit() {
                None
            } else {
                Some(
                    state
                        .into_string()
                        .map_err(|kind| format!("set_state takes a string or (), not {kind}"))?,
                )
            };
            bridge
                .block_on(context.update_scraper_state(state))?
                .map_err(|error| error.describe().into())
        });
    }
    {
        let context = context.clone();
        engine.register_fn("log", move |message: &str| {
            context.log(LogLevel::Info, message)
        });
    }
    {
        let context = context.clone();
        engine.register_fn(
            "log",
            move |level: &str, message: &str| -> ScriptResult<()> {
                let level: LogLevel =
                    serde_json::from_value(Value::from(level.to_ascii_uppercase())).map_err(
                        |_| format!("unknown log level '{level}' (debug, info, warning or error)"),
                    )?;
                context.log(level, message);
                Ok(())
            },
        );
    }
    let (printer, debugger) = (context.clone(), context.clone());
    engine.on_print(move |text| printer.log(LogLevel::Info, text));
    engine.on_debug(move |text, _, _| debugger.log(LogLevel::Debug, text));
}

fn to_script(value: &Value) -> Dynamic {
    rhai::serde::to_dynamic(value).expect("JSON values convert to Rhai values")
}

/// A response as the script sees it: `#{url, status, headers, text}`.
fn response_to_script(response: &Response) -> RhaiMap {
    let headers: RhaiMap = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((
                name.as_str().into(),
                Dynamic::from(value.to_str().ok()?.to_owned()),
            ))
        })
        .collect();
    let mut map = RhaiMap::new();
    map.insert("url".into(), Dynamic::from(response.url().to_owned()));
    map.insert("status".into(), Dynamic::from(i64::from(response.status())));
    map.insert("headers".into(), Dynamic::from_map(headers));
    map.insert("text".into(), Dynamic::from(response.text()));
    map
}

/// A string body is sent as it is; any other value as JSON.
fn with_body(request: Request, body: &Dynamic) -> ScriptResult<Request> {
    if body.is_string() {
        return Ok(request.body(body.clone().into_string().expect("checked to be a string")));
    }
    let json: Value = rhai::serde::from_dynamic(body)?;
    Ok(request.json(&json))
}

/// `request(#{method: "POST", url: "…", headers: #{…}, body: …, timeout: 5})`.
fn request_from_script(options: &RhaiMap) -> ScriptResult<Request> {
    let text = |key: &str| -> ScriptResult<Option<String>> {
        options
            .get(key)
            .map(|value| {
                value
                    .clone()
                    .into_string()
                    .map_err(|kind| format!("request: `{key}` must be a string, not {kind}").into())
            })
            .transpose()
    };
    let url = text("url")?.ok_or("request: `url` is required")?;
    let method = match text("method")? {
        Some(method) => Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("request: '{method}' is not an HTTP method"))?,
        None => Method::GET,
    };
    let mut request = Request::new(method, url);
    if let Some(headers) = options.get("headers") {
        let headers = headers
            .clone()
            .try_cast::<RhaiMap>()
            .ok_or("request: `headers` must be a map")?;
        for (name, value) in headers {
            request = request.header(name.as_str(), value.to_string());
        }
    }
    if let Some(body) = options.get("body") {
        request = with_body(request, body)?;
    }
    if let Some(timeout) = options.get("timeout") {
        let seconds = timeout
            .as_float()
            .or_else(|_| timeout.as_int().map(|int| int as f64))
            .map_err(|_| "request: `timeout` must be a number of seconds")?;
        let timeout = Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("request: `timeout` {seconds} is not a duration"))?;
        request = request.timeout(timeout);
    }
    Ok(request)
}

//! The oracle: what the server must answer to a body, worked out from docs/api.md alone, and
//! the check of an answer against it.
//!
//! A body is first read with serde_json, the parser the server uses: the expected answer of
//! a truncated body, a duplicate key or a 400-digit number then follows from what the body
//! *is*, not from what the generator meant it to be. From there the envelope rules of
//! docs/api.md give the reply of each call (a parse error, an invalid request, a method not
//! found, or nothing for a notification), and for a call of a method the params model
//! predicts whether its params decode: a call whose params cannot decode must get -32602 and
//! nothing else, a call whose params decode must never get -32602, and any other error must
//! be one docs/api.md lists for that method.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::values::SCHEDULES;

/// The methods of docs/api.md, each with the error codes it documents besides -32602.
/// 5002 (read-only) is left out: the server under test is writable, so it is a bug there.
pub const METHODS: &[(&str, &[i64])] = &[
    ("get_scrapers", &[]),
    ("search_scrapers", &[]),
    ("get_scraper", &[5000]),
    ("create_scraper", &[10004, 10005]),
    ("update_scraper", &[5000, 10004, 10005]),
    ("delete_scraper", &[5000]),
    ("enqueue_scraper", &[5000, 10000]),
    ("get_scraper_jobs", &[]),
    ("get_scraper_job", &[5001]),
    ("kill_scraper_job", &[5001, 10006]),
    ("get_scraper_job_logs", &[5001]),
    ("run_ephemeral", &[10004, 10005, 10007]),
    ("get_scraper_handlers", &[]),
    ("get_schedules", &[]),
    ("get_priorities", &[]),
    ("is_read_only", &[]),
];

/// The methods that change data: the fuzzer sends them only for scrapers and jobs it owns.
pub const MUTATING: &[&str] = &[
    "create_scraper",
    "update_scraper",
    "delete_scraper",
    "enqueue_scraper",
    "kill_scraper_job",
    "run_ephemeral",
];

pub const MAX_BATCH_CALLS: usize = 100;
pub const MAX_METHOD_CHARS: usize = 64;
pub const MAX_ID_CHARS: usize = 256;
pub const MAX_NAME_FILTER_CHARS: usize = 256;
pub const MAX_BATCH_REPLY_BYTES: u64 = 16 * 1024 * 1024;

pub fn documented_codes(method: &str) -> Option<&'static [i64]> {
    METHODS
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, codes)| *codes)
}

/// Whether a method's params decode, as far as the model can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prediction {
    Decodes,
    /// Serde may or may not accept it (a struct given as an array, an enum as a one-key
    /// object): only the method's documented codes are checked.
    Unknown,
    Invalid,
}

impl Prediction {
    /// Both parts must decode: one invalid part makes the whole invalid.
    fn and(self, other: Prediction) -> Prediction {
        self.max(other)
    }

    fn of(ok: bool) -> Prediction {
        if ok {
            Prediction::Decodes
        } else {
            Prediction::Invalid
        }
    }
}

fn required_i64(value: Option<&Value>) -> Prediction {
    Prediction::of(value.is_some_and(|value| value.as_i64().is_some()))
}

fn optional_i64(value: Option<&Value>) -> Prediction {
    Prediction::of(value.is_none_or(|value| value.is_null() || value.as_i64().is_some()))
}

fn optional_u64(value: Option<&Value>) -> Prediction {
    Prediction::of(value.is_none_or(|value| value.is_null() || value.as_u64().is_some()))
}

fn required_string(value: Option<&Value>) -> Prediction {
    Prediction::of(value.is_some_and(Value::is_string))
}

fn optional_string(value: Option<&Value>) -> Prediction {
    Prediction::of(value.is_none_or(|value| value.is_null() || value.is_string()))
}

fn optional_object(value: Option<&Value>) -> Prediction {
    Prediction::of(value.is_none_or(|value| value.is_null() || value.is_object()))
}

/// A priority param: absent is the default when there is one; otherwise 0, 1 or 2 exactly
/// (an integer: `1.0` and `"1"` are refused, with the original's message).
fn priority(value: Option<&Value>, required: bool) -> Prediction {
    match value {
        None => Prediction::of(!required),
        Some(value) => Prediction::of(value.as_i64().is_some_and(|value| (0..=2).contains(&value))),
    }
}

/// `config`: an object whose `params` and `plugins` are objects or null.
fn config(value: Option<&Value>) -> Prediction {
    match value {
        None => Prediction::Decodes,
        Some(Value::Object(config)) => {
            optional_object(config.get("params")).and(optional_object(config.get("plugins")))
        }
        Some(Value::Array(_)) => Prediction::Unknown,
        Some(_) => Prediction::Invalid,
    }
}

fn schedule(value: Option<&Value>) -> Prediction {
    match value {
        Some(Value::String(name)) => Prediction::of(SCHEDULES.contains(&name.as_str())),
        Some(Value::Object(map)) if map.len() == 1 => Prediction::Unknown,
        _ => Prediction::Invalid,
    }
}

/// A scraper object, field by field as docs/api.md describes it; unknown fields are ignored.
fn scraper(value: Option<&Value>) -> Prediction {
    match value {
        Some(Value::Object(scraper)) => {
            let id = Prediction::of(scraper.get("id").is_none_or(|id| id.as_i64().is_some()));
            id.and(required_string(scraper.get("name")))
                .and(schedule(scraper.get("schedule")))
                .and(optional_string(scraper.get("schedule_crontab")))
                .and(required_string(scraper.get("handler")))
                .and(config(scraper.get("config")))
                .and(priority(scraper.get("schedule_priority"), false))
                .and(optional_string(scraper.get("state")))
                .and(optional_u64(scraper.get("timeout_seconds")))
        }
        Some(Value::Array(_)) => Prediction::Unknown,
        _ => Prediction::Invalid,
    }
}

/// Whether `params` of `method` decode. Absent, null and `[]` params are no params; any
/// other array is refused (params are named), and so is a scalar.
pub fn predict(method: &str, params: Option<&Value>) -> Prediction {
    let empty = Map::new();
    let params = match params {
        None | Some(Value::Null) => &empty,
        Some(Value::Array(list)) if list.is_empty() => &empty,
        Some(Value::Object(params)) => params,
        Some(_) => return Prediction::Invalid,
    };
    let field = |name: &str| params.get(name);
    match method {
        "get_scrapers"
        | "get_scraper_handlers"
        | "get_schedules"
        | "get_priorities"
        | "is_read_only" => Prediction::of(params.is_empty()),
        "get_scraper" | "delete_scraper" => required_i64(field("id")),
        "search_scrapers" => {
            let decodes = optional_string(field("name_filter"))
                .and(optional_i64(field("max_items")))
                .and(optional_i64(field("last_id")));
            let too_long = field("name_filter")
                .and_then(Value::as_str)
                .is_some_and(|filter| filter.chars().count() > MAX_NAME_FILTER_CHARS);
            if too_long {
                Prediction::Invalid
            } else {
                decodes
            }
        }
        "create_scraper" | "update_scraper" => scraper(field("scraper")),
        "enqueue_scraper" => {
            required_i64(field("scraper_id")).and(priority(field("priority"), true))
        }
        "get_scraper_jobs" => required_i64(field("scraper_id")),
        "get_scraper_job" | "kill_scraper_job" => {
            required_i64(field("scraper_id")).and(required_i64(field("job_id")))
        }
        "get_scraper_job_logs" => required_i64(field("scraper_id"))
            .and(required_i64(field("job_id")))
            .and(optional_i64(field("after")))
            .and(optional_u64(field("max_lines"))),
        "run_ephemeral" => required_string(field("handler"))
            .and(config(field("config")))
            .and(optional_string(field("state")))
            .and(priority(field("priority"), false)),
        _ => Prediction::Unknown,
    }
}

/// What an HTTP exchange must give.
#[derive(Debug)]
pub enum Expect {
    /// A status that is not a JSON-RPC reply (413 for a body over the limit, say).
    Status(u16),
    /// HTTP 200 with these JSON-RPC replies.
    Rpc(Replies),
}

#[derive(Debug)]
pub enum Replies {
    /// An empty body: only notifications.
    Nothing,
    One(Reply),
    Batch(Vec<Reply>),
}

/// One expected reply: its `id`, and what it must hold.
#[derive(Debug)]
pub struct Reply {
    pub id: Value,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    /// An error with exactly this code.
    Error(i64),
    /// The reply of a method call: a result, or an error the model allows.
    Call {
        method: String,
        params: Option<Value>,
        prediction: Prediction,
        in_batch: bool,
    },
}

/// The expected answer to `body` posted to the JSON-RPC endpoint of a server accepting
/// bodies of at most `max_body` bytes.
pub fn expect(body: &[u8], max_body: usize) -> Expect {
    expect_parsed(body, max_body).0
}

/// [`expect`], and the body as JSON when the server reads it as JSON.
pub fn expect_parsed(body: &[u8], max_body: usize) -> (Expect, Option<Value>) {
    if body.len() > max_body {
        return (Expect::Status(413), None);
    }
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let replies = match &parsed {
        None => Replies::One(error(Value::Null, -32700)),
        Some(Value::Array(calls)) if calls.is_empty() || calls.len() > MAX_BATCH_CALLS => {
            Replies::One(error(Value::Null, -32600))
        }
        Some(Value::Array(calls)) => {
            let replies: Vec<Reply> = calls
                .iter()
                .filter_map(|call| expect_call(call, true))
                .collect();
            if replies.is_empty() {
                Replies::Nothing
            } else {
                Replies::Batch(replies)
            }
        }
        Some(call) => match expect_call(call, false) {
            Some(reply) => Replies::One(reply),
            None => Replies::Nothing,
        },
    };
    (Expect::Rpc(replies), parsed)
}

fn error(id: Value, code: i64) -> Reply {
    Reply {
        id,
        kind: Kind::Error(code),
    }
}

/// The reply to one call; `None` for a valid notification.
fn expect_call(call: &Value, in_batch: bool) -> Option<Reply> {
    let Value::Object(call) = call else {
        return Some(error(Value::Null, -32600));
    };
    let id = match call.get("id") {
        None => None,
        Some(Value::String(id)) if id.chars().count() > MAX_ID_CHARS => {
            return Some(error(Value::Null, -32600))
        }
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id.clone()),
        Some(_) => return Some(error(Value::Null, -32600)),
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if call.get("jsonrpc") != Some(&json!("2.0")) {
        return Some(error(reply_id, -32600));
    }
    let Some(Value::String(method)) = call.get("method") else {
        return Some(error(reply_id, -32600));
    };
    if method.chars().count() > MAX_METHOD_CHARS {
        return Some(error(reply_id, -32600));
    }
    // A notification of a known or unknown method: it runs (or not), and gets no reply.
    id.as_ref()?;
    if documented_codes(method).is_none() {
        return Some(error(reply_id, -32601));
    }
    let params = call.get("params").cloned();
    Some(Reply {
        id: reply_id,
        kind: Kind::Call {
            method: method.clone(),
            prediction: predict(method, params.as_ref()),
            params,
            in_batch,
        },
    })
}

/// What a check found wrong: a class (the same for every instance of one bug) and details.
#[derive(Debug)]
pub struct Wrong {
    pub class: String,
    pub detail: String,
}

fn wrong(class: impl Into<String>, detail: impl Into<String>) -> Wrong {
    Wrong {
        class: class.into(),
        detail: detail.into(),
    }
}

/// The seeded scrapers as they were before fuzzing, by id: any reply showing one of them
/// must show it unchanged.
pub type Seeded = BTreeMap<i64, Value>;

/// What a check found: each call's expected and actual reply (whatever else is wrong, the
/// caller learns from them what the calls created), and the first thing wrong, if any.
pub struct Checked<'a> {
    pub pairs: Vec<(&'a Reply, Value)>,
    pub wrong: Option<Wrong>,
}

/// Checks an answer (`status`, `body`) against `expect`.
pub fn check<'a>(expect: &'a Expect, status: u16, body: &[u8], seeded: &Seeded) -> Checked<'a> {
    let mut pairs = Vec::new();
    let wrong = check_into(expect, status, body, seeded, &mut pairs).err();
    Checked { pairs, wrong }
}

fn check_into<'a>(
    expect: &'a Expect,
    status: u16,
    body: &[u8],
    seeded: &Seeded,
    pairs: &mut Vec<(&'a Reply, Value)>,
) -> Result<(), Wrong> {
    let replies = match expect {
        Expect::Status(expected) => {
            return if status == *expected {
                Ok(())
            } else {
                Err(wrong(
                    format!("HTTP {status} where {expected} was expected"),
                    "",
                ))
            }
        }
        Expect::Rpc(replies) => replies,
    };
    if status != 200 {
        return Err(wrong(
            format!("HTTP {status} where a JSON-RPC reply (200) was expected"),
            "",
        ));
    }
    let expected: Vec<&Reply> = match replies {
        Replies::Nothing => {
            return if body.is_empty() {
                Ok(())
            } else {
                Err(wrong("a reply where only notifications were sent", ""))
            };
        }
        Replies::One(reply) => vec![reply],
        Replies::Batch(replies) => replies.iter().collect(),
    };
    let parsed: Value = serde_json::from_slice(body)
        .map_err(|error| wrong("a reply that is not JSON", error.to_string()))?;
    let actual: Vec<Value> = match (replies, parsed) {
        (Replies::Batch(_), Value::Array(list)) => list,
        (Replies::Batch(_), _) => {
            return Err(wrong(
                "a batch answered with something else than an array",
                "",
            ))
        }
        (_, Value::Array(_)) => return Err(wrong("a single call answered with an array", "")),
        (_, reply) => vec![reply],
    };
    if actual.len() != expected.len() {
        return Err(wrong(
            "a batch reply with the wrong number of replies",
            format!("{} expected, {} received", expected.len(), actual.len()),
        ));
    }
    let mut first_wrong = None;
    for (expected, actual) in expected.into_iter().zip(actual) {
        if let Err(wrong) = check_reply(expected, &actual, seeded) {
            first_wrong.get_or_insert(wrong);
        }
        pairs.push((expected, actual));
    }
    first_wrong.map_or(Ok(()), Err)
}

/// The JSON-RPC 2.0 envelope: `jsonrpc` "2.0", a `result` or an `error` (with an integer
/// `code` and a string `message`), and an `id`.
fn envelope(reply: &Value) -> Result<(), Wrong> {
    let Value::Object(reply) = reply else {
        return Err(wrong("a reply that is not an object", ""));
    };
    if reply.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(wrong("a reply without \"jsonrpc\": \"2.0\"", ""));
    }
    if let Some(extra) = reply
        .keys()
        .find(|key| !["jsonrpc", "result", "error", "id"].contains(&key.as_str()))
    {
        return Err(wrong(
            "a reply with a member JSON-RPC does not define",
            extra.clone(),
        ));
    }
    if !reply.contains_key("id") {
        return Err(wrong("a reply without an id", ""));
    }
    match (reply.get("result"), reply.get("error")) {
        (Some(_), None) => Ok(()),
        (None, Some(Value::Object(error))) => {
            if error.get("code").and_then(Value::as_i64).is_none() {
                return Err(wrong("an error without an integer code", ""));
            }
            if !error.get("message").is_some_and(Value::is_string) {
                return Err(wrong("an error without a string message", ""));
            }
            if let Some(extra) = error
                .keys()
                .find(|key| !["code", "message", "data"].contains(&key.as_str()))
            {
                return Err(wrong(
                    "an error with a member JSON-RPC does not define",
                    extra.clone(),
                ));
            }
            Ok(())
        }
        (None, Some(_)) => Err(wrong("an error that is not an object", "")),
        _ => Err(wrong(
            "a reply with both or neither of result and error",
            "",
        )),
    }
}

/// `data.errors`: a non-empty list of `{loc: [...], msg: "..."}`.
fn field_errors(error: &Value) -> bool {
    error["data"]["errors"].as_array().is_some_and(|errors| {
        !errors.is_empty()
            && errors
                .iter()
                .all(|error| error["loc"].is_array() && error["msg"].is_string())
    })
}

fn check_reply(expected: &Reply, actual: &Value, seeded: &Seeded) -> Result<(), Wrong> {
    envelope(actual)?;
    if actual["id"] != expected.id {
        return Err(wrong(
            "a reply whose id is not the call's",
            format!("expected {}, got {}", expected.id, actual["id"]),
        ));
    }
    let code = actual["error"]["code"].as_i64();
    match &expected.kind {
        Kind::Error(expected) => match code {
            Some(code) if code == *expected => Ok(()),
            Some(code) => Err(wrong(
                format!("error {code} where {expected} was expected"),
                "",
            )),
            None => Err(wrong(
                format!("a result where error {expected} was expected"),
                "",
            )),
        },
        Kind::Call {
            method,
            params,
            prediction,
            in_batch,
        } => {
            let Some(code) = code else {
                if *prediction == Prediction::Invalid {
                    return Err(wrong(
                        format!("{method}: a result for params that cannot decode"),
                        "",
                    ));
                }
                return check_result(method, params.as_ref(), &actual["result"], seeded);
            };
            let error = &actual["error"];
            match code {
                -32602 if *prediction == Prediction::Decodes => Err(wrong(
                    format!("{method}: -32602 for params that decode"),
                    "",
                )),
                -32602 if !field_errors(error) => {
                    Err(wrong(format!("{method}: -32602 without data.errors"), ""))
                }
                -32602 => Ok(()),
                -32603 => Err(wrong(format!("{method}: internal error -32603"), "")),
                -32001 => Err(wrong(
                    format!("{method}: storage unavailable -32001 with the storage up"),
                    "",
                )),
                -32002 if !in_batch => Err(wrong(format!("{method}: -32002 outside a batch"), "")),
                -32002 if error["data"]["limit"] != json!(MAX_BATCH_REPLY_BYTES) => {
                    Err(wrong("-32002 without data.limit", ""))
                }
                -32002 => Ok(()),
                code if !documented_codes(method).unwrap_or_default().contains(&code) => {
                    Err(wrong(
                        format!("{method}: error {code}, which docs/api.md does not list for it"),
                        "",
                    ))
                }
                _ if *prediction == Prediction::Invalid => Err(wrong(
                    format!(
                        "{method}: error {code} for params that cannot decode (-32602 expected)"
                    ),
                    "",
                )),
                10005 if !field_errors(error) => {
                    Err(wrong(format!("{method}: 10005 without data.errors"), ""))
                }
                _ => Ok(()),
            }
        }
    }
}

/// Results that show seeded scrapers must show them exactly as seeded.
fn check_result(
    method: &str,
    params: Option<&Value>,
    result: &Value,
    seeded: &Seeded,
) -> Result<(), Wrong> {
    let unchanged = |scraper: &Value| match scraper["id"].as_i64().and_then(|id| seeded.get(&id)) {
        Some(before) if before != scraper => Err(wrong(
            format!("{method}: a seeded scraper read back changed"),
            format!(
                "before: {}\nnow: {}",
                short(&before.to_string(), 300),
                short(&scraper.to_string(), 300)
            ),
        )),
        _ => Ok(()),
    };
    match method {
        "get_scraper" => {
            let asked = params.and_then(|params| params["id"].as_i64());
            if asked.is_some() && result["id"].as_i64() != asked {
                return Err(wrong("get_scraper: a different scraper than asked for", ""));
            }
            unchanged(result)
        }
        "get_scrapers" | "search_scrapers" => {
            let Some(scrapers) = result.as_array() else {
                return Err(wrong(format!("{method}: a result that is not a list"), ""));
            };
            scrapers.iter().try_for_each(unchanged)?;
            if method == "get_scrapers" {
                for id in seeded.keys() {
                    if !scrapers.iter().any(|scraper| scraper["id"] == json!(id)) {
                        return Err(wrong(
                            "get_scrapers: a seeded scraper is missing",
                            id.to_string(),
                        ));
                    }
                }
            }
            Ok(())
        }
        "create_scraper" | "update_scraper" => {
            let Some(id) = result["id"].as_i64() else {
                return Err(wrong(
                    format!("{method}: a result without an integer id"),
                    "",
                ));
            };
            if seeded.contains_key(&id) {
                return Err(wrong(
                    format!("{method}: changed a seeded scraper"),
                    id.to_string(),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The first `max` characters of `text`, and how long it was.
pub fn short(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        text.to_owned()
    } else {
        format!(
            "{}… ({count} characters)",
            text.chars().take(max).collect::<String>()
        )
    }
}

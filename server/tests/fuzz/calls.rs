//! Generated requests: method calls with wrong, extreme and hostile params, wrong envelopes,
//! batches, malformed JSON.
//!
//! The fuzzer must be able to tell a bug from a change it asked for, so it changes only
//! what it owns: mutating calls name scrapers it created (ids in a range of its own, or ids
//! the server assigned to its calls) or ids that cannot exist, never a seeded scraper. A
//! seeded id only ever appears in a mutating call wrongly typed (`"1"`, `1.0`, `[1]`), where
//! the server must refuse it. [`secure`] enforces this on every generated body.

use serde_json::{json, Map, Value};

use super::model::{predict, Prediction, MUTATING};
use super::rng::Rng;
use super::values::{self, MAX_CHOSEN_ID};

/// Ids of scrapers that calls the server must refuse try to create (cross-site calls,
/// batches over the limit): none of them may ever exist.
pub const REFUSED_IDS: std::ops::Range<i64> = 8_000_000_000_000_000..8_000_000_001_000_000;

/// A generated body: JSON to make safe ([`secure`]) and serialize, or raw bytes.
pub enum Body {
    Json(Value),
    Raw(Vec<u8>),
}

/// What one driver owns: the scrapers it created and the jobs it started.
pub struct Pool {
    pub scrapers: Vec<i64>,
    pub jobs: Vec<(i64, i64)>,
    base: i64,
    next: i64,
    refused: i64,
}

impl Pool {
    /// Driver `stream` chooses ids from `(stream + 1) * 10^12` on: far from the seeded
    /// scrapers (1 to 4) and from the ids the server assigns.
    pub fn new(stream: u64) -> Pool {
        let base = (stream as i64 + 1) * 1_000_000_000_000;
        Pool {
            scrapers: Vec::new(),
            jobs: Vec::new(),
            base,
            next: 0,
            refused: REFUSED_IDS.start + stream as i64 * 10_000,
        }
    }

    /// A new id of this driver's range, for a create with a chosen id.
    pub fn fresh_id(&mut self) -> i64 {
        self.next += 1;
        self.base + self.next
    }

    /// An id of this driver's range that it never creates.
    pub fn missing_id(&self, rng: &mut Rng) -> i64 {
        self.base + 900_000_000_000 + rng.below(1_000) as i64
    }

    /// An id for a create that must be refused.
    pub fn refused_id(&mut self) -> i64 {
        self.refused += 1;
        self.refused
    }

    /// An owned scraper, if any. Always draws the same from `rng`, whether or not there is
    /// one: what a driver sends then does not depend on how many of its creates succeeded.
    pub fn owned(&self, rng: &mut Rng) -> Option<i64> {
        let draw = rng.next_u64() as usize;
        (!self.scrapers.is_empty()).then(|| self.scrapers[draw % self.scrapers.len()])
    }

    /// An owned scraper, else a missing one (drawing the same either way).
    pub fn owned_or_missing(&self, rng: &mut Rng) -> i64 {
        let missing = self.missing_id(rng);
        self.owned(rng).unwrap_or(missing)
    }

    /// An owned job, if any (drawing the same either way).
    pub fn job(&self, rng: &mut Rng) -> Option<(i64, i64)> {
        let draw = rng.next_u64() as usize;
        (!self.jobs.is_empty()).then(|| self.jobs[draw % self.jobs.len()])
    }

    /// Learns from a result what the call created or deleted.
    pub fn learn(&mut self, method: &str, result: &Value) {
        match method {
            "create_scraper" | "update_scraper" => {
                if let Some(id) = result["id"].as_i64() {
                    if !self.scrapers.contains(&id) {
                        self.scrapers.push(id);
                    }
                }
            }
            "delete_scraper" => {
                if let Some(id) = result["id"].as_i64() {
                    self.scrapers.retain(|owned| *owned != id);
                }
            }
            "enqueue_scraper" | "run_ephemeral" => {
                if let (Some(scraper), Some(job)) =
                    (result["scraper"]["id"].as_i64(), result["id"].as_i64())
                {
                    self.jobs.push((scraper, job));
                }
            }
            _ => {}
        }
    }
}

/// Everything a generator needs.
pub struct Gen<'a> {
    pub rng: &'a mut Rng,
    pub pool: &'a mut Pool,
    pub seeded: &'a [i64],
    /// The server's port: hostile URLs point at the server itself.
    pub port: u16,
    /// Numbers request ids.
    pub counter: u64,
}

impl Gen<'_> {
    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
}

/// An id for a read: a seeded scraper, an owned one, or any integer.
fn read_id(g: &mut Gen) -> Value {
    match g.rng.below(10) {
        0..=2 => json!(*g.rng.pick(g.seeded)),
        3 | 4 => json!(g.pool.owned(g.rng).unwrap_or(1)),
        _ => json!(values::integer(g.rng)),
    }
}

/// An integer id for a change: an owned scraper, a missing one, or one that cannot be a
/// scraper's (zero, negative, over 2^53 - 1). Never a seeded one.
fn write_id(g: &mut Gen) -> Value {
    match g.rng.below(10) {
        0..=5 => json!(g.pool.owned_or_missing(g.rng)),
        6 | 7 => json!(g.pool.missing_id(g.rng)),
        8 => json!(*g.rng.pick(&[0, -1, -5, i64::MIN, -(1 << 53)])),
        _ => json!(*g.rng.pick(&[MAX_CHOSEN_ID + 1, i64::MAX, i64::MAX - 1])),
    }
}

/// A wrongly typed id, often a seeded one in disguise: the server must refuse every one.
fn bad_id(g: &mut Gen) -> Value {
    let seeded = *g.rng.pick(g.seeded);
    match g.rng.below(14) {
        0 => json!(seeded.to_string()),
        1 => json!(seeded as f64),
        2 => json!(seeded as f64 + 0.5),
        3 => json!(true),
        4 => json!([seeded]),
        5 => json!({ "id": seeded }),
        6 => json!(format!("{seeded}e0")),
        7 => json!(""),
        8 => json!(-0.0),
        9 => json!(1e308),
        10 => json!(u64::MAX),
        11 => json!(i64::MAX as u64 + 1),
        12 => json!(format!(" {seeded}")),
        _ => Value::Null,
    }
}

/// The id of a created scraper: absent or -1 (assigned), chosen in the driver's range, an
/// owned one (replaced), or one the server must refuse.
fn create_id(g: &mut Gen) -> Option<Value> {
    match g.rng.below(20) {
        0..=5 => None,
        6..=9 => Some(json!(-1)),
        10..=13 => Some(json!(g.pool.fresh_id())),
        14 | 15 => Some(json!(g.pool.owned(g.rng).unwrap_or(-1))),
        16 => Some(json!(*g.rng.pick(&[0, -5, i64::MIN]))),
        17 => Some(json!(*g.rng.pick(&[MAX_CHOSEN_ID + 1, i64::MAX]))),
        _ => Some(bad_id(g)),
    }
}

/// A job id for a read: an owned job's, or any integer.
fn read_job_id(g: &mut Gen) -> Value {
    let (job, any, take) = (g.pool.job(g.rng), values::integer(g.rng), g.rng.chance(40));
    match job {
        Some((_, job)) if take => json!(job),
        _ => json!(any),
    }
}

/// Puts `name` into `map`: its valid value most of the time, else absent, null or `bad`.
fn field(g: &mut Gen, map: &mut Map<String, Value>, name: &str, valid: Value, bad: Value) {
    match g.rng.below(100) {
        0..=71 => {
            map.insert(name.to_owned(), valid);
        }
        72..=79 => {}
        80..=85 => {
            map.insert(name.to_owned(), Value::Null);
        }
        _ => {
            map.insert(name.to_owned(), bad);
        }
    }
}

/// A hostile value that is not a valid `T` for most fields.
fn bad(g: &mut Gen) -> Value {
    match g.rng.below(4) {
        0 => values::number(g.rng),
        1 => json!(values::string(g.rng)),
        _ => values::any(g.rng, 2),
    }
}

/// Schedules of created scrapers: mostly inactive, so that their jobs run only when the
/// fuzzer enqueues them; an every-second one fires all the time.
fn valid_schedule(g: &mut Gen) -> &'static str {
    match g.rng.below(20) {
        0..=9 => "inactive",
        10 => "every_second",
        11..=16 => values::SCHEDULES[g.rng.between(2, 6) as usize],
        _ => "crontab",
    }
}

/// A scraper object (or, rarely, the same fields as an array, which serde also reads).
pub fn scraper(g: &mut Gen, id: Option<Value>) -> Value {
    let mut map = Map::new();
    if let Some(id) = id {
        map.insert("id".to_owned(), id);
    }
    let name = if g.rng.chance(80) {
        json!(values::word(g.rng))
    } else {
        json!(values::string(g.rng))
    };
    let bad_value = bad(g);
    field(g, &mut map, "name", name, bad_value);
    let schedule = valid_schedule(g);
    let bad_schedule = values::schedule(g.rng);
    field(g, &mut map, "schedule", json!(schedule), bad_schedule);
    if schedule == "crontab" || g.rng.chance(25) {
        map.insert("schedule_crontab".to_owned(), values::crontab(g.rng));
    }
    let handler = if g.rng.chance(50) {
        "script"
    } else {
        "extract"
    };
    let bad_handler = values::handler(g.rng);
    field(g, &mut map, "handler", json!(handler), bad_handler);
    let active = map
        .get("schedule")
        .is_some_and(|schedule| schedule != "inactive");
    if g.rng.chance(85) {
        map.insert("config".to_owned(), config(g, handler, active, false));
    }
    let priority = json!(g.rng.below(3));
    let bad_priority = values::priority(g.rng);
    field(g, &mut map, "schedule_priority", priority, bad_priority);
    if g.rng.chance(40) {
        let state = match g.rng.below(4) {
            0 => Value::Null,
            1 => bad(g),
            _ => json!(values::string(g.rng)),
        };
        map.insert("state".to_owned(), state);
    }
    if g.rng.chance(60) {
        let timeout = match g.rng.below(10) {
            0..=5 => json!(g.rng.between(1, 10)),
            6 => json!(*g.rng.pick(&[0, 604_800, 604_801, -1])),
            7 => json!(u64::MAX),
            8 => json!(1.5),
            _ => Value::Null,
        };
        map.insert("timeout_seconds".to_owned(), timeout);
    }
    if g.rng.chance(8) {
        map.insert(values::key(g.rng), values::any(g.rng, 2));
    }
    if g.rng.chance(4) {
        // The fields in declaration order, as serde reads a struct from a sequence.
        let fields = [
            "id",
            "name",
            "schedule",
            "schedule_crontab",
            "handler",
            "config",
            "schedule_priority",
            "state",
            "timeout_seconds",
        ];
        return Value::Array(
            fields
                .iter()
                .map(|name| {
                    map.get(*name).cloned().unwrap_or(if *name == "id" {
                        json!(-1)
                    } else {
                        Value::Null
                    })
                })
                .collect(),
        );
    }
    Value::Object(map)
}

/// A scraper's config for `handler`. Scripts that burn CPU only go to inactive scrapers:
/// their jobs then run only when the fuzzer enqueues them, once at a time. URLs of hundreds
/// of kilobytes only go to ephemeral runs: stored, they would make every later
/// `get_scrapers` reply megabytes long.
pub fn config(g: &mut Gen, handler: &str, active: bool, ephemeral: bool) -> Value {
    let url = |g: &mut Gen| {
        if ephemeral {
            values::hostile_url(g.rng, g.port)
        } else {
            g.rng.pick(&values::hostile_urls(g.port)).clone()
        }
    };
    let params = match (handler, g.rng.below(200)) {
        (_, 0..=9) => values::any(g.rng, 2),
        (_, 10..=19) => json!({ "deep": values::nested(g.rng, 100) }),
        (_, 20..=29) => json!([]),
        // Rare: each of its jobs burns up to its timeout (or 10 million operations) of CPU.
        ("script", 30) if !active => json!({ "source": "let x = 0; loop { x += 1; }" }),
        ("script", n) => {
            let mut params = json!({ "source": if n < 170 { values::cheap_script(g.rng, g.port) } else { values::string(g.rng) } });
            if g.rng.chance(30) {
                params["args"] = values::any(g.rng, 2);
            }
            params
        }
        (_, n) => {
            let mut params = Map::new();
            if n < 120 {
                params.insert("url".to_owned(), json!(url(g)));
            } else {
                let urls: Vec<String> = (0..g.rng.below(5)).map(|_| url(g)).collect();
                params.insert("urls".to_owned(), json!(urls));
            }
            let fields = match g.rng.below(8) {
                0 => json!({"x": {"css": "h1["}}),
                1 => json!({"x": {"regex": "("}}),
                2 => json!({"x": {"json": "no-slash"}}),
                3 => json!({"x": {}}),
                4 => json!({"x": {"css": "a", "regex": "b"}}),
                5 => values::any(g.rng, 2),
                _ => {
                    json!({"title": {"css": "h1"}, "links": {"css": "a", "attr": "href", "all": true}})
                }
            };
            params.insert("fields".to_owned(), fields);
            if g.rng.chance(20) {
                params.insert(
                    "follow".to_owned(),
                    json!({"css": "a", "max_pages": *g.rng.pick(&[0, 1, 1_000_000_000, -1])}),
                );
            }
            if g.rng.chance(15) {
                params.insert(
                    "max_concurrency".to_owned(),
                    json!(*g.rng.pick(&[0, 17, -1, i64::MAX])),
                );
            }
            if g.rng.chance(15) {
                params.insert(
                    "headers".to_owned(),
                    json!({"Bad Name": "x", "X-Evil": "a\r\nb", "Host": "169.254.169.254"}),
                );
            }
            if g.rng.chance(15) {
                params.insert(
                    "method".to_owned(),
                    json!(*g.rng.pick(&["TRACE", "CONNECT", "", "G E T", "get"])),
                );
            }
            Value::Object(params)
        }
    };
    let mut config = json!({ "params": params });
    if g.rng.chance(50) {
        config["plugins"] = values::plugins(g.rng, g.port);
    }
    if g.rng.chance(5) {
        config = values::any(g.rng, 1);
    }
    config
}

/// Params for `method`, mostly of the right shape with some fields wrong; `None`: no params.
pub fn params(g: &mut Gen, method: &str) -> Option<Value> {
    let mut map = Map::new();
    match method {
        "get_scrapers"
        | "get_scraper_handlers"
        | "get_schedules"
        | "get_priorities"
        | "is_read_only" => {
            return match g.rng.below(10) {
                0..=3 => None,
                4 | 5 => Some(json!({})),
                6 => Some(json!([])),
                7 => Some(Value::Null),
                8 => Some(json!({ values::key(g.rng): values::any(g.rng, 1) })),
                _ => Some(bad(g)),
            };
        }
        "get_scraper" => {
            let (valid, wrong) = (read_id(g), bad_id(g));
            field(g, &mut map, "id", valid, wrong);
        }
        "delete_scraper" => {
            let (valid, wrong) = (write_id(g), bad_id(g));
            field(g, &mut map, "id", valid, wrong);
        }
        "search_scrapers" => {
            let filter = if g.rng.chance(60) {
                json!(g
                    .rng
                    .pick(&["news", "fuzz", "Seed", "", "e", "%", "_"])
                    .to_string())
            } else {
                json!(values::string(g.rng))
            };
            let wrong = bad(g);
            field(g, &mut map, "name_filter", filter, wrong);
            let (valid, wrong) = (json!(values::integer(g.rng)), values::number(g.rng));
            field(g, &mut map, "max_items", valid, wrong);
            let (valid, wrong) = (json!(values::integer(g.rng)), bad(g));
            field(g, &mut map, "last_id", valid, wrong);
        }
        "create_scraper" | "update_scraper" => {
            let id = if method == "create_scraper" {
                create_id(g)
            } else {
                Some(if g.rng.chance(85) {
                    write_id(g)
                } else {
                    bad_id(g)
                })
            };
            let valid = scraper(g, id);
            let wrong = match g.rng.below(3) {
                0 => json!([]),
                1 => json!("scraper"),
                _ => values::any(g.rng, 2),
            };
            field(g, &mut map, "scraper", valid, wrong);
        }
        "enqueue_scraper" => {
            let (valid, wrong) = (write_id(g), bad_id(g));
            field(g, &mut map, "scraper_id", valid, wrong);
            let (valid, wrong) = (json!(g.rng.below(3)), values::priority(g.rng));
            field(g, &mut map, "priority", valid, wrong);
        }
        "get_scraper_jobs" => {
            let (valid, wrong) = (read_id(g), bad_id(g));
            field(g, &mut map, "scraper_id", valid, wrong);
        }
        "get_scraper_job" | "get_scraper_job_logs" => {
            let (owned, other) = (g.pool.job(g.rng), (read_id(g), read_job_id(g)));
            let take = g.rng.chance(60);
            let (scraper, job) = match owned {
                Some((scraper, job)) if take => (json!(scraper), json!(job)),
                _ => other,
            };
            let wrong = bad_id(g);
            field(g, &mut map, "scraper_id", scraper, wrong);
            let wrong = bad(g);
            field(g, &mut map, "job_id", job, wrong);
            if method == "get_scraper_job_logs" {
                let (valid, wrong) = (json!(values::integer(g.rng)), bad(g));
                field(g, &mut map, "after", valid, wrong);
                let lines = json!(*g.rng.pick(&[
                    0u64,
                    1,
                    2,
                    1_000,
                    10_000,
                    10_001,
                    i64::MAX as u64,
                    u64::MAX
                ]));
                let wrong = json!(*g.rng.pick(&[-1, i64::MIN]));
                field(g, &mut map, "max_lines", lines, wrong);
            }
        }
        "kill_scraper_job" => {
            let (owned, other) = (
                g.pool.job(g.rng),
                (write_id(g), json!(values::integer(g.rng))),
            );
            let take = g.rng.chance(70);
            let (scraper, job) = match owned {
                Some((scraper, job)) if take => (json!(scraper), json!(job)),
                _ => other,
            };
            let wrong = bad_id(g);
            field(g, &mut map, "scraper_id", scraper, wrong);
            let wrong = bad(g);
            field(g, &mut map, "job_id", job, wrong);
        }
        "run_ephemeral" => {
            let handler = match g.rng.below(10) {
                0..=3 => "script",
                4..=6 => "extract",
                _ => "nope",
            };
            let wrong = values::handler(g.rng);
            field(g, &mut map, "handler", json!(handler), wrong);
            if g.rng.chance(85) {
                let valid = config(g, handler, true, true);
                let wrong = bad(g);
                field(g, &mut map, "config", valid, wrong);
            }
            if g.rng.chance(30) {
                let (valid, wrong) = (json!(values::string(g.rng)), bad(g));
                field(g, &mut map, "state", valid, wrong);
            }
            if g.rng.chance(50) {
                let (valid, wrong) = (json!(g.rng.below(3)), values::priority(g.rng));
                field(g, &mut map, "priority", valid, wrong);
            }
        }
        _ => {}
    }
    if g.rng.chance(6) {
        map.insert(values::key(g.rng), values::any(g.rng, 2));
    }
    Some(match g.rng.below(100) {
        0 => json!([1, 2]),
        1 => json!("params"),
        2 => json!(42),
        3 => Value::Array(vec![Value::Object(map)]),
        _ => Value::Object(map),
    })
}

/// A method of docs/api.md. `get_scrapers` is rarer: its reply grows with every scraper
/// the fuzzer creates.
pub fn method(g: &mut Gen) -> &'static str {
    if g.rng.chance(2) {
        return "get_scrapers";
    }
    let methods = [
        "search_scrapers",
        "get_scraper",
        "create_scraper",
        "create_scraper",
        "update_scraper",
        "delete_scraper",
        "delete_scraper",
        "enqueue_scraper",
        "get_scraper_jobs",
        "get_scraper_job",
        "kill_scraper_job",
        "get_scraper_job_logs",
        "run_ephemeral",
        "get_scraper_handlers",
        "get_schedules",
        "get_priorities",
        "is_read_only",
    ];
    methods[g.rng.index(methods.len())]
}

/// A request id: mostly a number, sometimes a string, null, a float or an extreme number;
/// `None` (a notification) now and then.
pub fn request_id(g: &mut Gen) -> Option<Value> {
    Some(match g.rng.below(40) {
        0 | 1 => return None,
        2 => Value::Null,
        3 => json!(format!("call-{}", g.next_id())),
        4 => json!(""),
        5 => json!("i".repeat(256)),
        6 => json!("\u{1f980}".repeat(256)),
        7 => json!(1.5),
        8 => json!(u64::MAX),
        9 => json!(i64::MIN),
        10 => json!(1e308),
        11 => json!(-0.0),
        12 => json!("\0\u{202e}"),
        _ => json!(g.next_id()),
    })
}

/// One call of `method`.
pub fn call(g: &mut Gen, method: &str) -> Value {
    let mut call = Map::new();
    call.insert("jsonrpc".to_owned(), json!("2.0"));
    if let Some(id) = request_id(g) {
        call.insert("id".to_owned(), id);
    }
    call.insert("method".to_owned(), json!(method));
    if let Some(params) = params(g, method) {
        call.insert("params".to_owned(), params);
    }
    Value::Object(call)
}

/// A call with its envelope broken one to three ways.
pub fn broken_envelope(g: &mut Gen) -> Value {
    let method = method(g);
    let mut call = call(g, method);
    let map = call.as_object_mut().expect("calls are objects");
    for _ in 0..g.rng.between(1, 3) {
        match g.rng.below(5) {
            0 => {
                let version = match g.rng.below(12) {
                    0 => None,
                    1 => Some(json!("1.0")),
                    2 => Some(json!("2")),
                    3 => Some(json!(2.0)),
                    4 => Some(json!(2)),
                    5 => Some(Value::Null),
                    6 => Some(json!(" 2.0")),
                    7 => Some(json!("2.0\0")),
                    8 => Some(json!(["2.0"])),
                    9 => Some(json!("２.０")),
                    10 => Some(json!("2.00")),
                    _ => Some(values::any(g.rng, 1)),
                };
                match version {
                    Some(version) => map.insert("jsonrpc".to_owned(), version),
                    None => map.remove("jsonrpc"),
                };
            }
            1 => {
                let name = match g.rng.below(16) {
                    0 => Value::Null,
                    1 => json!(7),
                    2 => json!(true),
                    3 => json!(["get_scrapers"]),
                    4 => json!({"name": "get_scrapers"}),
                    5 => json!(""),
                    6 => json!("run_scraper"),
                    7 => json!("Get_Scrapers"),
                    8 => json!("get_scrapers "),
                    9 => json!("get_scrapers\0"),
                    10 => json!(*g.rng.pick(&[
                        "__proto__",
                        "constructor",
                        "rpc.discover",
                        "system.listMethods",
                        "../get_scrapers"
                    ])),
                    11 => json!("m".repeat(64)),
                    12 => json!("m".repeat(65)),
                    13 => json!("\u{1f980}".repeat(rng_between(g, 60, 70))),
                    14 => json!("m".repeat(10_000)),
                    _ => values::number(g.rng),
                };
                if g.rng.chance(10) {
                    map.remove("method");
                } else {
                    map.insert("method".to_owned(), name);
                }
            }
            2 => {
                let id = match g.rng.below(8) {
                    0 => json!(true),
                    1 => json!([]),
                    2 => json!({}),
                    3 => json!([1]),
                    4 => json!("i".repeat(257)),
                    5 => json!("\u{1f980}".repeat(257)),
                    6 => json!({"id": 1}),
                    _ => values::number(g.rng),
                };
                map.insert("id".to_owned(), id);
            }
            3 => {
                let params = match g.rng.below(7) {
                    0 => json!([1]),
                    1 => json!([{"id": 1}]),
                    2 => json!("x"),
                    3 => json!(false),
                    4 => Value::Null,
                    5 => json!([]),
                    _ => values::number(g.rng),
                };
                map.insert("params".to_owned(), params);
            }
            _ => {
                let key = *g
                    .rng
                    .pick(&["result", "error", "extra", "Method", "ID", "jsonrpc "]);
                map.insert(key.to_owned(), values::any(g.rng, 1));
            }
        }
    }
    call
}

fn rng_between(g: &mut Gen, low: u64, high: u64) -> usize {
    g.rng.between(low, high) as usize
}

/// A batch: empty, small, at the limit, over it (with creates that must never run),
/// nested, or of notifications only.
pub fn batch(g: &mut Gen) -> Value {
    let element = |g: &mut Gen| match g.rng.below(10) {
        0..=6 => {
            let method = method(g);
            call(g, method)
        }
        7 | 8 => broken_envelope(g),
        _ => values::any(g.rng, 1),
    };
    match g.rng.below(50) {
        0 | 1 => json!([]),
        2..=6 => Value::Array(vec![element(g)]),
        7..=34 => Value::Array((0..g.rng.between(2, 20)).map(|_| element(g)).collect()),
        // At the limit: the heaviest requests of a run, so only now and then.
        35 => Value::Array((0..100).map(|_| element(g)).collect()),
        36..=40 => {
            let size = *g.rng.pick(&[101, 102, 150, 500]);
            oversized_batch(g, size)
        }
        41..=43 => json!([[element(g)], [], [[]], element(g)]),
        44..=46 => Value::Array(
            (0..g.rng.between(1, 10))
                .map(|_| {
                    let method = method(g);
                    let mut call = call(g, method);
                    call.as_object_mut().expect("an object").remove("id");
                    call
                })
                .collect(),
        ),
        _ => Value::Array(
            (0..g.rng.between(2, 10))
                .map(|_| values::any(g.rng, 2))
                .collect(),
        ),
    }
}

/// A batch over the limit of 100 calls: it must be refused whole, so none of its creates
/// (of ids in [`REFUSED_IDS`]) may run.
pub fn oversized_batch(g: &mut Gen, size: usize) -> Value {
    Value::Array(
        (0..size)
            .map(|n| {
                if n % 10 == 0 {
                    let id = g.pool.refused_id();
                    json!({"jsonrpc": "2.0", "id": n, "method": "create_scraper", "params": {"scraper": {"id": id, "name": "refused batch", "schedule": "inactive", "handler": "script"}}})
                } else {
                    json!({"jsonrpc": "2.0", "id": n, "method": "is_read_only"})
                }
            })
            .collect(),
    )
}

/// A body that is not JSON, or is JSON only by a hair: truncated, invalid UTF-8, numbers no
/// JSON value holds, 10,000 levels of nesting, duplicate keys, syntax from other languages.
pub fn malformed(g: &mut Gen) -> Vec<u8> {
    let method = method(g);
    let mut base = call(g, method);
    secure(&mut base, g);
    let text = base.to_string().into_bytes();
    match g.rng.below(12) {
        0 | 1 => {
            let cut = g.rng.index(text.len());
            text[..cut].to_vec()
        }
        2 | 3 => {
            let mut bytes = text;
            let bad: &[&[u8]] = &[
                b"\xff",
                b"\xc3\x28",
                b"\xed\xa0\x80",
                b"\xc0\xaf",
                b"\xf4\x90\x80\x80",
                b"\xe2\x82",
                b"\x80",
            ];
            let at = match bytes.iter().position(|byte| *byte == b'"') {
                Some(quote) if g.rng.chance(70) => quote + 1,
                _ => g.rng.index(bytes.len()),
            };
            let insert = *g.rng.pick(bad);
            bytes.splice(at..at, insert.iter().copied());
            bytes
        }
        4 | 5 => {
            let (id, value) = (values::number_text(g.rng), values::number_text(g.rng));
            let method = g.rng.pick(&[
                "get_scraper",
                "get_scraper_jobs",
                "delete_scraper",
                "search_scrapers",
            ]);
            let field = match *method {
                "get_scraper_jobs" => "scraper_id",
                "search_scrapers" => "max_items",
                _ => "id",
            };
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{"{field}":{value}}}}}"#).into_bytes()
        }
        6 => {
            let levels = *g.rng.pick(&[127, 128, 129, 500, 10_000, 100_000]);
            let (open, close) = if g.rng.chance(50) {
                ("[", "]")
            } else {
                (r#"{"a":"#, "}")
            };
            let deep = format!("{}1{}", open.repeat(levels), close.repeat(levels));
            match g.rng.below(3) {
                0 => deep.into_bytes(),
                1 => {
                    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{deep}}}"#)
                        .into_bytes()
                }
                _ => "[".repeat(levels).into_bytes(),
            }
        }
        7 | 8 => duplicate_keys(g),
        _ => {
            let junk = [
                r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules",}"#.to_owned(),
                r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules"} // comment"#.to_owned(),
                r#"{'jsonrpc':'2.0','id':1,'method':'get_schedules'}"#.to_owned(),
                r#"{"jsonrpc":"2.0","id":NaN,"method":"get_schedules"}"#.to_owned(),
                "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"get_schedules\"}".to_owned(),
                r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules"}x"#.to_owned(),
                r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules"}{"jsonrpc":"2.0","id":2,"method":"get_schedules"}"#.to_owned(),
                " \n\t ".to_owned(),
                String::new(),
                "null".to_owned(),
                "\"\\ud800\"".to_owned(),
                r#"{"jsonrpc":"2.0","id":"\ud800","method":"get_schedules"}"#.to_owned(),
                r#"{"jsonrpc":"2.0","id":"\udc00\ud800","method":"get_schedules"}"#.to_owned(),
                r#"{"jsonrpc":"2.0","id":"\u00","method":"get_schedules"}"#.to_owned(),
                "{\"jsonrpc\":\"2.0\",\"id\":\"a\tb\",\"method\":\"get_schedules\"}".to_owned(),
                "{\"jsonrpc\":\"2.0\",\"id\":\"a\0b\",\"method\":\"get_schedules\"}".to_owned(),
                r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules","params":{"a":undefined}}"#.to_owned(),
                r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules","params":{1:2}}"#.to_owned(),
                r#"{"jsonrpc":"2.0","id":1,"method":"get_sch\u0065dules"}"#.to_owned(),
                r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules\u0000"}"#.to_owned(),
                r#"[{"jsonrpc":"2.0","id":1,"method":"get_schedules"},]"#.to_owned(),
                "true".to_owned(),
                "-".to_owned(),
                "{".to_owned(),
                "}".to_owned(),
            ];
            g.rng.pick(&junk).clone().into_bytes()
        }
    }
}

/// An object written with repeated keys: serde_json keeps the last one.
fn duplicate_keys(g: &mut Gen) -> Vec<u8> {
    let owned = g.pool.owned_or_missing(g.rng);
    let missing = g.pool.missing_id(g.rng);
    let mut members: Vec<(String, Value)> = vec![
        ("jsonrpc".to_owned(), json!("2.0")),
        ("id".to_owned(), json!(1)),
        ("method".to_owned(), json!("get_schedules")),
    ];
    let extra: Vec<(&str, Value)> = vec![
        ("jsonrpc", json!("1.0")),
        ("jsonrpc", json!("2.0")),
        ("id", json!("second")),
        ("id", json!([1])),
        ("id", json!(2)),
        ("method", json!("get_priorities")),
        ("method", json!("no_such_method")),
        ("method", json!(7)),
        ("params", json!({"id": owned})),
        ("params", json!([1])),
    ];
    for _ in 0..g.rng.between(1, 4) {
        let (key, value) = g.rng.pick(&extra).clone();
        let at = g.rng.index(members.len() + 1);
        members.insert(at, (key.to_owned(), value));
    }
    let object = |members: &[(String, Value)]| {
        let inner: Vec<String> = members
            .iter()
            .map(|(key, value)| format!("{}:{value}", json!(key)))
            .collect();
        format!("{{{}}}", inner.join(","))
    };
    if g.rng.chance(40) {
        // Repeated keys inside params, with owned or missing ids only.
        let params = format!(r#"{{"id":{owned},"id":{missing},"id":"{owned}"}}"#);
        let method = g.rng.pick(&["get_scraper", "delete_scraper"]);
        return format!(r#"{{"jsonrpc":"2.0","id":3,"method":"{method}","params":{params},"params":{{"id":{owned}}}}}"#).into_bytes();
    }
    object(&members).into_bytes()
}

/// Replaces a string of the first call's params by 1.1-5 MB of text (or adds one).
pub fn plant_huge(g: &mut Gen, body: &mut Value) {
    let call = match body {
        Value::Array(calls) if !calls.is_empty() => &mut calls[0],
        other => other,
    };
    let Some(call) = call.as_object_mut() else {
        return;
    };
    let huge = values::huge(g.rng);
    let params = call.entry("params").or_insert_with(|| json!({}));
    let mut slots = Vec::new();
    collect_strings(params, &mut Vec::new(), &mut slots);
    if slots.is_empty() {
        match params {
            Value::Object(params) => {
                params.insert("pad".to_owned(), json!(huge));
            }
            other => *other = json!({ "pad": huge }),
        }
        return;
    }
    let path = g.rng.pick(&slots).clone();
    let mut slot = params;
    for step in path {
        slot = match step {
            Step::Key(key) => &mut slot[key.as_str()],
            Step::Index(index) => &mut slot[index],
        };
    }
    *slot = json!(huge);
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn collect_strings(value: &Value, path: &mut Vec<Step>, found: &mut Vec<Vec<Step>>) {
    match value {
        Value::String(_) => found.push(path.clone()),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(Step::Index(index));
                collect_strings(item, path, found);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                path.push(Step::Key(key.clone()));
                collect_strings(item, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The ids where a mutating call names its scraper.
fn target_ids(call: &Map<String, Value>) -> Vec<&Value> {
    let Some(Value::String(method)) = call.get("method") else {
        return Vec::new();
    };
    let Some(Value::Object(params)) = call.get("params") else {
        return Vec::new();
    };
    match method.as_str() {
        "create_scraper" | "update_scraper" => match params.get("scraper") {
            Some(Value::Object(scraper)) => scraper.get("id").into_iter().collect(),
            Some(Value::Array(fields)) => fields.first().into_iter().collect(),
            _ => Vec::new(),
        },
        "delete_scraper" => params.get("id").into_iter().collect(),
        "enqueue_scraper" | "kill_scraper_job" => params.get("scraper_id").into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Makes a generated body safe to send: a mutating call naming a seeded scraper by an
/// integer is pointed at a missing one instead, and a notification that could create
/// something the fuzzer would not hear about (a create with an assigned id, an ephemeral
/// run) gets an id, so that its reply says what it created.
pub fn secure(body: &mut Value, g: &mut Gen) {
    let calls: Vec<&mut Value> = match body {
        Value::Array(calls) => calls.iter_mut().collect(),
        call => vec![call],
    };
    for call in calls {
        let Value::Object(map) = call else { continue };
        let unsafe_target = target_ids(map)
            .iter()
            .any(|id| id.as_i64().is_some_and(|id| g.seeded.contains(&id)));
        if unsafe_target {
            let missing = json!(g.pool.missing_id(g.rng));
            let params = map
                .get_mut("params")
                .and_then(Value::as_object_mut)
                .expect("a target is in the params");
            if let Some(scraper) = params.get_mut("scraper") {
                match scraper {
                    Value::Array(fields) => fields[0] = missing,
                    scraper => scraper["id"] = missing,
                }
            } else if params.contains_key("id") {
                params.insert("id".to_owned(), missing);
            } else {
                params.insert("scraper_id".to_owned(), missing);
            }
        }
        let method = map
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let may_create = match method.as_str() {
            "create_scraper" => chosen_id(map).is_none(),
            "run_ephemeral" => true,
            _ => false,
        };
        if may_create
            && !map.contains_key("id")
            && predict(&method, map.get("params")) != Prediction::Invalid
        {
            map.insert("id".to_owned(), json!(g.next_id()));
        }
    }
}

/// The id a create chooses, when it chooses one (1 to 2^53 - 1).
fn chosen_id(call: &Map<String, Value>) -> Option<i64> {
    target_ids(call)
        .first()
        .and_then(|id| id.as_i64())
        .filter(|id| (1..=MAX_CHOSEN_ID).contains(id))
}

/// The ids the creates of a (parsed) body choose: they may exist afterwards, whether or not
/// a reply says so (a notification gets none).
pub fn chosen_ids(body: &Value) -> Vec<i64> {
    let calls: Vec<&Value> = match body {
        Value::Array(calls) => calls.iter().collect(),
        call => vec![call],
    };
    calls
        .into_iter()
        .filter_map(Value::as_object)
        .filter(|call| call.get("method").and_then(Value::as_str) == Some("create_scraper"))
        .filter_map(chosen_id)
        .collect()
}

/// Whether a (parsed) body holds a mutating call naming a seeded scraper by an integer, or
/// a notification that could create what the fuzzer would not hear about: the generator
/// must never send one, whatever it is built from.
pub fn touches_what_it_does_not_own(body: &Value, seeded: &[i64]) -> bool {
    let calls: Vec<&Value> = match body {
        Value::Array(calls) => calls.iter().collect(),
        call => vec![call],
    };
    calls.into_iter().filter_map(Value::as_object).any(|call| {
        let method = call
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let seeded_target = MUTATING.contains(&method)
            && target_ids(call)
                .iter()
                .any(|id| id.as_i64().is_some_and(|id| seeded.contains(&id)));
        let silent_create = !call.contains_key("id")
            && (method == "run_ephemeral"
                || (method == "create_scraper" && chosen_id(call).is_none()))
            && predict(method, call.get("params")) != Prediction::Invalid;
        seeded_target || silent_create
    })
}

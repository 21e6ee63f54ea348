//! A fuzz test of the whole HTTP surface of a real server, in memory and on PostgreSQL.
//!
//! Seeded pseudo-random requests (the seed is printed; `SNEAKPEEK_FUZZ_SEED` replays one,
//! `SNEAKPEEK_FUZZ_REQUESTS` sets how many) go to a `sneakpeek` server on 127.0.0.1 over a
//! few connections at once: malformed JSON (truncated, invalid UTF-8, numbers no JSON value
//! holds, 10,000 levels of nesting, duplicate keys), broken envelopes (`jsonrpc`, `method`,
//! `id` and `params` of every type), every method of docs/api.md with wrong, extreme and
//! hostile params (extreme integers, floats, 1-5 MB strings, NUL and control characters,
//! unicode, nulls, objects where strings go, unknown fields, crontab garbage, bad
//! priorities, schedules and handlers), batches (empty, at and over the 100-call limit, of
//! 1,000 and 10,000 calls, nested, of notifications), odd HTTP (requests a page of another
//! site makes a browser send, other methods, huge headers, `Host` names, chunked and empty
//! bodies, bytes that are not HTTP), and hostile jobs (endless loops, huge allocations,
//! deep recursion, calls to the server's own API, file://, gopher://, 169.254.169.254,
//! local ports, endless and IDN URLs).
//!
//! It proves that for all of that:
//! - no answer is a 5xx, no connection drops and no request hangs;
//! - every JSON-RPC reply is a valid JSON-RPC 2.0 reply with the call's `id`, and the one
//!   docs/api.md gives: -32700, -32600 or -32601 where the envelope says so, -32602 (with a
//!   non-empty `data.errors`) exactly for params that cannot decode, else a result or an
//!   error the method documents; never -32603 or -32001 (the storage is up). Property
//!   checks hold every method's decoder to that on batches of generated params;
//! - hostile jobs end as failed jobs (or killed, when killed) within a deadline;
//! - nothing panics, the server keeps serving, `/healthz` and `/readyz` answer 200, and it
//!   shuts down cleanly;
//! - nothing changes that the fuzzer did not ask to change: it asks to change only scrapers
//!   it created (or ids that cannot exist), while the calls the server must refuse (sent
//!   as a page of another site would, or by scripts through the server's own API) aim at
//!   the seeded scrapers on purpose; afterwards the seeded scrapers read back byte for byte
//!   as before, have no jobs, and the storage holds no scraper or job the fuzzer did not
//!   create.
//!
//! A failure prints each class of failure once, with the smallest request that showed it
//! and the server's answer, and the warnings and errors the server logged. The seed fixes
//! what each driver sends (only the ids the server assigns, and so the ids later calls
//! name, differ from run to run); the printed request of a failure reproduces it alone.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

#[path = "fuzz/mod.rs"]
mod fuzz;

use fuzz::model::{self, Expect, Kind, Prediction, Replies};
use fuzz::target::Backend;
use serde_json::{json, Value};

#[test]
fn fuzz_in_memory() {
    fuzz::run_test(Backend::Memory);
}

#[test]
fn fuzz_on_postgresql() {
    fuzz::run_test(Backend::Postgres);
}

/// The oracle knows every method docs/api.md documents, and no other.
#[test]
fn the_oracle_knows_every_method_of_docs_api_md() {
    let docs = include_str!("../../docs/api.md");
    let mut documented: Vec<&str> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("#### `"))
        .filter_map(|line| line.split('`').next())
        .collect();
    let mut modeled: Vec<&str> = model::METHODS.iter().map(|(name, _)| *name).collect();
    documented.sort_unstable();
    modeled.sort_unstable();
    assert_eq!(documented, modeled);
}

/// The oracle's reading of docs/api.md on examples whose answer the document spells out
/// (the fuzz runs then hold the server to the same reading on generated bodies).
#[test]
fn the_oracle_reads_docs_api_md_as_written() {
    let one = |body: &[u8]| match model::expect(body, 2 * 1024 * 1024) {
        Expect::Rpc(Replies::One(reply)) => reply,
        other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
    };
    let error = |body: &[u8]| {
        let reply = one(body);
        match reply.kind {
            Kind::Error(code) => (code, reply.id),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
        }
    };
    let prediction = |body: &str| match one(body.as_bytes()).kind {
        Kind::Call { prediction, .. } => prediction,
        other => panic!("{body}: {other:?}"),
    };
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let batch = |calls: usize| {
        Value::Array(vec![
            json!({"jsonrpc": "2.0", "id": 1, "method": "is_read_only"});
            calls
        ])
        .to_string()
    };
    for (body, code, id) in [
        (&b"{not json"[..], -32700, Value::Null),
        (b"", -32700, Value::Null),
        (deep.as_bytes(), -32700, Value::Null),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"is_read_only\"}",
            -32700,
            Value::Null,
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":1e400}}"#,
            -32700,
            Value::Null,
        ),
        (b"[]", -32600, Value::Null),
        (batch(101).as_bytes(), -32600, Value::Null),
        (
            br#"{"jsonrpc":"2.0","id":{"a":1},"method":"is_read_only"}"#,
            -32600,
            Value::Null,
        ),
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":"{}","method":"is_read_only"}}"#,
                "i".repeat(257)
            )
            .as_bytes(),
            -32600,
            Value::Null,
        ),
        (
            br#"{"jsonrpc":"1.0","id":1,"method":"is_read_only"}"#,
            -32600,
            json!(1),
        ),
        (
            br#"{"jsonrpc":"2.0","id":"x","method":7}"#,
            -32600,
            json!("x"),
        ),
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{}"}}"#,
                "m".repeat(65)
            )
            .as_bytes(),
            -32600,
            json!(1),
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"run_scraper"}"#,
            -32601,
            json!(1),
        ),
        (br#"42"#, -32600, Value::Null),
    ] {
        assert_eq!(error(body), (code, id), "{}", String::from_utf8_lossy(body));
    }
    assert!(
        matches!(model::expect(batch(100).as_bytes(), usize::MAX), Expect::Rpc(Replies::Batch(replies)) if replies.len() == 100)
    );
    assert!(matches!(
        model::expect(br#"{"jsonrpc":"2.0","method":"nope"}"#, usize::MAX),
        Expect::Rpc(Replies::Nothing)
    ));
    assert!(matches!(
        model::expect(&[b' '; 11], 10),
        Expect::Status(413)
    ));
    assert_eq!(
        one(br#"{"jsonrpc":"2.0","id":1,"id":"last","method":"is_read_only"}"#).id,
        json!("last"),
        "a repeated key: the last one counts"
    );

    for (body, expected) in [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":1}}"#,
            Prediction::Decodes,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":1,"unknown":[]}}"#,
            Prediction::Decodes,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":1.0}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":"1"}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":18446744073709551615}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":[1]}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules","params":[]}"#,
            Prediction::Decodes,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules","params":{"unexpected":1}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"enqueue_scraper","params":{"scraper_id":1,"priority":2}}"#,
            Prediction::Decodes,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"enqueue_scraper","params":{"scraper_id":1,"priority":"HIGH"}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"enqueue_scraper","params":{"scraper_id":1,"priority":1.0}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"enqueue_scraper","params":{"scraper_id":1}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper_job_logs","params":{"scraper_id":1,"job_id":1,"max_lines":-5}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"create_scraper","params":{"scraper":{"name":"x","schedule":"inactive","handler":"nope"}}}"#,
            Prediction::Decodes,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"create_scraper","params":{"scraper":{"name":"x","schedule":"every_year","handler":"script"}}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"create_scraper","params":{"scraper":{"name":"x","schedule":"inactive","handler":"script","config":{"params":[1]}}}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"create_scraper","params":{"scraper":{"schedule":"inactive","handler":"script"}}}"#,
            Prediction::Invalid,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"run_ephemeral","params":{"handler":"script","priority":null}}"#,
            Prediction::Invalid,
        ),
    ] {
        assert_eq!(prediction(body), expected, "{body}");
    }
    let long_filter = json!({"jsonrpc": "2.0", "id": 1, "method": "search_scrapers", "params": {"name_filter": "n".repeat(257)}}).to_string();
    assert_eq!(
        prediction(&long_filter),
        Prediction::Invalid,
        "name_filter is at most 256 characters"
    );
}

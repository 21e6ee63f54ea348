//! The JsonRPC API over real HTTP, method by method and error by error, on the in-memory
//! store and on PostgreSQL alike, plus the original Sneakpeek's recorded exchanges.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{Backend, TestApp};

/// Runs each check against a server in memory and one on PostgreSQL.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check(super::Backend::Memory).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check(super::Backend::Postgres).await })*
        }
    };
}

conformance!(
    get_schedules_and_get_priorities_answer_exactly_as_the_original,
    the_original_create_exchange_gives_the_same_shape,
    create_assigns_ids_and_validates_each_field,
    get_and_search_scrapers,
    update_and_delete_take_effect_and_report_unknown_ids,
    enqueue_refuses_a_second_active_job_and_unknown_scrapers,
    jobs_can_be_listed_read_and_killed,
    an_ephemeral_script_run_returns_its_result_and_log,
    read_only_mode_refuses_every_change_to_scrapers,
);

fn demo_scraper() -> Value {
    json!({"id":-1,"name":"Demo","schedule":"every_second","schedule_crontab":null,"schedule_priority":2,"handler":"script","config":{"params":{"source":"\"ok\""},"plugins":null}})
}

/// Removes our additions (appended after the original's fields) so the rest compares with
/// the original's JSON.
fn as_original(mut scraper: Value) -> Value {
    for added in [
        "timeout_seconds",
        "retry",
        "schedule_timezone",
        "schedule_crontab_dialect",
    ] {
        assert_eq!(
            scraper.as_object_mut().unwrap().remove(added),
            Some(Value::Null),
            "{added}"
        );
    }
    scraper
}

async fn get_schedules_and_get_priorities_answer_exactly_as_the_original(backend: Backend) {
    let app = TestApp::spawn_on(backend, &[]).await;
    let (status, body) = app
        .post_raw(r#"{"jsonrpc":"2.0","id":0,"method":"get_schedules","params":{}}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"jsonrpc":"2.0","result":["inactive","every_second","every_minute","every_hour","every_day","every_week","every_month","crontab"],"id":0}"#
    );
    let (_, body) = app
        .post_raw(r#"{"jsonrpc":"2.0","id":0,"method":"get_priorities","params":{}}"#)
        .await;
    assert_eq!(
        body,
        r#"{"jsonrpc":"2.0","result":[{"name":"UTMOST","value":0},{"name":"HIGH","value":1},{"name":"NORMAL","value":2}],"id":0}"#
    );
    let (_, body) = app
        .post_raw(r#"{"jsonrpc":"2.0","id":0,"method":"is_read_only","params":{}}"#)
        .await;
    assert_eq!(body, r#"{"jsonrpc":"2.0","result":false,"id":0}"#);
    assert_eq!(
        app.result("get_scraper_handlers", json!({})).await,
        json!(["extract", "script"])
    );
}

async fn the_original_create_exchange_gives_the_same_shape(backend: Backend) {
    let app = TestApp::spawn_on(backend, &["--no-scheduler"]).await;
    let created = app
        .result("create_scraper", json!({"scraper": demo_scraper()}))
        .await;
    assert_eq!(
        serde_json::to_string(&as_original(created)).unwrap(),
        r#"{"id":1,"name":"Demo","schedule":"every_second","schedule_crontab":null,"handler":"script","config":{"params":{"source":"\"ok\""},"plugins":null},"schedule_priority":2,"state":null}"#
    );
    // The original's second sample: no crontab, no priority, config `{}`-like.
    let failing = app
        .result("create_scraper", json!({"scraper": {"id":-1,"name":"Failing","schedule":"inactive","handler":"script","config":{"params":{"source":"throw \"boom: x\""}}}}))
        .await;
    assert_eq!(
        (
            failing["id"].clone(),
            failing["schedule_priority"].clone(),
            failing["config"]["plugins"].clone()
        ),
        (json!(2), json!(2), Value::Null)
    );
    let listed = app.result("get_scrapers", json!({})).await;
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|scraper| scraper["name"].clone())
            .collect::<Vec<_>>(),
        [json!("Demo"), json!("Failing")]
    );
}

async fn create_assigns_ids_and_validates_each_field(backend: Backend) {
    let app = TestApp::spawn_on(backend, &[]).await;
    let mut without_id = demo_scraper();
    without_id.as_object_mut().unwrap().remove("id");
    without_id["schedule"] = json!("inactive");
    assert_eq!(
        app.result("create_scraper", json!({"scraper": without_id}))
            .await["id"],
        1
    );

    let error = app.error("create_scraper", json!({"scraper": {"name": " ", "schedule": "crontab", "schedule_crontab": "*/5 * * * * *", "handler": "script"}})).await;
    assert_eq!(error["code"], 10005);
    let locations: Vec<Value> = error["data"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["loc"].clone())
        .collect();
    assert_eq!(
        locations,
        [
            json!(["scraper", "name"]),
            json!(["scraper", "schedule_crontab"])
        ]
    );
    assert!(
        error["data"]["errors"][1]["msg"]
            .as_str()
            .unwrap()
            .contains("5 fields"),
        "{error}"
    );

    let error = app
        .error(
            "create_scraper",
            json!({"scraper": {"name": "x", "schedule": "crontab", "handler": "script"}}),
        )
        .await;
    assert_eq!(
        (
            error["code"].clone(),
            error["data"]["errors"][0]["msg"].clone()
        ),
        (json!(10005), json!("required when the schedule is crontab"))
    );

    let error = app
        .error(
            "create_scraper",
            json!({"scraper": {"name": "x", "schedule": "inactive", "handler": "nope"}}),
        )
        .await;
    assert_eq!(
        error,
        json!({"code": 10004, "message": "Unknown scraper handler", "data": {"handler": "nope"}})
    );

    let error = app
        .error(
            "create_scraper",
            json!({"scraper": {"schedule": "inactive", "handler": "script"}}),
        )
        .await;
    assert_eq!(error["code"], -32602);
    assert_eq!(
        error["data"]["errors"][0]["loc"],
        json!(["scraper", "name"])
    );
    assert_eq!(error["data"]["errors"][0]["msg"], "field required");

    let error = app
        .error(
            "create_scraper",
            json!({"scraper": {"name": "x", "schedule": "every_year", "handler": "script"}}),
        )
        .await;
    assert_eq!(
        (
            error["code"].clone(),
            error["data"]["errors"][0]["loc"].clone()
        ),
        (json!(-32602), json!(["scraper", "schedule"]))
    );
    assert_eq!(
        app.result("get_scrapers", json!({}))
            .await
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing invalid was stored"
    );
}

async fn get_and_search_scrapers(backend: Backend) {
    let app = TestApp::spawn_on(backend, &[]).await;
    for name in ["news a", "shop", "news b"] {
        app.result("create_scraper", json!({"scraper": {"name": name, "schedule": "inactive", "handler": "script", "config": {}}})).await;
    }
    assert_eq!(
        app.result("get_scraper", json!({"id": 2})).await["name"],
        "shop"
    );
    assert_eq!(
        app.error("get_scraper", json!({"id": 12345})).await,
        json!({"code": 5000, "message": "Scraper not found", "data": 12345})
    );
    let found = app
        .result(
            "search_scrapers",
            json!({"name_filter": "news", "max_items": 10, "last_id": 1}),
        )
        .await;
    assert_eq!(
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|scraper| scraper["name"].clone())
            .collect::<Vec<_>>(),
        [json!("news b")]
    );
    let error = app.error("get_scraper", json!({"id": "two"})).await;
    assert_eq!(
        (
            error["code"].clone(),
            error["data"]["errors"][0]["loc"].clone()
        ),
        (json!(-32602), json!(["id"]))
    );
}

async fn update_and_delete_take_effect_and_report_unknown_ids(backend: Backend) {
    let app = TestApp::spawn_on(backend, &[]).await;
    let mut scraper = app.result("create_scraper", json!({"scraper": {"name": "first", "schedule": "inactive", "handler": "script", "config": {}}})).await;
    scraper["name"] = json!("renamed");
    scraper["schedule"] = json!("crontab");
    scraper["schedule_crontab"] = json!("0 * * * *");
    assert_eq!(
        app.result("update_scraper", json!({"scraper": scraper.clone()}))
            .await,
        scraper
    );
    assert_eq!(
        app.result("get_scraper", json!({"id": scraper["id"]}))
            .await["name"],
        "renamed"
    );
    scraper["schedule_crontab"] = json!("not cron");
    assert_eq!(
        app.error("update_scraper", json!({"scraper": scraper.clone()}))
            .await["code"],
        10005
    );
    scraper["schedule_crontab"] = json!("0 * * * *");
    scraper["id"] = json!(999);
    assert_eq!(
        app.error("update_scraper", json!({"scraper": scraper}))
            .await["code"],
        5000
    );

    assert_eq!(
        app.result("delete_scraper", json!({"id": 1})).await["name"],
        "renamed"
    );
    assert_eq!(
        app.error("get_scraper", json!({"id": 1})).await["code"],
        5000
    );
    assert_eq!(
        app.error("delete_scraper", json!({"id": 1})).await["code"],
        5000
    );
}

async fn enqueue_refuses_a_second_active_job_and_unknown_scrapers(backend: Backend) {
    // No worker: the job stays pending, exactly as in the original's recorded exchange.
    let app = TestApp::spawn_on(backend, &["--no-worker", "--no-scheduler"]).await;
    app.result("create_scraper", json!({"scraper": {"name": "Demo scraper", "schedule": "inactive", "handler": "script", "schedule_priority": 0, "config": {"params": {"source": "1"}}}}))
        .await;
    let job = app
        .result("enqueue_scraper", json!({"scraper_id": 1, "priority": 1}))
        .await;
    let keys: Vec<&str> = job
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "scraper",
            "status",
            "priority",
            "created_at",
            "started_at",
            "last_active_at",
            "finished_at",
            "result",
            // Our additions, after the original's fields.
            "attempt",
            "next_attempt_at",
            "attempts"
        ]
    );
    assert_eq!(
        (
            job["status"].clone(),
            job["priority"].clone(),
            job["scraper"]["schedule_priority"].clone()
        ),
        (json!("pending"), json!(1), json!(0))
    );
    let created = job["created_at"].as_str().unwrap();
    assert!(
        created.len() == 26 && !created.ends_with('Z'),
        "naive UTC with microseconds, as the original: {created}"
    );

    assert_eq!(
        app.error("enqueue_scraper", json!({"scraper_id": 1, "priority": 1}))
            .await,
        json!({"code": 10000, "message": "Scraper has active jobs"})
    );
    assert_eq!(
        app.error("enqueue_scraper", json!({"scraper_id": 999, "priority": 1}))
            .await,
        json!({"code": 5000, "message": "Scraper not found", "data": 999})
    );
    let error = app
        .error(
            "enqueue_scraper",
            json!({"scraper_id": 1, "priority": "HIGH"}),
        )
        .await;
    assert_eq!(
        error["data"]["errors"][0],
        json!({"loc": ["priority"], "msg": "value is not a valid enumeration member; permitted: 0, 1, 2", "type": "type_error"})
    );
}

async fn jobs_can_be_listed_read_and_killed(backend: Backend) {
    let app = TestApp::spawn_on(backend, &["--no-worker", "--no-scheduler"]).await;
    app.result("create_scraper", json!({"scraper": {"name": "s", "schedule": "inactive", "handler": "script", "config": {"params": {"source": "1"}}}})).await;
    let first = app
        .result("enqueue_scraper", json!({"scraper_id": 1, "priority": 2}))
        .await;
    let killed = app
        .result(
            "kill_scraper_job",
            json!({"scraper_id": 1, "job_id": first["id"]}),
        )
        .await;
    assert_eq!(killed["status"], "killed");
    assert_eq!(
        app.error(
            "kill_scraper_job",
            json!({"scraper_id": 1, "job_id": first["id"]})
        )
        .await["code"],
        10006
    );
    let second = app
        .result("enqueue_scraper", json!({"scraper_id": 1, "priority": 2}))
        .await;
    let jobs = app
        .result("get_scraper_jobs", json!({"scraper_id": 1}))
        .await;
    assert_eq!(
        jobs.as_array()
            .unwrap()
            .iter()
            .map(|job| job["id"].clone())
            .collect::<Vec<_>>(),
        [second["id"].clone(), first["id"].clone()]
    );
    assert_eq!(
        app.result("get_scraper_jobs", json!({"scraper_id": 42}))
            .await,
        json!([])
    );
    assert_eq!(
        app.result(
            "get_scraper_job",
            json!({"scraper_id": 1, "job_id": second["id"]})
        )
        .await["status"],
        "pending"
    );
    assert_eq!(
        app.error("get_scraper_job", json!({"scraper_id": 1, "job_id": 999}))
            .await,
        json!({"code": 5001, "message": "Scraper job not found", "data": 999})
    );
    assert_eq!(
        app.error(
            "get_scraper_job_logs",
            json!({"scraper_id": 2, "job_id": second["id"]})
        )
        .await["code"],
        5001
    );
}

/// Polls a job until it finishes (the API has no push; clients poll like this).
async fn finished_job(app: &TestApp, job: &Value) -> Value {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let current = app
                .result(
                    "get_scraper_job",
                    json!({"scraper_id": job["scraper"]["id"], "job_id": job["id"]}),
                )
                .await;
            if !["pending", "started"].contains(&current["status"].as_str().unwrap()) {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job finishes")
}

async fn an_ephemeral_script_run_returns_its_result_and_log(backend: Backend) {
    let app = TestApp::spawn_on(backend, &[]).await;
    let source = "log(\"adding up\");\nlet total = args.a + args.b;\ntotal";
    let job = app.result("run_ephemeral", json!({"handler": "script", "config": {"params": {"source": source, "args": {"a": 40, "b": 2}}}})).await;
    assert!(job["scraper"]["id"].as_i64().unwrap() < 0);
    let done = finished_job(&app, &job).await;
    assert_eq!(
        (done["status"].clone(), done["result"].clone()),
        (json!("succeeded"), json!("42"))
    );
    let log = app
        .result(
            "get_scraper_job_logs",
            json!({"scraper_id": job["scraper"]["id"], "job_id": job["id"]}),
        )
        .await;
    let messages: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&"adding up"), "{messages:?}");
    let first_two = app
        .result(
            "get_scraper_job_logs",
            json!({"scraper_id": job["scraper"]["id"], "job_id": job["id"], "max_lines": 2}),
        )
        .await;
    assert_eq!(first_two.as_array().unwrap().len(), 2);
    let after = app.result("get_scraper_job_logs", json!({"scraper_id": job["scraper"]["id"], "job_id": job["id"], "after": first_two[1]["id"]})).await;
    assert_eq!(
        after.as_array().unwrap().len() + 2,
        log.as_array().unwrap().len()
    );

    let failed = app
        .result(
            "run_ephemeral",
            json!({"handler": "script", "config": {"params": {"source": "let x = ;"}}}),
        )
        .await;
    let failed = finished_job(&app, &failed).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["result"].as_str().unwrap().contains("line 1"),
        "{failed}"
    );
    assert_eq!(
        app.error("run_ephemeral", json!({"handler": "nope", "config": {}}))
            .await["code"],
        10004
    );
}

async fn read_only_mode_refuses_every_change_to_scrapers(backend: Backend) {
    let app = TestApp::spawn_on(backend, &["--read-only"]).await;
    assert_eq!(app.result("is_read_only", json!({})).await, json!(true));
    let refused = json!({"code": 5002, "message": "Storage is read-only"});
    assert_eq!(
        app.error("create_scraper", json!({"scraper": demo_scraper()}))
            .await,
        refused
    );
    let mut scraper = demo_scraper();
    scraper["id"] = json!(1);
    assert_eq!(
        app.error("update_scraper", json!({"scraper": scraper}))
            .await,
        refused
    );
    assert_eq!(app.error("delete_scraper", json!({"id": 1})).await, refused);
    assert_eq!(app.result("get_scrapers", json!({})).await, json!([]));
}

#[tokio::test]
async fn a_read_only_scraper_list_comes_from_a_file_and_still_runs() {
    let file = std::env::temp_dir().join(format!("sneakpeek-scrapers-{}.yaml", std::process::id()));
    std::fs::write(&file, "- name: From file\n  schedule: inactive\n  handler: script\n  config:\n    params:\n      source: '\"from file\"'\n").unwrap();
    let app = TestApp::spawn(&["--read-only", "--scrapers-file", file.to_str().unwrap()]).await;
    let listed = app.result("get_scrapers", json!({})).await;
    assert_eq!(
        (listed[0]["id"].clone(), listed[0]["name"].clone()),
        (json!(1), json!("From file"))
    );
    let job = app
        .result("enqueue_scraper", json!({"scraper_id": 1, "priority": 0}))
        .await;
    assert_eq!(finished_job(&app, &job).await["result"], "from file");
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn a_scrapers_file_with_a_bad_scraper_stops_the_start_with_its_name() {
    let file = std::env::temp_dir().join(format!(
        "sneakpeek-bad-scrapers-{}.json",
        std::process::id()
    ));
    std::fs::write(&file, r#"[{"name": "Broken", "schedule": "crontab", "schedule_crontab": "nope", "handler": "script"}]"#).unwrap();
    let settings = <server::Settings as clap::Parser>::try_parse_from([
        "sneakpeek",
        "--scrapers-file",
        file.to_str().unwrap(),
    ])
    .unwrap();
    let error = server::Server::builder()
        .settings(settings)
        .build()
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("\"Broken\"") && error.contains("schedule_crontab"),
        "{error}"
    );
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn bad_json_is_a_parse_error_with_a_null_id() {
    let app = TestApp::spawn(&[]).await;
    for body in ["{not json", "", "[1,", &"[".repeat(10_000)] {
        let (status, reply) = app.post_raw(body).await;
        assert_eq!(status, 200);
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(
            (reply["error"]["code"].clone(), reply["id"].clone()),
            (json!(-32700), Value::Null),
            "{body:.20}"
        );
    }
}

#[tokio::test]
async fn malformed_calls_get_the_right_error_and_never_a_500() {
    let app = TestApp::spawn(&[]).await;
    let cases: &[(&str, i64)] = &[
        (r#""just a string""#, -32600),
        ("42", -32600),
        ("null", -32600),
        ("{}", -32600),
        (r#"{"jsonrpc":"2.0","id":1}"#, -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":7}"#, -32600),
        (
            r#"{"jsonrpc":"1.0","id":1,"method":"get_schedules"}"#,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"get_schedules"}"#,
            -32600,
        ),
        ("[]", -32600),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"no_such_method"}"#,
            -32601,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":null}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":1e400}}"#,
            -32700,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":99999999999999999999}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":{"id":1.5}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":[1]}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper","params":"x"}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_schedules","params":{"unexpected":1}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"create_scraper","params":{"scraper":[]}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"create_scraper","params":{"scraper":{"name":"x","schedule":"inactive","handler":"script","config":{"params":[1]}}}}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"get_scraper_job_logs","params":{"scraper_id":1,"job_id":1,"max_lines":-5}}"#,
            -32602,
        ),
    ];
    for (body, code) in cases {
        let (status, reply) = app.post_raw(body).await;
        assert_eq!(status, 200, "{body}");
        let reply: Value =
            serde_json::from_str(&reply).unwrap_or_else(|_| panic!("{body}: {reply}"));
        assert_eq!(reply["error"]["code"], *code, "{body}: {reply}");
    }
    let nested = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"create_scraper","params":{{"scraper":{{"name":"x","schedule":"inactive","handler":"script","config":{{"params":{{"deep":{}1{}}}}}}}}}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let (status, reply) = app.post_raw(&nested).await;
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<Value>(&reply)
            .unwrap()
            .get("result")
            .is_some(),
        "100 levels of nesting are data, not an attack: {reply}"
    );
}

#[tokio::test]
async fn batches_answer_every_call_and_notifications_get_no_reply() {
    let app = TestApp::spawn(&[]).await;
    let (status, body) = app
        .post_raw(r#"{"jsonrpc":"2.0","method":"get_schedules"}"#)
        .await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (_, body) = app
        .post_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"is_read_only"},{"jsonrpc":"2.0","method":"is_read_only"},{"jsonrpc":"2.0","id":"b","method":"nope"},5]"#)
        .await;
    let replies: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(replies.as_array().unwrap().len(), 3);
    assert_eq!(
        (replies[0]["id"].clone(), replies[0]["result"].clone()),
        (json!(1), json!(false))
    );
    assert_eq!(
        (
            replies[1]["id"].clone(),
            replies[1]["error"]["code"].clone()
        ),
        (json!("b"), json!(-32601))
    );
    assert_eq!(replies[2]["error"]["code"], -32600);
    let (status, body) = app
        .post_raw(r#"[{"jsonrpc":"2.0","method":"is_read_only"}]"#)
        .await;
    assert_eq!(
        (status, body.as_str()),
        (200, ""),
        "a batch of notifications gets no reply"
    );
}

#[tokio::test]
async fn each_method_also_answers_at_its_own_path() {
    let app = TestApp::spawn(&[]).await;
    let response = app
        .client
        .post(app.url("/api/v1/jsonrpc/get_schedules"))
        .body(r#"{"jsonrpc":"2.0","id":0,"method":"get_schedules","params":{}}"#)
        .send()
        .await
        .unwrap();
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["result"][0], "inactive");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let app = TestApp::spawn(&["--max-body-bytes", "1024"]).await;
    let (status, _) = app
        .post_raw(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"is_read_only","params":{{"pad":"{}"}}}}"#,
            "x".repeat(2048)
        ))
        .await;
    assert_eq!(status, 413);
    let (status, _) = app
        .post_raw(r#"{"jsonrpc":"2.0","id":1,"method":"is_read_only"}"#)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_api_token_is_required_when_set() {
    let app = TestApp::spawn(&["--api-token", "correct horse"]).await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"get_scrapers"}"#;
    let anonymous = app
        .client
        .post(app.url("/api/v1/jsonrpc"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let wrong = app
        .client
        .post(app.url("/api/v1/jsonrpc"))
        .bearer_auth("wrong horse")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = app
        .client
        .post(app.url("/api/v1/jsonrpc"))
        .bearer_auth("correct horse")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.json::<Value>().await.unwrap()["result"], json!([]));

    // A person is sent to the login page, signs in, and gets a session cookie.
    let page = app
        .client
        .get(app.url("/scrapers?q=a"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 303);
    assert_eq!(page.headers()["location"], "/login?next=/scrapers%3Fq%3Da");
    let refused = app
        .client
        .post(app.url("/login"))
        .form(&[("token", "nope"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert!(refused.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?error=invalid"));
    let login = app
        .client
        .post(app.url("/login"))
        .form(&[("token", "correct horse"), ("next", "/scrapers")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()["location"], "/scrapers");
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && !cookie.contains("correct"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let page = app
        .client
        .get(app.url("/"))
        .header("accept", "text/html")
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    // Health checks stay open for load balancers.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spawn(&[]).await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    app.result("get_scrapers", json!({})).await;
    app.error("get_scraper", json!({"id": 1})).await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        r#"sneakpeek_queue_length{priority="NORMAL"} 0"#,
        r#"sneakpeek_replicas{type="worker"} 1"#,
        r#"sneakpeek_invocations_total{subsystem="api",method="get_scrapers",type="success"}"#,
        r#"sneakpeek_invocations_total{subsystem="api",method="get_scraper",type="error"}"#,
        "sneakpeek_latency_seconds_bucket",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn cross_origin_calls_are_allowed_only_from_listed_origins() {
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/jsonrpc"))
            .header("origin", origin.to_owned())
            .header("access-control-request-method", "POST")
            .send()
    };
    let default = TestApp::spawn(&[]).await;
    let response = preflight(&default, "https://elsewhere.example")
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    let open = TestApp::spawn(&["--cors-allow-origin", "https://tools.example.com"]).await;
    let response = preflight(&open, "https://tools.example.com").await.unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://tools.example.com"
    );
    let response = preflight(&open, "https://elsewhere.example").await.unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn the_scrapers_page_is_rendered_on_the_server_with_its_data() {
    let app = TestApp::spawn(&[]).await;
    app.result("create_scraper", json!({"scraper": {"name": "Rendered before hydration", "schedule": "inactive", "handler": "script", "config": {}}})).await;
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let html = response.text().await.unwrap();
    // The row comes from the server function during SSR, not from the browser.
    assert!(html.contains("Rendered before hydration"), "{html}");
}

/// Pages rendered while other servers start in the same process all complete. Generating a
/// router's route list runs the app with resource loading suspended process-wide, so a page
/// whose data started loading in that window used to wait forever (a test suite, or an
/// embedder running several servers, saw a render hang now and then).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_render_while_other_servers_start() {
    let app = TestApp::spawn(&[]).await;
    app.result("create_scraper", json!({"scraper": {"name": "Rendered while starting", "schedule": "inactive", "handler": "script", "config": {}}})).await;
    let render = |app: &TestApp| {
        let request = app.client.get(app.url("/")).send();
        async move {
            // Far above any render's time: only a render that never completes reaches it.
            let response = tokio::time::timeout(Duration::from_secs(30), async {
                request.await.unwrap().text().await.unwrap()
            })
            .await;
            response.map(|html| html.contains("Rendered while starting"))
        }
    };
    for _ in 0..10 {
        let renders = futures_util::future::join_all((0..30).map(|_| render(&app)));
        let starts = futures_util::future::join_all((0..5).map(|_| TestApp::spawn(&[])));
        let (rendered, _started) = tokio::join!(renders, starts);
        let hung = rendered.iter().filter(|outcome| outcome.is_err()).count();
        assert_eq!(
            hung,
            0,
            "{hung} of {} renders never completed",
            rendered.len()
        );
        assert!(rendered.into_iter().all(|outcome| outcome == Ok(true)));
    }
}

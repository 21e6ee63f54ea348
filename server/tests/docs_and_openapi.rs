//! The documentation surface over real HTTP: Swagger UI at `/api` served from the binary, the
//! OpenAPI document at `/openapi.json` (valid OpenAPI 3.1, one path per JsonRPC method, and
//! true to what the server answers), and the user documentation at `/docs/`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::collections::BTreeSet;

use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use support::TestApp;

/// A server that never runs a job: the examples of the document point at example.com, and
/// tests send no traffic off this machine.
async fn spawn() -> TestApp {
    TestApp::spawn(&["--no-worker", "--no-scheduler"]).await
}

async fn get(app: &TestApp, url: &str) -> reqwest::Response {
    app.client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"))
}

async fn openapi_document(app: &TestApp) -> Value {
    let response = get(app, &app.url("/openapi.json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("/openapi.json is JSON")
}

/// The values of every `name="…"` attribute in `html` (enough for the pages we serve).
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let marker = format!(r#" {name}=""#);
    html.split(marker.as_str())
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|value| value.replace("&amp;", "&"))
        .collect()
}

/// The links and sources of a page that point into this server, as absolute URLs.
fn local_links(app: &TestApp, page: &Url, html: &str) -> Vec<Url> {
    let origin = Url::parse(&app.address).unwrap();
    ["href", "src"]
        .iter()
        .flat_map(|name| attribute_values(html, name))
        .filter_map(|value| page.join(&value).ok())
        .filter(|url| url.origin() == origin.origin())
        .collect()
}

/// The per-method paths of the document: method name -> its `post` operation.
fn documented_methods(document: &Value) -> Vec<(String, Value)> {
    document["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .map(|(path, item)| {
            let method = path
                .strip_prefix("/api/v1/jsonrpc/")
                .unwrap_or_else(|| panic!("unexpected path {path}"));
            (method.to_owned(), item["post"].clone())
        })
        .collect()
}

/// A validator for the schema at `pointer` in the document, its `$ref`s resolved in it.
fn validator_at(document: &Value, pointer: &str) -> jsonschema::Validator {
    let mut schema = document.clone();
    schema["$ref"] = json!(format!("#{pointer}"));
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|error| panic!("the schema at {pointer} compiles: {error}"))
}

fn reply_schema_pointer(method: &str) -> String {
    format!(
        "/paths/~1api~1v1~1jsonrpc~1{method}/post/responses/200/content/application~1json/schema"
    )
}

fn documented_codes(operation: &Value) -> Vec<i64> {
    let error = operation["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
        .as_array()
        .and_then(|replies| {
            replies
                .iter()
                .find(|reply| reply["properties"].get("error").is_some())
        })
        .expect("the reply schema has an error alternative");
    error["properties"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .expect("codes are listed")
        .iter()
        .map(|code| code.as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn api_leads_to_swagger_ui_whose_assets_all_come_from_this_server() {
    let app = spawn().await;
    let response = get(&app, &app.url("/api")).await;
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let page_url = Url::parse(&app.address).unwrap().join(&location).unwrap();

    let response = get(&app, page_url.as_str()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");

    let scripts = attribute_values(&html, "src");
    let styles = attribute_values(&html, "href");
    assert!(
        scripts.iter().any(|src| src.contains("swagger-ui-bundle")),
        "{scripts:?}"
    );
    assert!(
        styles.iter().any(|href| href.contains("swagger-ui.css")),
        "{styles:?}"
    );
    let assets = local_links(&app, &page_url, &html);
    assert_eq!(
        assets.len(),
        scripts.len() + styles.len(),
        "every asset is on this server: {scripts:?} {styles:?}"
    );
    let mut initializer = String::new();
    for asset in assets {
        let response = get(&app, asset.as_str()).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        if asset.path().ends_with("swagger-initializer.js") {
            initializer = response.text().await.unwrap();
        }
    }
    assert!(
        initializer.contains("/openapi.json"),
        "Swagger UI loads our document: {initializer}"
    );
}

#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3_1() {
    let app = spawn().await;
    let document = openapi_document(&app).await;
    // The OpenAPI Initiative's JSON Schema of OpenAPI 3.1 documents (schema/2022-10-07).
    let specification: Value =
        serde_json::from_str(include_str!("data/openapi-3.1-schema.json")).unwrap();
    let validator =
        jsonschema::validator_for(&specification).expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "invalid OpenAPI: {errors:#?}");
    assert_eq!(document["openapi"], "3.1.0");

    // What a schema validation does not check: every reference points at a schema that exists.
    let text = document.to_string();
    let references: BTreeSet<&str> = text
        .split(r##""$ref":"#/"##)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(!references.is_empty());
    for reference in references {
        assert!(
            document.pointer(&format!("/{reference}")).is_some(),
            "dangling $ref #/{reference}"
        );
    }
}

#[tokio::test]
async fn every_jsonrpc_method_has_its_own_path_and_no_other_path_is_listed() {
    let app = spawn().await;
    let document = openapi_document(&app).await;
    let mut documented: Vec<String> = documented_methods(&document)
        .into_iter()
        .map(|(method, _)| method)
        .collect();
    documented.sort_unstable();
    // Sorted, not as a set: a name served twice would show as a difference.
    let mut served = server::jsonrpc::METHOD_NAMES.to_vec();
    served.sort_unstable();
    assert_eq!(documented, served);
    for (method, operation) in documented_methods(&document) {
        assert_eq!(operation["operationId"], json!(method));
        let request = &operation["requestBody"]["content"]["application/json"];
        assert_eq!(
            request["schema"]["properties"]["method"]["enum"],
            json!([method])
        );
        assert_eq!(request["example"]["method"], json!(method));
        let codes = documented_codes(&operation);
        for code in [-32700, -32600, -32601, -32602, -32603] {
            assert!(codes.contains(&code), "{method} lists {code}");
        }
    }
}

/// Runs every method's documented example against the server, at the method's own path: a
/// success must match the documented result schema, an error must be one of the method's
/// documented codes, and the params are never reported invalid.
#[tokio::test]
async fn every_documented_example_is_answered_as_the_document_says() {
    let app = spawn().await;
    let document = openapi_document(&app).await;
    let mut methods = documented_methods(&document);
    // A scraper and a job to work on first; deleting the scraper last.
    methods.sort_by_key(|(method, _)| match method.as_str() {
        "create_scraper" => 0,
        "enqueue_scraper" => 1,
        "delete_scraper" => 3,
        _ => 2,
    });
    let mut successes = 0;
    for (method, operation) in &methods {
        let example = &operation["requestBody"]["content"]["application/json"]["example"];
        let response = app
            .client
            .post(app.url(&format!("/api/v1/jsonrpc/{method}")))
            .json(example)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        let reply: Value = response.json().await.unwrap();
        if let Some(error) = reply.get("error") {
            let code = error["code"].as_i64().unwrap();
            assert!(
                ![-32700, -32600, -32601, -32602].contains(&code),
                "{method}'s example is refused: {reply}"
            );
            assert!(
                documented_codes(operation).contains(&code),
                "{method} answered an undocumented error: {reply}"
            );
        } else {
            successes += 1;
        }
        let validator = validator_at(&document, &reply_schema_pointer(method));
        let errors: Vec<String> = validator
            .iter_errors(&reply)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method}'s reply does not match its schema: {errors:#?}\n{reply}"
        );
    }
    assert!(
        successes >= methods.len() - 2,
        "most examples succeed on a fresh server ({successes} of {})",
        methods.len()
    );
}

/// The reply examples (a result, then one per engine error of the method) are written by the
/// model types and the engine's errors, so they show what the reply schema must accept.
#[tokio::test]
async fn every_documented_reply_example_matches_its_reply_schema() {
    let app = spawn().await;
    let document = openapi_document(&app).await;
    let mut errors_shown = 0;
    for (method, operation) in documented_methods(&document) {
        let validator = validator_at(&document, &reply_schema_pointer(&method));
        let content = &operation["responses"]["200"]["content"]["application/json"];
        let examples = content["examples"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} has reply examples"));
        assert!(
            examples["result"]["value"].get("result").is_some(),
            "{method}: the first example is a result"
        );
        for (name, example) in examples {
            let reply = &example["value"];
            if name != "result" {
                assert_eq!(
                    reply["error"]["code"].to_string(),
                    *name,
                    "{method}: errors are named by their code"
                );
                errors_shown += 1;
            }
            let errors: Vec<String> = validator
                .iter_errors(reply)
                .map(|error| format!("{} at {}", error, error.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{method}'s example {name} does not match the schema: {errors:#?}"
            );
        }
    }
    assert!(errors_shown >= 15, "{errors_shown} error examples");
}

#[tokio::test]
async fn a_documented_required_param_is_required_and_an_optional_one_is_not() {
    let app = spawn().await;
    let document = openapi_document(&app).await;
    for (method, operation) in documented_methods(&document) {
        let request = &operation["requestBody"]["content"]["application/json"];
        let required: Vec<&str> = request["schema"]["properties"]["params"]["required"]
            .as_array()
            .map_or(vec![], |names| {
                names.iter().filter_map(Value::as_str).collect()
            });
        let params = request["example"]["params"].as_object().unwrap();
        for name in params.keys() {
            let mut call = request["example"].clone();
            call["params"].as_object_mut().unwrap().remove(name);
            let reply = app.call(&method, call["params"].clone()).await;
            let invalid = reply["error"]["code"] == json!(-32602);
            if required.contains(&name.as_str()) {
                assert!(invalid, "{method} without {name}: {reply}");
                assert_eq!(
                    reply["error"]["data"]["errors"][0]["loc"],
                    json!([name]),
                    "{method} without {name}"
                );
            } else {
                assert!(!invalid, "{method} without the optional {name}: {reply}");
            }
        }
        assert!(
            required.iter().all(|name| params.contains_key(*name)),
            "{method}'s example has every required param"
        );
    }
}

#[tokio::test]
async fn docs_redirects_to_the_index_and_every_page_answers_with_its_title() {
    let app = spawn().await;
    let response = get(&app, &app.url("/docs")).await;
    assert!(response.status().is_redirection());
    assert_eq!(response.headers()["location"], "/docs/");

    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs");
    let mut pages = 0;
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "md") {
            continue;
        }
        let markdown = std::fs::read_to_string(&path).unwrap();
        let title = markdown
            .lines()
            .find_map(|line| line.strip_prefix("# "))
            .unwrap_or_else(|| panic!("{} starts with a title", path.display()));
        let slug = path.file_stem().unwrap().to_str().unwrap();
        let url = if slug == "index" {
            app.url("/docs/")
        } else {
            app.url(&format!("/docs/{slug}"))
        };
        let response = get(&app, &url).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = response.text().await.unwrap();
        assert!(
            html.contains(&format!("<title>{title} · Sneakpeek documentation</title>")),
            "{url} has the title {title:?}"
        );
        assert!(html.contains(r#"<link rel="stylesheet" href="/docs/style.css">"#));
        pages += 1;
    }
    assert!(pages >= 8, "docs has its pages ({pages})");
    assert_eq!(
        get(&app, &app.url("/docs/style.css")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&app, &app.url("/docs/no-such-page")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_documentation_stays_public_when_the_api_needs_a_token() {
    let app = TestApp::spawn(&[
        "--no-worker",
        "--no-scheduler",
        "--api-token",
        "a-long-enough-token",
    ])
    .await;
    let swagger_ui = get(&app, &app.url("/api")).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    for path in [
        "/openapi.json",
        "/docs/",
        "/docs/api",
        "/docs/style.css",
        &swagger_ui,
        &format!("{swagger_ui}swagger-ui-bundle.js"),
    ] {
        assert_eq!(
            get(&app, &app.url(path)).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let call = app
        .client
        .post(app.url("/api/v1/jsonrpc/get_scrapers"))
        .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "get_scrapers"}));
    assert_eq!(
        call.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "while the API itself is not"
    );
}

/// Follows every link of the documentation from `/docs/`: pages, anchors, images, and the
/// links out of the documentation to the rest of this server.
#[tokio::test]
async fn every_link_of_the_docs_leads_somewhere() {
    let app = spawn().await;
    let start = Url::parse(&app.url("/docs/")).unwrap();
    let mut seen = BTreeSet::from([start.clone()]);
    let mut pages = vec![start];
    while let Some(page) = pages.pop() {
        let html = get(&app, page.as_str()).await.text().await.unwrap();
        for mut link in local_links(&app, &page, &html) {
            let fragment = link.fragment().map(str::to_owned);
            link.set_fragment(None);
            let response = get(&app, link.as_str()).await;
            assert!(
                response.status().is_success() || response.status().is_redirection(),
                "{page} links to {link}: {}",
                response.status()
            );
            let is_page = link.path().starts_with("/docs/")
                && response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html");
            if let (true, Some(fragment)) = (is_page, fragment) {
                let target = response.text().await.unwrap();
                assert!(
                    target.contains(&format!(r#"id="{fragment}""#)),
                    "{page} links to a missing anchor {link}#{fragment}"
                );
            }
            if is_page && seen.insert(link.clone()) {
                pages.push(link);
            }
        }
    }
    assert!(
        seen.len() >= 8,
        "every page is reachable from the index: {seen:?}"
    );
}

#[tokio::test]
async fn the_api_page_documents_every_method_and_error_code() {
    let app = spawn().await;
    let document = openapi_document(&app).await;
    let page = get(&app, &app.url("/docs/api")).await.text().await.unwrap();
    for (method, operation) in documented_methods(&document) {
        assert!(
            page.contains(&format!("<code>{method}</code>")),
            "docs/api.md names {method}"
        );
        for code in documented_codes(&operation) {
            assert!(
                page.contains(&code.to_string()),
                "docs/api.md explains error {code} of {method}"
            );
        }
    }
}

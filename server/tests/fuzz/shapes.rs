//! Requests of odd HTTP shapes: what a page of another site makes a browser send (a
//! `text/plain` POST with `Origin` and `Sec-Fetch-Site: cross-site`), other HTTP methods,
//! huge and strange headers, `Host` names, paths, chunked and empty bodies, and bytes that
//! are not HTTP at all.
//!
//! Calls a page of another site sends are changes to the seeded scrapers and creates of ids
//! in [`calls::REFUSED_IDS`]: the server must refuse them before they run, which the final
//! checks see (the seeded scrapers unchanged, none of those ids created).

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::calls::{self, Gen, Pool};
use super::model;
use super::rng::Rng;
use super::shared::Shared;

const BROWSER: &[(&str, &str)] = &[
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
    ("accept", "*/*"),
    ("accept-language", "en-US,en;q=0.9"),
    ("sec-fetch-mode", "no-cors"),
    ("sec-fetch-dest", "empty"),
    ("referer", "https://evil.example/page.html"),
];

pub async fn run(shared: &Shared, stream: u64, count: u64) {
    let mut rng = Rng::new(shared.seed, stream);
    let mut pool = Pool::new(stream);
    // Each bare-bytes case once for sure, whatever the seed; then at random among the rest.
    for index in 0..raw_cases(shared).len() {
        raw(shared, index).await;
    }
    for n in 0..count {
        let mut g = Gen {
            rng: &mut rng,
            pool: &mut pool,
            seeded: &shared.seeded_ids,
            port: shared.port,
            counter: n * 1_000,
        };
        shape(shared, &mut g).await;
    }
}

/// A call a page of another site would love to make: one that changes a seeded scraper, or
/// creates one whose id must never exist.
fn hostile_change(g: &mut Gen) -> Vec<u8> {
    let seeded = *g.rng.pick(g.seeded);
    let refused = g.pool.refused_id();
    let call = match g.rng.below(3) {
        0 => {
            json!({"jsonrpc": "2.0", "id": 1, "method": "delete_scraper", "params": {"id": seeded}})
        }
        1 => {
            json!({"jsonrpc": "2.0", "id": 1, "method": "update_scraper", "params": {"scraper": {"id": seeded, "name": "pwned", "schedule": "every_second", "handler": "script", "config": {"params": {"source": "1"}}}}})
        }
        _ => {
            json!({"jsonrpc": "2.0", "id": 1, "method": "create_scraper", "params": {"scraper": {"id": refused, "name": "cross-site", "schedule": "inactive", "handler": "script"}}})
        }
    };
    if g.rng.chance(20) {
        // The form encoding a `<form>` posts.
        return format!("payload={}", call).into_bytes();
    }
    call.to_string().into_bytes()
}

/// A generated call of a method that changes nothing: for requests that may or may not
/// reach the endpoint, and whose replies are not checked.
fn harmless(g: &mut Gen) -> Vec<u8> {
    let method = *g.rng.pick(&[
        "get_scrapers",
        "get_scraper",
        "search_scrapers",
        "get_schedules",
        "is_read_only",
        "get_scraper_jobs",
    ]);
    let mut call = calls::call(g, method);
    calls::secure(&mut call, g);
    call.to_string().into_bytes()
}

/// A generated call the server should answer normally.
fn ordinary(g: &mut Gen) -> Vec<u8> {
    let method = calls::method(g);
    let mut call = calls::call(g, method);
    calls::secure(&mut call, g);
    call.to_string().into_bytes()
}

/// Sends a request that must get exactly `status`, or (with `None`) anything but a 5xx.
async fn expect_status(
    shared: &Shared,
    what: &str,
    request: reqwest::RequestBuilder,
    body: &[u8],
    status: Option<u16>,
) {
    let Some((got, answer)) = shared.send(request, body).await else {
        return;
    };
    let bad = match status {
        Some(status) => got != status,
        None => got >= 500,
    };
    if bad {
        let expected = status.map_or("not a 5xx".to_owned(), |status| status.to_string());
        shared.fail(
            format!("{what}: HTTP {got} where {expected} was expected"),
            body,
            &model::short(&String::from_utf8_lossy(&answer), 300),
        );
    }
}

/// Sends a generated call in an odd request that may or may not reach the endpoint: when
/// it does (HTTP 200) the reply must be the model's, and what it created is learned; the
/// status must be `status` (with `None`: anything but a 5xx).
async fn maybe_rpc(
    shared: &Shared,
    g: &mut Gen<'_>,
    what: &str,
    request: reqwest::RequestBuilder,
    body: Vec<u8>,
    status: Option<u16>,
) {
    let expect = shared.prepare(&body);
    let Some((got, answer)) = shared.send(request.body(body.clone()), &body).await else {
        return;
    };
    if got == 200 {
        // It ran: learn what it created, whether or not it should have run.
        shared.conclude(g.pool, &expect, &body, got, &answer, &format!("{what}: "));
    }
    if status.map_or(got >= 500, |status| got != status) {
        let expected = status.map_or("not a 5xx".to_owned(), |status| status.to_string());
        shared.fail(
            format!("{what}: HTTP {got} where {expected} was expected"),
            &body,
            &model::short(&String::from_utf8_lossy(&answer), 300),
        );
    }
}

async fn shape(shared: &Shared, g: &mut Gen<'_>) {
    let url = shared.url("/api/v1/jsonrpc");
    let own_origin = format!("http://127.0.0.1:{}", shared.port);
    let client = &shared.client;
    let fresh = &shared.fresh_client;
    match g.rng.below(100) {
        0..=19 => {
            let body = hostile_change(g);
            let content_type = *g.rng.pick(&[
                "text/plain",
                "text/plain;charset=UTF-8",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/json",
            ]);
            let mut request = client
                .post(&url)
                .header("content-type", content_type)
                .header("origin", "https://evil.example")
                .header("sec-fetch-site", "cross-site");
            for (name, value) in BROWSER {
                request = request.header(*name, *value);
            }
            expect_status(
                shared,
                "a cross-site browser call",
                request.body(body.clone()),
                &body,
                Some(403),
            )
            .await;
        }
        20..=29 => {
            let body = hostile_change(g);
            let (origin, site): (Option<&str>, Option<&str>) = *g.rng.pick(&[
                (Some("https://evil.example"), Some("same-site")),
                (Some("https://evil.example"), None),
                (Some("null"), None),
                (Some("http://127.0.0.1.evil.example"), None),
                (None, Some("cross-site")),
                (None, Some("same-site")),
                (Some(own_origin.as_str()), Some("cross-site")),
                (Some("https://evil.example"), Some("SAME-ORIGIN")),
            ]);
            let mut request = client.post(&url).header("content-type", "text/plain");
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(site) = site {
                request = request.header("sec-fetch-site", site);
            }
            expect_status(
                shared,
                "a call from another site",
                request.body(body.clone()),
                &body,
                Some(403),
            )
            .await;
        }
        30..=41 => {
            // A page of this server's own origin, but not JSON: browsers must send JSON.
            let body = hostile_change(g);
            let content_type = *g.rng.pick(&[
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
            ]);
            let mut request = client
                .post(&url)
                .header("content-type", content_type)
                .header("sec-fetch-site", "same-origin");
            if g.rng.chance(50) {
                request = request.header("origin", own_origin.clone());
            }
            expect_status(
                shared,
                "a same-origin browser call that is not JSON",
                request.body(body.clone()),
                &body,
                Some(415),
            )
            .await;
        }
        42..=49 => {
            let body = ordinary(g);
            let request = client
                .post(&url)
                .header("content-type", "application/json")
                .header("origin", own_origin.clone())
                .header("sec-fetch-site", "same-origin");
            shared.exchange_with(g.pool, request, body).await;
        }
        50..=59 => {
            // Programs may send any content type, or none.
            let body = ordinary(g);
            let content_type = *g.rng.pick(&[
                "text/plain",
                "application/x-www-form-urlencoded",
                "",
                "application/xml",
                "application/json; charset=latin1",
                "multipart/form-data",
                "x/y;;;==",
            ]);
            let mut request = client.post(&url);
            if !content_type.is_empty() {
                request = request.header("content-type", content_type);
            }
            shared.exchange_with(g.pool, request, body).await;
        }
        60..=67 => {
            // (CONNECT is sent raw: reqwest turns it into a proxy tunnel request.)
            let method = g
                .rng
                .pick(&[
                    "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO",
                ])
                .to_string();
            let http_method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let body = harmless(g);
            let request = fresh.request(http_method, &url).body(body.clone());
            let expected = match method.as_str() {
                "GET" | "PUT" | "DELETE" | "PATCH" | "HEAD" => Some(405),
                _ => None,
            };
            expect_status(
                shared,
                &format!("{method} on the JSON-RPC endpoint"),
                request,
                &body,
                expected,
            )
            .await;
        }
        68..=72 => {
            let body = ordinary(g);
            let size = *g
                .rng
                .pick(&[8 * 1024, 64 * 1024, 512 * 1024, 2 * 1024 * 1024]);
            let request = if g.rng.chance(50) {
                fresh.post(&url).header("x-huge", "h".repeat(size))
            } else {
                let mut request = fresh.post(&url);
                for n in 0..(size / 1024).min(2_000) {
                    request = request.header(format!("x-many-{n}"), "v".repeat(1000));
                }
                request
            };
            maybe_rpc(
                shared,
                g,
                &format!("{} KiB of headers", size / 1024),
                request.header("content-type", "application/json"),
                body,
                None,
            )
            .await;
        }
        73..=77 => {
            let mut request = client.post(&url);
            if g.rng.chance(50) {
                request = request.header("content-type", "application/json");
            }
            shared.exchange_with(g.pool, request, Vec::new()).await;
        }
        78..=83 => {
            let body = ordinary(g);
            let long = "h".repeat(10_000);
            let (host, expected): (&str, Option<u16>) = *g.rng.pick(&[
                ("evil.example", Some(400)),
                ("evil.example:80", Some(400)),
                ("127.0.0.1.nip.io", Some(400)),
                (long.as_str(), None),
                ("localhost:1", Some(200)),
                ("LOCALHOST", Some(200)),
                ("127.0.0.1", Some(200)),
                ("[::1]", Some(200)),
                ("", None),
            ]);
            let request = fresh
                .post(&url)
                .header("host", host)
                .header("content-type", "application/json");
            if expected == Some(200) {
                shared.exchange_with(g.pool, request, body).await;
            } else {
                maybe_rpc(
                    shared,
                    g,
                    &format!("Host {}", model::short(host, 20)),
                    request,
                    body,
                    expected,
                )
                .await;
            }
        }
        84..=89 => {
            let body = ordinary(g);
            let path = match g.rng.below(9) {
                0 => format!("/api/v1/jsonrpc/{}", calls::method(g)),
                1 => "/api/v1/jsonrpc/no_such_method".to_owned(),
                2 => "/api/v1/jsonrpc?x=%00&y=\u{1f980}".to_owned(),
                3 => "/api/v1/jsonrpc/%00%2e%2e%2f".to_owned(),
                4 => "/api/v1/jsonrpc/".to_owned(),
                5 => "//api/v1/jsonrpc".to_owned(),
                6 => "/api/v1/JSONRPC".to_owned(),
                // (hyper's client refuses URIs of 64 KiB and more.)
                7 => format!(
                    "/api/v1/jsonrpc/{}",
                    "m".repeat(*g.rng.pick(&[8_000, 60_000]))
                ),
                _ => "/api/v1/jsonrpc/a/b/c".to_owned(),
            };
            let request = fresh
                .post(shared.url(&path))
                .header("content-type", "application/json")
                .body(body.clone());
            let expect = shared.prepare(&body);
            let Some((status, answer)) = shared.send(request, &body).await else {
                return;
            };
            if status >= 500 {
                shared.fail(
                    format!("a path variant: HTTP {status}"),
                    format!("POST {}\n", model::short(&path, 80)).as_bytes(),
                    &String::from_utf8_lossy(&answer),
                );
            } else if status == 200 && path.starts_with("/api/v1/jsonrpc") {
                // The method in the path is only for the OpenAPI document: the body rules.
                shared.conclude(g.pool, &expect, &body, status, &answer, "a path variant: ");
            }
        }
        90..=93 => {
            // A chunked body, without Content-Length: the limit applies while reading.
            let over = g.rng.chance(50);
            let body = if over {
                format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"is_read_only","params":{{"pad":"{}"}}}}"#,
                    "p".repeat(shared.max_body + 1)
                )
                .into_bytes()
            } else {
                ordinary(g)
            };
            chunked(shared, g, body, over).await;
        }
        94..=96 => {
            let body = ordinary(g);
            let (name, value) = *g.rng.pick(&[
                ("content-encoding", "gzip"),
                ("content-encoding", "br, deflate, x-unknown"),
                ("authorization", "Bearer ..;garbage=="),
                ("authorization", "Basic Og=="),
                ("cookie", "sneakpeek_session=../../etc/passwd; x=;;"),
                ("accept", "text/html"),
                ("expect", "100-continue"),
                ("x-forwarded-for", "169.254.169.254, 127.0.0.1"),
                ("x-forwarded-host", "evil.example"),
                ("forwarded", "for=127.0.0.1;host=evil.example;proto=https"),
            ]);
            let request = client
                .post(&url)
                .header("content-type", "application/json")
                .header(name, value);
            shared.exchange_with(g.pool, request, body).await;
        }
        97 => {
            let path = *g
                .rng
                .pick(&["/healthz", "/readyz", "/metrics", "/openapi.json"]);
            expect_status(
                shared,
                &format!("GET {path}"),
                client.get(shared.url(path)),
                path.as_bytes(),
                Some(200),
            )
            .await;
        }
        _ => {
            let index = g.rng.index(raw_cases(shared).len());
            raw(shared, index).await;
        }
    }
}

/// Posts `body` in chunks of random sizes over a bare connection (reqwest sends a body of
/// known length), and checks the answer: 413 when `over` the limit, else the model's reply.
async fn chunked(shared: &Shared, g: &mut Gen<'_>, body: Vec<u8>, over: bool) {
    let mut request = format!(
        "POST /api/v1/jsonrpc HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        shared.port
    )
    .into_bytes();
    let mut rest = &body[..];
    while !rest.is_empty() {
        let size = (g.rng.between(1, 256 * 1024) as usize).min(rest.len());
        request.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        request.extend_from_slice(&rest[..size]);
        request.extend_from_slice(b"\r\n");
        rest = &rest[size..];
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let expect = shared.prepare(&body);
    shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let report = model::short(&String::from_utf8_lossy(&body), 300);
    let Some(answer) = exchange_raw(shared, &request, report.as_bytes()).await else {
        return;
    };
    let Some((status, reply)) = parse_response(&answer) else {
        shared.fail(
            "a chunked body: no HTTP answer",
            report.as_bytes(),
            &model::short(&String::from_utf8_lossy(&answer), 300),
        );
        return;
    };
    if over {
        if status != 413 {
            shared.fail(
                format!("a chunked body over the limit: HTTP {status} where 413 was expected"),
                report.as_bytes(),
                "",
            );
        }
        return;
    }
    shared.conclude(g.pool, &expect, &body, status, &reply, "a chunked body: ");
}

/// Writes `bytes` on a new connection and reads until the server closes it (20 s at most).
async fn exchange_raw(shared: &Shared, bytes: &[u8], report: &[u8]) -> Option<Vec<u8>> {
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", shared.port)).await?;
        // The server may answer and close before reading everything: a failed write is fine.
        // The write side stays open (hyper drops a pending answer when the client half-closes):
        // every request says `Connection: close` instead, so the server closes after answering.
        let _ = stream.write_all(bytes).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        Ok::<_, std::io::Error>(answer)
    })
    .await;
    match outcome {
        Err(_) => {
            shared.fail(
                "raw bytes: the server neither answered nor closed within 20 s",
                report,
                "",
            );
            None
        }
        Ok(Err(error)) => {
            shared.fail(
                format!("raw bytes: cannot connect: {}", error.kind()),
                report,
                &error.to_string(),
            );
            None
        }
        Ok(Ok(answer)) => Some(answer),
    }
}

/// The status and body of an HTTP/1.1 response (its body plain, or chunked).
fn parse_response(answer: &[u8]) -> Option<(u16, Vec<u8>)> {
    let status = std::str::from_utf8(answer.get(9..12)?).ok()?.parse().ok()?;
    let end = answer.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let mut body = &answer[end + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return Some((status, body.to_vec()));
    }
    let mut decoded = Vec::new();
    loop {
        let line_end = body.windows(2).position(|window| window == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).ok()?.trim(), 16).ok()?;
        if size == 0 {
            return Some((status, decoded));
        }
        decoded.extend_from_slice(body.get(line_end + 2..line_end + 2 + size)?);
        body = body.get(line_end + 4 + size..)?;
    }
}

/// Bytes to send over a bare TCP connection: what a broken client or a scanner sends, and
/// request forms reqwest does not send. Each with whether it is a valid HTTP/1.1 request,
/// which must get an answer.
fn raw_cases(shared: &Shared) -> Vec<(Vec<u8>, bool)> {
    // Every request asks the server to close the connection after answering.
    let host = format!("Host: 127.0.0.1:{}\r\nConnection: close\r\n", shared.port);
    vec![
        (b"GARBAGE\r\n\r\n".to_vec(), false),
        (format!("GET / HTTP/1.1\r\n{host}Bad Header\r\n\r\n").into_bytes(), false),
        (format!("POST /api/v1/jsonrpc HTTP/1.1\r\n{host}Content-Length: -1\r\n\r\n").into_bytes(), false),
        (format!("POST /api/v1/jsonrpc HTTP/1.1\r\n{host}Content-Length: 2\r\nContent-Length: 40\r\n\r\n{{}}").into_bytes(), false),
        (format!("POST /api/v1/jsonrpc HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n").into_bytes(), false),
        (format!("POST /api/v1/jsonrpc HTTP/1.1\r\n{host}Content-Length: 1000000000000\r\n\r\n{{}}").into_bytes(), false),
        (format!("POST /api/v1/jsonrpc HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\nzz\r\n").into_bytes(), false),
        (b"\0\0\0\0\xff\xfe\r\n\r\n".to_vec(), false),
        (format!("GET /{} HTTP/1.1\r\n{host}\r\n", "a".repeat(100_000)).into_bytes(), false),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00garbage".to_vec(), false),
        (b"GET /healthz HTTP/1.0\r\n\r\n".to_vec(), true),
        (b"GET /healthz HTTP/9.9\r\nConnection: close\r\n\r\n".to_vec(), false),
        (format!("GET /healthz HTTP/1.1\r\n{host}\r\nGET /readyz HTTP/1.1\r\n{host}\r\n").into_bytes(), true),
        (format!("GET /healthz HTTP/1.1\r\n{host}X-Nul: a\0b\r\n\r\n").into_bytes(), false),
        ([format!("POST /api/v1/jsonrpc HTTP/1.1\r\n{host}Content-Length: 9\r\n\r\n{{\"a\":").into_bytes(), b"\xff\xfe\xfd}".to_vec()].concat(), true),
        (format!("GET /healthz HTTP/1.1\r\n{host}{}\r\n", "X: y\r\n".repeat(5_000)).into_bytes(), false),
        // The request forms of a proxy tunnel and of "the server itself".
        (format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n{host}\r\n", port = shared.port).into_bytes(), true),
        (format!("OPTIONS * HTTP/1.1\r\n{host}\r\n").into_bytes(), true),
        (format!("GET http://127.0.0.1:{port}/healthz HTTP/1.1\r\n{host}\r\n", port = shared.port).into_bytes(), true),
    ]
}

/// Sends raw case `index`. The server must answer with a status under 500 or close the
/// connection (a valid request must be answered), and never hang.
async fn raw(shared: &Shared, index: usize) {
    let cases = raw_cases(shared);
    let (bytes, valid) = &cases[index];
    shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let report = model::short(&String::from_utf8_lossy(bytes), 200);
    let Some(answer) = exchange_raw(shared, bytes, report.as_bytes()).await else {
        return;
    };
    if *valid && !answer.starts_with(b"HTTP/1.") {
        shared.fail(
            "raw bytes: a valid request got no answer (the connection was closed)",
            report.as_bytes(),
            &model::short(&String::from_utf8_lossy(&answer), 300),
        );
        return;
    }
    let status = answer
        .get(9..12)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse::<u16>().ok());
    if answer.starts_with(b"HTTP/") && status.is_none_or(|status| status >= 500) {
        shared.fail(
            format!("raw bytes: HTTP {}", status.unwrap_or(0)),
            report.as_bytes(),
            &model::short(&String::from_utf8_lossy(&answer), 300),
        );
    }
}

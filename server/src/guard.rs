//! Keeps other web sites out: what a page elsewhere can make a visitor's browser send to this
//! server. One middleware, in front of everything else, makes three checks:
//!
//! 1. **`Host` allow-list, against DNS rebinding** (every request). A page of
//!    `attacker.example` whose name the attacker then points at this server's address is, to
//!    the browser, of the same origin as the server: it could call the API and read the
//!    answers. The browser still sends `Host: attacker.example`, so only host names the
//!    server is meant to answer to are accepted: `localhost`, IP addresses (no other site can
//!    point a name it owns at them), and the names listed in `--allowed-hosts` (`*`: any).
//!    Anything else gets 400.
//! 2. **Cross-site requests** (every request but `GET`, `HEAD` and `OPTIONS`, and every request
//!    of the live streams under `/live/`). A page of another site can make a browser send a
//!    POST without any CORS preflight (a form, or a `text/plain` fetch): CORS only hides the
//!    answer, while the call has run. Browsers say where a request comes from:
//!    `Sec-Fetch-Site` (`same-origin`, `same-site`, `cross-site`, `none`) and, on a POST, the
//!    `Origin`. Anything but `same-origin` or `none` is refused with 403, and so is an
//!    `Origin` naming another host where a browser sends no `Sec-Fetch-Site`, unless the
//!    origin is one of `--cors-allow-origin`. `same-site` is refused too: another port of the
//!    same host is the same site, and the sign-in cookie goes along there. This covers the
//!    JsonRPC API, the UI's server functions (POSTs under `/api/`), sign-in and sign-out.
//!    `GET` navigations from other sites (a link) stay allowed: they change nothing, and the
//!    same-origin policy keeps the answer from the other site.
//! 3. **JSON only, from browsers** (POSTs under `/api/`: the JsonRPC API and the UI's server
//!    functions, which take JSON). A browser request, one with `Origin` or `Sec-Fetch-*`
//!    headers, must say `Content-Type: application/json`, which no page can send to another
//!    origin without a preflight; form content types get 415. Programs send no such headers
//!    and may keep sending any content type: `curl -d` sends
//!    `application/x-www-form-urlencoded`, and the original Sneakpeek accepted any.
//!
//! Requests from programs (no `Origin`, no `Sec-Fetch-*`) pass checks 2 and 3; they cannot be
//! made by a page of another site. Who may call at all is decided afterwards by the API token
//! ([`crate::auth`]).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Parses one `--allowed-hosts` entry: a host name (`scrapers.example.com`), without scheme or
/// port, or `*`.
pub fn parse_allowed_host(text: &str) -> Result<String, String> {
    let name = text.trim().to_ascii_lowercase();
    let valid = name == "*"
        || (!name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_')));
    if valid {
        Ok(name)
    } else {
        Err(format!(
            "{text:?} is not a host name like scrapers.example.com (no scheme, no port), nor *"
        ))
    }
}

/// Why a request is refused: its status and a message saying what to change.
type Refusal = (StatusCode, String);

/// The settings the checks use.
#[derive(Clone)]
pub struct Guard(Arc<Settings>);

struct Settings {
    /// `None`: any host.
    allowed_hosts: Option<Vec<String>>,
    /// Origins of `--cors-allow-origin`, lowercase, without a trailing slash.
    trusted_origins: Vec<String>,
}

impl Guard {
    pub fn new(allowed_hosts: &[String], cors_allow_origin: &[String]) -> Self {
        let allowed_hosts =
            (!allowed_hosts.iter().any(|host| host == "*")).then(|| allowed_hosts.to_vec());
        let trusted_origins = cors_allow_origin
            .iter()
            .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Guard(Arc::new(Settings {
            allowed_hosts,
            trusted_origins,
        }))
    }

    fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        authority: Option<&str>,
    ) -> Result<(), Refusal> {
        // A `Host` that is not even text is no name this server answers to.
        let host = headers
            .get(header::HOST)
            .map(|host| host.to_str().unwrap_or(""))
            .or(authority);
        if let Some(host) = host {
            if !self.host_allowed(host) {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("Host {host:?} is not allowed: if this server is meant to answer to that name, list it in --allowed-hosts (SNEAKPEEK_ALLOWED_HOSTS)"),
                ));
            }
        }
        let changes_something = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let live_stream = path.starts_with("/live/") && *method != Method::OPTIONS;
        if changes_something || live_stream {
            if let Some(from) = self.other_site(headers, host) {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!("Cross-site request refused: {from} may not call this server; its operator can allow an origin with --cors-allow-origin"),
                ));
            }
        }
        if changes_something
            && path.starts_with("/api/")
            && from_a_browser(headers)
            && !is_json(headers)
        {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "A browser must send the API JSON, with Content-Type: application/json".to_owned(),
            ));
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some(names) = &self.0.allowed_hosts else {
            return true;
        };
        let name = host_name(host).to_ascii_lowercase();
        name == "localhost" || is_ip_address(&name) || names.contains(&name)
    }

    /// Who made the request, when a browser says it is a page of another site.
    fn other_site(&self, headers: &HeaderMap, host: Option<&str>) -> Option<String> {
        let origin = headers
            .get(header::ORIGIN)
            .map(|origin| origin.to_str().unwrap_or("null"));
        if origin.is_some_and(|origin| {
            self.0
                .trusted_origins
                .iter()
                .any(|trusted| trusted.eq_ignore_ascii_case(origin))
        }) {
            return None;
        }
        let page_of = |origin: &str| format!("a page of {origin}");
        match headers
            .get("sec-fetch-site")
            .map(|site| site.to_str().unwrap_or(""))
        {
            Some("same-origin" | "none") => None,
            Some(_) => Some(origin.map_or_else(|| "a page of another site".to_owned(), page_of)),
            // A browser without Sec-Fetch-Site: its Origin must name this server.
            None => origin
                .filter(|origin| {
                    origin_authority(origin).is_none_or(|authority| {
                        host.is_none_or(|host| !authority.eq_ignore_ascii_case(host))
                    })
                })
                .map(page_of),
        }
    }
}

/// Middleware: refuses what [`Guard`] finds, lets the rest through.
pub async fn protect(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    // A request line without a path (`CONNECT host:port`, the authority form) is meant for
    // a proxy; nothing here can route it, and the UI's renderer would panic on it.
    if request.uri().path_and_query().is_none() {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This server is not a proxy: the request needs a path.",
        )
            .into_response();
    }
    let authority = request
        .uri()
        .authority()
        .map(|authority| authority.as_str());
    if let Err((status, message)) = guard.check(
        request.method(),
        request.uri().path(),
        request.headers(),
        authority,
    ) {
        return (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response();
    }
    next.run(request).await
}

/// `example.com` of `example.com:8080`, `[::1]` of `[::1]:8080`.
fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(rest) => rest.find(']').map_or(host, |end| &host[..end + 2]),
        None => host.split(':').next().unwrap_or(host),
    }
}

fn is_ip_address(name: &str) -> bool {
    let name = name
        .strip_prefix('[')
        .and_then(|name| name.strip_suffix(']'))
        .unwrap_or(name);
    name.parse::<IpAddr>().is_ok()
}

/// `example.com:8080` of `https://example.com:8080`; `None` for `null` and other opaque
/// origins.
fn origin_authority(origin: &str) -> Option<&str> {
    origin
        .split_once("://")
        .map(|(_, authority)| authority)
        .filter(|authority| !authority.is_empty())
}

fn from_a_browser(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
        || headers.contains_key("sec-fetch-site")
        || headers.contains_key("sec-fetch-mode")
}

/// `application/json`, or a `+json` type, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    header::HeaderName::from_static(name),
                    value.parse().unwrap(),
                )
            })
            .collect()
    }

    fn status(guard: &Guard, method: Method, path: &str, pairs: &[(&'static str, &str)]) -> u16 {
        guard
            .check(&method, path, &headers(pairs), None)
            .map_or_else(|(status, _)| status.as_u16(), |()| 200)
    }

    #[test]
    fn host_names_are_checked_without_their_port() {
        assert_eq!(host_name("example.com:8080"), "example.com");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
        let guard = Guard::new(&["scrapers.example.com".to_owned()], &[]);
        for allowed in [
            "localhost",
            "127.0.0.1:8080",
            "[::1]:1",
            "[fe80::1]",
            "Scrapers.Example.com:443",
        ] {
            assert!(guard.host_allowed(allowed), "{allowed}");
        }
        for refused in [
            "attacker.example",
            "localhost.attacker.example",
            "[::1",
            "127.0.0.1.attacker.example",
            "scrapers.example.com.attacker.example",
        ] {
            assert!(!guard.host_allowed(refused), "{refused}");
        }
        assert!(Guard::new(&["*".to_owned()], &[]).host_allowed("anything.example"));
    }

    #[test]
    fn allowed_host_entries_are_names_or_a_star() {
        assert_eq!(
            parse_allowed_host(" Scrapers.Example.com").unwrap(),
            "scrapers.example.com"
        );
        assert_eq!(parse_allowed_host("*").unwrap(), "*");
        for bad in [
            "https://example.com",
            "example.com:8080",
            "",
            "exa mple.com",
        ] {
            assert!(parse_allowed_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn browsers_decide_by_sec_fetch_site_then_by_origin() {
        let guard = Guard::new(&[], &["https://tools.example.com".to_owned()]);
        let host = ("host", "127.0.0.1:8080");
        let post = |pairs: &[(&'static str, &str)]| status(&guard, Method::POST, "/login", pairs);
        assert_eq!(post(&[host]), 200, "a program");
        assert_eq!(
            post(&[
                host,
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:8080")
            ]),
            200
        );
        assert_eq!(post(&[host, ("sec-fetch-site", "none")]), 200);
        assert_eq!(post(&[host, ("sec-fetch-site", "same-site")]), 403);
        assert_eq!(
            post(&[
                host,
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.example")
            ]),
            403
        );
        assert_eq!(
            post(&[
                host,
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://TOOLS.example.com")
            ]),
            200,
            "listed for CORS"
        );
        assert_eq!(
            post(&[host, ("origin", "http://127.0.0.1:8080")]),
            200,
            "an older browser, same origin"
        );
        assert_eq!(
            post(&[host, ("origin", "http://127.0.0.1:8081")]),
            403,
            "an older browser, another port"
        );
        assert_eq!(post(&[host, ("origin", "null")]), 403);
        assert_eq!(
            status(
                &guard,
                Method::GET,
                "/",
                &[host, ("sec-fetch-site", "cross-site")]
            ),
            200,
            "a link from elsewhere"
        );
        assert_eq!(
            status(
                &guard,
                Method::GET,
                "/live/scrapers/1/jobs",
                &[host, ("sec-fetch-site", "cross-site")]
            ),
            403
        );
        assert_eq!(
            status(
                &guard,
                Method::OPTIONS,
                "/api/v1/jsonrpc",
                &[
                    host,
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://evil.example")
                ]
            ),
            200,
            "CORS answers preflights"
        );
    }

    #[test]
    fn browsers_must_send_the_api_json() {
        let guard = Guard::new(&[], &[]);
        let own = [
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ];
        let with = |content_type: &'static str| [own[0], own[1], ("content-type", content_type)];
        assert_eq!(
            status(
                &guard,
                Method::POST,
                "/api/v1/jsonrpc",
                &with("application/json; charset=utf-8")
            ),
            200
        );
        assert_eq!(
            status(
                &guard,
                Method::POST,
                "/api/get_ui_settings123",
                &with("application/vnd.api+json")
            ),
            200
        );
        assert_eq!(
            status(&guard, Method::POST, "/api/v1/jsonrpc", &with("text/plain")),
            415
        );
        assert_eq!(
            status(&guard, Method::POST, "/api/v1/jsonrpc", &own),
            415,
            "no content type from a browser"
        );
        assert_eq!(
            status(
                &guard,
                Method::POST,
                "/login",
                &with("application/x-www-form-urlencoded")
            ),
            200,
            "the sign-in form"
        );
        assert_eq!(
            status(
                &guard,
                Method::POST,
                "/api/v1/jsonrpc",
                &[("content-type", "text/plain")]
            ),
            200,
            "a program"
        );
    }
}

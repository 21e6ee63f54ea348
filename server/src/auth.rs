//! Access control with an optional API token.
//!
//! Without a token everything is open (bind to localhost or put a proxy in front). With one:
//!
//! - Programs send `Authorization: Bearer <token>`. That is the only credential the JsonRPC
//!   API takes: a browser adds cookies to requests by itself, the bearer token only when a
//!   script of ours sends it.
//! - People sign in once at `/login` with the token, which opens a session
//!   ([`crate::sessions`]: random id, ends when idle or old, on sign-out, or with a new token)
//!   and sets its id as an HttpOnly, SameSite=Strict cookie that lasts as long as a session
//!   can. The UI's pages, server functions and live streams take it (or the bearer token).
//!   The cookie is `Secure` with `--secure-cookies`, or when a trusted proxy says the browser
//!   used HTTPS ([`crate::proxy`]).
//! - Sign-in attempts are limited per client address: [`SIGN_IN_ATTEMPTS`] per
//!   [`SIGN_IN_WINDOW`], then 429 with `Retry-After`. The count is per replica.
//! - After sign-in the person goes back to where they were going: a local path only.
//!
//! Token comparisons are constant-time. Cross-site requests are refused before they get here
//! ([`crate::guard`]).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::proxy::TrustedProxies;
use crate::sessions::{self, SessionStore};
use crate::settings::Settings;

const SESSION_COOKIE: &str = "sneakpeek_session";

/// Sign-in attempts one client address may make per [`SIGN_IN_WINDOW`].
pub const SIGN_IN_ATTEMPTS: usize = 10;
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(60);
/// Client addresses whose attempts are remembered at most; past it, new addresses wait too.
const SIGN_IN_CLIENTS: usize = 10_000;

/// The token, the sessions and the sign-in limit.
#[derive(Clone)]
pub struct AccessControl(Arc<Access>);

struct Access {
    token: Option<String>,
    /// [`sessions::token_digest`] of the token.
    token_digest: String,
    sessions: SessionStore,
    attempts: SignInAttempts,
    secure_cookies: bool,
    proxies: TrustedProxies,
}

impl AccessControl {
    /// With a token, sessions are kept in PostgreSQL when the server uses it (its tables are
    /// migrated when the server is built), in memory otherwise.
    pub fn new(settings: &Settings) -> Self {
        let sessions = match (&settings.api_token, &settings.database_url) {
            (Some(_), Some(url)) => SessionStore::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy(url.expose())
                    .expect("the database URL was checked when the server was built"),
            ),
            _ => SessionStore::in_memory(),
        };
        let token = settings
            .api_token
            .as_ref()
            .map(|token| token.expose().to_owned());
        AccessControl(Arc::new(Access {
            token_digest: sessions::token_digest(token.as_deref().unwrap_or_default()),
            token,
            sessions,
            attempts: SignInAttempts::default(),
            secure_cookies: settings.secure_cookies,
            proxies: TrustedProxies::new(&settings.trusted_proxies),
        }))
    }

    fn bearer(&self, headers: &HeaderMap) -> bool {
        let Some(token) = self.0.token.as_deref() else {
            return true;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
    }

    async fn session(&self, headers: &HeaderMap) -> Result<bool, sessions::Unavailable> {
        for id in session_ids(headers) {
            if self.0.sessions.is_open(id, &self.0.token_digest).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether the browser reached the server over HTTPS, as far as the server can tell.
    fn secure(&self, request: &Request) -> bool {
        self.0.secure_cookies
            || self
                .0
                .proxies
                .forwarded_https(request.extensions(), request.headers())
    }
}

fn session_cookie(secure: bool, value: &str, max_age: Duration) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

fn session_ids(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    cookies(headers)
        .filter(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Paths anyone may reach: health checks, signing in and out (which ends only the session
/// whose cookie comes with it) and the assets the sign-in page needs, and the documentation.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/login" | "/logout" | "/api" | "/openapi.json" | "/favicon.ico"
    ) || ["/pkg/", "/docs", "/api/swagger", "/api/static"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// The JsonRPC API, which takes the bearer token only.
fn is_api(path: &str) -> bool {
    path == "/api/v1/jsonrpc" || path.starts_with("/api/v1/jsonrpc/")
}

/// Middleware: lets authorised requests through; sends people to `/login` and API clients
/// a 401.
pub async fn require_token(
    State(access): State<AccessControl>,
    mut request: Request,
    next: Next,
) -> Response {
    // The live streams count their clients by this address: behind a trusted proxy, the
    // client's, not the proxy's (which would make every user share one allowance).
    if let Some(client) = access
        .0
        .proxies
        .client(request.extensions(), request.headers())
    {
        request
            .extensions_mut()
            .insert(app::live::ClientAddress(client));
    }
    let path = request.uri().path();
    if access.0.token.is_none() || is_public(path) || access.bearer(request.headers()) {
        return next.run(request).await;
    }
    if !is_api(path) {
        match access.session(request.headers()).await {
            Ok(true) => return next.run(request).await,
            Ok(false) => {}
            Err(sessions::Unavailable(detail)) => {
                tracing::error!(%detail, "cannot read the sign-in sessions");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The sign-in sessions cannot be read right now; try again in a moment.",
                )
                    .into_response();
            }
        }
    }
    let wants_page = request.method() == Method::GET
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if wants_page {
        let next_path = request
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str());
        return Redirect::to(&format!("/login?next={}", urlencode(next_path))).into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Bearer"),
            (header::CONTENT_TYPE, "application/json"),
        ],
        r#"{"error":"authentication required: send Authorization: Bearer <token>"}"#,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login` (an HTML form): opens a session, sets its cookie and goes on to where the
/// person was going, or back to the form with an error.
pub async fn login(State(access): State<AccessControl>, request: Request) -> Response {
    let Some(token) = access.0.token.clone() else {
        return Redirect::to("/").into_response();
    };
    let client = access
        .0
        .proxies
        .client(request.extensions(), request.headers());
    let secure = access.secure(&request);
    let Form(form) = match Form::<LoginForm>::from_request(request, &()).await {
        Ok(form) => form,
        Err(rejection) => return rejection.into_response(),
    };
    let next = form
        .next
        .filter(|next| is_local_path(next))
        .unwrap_or_else(|| "/".to_owned());
    if let Err(wait) = access.0.attempts.attempt(client) {
        tracing::warn!(?client, "sign-in attempts limited");
        return too_many_attempts(wait, &next);
    }
    if !bool::from(form.token.as_bytes().ct_eq(token.as_bytes())) {
        return Redirect::to(&format!("/login?error=invalid&next={}", urlencode(&next)))
            .into_response();
    }
    let id = match access.0.sessions.open(&access.0.token_digest).await {
        Ok(id) => id,
        Err(sessions::Unavailable(detail)) => {
            tracing::error!(%detail, "cannot open a sign-in session");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing in is not possible right now; try again in a moment.",
            )
                .into_response();
        }
    };
    let cookie = session_cookie(secure, &id, sessions::ABSOLUTE_LIFETIME);
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

/// The answer to a sign-in over the limit: 429 with `Retry-After`, and a page for the person
/// that says how long to wait and leads back to the form.
fn too_many_attempts(wait: Duration, next: &str) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Too many sign-in attempts · Sneakpeek</title>\
         <link rel=\"stylesheet\" href=\"/pkg/sneakpeek.css\"></head><body><main id=\"content\">\
         <h1>Too many sign-in attempts</h1>\
         <p>Too many sign-in attempts from your address; try again in {seconds} seconds.</p>\
         <p><a class=\"button\" href=\"/login?next={}\">Back to sign-in</a></p>\
         </main></body></html>",
        urlencode(next)
    );
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, seconds.to_string())],
        Html(page),
    )
        .into_response()
}

/// `POST /logout`: ends the session on the server and has the browser forget its cookie.
pub async fn logout(State(access): State<AccessControl>, request: Request) -> Response {
    for id in session_ids(request.headers()) {
        if let Err(sessions::Unavailable(detail)) = access.0.sessions.close(id).await {
            tracing::error!(%detail, "cannot end a sign-in session");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing out is not possible right now; try again in a moment.",
            )
                .into_response();
        }
    }
    let cookie = session_cookie(access.secure(&request), "", Duration::ZERO);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

/// Whether `next` is a path of this site. Browsers read `\` as `/` and drop tabs and line
/// breaks, so `/\evil.example` or `/<tab>/evil.example` would lead to another site like
/// `//evil.example` does: only printable ASCII without `\` is accepted, starting with one `/`.
fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && next
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b'\\')
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Recent sign-in attempts per client address.
#[derive(Default)]
struct SignInAttempts(Mutex<HashMap<IpAddr, VecDeque<Instant>>>);

impl SignInAttempts {
    /// Counts an attempt of `client`, or says how long it has to wait. Without a known address
    /// (a router served without connection info) every client counts as one.
    fn attempt(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        self.attempt_at(client, Instant::now())
    }

    fn attempt_at(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let key = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), network);
        let mut clients = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recent = |times: &VecDeque<Instant>| {
            times
                .back()
                .is_some_and(|last| now.duration_since(*last) < SIGN_IN_WINDOW)
        };
        if clients.len() >= SIGN_IN_CLIENTS && !clients.contains_key(&key) {
            clients.retain(|_, times| recent(times));
            if clients.len() >= SIGN_IN_CLIENTS {
                return Err(SIGN_IN_WINDOW);
            }
        }
        let times = clients.entry(key).or_default();
        while times
            .front()
            .is_some_and(|first| now.duration_since(*first) >= SIGN_IN_WINDOW)
        {
            times.pop_front();
        }
        if let Some(first) = times.front().filter(|_| times.len() >= SIGN_IN_ATTEMPTS) {
            return Err(SIGN_IN_WINDOW - now.duration_since(*first));
        }
        times.push_back(now);
        Ok(())
    }
}

/// What identifies a client: its IPv4 address, or the /64 network of its IPv6 address (one
/// machine commonly has a whole /64 to pick addresses from).
fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        for local in ["/", "/scrapers/1?tab=jobs#log", "/login?next=%2F"] {
            assert!(is_local_path(local), "{local}");
        }
        for foreign in [
            "//evil.example",
            "/\\evil.example",
            "/\\\\evil",
            "\\\\evil",
            "/\t/evil.example",
            "/\n/evil",
            "https://evil.example",
            "evil",
            "",
            "/ok path",
        ] {
            assert!(!is_local_path(foreign), "{foreign:?}");
        }
    }

    #[test]
    fn public_paths_are_the_health_checks_login_assets_and_docs() {
        for path in [
            "/healthz",
            "/readyz",
            "/login",
            "/pkg/sneakpeek.wasm",
            "/docs/",
            "/api",
        ] {
            assert!(is_public(path), "{path}");
        }
        for path in ["/", "/api/v1/jsonrpc", "/metrics", "/scrapers/1"] {
            assert!(!is_public(path), "{path}");
        }
    }

    #[test]
    fn sign_in_attempts_are_limited_per_client_within_a_window() {
        let attempts = SignInAttempts::default();
        let start = Instant::now();
        let client = Some("192.0.2.1".parse().unwrap());
        for n in 0..SIGN_IN_ATTEMPTS as u32 {
            assert_eq!(
                attempts.attempt_at(client, start + Duration::from_secs(n.into())),
                Ok(())
            );
        }
        assert_eq!(
            attempts.attempt_at(client, start + Duration::from_secs(15)),
            Err(Duration::from_secs(45))
        );
        assert_eq!(
            attempts.attempt_at(
                Some("192.0.2.2".parse().unwrap()),
                start + Duration::from_secs(15)
            ),
            Ok(())
        );
        assert_eq!(
            attempts.attempt_at(client, start + SIGN_IN_WINDOW),
            Ok(()),
            "the first attempt has left the window"
        );
        assert!(
            attempts.attempt_at(client, start + SIGN_IN_WINDOW).is_err(),
            "the second has not"
        );
        // The addresses of one IPv6 network count together.
        let v6 = |text: &str| Some(text.parse().unwrap());
        for n in 0..SIGN_IN_ATTEMPTS {
            assert_eq!(
                attempts.attempt_at(v6(&format!("2001:db8::{n:x}")), start),
                Ok(())
            );
        }
        assert!(attempts.attempt_at(v6("2001:db8::ffff:1"), start).is_err());
        assert_eq!(attempts.attempt_at(v6("2001:db8:0:1::1"), start), Ok(()));
    }
}

//! Access control with an optional API token.
//!
//! Without a token everything is open (bind to localhost or put a proxy in front). With one,
//! API clients send `Authorization: Bearer <token>`, and people sign in once at `/login`,
//! which sets an HttpOnly, SameSite=Strict session cookie. The cookie holds a digest of the
//! token, not the token, so a stolen cookie does not reveal the API token. Comparisons are
//! constant-time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const SESSION_COOKIE: &str = "sneakpeek_session";

/// The configured token, if any.
#[derive(Clone, Default)]
pub struct AccessControl {
    token: Option<Arc<str>>,
}

impl AccessControl {
    pub fn new(token: Option<String>) -> Self {
        AccessControl { token: token.map(Arc::from) }
    }

    fn session_value(token: &str) -> String {
        let digest = Sha256::digest(format!("sneakpeek-session:{token}").as_bytes());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether `headers` carry the token (bearer) or a valid session cookie.
    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(token) = self.token.as_deref() else { return true };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if bearer.is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes()))) {
            return true;
        }
        let session = Self::session_value(token);
        cookies(headers).any(|(name, value)| name == SESSION_COOKIE && bool::from(value.as_bytes().ct_eq(session.as_bytes())))
    }
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

/// Paths anyone may reach: health checks, the sign-in page and the assets it needs, and the
/// documentation.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/login" | "/api" | "/openapi.json" | "/favicon.ico")
        || ["/pkg/", "/docs", "/api/swagger", "/api/static"].iter().any(|prefix| path.starts_with(prefix))
}

/// Middleware: lets authorised requests through; sends people to `/login` and API clients
/// a 401.
pub async fn require_token(State(access): State<AccessControl>, request: Request, next: Next) -> Response {
    if access.token.is_none() || is_public(request.uri().path()) || access.allows(request.headers()) {
        return next.run(request).await;
    }
    let wants_page = request.method() == Method::GET
        && request.headers().get(header::ACCEPT).and_then(|accept| accept.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    if wants_page {
        let next_path = request.uri().path_and_query().map_or("/", |path| path.as_str());
        return Redirect::to(&format!("/login?next={}", urlencode(next_path))).into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer"), (header::CONTENT_TYPE, "application/json")],
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

/// `POST /login` (an HTML form): sets the session cookie and goes back to where the person
/// was going, or back to the form with an error.
pub async fn login(State(access): State<AccessControl>, Form(form): Form<LoginForm>) -> Response {
    // Only local paths: never redirect off-site.
    let next = form.next.filter(|next| next.starts_with('/') && !next.starts_with("//")).unwrap_or_else(|| "/".to_owned());
    let Some(token) = access.token.as_deref() else { return Redirect::to(&next).into_response() };
    if !bool::from(form.token.as_bytes().ct_eq(token.as_bytes())) {
        return Redirect::to(&format!("/login?error=invalid&next={}", urlencode(&next))).into_response();
    }
    let cookie = format!("{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", AccessControl::session_value(token));
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

/// `POST /logout`: forgets the session.
pub async fn logout() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), value.parse().unwrap())).collect()
    }

    #[test]
    fn without_a_token_everything_is_allowed() {
        assert!(AccessControl::new(None).allows(&HeaderMap::new()));
    }

    #[test]
    fn the_bearer_token_or_the_session_cookie_is_required() {
        let access = AccessControl::new(Some("s3cret".into()));
        assert!(!access.allows(&HeaderMap::new()));
        assert!(access.allows(&headers(&[(header::AUTHORIZATION, "Bearer s3cret")])));
        assert!(!access.allows(&headers(&[(header::AUTHORIZATION, "Bearer s3cre")])));
        let cookie = format!("theme=dark; {SESSION_COOKIE}={}", AccessControl::session_value("s3cret"));
        assert!(access.allows(&headers(&[(header::COOKIE, &cookie)])));
        assert!(!access.allows(&headers(&[(header::COOKIE, "sneakpeek_session=s3cret")])), "the cookie is not the token");
    }

    #[test]
    fn public_paths_are_the_health_checks_login_assets_and_docs() {
        for path in ["/healthz", "/readyz", "/login", "/pkg/sneakpeek.wasm", "/docs/", "/api"] {
            assert!(is_public(path), "{path}");
        }
        for path in ["/", "/api/v1/jsonrpc", "/metrics", "/scrapers/1"] {
            assert!(!is_public(path), "{path}");
        }
    }
}

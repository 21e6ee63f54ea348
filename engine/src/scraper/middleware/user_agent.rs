//! `user_agent_injecter`: gives a request that has no `User-Agent` a realistic browser one,
//! picked at random from a list bundled with the binary (no network fetch of UA data, unlike
//! the original). An explicit `User-Agent` is always kept.

use async_trait::async_trait;
use reqwest::header::{HeaderValue, USER_AGENT};
use serde::{Deserialize, Serialize};

use super::Middleware;
use crate::scraper::http::Outgoing;
use crate::scraper::{JobHooks, RequestError};

/// A browser family whose User-Agent strings may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Browser {
    /// `chrome`: Chrome on Windows, macOS, Linux and Android.
    Chrome,
    /// `edge`: Microsoft Edge on Windows and macOS.
    Edge,
    /// `firefox`: Firefox on Windows, macOS, Linux and Android.
    Firefox,
    /// `safari`: Safari on macOS, iPhone and iPad.
    Safari,
    /// `opera`: Opera on Windows and macOS.
    Opera,
}

/// `user_agent_injecter`'s settings. Default: on, with every browser family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserAgentInjecterConfig {
    /// `false`: a request without `User-Agent` is sent without one.
    pub enabled: bool,
    /// The families to pick from (at least one).
    pub browsers: Vec<Browser>,
}

impl Default for UserAgentInjecterConfig {
    fn default() -> Self {
        UserAgentInjecterConfig {
            enabled: true,
            browsers: vec![
                Browser::Chrome,
                Browser::Edge,
                Browser::Firefox,
                Browser::Safari,
                Browser::Opera,
            ],
        }
    }
}

impl UserAgentInjecterConfig {
    pub(super) fn check(&self) -> super::FieldCheck {
        if self.enabled && self.browsers.is_empty() {
            return Err(("browsers", "must name at least one browser".to_owned()));
        }
        Ok(())
    }
}

/// Current desktop and mobile User-Agents of each family.
const USER_AGENTS: &[(Browser, &str)] = &[
    (Browser::Chrome, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    (Browser::Chrome, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    (Browser::Chrome, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"),
    (Browser::Chrome, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"),
    (Browser::Edge, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"),
    (Browser::Edge, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"),
    (Browser::Firefox, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (Browser::Firefox, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (Browser::Firefox, "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"),
    (Browser::Firefox, "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"),
    (Browser::Safari, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"),
    (Browser::Safari, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    (Browser::Safari, "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"),
    (Browser::Opera, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"),
    (Browser::Opera, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"),
];

pub(super) struct UserAgentInjecter {
    candidates: Vec<&'static str>,
}

impl UserAgentInjecter {
    pub fn new(config: &UserAgentInjecterConfig) -> Self {
        let candidates = USER_AGENTS
            .iter()
            .filter(|(browser, _)| config.browsers.contains(browser))
            .map(|(_, agent)| *agent)
            .collect();
        UserAgentInjecter { candidates }
    }
}

#[async_trait]
impl Middleware for UserAgentInjecter {
    async fn before_request(
        &self,
        request: &mut Outgoing,
        _hooks: &dyn JobHooks,
    ) -> Result<(), RequestError> {
        if !request.headers.contains_key(USER_AGENT) {
            // `check` guarantees at least one browser, and every family has agents.
            let agent = self.candidates[fastrand::usize(..self.candidates.len())];
            request
                .headers
                .insert(USER_AGENT, HeaderValue::from_static(agent));
        }
        Ok(())
    }
}

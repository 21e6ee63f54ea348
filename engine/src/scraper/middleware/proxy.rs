//! `proxy`: sends a scraper's requests through an HTTP(S) proxy, optionally with basic auth.
//! The proxy is a property of the HTTP client, so this middleware only marks the request with
//! its route; the [`Runtime`](crate::scraper::Runtime) keeps one client per route. The egress
//! policy applies to a scraper's own proxy; the operator's (the global setting) is trusted.
//! Proxy URLs are shown without their credentials.

use async_trait::async_trait;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::Middleware;
use crate::redact::redact_url;
use crate::scraper::http::Outgoing;
use crate::scraper::{JobHooks, RequestError};

/// Active when `proxy` is set; a scraper turns a global proxy off with `{"proxy": null}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// `http://host:port` or `https://host:port`.
    pub proxy: Option<String>,
    /// Basic auth sent to the proxy; only with `proxy` set. Its password is shown as `***` in the
    /// jobs the API and the UI hand out.
    pub proxy_auth: Option<ProxyAuth>,
}

/// Basic auth for the proxy, as the original's `aiohttp.BasicAuth(login, password)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyAuth {
    /// The proxy user's name.
    pub login: String,
    /// The proxy user's password; empty when absent.
    #[serde(default)]
    pub password: String,
}

impl ProxyConfig {
    pub(super) fn check(&self) -> super::FieldCheck {
        match &self.proxy {
            Some(proxy) => {
                let shown = redact_url(proxy);
                let url = Url::parse(proxy)
                    .map_err(|error| ("proxy", format!("'{shown}' is not a URL: {error}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err((
                        "proxy",
                        format!("'{shown}' must be an http:// or https:// URL with a host"),
                    ));
                }
                Ok(())
            }
            None if self.proxy_auth.is_some() => {
                Err(("proxy_auth", "is set but `proxy` is not".to_owned()))
            }
            None => Ok(()),
        }
    }

    pub(crate) fn route(&self) -> Option<ProxyRoute> {
        self.proxy.clone().map(|url| ProxyRoute {
            url,
            auth: self.proxy_auth.clone(),
        })
    }
}

/// Where a request goes out: the key of the runtime's per-proxy HTTP clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ProxyRoute {
    pub url: String,
    pub auth: Option<ProxyAuth>,
}

impl ProxyRoute {
    /// The proxy's URL (checked with the config).
    pub fn url(&self) -> Option<Url> {
        Url::parse(&self.url).ok()
    }

    /// The reqwest proxy for this route; the URL was checked with the config.
    pub fn to_proxy(&self) -> Result<reqwest::Proxy, reqwest::Error> {
        let proxy = reqwest::Proxy::all(&self.url)?;
        Ok(match &self.auth {
            Some(auth) => proxy.basic_auth(&auth.login, &auth.password),
            None => proxy,
        })
    }
}

pub(super) struct Proxy {
    route: ProxyRoute,
}

impl Proxy {
    pub fn new(route: ProxyRoute) -> Self {
        Proxy { route }
    }
}

#[async_trait]
impl Middleware for Proxy {
    async fn before_request(
        &self,
        request: &mut Outgoing,
        _hooks: &dyn JobHooks,
    ) -> Result<(), RequestError> {
        request.proxy = Some(self.route.clone());
        Ok(())
    }
}

//! Credentials kept out of what people read: the user info of URLs, and passwords in a
//! scraper's settings as job snapshots show them.
//!
//! A job's snapshot of its scraper is stored whole, because the worker runs the job with it;
//! only the copies the API, the UI and the live streams hand out are redacted
//! ([`Scraper::redacted`], applied by [`Engine`](crate::Engine)'s job reads). The scraper
//! itself, read with `get_scraper`, keeps its settings as written so that it can be edited.

use serde_json::{Map, Value};

use crate::model::{Scraper, ScraperConfig, ScraperJob};

/// What replaces a credential.
const REDACTED: &str = "***";

/// `url` without the credentials it may carry: `http://user:secret@host/` is shown as
/// `http://***@host/`. Works on any text, URL or not, so a malformed URL is hidden too.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |end| authority_start + end);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}{REDACTED}{}",
            &url[..authority_start],
            &url[authority_start + at..]
        ),
        None => url.to_owned(),
    }
}

impl Scraper {
    /// The scraper with the credentials in its config replaced by `***`: the value of every
    /// `password` key (at any depth of `params` and `plugins`, as in the proxy middleware's
    /// `proxy_auth`) and the user info of every URL.
    pub fn redacted(mut self) -> Scraper {
        let ScraperConfig { params, plugins } = &mut self.config;
        for settings in [params, plugins].into_iter().flatten() {
            redact_object(settings);
        }
        self
    }
}

impl ScraperJob {
    /// The job with its scraper snapshot [redacted](Scraper::redacted).
    pub fn redacted(mut self) -> ScraperJob {
        self.scraper = self.scraper.redacted();
        self
    }
}

fn redact_object(object: &mut Map<String, Value>) {
    for (key, value) in object.iter_mut() {
        if key.eq_ignore_ascii_case("password") && !value.is_null() {
            *value = Value::String(REDACTED.to_owned());
        } else {
            redact_value(value);
        }
    }
}

fn redact_value(value: &mut Value) {
    match value {
        Value::String(text) if text.contains("://") => *text = redact_url(text),
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::Object(object) => redact_object(object),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn urls_lose_their_user_info_and_nothing_else() {
        assert_eq!(
            redact_url("http://user:secret@proxy.example:8080/path?q=a@b"),
            "http://***@proxy.example:8080/path?q=a@b"
        );
        assert_eq!(
            redact_url("https://example.com/a@b"),
            "https://example.com/a@b"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn passwords_and_url_credentials_are_replaced_at_any_depth() {
        let scraper: Scraper = serde_json::from_value(json!({
            "id": 1, "name": "n", "schedule": "inactive", "schedule_crontab": null,
            "schedule_priority": 1, "handler": "extract",
            "config": {
                "params": {"urls": ["https://reader:pw1@site.example/list"], "limit": 3},
                "plugins": {"proxy": {
                    "proxy": "http://user:pw2@proxy.example:3128",
                    "proxy_auth": {"login": "me", "Password": "pw3"}
                }}
            }
        }))
        .unwrap();
        let shown = serde_json::to_string(&scraper.clone().redacted()).unwrap();
        for secret in ["pw1", "pw2", "pw3", "reader"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        let redacted = scraper.redacted().config;
        assert_eq!(redacted.params.unwrap()["limit"], 3);
        let proxy = &redacted.plugins.unwrap()["proxy"];
        assert_eq!(proxy["proxy_auth"]["login"], "me");
        assert_eq!(proxy["proxy"], "http://***@proxy.example:3128");
    }
}

//! `requests_logging`: writes each request (`GET https://…`) and its response status
//! (`GET https://… - 200`) into the job's log, so a run can be followed from the UI. URLs are
//! logged without their credentials.

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::Middleware;
use crate::scraper::http::Outgoing;
use crate::scraper::{JobHooks, LogLevel, RequestError};

/// `requests_logging`'s settings: which lines each request writes into the job log. Both on
/// by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestsLoggingConfig {
    /// `false`: nothing is logged, whatever `log_request` and `log_response` say.
    pub enabled: bool,
    /// Log `METHOD url` before sending.
    pub log_request: bool,
    /// Log `METHOD url - status` when the response arrives.
    pub log_response: bool,
}

impl Default for RequestsLoggingConfig {
    fn default() -> Self {
        RequestsLoggingConfig {
            enabled: true,
            log_request: true,
            log_response: true,
        }
    }
}

pub(super) struct RequestsLogging {
    config: RequestsLoggingConfig,
}

impl RequestsLogging {
    pub fn new(config: RequestsLoggingConfig) -> Self {
        RequestsLogging { config }
    }
}

#[async_trait]
impl Middleware for RequestsLogging {
    async fn before_request(
        &self,
        request: &mut Outgoing,
        hooks: &dyn JobHooks,
    ) -> Result<(), RequestError> {
        if self.config.log_request {
            hooks.log(
                LogLevel::Info,
                format!("{} {}", request.method, request.shown_url()),
            );
        }
        Ok(())
    }

    async fn after_response(
        &self,
        request: &Outgoing,
        status: StatusCode,
        hooks: &dyn JobHooks,
    ) -> Result<(), RequestError> {
        if self.config.log_response {
            hooks.log(
                LogLevel::Info,
                format!(
                    "{} {} - {}",
                    request.method,
                    request.shown_url(),
                    status.as_u16()
                ),
            );
        }
        Ok(())
    }
}

//! The scraper being edited: each field as typed, and the scraper it stands for.

use engine::model::{
    BuiltinHandler, CrontabDialect, Scraper, ScraperConfig, ScraperJobPriority, ScraperSchedule,
};
use engine::retry::RetryPolicy;
use leptos::prelude::*;

use super::config::{join_config, split_config};
use super::retry::RetryDraft;

/// The form's fields as typed (signals the fields read and write), with what they stand for.
#[derive(Clone, Copy)]
pub struct Draft {
    pub name: RwSignal<String>,
    pub handler: RwSignal<String>,
    pub schedule: RwSignal<ScraperSchedule>,
    pub crontab: RwSignal<String>,
    /// The IANA time zone the schedule is read in, as typed: empty for UTC.
    pub timezone: RwSignal<String>,
    pub dialect: RwSignal<CrontabDialect>,
    pub priority: RwSignal<ScraperJobPriority>,
    /// The timeout as typed: empty for none, else whole seconds.
    pub timeout: RwSignal<String>,
    /// The config's JSON, without the script of a `script` scraper.
    pub config_text: RwSignal<String>,
    /// The script of a `script` scraper.
    pub source: RwSignal<String>,
    /// The config that the JSON and the script stand for, or what is wrong with them.
    pub config: Memo<Result<ScraperConfig, String>>,
    /// The timeout in seconds, or what is wrong with it.
    pub timeout_seconds: Memo<Result<Option<u64>, String>>,
    /// The retry policy's fields.
    pub retry: RetryDraft,
    /// The scraper as loaded: what the form does not edit (its id, its state) is saved as is.
    initial: StoredValue<Scraper>,
}

impl Draft {
    /// The fields of `initial`; its retry policy's start from `default_retry` (the server's)
    /// when it has none.
    pub fn new(initial: Scraper, default_retry: &RetryPolicy) -> Self {
        let (config_text, source) = split_config(&initial.handler, &initial.config);
        let handler = RwSignal::new(initial.handler.clone());
        let config_text = RwSignal::new(config_text);
        let source = RwSignal::new(source);
        let timeout = RwSignal::new(
            initial
                .timeout_seconds
                .map(|seconds| seconds.to_string())
                .unwrap_or_default(),
        );
        Draft {
            name: RwSignal::new(initial.name.clone()),
            handler,
            schedule: RwSignal::new(initial.schedule),
            crontab: RwSignal::new(initial.schedule_crontab.clone().unwrap_or_default()),
            timezone: RwSignal::new(initial.schedule_timezone.clone().unwrap_or_default()),
            dialect: RwSignal::new(initial.schedule_crontab_dialect.unwrap_or_default()),
            priority: RwSignal::new(initial.schedule_priority),
            timeout,
            config_text,
            source,
            config: Memo::new(move |_| {
                join_config(&handler.get(), &config_text.get(), &source.get())
            }),
            timeout_seconds: Memo::new(move |_| parse_timeout(&timeout.get())),
            retry: RetryDraft::new(initial.retry.as_ref(), default_retry),
            initial: StoredValue::new(initial),
        }
    }

    /// Whether the scraper runs `builtin` (tracked).
    pub fn runs(self, builtin: BuiltinHandler) -> bool {
        self.handler.with(|handler| handler == builtin.name())
    }

    /// The scraper to save, or `None` while the config, the timeout or the retry policy is
    /// invalid.
    pub fn scraper(self) -> Option<Scraper> {
        let (Ok(config), Ok(timeout_seconds), Ok(retry)) = (
            self.config.get_untracked(),
            self.timeout_seconds.get_untracked(),
            self.retry.policy.get_untracked(),
        ) else {
            return None;
        };
        let schedule = self.schedule.get_untracked();
        let crontab = schedule == ScraperSchedule::Crontab;
        let timezone = self.timezone.get_untracked().trim().to_owned();
        let dialect = self.dialect.get_untracked();
        Some(Scraper {
            name: self.name.get_untracked(),
            schedule,
            schedule_crontab: crontab.then(|| self.crontab.get_untracked()),
            schedule_timezone: (!timezone.is_empty()).then_some(timezone),
            schedule_crontab_dialect: (crontab && dialect != CrontabDialect::Standard)
                .then_some(dialect),
            handler: self.handler.get_untracked(),
            config,
            schedule_priority: self.priority.get_untracked(),
            timeout_seconds,
            retry,
            ..self.initial.get_value()
        })
    }
}

/// The timeout field: empty for none, else whole seconds.
fn parse_timeout(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(0) | Err(_) => {
            Err("a whole number of seconds, at least 1 (or empty for no limit)".to_owned())
        }
        Ok(seconds) => Ok(Some(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;

    #[test]
    fn a_timeout_is_empty_or_whole_positive_seconds() {
        assert_eq!(parse_timeout(" "), Ok(None));
        assert_eq!(parse_timeout("30"), Ok(Some(30)));
        assert!(parse_timeout("0").is_err() && parse_timeout("1.5").is_err());
    }
}

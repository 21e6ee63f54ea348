//! When a schedule fires, and what makes a scraper's settings valid.
//!
//! Fire times are pure functions of the schedule and a point in time, so the scheduler, the UI
//! ("next run", crontab preview) and the tests all agree. Interval schedules fire at whole
//! multiples of their period in UTC (every second, every minute at :00, every hour at :00:00,
//! every day at midnight UTC), as the original aligned them. `every_week` fires on Mondays and
//! `every_month` on the 1st, at midnight UTC: calendar weeks and months, not periods counted
//! from an epoch (which would make weeks start on Thursdays and months drift). Crontab
//! expressions are standard 5-field ones, evaluated in UTC.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use crate::error::{Error, FieldError};
use crate::model::{Scraper, ScraperSchedule};

/// A parsed, valid 5-field crontab expression.
#[derive(Debug, Clone)]
pub struct Crontab(Cron);

impl Crontab {
    /// Parses a standard crontab expression: minute, hour, day of month, month, day of week
    /// (or an alias such as `@hourly`). Six-field expressions with seconds are refused: they
    /// are not crontab, and accepting them would silently fire 60 times more often.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let expression = expression.trim();
        let fields = expression.split_whitespace().count();
        if !expression.starts_with('@') && fields != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {fields}"
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        parser
            .parse(expression)
            .map(Crontab)
            .map_err(|error| error.to_string())
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.find_next_occurrence(&after, false).ok()
    }
}

impl FromStr for Crontab {
    type Err = String;

    fn from_str(expression: &str) -> Result<Self, String> {
        Crontab::parse(expression)
    }
}

/// A scraper's schedule, ready to compute fire times. `None` for `inactive`.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Fires at whole multiples of this period since the Unix epoch, in UTC (every second, every
    /// minute at :00, every day at midnight).
    Interval(chrono::Duration),
    // Boxed: a parsed crontab is far larger than an interval.
    /// Fires when the crontab expression matches, in UTC; `every_week` and `every_month` are the
    /// crontabs `0 0 * * MON` and `0 0 1 * *`.
    Cron(Box<Crontab>),
}

/// A calendar schedule, written as the crontab that says it.
fn calendar(crontab: &str) -> Result<Option<Trigger>, String> {
    Crontab::parse(crontab).map(|cron| Some(Trigger::Cron(Box::new(cron))))
}

impl Trigger {
    /// The trigger of a schedule; `Err` names what is wrong with the crontab.
    pub fn of(schedule: ScraperSchedule, crontab: Option<&str>) -> Result<Option<Trigger>, String> {
        match schedule {
            ScraperSchedule::Inactive => Ok(None),
            ScraperSchedule::Crontab => {
                match crontab.map(str::trim).filter(|text| !text.is_empty()) {
                    None => Err("required when the schedule is crontab".to_owned()),
                    Some(expression) => {
                        Crontab::parse(expression).map(|cron| Some(Trigger::Cron(Box::new(cron))))
                    }
                }
            }
            ScraperSchedule::EveryWeek => calendar("0 0 * * MON"),
            ScraperSchedule::EveryMonth => calendar("0 0 1 * *"),
            interval => Ok(interval.interval().map(Trigger::Interval)),
        }
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Interval(period) => {
                let period_micros = period.num_microseconds()?;
                let micros = after.timestamp_micros();
                let next = (micros.div_euclid(period_micros) + 1) * period_micros;
                Utc.timestamp_micros(next).single()
            }
            Trigger::Cron(cron) => cron.next_after(after),
        }
    }

    /// The next `count` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(count);
        let mut cursor = after;
        while times.len() < count {
            match self.next_after(cursor) {
                Some(next) => {
                    times.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        times
    }
}

/// The longest timeout a scraper may set: 7 days. A scraping job running longer is a
/// mistake, and a bound keeps every deadline the worker computes representable.
pub const MAX_TIMEOUT_SECONDS: u64 = 7 * 24 * 3600;

/// The largest scraper id a client may choose: 2^53 - 1, the largest integer a browser's
/// JSON numbers hold exactly (and far from exhausting the id sequence).
pub const MAX_SCRAPER_ID: i64 = (1 << 53) - 1;

/// What creating a scraper without an id answers once the ids to assign are used up (a
/// client chose an id at or near [`MAX_SCRAPER_ID`]): explicit ids below it still work.
pub fn no_ids_left() -> Error {
    Error::InvalidScraper(vec![FieldError::new(
        &["scraper", "id"],
        format!("every id up to {MAX_SCRAPER_ID} has been given out: give a free id below it"),
    )])
}

/// Longest scraper name and crontab expression, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Largest scraper state and config (as JSON), in bytes. A state is what a scraper carries
/// between runs, not where its data goes.
pub const MAX_STATE_BYTES: usize = 1024 * 1024;
/// Largest scraper config, as JSON, in bytes (1 MiB); a larger one is refused with
/// `Error::InvalidScraper` on `["scraper", "config"]`.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Checks a scraper's settings before it is stored. `handlers` are the registered handler
/// names. Field problems come back together as `Error::InvalidScraper`, each with its path
/// under `scraper`; an unknown handler is `Error::UnknownHandler`.
pub fn validate_scraper(scraper: &Scraper, handlers: &[String]) -> Result<(), Error> {
    let mut errors = Vec::new();
    if scraper.id > MAX_SCRAPER_ID {
        errors.push(FieldError::new(
            &["scraper", "id"],
            format!("must be at most {MAX_SCRAPER_ID}"),
        ));
    }
    if scraper.name.trim().is_empty() {
        errors.push(FieldError::new(&["scraper", "name"], "must not be empty"));
    } else if scraper.name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            &["scraper", "name"],
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if let Some(problem) = state_problem(scraper.state.as_deref()) {
        errors.push(FieldError::new(&["scraper", "state"], problem));
    }
    // Counted as it would be stored; a config that cannot even be serialized is as bad.
    let config_bytes = serde_json::to_vec(&scraper.config).map_or(usize::MAX, |json| json.len());
    if config_bytes > MAX_CONFIG_BYTES {
        errors.push(FieldError::new(
            &["scraper", "config"],
            format!("must be at most {MAX_CONFIG_BYTES} bytes as JSON"),
        ));
    }
    match scraper.schedule_crontab.as_deref() {
        Some(crontab) if crontab.chars().count() > MAX_NAME_CHARS => errors.push(FieldError::new(
            &["scraper", "schedule_crontab"],
            format!("must be at most {MAX_NAME_CHARS} characters"),
        )),
        crontab => {
            if let Err(problem) = Trigger::of(scraper.schedule, crontab) {
                errors.push(FieldError::new(&["scraper", "schedule_crontab"], problem));
            }
        }
    }
    match scraper.timeout_seconds {
        Some(0) => errors.push(FieldError::new(
            &["scraper", "timeout_seconds"],
            "must be positive",
        )),
        Some(seconds) if seconds > MAX_TIMEOUT_SECONDS => errors.push(FieldError::new(
            &["scraper", "timeout_seconds"],
            format!("must be at most {MAX_TIMEOUT_SECONDS} (7 days)"),
        )),
        _ => {}
    }
    if let Some(retry) = &scraper.retry {
        errors.extend(retry.problems(&["scraper", "retry"]));
    }
    if !errors.is_empty() {
        return Err(Error::InvalidScraper(errors));
    }
    if !handlers.contains(&scraper.handler) {
        return Err(Error::UnknownHandler(scraper.handler.clone()));
    }
    Ok(())
}

/// Why a scraper state cannot be stored, if it cannot.
pub fn state_problem(state: Option<&str>) -> Option<String> {
    state
        .filter(|state| state.len() > MAX_STATE_BYTES)
        .map(|_| format!("must be at most {MAX_STATE_BYTES} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        crate::model::timestamp::parse(text).unwrap()
    }

    #[test]
    fn interval_schedules_fire_at_whole_multiples_of_their_period() {
        let every_second = Trigger::of(ScraperSchedule::EverySecond, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            every_second.next_after(at("2026-11-29T10:00:00.250000")),
            Some(at("2026-11-29T10:00:01"))
        );
        assert_eq!(
            every_second.next_after(at("2026-11-29T10:00:01")),
            Some(at("2026-11-29T10:00:02"))
        );
        let every_hour = Trigger::of(ScraperSchedule::EveryHour, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            every_hour.next_after(at("2026-11-29T10:59:59")),
            Some(at("2026-11-29T11:00:00"))
        );
        let every_day = Trigger::of(ScraperSchedule::EveryDay, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            every_day.next_after(at("2026-11-29T10:00:00")),
            Some(at("2026-11-30T00:00:00"))
        );
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first_at_midnight_utc() {
        let every_week = Trigger::of(ScraperSchedule::EveryWeek, None)
            .unwrap()
            .unwrap();
        // 2026-11-29 is a Sunday.
        assert_eq!(
            every_week.upcoming(at("2026-11-29T10:00:00"), 2),
            [at("2026-11-30T00:00:00"), at("2026-12-07T00:00:00")]
        );
        let every_month = Trigger::of(ScraperSchedule::EveryMonth, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            every_month.upcoming(at("2026-12-01T00:00:00"), 3),
            [
                at("2027-01-01T00:00:00"),
                at("2027-02-01T00:00:00"),
                at("2027-03-01T00:00:00")
            ]
        );
    }

    #[test]
    fn inactive_never_fires() {
        assert!(Trigger::of(ScraperSchedule::Inactive, Some("* * * * *"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn crontab_fires_at_the_right_minutes_in_utc() {
        let trigger = Trigger::of(ScraperSchedule::Crontab, Some("30 2 * * *"))
            .unwrap()
            .unwrap();
        assert_eq!(
            trigger.upcoming(at("2026-11-29T02:30:00"), 2),
            vec![at("2026-11-30T02:30:00"), at("2026-12-01T02:30:00")]
        );
        let every_five = Trigger::of(ScraperSchedule::Crontab, Some("*/5 * * * *"))
            .unwrap()
            .unwrap();
        assert_eq!(
            every_five.next_after(at("2026-11-29T10:07:10")),
            Some(at("2026-11-29T10:10:00"))
        );
        let hourly = Trigger::of(ScraperSchedule::Crontab, Some("@hourly"))
            .unwrap()
            .unwrap();
        assert_eq!(
            hourly.next_after(at("2026-11-29T10:07:10")),
            Some(at("2026-11-29T11:00:00"))
        );
    }

    #[test]
    fn crontab_refuses_six_fields_garbage_and_absence() {
        for bad in ["*/5 * * * * *", "* * *", "61 * * * *", "every day", ""] {
            assert!(
                Trigger::of(ScraperSchedule::Crontab, Some(bad)).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(Trigger::of(ScraperSchedule::Crontab, None)
            .unwrap_err()
            .contains("required"));
    }

    fn scraper(
        name: &str,
        schedule: ScraperSchedule,
        crontab: Option<&str>,
        handler: &str,
    ) -> Scraper {
        serde_json::from_value(serde_json::json!({
            "name": name, "schedule": schedule, "schedule_crontab": crontab, "handler": handler
        }))
        .unwrap()
    }

    #[test]
    fn validation_names_each_bad_field_and_unknown_handlers() {
        let handlers = vec!["extract".to_owned()];
        assert!(validate_scraper(
            &scraper("ok", ScraperSchedule::Crontab, Some("0 * * * *"), "extract"),
            &handlers
        )
        .is_ok());
        let Err(Error::InvalidScraper(errors)) = validate_scraper(
            &scraper(" ", ScraperSchedule::Crontab, Some("nope"), "extract"),
            &handlers,
        ) else {
            panic!("expected field errors")
        };
        let paths: Vec<String> = errors.iter().map(|error| error.loc.join(".")).collect();
        assert_eq!(paths, ["scraper.name", "scraper.schedule_crontab"]);
        assert_eq!(
            validate_scraper(
                &scraper("ok", ScraperSchedule::EveryHour, None, "missing"),
                &handlers
            ),
            Err(Error::UnknownHandler("missing".into()))
        );
    }

    #[test]
    fn values_beyond_the_documented_limits_are_refused_naming_the_field() {
        let handlers = vec!["extract".to_owned()];
        let mut huge = scraper(
            &"n".repeat(MAX_NAME_CHARS + 1),
            ScraperSchedule::Inactive,
            None,
            "extract",
        );
        huge.id = i64::MAX;
        huge.state = Some("s".repeat(MAX_STATE_BYTES + 1));
        huge.config.params = Some(serde_json::Map::from_iter([(
            "blob".to_owned(),
            serde_json::Value::String("x".repeat(MAX_CONFIG_BYTES)),
        )]));
        huge.timeout_seconds = Some(u64::MAX);
        let Err(Error::InvalidScraper(errors)) = validate_scraper(&huge, &handlers) else {
            panic!("expected field errors")
        };
        let paths: Vec<String> = errors.iter().map(|error| error.loc.join(".")).collect();
        assert_eq!(
            paths,
            [
                "scraper.id",
                "scraper.name",
                "scraper.state",
                "scraper.config",
                "scraper.timeout_seconds"
            ]
        );
        let mut at_the_limits = scraper(
            &"n".repeat(MAX_NAME_CHARS),
            ScraperSchedule::Inactive,
            None,
            "extract",
        );
        at_the_limits.id = MAX_SCRAPER_ID;
        at_the_limits.timeout_seconds = Some(MAX_TIMEOUT_SECONDS);
        assert!(validate_scraper(&at_the_limits, &handlers).is_ok());
    }
}

//! When a schedule fires, and what makes a scraper's settings valid.
//!
//! Fire times are pure functions of the schedule and a point in time, so the scheduler, the UI
//! ("next run", crontab preview) and the tests all agree. `every_second`, `every_minute` and
//! `every_hour` fire at whole multiples of their period in UTC, as the original aligned them.
//! `every_day`, `every_week` (Mondays) and `every_month` (the 1st) fire at midnight, and
//! crontab expressions at their wall-clock times, in the scraper's time zone (an IANA name,
//! UTC by default): calendar days, weeks and months, not periods counted from an epoch.
//!
//! Across daylight-saving changes a fire is neither lost nor doubled: a wall-clock time that
//! does not exist (the hour skipped in spring) fires at the first instant after the gap, on
//! the same day; a wall-clock time that happens twice (the hour repeated in autumn) fires
//! once, the first time. Expressions with a step or a wildcard in the minute or hour (`*/15 *
//! * * *`) keep to real time instead: every 15 minutes, however the clock is set.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use crate::error::{Error, FieldError};
use crate::model::{CrontabDialect, Scraper, ScraperSchedule};

/// A parsed, valid 5-field crontab expression.
#[derive(Debug, Clone)]
pub struct Crontab(Cron);

impl Crontab {
    /// Parses a standard crontab expression: minute, hour, day of month, month, day of week
    /// (or an alias such as `@hourly`). Six-field expressions with seconds are refused: they
    /// are not crontab, and accepting them would silently fire 60 times more often.
    pub fn parse(expression: &str) -> Result<Self, String> {
        Crontab::parse_as(expression, CrontabDialect::Standard)
    }

    /// Parses a crontab expression read as `dialect` says.
    pub fn parse_as(expression: &str, dialect: CrontabDialect) -> Result<Self, String> {
        let expression = expression.trim();
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if !expression.starts_with('@') && fields.len() != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .dom_and_dow(dialect == CrontabDialect::Apscheduler);
        let standard = match dialect {
            CrontabDialect::Standard => expression.to_owned(),
            CrontabDialect::Apscheduler if expression.starts_with('@') => {
                return Err(
                    "the apscheduler dialect has no @ aliases: write the 5 fields".to_owned(),
                )
            }
            CrontabDialect::Apscheduler => {
                let weekdays = monday_first_weekdays(fields[4])?;
                format!("{} {weekdays}", fields[..4].join(" "))
            }
        };
        parser
            .build()
            .parse(&standard)
            .map(Crontab)
            .map_err(|error| error.to_string())
    }

    /// The first fire time strictly after `after`, on the wall clock of `zone`.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        self.0
            .find_next_occurrence(&after.with_timezone(&zone), false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }
}

/// Weekday names in the order APScheduler numbers them (0 is Monday).
const MONDAY_FIRST: [&str; 7] = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// A day-of-week field as APScheduler reads it (numbers 0 to 6 from Monday, or names), written
/// as standard cron reads it: each number, range or stepped range becomes the list of the
/// weekday names it stands for (ranges may wrap past Sunday, as `5-0` does not in cron).
fn monday_first_weekdays(field: &str) -> Result<String, String> {
    let unsupported = || {
        format!("day of week `{field}`: the apscheduler dialect takes numbers 0-6 (Monday = 0), names, ranges, lists and steps")
    };
    let day = |text: &str| -> Result<usize, String> {
        if let Ok(number) = text.parse::<usize>() {
            return (number < 7).then_some(number).ok_or_else(unsupported);
        }
        MONDAY_FIRST
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
            .ok_or_else(unsupported)
    };
    let mut names = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<usize>().map_err(|_| unsupported())?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(unsupported());
        }
        let (first, last) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((first, last)) => (day(first)?, day(last)?),
                None if step > 1 => (day(range)?, 6),
                None => (day(range)?, day(range)?),
            },
        };
        let span = (last + 7 - first) % 7;
        for offset in (0..=span).step_by(step) {
            let name = MONDAY_FIRST[(first + offset) % 7];
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Ok(names.join(","))
}

impl FromStr for Crontab {
    type Err = String;

    fn from_str(expression: &str) -> Result<Self, String> {
        Crontab::parse(expression)
    }
}

/// The fields of a scraper that say when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule<'a> {
    /// Which schedule.
    pub kind: ScraperSchedule,
    /// The expression of a `crontab` schedule.
    pub crontab: Option<&'a str>,
    /// The IANA time zone calendar schedules and crontabs are read in; `None` is UTC.
    pub timezone: Option<&'a str>,
    /// How the crontab is read.
    pub dialect: CrontabDialect,
}

impl<'a> Schedule<'a> {
    /// The schedule `scraper` sets.
    pub fn of(scraper: &'a Scraper) -> Self {
        Schedule {
            kind: scraper.schedule,
            crontab: scraper.schedule_crontab.as_deref(),
            timezone: scraper.schedule_timezone.as_deref(),
            dialect: scraper.schedule_crontab_dialect.unwrap_or_default(),
        }
    }
}

/// The time zone called `name` (an IANA name such as `Europe/Berlin`); `None` is UTC.
pub fn time_zone(name: Option<&str>) -> Result<Tz, String> {
    match name.map(str::trim).filter(|name| !name.is_empty()) {
        None => Ok(Tz::UTC),
        Some(name) => name.parse().map_err(|_| {
            format!("`{name}` is not an IANA time zone name (such as Europe/Berlin or UTC)")
        }),
    }
}

/// Every IANA time zone name a scraper may give, sorted.
pub fn time_zone_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|zone| zone.name())
        .collect();
    names.sort_unstable();
    names
}

/// A scraper's schedule, ready to compute fire times. `None` for `inactive`.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Fires at whole multiples of the period since the Unix epoch, in UTC.
    Interval(chrono::Duration),
    /// Fires when the crontab matches the wall clock of the zone.
    Cron {
        /// The expression; boxed, as a parsed crontab is far larger than an interval.
        crontab: Box<Crontab>,
        /// The zone whose wall clock it reads.
        zone: Tz,
    },
}

impl Trigger {
    /// The trigger of a schedule; `Err` names the field at fault (`schedule_crontab` or
    /// `schedule_timezone`, under `scraper`) and what is wrong with it.
    pub fn of(schedule: Schedule<'_>) -> Result<Option<Trigger>, FieldError> {
        let at = |field: &str, problem: String| FieldError::new(&["scraper", field], problem);
        let zone =
            time_zone(schedule.timezone).map_err(|problem| at("schedule_timezone", problem))?;
        let calendar = |expression: &str| {
            Crontab::parse(expression).map(|crontab| Trigger::Cron {
                crontab: Box::new(crontab),
                zone,
            })
        };
        let trigger = match schedule.kind {
            ScraperSchedule::Inactive => return Ok(None),
            ScraperSchedule::Crontab => {
                let expression = schedule
                    .crontab
                    .map(str::trim)
                    .filter(|text| !text.is_empty())
                    .ok_or_else(|| {
                        at(
                            "schedule_crontab",
                            "required when the schedule is crontab".to_owned(),
                        )
                    })?;
                Crontab::parse_as(expression, schedule.dialect).map(|crontab| Trigger::Cron {
                    crontab: Box::new(crontab),
                    zone,
                })
            }
            ScraperSchedule::EveryDay => calendar("0 0 * * *"),
            ScraperSchedule::EveryWeek => calendar("0 0 * * MON"),
            ScraperSchedule::EveryMonth => calendar("0 0 1 * *"),
            interval => Ok(Trigger::Interval(
                interval
                    .interval()
                    .expect("the other schedules have a fixed period"),
            )),
        };
        trigger
            .map(Some)
            .map_err(|problem| at("schedule_crontab", problem))
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
            Trigger::Cron { crontab, zone } => crontab.next_after(after, *zone),
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
    let too_long = [
        ("schedule_crontab", &scraper.schedule_crontab),
        ("schedule_timezone", &scraper.schedule_timezone),
    ]
    .into_iter()
    .filter(|(_, text)| {
        text.as_ref()
            .is_some_and(|text| text.chars().count() > MAX_NAME_CHARS)
    })
    .map(|(field, _)| {
        FieldError::new(
            &["scraper", field],
            format!("must be at most {MAX_NAME_CHARS} characters"),
        )
    })
    .collect::<Vec<_>>();
    if too_long.is_empty() {
        if let Err(problem) = Trigger::of(Schedule::of(scraper)) {
            errors.push(problem);
        }
    } else {
        errors.extend(too_long);
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

    /// The trigger of a schedule in UTC, read as standard cron.
    fn trigger(
        kind: ScraperSchedule,
        crontab: Option<&str>,
    ) -> Result<Option<Trigger>, FieldError> {
        Trigger::of(Schedule {
            kind,
            crontab,
            timezone: None,
            dialect: CrontabDialect::Standard,
        })
    }

    /// The trigger of `kind` read in `zone` as `dialect`.
    fn zoned(
        kind: ScraperSchedule,
        crontab: Option<&str>,
        zone: &str,
        dialect: CrontabDialect,
    ) -> Trigger {
        Trigger::of(Schedule {
            kind,
            crontab,
            timezone: Some(zone),
            dialect,
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn a_daily_time_in_a_zone_fires_once_a_day_across_both_daylight_saving_changes() {
        // Berlin skips 02:00-03:00 on 2026-03-29 and repeats 02:00-03:00 on 2026-10-25.
        let nightly = zoned(
            ScraperSchedule::Crontab,
            Some("30 2 * * *"),
            "Europe/Berlin",
            CrontabDialect::Standard,
        );
        assert_eq!(
            nightly.upcoming(at("2026-03-27T12:00:00"), 4),
            [
                at("2026-03-28T01:30:00"), // 02:30 CET
                at("2026-03-29T01:00:00"), // 02:30 does not exist: 03:00 CEST, that day
                at("2026-03-30T00:30:00"), // 02:30 CEST
                at("2026-03-31T00:30:00"),
            ]
        );
        assert_eq!(
            nightly.upcoming(at("2026-10-24T12:00:00"), 3),
            [
                at("2026-10-25T00:30:00"), // the first 02:30 (CEST); not again at 01:30 UTC
                at("2026-10-26T01:30:00"), // 02:30 CET
                at("2026-10-27T01:30:00"),
            ]
        );
        // Every 15 minutes keeps to real time through the repeated hour.
        let quarterly = zoned(
            ScraperSchedule::Crontab,
            Some("*/15 * * * *"),
            "Europe/Berlin",
            CrontabDialect::Standard,
        );
        let fires = quarterly.upcoming(at("2026-10-25T00:00:00"), 8);
        assert!(fires
            .windows(2)
            .all(|pair| pair[1] - pair[0] == chrono::Duration::minutes(15)));
    }

    #[test]
    fn calendar_schedules_start_at_local_midnight() {
        let daily = zoned(
            ScraperSchedule::EveryDay,
            None,
            "America/New_York",
            CrontabDialect::Standard,
        );
        assert_eq!(
            daily.next_after(at("2026-11-29T10:00:00")),
            Some(at("2026-11-30T05:00:00")) // midnight EST
        );
        let monthly = zoned(
            ScraperSchedule::EveryMonth,
            None,
            "Asia/Kolkata",
            CrontabDialect::Standard,
        );
        assert_eq!(
            monthly.next_after(at("2026-11-29T10:00:00")),
            Some(at("2026-11-30T18:30:00")) // 2026-12-01 00:00 IST
        );
        // Hourly and faster schedules keep to UTC, whatever the zone.
        let hourly = zoned(
            ScraperSchedule::EveryHour,
            None,
            "Asia/Kolkata",
            CrontabDialect::Standard,
        );
        assert_eq!(
            hourly.next_after(at("2026-11-29T10:10:00")),
            Some(at("2026-11-29T11:00:00"))
        );
    }

    #[test]
    fn the_original_reading_numbers_weekdays_from_monday_and_needs_every_field() {
        let apscheduler = |crontab| {
            zoned(
                ScraperSchedule::Crontab,
                Some(crontab),
                "UTC",
                CrontabDialect::Apscheduler,
            )
        };
        // 2026-11-29 is a Sunday: weekday 0 is the next day, Monday.
        assert_eq!(
            apscheduler("0 9 * * 0").next_after(at("2026-11-29T10:00:00")),
            Some(at("2026-11-30T09:00:00"))
        );
        // Standard cron reads the same as Sunday.
        assert_eq!(
            trigger(ScraperSchedule::Crontab, Some("0 9 * * 0"))
                .unwrap()
                .unwrap()
                .next_after(at("2026-11-28T10:00:00")),
            Some(at("2026-11-29T09:00:00"))
        );
        // The 1st of a month that is also a Monday (2027-02-01), not every 1st or Monday.
        assert_eq!(
            apscheduler("0 0 1 * 0").next_after(at("2026-11-29T10:00:00")),
            Some(at("2027-02-01T00:00:00"))
        );
        // Ranges wrap past Sunday, as APScheduler's do: 5-0 is Saturday to Monday.
        let weekend = apscheduler("0 12 * * 5-0");
        assert_eq!(
            weekend.upcoming(at("2026-12-04T13:00:00"), 3),
            [
                at("2026-12-05T12:00:00"),
                at("2026-12-06T12:00:00"),
                at("2026-12-07T12:00:00")
            ]
        );
        assert_eq!(
            monday_first_weekdays("0-4/2,sun").unwrap(),
            "MON,WED,FRI,SUN"
        );
        assert!(Crontab::parse_as("0 0 * * 7", CrontabDialect::Apscheduler).is_err());
        assert!(Crontab::parse_as("@daily", CrontabDialect::Apscheduler).is_err());
    }

    #[test]
    fn an_unknown_zone_is_named_on_its_field() {
        let problem = Trigger::of(Schedule {
            kind: ScraperSchedule::EveryDay,
            crontab: None,
            timezone: Some("Mars/Olympus"),
            dialect: CrontabDialect::Standard,
        })
        .unwrap_err();
        assert_eq!(problem.loc, ["scraper", "schedule_timezone"]);
        assert!(problem.msg.contains("Mars/Olympus"), "{}", problem.msg);
        assert!(time_zone_names().contains(&"Europe/Berlin"));
    }

    #[test]
    fn interval_schedules_fire_at_whole_multiples_of_their_period() {
        let every_second = trigger(ScraperSchedule::EverySecond, None)
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
        let every_hour = trigger(ScraperSchedule::EveryHour, None).unwrap().unwrap();
        assert_eq!(
            every_hour.next_after(at("2026-11-29T10:59:59")),
            Some(at("2026-11-29T11:00:00"))
        );
        let every_day = trigger(ScraperSchedule::EveryDay, None).unwrap().unwrap();
        assert_eq!(
            every_day.next_after(at("2026-11-29T10:00:00")),
            Some(at("2026-11-30T00:00:00"))
        );
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first_at_midnight_utc() {
        let every_week = trigger(ScraperSchedule::EveryWeek, None).unwrap().unwrap();
        // 2026-11-29 is a Sunday.
        assert_eq!(
            every_week.upcoming(at("2026-11-29T10:00:00"), 2),
            [at("2026-11-30T00:00:00"), at("2026-12-07T00:00:00")]
        );
        let every_month = trigger(ScraperSchedule::EveryMonth, None).unwrap().unwrap();
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
        assert!(trigger(ScraperSchedule::Inactive, Some("* * * * *"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn crontab_fires_at_the_right_minutes_in_utc() {
        let nightly = trigger(ScraperSchedule::Crontab, Some("30 2 * * *"))
            .unwrap()
            .unwrap();
        assert_eq!(
            nightly.upcoming(at("2026-11-29T02:30:00"), 2),
            vec![at("2026-11-30T02:30:00"), at("2026-12-01T02:30:00")]
        );
        let every_five = trigger(ScraperSchedule::Crontab, Some("*/5 * * * *"))
            .unwrap()
            .unwrap();
        assert_eq!(
            every_five.next_after(at("2026-11-29T10:07:10")),
            Some(at("2026-11-29T10:10:00"))
        );
        let hourly = trigger(ScraperSchedule::Crontab, Some("@hourly"))
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
                trigger(ScraperSchedule::Crontab, Some(bad)).is_err(),
                "{bad:?} should be refused"
            );
        }
        let missing = trigger(ScraperSchedule::Crontab, None).unwrap_err();
        assert_eq!(missing.loc, ["scraper", "schedule_crontab"]);
        assert!(missing.msg.contains("required"));
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

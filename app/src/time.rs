//! Times as people read them: in the browser's time zone, with "3 minutes ago".
//!
//! The server does not know the browser's zone, and the browser's "now" differs from the
//! server's, so the server renders times in UTC and the browser switches to local, relative
//! times once hydrated. Both sides render the same text first, so hydration agrees.
//!
//! The browser's clock ticks with [`every`], the page's repeating timer, which stops with the
//! component that started it.

use std::time::Duration;

use chrono::{DateTime, Datelike, Local, TimeZone, Timelike, Utc};
use leptos::prelude::*;

/// The browser's clock: `None` on the server and until hydration, then ticking.
#[derive(Clone, Copy)]
pub struct Clock(ReadSignal<Option<DateTime<Utc>>>);

/// How often relative times ("12 seconds ago") are refreshed.
const TICK: Duration = Duration::from_secs(1);

pub fn provide_clock() {
    let (now, set_now) = signal(None);
    let tick = move || set_now.set(Some(Utc::now()));
    // Effects run only in the browser: the clock starts at hydration.
    Effect::new(move |_| tick());
    every(TICK, tick);
    provide_context(Clock(now));
}

/// Calls `tick` every `period` in the browser, from hydration until the calling component is
/// cleaned up (a page that was left, say): its interval is cleared then rather than left
/// running for good. Nothing happens on the server.
pub fn every(period: Duration, tick: impl Fn() + Clone + 'static) {
    // The interval belongs to this effect, which is cleaned up with the calling component;
    // effects run only in the browser.
    Effect::new(move |_| {
        let interval = set_interval_with_handle(tick.clone(), period).ok();
        on_cleanup(move || {
            if let Some(interval) = interval {
                interval.clear();
            }
        });
    });
}

pub fn use_now() -> ReadSignal<Option<DateTime<Utc>>> {
    expect_context::<Clock>().0
}

/// A point in time: local date and time plus how long ago (or until), UTC before hydration.
#[component]
pub fn Time(at: DateTime<Utc>) -> impl IntoView {
    let now = use_now();
    let text = move || match now.get() {
        None => format!("{} UTC", date_time(&at)),
        Some(now) => format!(
            "{} ({})",
            date_time(&at.with_timezone(&Local)),
            relative(at, now)
        ),
    };
    view! { <time datetime=at.to_rfc3339()>{text}</time> }
}

/// "2026-11-29 14:05:09". Written out field by field: chrono's `format` would bring its
/// format-string interpreter into the wasm.
fn date_time<Tz: TimeZone>(at: &DateTime<Tz>) -> String {
    format!(
        "{:04}-{:02}-{:02} {}",
        at.year(),
        at.month(),
        at.day(),
        time_of_day(at)
    )
}

/// "14:05:09".
fn time_of_day<Tz: TimeZone>(at: &DateTime<Tz>) -> String {
    format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())
}

/// "14:05:09.250", for log lines.
pub fn time_of_day_millis(at: &DateTime<Utc>) -> String {
    format!(
        "{}.{:03}",
        time_of_day(at),
        at.timestamp_subsec_millis().min(999)
    )
}

/// "5 seconds ago", "in 3 minutes", "just now".
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    if seconds.abs() < 2 {
        return "just now".to_owned();
    }
    let span = amount(seconds.unsigned_abs());
    if seconds > 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// The largest whole unit of a number of seconds: "1 minute", "3 days".
fn amount(seconds: u64) -> String {
    let (count, unit) = match seconds {
        0..60 => (seconds, "second"),
        60..3_600 => (seconds / 60, "minute"),
        3_600..86_400 => (seconds / 3_600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// A duration as "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min".
pub fn duration(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    span(std::time::Duration::from_millis(
        (to - from).num_milliseconds().max(0) as u64,
    ))
}

/// A length of time as [`duration`] writes it.
pub fn span(length: std::time::Duration) -> String {
    let millis = length.as_millis();
    match millis {
        0..1_000 => format!("{millis} ms"),
        1_000..60_000 => format!("{:.1} s", millis as f64 / 1_000.0),
        60_000..3_600_000 => format!("{} min {:02} s", millis / 60_000, millis / 1_000 % 60),
        _ => format!("{} h {:02} min", millis / 3_600_000, millis / 60_000 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn times_are_written_like_chrono_formats_them() {
        let at =
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::milliseconds(67);
        assert_eq!(date_time(&at), at.format("%Y-%m-%d %H:%M:%S").to_string());
        assert_eq!(
            time_of_day_millis(&at),
            at.format("%H:%M:%S%.3f").to_string()
        );
    }

    #[test]
    fn relative_times_use_the_largest_whole_unit_in_both_directions() {
        assert_eq!(relative(at(0), at(1)), "just now");
        assert_eq!(relative(at(0), at(45)), "45 seconds ago");
        assert_eq!(relative(at(0), at(60)), "1 minute ago");
        assert_eq!(relative(at(7_200), at(0)), "in 2 hours");
        assert_eq!(relative(at(0), at(3 * 86_400)), "3 days ago");
    }

    #[test]
    fn durations_keep_the_precision_that_matters_at_their_size() {
        assert_eq!(duration(at(0), at(0)), "0 ms");
        assert_eq!(duration(at(0), at(12)), "12.0 s");
        assert_eq!(duration(at(0), at(245)), "4 min 05 s");
        assert_eq!(duration(at(0), at(7_380)), "2 h 03 min");
    }
}

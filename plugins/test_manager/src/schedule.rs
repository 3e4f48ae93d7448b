//! The schedule grammar and next run times: the seed's words (`hourly`, `daily`, `weekly`,
//! `every_<N>_minutes|hours|days`) and standard five-field cron, in a time zone. Anything else
//! is refused with what was expected; nothing ever becomes "hourly" by default.
//!
//! `every_<N>_…` counts from the schedule's anchor (when it was created), so its runs keep
//! their rhythm across restarts; the words and cron follow the wall clock of the time zone,
//! daylight saving time included.

use std::str::FromStr;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// What the grammar accepts, for error messages.
pub(crate) const EXPECTED: &str = "expected `hourly`, `daily`, `weekly`, `every_<N>_minutes`, `every_<N>_hours`, `every_<N>_days` (N at least 1), or a five-field cron expression such as `*/15 * * * *`";

/// The longest interval `every_<N>_…` may name: a year.
const MAX_INTERVAL_SECONDS: i64 = 366 * 24 * 60 * 60;

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    rule: Rule,
    zone: TimeZone,
    zone_name: String,
}

#[derive(Clone, Debug)]
enum Rule {
    /// Every so many seconds, counted from the anchor.
    Every { seconds: i64 },
    /// Cron, in the schedule's time zone.
    Cron(Box<Cron>),
}

impl Schedule {
    /// Parses `expression` in `zone` (an IANA name such as `Europe/Paris`; `UTC` when
    /// absent). The error says what is wrong and what is accepted.
    pub fn parse(expression: &str, zone: Option<&str>) -> Result<Schedule, String> {
        let zone_name = zone.map_or("UTC", str::trim).to_string();
        let zone = time_zone(&zone_name).ok_or_else(|| {
            format!(
                "unknown time zone `{zone_name}`; use an IANA name such as `UTC` or `Europe/Paris`"
            )
        })?;
        let rule = rule(expression.trim())?;
        let schedule = Schedule {
            rule,
            zone,
            zone_name,
        };
        // A cron expression that names no real date (`0 0 30 2 *`) would be stored and
        // never run.
        let now = Timestamp::now();
        if schedule.next_after(now, now).is_none() {
            return Err(format!(
                "`{}` never runs: it names no date that exists (such as February 30); {EXPECTED}",
                expression.trim()
            ));
        }
        Ok(schedule)
    }

    /// The time zone's name.
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// The first run time strictly after `after`; `anchor` is when the schedule began (what
    /// `every_<N>_…` counts from). `None` when a cron expression never matches again.
    pub fn next_after(&self, after: Timestamp, anchor: Timestamp) -> Option<Timestamp> {
        match &self.rule {
            Rule::Every { seconds } => {
                let elapsed = after.as_second() - anchor.as_second();
                let periods = if elapsed < 0 {
                    0
                } else {
                    elapsed / seconds + 1
                };
                let next = anchor
                    .as_second()
                    .checked_add(periods.checked_mul(*seconds)?)?;
                let next = Timestamp::from_second(next).ok()?;
                // `anchor` may carry a fraction of a second; keep whole periods after it.
                if next <= after {
                    next.checked_add(seconds.seconds()).ok()
                } else {
                    Some(next)
                }
            }
            Rule::Cron(cron) => {
                let local = after.to_zoned(self.zone.clone());
                cron.find_next_occurrence(&local, false)
                    .ok()
                    .map(|next| next.timestamp())
            }
        }
    }

    /// The next `count` run times after `after`.
    pub fn upcoming(&self, after: Timestamp, anchor: Timestamp, count: usize) -> Vec<Timestamp> {
        let mut times = Vec::with_capacity(count);
        let mut cursor = after;
        while times.len() < count {
            match self.next_after(cursor, anchor) {
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

/// The time zone named `name`: from the database compiled into the binary first, so that a
/// schedule means the same on every machine whatever its `tzdata`, then from the host's
/// (a zone newer than the binary).
fn time_zone(name: &str) -> Option<TimeZone> {
    static BUNDLED: std::sync::LazyLock<jiff::tz::TimeZoneDatabase> =
        std::sync::LazyLock::new(jiff::tz::TimeZoneDatabase::bundled);
    BUNDLED.get(name).or_else(|_| TimeZone::get(name)).ok()
}

fn rule(expression: &str) -> Result<Rule, String> {
    if expression.is_empty() {
        return Err(format!("the schedule expression is empty; {EXPECTED}"));
    }
    let lowered = expression.to_ascii_lowercase();
    let cron = match lowered.as_str() {
        "hourly" => Some("0 * * * *"),
        "daily" => Some("0 0 * * *"),
        "weekly" => Some("0 0 * * 0"),
        _ => None,
    };
    if let Some(pattern) = cron {
        return parse_cron(pattern);
    }
    if let Some(rest) = lowered.strip_prefix("every_") {
        return every(expression, rest);
    }
    let fields = expression.split_whitespace().count();
    if fields == 5 {
        return parse_cron(expression);
    }
    if fields > 1 || expression.contains('*') {
        return Err(format!(
            "`{expression}` has {fields} fields; cron here has five (minute hour day-of-month month day-of-week), e.g. `*/15 * * * *`"
        ));
    }
    Err(format!("unknown schedule `{expression}`; {EXPECTED}"))
}

/// `every_<N>_<unit>` after its `every_`.
fn every(expression: &str, rest: &str) -> Result<Rule, String> {
    let Some((count, unit)) = rest.split_once('_') else {
        return Err(format!(
            "`{expression}` has no unit; write e.g. `every_30_minutes`"
        ));
    };
    let unit_seconds: i64 = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 60 * 60,
        "day" | "days" => 24 * 60 * 60,
        "week" | "weeks" => {
            return Err(format!(
                "`{expression}`: weeks are not a unit here; write days (`every_{}_days`) or `weekly`",
                count
                    .parse::<i64>()
                    .ok()
                    .and_then(|n| n.checked_mul(7))
                    .map_or_else(|| "7".to_string(), |days| days.to_string())
            ));
        }
        other => {
            return Err(format!(
                "`{expression}`: unknown unit `{other}`; expected minutes, hours or days"
            ));
        }
    };
    let count: i64 = count
        .parse()
        .map_err(|_| format!("`{expression}`: `{count}` is not a whole number"))?;
    if count < 1 {
        return Err(format!(
            "`{expression}`: the interval must be at least 1 (a schedule of every 0 would never stop)"
        ));
    }
    let seconds = count.saturating_mul(unit_seconds);
    if seconds > MAX_INTERVAL_SECONDS {
        return Err(format!(
            "`{expression}`: the interval is longer than a year; use a cron expression"
        ));
    }
    Ok(Rule::Every { seconds })
}

fn parse_cron(pattern: &str) -> Result<Rule, String> {
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    parser
        .parse(pattern)
        .map(|cron| Rule::Cron(Box::new(cron)))
        .map_err(|error| format!("`{pattern}` is not a valid cron expression: {error}"))
}

/// `Timestamp` from Unix milliseconds.
pub(crate) fn from_millis(millis: i64) -> Timestamp {
    Timestamp::from_millisecond(millis).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// RFC 3339 in UTC with milliseconds, like the rest of the API.
pub(crate) fn rfc3339(time: Timestamp) -> String {
    format!("{time:.3}")
}

/// Reads an RFC 3339 time back (what tests and the API's `now` use).
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    Timestamp::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        parse_time(text).unwrap()
    }

    fn next(expression: &str, zone: Option<&str>, after: &str) -> String {
        let schedule = Schedule::parse(expression, zone).unwrap();
        rfc3339(
            schedule
                .next_after(at(after), at("2026-01-01T00:00:00Z"))
                .unwrap(),
        )
    }

    #[test]
    fn the_seed_words_follow_the_wall_clock() {
        assert_eq!(
            next("hourly", None, "2026-03-01T10:15:00Z"),
            "2026-03-01T11:00:00.000Z"
        );
        assert_eq!(
            next("daily", None, "2026-03-01T10:15:00Z"),
            "2026-03-02T00:00:00.000Z"
        );
        // 2026-03-01 is a Sunday; the next Sunday midnight is a week later.
        assert_eq!(
            next("weekly", None, "2026-03-01T10:15:00Z"),
            "2026-03-08T00:00:00.000Z"
        );
        assert_eq!(
            next("DAILY", None, "2026-03-01T10:15:00Z"),
            "2026-03-02T00:00:00.000Z"
        );
    }

    #[test]
    fn intervals_count_from_the_anchor() {
        // Anchored at midnight: every 45 minutes is 10:30, 11:15, ...
        assert_eq!(
            next("every_45_minutes", None, "2026-01-01T10:15:00Z"),
            "2026-01-01T10:30:00.000Z"
        );
        assert_eq!(
            next("every_2_hours", None, "2026-01-01T10:00:00Z"),
            "2026-01-01T12:00:00.000Z"
        );
        assert_eq!(
            next("every_3_days", None, "2026-01-01T00:00:00Z"),
            "2026-01-04T00:00:00.000Z"
        );
        let schedule = Schedule::parse("every_1_minutes", None).unwrap();
        let times = schedule.upcoming(at("2026-01-01T00:00:30Z"), at("2026-01-01T00:00:00Z"), 3);
        let times: Vec<String> = times.into_iter().map(rfc3339).collect();
        assert_eq!(
            times,
            [
                "2026-01-01T00:01:00.000Z",
                "2026-01-01T00:02:00.000Z",
                "2026-01-01T00:03:00.000Z"
            ]
        );
    }

    #[test]
    fn cron_runs_in_its_time_zone_across_daylight_saving() {
        // 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer (DST from 29 March).
        assert_eq!(
            next("0 9 * * *", Some("Europe/Paris"), "2026-03-27T12:00:00Z"),
            "2026-03-28T08:00:00.000Z"
        );
        assert_eq!(
            next("0 9 * * *", Some("Europe/Paris"), "2026-03-28T12:00:00Z"),
            "2026-03-29T07:00:00.000Z"
        );
        assert_eq!(
            next("*/15 * * * *", None, "2026-01-01T10:07:00Z"),
            "2026-01-01T10:15:00.000Z"
        );
    }

    #[test]
    fn what_the_python_version_turned_into_hourly_is_refused_with_what_is_expected() {
        let refused = |expression: &str| Schedule::parse(expression, None).unwrap_err();
        assert!(refused("every_0_minutes").contains("at least 1"));
        assert!(refused("every_5_weeks").contains("every_35_days"));
        assert!(refused("every_9223372036854775807_weeks").contains("every_7_days"));
        assert!(refused("twice a day").contains("has 3 fields"));
        assert!(refused("*/5 * * *").contains("has 4 fields"));
        assert!(refused("").contains("empty"));
        assert!(refused("   ").contains("empty"));
        assert!(refused("fortnightly").contains(EXPECTED));
        assert!(refused("every_x_minutes").contains("not a whole number"));
        assert!(refused("every_5_fortnights").contains("unknown unit"));
        assert!(refused("every_1000_days").contains("longer than a year"));
        assert!(refused("61 * * * *").contains("not a valid cron expression"));
        assert!(refused("0 0 0 * * *").contains("has 6 fields"));
        let zone = Schedule::parse("daily", Some("Mars/Olympus")).unwrap_err();
        assert!(zone.contains("unknown time zone `Mars/Olympus`"), "{zone}");
    }

    #[test]
    fn a_schedule_that_never_runs_is_refused() {
        for expression in ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 11 *"] {
            let refused = Schedule::parse(expression, None).unwrap_err();
            assert!(refused.contains("never runs"), "{expression}: {refused}");
        }
        // February 29th exists every four years.
        assert!(Schedule::parse("0 0 29 2 *", None).is_ok());
    }
}

//! Dates for `before:` and `after:`: RFC 3339 timestamps, `YYYY-MM-DD` (midnight UTC), and
//! relative forms like `"2 weeks ago"` that are resolved at each search.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DateBound {
    Absolute(Timestamp),
    /// `amount` units before the moment of the search.
    Relative {
        amount: i64,
        unit: Unit,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// How far back a relative date may reach; beyond it span arithmetic overflows anyway.
const MAX_RELATIVE_AMOUNT: i64 = 10_000;

pub(crate) fn parse(text: &str) -> Result<DateBound, String> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(DateBound::Absolute(ts));
    }
    if let Ok(date) = text.parse::<Date>() {
        return utc(date.to_datetime(jiff::civil::Time::midnight()));
    }
    if let Ok(datetime) = text.parse::<DateTime>() {
        return utc(datetime);
    }
    relative(text).ok_or_else(|| {
        format!("{text:?} is not a date: use RFC 3339 (2024-05-01T12:00:00Z), YYYY-MM-DD, or a relative date like \"2 weeks ago\"")
    })
}

fn utc(datetime: DateTime) -> Result<DateBound, String> {
    datetime
        .to_zoned(TimeZone::UTC)
        .map(|z| DateBound::Absolute(z.timestamp()))
        .map_err(|e| format!("date out of range: {e}"))
}

/// `N unit[s] ago`, `yesterday`, `today`.
fn relative(text: &str) -> Option<DateBound> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "today" | "now" => {
            return Some(DateBound::Relative {
                amount: 0,
                unit: Unit::Day,
            });
        }
        "yesterday" => {
            return Some(DateBound::Relative {
                amount: 1,
                unit: Unit::Day,
            });
        }
        _ => {}
    }
    let mut words = lower.split_whitespace();
    let amount: i64 = words.next()?.parse().ok()?;
    let unit = match words.next()?.trim_end_matches('s') {
        "second" | "sec" => Unit::Second,
        "minute" | "min" => Unit::Minute,
        "hour" => Unit::Hour,
        "day" => Unit::Day,
        "week" => Unit::Week,
        "month" => Unit::Month,
        "year" => Unit::Year,
        _ => return None,
    };
    if words.next()? != "ago"
        || words.next().is_some()
        || !(0..=MAX_RELATIVE_AMOUNT).contains(&amount)
    {
        return None;
    }
    Some(DateBound::Relative { amount, unit })
}

impl DateBound {
    /// The bound as seconds since the Unix epoch, relative forms counted back from `now`.
    pub(crate) fn resolve(&self, now: Timestamp) -> i64 {
        match *self {
            DateBound::Absolute(ts) => ts.as_second(),
            DateBound::Relative { amount, unit } => {
                let span = match unit {
                    Unit::Second => Span::new().seconds(amount),
                    Unit::Minute => Span::new().minutes(amount),
                    Unit::Hour => Span::new().hours(amount),
                    Unit::Day => Span::new().days(amount),
                    Unit::Week => Span::new().weeks(amount),
                    Unit::Month => Span::new().months(amount),
                    Unit::Year => Span::new().years(amount),
                };
                now.to_zoned(TimeZone::UTC)
                    .checked_sub(span)
                    .map_or(i64::MIN, |z| z.timestamp().as_second())
            }
        }
    }
}

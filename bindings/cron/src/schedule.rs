//! [`Schedule`]: one cron expression, parsed and evaluated in UTC.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};

/// A cron expression: 5 fields (minute, hour, day of month, month, day of week) as Workers
/// takes them, with names (`MON-FRI`, `JAN`), ranges, steps, lists, `L`, `W` and `#`, or 6
/// with a leading seconds field (an edge extension, for sub-minute schedules).
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    cron: croner::Cron,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.expr).finish()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl FromStr for Schedule {
    type Err = String;

    /// Parses `expr`; the error says why it is not a schedule.
    fn from_str(expr: &str) -> Result<Self, String> {
        let fields = expr.split_whitespace().count();
        if !(fields == 5 || fields == 6 || expr.trim_start().starts_with('@')) {
            return Err(format!(
                "has {fields} fields; a schedule has 5 (minute hour day-of-month month day-of-week), or 6 with seconds first"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            expr: expr.to_string(),
            cron,
        })
    }
}

impl Schedule {
    /// The expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// Whether `other` is the same expression, written differently (spacing, case).
    pub fn same_as(&self, other: &Schedule) -> bool {
        let norm = |s: &str| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        };
        norm(&self.expr) == norm(&other.expr)
    }

    /// The latest slot at or before `t`, if there is one.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&t, true).ok()
    }

    /// The first slot after `t`, if there is one.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn workers_expressions_evaluate_in_utc() {
        let s: Schedule = "*/5 * * * *".parse().unwrap();
        assert_eq!(
            s.next_after(at("2026-12-01T10:02:30Z")),
            Some(at("2026-12-01T10:05:00Z"))
        );
        assert_eq!(
            s.latest_at_or_before(at("2026-12-01T10:05:00Z")),
            Some(at("2026-12-01T10:05:00Z"))
        );
        // 2026-12-04 is a Friday; the next weekday 09:00 after Friday noon is Monday.
        let s: Schedule = "0 9 * * MON-FRI".parse().unwrap();
        assert_eq!(
            s.next_after(at("2026-12-04T12:00:00Z")),
            Some(at("2026-12-07T09:00:00Z"))
        );
        // The last day of the month, and the first Monday (`1#1`).
        let s: Schedule = "0 0 L * *".parse().unwrap();
        assert_eq!(
            s.next_after(at("2027-02-10T00:00:00Z")),
            Some(Utc.with_ymd_and_hms(2027, 2, 28, 0, 0, 0).unwrap())
        );
        // 2026-12-01 is a Tuesday: the first Monday of December is the 7th.
        let s: Schedule = "30 8 * * 1#1".parse().unwrap();
        assert_eq!(
            s.next_after(at("2026-12-02T00:00:00Z")),
            Some(at("2026-12-07T08:30:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-12-07T09:00:00Z")),
            Some(at("2027-01-04T08:30:00Z"))
        );
        // Seconds first: every 2 seconds.
        let s: Schedule = "*/2 * * * * *".parse().unwrap();
        assert_eq!(
            s.next_after(at("2026-12-01T10:00:01Z")),
            Some(at("2026-12-01T10:00:02Z"))
        );
    }

    #[test]
    fn a_bad_expression_says_why() {
        for bad in [
            "* * * *",
            "61 * * * *",
            "* * * * MON-XYZ",
            "* * * * * * 2030",
            "",
        ] {
            let e = bad.parse::<Schedule>().unwrap_err();
            assert!(!e.is_empty(), "{bad:?}");
        }
        assert!(
            "* * * *"
                .parse::<Schedule>()
                .unwrap_err()
                .contains("4 fields")
        );
    }
}

//! Calendar dates without a date library: what the gateways and the sandbox need, no more.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;

/// A real calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

impl Date {
    /// The date, if it exists (`31/02` does not).
    pub fn new(year: i32, month: u8, day: u8) -> Option<Self> {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days_in_month).contains(&day).then_some(Self { year, month, day })
    }

    /// Parses `DD/MM/YYYY` strictly (two, two and four digits).
    pub fn parse_dd_mm_yyyy(field: &str, value: &str) -> Result<Self, Error> {
        let bytes = value.as_bytes();
        let shape_ok = bytes.len() == 10
            && bytes[2] == b'/'
            && bytes[5] == b'/'
            && bytes.iter().enumerate().all(|(i, b)| i == 2 || i == 5 || b.is_ascii_digit());
        if !shape_ok {
            return Err(Error::invalid_input(format!("{field} must be DD/MM/YYYY")));
        }
        let number = |range: std::ops::Range<usize>| value[range].parse::<i32>().unwrap_or(0);
        let (day, month, year) = (number(0..2), number(3..5), number(6..10));
        u8::try_from(month)
            .ok()
            .zip(u8::try_from(day).ok())
            .and_then(|(m, d)| Date::new(year, m, d))
            .ok_or_else(|| Error::invalid_input(format!("{field} is not a real calendar date")))
    }

    /// Today in UTC.
    pub fn today_utc() -> Self {
        let days = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0);
        Self::from_days_since_epoch(i64::try_from(days).unwrap_or(0))
    }

    /// The date `days` after 1970-01-01 (Howard Hinnant's civil_from_days).
    pub fn from_days_since_epoch(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self { year, month, day }
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month, 1 to 31.
    pub fn day(&self) -> u8 {
        self.day
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A UTC timestamp as RFC 3339 (`2026-11-22T10:00:00Z`).
pub fn rfc3339_utc(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let date = Date::from_days_since_epoch(i64::try_from(secs / 86_400).unwrap_or(0));
    let rem = secs % 86_400;
    format!("{date}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn real_dates_only() {
        assert_eq!(Date::parse_dd_mm_yyyy("dob", "20/08/2000").unwrap(), Date::new(2000, 8, 20).unwrap());
        assert!(Date::parse_dd_mm_yyyy("dob", "29/02/2000").is_ok());
        for bad in ["31/02/2000", "29/02/1900", "2000-08-20", "20/8/2000", "00/01/2000", "32/01/2000", "20/13/2000", ""]
        {
            assert!(Date::parse_dd_mm_yyyy("dob", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_795_341_600)), "2026-11-22T10:00:00Z");
        assert_eq!(Date::from_days_since_epoch(11_016).to_string(), "2000-02-29");
    }
}

//! Log time: an instant in microseconds since the Unix epoch, civil-date arithmetic and
//! RFC 3339 formatting. Everything here is pure integer arithmetic (no time-zone database):
//! zone handling lives where timestamps are parsed.

use std::fmt;
use std::time::Duration;

use crate::CoreError;

/// An instant, in microseconds since 1970-01-01T00:00:00Z. Log time, not wall-clock time:
/// the detector never reads a clock, it is told the time of each failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

const MICROS_PER_SEC: i64 = 1_000_000;

impl Timestamp {
    /// The instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// The instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(MICROS_PER_SEC))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded toward negative infinity).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(MICROS_PER_SEC)
    }

    /// The instant for a UTC civil date and time. Returns `None` for out-of-range fields.
    pub fn from_civil(c: Civil) -> Option<Self> {
        if !(1..=12).contains(&c.month)
            || c.day < 1
            || c.day > days_in_month(c.year, c.month)
            || c.hour > 23
            || c.minute > 59
            || c.second > 60
            || c.micro >= 1_000_000
        {
            return None;
        }
        let days = days_from_civil(c.year, c.month, c.day);
        let secs = days * 86_400
            + i64::from(c.hour) * 3600
            + i64::from(c.minute) * 60
            + i64::from(c.second);
        Some(Self(secs * MICROS_PER_SEC + i64::from(c.micro)))
    }

    /// The UTC civil date and time of this instant.
    pub fn to_civil(self) -> Civil {
        let secs = self.as_secs();
        let micro = self.0.rem_euclid(MICROS_PER_SEC) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (sod / 3600) as u8,
            minute: (sod / 60 % 60) as u8,
            second: (sod % 60) as u8,
            micro,
        }
    }

    /// This instant plus `d`, saturating at the end of representable time.
    pub fn saturating_add(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// This instant minus `d`, saturating at the start of representable time.
    pub fn saturating_sub(self, d: Duration) -> Self {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(micros))
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        let d = self.0.saturating_sub(earlier.0);
        if d <= 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(d as u64)
        }
    }

    /// Parses RFC 3339 (`2026-11-21T01:02:03Z`, `2026-11-21T02:02:03.5+01:00`).
    pub fn parse_rfc3339(text: &str) -> Result<Self, CoreError> {
        parse_rfc3339(text.as_bytes()).ok_or_else(|| CoreError::InvalidTimestamp(text.to_owned()))
    }
}

/// RFC 3339 in UTC with a `Z` suffix; the fraction is printed only when it is not zero.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.to_civil();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )?;
        if c.micro != 0 {
            let mut frac = format!("{:06}", c.micro);
            while frac.ends_with('0') {
                frac.pop();
            }
            write!(f, ".{frac}")?;
        }
        f.write_str("Z")
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A broken-down date and time, without a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Civil {
    /// Proleptic Gregorian year.
    pub year: i32,
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 60 (a leap second is accepted and lands on the next second).
    pub second: u8,
    /// 0 to 999,999.
    pub micro: u32,
}

/// Whether `year` is a Gregorian leap year.
pub const fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` of `year`.
pub const fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
pub const fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = year as i64 - if month <= 2 { 1 } else { 0 };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01.
pub const fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((y + if m <= 2 { 1 } else { 0 }) as i32, m, d)
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn parse_rfc3339(b: &[u8]) -> Option<Timestamp> {
    let year = digits(b, 0, 4)? as i32;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)? as u8;
    let day = digits(b, 8, 2)? as u8;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)? as u8;
    let minute = digits(b, 14, 2)? as u8;
    let second = digits(b, 17, 2)? as u8;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let mut i = 19;
    let mut micro = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micro = micro * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micro *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let h = i64::from(digits(b, i + 1, 2)?);
            let m = i64::from(digits(b, i + 4, 2)?);
            let v = h * 3600 + m * 60;
            if sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let t = Timestamp::from_civil(Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micro,
    })?;
    Some(Timestamp(t.0 - offset_secs * MICROS_PER_SEC))
}

/// A source of "now". The detector never calls it; the daemon and the CLI do, and tests
/// pass a fixed one.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_across_four_centuries() {
        for days in (-800_000..800_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn formats_and_parses_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-21T02:02:03.25+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-21T01:02:03.25Z");
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:01Z").unwrap(),
            Timestamp::from_secs(1)
        );
        assert!(Timestamp::parse_rfc3339("2026-02-30T00:00:00Z").is_err());
        assert!(Timestamp::parse_rfc3339("2026-11-21 01:02:03").is_err());
    }

    #[test]
    fn leap_days_are_handled() {
        let t = Timestamp::parse_rfc3339("2028-02-29T23:59:59Z").unwrap();
        assert_eq!(t.to_civil().day, 29);
        assert!(Timestamp::parse_rfc3339("2027-02-29T00:00:00Z").is_err());
    }
}

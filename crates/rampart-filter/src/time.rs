//! Log timestamps: find the time at the start (or, for access logs, inside) a log line.
//!
//! A [`TimeParser`] belongs to one log source. It detects the source's [`TimeFormat`] once
//! and then parses every line on a fast path of hand-written byte parsing: no regex, no
//! allocation, no `String`. A line without a parsable time yields `None`; the caller counts
//! it. Invalid UTF-8, garbage and very long lines never panic.
//!
//! Formats:
//! - [`TimeFormat::Syslog`]: `Nov 21 01:02:03 host prog[1]: msg` (RFC 3164, Debian
//!   `auth.log`), day optionally space padded, optional fraction and `<PRI>`, or in
//!   brackets (`[Nov 21 01:02:03] msg`, Asterisk). No year: see below.
//! - [`TimeFormat::Iso8601`]: `2026-11-21T01:02:03.5+01:00` and relatives (space instead of
//!   `T`, fraction with `.` or `,`, offset `Z`/`+01:00`/`+0100`/`+01`/` UTC` or none), RFC
//!   5424 (`<34>1 2026-...`), journalctl `short-iso(-precise)`, and `[2026-11-21 01:02:03]`;
//!   also `2026/11/21 01:02:03` (nginx's error log) and the C `ctime` form with a year,
//!   `Sat Nov 21 01:02:03 2026` (vsftpd) or `[Sat Nov 21 01:02:03.123456 2026]` (Apache's
//!   error log).
//! - [`TimeFormat::Clf`]: `... [21/Nov/2026:01:02:03 +0000] ...`, the first bracket in the
//!   first 1024 bytes that holds a CLF time (the last one before the first `"`, so a
//!   bracketed time in an attacker's user name cannot stand in for the server's).
//! - [`TimeFormat::Epoch`]: `1763686923` or `1763686923.123456`, optionally in brackets;
//!   also daemontools' TAI64N label `@4000000069201c2b0a3b5e40` (multilog, svlogd -t),
//!   read as TAI64 = 2^62 + 10 + Unix seconds (leap seconds ignored, as `tai64nlocal` does).
//!
//! Year inference (syslog): the first syslog line of a source takes the year of `now` in the
//! configured zone; if that puts it more than one day after `now`, it takes the previous
//! year. Afterwards the year is state: a line more than 180 days before the previous line
//! (read with the current year) means the year rolled over, and the year is incremented. A
//! line more than 180 days after the previous one whose previous-year reading lies at most
//! one day before the previous line is a late line from the old year (disorder across New
//! Year): it gets the previous year and does not change the state. Slight disorder
//! otherwise changes nothing. A February 29 that does not exist in the year chosen by these
//! rules yields `None`.
//!
//! Zones: a time without an offset is read in the configured [`Zone`]. In a zone with
//! daylight saving time, an ambiguous local time (autumn fold) takes the earlier instant
//! and a local time in a spring gap is shifted forward by the gap's length (jiff's
//! "compatible" disambiguation). The offset of the last converted local minute is cached,
//! so the tz database is consulted at most once per minute of log time.

use std::fmt;
use std::str::FromStr;

use jiff::tz::{AmbiguousOffset, TimeZone};
use rampart_core::{civil_from_days, days_from_civil, days_in_month, Timestamp};

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// A syslog time this far before the previous line means the year rolled over.
const ROLLOVER_SECS: i64 = 180 * SECS_PER_DAY;
/// How far after `now` the first syslog line may lie and still be this year (clock skew).
const FUTURE_SLACK_SECS: i64 = SECS_PER_DAY;
/// How far before the previous line a late line from the old year may lie.
const DISORDER_SECS: i64 = SECS_PER_DAY;
/// CLF: a `[` opening the timestamp must start within this many bytes of the line.
const CLF_SEARCH_BYTES: usize = 1024;
/// Largest accepted offset from UTC, in hours (inclusive: up to 23:59).
const MAX_OFFSET_HOURS: u32 = 23;

/// Errors from building a time zone or naming a time format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// A zone name that is neither `UTC`, `local`, a fixed offset nor an IANA name known to
    /// the time-zone database.
    #[error(
        "unknown time zone {0:?}: expected \"UTC\", \"local\", an offset such as \"+01:00\" \
         or \"UTC+2\", or an IANA name such as \"Europe/Zurich\""
    )]
    UnknownZone(String),
    /// A fixed offset outside -23:59 to +23:59, or with minutes above 59.
    #[error("time zone offset {0:?} is out of range: use -23:59 to +23:59")]
    InvalidOffset(String),
    /// The zone `local` was asked for but the system's time zone cannot be determined.
    #[error("cannot determine the system time zone for \"local\": {0}")]
    LocalZone(String),
    /// A time format name that is not one of the known ones.
    #[error(
        "unknown time format {0:?}: expected \"auto\", \"syslog\", \"iso8601\", \"clf\" \
         or \"epoch\""
    )]
    UnknownFormat(String),
}

/// A log timestamp format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeFormat {
    /// RFC 3164 / BSD syslog: `Nov 21 01:02:03`, no year.
    Syslog,
    /// ISO 8601 / RFC 3339 / RFC 5424: `2026-11-21T01:02:03.5+01:00`.
    Iso8601,
    /// Common Log Format (Apache, nginx): `[21/Nov/2026:01:02:03 +0000]` inside the line.
    Clf,
    /// Seconds since the Unix epoch: `1763686923.123`.
    Epoch,
}

impl TimeFormat {
    /// Every format, in the order automatic detection tries them.
    pub const ALL: [TimeFormat; 4] = [
        TimeFormat::Syslog,
        TimeFormat::Iso8601,
        TimeFormat::Epoch,
        TimeFormat::Clf,
    ];

    /// The format's configuration name: `syslog`, `iso8601`, `clf` or `epoch`.
    pub const fn name(self) -> &'static str {
        match self {
            TimeFormat::Syslog => "syslog",
            TimeFormat::Iso8601 => "iso8601",
            TimeFormat::Clf => "clf",
            TimeFormat::Epoch => "epoch",
        }
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a format name, ignoring ASCII case.
impl FromStr for TimeFormat {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| TimeError::UnknownFormat(s.to_owned()))
    }
}

/// The configured time format of a source: detect it, or insist on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    /// Detect the format from the lines; follow the source if it changes format.
    #[default]
    Auto,
    /// Only [`TimeFormat::Syslog`].
    Syslog,
    /// Only [`TimeFormat::Iso8601`].
    Iso8601,
    /// Only [`TimeFormat::Clf`].
    Clf,
    /// Only [`TimeFormat::Epoch`].
    Epoch,
}

impl FormatChoice {
    /// The one format this choice allows, or `None` for [`FormatChoice::Auto`].
    pub const fn fixed(self) -> Option<TimeFormat> {
        match self {
            FormatChoice::Auto => None,
            FormatChoice::Syslog => Some(TimeFormat::Syslog),
            FormatChoice::Iso8601 => Some(TimeFormat::Iso8601),
            FormatChoice::Clf => Some(TimeFormat::Clf),
            FormatChoice::Epoch => Some(TimeFormat::Epoch),
        }
    }
}

impl From<TimeFormat> for FormatChoice {
    fn from(f: TimeFormat) -> Self {
        match f {
            TimeFormat::Syslog => FormatChoice::Syslog,
            TimeFormat::Iso8601 => FormatChoice::Iso8601,
            TimeFormat::Clf => FormatChoice::Clf,
            TimeFormat::Epoch => FormatChoice::Epoch,
        }
    }
}

impl fmt::Display for FormatChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fixed() {
            Some(format) => f.write_str(format.name()),
            None => f.write_str("auto"),
        }
    }
}

/// Parses `auto` or a format name, ignoring ASCII case.
impl FromStr for FormatChoice {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(FormatChoice::Auto);
        }
        s.parse::<TimeFormat>().map(FormatChoice::from)
    }
}

/// The time zone in which times without an offset are read.
#[derive(Debug, Clone)]
pub struct Zone {
    kind: ZoneKind,
}

#[derive(Debug, Clone)]
enum ZoneKind {
    /// Seconds east of UTC; never consults the tz database.
    Fixed(i32),
    /// A zone with transitions (IANA or the system's).
    Tz(TimeZone),
}

impl Zone {
    /// Coordinated Universal Time.
    pub const fn utc() -> Self {
        Zone {
            kind: ZoneKind::Fixed(0),
        }
    }

    /// A fixed offset of `seconds` east of UTC (negative: west), within ±23:59:59.
    pub fn fixed(seconds: i32) -> Result<Self, TimeError> {
        let limit = (MAX_OFFSET_HOURS as i32 + 1) * 3600;
        if seconds.abs() >= limit {
            return Err(TimeError::InvalidOffset(format!("{seconds}s")));
        }
        Ok(Zone {
            kind: ZoneKind::Fixed(seconds),
        })
    }

    /// Parses a zone: `UTC`/`utc`/`Z`; `local` (the system's zone); a fixed offset
    /// `+01:00`, `-0530`, `+01`, `UTC+2`, `UTC-05:30` (east of UTC is positive, as in ISO
    /// 8601, not as in POSIX `TZ`); or an IANA name such as `Europe/Zurich`.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t == "z" {
            return Ok(Zone::utc());
        }
        if let Some(offset) = parse_zone_offset(t) {
            return offset
                .ok_or_else(|| TimeError::InvalidOffset(text.to_owned()))
                .and_then(Zone::fixed);
        }
        if t.eq_ignore_ascii_case("local") {
            let tz = TimeZone::try_system().map_err(|e| TimeError::LocalZone(e.to_string()))?;
            if tz.is_unknown() {
                return Err(TimeError::LocalZone(
                    "the system time zone is unknown".to_owned(),
                ));
            }
            return Ok(Zone::from_time_zone(tz));
        }
        let tz = TimeZone::get(t).map_err(|_| TimeError::UnknownZone(text.to_owned()))?;
        Ok(Zone::from_time_zone(tz))
    }

    /// Wraps a jiff zone; a zone without any transition becomes a fixed offset.
    fn from_time_zone(tz: TimeZone) -> Self {
        let fixed = match tz.to_fixed_offset() {
            Ok(offset) => Some(offset),
            Err(_) if tz.following(jiff::Timestamp::MIN).next().is_none() => {
                Some(tz.to_offset(jiff::Timestamp::UNIX_EPOCH))
            }
            Err(_) => None,
        };
        match fixed {
            Some(offset) => Zone {
                kind: ZoneKind::Fixed(offset.seconds()),
            },
            None => Zone {
                kind: ZoneKind::Tz(tz),
            },
        }
    }

    /// The zone's offset from UTC at instant `at`, in seconds east.
    fn offset_at(&self, at: Timestamp) -> i64 {
        match &self.kind {
            ZoneKind::Fixed(seconds) => i64::from(*seconds),
            ZoneKind::Tz(tz) => jiff::Timestamp::from_second(at.as_secs())
                .map(|ts| i64::from(tz.to_offset(ts).seconds()))
                .unwrap_or(0),
        }
    }
}

/// `UTC`, a fixed offset such as `+01:00`, or the IANA name (`local` when it has none).
impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ZoneKind::Fixed(0) => f.write_str("UTC"),
            ZoneKind::Fixed(s) => {
                let sign = if *s < 0 { '-' } else { '+' };
                let a = s.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60)?;
                if a % 60 != 0 {
                    write!(f, ":{:02}", a % 60)?;
                }
                Ok(())
            }
            ZoneKind::Tz(tz) => f.write_str(tz.iana_name().unwrap_or("local")),
        }
    }
}

/// Same as [`Zone::parse`].
impl FromStr for Zone {
    type Err = TimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Zone::parse(s)
    }
}

/// Reads `[UTC]±H[H][[:]MM]`. `None`: not offset shaped; `Some(None)`: out of range.
fn parse_zone_offset(text: &str) -> Option<Option<i32>> {
    let b = text.as_bytes();
    let b = match b.get(..3) {
        Some(p) if p.eq_ignore_ascii_case(b"utc") => b.get(3..)?,
        _ => b,
    };
    let (&sign, body) = b.split_first()?;
    if sign != b'+' && sign != b'-' {
        return None;
    }
    if body.is_empty() || !body.iter().all(|&c| c.is_ascii_digit() || c == b':') {
        return None;
    }
    let num = |s: &[u8]| s.iter().fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
    let (hours, minutes): (&[u8], &[u8]) = match body.iter().position(|&c| c == b':') {
        Some(p) => (body.get(..p)?, body.get(p + 1..)?),
        None if body.len() <= 2 => (body, &[]),
        None if body.len() == 4 => body.split_at(2),
        None => return None,
    };
    let shaped = matches!(hours.len(), 1 | 2)
        && matches!(minutes.len(), 0 | 2)
        && minutes.iter().all(u8::is_ascii_digit);
    if !shaped {
        return None;
    }
    let (h, m) = (num(hours), num(minutes));
    if h > MAX_OFFSET_HOURS || m > 59 {
        return Some(None);
    }
    let secs = (h * 3600 + m * 60) as i32;
    Some(Some(if sign == b'-' { -secs } else { secs }))
}

/// A parsed log time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The instant the line was logged.
    pub time: Timestamp,
    /// Where the message begins: just after the timestamp (after a closing `]` and one
    /// space), so filters match `&line[message_start..]`. Zero for CLF, whose time is
    /// inside the line.
    pub message_start: usize,
}

/// Parses the time of each line of one log source; see the [module docs](self) for the
/// formats, year inference and zone rules. Holds per-source state (detected format, syslog
/// year, zone offset cache), so use one parser per source.
#[derive(Debug, Clone)]
pub struct TimeParser {
    choice: FormatChoice,
    zone: Zone,
    detected: Option<TimeFormat>,
    /// `now` read as civil time in the zone, as seconds since the epoch.
    now_local: i64,
    /// The year of `now_local`.
    now_year: i32,
    /// The syslog year, once the first syslog line has fixed it.
    year: Option<i32>,
    /// Local seconds of the previous syslog line that set the state.
    prev_local: i64,
    /// Local minute (local seconds / 60) whose offset is in `cached_offset`.
    cached_minute: i64,
    /// Seconds east of UTC for `cached_minute`.
    cached_offset: i64,
    /// Packed (year, month, day) whose day number is in `cached_days`.
    cached_date: i64,
    /// Days since the epoch of `cached_date`.
    cached_days: i64,
    /// The last syslog time parsed: the line's bytes up to its message (ending in the
    /// space after the time, so that nothing after them took part) and the result. Lines
    /// of the same second start with the same bytes and get the same result (parsing a
    /// time again right after itself leaves the year state as it was).
    last_syslog: Option<(usize, Stamp)>,
    last_syslog_key: [u8; SYSLOG_KEY],
}

/// Longest syslog time text (priority and fraction included) [`TimeParser`] remembers.
const SYSLOG_KEY: usize = 40;

impl TimeParser {
    /// A parser for one source. `now` is only used to infer the year of the first syslog
    /// line (see [`TimeParser::set_now`]).
    pub fn new(format: FormatChoice, zone: Zone, now: Timestamp) -> Self {
        let mut parser = TimeParser {
            choice: format,
            zone,
            detected: format.fixed(),
            now_local: 0,
            now_year: 1970,
            year: None,
            prev_local: 0,
            cached_minute: i64::MIN,
            cached_offset: 0,
            cached_date: -1,
            cached_days: 0,
            last_syslog: None,
            last_syslog_key: [0; SYSLOG_KEY],
        };
        parser.set_now(now);
        parser
    }

    /// Updates `now`, which decides the year of the first syslog line. A daemon that waits
    /// for a source's first line should call this before parsing it, so that a first line
    /// arriving after New Year is not given the old year.
    pub fn set_now(&mut self, now: Timestamp) {
        self.now_local = now.as_secs().saturating_add(self.zone.offset_at(now));
        self.now_year = civil_from_days(self.now_local.div_euclid(SECS_PER_DAY)).0;
        self.last_syslog = None;
    }

    /// The format in use: the configured one, or with [`FormatChoice::Auto`] the format of
    /// the last line that parsed (`None` before the first).
    pub fn detected(&self) -> Option<TimeFormat> {
        self.detected
    }

    /// The zone applied to times without an offset.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// The time of `line` (one log line without its newline), or `None` when it has no
    /// parsable time.
    pub fn parse(&mut self, line: &[u8]) -> Option<Stamp> {
        if let Some(fixed) = self.choice.fixed() {
            return self.parse_as(fixed, line);
        }
        let current = self.detected;
        if let Some(format) = current {
            if let Some(stamp) = self.parse_as(format, line) {
                return Some(stamp);
            }
        }
        for format in TimeFormat::ALL {
            if Some(format) == current {
                continue;
            }
            if let Some(stamp) = self.parse_as(format, line) {
                self.detected = Some(format);
                return Some(stamp);
            }
        }
        None
    }

    /// Parses `line` as `format` only.
    fn parse_as(&mut self, format: TimeFormat, line: &[u8]) -> Option<Stamp> {
        match format {
            TimeFormat::Syslog => self.syslog(line),
            TimeFormat::Iso8601 => {
                let raw = parse_iso(line)?;
                self.finish(raw)
            }
            TimeFormat::Clf => {
                let raw = find_clf(line)?;
                self.finish(raw)
            }
            TimeFormat::Epoch => parse_epoch(line),
        }
    }

    fn syslog(&mut self, line: &[u8]) -> Option<Stamp> {
        if let Some((n, stamp)) = self.last_syslog {
            if line
                .get(..n)
                .is_some_and(|l| crate::plan::bytes_eq(l, &self.last_syslog_key[..n]))
            {
                return Some(stamp);
            }
        }
        let f = parse_syslog(line)?;
        let local = self.syslog_local(f.month, f.day, f.second_of_day)?;
        let utc = self.local_to_utc(local)?;
        let stamp = Stamp {
            time: Timestamp::from_micros(utc * MICROS_PER_SEC + i64::from(f.micro)),
            message_start: f.end,
        };
        let n = f.end;
        self.last_syslog = None;
        if (1..=SYSLOG_KEY).contains(&n) && line[n - 1] == b' ' {
            self.last_syslog_key[..n].copy_from_slice(&line[..n]);
            self.last_syslog = Some((n, stamp));
        }
        Some(stamp)
    }

    /// Picks the year of a syslog time (see the module docs), updates the year state and
    /// returns the local civil time as seconds since the epoch.
    fn syslog_local(&mut self, month: u8, day: u8, second_of_day: i64) -> Option<i64> {
        // Positions are computed unvalidated: a February 29 of a common year reads as March
        // 1, which is right for comparisons; the chosen year is validated at the end.
        let at = |year: i32| local_secs(year, month, day, second_of_day);
        let (year, local, keep_state) = match self.year {
            None => {
                let this = self.now_year;
                let local = at(this);
                if day <= days_in_month(this, month) && local <= self.now_local + FUTURE_SLACK_SECS
                {
                    (this, local, false)
                } else {
                    (this - 1, at(this - 1), false)
                }
            }
            Some(year) => {
                let local = self.day_number(year, month, day) * SECS_PER_DAY + second_of_day;
                if local < self.prev_local - ROLLOVER_SECS {
                    (year + 1, at(year + 1), false)
                } else if local > self.prev_local + ROLLOVER_SECS
                    && at(year - 1) >= self.prev_local - DISORDER_SECS
                {
                    // A late line from the old year just after New Year: the state stays.
                    (year - 1, at(year - 1), true)
                } else {
                    (year, local, false)
                }
            }
        };
        if day > days_in_month(year, month) {
            return None;
        }
        if !keep_state {
            self.year = Some(year);
            self.prev_local = local;
        }
        Some(local)
    }

    /// Days since the epoch of a civil date, cached for the last date seen.
    #[inline]
    fn day_number(&mut self, year: i32, month: u8, day: u8) -> i64 {
        let key = (i64::from(year) << 16) | (i64::from(month) << 8) | i64::from(day);
        if key != self.cached_date {
            self.cached_days = days_from_civil(year, month, day);
            self.cached_date = key;
        }
        self.cached_days
    }

    fn finish(&mut self, raw: Raw) -> Option<Stamp> {
        let local =
            self.day_number(raw.year, raw.month, raw.day) * SECS_PER_DAY + raw.second_of_day;
        let utc = match raw.offset {
            Some(offset) => local - i64::from(offset),
            None => self.local_to_utc(local)?,
        };
        Some(Stamp {
            time: Timestamp::from_micros(utc * MICROS_PER_SEC + i64::from(raw.micro)),
            message_start: raw.end,
        })
    }

    /// Converts local civil seconds in the configured zone to UTC seconds.
    #[inline]
    fn local_to_utc(&mut self, local: i64) -> Option<i64> {
        match &self.zone.kind {
            ZoneKind::Fixed(offset) => Some(local - i64::from(*offset)),
            ZoneKind::Tz(tz) => {
                let minute = local.div_euclid(60);
                if minute != self.cached_minute {
                    self.cached_offset = tz_offset(tz, local)?;
                    self.cached_minute = minute;
                }
                Some(local - self.cached_offset)
            }
        }
    }
}

/// The offset (seconds east) that applies to local civil seconds `local` in `tz`: the
/// earlier instant in a fold, and the pre-transition offset in a gap (shifting the time
/// forward), as jiff's "compatible" disambiguation does.
#[cold]
fn tz_offset(tz: &TimeZone, local: i64) -> Option<i64> {
    let sod = local.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(local.div_euclid(SECS_PER_DAY));
    let dt = jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        month as i8,
        day as i8,
        (sod / 3600) as i8,
        (sod / 60 % 60) as i8,
        (sod % 60) as i8,
        0,
    )
    .ok()?;
    let offset = match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset,
        AmbiguousOffset::Gap { before, .. } | AmbiguousOffset::Fold { before, .. } => before,
    };
    Some(i64::from(offset.seconds()))
}

/// Seconds since the epoch of a civil date and time read as if it were UTC.
fn local_secs(year: i32, month: u8, day: u8, second_of_day: i64) -> i64 {
    days_from_civil(year, month, day) * SECS_PER_DAY + second_of_day
}

/// A time read from a line, before zone conversion.
#[derive(Debug, Clone, Copy)]
struct Raw {
    /// The civil date, validated.
    year: i32,
    month: u8,
    day: u8,
    second_of_day: i64,
    micro: u32,
    /// Seconds east of UTC, when the line states it.
    offset: Option<i32>,
    /// The message start.
    end: usize,
}

/// The fields of a syslog time, which has no year.
#[derive(Debug, Clone, Copy)]
struct SyslogFields {
    month: u8,
    day: u8,
    second_of_day: i64,
    micro: u32,
    end: usize,
}

#[inline]
fn digit(b: &[u8], i: usize) -> Option<u32> {
    digit_value(*b.get(i)?)
}

#[inline]
fn two_digits(b: &[u8], i: usize) -> Option<u32> {
    Some(digit(b, i)? * 10 + digit(b, i + 1)?)
}

#[inline]
fn is_digit_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

#[inline]
fn byte_is(b: &[u8], i: usize, want: u8) -> bool {
    b.get(i) == Some(&want)
}

/// True at the end of the line or before a byte that cannot continue a time.
#[inline]
fn boundary(b: &[u8], i: usize) -> bool {
    !b.get(i).is_some_and(u8::is_ascii_alphanumeric)
}

/// `i`, moved past one space if there is one.
#[inline]
fn skip_space(b: &[u8], i: usize) -> usize {
    if byte_is(b, i, b' ') {
        i + 1
    } else {
        i
    }
}

/// Skips a syslog priority `<0>` to `<999>`; returns 0 when there is none.
#[inline]
fn skip_pri(b: &[u8]) -> usize {
    if !byte_is(b, 0, b'<') {
        return 0;
    }
    let mut i = 1;
    while i < 4 && is_digit_at(b, i) {
        i += 1;
    }
    if i > 1 && byte_is(b, i, b'>') {
        i + 1
    } else {
        0
    }
}

const fn pack(m: &[u8; 3]) -> u32 {
    (m[0] as u32) << 16 | (m[1] as u32) << 8 | m[2] as u32
}

/// An English month abbreviation at `i`, any ASCII case.
#[inline]
fn month_at(b: &[u8], i: usize) -> Option<u8> {
    const JAN: u32 = pack(b"jan");
    const FEB: u32 = pack(b"feb");
    const MAR: u32 = pack(b"mar");
    const APR: u32 = pack(b"apr");
    const MAY: u32 = pack(b"may");
    const JUN: u32 = pack(b"jun");
    const JUL: u32 = pack(b"jul");
    const AUG: u32 = pack(b"aug");
    const SEP: u32 = pack(b"sep");
    const OCT: u32 = pack(b"oct");
    const NOV: u32 = pack(b"nov");
    const DEC: u32 = pack(b"dec");
    let s = b.get(i..i + 3)?;
    // Setting 0x20 lowercases ASCII letters and maps no other byte onto a lowercase letter.
    let key = pack(&[s[0] | 0x20, s[1] | 0x20, s[2] | 0x20]);
    Some(match key {
        JAN => 1,
        FEB => 2,
        MAR => 3,
        APR => 4,
        MAY => 5,
        JUN => 6,
        JUL => 7,
        AUG => 8,
        SEP => 9,
        OCT => 10,
        NOV => 11,
        DEC => 12,
        _ => return None,
    })
}

/// The value of an ASCII digit.
#[inline]
fn digit_value(c: u8) -> Option<u32> {
    let v = c.wrapping_sub(b'0');
    (v < 10).then_some(u32::from(v))
}

/// `HH:MM:SS` at `i`: the second of the day (a leap second 60 counts as the next second).
#[inline(always)]
fn time_of_day(b: &[u8], i: usize) -> Option<i64> {
    let s: &[u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
    if s[2] != b':' || s[5] != b':' {
        return None;
    }
    let hour = digit_value(s[0])? * 10 + digit_value(s[1])?;
    let minute = digit_value(s[3])? * 10 + digit_value(s[4])?;
    let second = digit_value(s[6])? * 10 + digit_value(s[7])?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(i64::from(hour * 3600 + minute * 60 + second))
}

/// An optional fraction at `i` (`.`, or `,` when `comma` allows it, then at least one
/// digit): microseconds (further digits truncated) and the index after it.
#[inline(always)]
fn fraction(b: &[u8], i: usize, comma: bool) -> (u32, usize) {
    match b.get(i) {
        Some(b'.') if is_digit_at(b, i + 1) => {}
        Some(b',') if comma && is_digit_at(b, i + 1) => {}
        _ => return (0, i),
    }
    let mut j = i + 1;
    let mut micro = 0u32;
    let mut scale = 100_000u32;
    while let Some(d) = digit(b, j) {
        micro += d * scale;
        scale /= 10;
        j += 1;
    }
    (micro, j)
}

/// A numeric offset `+HH:MM`, `+HHMM` or `+HH` at `i`, if the byte at `i` is a sign.
/// `Some(None)`: a sign followed by something malformed.
#[inline(always)]
fn numeric_offset(b: &[u8], i: usize) -> Option<Option<(i32, usize)>> {
    let negative = match b.get(i) {
        Some(b'+') => false,
        Some(b'-') => true,
        _ => return None,
    };
    let Some(hours) = two_digits(b, i + 1) else {
        return Some(None);
    };
    let (minutes, end) = if byte_is(b, i + 3, b':') {
        match two_digits(b, i + 4) {
            Some(m) => (m, i + 6),
            None => return Some(None),
        }
    } else if let Some(m) = two_digits(b, i + 3) {
        (m, i + 5)
    } else {
        (0, i + 3)
    };
    if hours > MAX_OFFSET_HOURS || minutes > 59 || is_digit_at(b, end) {
        return Some(None);
    }
    let secs = (hours * 3600 + minutes * 60) as i32;
    Some(Some((if negative { -secs } else { secs }, end)))
}

/// `Nov 21 01:02:03[.123456]`, optionally after `<PRI>`, or in brackets.
fn parse_syslog(b: &[u8]) -> Option<SyslogFields> {
    let bracketed = byte_is(b, 0, b'[');
    let i = if bracketed { 1 } else { skip_pri(b) };
    let month = month_at(b, i)?;
    if !byte_is(b, i + 3, b' ') {
        return None;
    }
    // Day: " 1" (space padded), "01", "21" or "1".
    let (day, after_day) = if byte_is(b, i + 4, b' ') {
        (digit(b, i + 5)?, i + 6)
    } else {
        let first = digit(b, i + 4)?;
        match digit(b, i + 5) {
            Some(second) => (first * 10 + second, i + 6),
            None => (first, i + 5),
        }
    };
    if !(1..=31).contains(&day) || !byte_is(b, after_day, b' ') {
        return None;
    }
    let t = after_day + 1;
    let second_of_day = time_of_day(b, t)?;
    let (micro, mut end) = fraction(b, t + 8, false);
    if bracketed {
        if !byte_is(b, end, b']') {
            return None;
        }
        end += 1;
    } else if !boundary(b, end) {
        return None;
    }
    Some(SyslogFields {
        month,
        day: day as u8,
        second_of_day,
        micro,
        end: skip_space(b, end),
    })
}

/// An ISO 8601 time at the start of the line, after an optional `<PRI>` and RFC 5424
/// version, or inside `[...]`.
fn parse_iso(b: &[u8]) -> Option<Raw> {
    let mut i = skip_pri(b);
    if i > 0 {
        // RFC 5424: `<34>1 2026-...`; the version is one or two digits and a space.
        let mut j = i;
        while j < i + 2 && is_digit_at(b, j) {
            j += 1;
        }
        if j > i && byte_is(b, j, b' ') {
            i = j + 1;
        }
    }
    let bracketed = byte_is(b, i, b'[');
    if bracketed {
        i += 1;
    }
    if b.get(i).is_some_and(u8::is_ascii_alphabetic) {
        return parse_ctime(b, i, bracketed);
    }
    let s: &[u8; 11] = b.get(i..i + 11)?.try_into().ok()?;
    // `-` (ISO 8601) or `/` (nginx's error log, always with a space before the time).
    let slash = s[4] == b'/' && s[7] == b'/' && s[10] == b' ';
    if !slash && (s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ')) {
        return None;
    }
    let year = digit_value(s[0])? * 1000
        + digit_value(s[1])? * 100
        + digit_value(s[2])? * 10
        + digit_value(s[3])?;
    let month = digit_value(s[5])? * 10 + digit_value(s[6])?;
    let day = digit_value(s[8])? * 10 + digit_value(s[9])?;
    let year = year as i32;
    if !(1..=12).contains(&month)
        || !(1..=u32::from(days_in_month(year, month as u8))).contains(&day)
    {
        return None;
    }
    let t = i + 11;
    let second_of_day = time_of_day(b, t)?;
    let (micro, mut end) = fraction(b, t + 8, true);
    let offset = match b.get(end) {
        Some(b'Z' | b'z') => {
            end += 1;
            Some(0)
        }
        _ => match numeric_offset(b, end) {
            Some(Some((offset, next))) => {
                end = next;
                Some(offset)
            }
            Some(None) => return None,
            None => {
                let named = b.get(end..end + 4);
                if (named == Some(b" UTC") || named == Some(b" GMT")) && boundary(b, end + 4) {
                    end += 4;
                    Some(0)
                } else {
                    None
                }
            }
        },
    };
    if bracketed {
        if !byte_is(b, end, b']') {
            return None;
        }
        end += 1;
    } else if !boundary(b, end) {
        return None;
    }
    Some(Raw {
        year,
        month: month as u8,
        day: day as u8,
        second_of_day,
        micro,
        offset,
        end: skip_space(b, end),
    })
}

/// `Sat Nov 21 01:02:03[.frac] 2026` at `i` (C's `ctime` with the year last; the day may
/// be space padded), closed by `]` when `bracketed`. No offset: read in the zone.
fn parse_ctime(b: &[u8], i: usize, bracketed: bool) -> Option<Raw> {
    const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    let wd = b.get(i..i + 3)?;
    if !DAYS.iter().any(|d| d.eq_ignore_ascii_case(wd)) || !byte_is(b, i + 3, b' ') {
        return None;
    }
    let month = month_at(b, i + 4)?;
    if !byte_is(b, i + 7, b' ') {
        return None;
    }
    let day = if byte_is(b, i + 8, b' ') {
        digit(b, i + 9)?
    } else {
        two_digits(b, i + 8)?
    };
    if !byte_is(b, i + 10, b' ') {
        return None;
    }
    let second_of_day = time_of_day(b, i + 11)?;
    let (micro, y) = fraction(b, i + 19, false);
    if !byte_is(b, y, b' ') {
        return None;
    }
    let year = (two_digits(b, y + 1)? * 100 + two_digits(b, y + 3)?) as i32;
    if !(1..=u32::from(days_in_month(year, month))).contains(&day) {
        return None;
    }
    let mut end = y + 5;
    if bracketed {
        if !byte_is(b, end, b']') {
            return None;
        }
        end += 1;
    } else if !boundary(b, end) {
        return None;
    }
    Some(Raw {
        year,
        month,
        day: day as u8,
        second_of_day,
        micro,
        offset: None,
        end: skip_space(b, end),
    })
}

/// The CLF time of a line: a `[...]` opening within the first 1024 bytes that holds one.
///
/// Access logs put the time after the client address, ident and user name and before the
/// quoted request. The user name (HTTP basic auth) is attacker controlled and may hold a
/// bracketed time of its own, but not an unescaped `"` (Apache writes `\"`, nginx `\x22`). So the
/// time is the last one before the first `"`; in a line with no `"` before any time, the
/// first one.
fn find_clf(b: &[u8]) -> Option<Raw> {
    let window = b.get(..CLF_SEARCH_BYTES).unwrap_or(b);
    let mut first: Option<Raw> = None;
    let mut last: Option<Raw> = None;
    let mut i = 0;
    while let Some(&c) = window.get(i) {
        if c == b'[' {
            if let Some(raw) = parse_clf_at(b, i + 1) {
                if first.is_none() {
                    first = Some(raw);
                }
                last = Some(raw);
                i = raw.end;
                continue;
            }
        } else if c == b'\\' {
            // An escaped byte (`\"` in a user name) is data, not a field quote.
            i += 2;
            continue;
        } else if c == b'"' && last.is_some() {
            break;
        }
        i += 1;
    }
    let quoted = window.get(i) == Some(&b'"');
    let found = if quoted { last } else { first };
    found.map(|raw| Raw { end: 0, ..raw })
}

/// `21/Nov/2026:01:02:03[.frac][ +0000]]` at `i`; `end` is the index after the `]`.
#[inline]
fn parse_clf_at(b: &[u8], i: usize) -> Option<Raw> {
    let first = digit(b, i)?;
    let (day, m) = match digit(b, i + 1) {
        Some(second) => (first * 10 + second, i + 3),
        None => (first, i + 2),
    };
    if !byte_is(b, m - 1, b'/') || !byte_is(b, m + 3, b'/') {
        return None;
    }
    let month = month_at(b, m)?;
    let y = m + 4;
    let year = (two_digits(b, y)? * 100 + two_digits(b, y + 2)?) as i32;
    if !byte_is(b, y + 4, b':') {
        return None;
    }
    if !(1..=u32::from(days_in_month(year, month))).contains(&day) {
        return None;
    }
    let t = y + 5;
    let second_of_day = time_of_day(b, t)?;
    let (micro, mut end) = fraction(b, t + 8, false);
    let mut offset = None;
    let at = if byte_is(b, end, b' ') { end + 1 } else { end };
    if let Some(parsed) = numeric_offset(b, at) {
        let (o, next) = parsed?;
        offset = Some(o);
        end = next;
    }
    if !byte_is(b, end, b']') {
        return None;
    }
    Some(Raw {
        year,
        month,
        day: day as u8,
        second_of_day,
        micro,
        offset,
        end: end + 1,
    })
}

/// A TAI64N label at the start: `@` and 24 hex digits (seconds + 2^62 + 10, nanoseconds).
fn parse_tai64n(b: &[u8]) -> Option<Stamp> {
    let hex = b.get(1..25)?;
    let mut label = 0u128;
    for &c in hex {
        label = (label << 4) | u128::from((c as char).to_digit(16)?);
    }
    let secs = i64::try_from(label >> 32).ok()? - (1i64 << 62) - 10;
    let nanos = (label & 0xffff_ffff) as i64;
    if nanos >= 1_000_000_000 || !boundary(b, 25) {
        return None;
    }
    Some(Stamp {
        time: Timestamp::from_micros(secs.checked_mul(MICROS_PER_SEC)? + nanos / 1000),
        message_start: skip_space(b, 25),
    })
}

/// Ten digits of epoch seconds and an optional fraction at the start, optionally in `[...]`;
/// or a TAI64N label.
fn parse_epoch(b: &[u8]) -> Option<Stamp> {
    if byte_is(b, 0, b'@') {
        return parse_tai64n(b);
    }
    let bracketed = byte_is(b, 0, b'[');
    let start = usize::from(bracketed);
    let mut secs = 0i64;
    for i in start..start + 10 {
        secs = secs * 10 + i64::from(digit(b, i)?);
    }
    let (micro, mut end) = fraction(b, start + 10, false);
    if bracketed {
        if !byte_is(b, end, b']') {
            return None;
        }
        end += 1;
    } else if !boundary(b, end) {
        return None;
    }
    Some(Stamp {
        time: Timestamp::from_micros(secs * MICROS_PER_SEC + i64::from(micro)),
        message_start: skip_space(b, end),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn reads_bracketed_syslog_and_tai64n() {
        let mut p = parser(FormatChoice::Auto, "UTC", "2026-11-25T00:00:00Z");
        let st = p.parse(b"[Nov 21 01:02:03] NOTICE[1]: x").unwrap();
        assert_eq!(st.time, ts("2026-11-21T01:02:03Z"));
        let mut p = parser(FormatChoice::Auto, "UTC", "2026-11-25T00:00:00Z");
        // 2010-09-16T07:51:00Z = 1284623460 s; label = 2^62 + 10 + that.
        let line = format!(
            "@{:016x}{:08x} imap-login: x",
            (1u64 << 62) + 10 + 1_284_623_460,
            500_000_000
        );
        let st = p.parse(line.as_bytes()).unwrap();
        assert_eq!(st.time, ts("2010-09-16T07:51:00.5Z"));
        assert_eq!(&line[st.message_start..], "imap-login: x");
        assert!(p.parse(b"@40000000zz imap").is_none());
    }

    #[test]
    fn reads_nginx_error_log_and_ctime_forms() {
        let mut p = parser(FormatChoice::Auto, "UTC", "2026-11-25T00:00:00Z");
        for (line, want, msg) in [
            (
                "2026/11/21 01:02:03 [error] 2865#0: *1 user",
                "2026-11-21T01:02:03Z",
                "[error] 2865#0: *1 user",
            ),
            (
                "[Sat Nov 21 01:02:03.123456 2026] [auth_basic:error] x",
                "2026-11-21T01:02:03.123456Z",
                "[auth_basic:error] x",
            ),
            (
                "[Sat Nov 21 01:02:03 2026] [error] [client 192.0.2.1] x",
                "2026-11-21T01:02:03Z",
                "[error] [client 192.0.2.1] x",
            ),
            (
                "Sat Nov  7 01:02:03 2026 [pid 2] [ftp] FAIL LOGIN",
                "2026-11-07T01:02:03Z",
                "[pid 2] [ftp] FAIL LOGIN",
            ),
        ] {
            let st = p.parse(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(st.time, ts(want), "{line}");
            assert_eq!(&line[st.message_start..], msg, "{line}");
        }
        for bad in [
            "2026/11/21T01:02:03 x",
            "Sat Nov 31 01:02:03 2026 x",
            "Xyz Nov 21 01:02:03 2026 x",
            "[Sat Nov 21 01:02:03 2026 x",
        ] {
            assert!(p.parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    fn parser(format: FormatChoice, zone: &str, now: &str) -> TimeParser {
        TimeParser::new(format, Zone::parse(zone).unwrap(), ts(now))
    }

    proptest! {
        /// The parser reuses the result of a line that starts with the same time text as
        /// the line before. Across a New Year, disorder and repeats, that gives what parsing
        /// the time afresh gives: a second parser sees every other line with a syslog
        /// priority in front (other text, so nothing is reused) and must agree line by line.
        #[test]
        fn reusing_a_repeated_syslog_time_changes_nothing(
            steps in proptest::collection::vec((0u8..4, 0i64..400), 1..60),
        ) {
            let mut cached = parser(FormatChoice::Syslog, "UTC", "2027-01-01T06:00:00Z");
            let mut fresh = parser(FormatChoice::Syslog, "UTC", "2027-01-01T06:00:00Z");
            // Local seconds from 2026-12-31T23:50:00.
            let mut t: i64 = 0;
            let mut plain = true;
            for (kind, delta) in steps {
                match kind {
                    0 => {} // the same time again
                    1 => t += delta,
                    2 => t -= delta / 4, // a little disorder
                    _ => t += delta * 100,
                }
                let secs = 1_798_760_999 - 599 + t;
                let (_, m, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
                let sod = secs.rem_euclid(SECS_PER_DAY);
                let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][usize::from(m) - 1];
                let hms = format!("{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60);
                let line = format!("{month} {d:>2} {hms} h sshd[1]: x");
                plain = !plain;
                let (other, shift) = if plain {
                    (line.clone(), 0)
                } else {
                    (format!("<13>{line}"), 4)
                };
                let a = cached.parse(line.as_bytes()).map(|s| (s.time, s.message_start));
                let b = fresh
                    .parse(other.as_bytes())
                    .map(|s| (s.time, s.message_start - shift));
                prop_assert_eq!(a, b, "{}", line);
            }
        }
    }

    /// The time of `line` as RFC 3339 UTC, or "none".
    fn time_of(p: &mut TimeParser, line: &str) -> String {
        p.parse(line.as_bytes())
            .map_or_else(|| "none".to_owned(), |s| s.time.to_string())
    }

    fn rest<'a>(p: &mut TimeParser, line: &'a str) -> &'a str {
        let stamp = p.parse(line.as_bytes()).unwrap();
        &line[stamp.message_start..]
    }

    #[test]
    fn parses_syslog_with_space_padded_day() {
        let mut p = parser(FormatChoice::Syslog, "UTC", "2026-11-21T12:00:00Z");
        let line = "Nov  1 01:02:03 host sshd[1]: Failed password";
        assert_eq!(time_of(&mut p, line), "2026-11-01T01:02:03Z");
        assert_eq!(rest(&mut p, line), "host sshd[1]: Failed password");
        assert_eq!(
            time_of(&mut p, "Nov 01 01:02:03 h x"),
            "2026-11-01T01:02:03Z"
        );
        assert_eq!(
            time_of(&mut p, "Nov 1 01:02:03 h x"),
            "2026-11-01T01:02:03Z"
        );
        assert_eq!(
            time_of(&mut p, "nov 21 01:02:03 h x"),
            "2026-11-21T01:02:03Z"
        );
        assert_eq!(
            time_of(&mut p, "NOV 21 01:02:03 h x"),
            "2026-11-21T01:02:03Z"
        );
        assert_eq!(
            time_of(&mut p, "<34>Nov 21 01:02:03.123456 h x"),
            "2026-11-21T01:02:03.123456Z"
        );
        assert_eq!(
            time_of(&mut p, "Nov 21 01:02:03.5 h x"),
            "2026-11-21T01:02:03.5Z"
        );
        assert_eq!(time_of(&mut p, "Nov 21 01:02:03"), "2026-11-21T01:02:03Z");
        assert_eq!(time_of(&mut p, "Nov 32 01:02:03 h x"), "none");
        assert_eq!(time_of(&mut p, "Nov 21 24:02:03 h x"), "none");
        assert_eq!(time_of(&mut p, "Nox 21 01:02:03 h x"), "none");
    }

    #[test]
    fn infers_previous_year_for_logs_replayed_months_later() {
        let mut p = parser(FormatChoice::Syslog, "UTC", "2027-03-01T00:00:00Z");
        assert_eq!(
            time_of(&mut p, "Nov 21 01:02:03 h x"),
            "2026-11-21T01:02:03Z"
        );

        // A December log read in January.
        let mut p = parser(FormatChoice::Syslog, "UTC", "2027-01-02T08:00:00Z");
        assert_eq!(
            time_of(&mut p, "Dec 31 23:59:59 h x"),
            "2026-12-31T23:59:59Z"
        );

        // Up to one day in the future is clock skew, not last year.
        let mut p = parser(FormatChoice::Syslog, "UTC", "2026-11-21T12:00:00Z");
        assert_eq!(
            time_of(&mut p, "Nov 22 11:00:00 h x"),
            "2026-11-22T11:00:00Z"
        );
        let mut p = parser(FormatChoice::Syslog, "UTC", "2026-11-21T12:00:00Z");
        assert_eq!(
            time_of(&mut p, "Nov 22 13:00:00 h x"),
            "2025-11-22T13:00:00Z"
        );

        // The year of `now` is read in the zone: 23:30 UTC on Dec 31 is already next year
        // in Zurich.
        let mut p = parser(
            FormatChoice::Syslog,
            "Europe/Zurich",
            "2026-12-31T23:30:00Z",
        );
        assert_eq!(
            time_of(&mut p, "Jan  1 00:10:00 h x"),
            "2026-12-31T23:10:00Z"
        );

        // A later set_now decides the year of a first line that arrives later.
        let mut p = parser(FormatChoice::Syslog, "UTC", "2026-12-30T00:00:00Z");
        p.set_now(ts("2027-01-05T00:00:00Z"));
        assert_eq!(
            time_of(&mut p, "Jan  5 00:00:00 h x"),
            "2027-01-05T00:00:00Z"
        );
    }

    #[test]
    fn infers_leap_day_from_the_neighbouring_year_or_yields_none() {
        let mut p = parser(FormatChoice::Syslog, "UTC", "2029-03-01T00:00:00Z");
        assert_eq!(
            time_of(&mut p, "Feb 29 10:00:00 h x"),
            "2028-02-29T10:00:00Z"
        );
        let mut p = parser(FormatChoice::Syslog, "UTC", "2027-03-01T00:00:00Z");
        assert_eq!(time_of(&mut p, "Feb 29 10:00:00 h x"), "none");
        // Once the year is known, a Feb 29 it does not have yields none and keeps the state.
        assert_eq!(
            time_of(&mut p, "Feb 27 10:00:00 h x"),
            "2027-02-27T10:00:00Z"
        );
        assert_eq!(time_of(&mut p, "Feb 29 10:00:00 h x"), "none");
        assert_eq!(
            time_of(&mut p, "Mar  1 10:00:00 h x"),
            "2027-03-01T10:00:00Z"
        );
    }

    #[test]
    fn rolls_year_over_from_december_to_january_within_one_file() {
        for now in ["2027-01-01T06:00:00Z", "2027-06-01T00:00:00Z"] {
            let mut p = parser(FormatChoice::Syslog, "UTC", now);
            let times: Vec<String> = [
                "Dec 30 10:00:00 h x",
                "Dec 31 23:59:59 h x",
                "Jan  1 00:00:00 h x",
                "Jan  1 00:00:01 h x",
                "Mar  3 00:00:01 h x",
            ]
            .iter()
            .map(|l| time_of(&mut p, l))
            .collect();
            assert_eq!(
                times,
                [
                    "2026-12-30T10:00:00Z",
                    "2026-12-31T23:59:59Z",
                    "2027-01-01T00:00:00Z",
                    "2027-01-01T00:00:01Z",
                    "2027-03-03T00:00:01Z",
                ],
                "now = {now}"
            );
        }
    }

    #[test]
    fn slight_disorder_does_not_roll_the_year() {
        let mut p = parser(FormatChoice::Syslog, "UTC", "2026-11-21T12:00:00Z");
        assert_eq!(
            time_of(&mut p, "Nov 21 01:02:05 h x"),
            "2026-11-21T01:02:05Z"
        );
        assert_eq!(
            time_of(&mut p, "Nov 21 01:02:03 h x"),
            "2026-11-21T01:02:03Z"
        );
        assert_eq!(
            time_of(&mut p, "Nov 20 23:59:00 h x"),
            "2026-11-20T23:59:00Z"
        );
        assert_eq!(
            time_of(&mut p, "Nov 21 01:02:04 h x"),
            "2026-11-21T01:02:04Z"
        );

        // Disorder across New Year: a late December line after the rollover keeps its year.
        let mut p = parser(FormatChoice::Syslog, "UTC", "2027-01-01T06:00:00Z");
        assert_eq!(
            time_of(&mut p, "Dec 31 23:59:58 h x"),
            "2026-12-31T23:59:58Z"
        );
        assert_eq!(
            time_of(&mut p, "Jan  1 00:00:01 h x"),
            "2027-01-01T00:00:01Z"
        );
        assert_eq!(
            time_of(&mut p, "Dec 31 23:59:59 h x"),
            "2026-12-31T23:59:59Z"
        );
        assert_eq!(
            time_of(&mut p, "Jan  1 00:00:02 h x"),
            "2027-01-01T00:00:02Z"
        );

        // A long quiet spell forward is not mistaken for disorder.
        let mut p = parser(FormatChoice::Syslog, "UTC", "2026-11-30T00:00:00Z");
        assert_eq!(
            time_of(&mut p, "Mar  1 00:00:00 h x"),
            "2026-03-01T00:00:00Z"
        );
        assert_eq!(
            time_of(&mut p, "Nov 21 00:00:00 h x"),
            "2026-11-21T00:00:00Z"
        );
    }

    #[test]
    fn parses_rfc3339_with_fraction_and_offset() {
        let mut p = parser(FormatChoice::Iso8601, "UTC", "2026-11-21T12:00:00Z");
        for (line, want) in [
            (
                "2026-11-21T02:02:03.123456789+01:00 x",
                "2026-11-21T01:02:03.123456Z",
            ),
            ("2026-11-21T02:02:03.5+0100 x", "2026-11-21T01:02:03.5Z"),
            ("2026-11-21T02:02:03+01 x", "2026-11-21T01:02:03Z"),
            ("2026-11-20T20:32:03-05:30 x", "2026-11-21T02:02:03Z"),
            ("2026-11-21t01:02:03z x", "2026-11-21T01:02:03Z"),
            ("2026-11-21 01:02:03,25 INFO x", "2026-11-21T01:02:03.25Z"),
            (
                "2026-11-21 01:02:03.123 UTC [42] LOG: x",
                "2026-11-21T01:02:03.123Z",
            ),
            ("2026-11-21T01:02:03", "2026-11-21T01:02:03Z"),
            ("2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z"),
            ("2027-02-29T00:00:00Z", "none"),
            ("2026-13-01T00:00:00Z", "none"),
            ("2026-11-21T01:02:03+25:00 x", "none"),
            ("2026-11-21T01:02:03+01:x x", "none"),
            ("2026-11-21T01:02:03Zulu", "none"),
            ("2026-11-21T01:02 x", "none"),
        ] {
            assert_eq!(time_of(&mut p, line), want, "{line}");
        }
    }

    #[test]
    fn parses_rsyslog_high_precision() {
        let mut p = parser(FormatChoice::Auto, "UTC", "2026-11-21T12:00:00Z");
        let line = "2026-11-21T01:02:03.123456+01:00 host sshd[12]: Failed password for root";
        assert_eq!(time_of(&mut p, line), "2026-11-21T00:02:03.123456Z");
        assert_eq!(
            rest(&mut p, line),
            "host sshd[12]: Failed password for root"
        );
        assert_eq!(p.detected(), Some(TimeFormat::Iso8601));
        // journalctl -o short-iso and short-iso-precise.
        assert_eq!(
            time_of(&mut p, "2026-11-21T01:02:03+0100 host sshd[12]: x"),
            "2026-11-21T00:02:03Z"
        );
        assert_eq!(
            time_of(&mut p, "2026-11-21T01:02:03.000001-05:00 host sshd[12]: x"),
            "2026-11-21T06:02:03.000001Z"
        );
    }

    #[test]
    fn parses_rfc5424() {
        let mut p = parser(FormatChoice::Auto, "UTC", "2026-11-21T12:00:00Z");
        let line = "<34>1 2026-11-21T01:02:03.003Z host app 123 ID47 - message";
        assert_eq!(time_of(&mut p, line), "2026-11-21T01:02:03.003Z");
        assert_eq!(rest(&mut p, line), "host app 123 ID47 - message");
        assert_eq!(p.detected(), Some(TimeFormat::Iso8601));
        assert_eq!(
            time_of(&mut p, "<165>1 2026-11-21T02:02:03+01:00 h a - - - m"),
            "2026-11-21T01:02:03Z"
        );
        assert_eq!(time_of(&mut p, "<165>1 - h a - - - m"), "none");
    }

    #[test]
    fn parses_clf_inside_the_line() {
        let mut p = parser(FormatChoice::Clf, "+01:00", "2026-11-21T12:00:00Z");
        let line = "203.0.113.5 - - [21/Nov/2026:01:02:03 +0000] \"GET / HTTP/1.1\" 200 12";
        let stamp = p.parse(line.as_bytes()).unwrap();
        assert_eq!(stamp.time, ts("2026-11-21T01:02:03Z"));
        assert_eq!(stamp.message_start, 0);
        for (line, want) in [
            (
                "h - - [21/nov/2026:01:02:03 +0100] \"GET /\"",
                "2026-11-21T00:02:03Z",
            ),
            (
                "h - - [21/Nov/2026:01:02:03 -05:00] x",
                "2026-11-21T06:02:03Z",
            ),
            (
                "h - - [1/Nov/2026:01:02:03 +0000] x",
                "2026-11-01T01:02:03Z",
            ),
            // No offset: the zone (+01:00) applies.
            ("h - - [21/Nov/2026:01:02:03] x", "2026-11-21T00:02:03Z"),
            // The first bracket is not the time: keep looking.
            (
                "[2001:db8::5] - - [21/Nov/2026:01:02:03 +0000] x",
                "2026-11-21T01:02:03Z",
            ),
            ("h - - [21/Nov/2026:01:02:03 +0000 x", "none"),
            ("h - - [31/Nov/2026:01:02:03 +0000] x", "none"),
            ("h - - [21/Nov/2026 01:02:03 +0000] x", "none"),
        ] {
            assert_eq!(time_of(&mut p, line), want, "{line}");
        }
        let far = format!("{} [21/Nov/2026:01:02:03 +0000]", "x".repeat(1100));
        assert_eq!(time_of(&mut p, &far), "none");
    }

    #[test]
    fn clf_time_cannot_be_forged_by_a_bracketed_user_name() {
        let mut p = parser(FormatChoice::Auto, "UTC", "2026-11-21T12:00:00Z");
        for line in [
            "203.0.113.9 - [21/Nov/2020:00:00:00 +0000] [21/Nov/2026:01:02:03 +0000] \"GET /\" 401 1",
            "203.0.113.9 - a[21/Nov/2020:00:00:00]b [21/Nov/2026:01:02:03 +0000] \"GET /\" 401 1",
            r#"203.0.113.9 - [21/Nov/2020:00:00:00]\" [21/Nov/2026:01:02:03 +0000] "GET /" 401 1"#,
            r#"203.0.113.9 - \\[21/Nov/2020:00:00:00]\\\" [21/Nov/2026:01:02:03 +0000] "GET /" 1"#,
            "203.0.113.9 - - [21/Nov/2026:01:02:03 +0000] \"GET /[21/Nov/2020:00:00:00 +0000]\" 404 1",
            "203.0.113.9 - - [21/Nov/2026:01:02:03 +0000] \"GET /\" 404 1 \"-\" \"[21/Nov/2020:00:00:00]\"",
        ] {
            assert_eq!(time_of(&mut p, line), "2026-11-21T01:02:03Z", "{line}");
        }
        // A user name long enough to push the time out of the search window yields none
        // (the caller counts the line) rather than a forged time.
        let long = format!(
            "203.0.113.9 - {} [21/Nov/2026:01:02:03 +0000] \"GET /\" 401 1",
            "u".repeat(1100)
        );
        assert_eq!(time_of(&mut p, &long), "none");
    }

    #[test]
    fn parses_epoch_with_fraction() {
        let mut p = parser(FormatChoice::Auto, "Europe/Zurich", "2026-11-21T12:00:00Z");
        for (line, want, message) in [
            ("1763686923 msg", "2025-11-21T01:02:03Z", "msg"),
            (
                "1763686923.123456 msg",
                "2025-11-21T01:02:03.123456Z",
                "msg",
            ),
            (
                "1763686923.1234567 msg",
                "2025-11-21T01:02:03.123456Z",
                "msg",
            ),
            ("[1763686923.123] msg", "2025-11-21T01:02:03.123Z", "msg"),
            ("[1763686923]msg", "2025-11-21T01:02:03Z", "msg"),
            ("1763686923", "2025-11-21T01:02:03Z", ""),
        ] {
            assert_eq!(time_of(&mut p, line), want, "{line}");
            assert_eq!(rest(&mut p, line), message, "{line}");
            assert_eq!(p.detected(), Some(TimeFormat::Epoch));
        }
        for line in [
            "176368692 x",
            "17636869230 x",
            "[1763686923 x",
            "1763686923x",
        ] {
            assert_eq!(time_of(&mut p, line), "none", "{line}");
        }
    }

    #[test]
    fn applies_configured_zone_to_zoneless_times() {
        let now = "2026-11-21T12:00:00Z";
        let cases = [
            ("UTC", "2026-07-01 12:00:00", "2026-07-01T12:00:00Z"),
            ("+01:00", "2026-07-01 12:00:00", "2026-07-01T11:00:00Z"),
            ("UTC-5", "2026-07-01 12:00:00", "2026-07-01T17:00:00Z"),
            // Summer (CEST, +02:00) and winter (CET, +01:00).
            (
                "Europe/Zurich",
                "2026-07-01 12:00:00",
                "2026-07-01T10:00:00Z",
            ),
            (
                "Europe/Zurich",
                "2026-01-15 12:00:00",
                "2026-01-15T11:00:00Z",
            ),
            // Fold: 02:30 happens twice on 2026-10-25; the earlier instant (CEST) wins.
            (
                "Europe/Zurich",
                "2026-10-25 02:30:00",
                "2026-10-25T00:30:00Z",
            ),
            (
                "Europe/Zurich",
                "2026-10-25 03:00:00",
                "2026-10-25T02:00:00Z",
            ),
            // Gap: 02:30 does not exist on 2026-03-29; it is shifted forward to 03:30 CEST.
            (
                "Europe/Zurich",
                "2026-03-29 02:30:00",
                "2026-03-29T01:30:00Z",
            ),
            (
                "Europe/Zurich",
                "2026-03-29 01:59:59",
                "2026-03-29T00:59:59Z",
            ),
            (
                "Europe/Zurich",
                "2026-03-29 03:00:00",
                "2026-03-29T01:00:00Z",
            ),
            // An explicit offset beats the zone.
            (
                "Europe/Zurich",
                "2026-07-01T12:00:00Z",
                "2026-07-01T12:00:00Z",
            ),
        ];
        for (zone, line, want) in cases {
            let mut p = parser(FormatChoice::Iso8601, zone, now);
            assert_eq!(time_of(&mut p, line), want, "{zone} {line}");
        }

        // One parser across a transition: the minute cache must not leak an old offset.
        let mut p = parser(FormatChoice::Auto, "Europe/Zurich", now);
        for (line, want) in [
            ("2026-03-29 01:59:58 x", "2026-03-29T00:59:58Z"),
            ("2026-03-29 01:59:59 x", "2026-03-29T00:59:59Z"),
            ("2026-03-29 03:00:00 x", "2026-03-29T01:00:00Z"),
            ("2026-03-29 03:00:30 x", "2026-03-29T01:00:30Z"),
            ("Jul  1 12:00:00 h x", "2026-07-01T10:00:00Z"),
            // 167 days before July: no rollover.
            ("Jan 15 12:00:00 h x", "2026-01-15T11:00:00Z"),
            ("h - - [15/Jan/2026:12:00:01] x", "2026-01-15T11:00:01Z"),
        ] {
            assert_eq!(time_of(&mut p, line), want, "{line}");
        }
    }

    #[test]
    fn parses_zone_names_and_offsets() {
        for (text, shown) in [
            ("UTC", "UTC"),
            ("utc", "UTC"),
            ("Z", "UTC"),
            ("+01:00", "+01:00"),
            ("-0530", "-05:30"),
            ("+01", "+01:00"),
            ("UTC+2", "+02:00"),
            ("utc-05:30", "-05:30"),
            ("Europe/Zurich", "Europe/Zurich"),
            ("Etc/UTC", "UTC"),
        ] {
            assert_eq!(Zone::parse(text).unwrap().to_string(), shown, "{text}");
        }
        for text in ["Mars/Olympus_Mons", "", "UTC+", "+1:0", "+123"] {
            assert_eq!(
                Zone::parse(text).unwrap_err(),
                TimeError::UnknownZone(text.to_owned()),
                "{text:?}"
            );
        }
        assert!(matches!(
            Zone::parse("+24:00"),
            Err(TimeError::InvalidOffset(_))
        ));
        assert!(matches!(
            Zone::parse("UTC+01:60"),
            Err(TimeError::InvalidOffset(_))
        ));
        // The system zone depends on the machine: it either resolves or says why not.
        match Zone::parse("local") {
            Ok(_) | Err(TimeError::LocalZone(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    #[test]
    fn names_formats_in_text_and_config() {
        use serde::de::{value::StrDeserializer, IntoDeserializer};
        use serde::Deserialize;
        for f in TimeFormat::ALL {
            assert_eq!(f.to_string().parse::<TimeFormat>().unwrap(), f);
            assert_eq!(
                f.to_string().parse::<FormatChoice>().unwrap(),
                FormatChoice::from(f)
            );
        }
        assert_eq!("AUTO".parse::<FormatChoice>().unwrap(), FormatChoice::Auto);
        assert_eq!(
            "rfc3164".parse::<TimeFormat>().unwrap_err(),
            TimeError::UnknownFormat("rfc3164".to_owned())
        );
        assert_eq!(FormatChoice::default(), FormatChoice::Auto);
        let de: StrDeserializer<'_, serde::de::value::Error> = "iso8601".into_deserializer();
        assert_eq!(
            FormatChoice::deserialize(de).unwrap(),
            FormatChoice::Iso8601
        );
    }

    #[test]
    fn detects_format_once_and_switches_when_the_source_changes() {
        let mut p = parser(FormatChoice::Auto, "UTC", "2026-11-21T12:00:00Z");
        assert_eq!(p.detected(), None);
        assert_eq!(
            time_of(&mut p, "Nov 21 01:02:03 h x"),
            "2026-11-21T01:02:03Z"
        );
        assert_eq!(p.detected(), Some(TimeFormat::Syslog));
        assert_eq!(time_of(&mut p, "garbage line"), "none");
        assert_eq!(p.detected(), Some(TimeFormat::Syslog));
        assert_eq!(
            time_of(&mut p, "Nov 21 01:02:04 h x"),
            "2026-11-21T01:02:04Z"
        );
        // The source switched to high-precision timestamps after a reconfig.
        assert_eq!(
            time_of(&mut p, "2026-11-21T01:02:05+00:00 h x"),
            "2026-11-21T01:02:05Z"
        );
        assert_eq!(p.detected(), Some(TimeFormat::Iso8601));
        assert_eq!(
            time_of(&mut p, "1.2.3.4 - - [21/Nov/2026:01:02:06 +0000] \"GET /\""),
            "2026-11-21T01:02:06Z"
        );
        assert_eq!(p.detected(), Some(TimeFormat::Clf));
        assert_eq!(
            time_of(&mut p, "Nov 21 01:02:07 h x"),
            "2026-11-21T01:02:07Z"
        );
        assert_eq!(p.detected(), Some(TimeFormat::Syslog));

        // A fixed format tries nothing else.
        let mut p = parser(FormatChoice::Syslog, "UTC", "2026-11-21T12:00:00Z");
        assert_eq!(p.detected(), Some(TimeFormat::Syslog));
        assert_eq!(time_of(&mut p, "2026-11-21T01:02:05Z h x"), "none");
        assert_eq!(p.detected(), Some(TimeFormat::Syslog));
    }

    #[test]
    fn message_start_points_after_the_timestamp() {
        let mut p = parser(FormatChoice::Auto, "UTC", "2026-11-21T12:00:00Z");
        for (line, want) in [
            (
                "Nov 21 01:02:03 host sshd[1]: Failed",
                "host sshd[1]: Failed",
            ),
            ("<34>Nov 21 01:02:03 host sshd[1]: x", "host sshd[1]: x"),
            ("Nov 21 01:02:03.123456 host x", "host x"),
            ("Nov 21 01:02:03  two spaces", " two spaces"),
            ("2026-11-21T01:02:03Z host x", "host x"),
            ("2026-11-21 01:02:03,123 INFO x", "INFO x"),
            (
                "[2026-11-21 01:02:03] NOTICE[123] chan_sip.c: x",
                "NOTICE[123] chan_sip.c: x",
            ),
            ("[2026-11-21T01:02:03.5+01:00] x", "x"),
            ("<34>1 2026-11-21T01:02:03Z host app", "host app"),
            ("[1763686923.123] msg", "msg"),
            (
                "1.2.3.4 - - [21/Nov/2026:01:02:03 +0000] \"GET /\"",
                "1.2.3.4 - - [21/Nov/2026:01:02:03 +0000] \"GET /\"",
            ),
            ("Nov 21 01:02:03", ""),
        ] {
            assert_eq!(rest(&mut p, line), want, "{line}");
        }
    }

    #[test]
    fn garbage_and_truncated_lines_yield_none() {
        let samples = [
            "<34>Nov 21 01:02:03.123456 host sshd[1]: x",
            "<34>1 2026-11-21T01:02:03.003+01:00 host app",
            "[2026-11-21 01:02:03,5] NOTICE",
            "1.2.3.4 - - [21/Nov/2026:01:02:03 +0000] \"GET /\"",
            "[1763686923.123] msg",
        ];
        let mut auto = parser(FormatChoice::Auto, "Europe/Zurich", "2026-11-21T12:00:00Z");
        for sample in samples {
            assert!(auto.parse(sample.as_bytes()).is_some(), "{sample}");
            let bytes = sample.as_bytes();
            for cut in 0..bytes.len() {
                // Never panics; prefixes that end inside the time yield none.
                if let Some(stamp) = auto.parse(&bytes[..cut]) {
                    assert!(stamp.message_start <= cut, "{sample} cut at {cut}");
                }
            }
        }
        for line in [
            &b""[..],
            b"\xff\xfe\x00garbage",
            b"Nov",
            b"Nov 21",
            b"Nov 21 01:02",
            b"Nov 21 01:02:0",
            b"2026-11-21T01:02:0",
            b"2026-11-21T",
            b"<34>1 2026-11",
            b"[21/Nov/2026:01:02:03",
            b"<999999>Nov 21 01:02:03 h",
            b"<>Nov 21 01:02:03 h",
            b"\xc3\xa9Nov 21 01:02:03 h",
            b"[[[[[[[[[[[[[[[[[[[[",
        ] {
            assert_eq!(auto.parse(line), None, "{}", String::from_utf8_lossy(line));
        }
        let long_digits = vec![b'7'; 1 << 20];
        assert_eq!(auto.parse(&long_digits), None);
        let mut long_fraction = b"1763686923.".to_vec();
        long_fraction.extend(std::iter::repeat_n(b'9', 1 << 20));
        assert!(auto.parse(&long_fraction).is_some());
        let brackets = vec![b'['; 1 << 20];
        assert_eq!(auto.parse(&brackets), None);
    }

    fn all_parsers() -> Vec<TimeParser> {
        let mut choices = vec![FormatChoice::Auto];
        choices.extend(TimeFormat::ALL.map(FormatChoice::from));
        choices
            .into_iter()
            .map(|c| parser(c, "Europe/Zurich", "2026-11-21T12:00:00Z"))
            .collect()
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            for mut p in all_parsers() {
                if let Some(stamp) = p.parse(&line) {
                    prop_assert!(stamp.message_start <= line.len());
                }
            }
        }

        #[test]
        fn mutated_valid_lines_never_panic(
            which in 0usize..5,
            at in 0usize..60,
            byte in any::<u8>(),
        ) {
            let samples = [
                "Nov  1 01:02:03.5 host sshd[1]: x",
                "<34>1 2026-11-21T01:02:03.003+01:00 host app",
                "[2026-03-29 02:30:00] NOTICE",
                "1.2.3.4 - - [21/Nov/2026:01:02:03 +0000] \"GET /\"",
                "[1763686923.123] msg",
            ];
            let mut line = samples[which].as_bytes().to_vec();
            let at = at % line.len();
            line[at] = byte;
            for mut p in all_parsers() {
                for len in [line.len(), at] {
                    if let Some(stamp) = p.parse(&line[..len]) {
                        prop_assert!(stamp.message_start <= len);
                    }
                }
            }
        }
    }

    /// Nanoseconds this thread has run on a CPU (Linux schedstat), if available.
    fn thread_cpu_ns() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// Prints the parse cost per line. Run in release:
    /// `cargo test --release -- --ignored --nocapture measures_parse_cost_per_line`.
    #[test]
    #[ignore]
    fn measures_parse_cost_per_line() {
        use std::hint::black_box;
        use std::time::Instant;

        const LINES: usize = 4096;
        const ROUNDS: usize = 1000;
        let syslog: Vec<Vec<u8>> = (0..LINES)
            .map(|i| {
                format!(
                    "Nov {:2} {:02}:{:02}:{:02} host sshd[{}]: Failed password for root from 203.0.113.5 port 22 ssh2",
                    1 + i / 3600 % 28,
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60,
                    1000 + i
                )
                .into_bytes()
            })
            .collect();
        let clf: Vec<Vec<u8>> = (0..LINES)
            .map(|i| {
                format!(
                    "203.0.113.{} - - [21/Nov/2026:{:02}:{:02}:{:02} +0100] \"GET /wp-login.php HTTP/1.1\" 404 153 \"-\" \"Mozilla/5.0\"",
                    i % 250,
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60
                )
                .into_bytes()
            })
            .collect();
        let iso: Vec<Vec<u8>> = (0..LINES)
            .map(|i| {
                format!(
                    "2026-11-21T{:02}:{:02}:{:02}.{:06}+01:00 host sshd[1]: Failed password",
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60,
                    i
                )
                .into_bytes()
            })
            .collect();
        let cases: [(&str, FormatChoice, &str, &Vec<Vec<u8>>); 6] = [
            ("syslog, UTC, auto", FormatChoice::Auto, "UTC", &syslog),
            (
                "syslog, Europe/Zurich, auto",
                FormatChoice::Auto,
                "Europe/Zurich",
                &syslog,
            ),
            ("syslog, UTC, fixed", FormatChoice::Syslog, "UTC", &syslog),
            ("clf, auto", FormatChoice::Auto, "Europe/Zurich", &clf),
            ("clf, fixed", FormatChoice::Clf, "UTC", &clf),
            ("iso8601, auto", FormatChoice::Auto, "UTC", &iso),
        ];
        for (name, choice, zone, lines) in cases {
            let mut p = parser(choice, zone, "2026-11-30T00:00:00Z");
            let mut best = f64::MAX;
            for _ in 0..5 {
                let (wall, cpu) = (Instant::now(), thread_cpu_ns());
                let mut sum = 0i64;
                for _ in 0..ROUNDS / 5 {
                    for line in lines.iter() {
                        if let Some(s) = p.parse(black_box(line)) {
                            sum = sum.wrapping_add(s.time.as_micros());
                        }
                    }
                }
                black_box(sum);
                // CPU time of this thread when Linux reports it, else wall time.
                let spent = match (cpu, thread_cpu_ns()) {
                    (Some(a), Some(b)) => b.saturating_sub(a) as f64,
                    _ => wall.elapsed().as_nanos() as f64,
                };
                let ns = spent / (LINES * ROUNDS / 5) as f64;
                best = best.min(ns);
            }
            println!("{name}: {best:.1} ns/line");
        }
    }
}

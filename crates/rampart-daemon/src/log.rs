//! The daemon's log: one line per event on stderr, fields first, then a sentence.
//!
//! Under systemd (`JOURNAL_STREAM` set) each line starts with a `<N>` priority prefix that
//! journald understands and no timestamp (the journal adds one); otherwise it starts with
//! an RFC 3339 time and the level.

use std::fmt;
use std::io::Write;
use std::sync::OnceLock;

use rampart_core::{Clock, SystemClock, Timestamp};

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something is wrong but the daemon carries on.
    Warn,
    /// Normal operation: bans, reloads, start and stop.
    Info,
}

impl Level {
    fn syslog(self) -> u8 {
        match self {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
        }
    }
}

fn journal() -> bool {
    static J: OnceLock<bool> = OnceLock::new();
    *J.get_or_init(|| std::env::var_os("JOURNAL_STREAM").is_some())
}

/// Writes one log line.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    // A log line that cannot be written is not worth dying for.
    let _ = if journal() {
        writeln!(err, "<{}>{}", level.syslog(), args)
    } else {
        writeln!(err, "{} {} {}", SystemClock.now(), level.name(), args)
    };
}

/// A field value in a log line: written as is, or quoted when it holds spaces or quotes.
#[derive(Debug)]
pub struct Field<'a, T: ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> fmt::Display for Field<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        if text.is_empty() || text.contains([' ', '"', '\t', '\n']) {
            write!(f, "{text:?}")
        } else {
            f.write_str(&text)
        }
    }
}

/// Logs `key = value, ...; "message"` at a level.
#[macro_export]
macro_rules! log_at {
    ($lvl:expr, $($k:ident = $(%)? $v:expr),* ; $($msg:tt)+) => {
        $crate::log::write(
            $lvl,
            format_args!(
                concat!($(stringify!($k), "={} ",)* "{}"),
                $($crate::log::Field(&$v),)*
                format_args!($($msg)+)
            ),
        )
    };
}
/// Logs at info level: `info!(jail = %name, n = 3; "Message.")`.
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log_at!($crate::log::Level::Info, $($t)*) };
}
/// Logs at warning level.
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log_at!($crate::log::Level::Warn, $($t)*) };
}
/// Logs at error level.
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log_at!($crate::log::Level::Error, $($t)*) };
}

/// Lets at most `burst` events through per minute and counts the rest, so a flood of bad
/// lines or failing backend calls cannot flood the log.
#[derive(Debug)]
pub struct RateLimit {
    burst: u32,
    window_start: Timestamp,
    passed: u32,
    suppressed: u64,
}

impl RateLimit {
    /// A limiter passing `burst` events per minute.
    pub fn new(burst: u32) -> Self {
        Self {
            burst,
            window_start: Timestamp::from_micros(0),
            passed: 0,
            suppressed: 0,
        }
    }

    /// When a minute has passed since the window began: starts a new one and returns how
    /// many events were suppressed in the old one (so a quiet period still reports them).
    pub fn flush(&mut self, now: Timestamp) -> u64 {
        if now.as_micros() - self.window_start.as_micros() >= 60_000_000 {
            self.window_start = now;
            self.passed = 0;
            std::mem::take(&mut self.suppressed)
        } else {
            0
        }
    }

    /// Whether to log this event; when a new minute starts, also returns how many were
    /// suppressed in the last one (to say so once).
    pub fn allow(&mut self, now: Timestamp) -> (bool, u64) {
        let mut suppressed = 0;
        if now.as_micros() - self.window_start.as_micros() >= 60_000_000 {
            suppressed = std::mem::take(&mut self.suppressed);
            self.window_start = now;
            self.passed = 0;
        }
        if self.passed < self.burst {
            self.passed += 1;
            (true, suppressed)
        } else {
            self.suppressed += 1;
            (false, suppressed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_spaces_are_quoted() {
        assert_eq!(Field(&"a b").to_string(), "\"a b\"");
        assert_eq!(Field(&"ab").to_string(), "ab");
        assert_eq!(Field(&3).to_string(), "3");
    }

    #[test]
    fn rate_limit_passes_a_burst_per_minute_and_counts_the_rest() {
        let mut r = RateLimit::new(3);
        let t0 = Timestamp::from_micros(1_000_000_000_000);
        let got: Vec<bool> = (0..5).map(|_| r.allow(t0).0).collect();
        assert_eq!(got, [true, true, true, false, false]);
        let (ok, suppressed) = r.allow(Timestamp::from_micros(t0.as_micros() + 61_000_000));
        assert!(ok);
        assert_eq!(suppressed, 2);
        r.allow(Timestamp::from_micros(t0.as_micros() + 62_000_000));
        r.allow(Timestamp::from_micros(t0.as_micros() + 62_000_000));
        r.allow(Timestamp::from_micros(t0.as_micros() + 62_000_000));
        assert_eq!(
            r.flush(Timestamp::from_micros(t0.as_micros() + 90_000_000)),
            0
        );
        assert_eq!(
            r.flush(Timestamp::from_micros(t0.as_micros() + 122_000_000)),
            1
        );
    }
}

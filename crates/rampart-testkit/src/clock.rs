//! Log time for the generators: a millisecond clock that only moves forward, with cached
//! renderings of the current second in syslog and Common Log Format.

use rampart_core::Timestamp;

use crate::rng::SplitMix64;

/// Month abbreviations as syslog and CLF write them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A monotonic log clock in milliseconds since the epoch.
#[derive(Clone, Debug)]
pub(crate) struct LogClock {
    /// The current instant, in milliseconds since the epoch.
    ms: i64,
    /// The second `syslog` and `clf` were rendered for.
    rendered_sec: i64,
    /// `Nov 20 00:00:01` (day padded with a space, as rsyslog's traditional format).
    syslog: String,
    /// `20/Nov/2026:00:00:01 +0000`.
    clf: String,
}

impl LogClock {
    /// A clock reading `start`.
    pub(crate) fn new(start: Timestamp) -> Self {
        let mut clock = Self {
            ms: start.as_micros().div_euclid(1000),
            rendered_sec: i64::MIN,
            syslog: String::with_capacity(16),
            clf: String::with_capacity(32),
        };
        clock.render();
        clock
    }

    /// Moves forward by a random step of 0 to `max_step_ms` milliseconds.
    pub(crate) fn advance(&mut self, rng: &mut SplitMix64, max_step_ms: u64) {
        // max_step_ms is a small constant; the cast cannot wrap.
        self.ms += rng.below(max_step_ms + 1) as i64;
        if self.ms.div_euclid(1000) != self.rendered_sec {
            self.render();
        }
    }

    /// The current instant in milliseconds since the epoch.
    pub(crate) fn millis(&self) -> i64 {
        self.ms
    }

    /// The current instant.
    pub(crate) fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.ms.saturating_mul(1000))
    }

    /// The current second in syslog form, e.g. `Nov 20 00:00:01`.
    pub(crate) fn syslog(&self) -> &str {
        &self.syslog
    }

    /// The current second in Common Log Format, e.g. `20/Nov/2026:00:00:01 +0000`.
    pub(crate) fn clf(&self) -> &str {
        &self.clf
    }

    /// Renders the current second in both formats.
    fn render(&mut self) {
        use std::fmt::Write as _;
        let sec = self.ms.div_euclid(1000);
        self.rendered_sec = sec;
        let c = Timestamp::from_secs(sec).to_civil();
        let month = MONTHS
            .get(usize::from(c.month.saturating_sub(1)))
            .copied()
            .unwrap_or("Jan");
        self.syslog.clear();
        self.clf.clear();
        // Writing to a String cannot fail.
        let _ = write!(
            self.syslog,
            "{month} {:>2} {:02}:{:02}:{:02}",
            c.day, c.hour, c.minute, c.second
        );
        let _ = write!(
            self.clf,
            "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
            c.day, c.year, c.hour, c.minute, c.second
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_syslog_and_clf_for_the_current_second() {
        let start = Timestamp::parse_rfc3339("2026-11-05T07:08:09Z").expect("valid");
        let clock = LogClock::new(start);
        assert_eq!(clock.syslog(), "Nov  5 07:08:09");
        assert_eq!(clock.clf(), "05/Nov/2026:07:08:09 +0000");
    }

    #[test]
    fn never_moves_backwards() {
        let start = Timestamp::parse_rfc3339("2026-12-31T23:59:59Z").expect("valid");
        let mut clock = LogClock::new(start);
        let mut rng = SplitMix64::new(3);
        let mut last = clock.millis();
        for _ in 0..10_000 {
            clock.advance(&mut rng, 520);
            assert!(clock.millis() >= last);
            last = clock.millis();
        }
        assert!(clock.clf().contains("/Jan/2027:"));
    }
}

//! A jail's detection policy and its validation.

use std::time::Duration;

use rampart_core::JailName;

use crate::table::MAX_ENTRIES;
use crate::{AllowList, DetectError};

/// How one jail decides: how many failures in how long earn a ban, for how long, and whom
/// never to ban. Build one (for instance with [`JailPolicy::new`] and then set fields) and
/// hand it to [`crate::JailDetector::new`], which validates it.
#[derive(Clone, Debug)]
pub struct JailPolicy {
    /// The jail this policy belongs to; it names the bans.
    pub jail: JailName,
    /// Failures that earn a ban (at least 1).
    pub max_failures: u32,
    /// The failures must lie within a span strictly shorter than this (at least 1 us).
    pub window: Duration,
    /// How long a first ban lasts (at least 1 us).
    pub ban_for: Duration,
    /// Longer bans for repeat offenders; `None` bans every time for `ban_for`.
    pub escalation: Option<Escalation>,
    /// Networks never counted or banned (loopback and unspecified addresses always are).
    pub allow: AllowList,
    /// IPv6 addresses are grouped into offenders by this prefix length (1 to 128).
    pub ipv6_prefix: u8,
    /// The most offenders tracked at once, in the window table and again in the ban-history
    /// table (1 to 2^30). When a table is full, its least recently used offender is forgotten.
    pub max_offenders: usize,
    /// How much older (in log time) than the newest failure of its offender a failure may be
    /// and still be counted exactly. Older failures are [`crate::Outcome::TooLate`].
    pub reorder_tolerance: Duration,
}

/// Repeat offenders get longer bans: `ban_for * factor^level`, capped at `max`.
#[derive(Clone, Debug, PartialEq)]
pub struct Escalation {
    /// Growth per remembered earlier ban (finite, at least 1.0).
    pub factor: f64,
    /// The longest ban (at least `ban_for`).
    pub max: Duration,
    /// An offender's earlier bans are forgotten when a new ban starts more than this after the
    /// last one ended.
    pub forget_after: Duration,
}

impl JailPolicy {
    /// Failures that earn a ban, unless configured (fail2ban's `maxretry`).
    pub const DEFAULT_MAX_FAILURES: u32 = 5;
    /// The window, unless configured (fail2ban's `findtime`).
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);
    /// The ban duration, unless configured (fail2ban's `bantime`).
    pub const DEFAULT_BAN_FOR: Duration = Duration::from_secs(600);
    /// IPv6 grouping, unless configured: one /64 is usually one host or one customer.
    pub const DEFAULT_IPV6_PREFIX: u8 = 64;
    /// Offenders tracked per table, unless configured (about 5.6 MB for a full window table).
    pub const DEFAULT_MAX_OFFENDERS: usize = 100_000;
    /// Reordering tolerated, unless configured: enough for lines from several processes
    /// interleaved by syslog.
    pub const DEFAULT_REORDER_TOLERANCE: Duration = Duration::from_secs(60);

    /// A policy for `jail` with the defaults: 5 failures within 10 minutes ban for 10 minutes,
    /// no escalation, nothing allowlisted beyond loopback, IPv6 grouped by /64, a million
    /// offenders per table, 5 seconds of reordering tolerated.
    pub fn new(jail: JailName) -> Self {
        Self {
            jail,
            max_failures: Self::DEFAULT_MAX_FAILURES,
            window: Self::DEFAULT_WINDOW,
            ban_for: Self::DEFAULT_BAN_FOR,
            escalation: None,
            allow: AllowList::default(),
            ipv6_prefix: Self::DEFAULT_IPV6_PREFIX,
            max_offenders: Self::DEFAULT_MAX_OFFENDERS,
            reorder_tolerance: Self::DEFAULT_REORDER_TOLERANCE,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), DetectError> {
        let bad = |field: &'static str, why: String| {
            Err(DetectError::InvalidPolicy {
                jail: self.jail.clone(),
                field,
                why,
            })
        };
        if self.max_failures == 0 {
            return bad("max_failures", "must be at least 1".into());
        }
        if micros(self.window) < 1 {
            return bad("window", "must be at least 1 microsecond".into());
        }
        if micros(self.ban_for) < 1 {
            return bad("ban_for", "must be at least 1 microsecond".into());
        }
        if let Some(e) = &self.escalation {
            if !e.factor.is_finite() || e.factor < 1.0 {
                return bad(
                    "escalation.factor",
                    format!("must be a finite number of at least 1.0, not {}", e.factor),
                );
            }
            if micros(e.max) < micros(self.ban_for) {
                return bad("escalation.max", "must be at least ban_for".into());
            }
        }
        if !(1..=128).contains(&self.ipv6_prefix) {
            return bad(
                "ipv6_prefix",
                format!("must be between 1 and 128, not {}", self.ipv6_prefix),
            );
        }
        if !(1..=MAX_ENTRIES).contains(&self.max_offenders) {
            return bad(
                "max_offenders",
                format!(
                    "must be between 1 and {MAX_ENTRIES}, not {}",
                    self.max_offenders
                ),
            );
        }
        Ok(())
    }
}

/// A duration in whole microseconds, saturating at `i64::MAX` (about 292,000 years).
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

//! Per-jail detection: failures in, bans out.
//!
//! A [`JailDetector`] is one jail's memory. It is fed [`Failure`](rampart_core::Failure)s (an
//! address and the log time of its line) and answers each with an [`Outcome`]. It is pure
//! and synchronous: it never reads a clock and does no I/O; "now" is always the log time of
//! the failure being recorded, so replaying a log gives the same bans as tailing it.
//!
//! # The rules
//!
//! For each failure, in this order:
//!
//! 1. **The allowlist always wins.** Loopback (`127.0.0.0/8`, `::1`), the unspecified
//!    addresses (`0.0.0.0`, `::`) and every address in the policy's `allow` list are never
//!    counted or banned: [`Outcome::Allowlisted`]. An IPv4-mapped IPv6 address
//!    (`::ffff:a.b.c.d`) is the IPv4 address it carries, here and everywhere. Because a ban
//!    covers an IPv6 offender's whole prefix, an IPv6 failure is also allowlisted when any
//!    address of its prefix is. Lookups are binary searches over merged ranges, so a list of
//!    thousands of networks costs a few comparisons.
//! 2. **Offenders.** Failures are grouped by
//!    [`Offender::from_addr`](rampart_core::Offender::from_addr): IPv4 by address, IPv6 by
//!    `ipv6_prefix` (default /64).
//! 3. **Banned offenders are not counted.** A failure earlier than the end of the offender's
//!    last ban is [`Outcome::WhileBanned`].
//! 4. **Logs may be a little out of order.** A failure at most `reorder_tolerance` older than
//!    the newest counted failure of its offender is counted exactly as if it had arrived in
//!    order; an older one is [`Outcome::TooLate`] and only shows in the statistics.
//! 5. **The window is exact.** The offender is banned at the failure that makes
//!    `max_failures` of its failures lie within a span strictly shorter than `window`
//!    (last - first < window), in log time. There is no rescaling and no bucketing: with a
//!    10-minute window, 5 failures within 9m59s ban, 5 failures spread over exactly 10m do
//!    not. Otherwise the failure is [`Outcome::Counted`], with the most failures (this one
//!    included) that lie within one such span: for logs in order, the failures within the
//!    window ending now.
//! 6. **A ban** ([`Outcome::Banned`]) starts at the log time of the failure that tipped it
//!    and ends `start + duration` later; it reports the `max_failures` failures that made
//!    it (count, first and last time). The offender's window is cleared and its history
//!    records one more ban and its end. Failures before the end are `WhileBanned`; after
//!    it, counting starts afresh.
//! 7. **Escalation.** A ban's `level` is the number of earlier bans of this offender in this
//!    jail that are still remembered. With escalation, history is forgotten (level 0 again)
//!    when a ban starts more than `forget_after` after the last one ended, and the duration
//!    is `min(ban_for * factor^level, max)`, never less than `ban_for` (overflow saturates
//!    to `max`). Without escalation every ban lasts `ban_for`, and `level` is still
//!    reported (history is then forgotten only by eviction).
//!
//! Durations are used at microsecond resolution. The statistics
//! ([`DetectorStats`]) satisfy `failures = counted + allowlisted + while_banned + too_late`.
//!
//! # Bounded memory
//!
//! Attackers choose the addresses, so both tables are bounded by `max_offenders`:
//!
//! - The **window table** holds offenders with counted failures and no ban since. When it is
//!   full, a new offender evicts the least recently seen one (the one whose latest failure,
//!   counted or too late, was recorded longest ago) and `stats.evictions` counts it; the
//!   evicted offender's partial count is lost. A failure that bans at once
//!   (`max_failures = 1`) never enters the table.
//! - The **ban-history table** holds ban counts and last ban ends (it also answers
//!   `WhileBanned`). When it is full, a new entry evicts the least recently used one (looked
//!   up by a failure, banned, or seeded) and `stats.history_evictions` counts it; that
//!   offender's escalation is forgotten, and if its ban was still running its failures are
//!   counted again (the firewall holds the ban regardless).
//!
//! Only the timestamps that can still matter are kept: those newer than
//! `newest - window - reorder_tolerance`. For logs in order that is at most
//! `max_failures - 1` timestamps per offender. An entry holds them in 8 bytes when it can
//! (one timestamp; or up to three whole-second timestamps less than 4.5 hours apart, what
//! syslog and CLF logs give), else in a pooled 16-byte record (up to three, exactly), else in
//! a pooled vector; pooled storage is reused.
//!
//! A tracked offender costs 24 bytes in the window table's slab (its key is a 64-bit keyed
//! hash of the offender, see `table`) plus 8 to 16 bytes of hash index (8.4 at one million
//! offenders), so a full table of 1,000,000 offenders takes about 32 MB (16 more bytes for
//! each offender whose times need a pooled record); a ban-history entry costs 32 bytes plus
//! the same index share. The
//! `memory_per_tracked_offender_is_measured` test checks these numbers.
//!
//! # Performance
//!
//! [`JailDetector::record`] hashes the offender once (SipHash with a random key, so the
//! tables cannot be flooded with chosen collisions), probes two open-addressing indexes,
//! and works on a reused scratch buffer: in the steady state it allocates nothing.

mod allow;
mod detector;
mod policy;
mod table;
mod times;
mod watch;

pub use allow::AllowList;
pub use detector::{DetectorStats, JailDetector, Outcome};
pub use policy::{Escalation, JailPolicy};
pub use watch::{
    BlockBan, BlockGroup, BlockOutcome, BlockPolicy, BlockStats, BlockWatcher, RecidiveBan,
    RecidivePolicy, RecidiveWatcher,
};

use rampart_core::JailName;

/// Errors from building a detector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    /// A policy field is out of range.
    #[error("jail {jail}: invalid {field}: {why}")]
    InvalidPolicy {
        /// The jail whose policy is invalid.
        jail: JailName,
        /// The field, as written in the configuration (`max_failures`, `escalation.factor`).
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

impl DetectError {
    /// The name of the invalid field.
    pub fn field(&self) -> &'static str {
        match self {
            Self::InvalidPolicy { field, .. } => field,
        }
    }
}

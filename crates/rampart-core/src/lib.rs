//! rampart's vocabulary and the seams between its crates.
//!
//! No I/O beyond reading the system clock, no regex, no async runtime: every other crate
//! depends on this one, so it stays small and cheap to compile.

mod addr;
mod decision;
mod duration;
mod enforce;
mod jail;
mod time;

pub use addr::Offender;
pub use decision::{Ban, Failure};
pub use duration::{format_duration, parse_duration};
pub use enforce::{Backend, BackendError, Entry, PortRange, Protocol, Scope};
pub use jail::JailName;
pub use time::{
    civil_from_days, days_from_civil, days_in_month, is_leap, Civil, Clock, SystemClock, Timestamp,
};

/// Errors from parsing rampart's scalar types.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    /// A duration such as `"10m"` that does not parse.
    #[error("invalid duration {text:?}: {why} (expected a number and a unit, e.g. \"90s\", \"10m\", \"1h30m\", \"7d\", \"2w\")")]
    InvalidDuration {
        /// The text as given.
        text: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A jail name outside `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`.
    #[error("invalid jail name {0:?}: use 1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit")]
    InvalidJailName(String),
    /// A timestamp that is not RFC 3339.
    #[error("invalid timestamp {0:?}: expected RFC 3339, e.g. 2026-11-21T01:02:03Z")]
    InvalidTimestamp(String),
}

use std::net::IpAddr;

use crate::{JailName, Offender, Timestamp};

/// One failure seen in a log: an address and the log time of the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The address the line names (already parsed; never text).
    pub addr: IpAddr,
    /// When the line says it happened.
    pub time: Timestamp,
}

/// A decision to ban an offender in a jail until a time.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Ban {
    /// The jail that decided.
    pub jail: JailName,
    /// Who is banned (an address, or an IPv6 prefix).
    pub offender: Offender,
    /// The address of the failure that tipped the count.
    pub addr: IpAddr,
    /// Failures counted in the window that led to this ban.
    pub failures: u32,
    /// Log time of the first counted failure.
    pub first_failure: Timestamp,
    /// Log time of the last counted failure.
    pub last_failure: Timestamp,
    /// When the ban starts: the log time of the failure that tipped it (with out-of-order
    /// logs, `last_failure` can be later).
    pub start: Timestamp,
    /// When the ban ends.
    pub end: Timestamp,
    /// 0 for a first ban, n for the n-th repeat within the escalation memory.
    pub level: u32,
}

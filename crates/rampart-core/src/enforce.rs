//! The enforcement seam: what the daemon asks of a firewall backend.
//!
//! Implementations live in `rampart-enforce` (nftables, ipset + iptables, log-only); the
//! daemon holds a `Box<dyn Backend>` and never knows which one it drives.

use std::fmt;

use ipnet::IpNet;

use crate::{JailName, Timestamp};

/// A transport protocol a port-scoped ban applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// An inclusive range of destination ports; a single port has `first == last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PortRange {
    /// First port of the range.
    pub first: u16,
    /// Last port of the range (inclusive, `>= first`).
    pub last: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// What a jail's bans drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The jail whose bans these are.
    pub jail: JailName,
    /// Protocols the ports apply to (ignored when `ports` is empty).
    pub protocols: Vec<Protocol>,
    /// Destination ports dropped for a banned offender; empty drops all traffic from it.
    pub ports: Vec<PortRange>,
    /// Prefix length IPv6 offenders are grouped by (IPv6 bans arrive as nets of this length).
    pub ipv6_prefix: u8,
}

/// One ban as the kernel should hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The jail the ban belongs to.
    pub jail: JailName,
    /// The banned address (/32, /128) or IPv6 prefix.
    pub net: IpNet,
    /// When the kernel should forget it.
    pub expires: Timestamp,
}

/// A backend operation that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend}: {op} failed: {message}")]
pub struct BackendError {
    /// The backend's name (`nftables`, `ipset`, `log-only`).
    pub backend: &'static str,
    /// The operation (`prepare`, `ban`, `unban`, `list`).
    pub op: &'static str,
    /// What went wrong, with the argv or netlink error it came from.
    pub message: String,
}

/// A firewall that holds bans with per-element timeouts.
///
/// Every call is one kernel transaction where the backend allows it, and is idempotent:
/// banning an entry that is present sets its expiry to the new value; unbanning an absent
/// entry is not an error.
pub trait Backend: Send + fmt::Debug {
    /// The backend's name for logs and status.
    fn name(&self) -> &'static str;
    /// Creates or updates rampart's own tables, sets and rules for these jails. Sets of
    /// jails that stay keep their elements; sets of jails no longer listed are removed.
    /// Never touches objects rampart did not create.
    fn prepare(&mut self, scopes: &[Scope]) -> Result<(), BackendError>;
    /// Adds (or refreshes) these bans in one transaction; the kernel timeout of each is
    /// `expires - now`. Entries already expired at `now` are skipped.
    fn ban(&mut self, entries: &[Entry], now: Timestamp) -> Result<(), BackendError>;
    /// Removes these bans in one transaction.
    fn unban(&mut self, entries: &[(JailName, IpNet)]) -> Result<(), BackendError>;
    /// The bans the kernel holds now, with `expires = now + remaining timeout`.
    fn list(&mut self, now: Timestamp) -> Result<Vec<Entry>, BackendError>;
}

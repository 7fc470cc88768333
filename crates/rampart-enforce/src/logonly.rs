//! The `--dry-run` backend: enforces nothing, remembers what it would enforce.

use std::collections::{BTreeSet, HashMap};

use ipnet::IpNet;
use rampart_core::{Backend, BackendError, Entry, JailName, Scope, Timestamp};

use crate::check_scopes;

const NAME: &str = "log-only";

/// Default number of bans a [`LogOnlyBackend`] remembers.
pub const LOG_ONLY_CAPACITY: usize = 1_000_000;

/// Holds bans in memory only, so `list` shows what a real backend would enforce.
///
/// Bounded: at most `capacity` bans are remembered. When a new ban arrives at capacity, the
/// entries that expired are purged first; if the map is still full, the new ban is not
/// remembered and counted in [`LogOnlyBackend::refused`] (bans already present are still
/// refreshed). Nothing is enforced either way, so the only loss is in what `list` shows.
#[derive(Debug)]
pub struct LogOnlyBackend {
    bans: HashMap<(JailName, IpNet), Timestamp>,
    capacity: usize,
    refused: u64,
    jails: BTreeSet<JailName>,
}

impl Default for LogOnlyBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl LogOnlyBackend {
    /// A backend remembering up to [`LOG_ONLY_CAPACITY`] bans.
    pub fn new() -> Self {
        Self::with_capacity(LOG_ONLY_CAPACITY)
    }

    /// A backend remembering up to `capacity` bans.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bans: HashMap::new(),
            capacity,
            refused: 0,
            jails: BTreeSet::new(),
        }
    }

    /// Bans not remembered because the map was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Jails of the last `prepare`.
    pub fn jails(&self) -> impl Iterator<Item = &JailName> {
        self.jails.iter()
    }
}

impl Backend for LogOnlyBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prepare(&mut self, scopes: &[Scope]) -> Result<(), BackendError> {
        check_scopes(scopes).map_err(|e| e.into_backend(NAME, "prepare"))?;
        self.jails = scopes.iter().map(|s| s.jail.clone()).collect();
        // Like the real backends: a jail that is gone takes its bans with it.
        self.bans.retain(|(j, _), _| self.jails.contains(j));
        Ok(())
    }

    fn ban(&mut self, entries: &[Entry], now: Timestamp) -> Result<(), BackendError> {
        for e in entries {
            if e.expires <= now {
                continue;
            }
            let key = (e.jail.clone(), e.net);
            if let Some(t) = self.bans.get_mut(&key) {
                *t = e.expires;
                continue;
            }
            if self.bans.len() >= self.capacity {
                self.bans.retain(|_, t| *t > now);
            }
            if self.bans.len() >= self.capacity {
                self.refused += 1;
                continue;
            }
            self.bans.insert(key, e.expires);
        }
        Ok(())
    }

    fn unban(&mut self, entries: &[(JailName, IpNet)]) -> Result<(), BackendError> {
        for (jail, net) in entries {
            self.bans.remove(&(jail.clone(), *net));
        }
        Ok(())
    }

    fn list(&mut self, now: Timestamp) -> Result<Vec<Entry>, BackendError> {
        self.bans.retain(|_, t| *t > now);
        let mut out: Vec<Entry> = self
            .bans
            .iter()
            .map(|((jail, net), expires)| Entry {
                jail: jail.clone(),
                net: *net,
                expires: *expires,
            })
            .collect();
        out.sort_by(|a, b| (&a.jail, a.net).cmp(&(&b.jail, b.net)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(jail: &str, net: &str, expires: i64) -> Entry {
        Entry {
            jail: JailName::new(jail).unwrap(),
            net: net.parse().unwrap(),
            expires: Timestamp::from_secs(expires),
        }
    }

    #[test]
    fn remembers_refreshes_expires_and_forgets_bans() {
        let mut b = LogOnlyBackend::new();
        let now = Timestamp::from_secs(100);
        b.ban(
            &[
                entry("sshd", "192.0.2.2/32", 200),
                entry("sshd", "2001:db8::/64", 150),
                entry("sshd", "192.0.2.3/32", 50),
            ],
            now,
        )
        .unwrap();
        assert_eq!(
            b.list(now).unwrap().len(),
            2,
            "the expired entry is skipped"
        );
        b.ban(&[entry("sshd", "192.0.2.2/32", 300)], now).unwrap();
        let l = b.list(now).unwrap();
        assert_eq!(l[0], entry("sshd", "192.0.2.2/32", 300));
        assert_eq!(b.list(Timestamp::from_secs(160)).unwrap().len(), 1);
        b.unban(&[(
            JailName::new("sshd").unwrap(),
            "192.0.2.2/32".parse().unwrap(),
        )])
        .unwrap();
        b.unban(&[(
            JailName::new("sshd").unwrap(),
            "192.0.2.9/32".parse().unwrap(),
        )])
        .unwrap();
        assert!(b.list(Timestamp::from_secs(160)).unwrap().is_empty());
    }

    #[test]
    fn full_map_purges_expired_then_refuses_new_bans() {
        let mut b = LogOnlyBackend::with_capacity(2);
        let now = Timestamp::from_secs(100);
        b.ban(
            &[
                entry("a", "192.0.2.1/32", 110),
                entry("a", "192.0.2.2/32", 500),
            ],
            now,
        )
        .unwrap();
        // At 120 the first has expired and makes room.
        b.ban(
            &[entry("a", "192.0.2.3/32", 500)],
            Timestamp::from_secs(120),
        )
        .unwrap();
        assert_eq!(b.refused(), 0);
        b.ban(
            &[entry("a", "192.0.2.4/32", 500)],
            Timestamp::from_secs(120),
        )
        .unwrap();
        assert_eq!(b.refused(), 1);
        // A present ban is still refreshed at capacity.
        b.ban(
            &[entry("a", "192.0.2.3/32", 900)],
            Timestamp::from_secs(120),
        )
        .unwrap();
        let l = b.list(Timestamp::from_secs(120)).unwrap();
        assert_eq!(l.len(), 2);
        assert!(l.contains(&entry("a", "192.0.2.3/32", 900)));
    }

    #[test]
    fn prepare_drops_bans_of_jails_that_are_gone() {
        let mut b = LogOnlyBackend::new();
        let now = Timestamp::from_secs(0);
        b.ban(
            &[
                entry("a", "192.0.2.1/32", 10),
                entry("b", "192.0.2.1/32", 10),
            ],
            now,
        )
        .unwrap();
        let scope = Scope {
            jail: JailName::new("a").unwrap(),
            protocols: vec![],
            ports: vec![],
            ipv6_prefix: 64,
        };
        b.prepare(&[scope]).unwrap();
        let l = b.list(now).unwrap();
        assert_eq!(l, vec![entry("a", "192.0.2.1/32", 10)]);
    }
}

//! The bans the kernel should hold, by jail and network: what `status`, `bans`, `unban`,
//! reload and the reconcile work from.
//!
//! With 100,000 active bans this map is one of the daemon's biggest structures, so entries
//! are compact: the jail is a 16-bit index into the jails seen (not an `Arc<str>`), the
//! network is its 16 address bytes, prefix length and family, and the end time is split into
//! 4-byte halves so nothing is padded. An entry takes 32 bytes plus hashbrown's control
//! byte, against 72 for `HashMap<(JailName, IpNet), Active>` with start and failures, which
//! `rampart bans` now reads from the state file (status reports the bytes as
//! `active_map_bytes`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rampart_core::{JailName, Timestamp};

/// A ban the kernel should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Active {
    pub(crate) end: Timestamp,
    pub(crate) level: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    bits: [u8; 16],
    prefix: u8,
    v6: bool,
    jail: u16,
}

/// `Active` in 4-byte pieces (alignment 4, no padding next to `Key`).
#[derive(Debug, Clone, Copy)]
struct Val {
    end: [u32; 2],
    level: u32,
}

fn split(t: Timestamp) -> [u32; 2] {
    let v = t.as_micros() as u64;
    [(v >> 32) as u32, v as u32]
}

fn join(h: [u32; 2]) -> Timestamp {
    Timestamp::from_micros(((u64::from(h[0]) << 32) | u64::from(h[1])) as i64)
}

impl From<Active> for Val {
    fn from(a: Active) -> Self {
        Val {
            end: split(a.end),
            level: a.level,
        }
    }
}

impl From<Val> for Active {
    fn from(v: Val) -> Self {
        Active {
            end: join(v.end),
            level: v.level,
        }
    }
}

fn net_key(net: IpNet, jail: u16) -> Key {
    match net {
        IpNet::V4(n) => {
            let mut bits = [0; 16];
            bits[..4].copy_from_slice(&n.addr().octets());
            Key {
                bits,
                prefix: n.prefix_len(),
                v6: false,
                jail,
            }
        }
        IpNet::V6(n) => Key {
            bits: n.addr().octets(),
            prefix: n.prefix_len(),
            v6: true,
            jail,
        },
    }
}

fn key_net(k: &Key) -> IpNet {
    // The prefix came from a valid network of the same family.
    if k.v6 {
        Ipv6Net::new(Ipv6Addr::from(k.bits), k.prefix)
            .map(IpNet::V6)
            .unwrap_or(IpNet::from(IpAddr::V6(Ipv6Addr::from(k.bits))))
    } else {
        let a = Ipv4Addr::new(k.bits[0], k.bits[1], k.bits[2], k.bits[3]);
        Ipv4Net::new(a, k.prefix)
            .map(IpNet::V4)
            .unwrap_or(IpNet::from(IpAddr::V4(a)))
    }
}

/// Active bans by (jail, network).
///
/// Bounded by what the engine inserts: bans it decided or restored, each removed when it
/// expires (the tick's sweep), is lifted or its jail goes; the jail list grows only with
/// jail names, which come from the config and manual bans of configured jails (at most
/// 65,536; a name beyond that is refused by `insert`).
#[derive(Debug, Default)]
pub(crate) struct ActiveBans {
    map: HashMap<Key, Val>,
    jails: Vec<JailName>,
}

impl ActiveBans {
    fn jail_index(&self, jail: &JailName) -> Option<u16> {
        self.jails.iter().position(|j| j == jail).map(|i| i as u16)
    }

    fn key(&self, jail: &JailName, net: IpNet) -> Option<Key> {
        self.jail_index(jail).map(|j| net_key(net, j))
    }

    /// Room for `n` more entries without rehashing.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.map.reserve(n);
    }

    /// Adds or replaces a ban; returns false (and changes nothing) only when 65,536 jail
    /// names are already known.
    pub(crate) fn insert(&mut self, jail: &JailName, net: IpNet, a: Active) -> bool {
        let j = match self.jail_index(jail) {
            Some(j) => j,
            None if self.jails.len() <= usize::from(u16::MAX) => {
                self.jails.push(jail.clone());
                (self.jails.len() - 1) as u16
            }
            None => return false,
        };
        self.map.insert(net_key(net, j), Val::from(a));
        true
    }

    /// The ban of `net` in `jail`, if active.
    pub(crate) fn get(&self, jail: &JailName, net: IpNet) -> Option<Active> {
        let k = self.key(jail, net)?;
        self.map.get(&k).map(|v| Active::from(*v))
    }

    /// Whether `net` is banned in `jail`.
    pub(crate) fn contains(&self, jail: &JailName, net: IpNet) -> bool {
        self.get(jail, net).is_some()
    }

    /// Removes the ban of `net` in `jail`.
    pub(crate) fn remove(&mut self, jail: &JailName, net: IpNet) -> Option<Active> {
        let k = self.key(jail, net)?;
        self.map.remove(&k).map(Active::from)
    }

    /// Keeps the bans `keep` says yes to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&JailName, IpNet, Active) -> bool) {
        let jails = &self.jails;
        self.map
            .retain(|k, v| keep(&jails[usize::from(k.jail)], key_net(k), Active::from(*v)));
    }

    /// Every ban, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&JailName, IpNet, Active)> + '_ {
        self.map.iter().map(|(k, v)| {
            (
                &self.jails[usize::from(k.jail)],
                key_net(k),
                Active::from(*v),
            )
        })
    }

    /// How many bans.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Heap bytes of the map: entries and hashbrown's control bytes (it keeps at most 7/8 of
    /// its buckets full), and the jail list.
    pub(crate) fn heap_bytes(&self) -> usize {
        let buckets = if self.map.capacity() == 0 {
            0
        } else {
            (self.map.capacity() * 8 / 7).next_power_of_two()
        };
        buckets * (size_of::<(Key, Val)>() + 1) + self.jails.capacity() * size_of::<JailName>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(end: i64, level: u32) -> Active {
        Active {
            end: Timestamp::from_micros(end),
            level,
        }
    }

    #[test]
    fn entries_are_compact() {
        assert_eq!(size_of::<(Key, Val)>(), 32);
    }

    #[test]
    fn round_trips_networks_times_and_flags_by_jail() {
        let mut m = ActiveBans::default();
        let sshd = JailName::new("sshd").unwrap();
        let web = JailName::new("web").unwrap();
        let nets: Vec<IpNet> = [
            "192.0.2.7/32",
            "198.51.100.0/24",
            "2001:db8::/64",
            "2001:db8::1/128",
            "0.0.0.0/0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let vals = [a(2, 0), a(i64::MAX, u32::MAX), a(-1_763_690_583_000_001, 9)];
        for (i, n) in nets.iter().enumerate() {
            assert!(m.insert(&sshd, *n, vals[i % 3]));
            assert!(m.insert(&web, *n, vals[(i + 1) % 3]));
        }
        assert_eq!(m.len(), 10);
        for (i, n) in nets.iter().enumerate() {
            assert_eq!(m.get(&sshd, *n), Some(vals[i % 3]), "{n}");
            assert!(m.contains(&web, *n));
        }
        // The same address bits with another family or prefix are other bans.
        assert!(!m.contains(&sshd, "192.0.2.7/31".parse().unwrap()));
        assert!(!m.contains(&sshd, "::/0".parse().unwrap()));
        assert!(!m.contains(&JailName::new("other").unwrap(), nets[0]));
        let mut seen: Vec<(String, IpNet)> = m.iter().map(|(j, n, _)| (j.to_string(), n)).collect();
        seen.sort();
        assert_eq!(seen.len(), 10);
        assert!(seen.contains(&("web".into(), nets[2])));

        assert_eq!(m.remove(&sshd, nets[0]).map(|a| a.end), Some(vals[0].end));
        assert!(m.remove(&sshd, nets[0]).is_none());
        m.retain(|j, _, a| j.as_str() == "web" && a.level != 9);
        assert!(m
            .iter()
            .all(|(j, _, a)| j.as_str() == "web" && a.level != 9));
        assert_eq!(m.len(), 3);
        assert!(m.heap_bytes() >= 3 * 32);
    }
}

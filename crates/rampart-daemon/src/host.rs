//! The host's own addresses, which rampart never bans (read from /proc, no process spawned).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The addresses configured on this host's interfaces (in the daemon's network namespace).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OwnAddrs(HashSet<IpAddr>);

impl OwnAddrs {
    /// Reads them now; a missing /proc file yields what the other one gave.
    pub fn read() -> Self {
        let v4 = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
        let v6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
        Self::parse(&v4, &v6)
    }

    /// Parses the two /proc files' text.
    pub fn parse(fib_trie: &str, if_inet6: &str) -> Self {
        let mut set = HashSet::new();
        let mut last: Option<Ipv4Addr> = None;
        for line in fib_trie.lines() {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix("|-- ") {
                last = rest.trim().parse().ok();
            } else if t.starts_with("/32 host LOCAL") {
                if let Some(a) = last {
                    set.insert(IpAddr::V4(a));
                }
            }
        }
        for line in if_inet6.lines() {
            let Some(hex) = line.split_whitespace().next() else {
                continue;
            };
            if hex.len() != 32 {
                continue;
            }
            if let Ok(n) = u128::from_str_radix(hex, 16) {
                set.insert(IpAddr::V6(Ipv6Addr::from(n)));
            }
        }
        Self(set)
    }

    /// Whether `addr` (or loopback, unspecified) is one of ours.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        addr.is_loopback() || addr.is_unspecified() || self.0.contains(&addr)
    }

    /// Whether `net` holds one of ours (or loopback): banning it would cut the host off.
    pub fn overlaps(&self, net: ipnet::IpNet) -> bool {
        let loopback: [ipnet::IpNet; 2] = [
            ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
                std::net::Ipv4Addr::new(127, 0, 0, 0),
                8,
            )),
            ipnet::IpNet::V6(ipnet::Ipv6Net::new_assert(
                std::net::Ipv6Addr::LOCALHOST,
                128,
            )),
        ];
        loopback.iter().any(|l| l.contains(&net) || net.contains(l))
            || self.0.iter().any(|a| net.contains(a))
    }

    /// How many addresses are known.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none are known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_v4_and_all_v6_addresses() {
        let fib = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 192.0.2.0/24 2 0 2\n        |-- 192.0.2.0\n           /24 link UNICAST\n        |-- 192.0.2.1\n           /32 host LOCAL\n        |-- 192.0.2.255\n           /32 link BROADCAST\n";
        let v6 = "20010db8000000000000000000000001 02 40 00 80 eth0\n00000000000000000000000000000001 01 80 10 80 lo\n";
        let own = OwnAddrs::parse(fib, v6);
        assert!(own.contains("192.0.2.1".parse().unwrap()));
        assert!(!own.contains("192.0.2.0".parse().unwrap()));
        assert!(!own.contains("192.0.2.255".parse().unwrap()));
        assert!(own.contains("2001:db8::1".parse().unwrap()));
        assert!(own.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!own.contains("2001:db8::2".parse().unwrap()));
        assert_eq!(own.len(), 3);
        assert!(own.overlaps("2001:db8::/64".parse().unwrap()));
        assert!(!own.overlaps("2001:db8:1::/64".parse().unwrap()));
        assert!(own.overlaps("127.0.0.2/32".parse().unwrap()));
        assert!(!own.overlaps("192.0.2.7/32".parse().unwrap()));
    }

    #[test]
    fn reads_this_hosts_addresses() {
        let own = OwnAddrs::read();
        assert!(own.contains("127.0.0.1".parse().unwrap()));
        assert!(!own.is_empty(), "no address found in /proc/net");
    }
}

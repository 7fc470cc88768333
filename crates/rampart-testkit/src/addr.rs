//! The addresses that appear in generated logs: benign users and attackers, disjoint, drawn
//! only from ranges reserved for documentation (RFC 5737, RFC 3849) and, unless
//! `doc_only`, the RFC 6598 shared address space 100.64.0.0/10.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::rng::SplitMix64;

/// The protected server's IPv4 address (never a client): 192.0.2.1.
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The protected server's IPv6 address (never a client): 2001:db8::1.
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// [`SERVER_V4`] as text.
pub const SERVER_V4_TEXT: &str = "192.0.2.1";
/// [`SERVER_V6`] as text.
pub const SERVER_V6_TEXT: &str = "2001:db8::1";

/// IPv4 attackers when the shared space may be used.
const ATTACKERS_V4_FULL: usize = 2850;
/// IPv6 attackers when the shared space may be used (5 % of all attackers).
const ATTACKERS_V6_FULL: usize = 150;
/// IPv6 attackers with `doc_only` (5 % of 535).
const ATTACKERS_V6_DOC: usize = 27;
/// Benign IPv6 clients.
const BENIGN_V6: usize = 48;

/// Benign and attacker addresses for one generated log, pre-formatted so that writing a
/// line never formats an address. Index 0 of each list is its most active member (the
/// generators draw indices from a Zipf distribution).
#[derive(Clone, Debug)]
pub struct AddressBook {
    /// Attackers, most active first.
    pub attackers: Vec<IpAddr>,
    /// `attackers` as text.
    pub attacker_text: Vec<String>,
    /// Benign clients and users, most active first.
    pub benign: Vec<IpAddr>,
    /// `benign` as text.
    pub benign_text: Vec<String>,
}

impl AddressBook {
    /// Builds the address book for a seed.
    ///
    /// Benign: 192.0.2.2-254 and 48 addresses in 2001:db8:b000::/36. Attackers: all of
    /// 198.51.100.1-254 and 203.0.113.1-254, plus (unless `doc_only`) random hosts of
    /// 100.64.0.0/10 up to 2,850 IPv4 attackers, and 5 % IPv6 attackers in
    /// 2001:db8:a000::/36, each in its own /64. With `doc_only` that is 508 + 27 attackers,
    /// otherwise 2,850 + 150.
    pub fn new(rng: &mut SplitMix64, doc_only: bool) -> Self {
        let mut attackers: Vec<IpAddr> = Vec::new();
        for net in [[198, 51, 100], [203, 0, 113]] {
            for host in 1..=254u8 {
                attackers.push(IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], host)));
            }
        }
        let v6_count = if doc_only {
            ATTACKERS_V6_DOC
        } else {
            let mut seen: HashSet<u32> = HashSet::new();
            while attackers.len() < ATTACKERS_V4_FULL {
                // 100.64.0.0/10: the top 10 bits are fixed, 22 host bits are random.
                let host = rng.below(1 << 22) as u32;
                let last = host & 0xff;
                if last == 0 || last == 255 || !seen.insert(host) {
                    continue;
                }
                attackers.push(IpAddr::V4(Ipv4Addr::from(
                    (100u32 << 24) | (64 << 16) | host,
                )));
            }
            ATTACKERS_V6_FULL
        };
        let mut nets: HashSet<(u16, u16)> = HashSet::new();
        while nets.len() < v6_count {
            let third = 0xa000 | (rng.below(0x1000) as u16);
            let fourth = rng.below(0x1_0000) as u16;
            if !nets.insert((third, fourth)) {
                continue;
            }
            attackers.push(IpAddr::V6(v6_host(rng, third, fourth)));
        }
        rng.shuffle(&mut attackers);

        let mut benign: Vec<IpAddr> = (2..=254u8)
            .map(|h| IpAddr::V4(Ipv4Addr::new(192, 0, 2, h)))
            .collect();
        let mut nets: HashSet<(u16, u16)> = HashSet::new();
        while nets.len() < BENIGN_V6 {
            let third = 0xb000 | (rng.below(0x1000) as u16);
            let fourth = rng.below(0x1_0000) as u16;
            if !nets.insert((third, fourth)) {
                continue;
            }
            benign.push(IpAddr::V6(v6_host(rng, third, fourth)));
        }
        rng.shuffle(&mut benign);

        let attacker_text = attackers.iter().map(ToString::to_string).collect();
        let benign_text = benign.iter().map(ToString::to_string).collect();
        Self {
            attackers,
            attacker_text,
            benign,
            benign_text,
        }
    }

    /// Number of IPv6 attackers.
    pub fn attackers_v6(&self) -> usize {
        self.attackers.iter().filter(|a| a.is_ipv6()).count()
    }
}

/// A host in 2001:db8:`third`:`fourth`::/64: half the time a small interface id (`::1a`),
/// otherwise a random 64-bit one, as SLAAC privacy addresses look.
fn v6_host(rng: &mut SplitMix64, third: u16, fourth: u16) -> Ipv6Addr {
    let iid = if rng.percent(50) {
        rng.range(1, 0xff)
    } else {
        rng.next_u64() | 1
    };
    let prefix = (0x2001u128 << 112)
        | (0x0db8u128 << 96)
        | (u128::from(third) << 80)
        | (u128::from(fourth) << 64);
    Ipv6Addr::from(prefix | u128::from(iid))
}

/// Whether `ip` lies in a range the generators may use: 192.0.2.0/24, 198.51.100.0/24,
/// 203.0.113.0/24, 2001:db8::/32 and, unless `doc_only`, 100.64.0.0/10.
pub fn is_allowed(ip: IpAddr, doc_only: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            matches!(
                (o[0], o[1], o[2]),
                (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
            ) || (!doc_only && o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            s[0] == 0x2001 && s[1] == 0x0db8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attackers_and_benign_never_overlap_and_stay_in_reserved_ranges() {
        for doc_only in [false, true] {
            let book = AddressBook::new(&mut SplitMix64::new(42), doc_only);
            let attackers: HashSet<IpAddr> = book.attackers.iter().copied().collect();
            assert_eq!(attackers.len(), book.attackers.len(), "duplicate attacker");
            assert!(book.benign.iter().all(|b| !attackers.contains(b)));
            assert!(book
                .attackers
                .iter()
                .chain(&book.benign)
                .all(|&ip| is_allowed(ip, doc_only)));
            assert!(!attackers.contains(&IpAddr::V4(SERVER_V4)));
            assert!(!book.benign.contains(&IpAddr::V4(SERVER_V4)));
            assert_eq!(SERVER_V4.to_string(), SERVER_V4_TEXT);
            assert_eq!(SERVER_V6.to_string(), SERVER_V6_TEXT);
            let total = book.attackers.len();
            let v6 = book.attackers_v6();
            assert!(
                v6 * 100 / total >= 4 && v6 * 100 / total <= 6,
                "{v6} of {total}"
            );
        }
        let full = AddressBook::new(&mut SplitMix64::new(42), false);
        assert_eq!(full.attackers.len(), 3000);
        let doc = AddressBook::new(&mut SplitMix64::new(42), true);
        assert_eq!(doc.attackers.len(), 535);
    }
}

//! Allowlists: sorted, merged address ranges, looked up by binary search.

use std::net::IpAddr;

use ipnet::IpNet;

/// `::ffff:0:0`, the first IPv4-mapped IPv6 address.
const MAPPED_BASE: u128 = 0xffff_0000_0000;
/// `::ffff:255.255.255.255`, the last IPv4-mapped IPv6 address.
const MAPPED_LAST: u128 = MAPPED_BASE | 0xffff_ffff;

/// Addresses that are never counted or banned.
///
/// Built from CIDR networks, kept as sorted, disjoint, merged ranges per family, so a lookup is
/// a binary search: O(log n) however many thousands of networks the list holds.
///
/// IPv4-mapped IPv6 is IPv4 here as everywhere in rampart: an address `::ffff:a.b.c.d` is
/// looked up as `a.b.c.d`, and a network written inside `::ffff:0:0/96` (such as
/// `::ffff:10.0.0.0/104`) allows the IPv4 addresses it maps (`10.0.0.0/8`). A network that
/// merely contains the mapped range (such as `::/0`) allows IPv6 addresses only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Disjoint, sorted, non-adjacent inclusive ranges of IPv4 addresses.
    v4: Vec<(u32, u32)>,
    /// Disjoint, sorted, non-adjacent inclusive ranges of IPv6 addresses.
    v6: Vec<(u128, u128)>,
    /// How many networks the list was built from.
    nets: usize,
}

/// An inclusive range of one address family.
enum Range {
    V4(u32, u32),
    V6(u128, u128),
}

/// The addresses of `net`, with a network inside the IPv4-mapped range turned into IPv4.
fn range_of(net: IpNet) -> Range {
    match net {
        IpNet::V4(n) => Range::V4(u32::from(n.network()), u32::from(n.broadcast())),
        IpNet::V6(n) => {
            let lo = u128::from(n.network());
            let hi = u128::from(n.broadcast());
            if lo >= MAPPED_BASE && hi <= MAPPED_LAST {
                // Both ends lie in ::ffff:0:0/96, so both fit in 32 bits after the subtraction.
                Range::V4((lo - MAPPED_BASE) as u32, (hi - MAPPED_BASE) as u32)
            } else {
                Range::V6(lo, hi)
            }
        }
    }
}

/// The numbers that make an address range: the two widths the allowlist stores.
trait Bound: Copy + Ord {
    /// `self + 1`, or `None` at the top of the address space.
    fn next(self) -> Option<Self>;
}

impl Bound for u32 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Bound for u128 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// Sorts ranges and merges the ones that overlap or touch.
fn merge<T: Bound>(ranges: &mut Vec<(T, T)>) {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges.iter() {
        match out.last_mut() {
            Some(last) if last.1.next().is_none_or(|after| lo <= after) => {
                last.1 = last.1.max(hi);
            }
            _ => out.push((lo, hi)),
        }
    }
    out.shrink_to_fit();
    *ranges = out;
}

/// Whether any of the sorted, disjoint `ranges` shares an address with `lo..=hi`.
fn overlaps<T: Bound>(ranges: &[(T, T)], lo: T, hi: T) -> bool {
    // The candidate is the last range starting at or before `hi`; ranges are disjoint and
    // sorted, so it also has the largest end among those.
    let n = ranges.partition_point(|r| r.0 <= hi);
    n > 0 && ranges[n - 1].1 >= lo
}

impl AllowList {
    /// An allowlist of the given networks (overlapping and adjacent networks are merged).
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut list = Self::default();
        for net in nets {
            list.nets += 1;
            match range_of(net) {
                Range::V4(lo, hi) => list.v4.push((lo, hi)),
                Range::V6(lo, hi) => list.v6.push((lo, hi)),
            }
        }
        merge(&mut list.v4);
        merge(&mut list.v6);
        list
    }

    /// The addresses the detector always allows: loopback (`127.0.0.0/8`, `::1`) and
    /// unspecified (`0.0.0.0`, `::`).
    pub(crate) fn builtin() -> Self {
        Self {
            v4: vec![(0, 0), (0x7f00_0000, 0x7fff_ffff)],
            v6: vec![(0, 1)],
            nets: 4,
        }
    }

    /// Whether `addr` is in the list (an IPv4-mapped address is looked up as IPv4).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr.to_canonical() {
            IpAddr::V4(a) => overlaps(&self.v4, u32::from(a), u32::from(a)),
            IpAddr::V6(a) => overlaps(&self.v6, u128::from(a), u128::from(a)),
        }
    }

    /// Whether any address of `net` is in the list.
    pub fn overlaps(&self, net: IpNet) -> bool {
        match range_of(net) {
            Range::V4(lo, hi) => overlaps(&self.v4, lo, hi),
            Range::V6(lo, hi) => overlaps(&self.v6, lo, hi),
        }
    }

    /// Whether the list was built from no networks at all.
    pub fn is_empty(&self) -> bool {
        self.nets == 0
    }

    /// How many networks the list was built from (before merging).
    pub fn len(&self) -> usize {
        self.nets
    }

    /// How many disjoint address ranges remain after merging (a measure of lookup cost).
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

impl FromIterator<IpNet> for AllowList {
    fn from_iter<I: IntoIterator<Item = IpNet>>(iter: I) -> Self {
        Self::new(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn finds_addresses_inside_networks_and_nothing_outside() {
        let list = AllowList::new([net("10.0.0.0/8"), net("192.0.2.7/32"), net("2001:db8::/32")]);
        assert_eq!(list.len(), 3);
        assert!(list.contains(ip("10.255.255.255")));
        assert!(list.contains(ip("192.0.2.7")));
        assert!(!list.contains(ip("192.0.2.8")));
        assert!(!list.contains(ip("11.0.0.0")));
        assert!(!list.contains(ip("9.255.255.255")));
        assert!(list.contains(ip("2001:db8:ffff::1")));
        assert!(!list.contains(ip("2001:db9::1")));
    }

    #[test]
    fn mapped_addresses_and_mapped_networks_are_ipv4() {
        let list = AllowList::new([net("198.51.100.0/24"), net("::ffff:10.0.0.0/104")]);
        assert!(list.contains(ip("::ffff:198.51.100.9")));
        assert!(list.contains(ip("10.1.2.3")));
        assert!(list.contains(ip("::ffff:10.1.2.3")));
        assert!(!list.contains(ip("11.1.2.3")));
        let v6_only = AllowList::new([net("::/0")]);
        assert!(v6_only.contains(ip("2001:db8::1")));
        assert!(!v6_only.contains(ip("203.0.113.1")));
    }

    #[test]
    fn overlapping_and_adjacent_networks_are_merged() {
        let list = AllowList::new([
            net("10.0.0.0/25"),
            net("10.0.0.128/25"),
            net("10.0.0.0/16"),
            net("255.255.255.255/32"),
            net("255.255.255.0/24"),
            net("ffff::/16"),
            net("ffff:ffff::/32"),
        ]);
        assert_eq!(list.len(), 7);
        assert_eq!(list.ranges(), 3);
        assert!(list.contains(ip("255.255.255.255")));
        assert!(list.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    }

    #[test]
    fn overlap_finds_any_shared_address() {
        let list = AllowList::new([net("2001:db8:0:1::5/128")]);
        assert!(list.overlaps(net("2001:db8:0:1::/64")));
        assert!(!list.overlaps(net("2001:db8:0:2::/64")));
        assert!(list.overlaps(net("2001:db8::/32")));
    }

    #[test]
    fn builtin_list_is_loopback_and_unspecified() {
        let list = AllowList::builtin();
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "::1",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert!(list.contains(ip(a)), "{a}");
        }
        for a in ["128.0.0.1", "0.0.0.1", "::2", "2001:db8::1"] {
            assert!(!list.contains(ip(a)), "{a}");
        }
    }

    #[test]
    fn lookups_agree_with_a_linear_scan_on_many_networks() {
        let mut nets = Vec::new();
        let mut x: u32 = 0x1234_5678;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = 8 + (x % 25) as u8;
            nets.push(IpNet::V4(
                ipnet::Ipv4Net::new(x.into(), len).unwrap().trunc(),
            ));
        }
        let list = AllowList::new(nets.clone());
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let a = IpAddr::V4(x.into());
            assert_eq!(list.contains(a), nets.iter().any(|n| n.contains(&a)), "{a}");
        }
    }
}

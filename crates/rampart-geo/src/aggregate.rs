//! Exact CIDR aggregation: ranges and prefixes in, the unique minimal CIDR cover out.
//!
//! The algorithm (research note §3.1): turn everything into inclusive integer intervals,
//! sort, merge intervals that overlap or touch, then split each merged interval into the
//! largest aligned blocks from its start. The result covers exactly the union of the input
//! and has the fewest prefixes any exact cover can have: an exact cover's prefixes are
//! aligned blocks inside the union, and the greedy split takes the largest such block at
//! every step, so no two of its output blocks could be replaced by one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::addr::{v4_bounds, v6_bounds, Addr};
use crate::GeoError;

/// Splits the inclusive range `[s, e]` into the fewest CIDR blocks, calling `emit(start,
/// prefix_len)` for each in ascending order (at most 62 blocks for IPv4, 254 for IPv6).
pub(crate) fn split<A: Addr>(mut s: A, e: A, mut emit: impl FnMut(A, u8)) {
    debug_assert!(s <= e);
    loop {
        // The largest k such that s is a multiple of 2^k and s + 2^k - 1 <= e.
        let mut k = s.tz().min(A::BITS);
        let room = e.minus(s);
        while k > 0 && A::low_mask(k) > room {
            k -= 1;
        }
        emit(s, (A::BITS - k) as u8);
        let last = s.plus(A::low_mask(k));
        if last >= e {
            return;
        }
        s = last.plus(one::<A>());
    }
}

/// The integer 1 of a family.
fn one<A: Addr>() -> A {
    A::low_mask(1)
}

/// Sorts `v` and merges intervals that overlap or touch, in place.
pub(crate) fn normalize<A: Addr>(v: &mut Vec<(A, A)>) {
    if v.windows(2)
        .all(|w| w[0].1 < w[1].0 && w[0].1.inc() != Some(w[1].0))
    {
        return; // already sorted, disjoint and not touching
    }
    v.sort_unstable();
    let mut out = 0;
    for i in 0..v.len() {
        let (s, e) = v[i];
        if out > 0 {
            let last = &mut v[out - 1];
            if last.1 == A::MAX || s <= last.1.plus(one::<A>()) {
                if e > last.1 {
                    last.1 = e;
                }
                continue;
            }
        }
        v[out] = (s, e);
        out += 1;
    }
    v.truncate(out);
}

/// Appends `(s, e)` to a sorted disjoint list, merging it into the last interval when it
/// overlaps or touches. `s` must not be below the last interval's start.
pub(crate) fn push_merge<A: Addr>(v: &mut Vec<(A, A)>, s: A, e: A) {
    if let Some(last) = v.last_mut() {
        debug_assert!(s >= last.0);
        if last.1 == A::MAX || s <= last.1.plus(one::<A>()) {
            if e > last.1 {
                last.1 = e;
            }
            return;
        }
    }
    v.push((s, e));
}

/// `a ∪ b` of two normalized lists.
pub(crate) fn union<A: Addr>(a: &[(A, A)], b: &[(A, A)]) -> Vec<(A, A)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let take_a = j >= b.len() || (i < a.len() && a[i].0 <= b[j].0);
        let (s, e) = if take_a { a[i] } else { b[j] };
        if take_a {
            i += 1;
        } else {
            j += 1;
        }
        push_merge(&mut out, s, e);
    }
    out
}

/// `a \ b` of two normalized lists.
pub(crate) fn difference<A: Addr>(a: &[(A, A)], b: &[(A, A)]) -> Vec<(A, A)> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &(s0, e) in a {
        let mut s = s0;
        // Skip the holes that end before this interval.
        while j < b.len() && b[j].1 < s {
            j += 1;
        }
        let mut k = j;
        let mut alive = true;
        while k < b.len() && b[k].0 <= e {
            let (hs, he) = b[k];
            if hs > s {
                out.push((s, hs.dec()));
            }
            match he.inc() {
                Some(n) if he < e => s = n,
                _ => {
                    alive = false;
                    break;
                }
            }
            k += 1;
        }
        if alive {
            out.push((s, e));
        }
    }
    out
}

/// `a ∩ b` of two normalized lists.
pub(crate) fn intersection<A: Addr>(a: &[(A, A)], b: &[(A, A)]) -> Vec<(A, A)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if s <= e {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Whether `x` lies in a normalized list.
pub(crate) fn contains<A: Addr>(v: &[(A, A)], x: A) -> bool {
    let i = v.partition_point(|&(s, _)| s <= x);
    i > 0 && v[i - 1].1 >= x
}

/// A set of addresses (both families) as sorted, disjoint, non-touching intervals: the
/// working form for set algebra before [`RangeSet::to_cidrs`] turns it into the minimal
/// CIDR list for a kernel set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    pub(crate) v4: Vec<(u32, u32)>,
    pub(crate) v6: Vec<(u128, u128)>,
}

impl RangeSet {
    /// The empty set.
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// The set of all addresses in the given networks.
    pub fn from_nets<I: IntoIterator<Item = IpNet>>(nets: I) -> RangeSet {
        let mut s = RangeSet::new();
        for n in nets {
            match n {
                IpNet::V4(n) => s.v4.push(v4_bounds(&n)),
                IpNet::V6(n) => s.v6.push(v6_bounds(&n)),
            }
        }
        s.normalize();
        s
    }

    /// The set of all addresses in the given inclusive ranges. Fails on a range whose ends
    /// are of different families or whose start is after its end.
    pub fn from_ranges<I: IntoIterator<Item = (IpAddr, IpAddr)>>(
        ranges: I,
    ) -> Result<RangeSet, GeoError> {
        let mut s = RangeSet::new();
        for (a, b) in ranges {
            match (a, b) {
                (IpAddr::V4(x), IpAddr::V4(y)) if x <= y => s.v4.push((x.into(), y.into())),
                (IpAddr::V6(x), IpAddr::V6(y)) if x <= y => s.v6.push((x.into(), y.into())),
                _ => {
                    return Err(GeoError::Invalid(format!(
                        "{a}-{b} is not a range (start after end, or mixed families)"
                    )))
                }
            }
        }
        s.normalize();
        Ok(s)
    }

    fn normalize(&mut self) {
        normalize(&mut self.v4);
        normalize(&mut self.v6);
    }

    /// Whether the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether the set holds `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => contains(&self.v4, u32::from(a)),
            IpAddr::V6(a) => contains(&self.v6, u128::from(a)),
        }
    }

    /// The addresses in either set.
    pub fn union(&self, other: &RangeSet) -> RangeSet {
        RangeSet {
            v4: union(&self.v4, &other.v4),
            v6: union(&self.v6, &other.v6),
        }
    }

    /// The addresses in `self` but not in `other`.
    pub fn difference(&self, other: &RangeSet) -> RangeSet {
        RangeSet {
            v4: difference(&self.v4, &other.v4),
            v6: difference(&self.v6, &other.v6),
        }
    }

    /// The addresses in both sets.
    pub fn intersection(&self, other: &RangeSet) -> RangeSet {
        RangeSet {
            v4: intersection(&self.v4, &other.v4),
            v6: intersection(&self.v6, &other.v6),
        }
    }

    /// The IPv4 intervals, ascending.
    pub fn ranges_v4(&self) -> impl Iterator<Item = (Ipv4Addr, Ipv4Addr)> + '_ {
        self.v4.iter().map(|&(s, e)| (s.into(), e.into()))
    }

    /// The IPv6 intervals, ascending.
    pub fn ranges_v6(&self) -> impl Iterator<Item = (Ipv6Addr, Ipv6Addr)> + '_ {
        self.v6.iter().map(|&(s, e)| (s.into(), e.into()))
    }

    /// How many IPv4 addresses the set holds.
    pub fn count_v4(&self) -> u64 {
        self.v4.iter().map(|&(s, e)| u64::from(e - s) + 1).sum()
    }

    /// The unique minimal exact CIDR cover of the set.
    pub fn to_cidrs(&self) -> CidrSet {
        let mut out = CidrSet::default();
        for &(s, e) in &self.v4 {
            split(s, e, |a, len| {
                out.v4.push(Ipv4Net::new_assert(Ipv4Addr::from(a), len))
            });
        }
        for &(s, e) in &self.v6 {
            split(s, e, |a, len| {
                out.v6.push(Ipv6Net::new_assert(Ipv6Addr::from(a), len))
            });
        }
        out
    }
}

/// A minimal aggregated CIDR list per family, ascending and non-overlapping: what goes into
/// a kernel interval set (`nft` `flags interval`) or an ipset `hash:net`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrSet {
    /// The IPv4 prefixes.
    pub v4: Vec<Ipv4Net>,
    /// The IPv6 prefixes.
    pub v6: Vec<Ipv6Net>,
}

impl CidrSet {
    /// The number of prefixes (both families).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether there is no prefix at all.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Both families as one list, IPv4 first.
    pub fn nets(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.v4
            .iter()
            .copied()
            .map(IpNet::V4)
            .chain(self.v6.iter().copied().map(IpNet::V6))
    }
}

/// Splits an inclusive address range into the fewest CIDR blocks (the canonical split; a
/// delegated block of 768 addresses at 185.30.232.0 becomes a /23 and a /24).
pub fn range_to_cidrs(start: IpAddr, end: IpAddr) -> Result<Vec<IpNet>, GeoError> {
    let mut out = Vec::new();
    match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) if s <= e => {
            split(u32::from(s), u32::from(e), |a, l| out.push(a.net(l)))
        }
        (IpAddr::V6(s), IpAddr::V6(e)) if s <= e => {
            split(u128::from(s), u128::from(e), |a, l| out.push(a.net(l)))
        }
        _ => {
            return Err(GeoError::Invalid(format!(
                "{start}-{end} is not a range (start after end, or mixed families)"
            )))
        }
    }
    Ok(out)
}

/// The unique minimal exact CIDR cover of a set of prefixes (overlapping, duplicate,
/// adjacent and unsorted input is fine).
pub fn aggregate<I: IntoIterator<Item = IpNet>>(nets: I) -> CidrSet {
    RangeSet::from_nets(nets).to_cidrs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|x| x.parse().unwrap()).collect()
    }

    fn strs(c: &CidrSet) -> Vec<String> {
        c.nets().map(|n| n.to_string()).collect()
    }

    #[test]
    fn splits_a_non_cidr_count_into_aligned_blocks() {
        // ripencc|NL|ipv4|185.30.232.0|768 style: 768 = 512 + 256.
        let got = range_to_cidrs(
            "185.30.232.0".parse().unwrap(),
            "185.30.234.255".parse().unwrap(),
        )
        .unwrap();
        let got: Vec<String> = got.iter().map(|n| n.to_string()).collect();
        assert_eq!(got, ["185.30.232.0/23", "185.30.234.0/24"]);
        // Misaligned power of two: 64 addresses starting at .32 -> /27 + /27.
        let got =
            range_to_cidrs("192.0.2.32".parse().unwrap(), "192.0.2.95".parse().unwrap()).unwrap();
        let got: Vec<String> = got.iter().map(|n| n.to_string()).collect();
        assert_eq!(got, ["192.0.2.32/27", "192.0.2.64/27"]);
    }

    #[test]
    fn whole_spaces_and_edges_split_without_overflow() {
        let all4 = range_to_cidrs(
            "0.0.0.0".parse().unwrap(),
            "255.255.255.255".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(all4, nets(&["0.0.0.0/0"]));
        let all6 = range_to_cidrs(
            "::".parse().unwrap(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(all6, nets(&["::/0"]));
        let top = range_to_cidrs(
            "255.255.255.254".parse().unwrap(),
            "255.255.255.255".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(top, nets(&["255.255.255.254/31"]));
        let worst = range_to_cidrs(
            "0.0.0.1".parse().unwrap(),
            "255.255.255.254".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(worst.len(), 62);
        assert!(
            range_to_cidrs("192.0.2.9".parse().unwrap(), "192.0.2.1".parse().unwrap()).is_err()
        );
        assert!(
            range_to_cidrs("192.0.2.1".parse().unwrap(), "2001:db8::".parse().unwrap()).is_err()
        );
    }

    #[test]
    fn aggregates_adjacent_overlapping_and_duplicate_prefixes() {
        let got = aggregate(nets(&[
            "198.51.100.0/25",
            "198.51.100.128/25",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "203.0.113.5/32",
            "2001:db8::/33",
            "2001:db8:8000::/33",
            "192.0.2.0/31",
        ]));
        assert_eq!(
            strs(&got),
            [
                "192.0.2.0/31",
                "198.51.100.0/24",
                "203.0.113.0/24",
                "2001:db8::/32"
            ]
        );
    }

    #[test]
    fn set_algebra_difference_union_intersection() {
        let a = RangeSet::from_nets(nets(&["198.51.100.0/24", "2001:db8::/32"]));
        let b = RangeSet::from_nets(nets(&["198.51.100.64/26", "2001:db8::/48"]));
        let d = a.difference(&b);
        assert_eq!(
            strs(&d.to_cidrs()),
            [
                "198.51.100.0/26",
                "198.51.100.128/25",
                "2001:db8:1::/48",
                "2001:db8:2::/47",
                "2001:db8:4::/46",
                "2001:db8:8::/45",
                "2001:db8:10::/44",
                "2001:db8:20::/43",
                "2001:db8:40::/42",
                "2001:db8:80::/41",
                "2001:db8:100::/40",
                "2001:db8:200::/39",
                "2001:db8:400::/38",
                "2001:db8:800::/37",
                "2001:db8:1000::/36",
                "2001:db8:2000::/35",
                "2001:db8:4000::/34",
                "2001:db8:8000::/33",
            ]
        );
        assert_eq!(d.union(&b), a);
        assert_eq!(a.intersection(&b), b);
        assert!(a.contains("198.51.100.200".parse().unwrap()));
        assert!(!d.contains("198.51.100.70".parse().unwrap()));
        assert_eq!(a.count_v4(), 256);
        let full = RangeSet::from_nets(nets(&["0.0.0.0/0"]));
        let top = RangeSet::from_nets(nets(&["255.255.255.255/32", "0.0.0.0/32"]));
        assert_eq!(
            strs(&full.difference(&top).to_cidrs()).len(),
            62,
            "everything but the first and last address"
        );
    }
}

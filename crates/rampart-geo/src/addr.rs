//! Addresses as plain integers (`u32` for IPv4, `u128` for IPv6), so the range code is
//! written once for both families.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// An address family's integer form.
pub(crate) trait Addr:
    Copy + Ord + Eq + Hash + Debug + Default + Send + Sync + 'static
{
    /// Address width in bits.
    const BITS: u32;
    /// The last address.
    const MAX: Self;
    /// Trailing zero bits (`BITS` for zero).
    fn tz(self) -> u32;
    /// `2^k - 1` for `k <= BITS`.
    fn low_mask(k: u32) -> Self;
    /// `self + 1`, `None` past the last address.
    fn inc(self) -> Option<Self>;
    /// `self - 1`; callers never call it on zero.
    fn dec(self) -> Self;
    /// `self - other` (callers guarantee `self >= other`).
    fn minus(self, other: Self) -> Self;
    /// `self + other` (callers guarantee no overflow).
    fn plus(self, other: Self) -> Self;
    /// The top 16 bits, for the bucket index of a lookup table.
    fn top16(self) -> usize;
    /// The address.
    fn ip(self) -> IpAddr;
    /// The network `self/len` (`self` is aligned).
    fn net(self, len: u8) -> IpNet;
}

impl Addr for u32 {
    const BITS: u32 = 32;
    const MAX: Self = u32::MAX;
    fn tz(self) -> u32 {
        self.trailing_zeros()
    }
    fn low_mask(k: u32) -> Self {
        if k >= 32 {
            u32::MAX
        } else {
            (1u32 << k) - 1
        }
    }
    fn inc(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn dec(self) -> Self {
        self.wrapping_sub(1)
    }
    fn minus(self, other: Self) -> Self {
        self.wrapping_sub(other)
    }
    fn plus(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn top16(self) -> usize {
        (self >> 16) as usize
    }
    fn ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    fn net(self, len: u8) -> IpNet {
        IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(self), len))
    }
}

impl Addr for u128 {
    const BITS: u32 = 128;
    const MAX: Self = u128::MAX;
    fn tz(self) -> u32 {
        self.trailing_zeros()
    }
    fn low_mask(k: u32) -> Self {
        if k >= 128 {
            u128::MAX
        } else {
            (1u128 << k) - 1
        }
    }
    fn inc(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn dec(self) -> Self {
        self.wrapping_sub(1)
    }
    fn minus(self, other: Self) -> Self {
        self.wrapping_sub(other)
    }
    fn plus(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn top16(self) -> usize {
        (self >> 112) as usize
    }
    fn ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
    fn net(self, len: u8) -> IpNet {
        IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(self), len))
    }
}

/// The first and last address of an IPv4 network.
pub(crate) fn v4_bounds(n: &Ipv4Net) -> (u32, u32) {
    (u32::from(n.network()), u32::from(n.broadcast()))
}

/// The first and last address of an IPv6 network.
pub(crate) fn v6_bounds(n: &Ipv6Net) -> (u128, u128) {
    (u128::from(n.network()), u128::from(n.broadcast()))
}

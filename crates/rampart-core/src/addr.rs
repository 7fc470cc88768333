use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Who gets counted and banned: an IPv4 address, or an IPv6 address grouped by prefix
/// (default /64, because one IPv6 host usually owns a whole /64 and can hop inside it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Offender(IpNet);

impl Offender {
    /// The offender an address belongs to. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are
    /// treated as the IPv4 address they carry; IPv6 is truncated to `ipv6_prefix` bits
    /// (clamped to 1..=128).
    pub fn from_addr(addr: IpAddr, ipv6_prefix: u8) -> Self {
        match addr.to_canonical() {
            IpAddr::V4(a) => Self(IpNet::V4(Ipv4Net::from(a))),
            IpAddr::V6(a) => {
                let len = ipv6_prefix.clamp(1, 128);
                let masked = u128::from(a) & (u128::MAX << (128 - u32::from(len)));
                let net = Ipv6Net::new(Ipv6Addr::from(masked), len).unwrap_or(Ipv6Net::from(a));
                Self(IpNet::V6(net))
            }
        }
    }

    /// The network this offender covers (a /32 for IPv4).
    pub fn net(&self) -> IpNet {
        self.0
    }

    /// Whether this offender covers `addr`.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.contains(&addr.to_canonical())
    }

    /// An IPv4 offender's address, for compact display.
    pub fn single_v4(&self) -> Option<Ipv4Addr> {
        match self.0 {
            IpNet::V4(n) if n.prefix_len() == 32 => Some(n.addr()),
            _ => None,
        }
    }
}

/// A single address prints as the address; a group prints as CIDR (`2001:db8:1::/64`).
impl fmt::Display for Offender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpNet::V4(n) if n.prefix_len() == 32 => write!(f, "{}", n.addr()),
            IpNet::V6(n) if n.prefix_len() == 128 => write!(f, "{}", n.addr()),
            net => write!(f, "{net}"),
        }
    }
}

impl fmt::Debug for Offender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Offender({self})")
    }
}

impl serde::Serialize for Offender {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_addresses_in_one_prefix_are_one_offender() {
        let a = Offender::from_addr(ip("2001:db8:1:2::1"), 64);
        let b = Offender::from_addr(ip("2001:db8:1:2:ffff::9"), 64);
        let c = Offender::from_addr(ip("2001:db8:1:3::1"), 64);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert!(a.contains(ip("2001:db8:1:2::77")));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4_offenders() {
        let mapped = Offender::from_addr(ip("::ffff:198.51.100.7"), 64);
        assert_eq!(mapped, Offender::from_addr(ip("198.51.100.7"), 64));
        assert_eq!(mapped.to_string(), "198.51.100.7");
        assert_eq!(mapped.single_v4(), Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn prefix_128_keeps_single_ipv6_addresses() {
        let a = Offender::from_addr(ip("2001:db8::5"), 128);
        assert_eq!(a.to_string(), "2001:db8::5");
    }
}

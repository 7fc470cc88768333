//! How addresses and networks are laid out in SQLite.
//!
//! A network is three columns: `family` (4 or 6), `net` (the network address as a 4- or
//! 16-byte big-endian blob) and `prefix`. SQLite compares blobs with `memcmp`, so within a
//! family the blobs sort in address order, and `(family, net, prefix)` is a total order on
//! networks. An address is a blob alone: its length says its family.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A network split into its column values, without allocating.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NetKey {
    /// 4 or 6.
    pub family: i64,
    bytes: [u8; 16],
    len: usize,
    /// Prefix length in bits.
    pub prefix: i64,
}

impl NetKey {
    /// The column values of `net`, with host bits cleared (`192.0.2.5/24` is stored as
    /// `192.0.2.0/24`), so one network has exactly one key.
    pub fn of(net: &IpNet) -> Self {
        let mut bytes = [0u8; 16];
        match net.trunc() {
            IpNet::V4(n) => {
                bytes[..4].copy_from_slice(&n.network().octets());
                Self {
                    family: 4,
                    bytes,
                    len: 4,
                    prefix: i64::from(n.prefix_len()),
                }
            }
            IpNet::V6(n) => {
                bytes = n.network().octets();
                Self {
                    family: 6,
                    bytes,
                    len: 16,
                    prefix: i64::from(n.prefix_len()),
                }
            }
        }
    }

    /// The network address as stored.
    pub fn blob(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Rebuilds a network from its columns; `None` when they do not describe one.
pub(crate) fn net_from(family: i64, blob: &[u8], prefix: i64) -> Option<IpNet> {
    let prefix = u8::try_from(prefix).ok()?;
    match (family, blob.len()) {
        (4, 4) => {
            let octets: [u8; 4] = blob.try_into().ok()?;
            Ipv4Net::new(Ipv4Addr::from(octets), prefix)
                .ok()
                .map(IpNet::V4)
        }
        (6, 16) => {
            let octets: [u8; 16] = blob.try_into().ok()?;
            Ipv6Net::new(Ipv6Addr::from(octets), prefix)
                .ok()
                .map(IpNet::V6)
        }
        _ => None,
    }
}

/// An address as a blob: 4 bytes for IPv4, 16 for IPv6 (an IPv4-mapped IPv6 address stays
/// IPv6, exactly as given).
pub(crate) struct AddrBlob {
    bytes: [u8; 16],
    len: usize,
}

impl AddrBlob {
    /// The blob of `addr`.
    pub fn of(addr: IpAddr) -> Self {
        let mut bytes = [0u8; 16];
        match addr {
            IpAddr::V4(a) => {
                bytes[..4].copy_from_slice(&a.octets());
                Self { bytes, len: 4 }
            }
            IpAddr::V6(a) => Self {
                bytes: a.octets(),
                len: 16,
            },
        }
    }

    /// The stored bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Rebuilds an address from its blob; `None` for a length other than 4 or 16.
pub(crate) fn addr_from(blob: &[u8]) -> Option<IpAddr> {
    if let Ok(octets) = <[u8; 4]>::try_from(blob) {
        Some(IpAddr::V4(Ipv4Addr::from(octets)))
    } else if let Ok(octets) = <[u8; 16]>::try_from(blob) {
        Some(IpAddr::V6(Ipv6Addr::from(octets)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn networks_round_trip_through_their_columns() {
        for s in [
            "192.0.2.7/32",
            "198.51.100.0/24",
            "0.0.0.0/0",
            "2001:db8:1:2::/64",
            "2001:db8::5/128",
            "::/0",
        ] {
            let k = NetKey::of(&net(s));
            assert_eq!(net_from(k.family, k.blob(), k.prefix), Some(net(s)), "{s}");
        }
    }

    #[test]
    fn host_bits_are_cleared_so_one_network_has_one_key() {
        let a = NetKey::of(&net("192.0.2.77/24"));
        let b = NetKey::of(&net("192.0.2.0/24"));
        assert_eq!(a.blob(), b.blob());
        assert_eq!(
            net_from(a.family, a.blob(), a.prefix),
            Some(net("192.0.2.0/24"))
        );
    }

    #[test]
    fn blobs_sort_in_address_order_within_a_family() {
        let lo = NetKey::of(&net("192.0.2.9/32"));
        let hi = NetKey::of(&net("192.0.2.10/32"));
        assert!(lo.blob() < hi.blob(), "memcmp order must be numeric order");
        let lo6 = NetKey::of(&net("2001:db8::9/128"));
        let hi6 = NetKey::of(&net("2001:db8::a/128"));
        assert!(lo6.blob() < hi6.blob());
    }

    #[test]
    fn malformed_columns_are_rejected() {
        assert_eq!(net_from(4, &[1, 2, 3], 24), None);
        assert_eq!(net_from(6, &[0; 4], 24), None);
        assert_eq!(net_from(4, &[192, 0, 2, 0], 33), None);
        assert_eq!(net_from(5, &[0; 4], 8), None);
        assert_eq!(addr_from(&[1, 2, 3]), None);
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(addr_from(AddrBlob::of(mapped).as_slice()), Some(mapped));
    }
}

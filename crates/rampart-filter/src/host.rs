//! `<HOST>`: where the offending address sits in a pattern, and how its text becomes an
//! [`IpAddr`].

use std::net::IpAddr;

/// The placeholder a pattern uses for the offending address.
pub const HOST_TAG: &str = "<HOST>";

/// What `<HOST>` expands to: an optional `[`, a capture of the characters addresses are made
/// of (`[0-9A-Fa-f:.]+`: dotted IPv4, IPv6, `::ffff:a.b.c.d`), an optional `]`. One greedy
/// class keeps the pattern deterministic, so captures come from a one-pass DFA; the capture
/// is only a candidate, and [`parse_host`] decides whether it is an address. Being greedy,
/// it takes a trailing `.` or `:` too: write `<HOST>\.` or `<HOST>:\d+` when the log puts
/// one there (the engine then gives the characters back), never `<HOST>\.?`.
pub const HOST_REGEX: &str = r"\[?(?P<host>[0-9A-Fa-f:.]+)\]?";

/// Parses captured host text into an address. IPv4-mapped IPv6 becomes IPv4. Returns `None`
/// for text that is not an address (for example `300.1.2.3` or `1:2`): such a line is not a
/// failure.
pub fn parse_host(text: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(text).ok()?;
    match s.parse::<IpAddr>() {
        Ok(addr) => Some(addr.to_canonical()),
        // `a.b.c.d:port`: the greedy class took the port of an IPv4 address (Apache's
        // `[client 192.0.2.1:51380]`, Asterisk's `'192.0.2.1:5060'`). IPv6 with a port is
        // always bracketed, so the brackets already ended the capture.
        Err(_) => {
            let (addr, port) = s.rsplit_once(':')?;
            if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_ipv6_and_mapped_addresses() {
        assert_eq!(parse_host(b"198.51.100.7"), "198.51.100.7".parse().ok());
        assert_eq!(parse_host(b"2001:db8::7"), "2001:db8::7".parse().ok());
        assert_eq!(
            parse_host(b"::ffff:203.0.113.9"),
            "203.0.113.9".parse().ok()
        );
    }

    #[test]
    fn drops_the_port_of_an_ipv4_address() {
        assert_eq!(parse_host(b"192.0.2.1:51380"), "192.0.2.1".parse().ok());
        assert_eq!(parse_host(b"::ffff:192.0.2.1:80"), None);
        assert_eq!(parse_host(b"192.0.2.1:"), None);
        assert_eq!(parse_host(b"192.0.2.1:123456"), None);
        assert_eq!(parse_host(b"2001:db8::1:80"), "2001:db8::1:80".parse().ok());
    }

    #[test]
    fn rejects_address_shaped_garbage() {
        for bad in [
            &b"300.1.2.3"[..],
            b"1:2",
            b"192.030.0.6",
            b":::",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
    }
}

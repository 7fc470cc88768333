//! `<HOST>`: where the offending address sits in a pattern, and how its text becomes an
//! [`IpAddr`].

use std::net::IpAddr;

/// The placeholder a pattern uses for the offending address.
pub const HOST_TAG: &str = "<HOST>";

/// What `<HOST>` expands to: an optional `[`, then a capture of address-shaped text (dotted
/// IPv4; or IPv6, which has at least one colon, with an optional dotted IPv4 tail as in
/// `::ffff:a.b.c.d`), then an optional `]`. The capture is only a candidate: [`parse_host`]
/// decides whether it is an address. Kept free of counted repetitions such as `{1,44}`:
/// they multiply the automaton's states, and the capture engine's cost with them.
pub const HOST_REGEX: &str = r"\[?(?P<host>[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+|[0-9A-Fa-f]*:[0-9A-Fa-f:]*(?:[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)?)\]?";

/// Parses captured host text into an address. IPv4-mapped IPv6 becomes IPv4. Returns `None`
/// for text that is not an address (for example `300.1.2.3` or `1:2`): such a line is not a
/// failure.
pub fn parse_host(text: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(text).ok()?;
    let addr: IpAddr = s.parse().ok()?;
    Some(addr.to_canonical())
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

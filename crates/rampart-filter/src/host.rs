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

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
    // The common case in one pass; anything else (IPv6, a port, garbage) takes the
    // general path, which gives the same answer for a plain dotted quad.
    if let Some(v4) = dotted_quad(text) {
        return Some(IpAddr::V4(v4));
    }
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

/// `a.b.c.d` as the standard library reads it: four decimal octets of one to three
/// digits, none above 255, no leading zero; `None` for anything else.
fn dotted_quad(t: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if t.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value = 0u32;
        while i - start < 3 {
            match t.get(i) {
                Some(&d) if d.is_ascii_digit() => value = value * 10 + u32::from(d - b'0'),
                _ => break,
            }
            i += 1;
        }
        if i == start || (i - start > 1 && t[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == t.len()).then(|| std::net::Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-pass dotted quad says what the standard parser says, on text shaped
        /// like addresses (digits, dots, colons) and on real quads with leading zeros.
        #[test]
        fn the_dotted_quad_fast_path_agrees_with_the_standard_parser(
            text in "[0-9.:]{0,20}",
            quad in (0u16..300, 0u16..300, 0u16..300, 0u16..300),
            zero in 0usize..4,
        ) {
            let std_v4 = |s: &str| s.parse::<std::net::Ipv4Addr>().ok();
            prop_assert_eq!(dotted_quad(text.as_bytes()), std_v4(&text), "{}", text);
            let mut parts = [quad.0, quad.1, quad.2, quad.3].map(|n| n.to_string());
            if zero > 0 {
                parts[zero] = format!("0{}", parts[zero]);
            }
            let q = parts.join(".");
            prop_assert_eq!(dotted_quad(q.as_bytes()), std_v4(&q), "{}", q);
        }
    }

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

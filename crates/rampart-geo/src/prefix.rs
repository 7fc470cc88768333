//! Country prefix lists and CSV range files: the country-only sources.
//!
//! Prefix lists have one entry per line, either `cc<TAB>prefix` (any whitespace works) or a
//! bare prefix whose country is given by the caller or by the file name (`de.txt`,
//! `de-aggregated.zone`, or the ipverse layout `country/de/ipv4-aggregated.txt`). A bare
//! address counts as a /32 or /128. `#` and `;` start comment lines.
//!
//! CSV range files are `start,end,cc` per line with IPv4 or IPv6 addresses, as DB-IP Lite
//! and ip-location-db publish them; further columns are ignored, fields may be quoted, and a
//! first line that is not a range (a header) is skipped. Rows whose country is empty, `ZZ`,
//! `??` or `-` say "unknown" and are skipped.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;

use crate::addr::{v4_bounds, v6_bounds};
use crate::input::lines;
use crate::types::CountryCode;
use crate::GeoError;

/// A country source's entries per family: inclusive integer ranges with their country, in
/// file order (possibly overlapping; the source resolves overlaps).
#[derive(Debug, Clone, Default)]
pub(crate) struct CountryEntries {
    pub(crate) v4: Vec<(u32, u32, CountryCode)>,
    pub(crate) v6: Vec<(u128, u128, CountryCode)>,
}

impl CountryEntries {
    fn push_range(&mut self, s: IpAddr, e: IpAddr, cc: CountryCode) -> Result<(), String> {
        match (s, e) {
            (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => self.v4.push((a.into(), b.into(), cc)),
            (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => self.v6.push((a.into(), b.into(), cc)),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                return Err(format!("range {s}-{e} ends before it starts"))
            }
            _ => return Err(format!("range {s}-{e} mixes IPv4 and IPv6")),
        }
        Ok(())
    }

    fn push_net(&mut self, n: IpNet, cc: CountryCode) {
        match n {
            IpNet::V4(n) => {
                let (s, e) = v4_bounds(&n);
                self.v4.push((s, e, cc));
            }
            IpNet::V6(n) => {
                let (s, e) = v6_bounds(&n);
                self.v6.push((s, e, cc));
            }
        }
    }
}

/// The country a file name implies for bare prefixes: a two-letter stem (`de.txt`,
/// `DE-aggregated.zone`, `de_v4.list`) or, failing that, a two-letter parent directory
/// (`country/de/ipv4-aggregated.txt`).
pub fn country_from_file_name(path: &Path) -> Option<CountryCode> {
    let stem_cc = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split(['.', '-', '_']).next())
        .and_then(CountryCode::parse);
    stem_cc.or_else(|| {
        path.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(CountryCode::parse)
    })
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        if n.trunc() != n {
            return Err(format!(
                "prefix {s} has host bits set (did you mean {}?)",
                n.trunc()
            ));
        }
        return Ok(n);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not a prefix or address"))
}

/// Parses a prefix list. `country` is used for bare prefixes; without it the file name must
/// imply one (see [`country_from_file_name`]).
pub(crate) fn parse_prefix_list(
    path: &Path,
    bytes: &[u8],
    country: Option<CountryCode>,
) -> Result<CountryEntries, GeoError> {
    let default = country.or_else(|| country_from_file_name(path));
    let mut out = CountryEntries::default();
    for item in lines(path, bytes) {
        let (n, line) = item?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let err = |m: String| GeoError::parse(path, n, m);
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or_default();
        let (cc, net) = match (parts.next(), parts.next()) {
            (None, _) => {
                let cc = default.ok_or_else(|| {
                    err(format!(
                        "bare prefix {first} but no country: use cc<TAB>prefix lines, name the file CC.txt, or give the country"
                    ))
                })?;
                (cc, parse_net(first).map_err(err)?)
            }
            (Some(second), None) => {
                // cc<TAB>prefix, or prefix<TAB>cc.
                match CountryCode::parse(first) {
                    Some(cc) => (cc, parse_net(second).map_err(err)?),
                    None => {
                        let cc = CountryCode::parse(second).ok_or_else(|| {
                            err(format!("expected cc<TAB>prefix, found {line:?}"))
                        })?;
                        (cc, parse_net(first).map_err(err)?)
                    }
                }
            }
            (Some(_), Some(_)) => {
                return Err(err(format!("expected cc<TAB>prefix, found {line:?}")));
            }
        };
        if cc.is_known() {
            out.push_net(net, cc);
        }
    }
    Ok(out)
}

/// Strips one pair of double quotes and surrounding blanks.
fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s)
        .trim()
}

/// Parses a `start,end,cc` CSV range file.
pub(crate) fn parse_csv(path: &Path, bytes: &[u8]) -> Result<CountryEntries, GeoError> {
    let mut out = CountryEntries::default();
    let mut seen_row = false;
    for item in lines(path, bytes) {
        let (n, line) = item?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first_row = !seen_row;
        seen_row = true;
        let err = |m: String| GeoError::parse(path, n, m);
        let mut cols = line.split(',').map(unquote);
        let (Some(a), Some(b), Some(c)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(err(format!("expected start,end,cc, found {line:?}")));
        };
        let (s, e) = match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
            (Ok(s), Ok(e)) => (s, e),
            _ if first_row => continue, // a header line
            _ => return Err(err(format!("{a:?},{b:?} is not an address range"))),
        };
        match c {
            "" | "ZZ" | "zz" | "??" | "-" => continue,
            _ => {}
        }
        let cc = CountryCode::parse(c)
            .ok_or_else(|| err(format!("country {c:?} is not two letters")))?;
        out.push_range(s, e, cc).map_err(err)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_lists_take_cc_tab_prefix_or_a_country_from_the_name() {
        let e = parse_prefix_list(
            Path::new("all.tsv"),
            b"# comment\nde\t192.0.2.0/24\nFR 2001:db8::/32\n198.51.100.0/25\tnl\n\n",
            None,
        )
        .unwrap();
        assert_eq!(e.v4.len(), 2);
        assert_eq!(e.v4[0].2.as_str(), "DE");
        assert_eq!(e.v4[1].2.as_str(), "NL");
        assert_eq!(e.v6[0].2.as_str(), "FR");
        let e =
            parse_prefix_list(Path::new("ch.txt"), b"203.0.113.0/24\n203.0.113.7\n", None).unwrap();
        assert_eq!(
            e.v4,
            vec![
                (0xcb00_7100, 0xcb00_71ff, CountryCode::parse("CH").unwrap()),
                (0xcb00_7107, 0xcb00_7107, CountryCode::parse("CH").unwrap()),
            ]
        );
        assert_eq!(
            country_from_file_name(Path::new("country/at/ipv4-aggregated.txt"))
                .map(|c| c.to_string()),
            Some("AT".into())
        );
        assert_eq!(
            country_from_file_name(Path::new("/x/it-aggregated.zone")).map(|c| c.to_string()),
            Some("IT".into())
        );
        assert_eq!(country_from_file_name(Path::new("/x/world.txt")), None);
    }

    #[test]
    fn prefix_list_errors_name_file_and_line() {
        let e = parse_prefix_list(Path::new("world.txt"), b"192.0.2.0/24\n", None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("world.txt:1: bare prefix 192.0.2.0/24 but no country"),
            "{e}"
        );
        let e = parse_prefix_list(Path::new("de.txt"), b"192.0.2.0/24\n192.0.2.1/24\n", None)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "de.txt:2: prefix 192.0.2.1/24 has host bits set (did you mean 192.0.2.0/24?)"
        );
        let e = parse_prefix_list(Path::new("x"), b"de 192.0.2.0/24 extra\n", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x:1: expected cc<TAB>prefix, found \"de 192.0.2.0/24 extra\""
        );
    }

    #[test]
    fn csv_ranges_with_header_quotes_and_unknown_rows() {
        let e = parse_csv(
            Path::new("dbip.csv"),
            b"start,end,country\n\"192.0.2.0\",\"192.0.2.127\",\"AU\"\n192.0.2.128,192.0.2.255,ZZ\n2001:db8::,2001:db8::ffff,de,extra\n",
        )
        .unwrap();
        assert_eq!(
            e.v4,
            vec![(0xc000_0200, 0xc000_027f, CountryCode::parse("AU").unwrap())]
        );
        assert_eq!(e.v6.len(), 1);
        let err = parse_csv(
            Path::new("d.csv"),
            b"192.0.2.0,192.0.2.9,AU\n192.0.2.9,192.0.2.0,AU\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.csv:2: range 192.0.2.9-192.0.2.0 ends before it starts"
        );
        let err = parse_csv(
            Path::new("d.csv"),
            b"192.0.2.0,192.0.2.9,AU\n192.0.2.0,2001:db8::,AU\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.csv:2: range 192.0.2.0-2001:db8:: mixes IPv4 and IPv6"
        );
        let err = parse_csv(Path::new("d.csv"), b"192.0.2.0,192.0.2.9,AU\nx,y,AU\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.csv:2: \"x\",\"y\" is not an address range"
        );
    }
}

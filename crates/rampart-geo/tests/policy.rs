//! GeoDb precedence, registry blocks, widening and policy compilation on small hand-made
//! sources (documentation address ranges only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use rampart_geo::{
    compile_policy, country_sets, country_sets_with, sniff_kind, widen, CountryCode, GeoDb,
    PolicyMode, PolicySpec, Precedence, Registry, Resolve, Source, SourceKind, Widen,
};

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn nets(v: &[&str]) -> Vec<IpNet> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

fn strs<T: ToString>(v: &[T]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// A registry file: 198.51.100.0/24 is DE's (holder H1, also 203.0.113.0/25), the upper
/// half of 203.0.113.0/24 is available, 2001:db8::/32 is FR's (holder H1).
fn registry() -> Source {
    Source::from_bytes(
        Path::new("delegated-ripencc-test"),
        b"ripencc|DE|ipv4|198.51.100.0|256|20100101|allocated|H1\n\
          ripencc|DE|ipv4|203.0.113.0|128|20110101|assigned|H1\n\
          ripencc||ipv4|203.0.113.128|128||available\n\
          ripencc|FR|ipv6|2001:db8::|32|20120101|allocated|H1\n"
            .to_vec(),
        SourceKind::Rir,
        None,
    )
    .unwrap()
}

/// A geolocation CSV: the lower half of 198.51.100.0/24 is used in NL, 192.0.2.0/24 is US.
fn geoloc() -> Source {
    Source::from_bytes(
        Path::new("geo.csv"),
        b"198.51.100.0,198.51.100.127,NL\n192.0.2.0,192.0.2.255,US\n".to_vec(),
        SourceKind::Csv,
        None,
    )
    .unwrap()
}

#[test]
fn precedence_decides_the_country_and_lookup_shows_every_source() {
    let a = ip("198.51.100.7");
    let reg_first = GeoDb::with_precedence(vec![geoloc(), registry()], Precedence::RegistryFirst);
    assert_eq!(reg_first.country(a), Some(cc("DE")));
    assert_eq!(reg_first.locate(a).unwrap().source, 0);
    assert_eq!(reg_first.sources()[0].info().kind, SourceKind::Rir);
    let geo_first =
        GeoDb::with_precedence(vec![registry(), geoloc()], Precedence::GeolocationFirst);
    assert_eq!(geo_first.country(a), Some(cc("NL")));
    // Where only one source knows the address, it decides whatever the order.
    assert_eq!(geo_first.country(ip("198.51.100.200")), Some(cc("DE")));
    assert_eq!(geo_first.country(ip("192.0.2.1")), Some(cc("US")));
    // Available space gives no country but is found by the whois.
    assert_eq!(geo_first.country(ip("203.0.113.200")), None);
    let answers = geo_first.lookup(ip("203.0.113.200"));
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].hit.block.unwrap().status.as_str(), "available");
    // Both answers, in precedence order.
    let both = geo_first.lookup(a);
    let got: Vec<(SourceKind, Option<CountryCode>)> = both
        .iter()
        .map(|x| (x.source.kind, x.hit.country))
        .collect();
    assert_eq!(
        got,
        vec![
            (SourceKind::Csv, Some(cc("NL"))),
            (SourceKind::Rir, Some(cc("DE")))
        ]
    );
    // An IPv4-mapped IPv6 address is the IPv4 address.
    assert_eq!(geo_first.country(ip("::ffff:198.51.100.7")), Some(cc("NL")));
}

#[test]
fn registry_block_and_holder_blocks() {
    let db = GeoDb::new(vec![geoloc(), registry()]);
    let b = db.registry_block(ip("198.51.100.7")).unwrap();
    assert_eq!(
        (b.registry, b.cc, b.holder),
        (Registry::Ripencc, Some(cc("DE")), Some("H1"))
    );
    assert_eq!(strs(&b.cidrs()), ["198.51.100.0/24"]);
    assert!(
        db.registry_block(ip("192.0.2.1")).is_none(),
        "the CSV has no blocks"
    );
    let v6 = db.registry_block(ip("2001:db8:1::1")).unwrap();
    assert_eq!(strs(&v6.cidrs()), ["2001:db8::/32"]);
    let held: Vec<String> = db
        .holder_blocks(Registry::Ripencc, "H1")
        .iter()
        .flat_map(|b| b.cidrs())
        .map(|n| n.to_string())
        .collect();
    assert_eq!(held, ["198.51.100.0/24", "203.0.113.0/25", "2001:db8::/32"]);
    assert!(db.holder_blocks(Registry::Apnic, "H1").is_empty());
}

#[test]
fn country_sets_follow_the_resolve_rule() {
    let db = GeoDb::new(vec![registry(), geoloc()]);
    let first = country_sets(&db, &[cc("DE"), cc("NL"), cc("FR")]);
    assert_eq!(
        strs(&first[&cc("DE")].0),
        ["198.51.100.0/24", "203.0.113.0/25"]
    );
    assert!(
        first[&cc("NL")].0.is_empty(),
        "registry first: NL never decides"
    );
    assert_eq!(strs(&first[&cc("FR")].1), ["2001:db8::/32"]);
    let any = country_sets_with(&db, &[cc("DE"), cc("NL")], Resolve::Any);
    assert_eq!(
        strs(&any[&cc("DE")].0),
        ["198.51.100.0/24", "203.0.113.0/25"]
    );
    assert_eq!(strs(&any[&cc("NL")].0), ["198.51.100.0/25"]);
    let all = country_sets_with(&db, &[cc("DE"), cc("NL")], Resolve::All);
    assert_eq!(
        strs(&all[&cc("DE")].0),
        ["198.51.100.128/25", "203.0.113.0/25"]
    );
    assert!(all[&cc("NL")].0.is_empty());
}

#[test]
fn compile_policy_returns_the_listed_countries_plus_also_minus_except() {
    let db = GeoDb::new(vec![registry(), geoloc()]);
    let allow = compile_policy(
        &db,
        &PolicySpec {
            mode: PolicyMode::Allow,
            countries: vec![cc("DE"), cc("XX")],
            also: nets(&["192.0.2.10/32", "192.0.2.11/32"]),
            except: nets(&["203.0.113.0/26"]),
            resolve: Resolve::First,
        },
    );
    assert_eq!(allow.mode, PolicyMode::Allow);
    assert_eq!(
        strs(&allow.set.v4),
        ["192.0.2.10/31", "198.51.100.0/24", "203.0.113.64/26"]
    );
    assert!(allow.set.v6.is_empty());
    assert_eq!(allow.unknown_countries, vec![cc("XX")]);
    assert_eq!(allow.addresses_v4, 2 + 256 + 64);
    // Deny with Any: everything any source puts in NL.
    let deny = compile_policy(
        &db,
        &PolicySpec {
            mode: PolicyMode::Deny,
            countries: vec![cc("NL"), cc("FR")],
            also: vec![],
            except: vec![],
            resolve: Resolve::Any,
        },
    );
    assert_eq!(strs(&deny.set.v4), ["198.51.100.0/25"]);
    assert_eq!(strs(&deny.set.v6), ["2001:db8::/32"]);
}

#[test]
fn widening_to_the_registry_block_or_a_prefix() {
    let db = GeoDb::new(vec![registry()]);
    let addrs = [
        ip("198.51.100.7"),
        ip("198.51.100.99"),
        ip("203.0.113.200"), // available space: not widened to the pool
        ip("192.0.2.1"),     // no block at all
        ip("2001:db8:5::1"),
    ];
    let exact = widen(&db, addrs, Widen::Exact).to_cidrs();
    assert_eq!(exact.len(), 5);
    let reg = widen(&db, addrs, Widen::Registry).to_cidrs();
    assert_eq!(
        strs(&reg.v4),
        ["192.0.2.1/32", "198.51.100.0/24", "203.0.113.200/32"]
    );
    assert_eq!(strs(&reg.v6), ["2001:db8::/32"]);
    let pfx = widen(&db, addrs, Widen::RegistryOrPrefix { v4: 24, v6: 48 }).to_cidrs();
    assert_eq!(
        strs(&pfx.v4),
        ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
    );
    let p = widen(&db, addrs, Widen::Prefix { v4: 16, v6: 48 }).to_cidrs();
    assert_eq!(
        strs(&p.v4),
        ["192.0.0.0/16", "198.51.0.0/16", "203.0.0.0/16"]
    );
    assert_eq!(strs(&p.v6), ["2001:db8:5::/48"]);
}

#[test]
fn file_kinds_are_recognised_by_content() {
    let p = Path::new("x");
    assert_eq!(
        sniff_kind(p, b"# c\napnic|CN|ipv4|1.0.0.0|256|20100101|allocated|A\n"),
        SourceKind::Rir
    );
    assert_eq!(sniff_kind(p, b"1.0.0.0,1.0.0.255,AU\n"), SourceKind::Csv);
    assert_eq!(sniff_kind(p, b"de\t192.0.2.0/24\n"), SourceKind::PrefixList);
    assert_eq!(sniff_kind(Path::new("x.mmdb.gz"), b""), SourceKind::Mmdb);
}

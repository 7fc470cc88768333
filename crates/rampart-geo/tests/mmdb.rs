//! The MaxMind DB reader against databases built by the writer (every record size, both
//! tree kinds, both layouts, with and without the IPv4 aliases), against damaged files, and
//! against MaxMind's own test databases (vendored in data/geo/mmdb-test, MIT/Apache-2.0)
//! with expectations produced by MaxMind's Python reader.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use rampart_geo::mmdb::{write_country_db, Layout, Mmdb, WriteOptions};
use rampart_geo::{CountryCode, GeoDb, Source, SourceKind};

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/geo")
        .join(rel);
    assert!(p.exists(), "vendored data file {} is missing", p.display());
    p
}

const CCS: [&str; 4] = ["AA", "BB", "CC", "DD"];

/// Prefixes inside 198.51.100.0/24 and 2001:db8::/120, lengths chosen so they nest.
fn entries() -> impl Strategy<Value = Vec<(IpNet, usize)>> {
    let v4 = (0u32..256, 24u8..=32, 0..CCS.len()).prop_map(|(off, len, c)| {
        let a = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 51, 100, 0)) + off);
        (IpNet::V4(Ipv4Net::new(a, len).unwrap().trunc()), c)
    });
    let v6 = (0u128..256, 120u8..=128, 0..CCS.len()).prop_map(|(off, len, c)| {
        let a = Ipv6Addr::from(u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap()) + off);
        (IpNet::V6(Ipv6Net::new(a, len).unwrap().trunc()), c)
    });
    prop::collection::vec(prop_oneof![v4, v6], 0..10)
}

/// The writer's semantics: the last inserted entry covering an address wins.
fn model(es: &[(IpNet, usize)], ip: IpAddr) -> Option<CountryCode> {
    es.iter()
        .rev()
        .find(|(n, _)| n.contains(&ip))
        .map(|&(_, c)| cc(CCS[c]))
}

fn options() -> impl Strategy<Value = WriteOptions> {
    (
        prop_oneof![Just(24u16), Just(28), Just(32)],
        prop_oneof![Just(4u16), Just(6)],
        prop_oneof![Just(Layout::GeoIp2), Just(Layout::Flat)],
        any::<bool>(),
    )
        .prop_map(
            |(record_size, ip_version, layout, ipv4_aliases)| WriteOptions {
                record_size,
                ip_version,
                layout,
                ipv4_aliases,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn reader_and_walk_agree_with_what_the_writer_wrote(es in entries(), opts in options()) {
        let es: Vec<(IpNet, usize)> = if opts.ip_version == 4 {
            es.into_iter().filter(|(n, _)| matches!(n, IpNet::V4(_))).collect()
        } else {
            es
        };
        let table: Vec<(IpNet, CountryCode)> = es.iter().map(|&(n, c)| (n, cc(CCS[c]))).collect();
        let bytes = write_country_db(&table, &opts).unwrap();
        let path = Path::new("test.mmdb");
        let db = Mmdb::from_bytes(path, bytes.clone()).unwrap();
        prop_assert_eq!(db.metadata().record_size, opts.record_size);
        prop_assert_eq!(db.metadata().ip_version, opts.ip_version);
        let src = Source::from_bytes(path, bytes, SourceKind::Mmdb, None).unwrap();
        let v4base = u32::from(Ipv4Addr::new(198, 51, 100, 0));
        let v6base = u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap());
        // Every address of both windows, plus their neighbours.
        let probes = (0u32..258).flat_map(|o| {
            let o4 = o.wrapping_sub(1);
            [
                IpAddr::V4(Ipv4Addr::from(v4base.wrapping_add(o4))),
                IpAddr::V6(Ipv6Addr::from(v6base.wrapping_add(u128::from(o4)))),
            ]
        });
        for ip in probes {
            let want = if opts.ip_version == 4 && ip.is_ipv6() { None } else { model(&es, ip) };
            prop_assert_eq!(db.country(ip).unwrap(), want, "tree lookup of {}", ip);
            prop_assert_eq!(src.country(ip), want, "walked table for {}", ip);
            if let (IpAddr::V4(a), 6, true) = (ip, opts.ip_version, opts.ipv4_aliases) {
                // The aliases reach the IPv4 subtree through the tree...
                let mapped = IpAddr::V6(a.to_ipv6_mapped());
                prop_assert_eq!(db.country(mapped).unwrap(), want);
                // ...and are not copied into the IPv6 table (an IPv4-mapped address is
                // looked up as IPv4).
                prop_assert_eq!(src.country(mapped), want);
            }
        }
        // No IPv6 ranges come from the IPv4 subtree or its aliases.
        prop_assert_eq!(src.info().entries_v6 > 0, es.iter().any(|(n, _)| matches!(n, IpNet::V6(_))));
    }

    #[test]
    fn damaged_files_are_errors_not_panics(es in entries(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        let table: Vec<(IpNet, CountryCode)> = es.iter().map(|&(n, c)| (n, cc(CCS[c]))).collect();
        let good = write_country_db(&table, &WriteOptions::default()).unwrap();
        let mut bad = good.clone();
        for (i, b) in flips {
            let i = i.index(bad.len());
            bad[i] ^= b | 1;
        }
        let path = Path::new("bad.mmdb");
        let _ = Source::from_bytes(path, bad, SourceKind::Mmdb, None);
        let truncated = good[..cut.index(good.len())].to_vec();
        let _ = Source::from_bytes(path, truncated, SourceKind::Mmdb, None);
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_with_its_name() {
    let e = Mmdb::from_bytes(Path::new("x.mmdb"), b"hello".to_vec()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.mmdb: not a MaxMind DB file: no metadata marker"
    );
}

/// MaxMind's test databases; the expectations (`*.expected.tsv`: every network the
/// database holds, with its country) were produced by MaxMind's own Python reader
/// (maxminddb 3.2.0 from PyPI), so the reader here is checked against an independent one.
#[test]
fn maxmind_test_databases_read_like_maxminds_own_reader() {
    for name in ["GeoIP2-Country-Test", "GeoLite2-Country-Test"] {
        let path = data(&format!("mmdb-test/{name}.mmdb"));
        let expected =
            std::fs::read_to_string(data(&format!("mmdb-test/{name}.expected.tsv"))).unwrap();
        let src = Source::load(&path).unwrap();
        assert_eq!(src.info().kind, SourceKind::Mmdb);
        let db = Mmdb::open(&path).unwrap();
        assert_eq!(db.metadata().record_size, 28);
        let mut checked = 0;
        for line in expected.lines().filter(|l| !l.starts_with('#')) {
            let (net, want) = line.split_once('\t').unwrap();
            let net: IpNet = net.parse().unwrap();
            let want = CountryCode::parse(want);
            for ip in [net.network(), net.broadcast()] {
                assert_eq!(db.country(ip).unwrap(), want, "{name}: {ip} (tree)");
                assert_eq!(src.country(ip), want, "{name}: {ip} (table)");
            }
            checked += 1;
        }
        assert!(checked > 200, "{name}: {checked} networks");
        // And the whole table has exactly those networks with a country.
        let want_nets: usize = expected
            .lines()
            .filter(|l| !l.starts_with('#') && !l.ends_with("\t-"))
            .count();
        let geo = GeoDb::new(vec![src]);
        let all = rampart_geo::all_country_sets(&geo, rampart_geo::Resolve::First);
        let covered: usize = all.values().map(|s| s.len()).sum();
        assert!(
            covered <= want_nets,
            "{name}: aggregation can only merge networks"
        );
    }
}

#[test]
fn maxmind_broken_test_databases_are_errors_not_panics() {
    let dir = data("mmdb-test/bad");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let r = Source::load_as(&p, SourceKind::Mmdb, None);
        assert!(r.is_err(), "{} should be refused", p.display());
        n += 1;
    }
    assert!(n >= 5);
}

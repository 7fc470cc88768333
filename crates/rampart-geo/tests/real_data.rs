//! The loaders on the vendored real data (data/geo): the seed scenario, non-CIDR blocks,
//! every RIR's quirks, and the counts the research note measured on the same files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rampart_geo::{
    all_country_sets, country_sets, CountryCode, GeoDb, Registry, Resolve, RirFile, Source,
    SourceKind, Status,
};

fn data(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/geo")
        .join(rel);
    assert!(p.exists(), "vendored data file {} is missing", p.display());
    p
}

fn rir(name: &str) -> RirFile {
    RirFile::load(&data(&format!("rir/delegated-{name}-extended-20181013.gz"))).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

#[test]
fn seed_address_resolves_to_the_cn_slash_13_and_its_holder_portfolio() {
    let db = GeoDb::load(&[data("rir/delegated-apnic-extended-20181013.gz")]).unwrap();
    let answers = db.lookup(ip("180.152.123.123"));
    assert_eq!(answers.len(), 1);
    let a = &answers[0];
    assert_eq!(a.source.kind, SourceKind::Rir);
    assert_eq!(a.source.name(), "delegated-apnic-extended-20181013.gz");
    let b = a.hit.block.unwrap();
    assert_eq!(b.registry, Registry::Apnic);
    assert_eq!(b.cc, Some(cc("CN")));
    assert_eq!(a.hit.country, Some(cc("CN")));
    assert_eq!(b.start, ip("180.152.0.0"));
    assert_eq!(b.size(), 524_288);
    assert_eq!(
        b.cidrs().iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        ["180.152.0.0/13"]
    );
    assert_eq!(b.status, Status::Allocated);
    assert_eq!(b.date.unwrap().to_string(), "2009-08-21");
    assert_eq!(b.holder, Some("A92951CA"));
    assert_eq!(db.country(ip("180.152.123.123")), Some(cc("CN")));

    let held = db.holder_blocks(Registry::Apnic, "A92951CA");
    let v4: Vec<_> = held.iter().filter(|b| b.start.is_ipv4()).collect();
    assert_eq!(v4.len(), 12);
    assert_eq!(v4.iter().map(|b| b.size()).sum::<u128>(), 4_883_456);
    let mut nets: Vec<String> = v4
        .iter()
        .flat_map(|b| b.cidrs())
        .map(|n| n.to_string())
        .collect();
    nets.sort();
    assert_eq!(
        nets,
        [
            "101.224.0.0/13",
            "101.80.0.0/12",
            "103.22.76.0/22",
            "124.74.0.0/15",
            "124.76.0.0/14",
            "180.152.0.0/13",
            "180.160.0.0/12",
            "221.239.128.0/17",
            "222.64.0.0/13",
            "222.72.0.0/15",
            "58.32.0.0/13",
            "58.40.0.0/15",
        ]
    );
}

#[test]
fn non_cidr_host_counts_split_into_several_cidrs() {
    let ripe = rir("ripencc");
    let b = ripe
        .blocks()
        .find(|b| b.start == ip("31.41.240.0"))
        .unwrap();
    assert_eq!(b.size(), 768);
    assert_eq!(
        b.cidrs().iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        ["31.41.240.0/23", "31.41.242.0/24"]
    );
    // The research note's counts on the same files: ARIN 62,481 IPv4 records become 64,042
    // CIDRs, RIPE 72,789 become 74,424; 376 ARIN and 1,111 RIPE records are not one CIDR.
    for (name, records, cidrs, non_cidr) in [
        ("arin", 62_481, 64_042, 376),
        ("ripencc", 72_789, 74_424, 1_111),
    ] {
        let f = rir(name);
        assert_eq!(f.len_v4(), records, "{name}");
        let splits: Vec<usize> = f
            .blocks()
            .filter(|b| b.start.is_ipv4())
            .map(|b| b.cidrs().len())
            .collect();
        assert_eq!(splits.iter().sum::<usize>(), cidrs, "{name}");
        assert_eq!(
            splits.iter().filter(|&&n| n > 1).count(),
            non_cidr,
            "{name}"
        );
    }
}

#[test]
fn all_five_2018_files_parse_with_their_quirks() {
    let mut delegated_v4 = 0;
    for name in ["afrinic", "apnic", "arin", "lacnic", "ripencc"] {
        let f = rir(name);
        assert!(
            f.check_counts(true).is_ok(),
            "{name}: header and summaries present"
        );
        assert_eq!(f.registry().map(|r| r.as_str()), Some(name));
        delegated_v4 += f
            .blocks()
            .filter(|b| b.start.is_ipv4() && b.is_delegated())
            .count();
    }
    // Research note §1.1: 190,920 allocated+assigned IPv4 records across the five RIRs.
    assert_eq!(delegated_v4, 190_920);

    // RIPE: 7-field available/reserved lines without an opaque id; EU as a country; UUIDs.
    let ripe = rir("ripencc");
    let avail = ripe
        .blocks()
        .find(|b| b.status == Status::Available)
        .unwrap();
    assert_eq!(avail.holder, None);
    assert!(ripe.blocks().any(|b| b.cc == Some(cc("EU"))));
    let uuid = ripe.blocks().find_map(|b| b.holder).unwrap();
    assert_eq!(uuid.len(), 36);
    // LACNIC: integer holder ids; reserved lines with an empty country.
    let lacnic = rir("lacnic");
    let reserved = lacnic
        .blocks()
        .find(|b| b.status == Status::Reserved)
        .unwrap();
    assert_eq!(reserved.cc, None);
    assert!(lacnic
        .blocks()
        .filter_map(|b| b.holder)
        .all(|h| h.bytes().all(|c| c.is_ascii_digit())));
    // ARIN: 32-hex holder ids; IPv6 prefix lengths.
    let arin = rir("arin");
    assert!(arin
        .blocks()
        .filter_map(|b| b.holder)
        .all(|h| h.len() == 32));
    assert!(arin.len_v6() > 50_000);
}

#[test]
fn afrinic_2026_has_all_four_statuses_and_zz_for_undelegated_space() {
    let f = RirFile::load(&data("rir/delegated-afrinic-extended-20260506.gz")).unwrap();
    let h = f.header().unwrap();
    assert_eq!((h.version.as_str(), h.records), ("2", 19_286));
    for st in [
        Status::Allocated,
        Status::Assigned,
        Status::Available,
        Status::Reserved,
    ] {
        assert!(f.blocks().any(|b| b.status == st), "{st}");
    }
    let zz = f.blocks().find(|b| b.cc == Some(CountryCode::ZZ)).unwrap();
    assert!(!zz.is_delegated());
    let src = Source::from_rir(f.clone());
    // Undelegated space is found by the whois but gives no country.
    let hit = src.find(zz.start).unwrap();
    assert_eq!(hit.block.unwrap().cc, Some(CountryCode::ZZ));
    assert_eq!(hit.country, None);
}

#[test]
fn country_prefix_list_loads_every_country_of_both_families() {
    let src = Source::load(&data("country-prefixes-20260201.tsv.gz")).unwrap();
    assert_eq!(src.info().kind, SourceKind::PrefixList);
    assert_eq!(src.info().entries_v4, 175_195);
    assert_eq!(src.info().entries_v6, 67_839);
    assert_eq!(src.country(ip("180.152.123.123")), Some(cc("CN")));
    assert_eq!(src.country(ip("46.172.224.1")), Some(cc("AD")));
}

#[test]
fn registry_and_prefix_list_sources_combine_with_precedence() {
    let apnic = Source::load(&data("rir/delegated-apnic-extended-20181013.gz")).unwrap();
    let list = Source::load(&data("country-prefixes-20260201.tsv.gz")).unwrap();
    let db = GeoDb::new(vec![apnic, list]);
    let a = db.lookup(ip("180.152.123.123"));
    assert_eq!(a.len(), 2, "both sources answer");
    assert_eq!(a[0].source.kind, SourceKind::Rir);
    assert_eq!(a[1].source.kind, SourceKind::PrefixList);
    assert_eq!(a[1].hit.country, Some(cc("CN")));
    assert_eq!(
        a[1].cidrs()
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        ["180.152.0.0/13"]
    );
    // An address APNIC does not cover falls through to the list.
    let de = ip("46.172.224.1");
    assert_eq!(
        db.locate(de).map(|l| (l.country, l.source)),
        Some((cc("AD"), 1))
    );
    let sets = country_sets(&db, &[cc("CN"), cc("QQ")]);
    let seed: std::net::Ipv4Addr = "180.152.123.123".parse().unwrap();
    assert!(sets[&cc("CN")].0.iter().any(|n| n.contains(&seed)));
    assert!(sets[&cc("QQ")].0.is_empty() && sets[&cc("QQ")].1.is_empty());
}

#[test]
fn every_country_set_from_the_five_files_covers_exactly_the_delegated_space() {
    let paths: Vec<PathBuf> = ["afrinic", "apnic", "arin", "lacnic", "ripencc"]
        .iter()
        .map(|n| data(&format!("rir/delegated-{n}-extended-20181013.gz")))
        .collect();
    let db = GeoDb::load(&paths).unwrap();
    let sets = all_country_sets(&db, Resolve::First);
    assert!(sets.len() > 230, "{} countries", sets.len());
    // Address count of all sets = address count of all delegated IPv4 records (no overlaps
    // between RIRs in 2018).
    let delegated: u128 = db
        .sources()
        .iter()
        .filter_map(|s| s.rir())
        .flat_map(|f| f.blocks())
        .filter(|b| b.start.is_ipv4() && b.is_delegated() && b.cc.is_some_and(|c| c.is_known()))
        .map(|b| b.size())
        .sum();
    let covered: u128 = sets
        .values()
        .flat_map(|s| s.v4.iter())
        .map(|n| 1u128 << (32 - n.prefix_len()))
        .sum();
    assert_eq!(covered, delegated);
    // Spot checks: the seed block is in CN's set; a sample of US addresses is in US's set.
    let cn = &sets[&cc("CN")];
    assert!(cn
        .v4
        .iter()
        .any(|n| n.contains(&"180.152.123.123".parse::<std::net::Ipv4Addr>().unwrap())));
    for ip4 in ["8.8.8.8", "3.3.3.3"] {
        let a: std::net::Ipv4Addr = ip4.parse().unwrap();
        assert_eq!(db.country(IpAddr::V4(a)), Some(cc("US")), "{ip4}");
        assert!(sets[&cc("US")].v4.iter().any(|n| n.contains(&a)), "{ip4}");
    }
}

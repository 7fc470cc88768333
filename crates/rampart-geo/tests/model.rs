//! Property tests against naive models: aggregation, set algebra, overlap resolution inside
//! a source, and the First/Any/All rules across sources. Each case lives in a window of
//! 1,024 addresses placed at a random aligned spot of the IPv4 or IPv6 space (including the
//! very first and very last window), where a bitmap is the model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use proptest::prelude::*;
use rampart_geo::{country_sets_with, CountryCode, GeoDb, RangeSet, Resolve, Source, SourceKind};

const W: u32 = 1024;

/// A window: IPv4 or IPv6 and its base address (aligned to W).
#[derive(Debug, Clone, Copy)]
enum Win {
    V4(u32),
    V6(u128),
}

impl Win {
    fn ip(&self, off: u32) -> IpAddr {
        match *self {
            Win::V4(b) => IpAddr::V4(Ipv4Addr::from(b + off)),
            Win::V6(b) => IpAddr::V6(Ipv6Addr::from(b + u128::from(off))),
        }
    }
    /// An address next to the window, outside it.
    fn outside(&self) -> IpAddr {
        match *self {
            Win::V4(0) | Win::V6(0) => self.ip(W),
            Win::V4(b) => IpAddr::V4(Ipv4Addr::from(b - 1)),
            Win::V6(b) => IpAddr::V6(Ipv6Addr::from(b - 1)),
        }
    }
    fn bits(&self) -> u8 {
        match self {
            Win::V4(_) => 32,
            Win::V6(_) => 128,
        }
    }
}

fn window() -> impl Strategy<Value = Win> {
    prop_oneof![
        Just(Win::V4(0)),
        Just(Win::V4(u32::MAX - (W - 1))),
        any::<u32>().prop_map(|b| Win::V4(b & !(W - 1))),
        Just(Win::V6(0)),
        Just(Win::V6(u128::MAX - u128::from(W - 1))),
        any::<u128>().prop_map(|b| Win::V6(b & !u128::from(W - 1))),
    ]
}

fn ranges() -> impl Strategy<Value = Vec<(u32, u32)>> {
    prop::collection::vec((0..W, 0..W).prop_map(|(a, b)| (a.min(b), a.max(b))), 0..12)
}

fn bitmap(rs: &[(u32, u32)]) -> Vec<bool> {
    let mut m = vec![false; W as usize];
    for &(s, e) in rs {
        for x in s..=e {
            m[x as usize] = true;
        }
    }
    m
}

/// The minimal exact cover by recursion over the aligned blocks of the window: a block is
/// taken whole when fully set, skipped when empty, split otherwise. Returns (offset, size).
fn naive_cover(m: &[bool], off: u32, size: u32, out: &mut Vec<(u32, u32)>) {
    let slice = &m[off as usize..(off + size) as usize];
    if slice.iter().all(|&b| b) {
        out.push((off, size));
    } else if slice.iter().any(|&b| b) {
        naive_cover(m, off, size / 2, out);
        naive_cover(m, off + size / 2, size / 2, out);
    }
}

fn set_of(win: Win, rs: &[(u32, u32)]) -> RangeSet {
    RangeSet::from_ranges(rs.iter().map(|&(s, e)| (win.ip(s), win.ip(e)))).unwrap()
}

fn members(win: Win, s: &RangeSet) -> Vec<bool> {
    (0..W).map(|x| s.contains(win.ip(x))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn aggregation_is_the_unique_minimal_exact_cover(win in window(), rs in ranges()) {
        let m = bitmap(&rs);
        let mut want = Vec::new();
        naive_cover(&m, 0, W, &mut want);
        let want: Vec<String> = want
            .iter()
            .map(|&(off, size)| format!("{}/{}", win.ip(off), win.bits() - size.trailing_zeros() as u8))
            .collect();
        let got: Vec<String> = set_of(win, &rs).to_cidrs().nets().map(|n| n.to_string()).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn set_algebra_matches_the_bitmap(win in window(), a in ranges(), b in ranges()) {
        let (sa, sb) = (set_of(win, &a), set_of(win, &b));
        let (ma, mb) = (bitmap(&a), bitmap(&b));
        let zip = |f: fn(bool, bool) -> bool| -> Vec<bool> {
            ma.iter().zip(&mb).map(|(&x, &y)| f(x, y)).collect()
        };
        prop_assert_eq!(members(win, &sa.union(&sb)), zip(|x, y| x || y));
        prop_assert_eq!(members(win, &sa.difference(&sb)), zip(|x, y| x && !y));
        prop_assert_eq!(members(win, &sa.intersection(&sb)), zip(|x, y| x && y));
        // Nothing leaks out of the window.
        prop_assert!(!sa.union(&sb).contains(win.outside()));
    }
}

const CCS: [&str; 3] = ["AA", "BB", "CC"];

/// One source's entries: (start, end, country index), in file order.
fn entries() -> impl Strategy<Value = Vec<(u32, u32, usize)>> {
    prop::collection::vec(
        (0..W, 0..W, 0..CCS.len()).prop_map(|(a, b, c)| (a.min(b), a.max(b), c)),
        0..8,
    )
}

fn csv_source(win: Win, i: usize, es: &[(u32, u32, usize)]) -> Source {
    let text: String = es
        .iter()
        .map(|&(s, e, c)| format!("{},{},{}\n", win.ip(s), win.ip(e), CCS[c]))
        .collect();
    Source::from_bytes(
        Path::new(&format!("src{i}.csv")),
        text.into_bytes(),
        SourceKind::Csv,
        None,
    )
    .unwrap()
}

/// The model of one source: at each address the covering entry with the smallest range
/// wins, the earlier one between equal sizes.
fn naive_source(es: &[(u32, u32, usize)], x: u32) -> Option<usize> {
    es.iter()
        .enumerate()
        .filter(|(_, &(s, e, _))| s <= x && x <= e)
        .min_by_key(|(i, &(s, e, _))| (e - s, *i))
        .map(|(_, &(_, _, c))| c)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn sources_resolve_overlaps_and_disagreement_like_the_model(
        win in window(),
        srcs in prop::collection::vec(entries(), 1..4),
    ) {
        let db = GeoDb::new(srcs.iter().enumerate().map(|(i, e)| csv_source(win, i, e)).collect());
        let countries: Vec<CountryCode> = CCS.iter().map(|c| CountryCode::parse(c).unwrap()).collect();
        let sets: BTreeMap<Resolve, _> = [Resolve::First, Resolve::Any, Resolve::All]
            .into_iter()
            .map(|r| (r, country_sets_with(&db, &countries, r)))
            .collect();
        for x in 0..W {
            let ip = win.ip(x);
            let claims: Vec<Option<usize>> = srcs.iter().map(|e| naive_source(e, x)).collect();
            // Each source alone, and the lookup's per-source answers.
            let answers = db.lookup(ip);
            let got: Vec<(usize, String)> = answers
                .iter()
                .map(|a| (a.source_index, a.hit.country.unwrap().to_string()))
                .collect();
            let want: Vec<(usize, String)> = claims
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.map(|c| (i, CCS[c].to_string())))
                .collect();
            prop_assert_eq!(got, want);
            let first = claims.iter().flatten().next().copied();
            prop_assert_eq!(db.country(ip).map(|c| c.to_string()), first.map(|c| CCS[c].to_string()));
            for (ci, c) in countries.iter().enumerate() {
                let known: Vec<usize> = claims.iter().flatten().copied().collect();
                let want_first = first == Some(ci);
                let want_any = known.contains(&ci);
                let want_all = !known.is_empty() && known.iter().all(|&k| k == ci);
                for (r, want) in [(Resolve::First, want_first), (Resolve::Any, want_any), (Resolve::All, want_all)] {
                    let (v4, v6) = &sets[&r][c];
                    let inside = match ip {
                        IpAddr::V4(a) => v4.iter().any(|n| n.contains(&a)),
                        IpAddr::V6(a) => v6.iter().any(|n| n.contains(&a)),
                    };
                    prop_assert_eq!(inside, want, "{:?} {} at {}", r, c, ip);
                }
            }
        }
    }
}

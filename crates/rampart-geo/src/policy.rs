//! Country sets and policy compilation: countries in, minimal aggregated CIDR lists out.
//!
//! # Which country an address has when sources disagree
//!
//! A [`GeoDb`] holds its sources in precedence order. [`Resolve`] says how set building
//! reads them:
//!
//! - [`Resolve::First`] (the default): the first source that gives the address a country
//!   decides, exactly as [`GeoDb::country`] answers. With RIR files first this is the
//!   registration country ("who holds the block"); with a geolocation database first, the
//!   geolocated one.
//! - [`Resolve::Any`]: an address is in country X's set if *any* source says X. An address
//!   two sources disagree on is in both countries' sets. Safe for deny lists: nothing that
//!   any source places in a denied country gets through.
//! - [`Resolve::All`]: an address is in X's set only if *every* source that knows it says
//!   X. Strict for allow lists: only addresses all sources agree on are let in.
//!
//! A block that one source lists under several countries (overlapping entries) is resolved
//! inside that source first: the more specific entry wins (see [`crate::Source`]). An RIR
//! record has exactly one country; only allocated and assigned records give one (`ZZ`,
//! empty, available and reserved give none).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::addr::Addr;
use crate::aggregate::{normalize, push_merge, CidrSet, RangeSet};
use crate::table::sweep;
use crate::types::CountryCode;
use crate::GeoDb;

/// How set building reads sources that disagree (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Resolve {
    /// The first source (by precedence) that gives the address a country decides.
    #[default]
    First,
    /// In X's set if any source says X (deny lists).
    Any,
    /// In X's set only if every source that knows the address says X (strict allow lists).
    All,
}

/// Per-country interval lists of one family.
fn per_country<A: Addr>(
    merged: impl Iterator<Item = (A, A, CountryCode)>,
    views: impl Fn() -> Vec<Vec<(A, A, CountryCode)>>,
    resolve: Resolve,
    want: Option<&BTreeSet<CountryCode>>,
) -> HashMap<CountryCode, Vec<(A, A)>> {
    let wanted = |c: &CountryCode| want.is_none_or(|w| w.contains(c));
    // At most one entry per two-letter code (26 * 26); the lists are bounded by the
    // sources' entries, which the loaders bound by the file size.
    let mut out: HashMap<CountryCode, Vec<(A, A)>> = HashMap::new();
    if resolve == Resolve::First {
        for (s, e, c) in merged {
            if wanted(&c) {
                push_merge(out.entry(c).or_default(), s, e);
            }
        }
        return out;
    }
    // Any / All: sweep every source's view; each source's own view is disjoint, so at any
    // address at most one entry per source is active.
    let mut ccs: Vec<CountryCode> = Vec::new();
    let mut spans: Vec<(A, A, (usize, usize))> = Vec::new();
    for (i, v) in views().into_iter().enumerate() {
        for (s, e, c) in v {
            spans.push((s, e, (i, ccs.len())));
            ccs.push(c);
        }
    }
    let mut seen: Vec<CountryCode> = Vec::with_capacity(8);
    sweep(&spans, |s, e, active| {
        seen.clear();
        for &((_, k), _) in active {
            if !seen.contains(&ccs[k]) {
                seen.push(ccs[k]);
            }
        }
        let take = match resolve {
            Resolve::All if seen.len() > 1 => &seen[..0],
            _ => &seen[..],
        };
        for c in take {
            if wanted(c) {
                push_merge(out.entry(*c).or_default(), s, e);
            }
        }
    });
    out
}

fn country_map(
    db: &GeoDb,
    resolve: Resolve,
    want: Option<&BTreeSet<CountryCode>>,
) -> BTreeMap<CountryCode, RangeSet> {
    let v4 = per_country(
        db.merged_v4(),
        || db.sources().iter().map(|s| s.countries_v4()).collect(),
        resolve,
        want,
    );
    let v6 = per_country(
        db.merged_v6(),
        || db.sources().iter().map(|s| s.countries_v6()).collect(),
        resolve,
        want,
    );
    let mut out: BTreeMap<CountryCode, RangeSet> = BTreeMap::new();
    for (c, mut r) in v4 {
        normalize(&mut r);
        out.entry(c).or_default().v4 = r;
    }
    for (c, mut r) in v6 {
        normalize(&mut r);
        out.entry(c).or_default().v6 = r;
    }
    if let Some(w) = want {
        for c in w {
            out.entry(*c).or_default();
        }
    }
    out
}

/// The address ranges of each country in `countries` under `resolve` (a country the data
/// does not know gets an empty set).
pub fn country_ranges(
    db: &GeoDb,
    countries: &[CountryCode],
    resolve: Resolve,
) -> BTreeMap<CountryCode, RangeSet> {
    let want: BTreeSet<CountryCode> = countries.iter().copied().collect();
    country_map(db, resolve, Some(&want))
}

/// Each country's minimal aggregated IPv4 and IPv6 CIDR lists, by precedence
/// ([`Resolve::First`]).
pub fn country_sets(
    db: &GeoDb,
    countries: &[CountryCode],
) -> BTreeMap<CountryCode, (Vec<Ipv4Net>, Vec<Ipv6Net>)> {
    country_sets_with(db, countries, Resolve::First)
}

/// Each country's minimal aggregated IPv4 and IPv6 CIDR lists under `resolve`.
pub fn country_sets_with(
    db: &GeoDb,
    countries: &[CountryCode],
    resolve: Resolve,
) -> BTreeMap<CountryCode, (Vec<Ipv4Net>, Vec<Ipv6Net>)> {
    country_ranges(db, countries, resolve)
        .into_iter()
        .map(|(c, r)| {
            let s = r.to_cidrs();
            (c, (s.v4, s.v6))
        })
        .collect()
}

/// Every country's minimal aggregated CIDR lists under `resolve`, in one pass.
pub fn all_country_sets(db: &GeoDb, resolve: Resolve) -> BTreeMap<CountryCode, CidrSet> {
    country_map(db, resolve, None)
        .into_iter()
        .map(|(c, r)| (c, r.to_cidrs()))
        .collect()
}

/// How [`widen`] grows single addresses before aggregation (exact aggregation of scattered
/// addresses barely shrinks them; widening is a policy decision, not aggregation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Widen {
    /// Keep each address as it is (/32, /128).
    Exact,
    /// The delegated (allocated or assigned) RIR block holding the address; an address
    /// outside any delegated block stays exact.
    Registry,
    /// The enclosing prefix of the given length (e.g. /24 and /48).
    Prefix {
        /// IPv4 prefix length.
        v4: u8,
        /// IPv6 prefix length.
        v6: u8,
    },
    /// The delegated RIR block, else the enclosing prefix.
    RegistryOrPrefix {
        /// IPv4 prefix length.
        v4: u8,
        /// IPv6 prefix length.
        v6: u8,
    },
}

fn enclosing(ip: IpAddr, v4: u8, v6: u8) -> IpNet {
    match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new_assert(a, v4.min(32)).trunc()),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new_assert(a, v6.min(128)).trunc()),
    }
}

/// Grows each address as `how` says and returns the union (call
/// [`RangeSet::to_cidrs`] for the minimal CIDR list).
pub fn widen<I: IntoIterator<Item = IpAddr>>(db: &GeoDb, addrs: I, how: Widen) -> RangeSet {
    let mut v4: Vec<(u32, u32)> = Vec::new();
    let mut v6: Vec<(u128, u128)> = Vec::new();
    let mut push = |s: IpAddr, e: IpAddr| match (s, e) {
        (IpAddr::V4(s), IpAddr::V4(e)) => v4.push((s.into(), e.into())),
        (IpAddr::V6(s), IpAddr::V6(e)) => v6.push((s.into(), e.into())),
        _ => {}
    };
    for ip in addrs {
        let block = match how {
            Widen::Registry | Widen::RegistryOrPrefix { .. } => db
                .registry_block(ip)
                .filter(|b| b.is_delegated())
                .map(|b| (b.start, b.end)),
            _ => None,
        };
        match (block, how) {
            (Some((s, e)), _) => push(s, e),
            (None, Widen::Prefix { v4, v6 } | Widen::RegistryOrPrefix { v4, v6 }) => {
                let n = enclosing(ip, v4, v6);
                push(n.network(), n.broadcast());
            }
            (None, _) => push(ip, ip),
        }
    }
    normalize(&mut v4);
    normalize(&mut v6);
    RangeSet { v4, v6 }
}

/// Whether a policy lists the countries to let in or to keep out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyMode {
    /// Only the listed countries may connect.
    Allow,
    /// The listed countries may not connect.
    Deny,
}

/// A country policy to compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    /// Allow or deny the countries.
    pub mode: PolicyMode,
    /// The countries.
    pub countries: Vec<CountryCode>,
    /// Extra blocks treated as if they were in the listed countries (allowed with `Allow`,
    /// denied with `Deny`).
    pub also: Vec<IpNet>,
    /// Blocks taken out of the set whatever their country (never allowed with `Allow`,
    /// never denied with `Deny`).
    pub except: Vec<IpNet>,
    /// How sources that disagree are read (`Any` suits deny lists, `All` strict allow lists).
    pub resolve: Resolve,
}

/// A compiled policy: one address set to load into the kernel.
///
/// The set is always "the listed countries plus `also`, minus `except`". With
/// [`PolicyMode::Allow`] it holds the addresses to **accept** (the rule drops
/// `saddr != @set`); with [`PolicyMode::Deny`] the addresses to **drop** (`saddr == @set`).
/// Listing the allowed countries is 2-3 times smaller than listing everything else, and
/// addresses no source knows stay out of the set in both modes (dropped under Allow,
/// accepted under Deny): the caller decides by the mode, not by complementing the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledPolicy {
    /// The mode the set is for.
    pub mode: PolicyMode,
    /// The minimal aggregated CIDR lists.
    pub set: CidrSet,
    /// Listed countries the data has no address for (a typo, or data without them).
    pub unknown_countries: Vec<CountryCode>,
    /// IPv4 addresses in the set.
    pub addresses_v4: u64,
}

/// Compiles a policy into its minimal aggregated v4/v6 CIDR lists.
pub fn compile_policy(db: &GeoDb, spec: &PolicySpec) -> CompiledPolicy {
    let per = country_ranges(db, &spec.countries, spec.resolve);
    let mut set = RangeSet::from_nets(spec.also.iter().copied());
    let mut unknown = Vec::new();
    for (c, r) in &per {
        if r.is_empty() {
            unknown.push(*c);
        }
        set = set.union(r);
    }
    let set = set.difference(&RangeSet::from_nets(spec.except.iter().copied()));
    CompiledPolicy {
        mode: spec.mode,
        addresses_v4: set.count_v4(),
        set: set.to_cidrs(),
        unknown_countries: unknown,
    }
}

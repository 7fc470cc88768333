//! Firewall backends behind [`rampart_core::Backend`]:
//!
//! - [`NftBackend`] (the default): rampart's own nftables table, element changes over
//!   nf_tables netlink in one transaction per call;
//! - [`IpsetBackend`]: ipsets with per-element timeouts matched from rampart's own
//!   iptables/ip6tables chain, for hosts that run iptables;
//! - [`LogOnlyBackend`]: enforces nothing, remembers what it would enforce (`--dry-run`).
//!
//! - country policies ([`GeoPlan`]) through a [`GeoEnforcer`]: [`GeoNft`] (interval sets
//!   over netlink) or [`GeoIpset`] (`hash:net` + iptables).
//!
//! This is the only crate that spawns firewall tools or talks netlink. Set names derived
//! from jail names are described in [`names`].

mod error;
mod geo_ipset;
mod geo_nft;
mod ipset;
mod logonly;
pub mod names;
mod netlink;
mod nft;
mod process;

pub use error::EnforceError;
pub use geo_ipset::{GeoIpset, GeoIpsetConfig, GEO_IPT_CHAIN};
pub use geo_nft::{
    check_policy_name, GeoAction, GeoApplied, GeoEnforcer, GeoLogOnly, GeoNft, GeoNftConfig,
    GeoPlan, GeoRule, GEO_CHAIN, GEO_NAME_MAX, SEEN_SET_SIZE, SEEN_TIMEOUT,
};
pub use ipset::{IpsetBackend, IpsetConfig, IP6TABLES, IPSET, IPSET_MAX_TIMEOUT, IPTABLES};
pub use logonly::{LogOnlyBackend, LOG_ONLY_CAPACITY};
pub use nft::{NftBackend, NftConfig, TimeoutRefresh, NFT, NFT_MAX_TIMEOUT};

use std::collections::BTreeSet;

use rampart_core::Scope;

/// Checks what every backend needs of a scope list: one scope per jail, an IPv6 prefix in
/// 1..=128, port ranges with `first <= last`, and protocols whenever ports are given.
pub(crate) fn check_scopes(scopes: &[Scope]) -> Result<(), EnforceError> {
    let mut seen = BTreeSet::new();
    for s in scopes {
        let bad = |why: String| EnforceError::InvalidScope {
            jail: s.jail.clone(),
            why,
        };
        if !seen.insert(&s.jail) {
            return Err(bad("the jail appears twice".into()));
        }
        if !(1..=128).contains(&s.ipv6_prefix) {
            return Err(bad(format!(
                "ipv6_prefix {} is not in 1..=128",
                s.ipv6_prefix
            )));
        }
        if let Some(p) = s.ports.iter().find(|p| p.first > p.last) {
            return Err(bad(format!(
                "port range {}-{} is reversed",
                p.first, p.last
            )));
        }
        if !s.ports.is_empty() && s.protocols.is_empty() {
            return Err(bad("ports are given without a protocol".into()));
        }
    }
    Ok(())
}

/// Checks a configured table or chain name: `[A-Za-z][A-Za-z0-9_]{0,31}`.
pub(crate) fn validate_ident(what: &'static str, name: &str) -> Result<(), EnforceError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EnforceError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::{JailName, PortRange, Protocol};

    fn scope(jail: &str) -> Scope {
        Scope {
            jail: JailName::new(jail).unwrap(),
            protocols: vec![Protocol::Tcp],
            ports: vec![PortRange {
                first: 22,
                last: 22,
            }],
            ipv6_prefix: 64,
        }
    }

    #[test]
    fn scope_checks_reject_what_no_backend_can_express() {
        assert!(check_scopes(&[scope("a"), scope("b")]).is_ok());
        assert!(check_scopes(&[scope("a"), scope("a")]).is_err());
        let mut s = scope("a");
        s.ipv6_prefix = 0;
        assert!(check_scopes(&[s]).is_err());
        let mut s = scope("a");
        s.ipv6_prefix = 129;
        assert!(check_scopes(&[s]).is_err());
        let mut s = scope("a");
        s.ports = vec![PortRange {
            first: 30,
            last: 20,
        }];
        assert!(check_scopes(&[s]).is_err());
        let mut s = scope("a");
        s.protocols.clear();
        assert!(check_scopes(&[s]).is_err());
        let mut s = scope("a");
        s.protocols.clear();
        s.ports.clear();
        assert!(
            check_scopes(&[s]).is_ok(),
            "no ports: all traffic, protocols unused"
        );
    }

    #[test]
    fn identifiers_are_plain_words() {
        for good in ["rampart", "r_2", "T"] {
            assert!(validate_ident("table", good).is_ok(), "{good}");
        }
        for bad in ["", "2x", "a-b", "a b", "a;b", &"x".repeat(33)] {
            assert!(validate_ident("table", bad).is_err(), "{bad}");
        }
    }
}

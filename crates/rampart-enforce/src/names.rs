//! Kernel object names derived from jail names, and back.
//!
//! A [`JailName`] is `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`, which is safe inside both nftables
//! identifiers and ipset names; only the lengths need care.
//!
//! **nftables** (names up to 255 bytes, so the jail name is kept whole):
//! - IPv4 set: `j_<jail>_4` (`ipv4_addr`, `flags timeout`);
//! - IPv6 set: `j_<jail>_6p<prefix>` (`ipv6_addr`, `flags timeout`), holding the masked
//!   network addresses of `/<prefix>` offenders. The prefix is part of the name because the
//!   elements only mean something under the mask the rule applies: a jail whose prefix
//!   changes gets a new set, and the old one is deleted with its now meaningless elements.
//!
//! The two forms never collide: an IPv4 name ends in `_4`, an IPv6 name in `p` + digits.
//!
//! **ipset** (names at most 31 bytes):
//! - `rampart4_<jail>` / `rampart6_<jail>` when the jail name has at most 22 bytes;
//! - otherwise `rampart4h_<first 12 bytes of the jail>_<8 hex digits of FNV-1a-32 of the
//!   whole jail name>` (and `rampart6h_...`), exactly 31 bytes.
//!
//! Sets whose names start with `rampart4_`, `rampart6_`, `rampart4h_` or `rampart6h_` are
//! treated as rampart's own: `prepare` destroys those that no configured jail uses.

use rampart_core::JailName;

/// The nftables set holding a jail's IPv4 bans.
pub fn nft_set_v4(jail: &JailName) -> String {
    format!("j_{jail}_4")
}

/// The nftables set holding a jail's IPv6 bans, grouped by `/prefix`.
pub fn nft_set_v6(jail: &JailName, prefix: u8) -> String {
    format!("j_{jail}_6p{prefix}")
}

/// What an nftables set name says about its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NftSetKind {
    /// IPv4 addresses of this jail.
    V4(JailName),
    /// Masked IPv6 networks of this jail, of this prefix length.
    V6(JailName, u8),
}

/// Parses a name made by [`nft_set_v4`] or [`nft_set_v6`]; `None` for any other name.
pub fn parse_nft_set(name: &str) -> Option<NftSetKind> {
    let rest = name.strip_prefix("j_")?;
    if let Some(jail) = rest.strip_suffix("_4") {
        return JailName::new(jail).ok().map(NftSetKind::V4);
    }
    let (head, digits) = rest.rsplit_once("_6p")?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = digits.parse().ok()?;
    if !(1..=128).contains(&prefix) || digits.starts_with('0') {
        return None;
    }
    JailName::new(head).ok().map(|j| NftSetKind::V6(j, prefix))
}

/// The longest jail name kept whole in an ipset name.
const IPSET_WHOLE: usize = 22;
/// How much of a long jail name an ipset name keeps before the hash.
const IPSET_HEAD: usize = 12;

/// The ipset (`hash:ip`) holding a jail's IPv4 bans.
pub fn ipset_v4(jail: &JailName) -> String {
    ipset_name('4', jail)
}

/// The ipset (`hash:net family inet6`) holding a jail's IPv6 bans.
pub fn ipset_v6(jail: &JailName) -> String {
    ipset_name('6', jail)
}

fn ipset_name(family: char, jail: &JailName) -> String {
    let j = jail.as_str();
    if j.len() <= IPSET_WHOLE {
        format!("rampart{family}_{j}")
    } else {
        format!(
            "rampart{family}h_{}_{:08x}",
            &j[..IPSET_HEAD],
            fnv1a32(j.as_bytes())
        )
    }
}

/// Whether an ipset name is in rampart's reserved namespace.
pub fn is_rampart_ipset(name: &str) -> bool {
    ["rampart4_", "rampart6_", "rampart4h_", "rampart6h_"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// 32-bit FNV-1a.
pub(crate) fn fnv1a32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in data {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// 64-bit FNV-1a.
pub(crate) fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jail(s: &str) -> JailName {
        JailName::new(s).unwrap()
    }

    #[test]
    fn nft_names_round_trip_for_awkward_jail_names() {
        let long = "a".repeat(64);
        for name in [
            "sshd",
            "x_4",
            "x_6p64",
            "a.b-c_d",
            "9",
            "j_4",
            "y_6p4",
            long.as_str(),
        ] {
            let j = jail(name);
            assert_eq!(
                parse_nft_set(&nft_set_v4(&j)),
                Some(NftSetKind::V4(j.clone())),
                "{name}"
            );
            for p in [1, 4, 48, 64, 128] {
                assert_eq!(
                    parse_nft_set(&nft_set_v6(&j, p)),
                    Some(NftSetKind::V6(j.clone(), p)),
                    "{name} /{p}"
                );
            }
        }
    }

    #[test]
    fn foreign_nft_names_are_not_rampart_sets() {
        for name in [
            "blocklist",
            "j_",
            "j__4",
            "j_x_6p",
            "j_x_6p0",
            "j_x_6p129",
            "j_x_6p064",
            "x_4",
        ] {
            assert_eq!(parse_nft_set(name), None, "{name}");
        }
    }

    #[test]
    fn ipset_names_fit_31_bytes_and_stay_distinct() {
        let short = jail("sshd");
        assert_eq!(ipset_v4(&short), "rampart4_sshd");
        assert_eq!(ipset_v6(&short), "rampart6_sshd");
        let w22 = jail(&"b".repeat(22));
        assert_eq!(ipset_v4(&w22).len(), 31);
        let a = jail(&format!("{}-one", "c".repeat(40)));
        let b = jail(&format!("{}-two", "c".repeat(40)));
        for j in [&a, &b] {
            assert_eq!(ipset_v4(j).len(), 31);
            assert_eq!(ipset_v6(j).len(), 31);
            assert!(is_rampart_ipset(&ipset_v4(j)));
        }
        assert_ne!(ipset_v4(&a), ipset_v4(&b));
        assert!(!is_rampart_ipset("blocklist"));
        assert!(!is_rampart_ipset("rampart_other"));
    }
}

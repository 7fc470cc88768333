//! rampart-geo: registry and country data -> lookups, an offline whois, and aggregated CIDR
//! sets for kernel address sets.
//!
//! Sources ([`Source`]) are loaded from RIR delegated-extended files ([`RirFile`]), country
//! prefix lists, MaxMind DB country databases ([`mmdb`]) and `start,end,cc` CSV range files,
//! plain or gzip. A [`GeoDb`] combines them in precedence order:
//!
//! - [`GeoDb::lookup`] gives every source's answer for an address (the offline whois: for
//!   an RIR file the registry, country, block and its CIDRs, status, date and holder id);
//! - [`GeoDb::country`] / [`GeoDb::locate`] give the country by precedence with one search
//!   (for the daemon: share the database as `Arc<GeoDb>`), and
//!   [`GeoDb::registry_block`] the registry allocation of an address;
//! - [`GeoDb::holder_blocks`] lists a holder's blocks.
//!
//! [`country_sets`], [`compile_policy`] and [`widen`] build minimal aggregated CIDR lists
//! ([`CidrSet`]) for nftables interval sets or ipset `hash:net`; [`policy`] documents the
//! rule for sources that disagree. [`update`] fetches the RIR files into a cache directory
//! and reports what changed.
#![warn(missing_docs)]

mod addr;
pub mod aggregate;
mod db;
mod error;
mod input;
pub mod mmdb;
pub mod policy;
mod prefix;
pub mod rir;
mod table;
mod types;
pub mod update;

pub use aggregate::{aggregate, range_to_cidrs, CidrSet, RangeSet};
pub use db::{
    sniff_kind, Answer, GeoDb, Located, Precedence, Source, SourceHit, SourceInfo, SourceKind,
};
pub use error::GeoError;
pub use input::read_file;
pub use policy::{
    all_country_sets, compile_policy, country_ranges, country_sets, country_sets_with, widen,
    CompiledPolicy, PolicyMode, PolicySpec, Resolve, Widen,
};
pub use prefix::country_from_file_name;
pub use rir::{RirBlock, RirFile, RirHeader};
pub use types::{CountryCode, Registry, RirDate, Status};

//! Sources and the combined database.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::addr::Addr;
use crate::input::read_file;
use crate::mmdb::Mmdb;
use crate::prefix::{parse_csv, parse_prefix_list, CountryEntries};
use crate::rir::{RirBlock, RirFile};
use crate::table::{flatten, Table};
use crate::types::{CountryCode, Registry};
use crate::GeoError;

/// What kind of file a source was loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// An RIR delegated-extended statistics file: registration data (country of the holder,
    /// block, status, date, holder id).
    Rir,
    /// A country prefix list (`cc<TAB>prefix` or one prefix per line).
    PrefixList,
    /// A MaxMind DB country database (geolocation).
    Mmdb,
    /// A `start,end,cc` CSV range file (geolocation, e.g. DB-IP Lite).
    Csv,
}

impl SourceKind {
    /// `rir`, `prefix-list`, `mmdb` or `csv`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Rir => "rir",
            SourceKind::PrefixList => "prefix-list",
            SourceKind::Mmdb => "mmdb",
            SourceKind::Csv => "csv",
        }
    }

    /// Whether the source states registration (RIR files and the prefix lists derived from
    /// them) rather than geolocation (MaxMind DB, CSV ranges).
    pub fn is_registration(&self) -> bool {
        matches!(self, SourceKind::Rir | SourceKind::PrefixList)
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a source came from and how big it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The file.
    pub path: PathBuf,
    /// The format.
    pub kind: SourceKind,
    /// The registry, for an RIR file.
    pub registry: Option<Registry>,
    /// `database_type` of a MaxMind DB.
    pub database_type: Option<String>,
    /// Lookup entries (ranges) for IPv4.
    pub entries_v4: usize,
    /// Lookup entries (ranges) for IPv6.
    pub entries_v6: usize,
}

impl SourceInfo {
    /// The file name (the whole path if it has none).
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

#[derive(Debug, Clone)]
enum Data {
    Rir {
        file: Box<RirFile>,
        /// Value: index into the file's records of the family.
        t4: Table<u32, u32>,
        t6: Table<u128, u32>,
    },
    Country {
        t4: Table<u32, CountryCode>,
        t6: Table<u128, CountryCode>,
    },
}

/// One loaded source: its info and a lookup table per family.
#[derive(Debug, Clone)]
pub struct Source {
    info: SourceInfo,
    data: Data,
}

/// Overlapping entries inside one source: the smaller range wins (the more specific
/// prefix), and between equal sizes the earlier entry in the file.
fn resolve_overlaps<A: Addr, V: Copy>(items: impl Iterator<Item = (A, A, V)>) -> Table<A, V> {
    let items: Vec<(A, A, V, (A, usize))> = items
        .enumerate()
        .map(|(i, (s, e, v))| (s, e, v, (e.minus(s), i)))
        .collect();
    Table::from_disjoint(flatten(items))
}

/// Guesses a file's kind: `.mmdb` (or a MaxMind metadata marker), else by the first line
/// that is not a comment: `|` means a delegated file, `,` a CSV range file, anything else a
/// prefix list.
pub fn sniff_kind(path: &Path, bytes: &[u8]) -> SourceKind {
    let name = path.to_string_lossy();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let tail = &bytes[bytes.len().saturating_sub(128 * 1024)..];
    if name.ends_with(".mmdb") || tail.windows(14).any(|w| w == b"\xAB\xCD\xEFMaxMind.com") {
        return SourceKind::Mmdb;
    }
    let first = bytes
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l).trim().to_string())
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .unwrap_or_default();
    if first.contains('|') {
        SourceKind::Rir
    } else if first.contains(',') {
        SourceKind::Csv
    } else {
        SourceKind::PrefixList
    }
}

impl Source {
    /// Loads a file of any supported kind (plain or gzip), guessing the kind with
    /// [`sniff_kind`]. Bare prefixes in a prefix list take their country from the file name.
    pub fn load(path: &Path) -> Result<Source, GeoError> {
        let bytes = read_file(path)?;
        let kind = sniff_kind(path, &bytes);
        Source::from_bytes(path, bytes, kind, None)
    }

    /// Loads a file as the given kind; `country` is the country of bare prefixes in a
    /// prefix list (default: from the file name).
    pub fn load_as(
        path: &Path,
        kind: SourceKind,
        country: Option<CountryCode>,
    ) -> Result<Source, GeoError> {
        Source::from_bytes(path, read_file(path)?, kind, country)
    }

    /// Builds a source from a file's (decompressed) bytes; `path` names it in answers and
    /// errors.
    pub fn from_bytes(
        path: &Path,
        bytes: Vec<u8>,
        kind: SourceKind,
        country: Option<CountryCode>,
    ) -> Result<Source, GeoError> {
        match kind {
            SourceKind::Rir => Ok(Source::from_rir(RirFile::parse(path, &bytes)?)),
            SourceKind::PrefixList => Ok(Source::from_entries(
                path,
                kind,
                None,
                parse_prefix_list(path, &bytes, country)?,
            )),
            SourceKind::Csv => Ok(Source::from_entries(
                path,
                kind,
                None,
                parse_csv(path, &bytes)?,
            )),
            SourceKind::Mmdb => {
                let db = Mmdb::from_bytes(path, bytes)?;
                let entries = db.country_entries()?;
                Ok(Source::from_entries(
                    path,
                    kind,
                    Some(db.metadata().database_type.clone()),
                    entries,
                ))
            }
        }
    }

    /// A source from a parsed delegated file.
    pub fn from_rir(file: RirFile) -> Source {
        let t4 = resolve_overlaps(
            file.v4
                .iter()
                .enumerate()
                .map(|(i, r)| (r.start, r.end, i as u32)),
        );
        let t6 = resolve_overlaps(
            file.v6
                .iter()
                .enumerate()
                .map(|(i, r)| (r.start, r.end, i as u32)),
        );
        Source {
            info: SourceInfo {
                path: file.path().to_path_buf(),
                kind: SourceKind::Rir,
                registry: file.registry(),
                database_type: None,
                entries_v4: t4.len(),
                entries_v6: t6.len(),
            },
            data: Data::Rir {
                file: Box::new(file),
                t4,
                t6,
            },
        }
    }

    fn from_entries(
        path: &Path,
        kind: SourceKind,
        database_type: Option<String>,
        e: CountryEntries,
    ) -> Source {
        let t4 = resolve_overlaps(e.v4.into_iter());
        let t6 = resolve_overlaps(e.v6.into_iter());
        Source {
            info: SourceInfo {
                path: path.to_path_buf(),
                kind,
                registry: None,
                database_type,
                entries_v4: t4.len(),
                entries_v6: t6.len(),
            },
            data: Data::Country { t4, t6 },
        }
    }

    /// Where the source came from.
    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// The delegated file, for an RIR source.
    pub fn rir(&self) -> Option<&RirFile> {
        match &self.data {
            Data::Rir { file, .. } => Some(file),
            Data::Country { .. } => None,
        }
    }

    /// What this source says about `ip`: the entry holding it (with the RIR block for a
    /// delegated file), or `None`. An IPv4-mapped IPv6 address is looked up as IPv4.
    pub fn find(&self, ip: IpAddr) -> Option<SourceHit<'_>> {
        match (&self.data, ip.to_canonical()) {
            (Data::Rir { file, t4, .. }, IpAddr::V4(a)) => {
                let (s, e, r) = t4.get(t4.find(u32::from(a))?);
                let block = file.block_v4(r as usize);
                Some(SourceHit {
                    country: file.v4[r as usize].country(),
                    start: s.ip(),
                    end: e.ip(),
                    block: Some(block),
                })
            }
            (Data::Rir { file, t6, .. }, IpAddr::V6(a)) => {
                let (s, e, r) = t6.get(t6.find(u128::from(a))?);
                Some(SourceHit {
                    country: file.v6[r as usize].country(),
                    start: s.ip(),
                    end: e.ip(),
                    block: Some(file.block_v6(r as usize)),
                })
            }
            (Data::Country { t4, .. }, IpAddr::V4(a)) => {
                let (s, e, c) = t4.get(t4.find(u32::from(a))?);
                Some(SourceHit {
                    country: Some(c),
                    start: s.ip(),
                    end: e.ip(),
                    block: None,
                })
            }
            (Data::Country { t6, .. }, IpAddr::V6(a)) => {
                let (s, e, c) = t6.get(t6.find(u128::from(a))?);
                Some(SourceHit {
                    country: Some(c),
                    start: s.ip(),
                    end: e.ip(),
                    block: None,
                })
            }
        }
    }

    /// The country of `ip` in this source alone (allocation-free).
    #[inline]
    pub fn country(&self, ip: IpAddr) -> Option<CountryCode> {
        match (&self.data, ip.to_canonical()) {
            (Data::Rir { file, t4, .. }, IpAddr::V4(a)) => {
                let (_, _, r) = t4.get(t4.find(u32::from(a))?);
                file.v4[r as usize].country()
            }
            (Data::Rir { file, t6, .. }, IpAddr::V6(a)) => {
                let (_, _, r) = t6.get(t6.find(u128::from(a))?);
                file.v6[r as usize].country()
            }
            (Data::Country { t4, .. }, IpAddr::V4(a)) => Some(t4.get(t4.find(u32::from(a))?).2),
            (Data::Country { t6, .. }, IpAddr::V6(a)) => Some(t6.get(t6.find(u128::from(a))?).2),
        }
    }

    /// An RIR source's lookup entries with their record index, ascending and disjoint.
    fn rir_entries<A: Addr>(t: &Table<A, u32>) -> Vec<(A, A, u32)> {
        t.iter().collect()
    }

    /// The ranges that have a country in this source, ascending and disjoint.
    pub(crate) fn countries_v4(&self) -> Vec<(u32, u32, CountryCode)> {
        match &self.data {
            Data::Rir { file, t4, .. } => t4
                .iter()
                .filter_map(|(s, e, r)| file.v4[r as usize].country().map(|c| (s, e, c)))
                .collect(),
            Data::Country { t4, .. } => t4.iter().collect(),
        }
    }

    /// The ranges that have a country in this source, ascending and disjoint.
    pub(crate) fn countries_v6(&self) -> Vec<(u128, u128, CountryCode)> {
        match &self.data {
            Data::Rir { file, t6, .. } => t6
                .iter()
                .filter_map(|(s, e, r)| file.v6[r as usize].country().map(|c| (s, e, c)))
                .collect(),
            Data::Country { t6, .. } => t6.iter().collect(),
        }
    }
}

/// One source's entry for an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceHit<'a> {
    /// The country the source gives the address: for an RIR file, the registration country
    /// of a delegated block (none for available/reserved space or `ZZ`).
    pub country: Option<CountryCode>,
    /// The first address of the entry (for an RIR file, of the part of the block the lookup
    /// table holds; the same as the block unless blocks overlap).
    pub start: IpAddr,
    /// The last address of the entry.
    pub end: IpAddr,
    /// The delegated block, for an RIR source.
    pub block: Option<RirBlock<'a>>,
}

/// One source's answer in [`GeoDb::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The source's position in the database (its precedence: 0 decides first).
    pub source_index: usize,
    /// The source.
    pub source: &'a SourceInfo,
    /// What it says.
    pub hit: SourceHit<'a>,
}

impl Answer<'_> {
    /// The entry as CIDRs (for an RIR source, the block's CIDRs).
    pub fn cidrs(&self) -> Vec<IpNet> {
        match &self.hit.block {
            Some(b) => b.cidrs(),
            None => {
                crate::aggregate::range_to_cidrs(self.hit.start, self.hit.end).unwrap_or_default()
            }
        }
    }
}

/// The country an address gets under precedence, and which source said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// The country.
    pub country: CountryCode,
    /// The index of the deciding source in [`GeoDb::sources`].
    pub source: usize,
}

/// How [`GeoDb::with_precedence`] orders sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precedence {
    /// The order given.
    AsGiven,
    /// Registration sources (RIR files, prefix lists) before geolocation (MaxMind DB, CSV):
    /// "who holds the block". Stable within each group.
    RegistryFirst,
    /// Geolocation before registration: "where the address is used". Stable within each
    /// group.
    GeolocationFirst,
}

/// Several sources combined. Every source keeps its own table so [`GeoDb::lookup`] can show
/// what each says; a merged table answers "which country, by precedence" in one search.
///
/// The precedence rule: sources are ordered (see [`Precedence`]); for an address, the first
/// source that gives it a country decides ([`GeoDb::country`], [`GeoDb::locate`], and
/// [`crate::Resolve::First`] in set building). Sources that disagree are all visible in
/// [`GeoDb::lookup`], and [`crate::Resolve::Any`] / [`crate::Resolve::All`] build sets
/// from the union or the agreement of the sources instead.
///
/// Cheap to share: wrap it in an `Arc` and call the `&self` methods from any thread.
#[derive(Debug, Clone, Default)]
pub struct GeoDb {
    sources: Vec<Source>,
    /// Merged by precedence: value (source index, country).
    r4: Table<u32, (u16, CountryCode)>,
    r6: Table<u128, (u16, CountryCode)>,
    /// The RIR sources' blocks (every status) merged by precedence: value (source index,
    /// record index).
    b4: Table<u32, (u16, u32)>,
    b6: Table<u128, (u16, u32)>,
}

/// One RIR source's lookup entries (start, end, record index), with the source's index.
type BlockView<A> = (u16, Vec<(A, A, u32)>);

fn merged_blocks<A: Addr>(views: Vec<BlockView<A>>) -> Table<A, (u16, u32)> {
    let items: Vec<(A, A, (u16, u32), u16)> = views
        .into_iter()
        .flat_map(|(i, v)| v.into_iter().map(move |(s, e, r)| (s, e, (i, r), i)))
        .collect();
    Table::from_disjoint(flatten(items))
}

fn merged<A: Addr>(views: Vec<Vec<(A, A, CountryCode)>>) -> Table<A, (u16, CountryCode)> {
    let items: Vec<(A, A, (u16, CountryCode), u16)> = views
        .into_iter()
        .enumerate()
        .flat_map(|(i, v)| {
            let i = i as u16;
            v.into_iter().map(move |(s, e, c)| (s, e, (i, c), i))
        })
        .collect();
    Table::from_disjoint(flatten(items))
}

impl GeoDb {
    /// Combines sources; their order is the precedence (see [`GeoDb::with_precedence`]).
    /// At most 65,535 sources.
    pub fn new(sources: Vec<Source>) -> GeoDb {
        let mut sources = sources;
        sources.truncate(u16::MAX as usize);
        let r4 = merged(sources.iter().map(Source::countries_v4).collect());
        let r6 = merged(sources.iter().map(Source::countries_v6).collect());
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            if let Data::Rir { t4, t6, .. } = &s.data {
                v4.push((i as u16, Source::rir_entries(t4)));
                v6.push((i as u16, Source::rir_entries(t6)));
            }
        }
        GeoDb {
            sources,
            r4,
            r6,
            b4: merged_blocks(v4),
            b6: merged_blocks(v6),
        }
    }

    /// Combines sources, reordered by `precedence`.
    pub fn with_precedence(mut sources: Vec<Source>, precedence: Precedence) -> GeoDb {
        match precedence {
            Precedence::AsGiven => {}
            Precedence::RegistryFirst => sources.sort_by_key(|s| !s.info.kind.is_registration()),
            Precedence::GeolocationFirst => sources.sort_by_key(|s| s.info.kind.is_registration()),
        }
        GeoDb::new(sources)
    }

    /// Loads every file (kind guessed by [`sniff_kind`]) in the given order.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<GeoDb, GeoError> {
        let sources = paths
            .iter()
            .map(|p| Source::load(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GeoDb::new(sources))
    }

    /// The sources, in precedence order.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Whether there is no source.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// One answer per source that knows the address (for an RIR file that includes
    /// available and reserved space, which has no country), in precedence order.
    pub fn lookup(&self, ip: IpAddr) -> Vec<Answer<'_>> {
        self.sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.find(ip).map(|hit| Answer {
                    source_index: i,
                    source: &s.info,
                    hit,
                })
            })
            .collect()
    }

    /// The country of `ip` by precedence and the source that decided: one search in the
    /// merged table, no allocation.
    #[inline]
    pub fn locate(&self, ip: IpAddr) -> Option<Located> {
        let (src, country) = match ip.to_canonical() {
            IpAddr::V4(a) => self.r4.get(self.r4.find(u32::from(a))?).2,
            IpAddr::V6(a) => self.r6.get(self.r6.find(u128::from(a))?).2,
        };
        Some(Located {
            country,
            source: usize::from(src),
        })
    }

    /// The country of `ip` by precedence.
    #[inline]
    pub fn country(&self, ip: IpAddr) -> Option<CountryCode> {
        self.locate(ip).map(|l| l.country)
    }

    /// The registry block holding `ip`: the first RIR source (by precedence) with a block
    /// for it, of any status. One search in a merged table.
    #[inline]
    pub fn registry_block(&self, ip: IpAddr) -> Option<RirBlock<'_>> {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let (src, r) = self.b4.get(self.b4.find(u32::from(a))?).2;
                Some(self.sources[usize::from(src)].rir()?.block_v4(r as usize))
            }
            IpAddr::V6(a) => {
                let (src, r) = self.b6.get(self.b6.find(u128::from(a))?).2;
                Some(self.sources[usize::from(src)].rir()?.block_v6(r as usize))
            }
        }
    }

    /// Every block of a holder in the RIR sources of `registry`. Holder ids are only
    /// meaningful within one file: with several files of the same registry loaded, each
    /// file's blocks for that id are listed (duplicates removed).
    pub fn holder_blocks(&self, registry: Registry, holder: &str) -> Vec<RirBlock<'_>> {
        let mut out: Vec<RirBlock<'_>> = Vec::new();
        for s in &self.sources {
            let Some(f) = s.rir() else { continue };
            for b in f.holder_blocks(holder) {
                if b.registry == registry
                    && !out.iter().any(|o| o.start == b.start && o.end == b.end)
                {
                    out.push(b);
                }
            }
        }
        out
    }

    /// The merged (precedence) view: ranges with a country, ascending and disjoint.
    pub(crate) fn merged_v4(&self) -> impl Iterator<Item = (u32, u32, CountryCode)> + '_ {
        self.r4.iter().map(|(s, e, (_, c))| (s, e, c))
    }

    /// The merged (precedence) view for IPv6.
    pub(crate) fn merged_v6(&self) -> impl Iterator<Item = (u128, u128, CountryCode)> + '_ {
        self.r6.iter().map(|(s, e, (_, c))| (s, e, c))
    }
}

//! MaxMind DB (`.mmdb`) country databases: a small reader written from the format spec
//! (MaxMind DB v2: a binary search tree, a 16-byte separator, a typed data section, and a
//! metadata map after the `\xAB\xCD\xEFMaxMind.com` marker), and a writer for country
//! databases that the tests use to build files the reader is checked against.
//!
//! Country databases come in two layouts, both read here: GeoIP2/GeoLite2/DB-IP
//! (`{"country": {"iso_code": "DE", ...}, "registered_country": {...}}`) and the flat
//! ip-location-db one (`{"country_code": "DE"}`).
//!
//! [`Mmdb::country_entries`] walks the whole tree once and turns it into ranges, so a
//! database joins a [`crate::GeoDb`] like every other source and is looked up with the same
//! sorted-range search. In a tree of `ip_version` 6 the IPv4 space is the subtree at `::/96`;
//! the aliases that point into it (`::ffff:0:0/96`, `2002::/16`) are skipped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::prefix::CountryEntries;
use crate::types::CountryCode;
use crate::GeoError;

/// The marker that starts the metadata section.
const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// The metadata section is at most this far from the end of the file (spec: 128 KiB).
const METADATA_MAX: usize = 128 * 1024;
/// Nesting deeper than this in the data section is refused (a hostile file could recurse).
const MAX_DEPTH: u32 = 32;

/// A decoded value from the data section.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A map with string keys, in file order.
    Map(Vec<(String, Value)>),
    /// An array.
    Array(Vec<Value>),
    /// A UTF-8 string.
    String(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// Any unsigned integer type (uint16, uint32, uint64, uint128).
    Uint(u128),
    /// A signed 32-bit integer.
    Int(i32),
    /// A double.
    Double(f64),
    /// A float.
    Float(f32),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The value under `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The unsigned integer, if this is one.
    pub fn as_uint(&self) -> Option<u128> {
        match self {
            Value::Uint(u) => Some(*u),
            _ => None,
        }
    }
}

/// The country a data record names: `country.iso_code` (GeoIP2, GeoLite2, DB-IP), else
/// `country_code` (ip-location-db), else `registered_country.iso_code`.
pub fn country_of(v: &Value) -> Option<CountryCode> {
    let iso = |k: &str| {
        v.get(k)
            .and_then(|c| c.get("iso_code"))
            .and_then(Value::as_str)
    };
    iso("country")
        .or_else(|| v.get("country_code").and_then(Value::as_str))
        .or_else(|| iso("registered_country"))
        .and_then(CountryCode::parse)
}

/// The metadata map's fields this reader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The number of nodes in the search tree.
    pub node_count: u32,
    /// Bits per record: 24, 28 or 32.
    pub record_size: u16,
    /// 4 (IPv4 tree) or 6 (IPv6 tree, IPv4 under `::/96`).
    pub ip_version: u16,
    /// `database_type`, e.g. `GeoLite2-Country` or `DBIP-Country-Lite`.
    pub database_type: String,
    /// `build_epoch`, seconds since 1970.
    pub build_epoch: u64,
    /// `binary_format_major_version` (must be 2).
    pub major_version: u16,
}

/// An opened MaxMind DB file (held in memory).
#[derive(Debug, Clone)]
pub struct Mmdb {
    path: PathBuf,
    buf: Vec<u8>,
    meta: Metadata,
    /// Where the data section starts and ends in `buf`.
    data: (usize, usize),
}

/// Decodes values from one section (the data section or the metadata section); pointers
/// are offsets from the section's start.
struct Decoder<'a> {
    s: &'a [u8],
}

impl Decoder<'_> {
    fn byte(&self, off: usize) -> Result<u8, String> {
        self.s
            .get(off)
            .copied()
            .ok_or_else(|| format!("data runs past its section at offset {off}"))
    }

    fn bytes(&self, off: usize, n: usize) -> Result<&[u8], String> {
        off.checked_add(n)
            .and_then(|end| self.s.get(off..end))
            .ok_or_else(|| format!("a {n}-byte field at offset {off} runs past its section"))
    }

    fn be(&self, off: usize, n: usize) -> Result<u128, String> {
        Ok(self
            .bytes(off, n)?
            .iter()
            .fold(0u128, |acc, &b| (acc << 8) | u128::from(b)))
    }

    /// Decodes the value at `off`; returns it and the offset after it.
    fn decode(&self, off: usize, depth: u32) -> Result<(Value, usize), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "values nest deeper than {MAX_DEPTH} at offset {off}"
            ));
        }
        let ctrl = self.byte(off)?;
        let mut p = off + 1;
        let mut ty = ctrl >> 5;
        if ty == 1 {
            // Pointer: 001SSVVV.
            let ss = usize::from((ctrl >> 3) & 3);
            let vvv = u128::from(ctrl & 7);
            let raw = self.be(p, ss + 1)?;
            let target = match ss {
                0 => (vvv << 8) | raw,
                1 => ((vvv << 16) | raw) + 2048,
                2 => ((vvv << 24) | raw) + 526_336,
                _ => raw,
            };
            let target = usize::try_from(target).map_err(|_| "pointer too large".to_string())?;
            let (v, _) = self.decode(target, depth + 1)?;
            return Ok((v, p + ss + 1));
        }
        if ty == 0 {
            ty = 7u8
                .checked_add(self.byte(p)?)
                .filter(|t| (8..=15).contains(t))
                .ok_or_else(|| format!("unknown extended type at offset {off}"))?;
            p += 1;
        }
        let mut size = usize::from(ctrl & 0x1f);
        if size >= 29 {
            let n = size - 28;
            let extra = self.be(p, n)? as usize;
            size = match n {
                1 => 29 + extra,
                2 => 285 + extra,
                _ => 65_821 + extra,
            };
            p += n;
        }
        let remaining = self.s.len().saturating_sub(p);
        let v = match ty {
            2 => {
                let b = self.bytes(p, size)?;
                p += size;
                Value::String(
                    std::str::from_utf8(b)
                        .map_err(|_| format!("string at offset {off} is not UTF-8"))?
                        .to_string(),
                )
            }
            3 | 15 => {
                let want = if ty == 3 { 8 } else { 4 };
                if size != want {
                    return Err(format!(
                        "a {want}-byte float of size {size} at offset {off}"
                    ));
                }
                let b = self.bytes(p, size)?;
                p += size;
                if ty == 3 {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Value::Double(f64::from_be_bytes(a))
                } else {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(b);
                    Value::Float(f32::from_be_bytes(a))
                }
            }
            4 => {
                let b = self.bytes(p, size)?.to_vec();
                p += size;
                Value::Bytes(b)
            }
            5 | 6 | 9 | 10 | 8 => {
                let max = match ty {
                    5 => 2,
                    6 | 8 => 4,
                    9 => 8,
                    _ => 16,
                };
                if size > max {
                    return Err(format!(
                        "a {size}-byte integer of type {ty} at offset {off}"
                    ));
                }
                let u = self.be(p, size)?;
                p += size;
                if ty == 8 {
                    Value::Int(u as u32 as i32)
                } else {
                    Value::Uint(u)
                }
            }
            7 => {
                if size > remaining {
                    return Err(format!("map of {size} pairs at offset {off} is too large"));
                }
                let mut m = Vec::with_capacity(size);
                for _ in 0..size {
                    let (k, np) = self.decode(p, depth + 1)?;
                    let Value::String(k) = k else {
                        return Err(format!("map key at offset {p} is not a string"));
                    };
                    let (v, np) = self.decode(np, depth + 1)?;
                    p = np;
                    m.push((k, v));
                }
                Value::Map(m)
            }
            11 => {
                if size > remaining {
                    return Err(format!(
                        "array of {size} items at offset {off} is too large"
                    ));
                }
                let mut a = Vec::with_capacity(size);
                for _ in 0..size {
                    let (v, np) = self.decode(p, depth + 1)?;
                    p = np;
                    a.push(v);
                }
                Value::Array(a)
            }
            14 => Value::Bool(size != 0),
            _ => return Err(format!("unexpected type {ty} at offset {off}")),
        };
        Ok((v, p))
    }
}

impl Mmdb {
    /// Reads a `.mmdb` file (or a gzip of one).
    pub fn open(path: &Path) -> Result<Mmdb, GeoError> {
        Mmdb::from_bytes(path, crate::input::read_file(path)?)
    }

    /// Parses a database held in memory; `path` is only used in errors.
    pub fn from_bytes(path: &Path, buf: Vec<u8>) -> Result<Mmdb, GeoError> {
        let bad = |m: String| GeoError::format(path, format!("not a MaxMind DB file: {m}"));
        let tail_start = buf.len().saturating_sub(METADATA_MAX);
        let marker = buf[tail_start..]
            .windows(METADATA_MARKER.len())
            .rposition(|w| w == METADATA_MARKER)
            .map(|i| tail_start + i)
            .ok_or_else(|| bad("no metadata marker".into()))?;
        let meta_start = marker + METADATA_MARKER.len();
        let (m, _) = Decoder {
            s: &buf[meta_start..],
        }
        .decode(0, 0)
        .map_err(|e| bad(format!("metadata: {e}")))?;
        let uint = |k: &str| -> Result<u128, GeoError> {
            m.get(k)
                .and_then(Value::as_uint)
                .ok_or_else(|| bad(format!("metadata has no unsigned `{k}`")))
        };
        let meta = Metadata {
            node_count: u32::try_from(uint("node_count")?)
                .map_err(|_| bad("node_count too large".into()))?,
            record_size: uint("record_size")? as u16,
            ip_version: uint("ip_version")? as u16,
            database_type: m
                .get("database_type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            build_epoch: m.get("build_epoch").and_then(Value::as_uint).unwrap_or(0) as u64,
            major_version: uint("binary_format_major_version")? as u16,
        };
        if meta.major_version != 2 {
            return Err(bad(format!(
                "format version {} (expected 2)",
                meta.major_version
            )));
        }
        if !matches!(meta.record_size, 24 | 28 | 32) {
            return Err(bad(format!(
                "record size {} (expected 24, 28 or 32)",
                meta.record_size
            )));
        }
        if !matches!(meta.ip_version, 4 | 6) {
            return Err(bad(format!("ip_version {}", meta.ip_version)));
        }
        let tree = u64::from(meta.node_count) * u64::from(meta.record_size) / 4;
        let data_start = usize::try_from(tree + 16)
            .ok()
            .filter(|&d| d <= marker)
            .ok_or_else(|| bad(format!("{} nodes do not fit in the file", meta.node_count)))?;
        Ok(Mmdb {
            path: path.to_path_buf(),
            buf,
            meta,
            data: (data_start, marker),
        })
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, m: String) -> GeoError {
        GeoError::format(&self.path, m)
    }

    /// Record `bit` (0 = left, 1 = right) of node `n`.
    fn record(&self, n: u32, bit: u8) -> u32 {
        let n = n as usize;
        let b = &self.buf;
        let rd = |o: usize, len: usize| {
            b[o..o + len]
                .iter()
                .fold(0u32, |acc, &x| (acc << 8) | u32::from(x))
        };
        match self.meta.record_size {
            24 => rd(n * 6 + 3 * usize::from(bit), 3),
            28 => {
                let o = n * 7;
                if bit == 0 {
                    (u32::from(b[o + 3] & 0xf0) << 20) | rd(o, 3)
                } else {
                    (u32::from(b[o + 3] & 0x0f) << 24) | rd(o + 4, 3)
                }
            }
            _ => rd(n * 8 + 4 * usize::from(bit), 4),
        }
    }

    /// The data-section offset a record value points to.
    fn data_offset(&self, rec: u32) -> Result<usize, GeoError> {
        let off = (rec - self.meta.node_count)
            .checked_sub(16)
            .ok_or_else(|| self.err(format!("record {rec} points into the separator")))?
            as usize;
        if off >= self.data.1 - self.data.0 {
            return Err(self.err(format!("record {rec} points past the data section")));
        }
        Ok(off)
    }

    /// Decodes the data record at a data-section offset.
    pub fn decode_at(&self, off: usize) -> Result<Value, GeoError> {
        Decoder {
            s: &self.buf[self.data.0..self.data.1],
        }
        .decode(off, 0)
        .map(|(v, _)| v)
        .map_err(|e| self.err(e))
    }

    /// The record reached by following `bits` of `key` (most significant first) from
    /// record value `rec`; stops early at data or empty.
    fn follow(&self, mut rec: u32, key: u128, bits: u32) -> u32 {
        for i in 0..bits {
            if rec >= self.meta.node_count {
                break;
            }
            let bit = ((key >> (bits - 1 - i)) & 1) as u8;
            rec = self.record(rec, bit);
        }
        rec
    }

    /// The record value where the IPv4 space starts (node 0 for an IPv4 tree).
    fn ipv4_root(&self) -> u32 {
        if self.meta.ip_version == 4 {
            0
        } else {
            self.follow(0, 0, 96)
        }
    }

    /// Looks `ip` up by walking the tree: the data record, or `None` when the address has
    /// none (or is IPv6 in an IPv4 database).
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<Value>, GeoError> {
        let rec = match ip {
            IpAddr::V4(a) => self.follow(self.ipv4_root(), u128::from(u32::from(a)), 32),
            IpAddr::V6(a) if self.meta.ip_version == 6 => self.follow(0, u128::from(a), 128),
            IpAddr::V6(_) => return Ok(None),
        };
        if rec <= self.meta.node_count {
            return Ok(None);
        }
        self.decode_at(self.data_offset(rec)?).map(Some)
    }

    /// The country of `ip` (see [`country_of`]).
    pub fn country(&self, ip: IpAddr) -> Result<Option<CountryCode>, GeoError> {
        Ok(self.lookup(ip)?.as_ref().and_then(country_of))
    }

    /// Walks the subtree under record value `root` covering a `bits`-bit space and calls
    /// `emit(first, last, data_offset)` for every data leaf. `skip(depth, prefix, rec)`
    /// prunes records. Bounded: a tree that makes the walk visit more than four times its
    /// node count (aliases in cycles) is an error.
    fn walk(
        &self,
        root: u32,
        bits: u32,
        skip: impl Fn(u32, u128, u32) -> bool,
        mut emit: impl FnMut(u128, u128, usize),
    ) -> Result<(), GeoError> {
        let n = self.meta.node_count;
        let span = |depth: u32| -> u128 {
            if bits - depth >= 128 {
                u128::MAX
            } else {
                (1u128 << (bits - depth)) - 1
            }
        };
        let mut budget = u64::from(n) * 4 + 1024;
        let mut stack: Vec<(u32, u32, u128)> = vec![(root, 0, 0)];
        while let Some((rec, depth, prefix)) = stack.pop() {
            budget = budget
                .checked_sub(1)
                .ok_or_else(|| self.err("the search tree loops".into()))?;
            if rec == n {
                continue;
            }
            if rec > n {
                emit(prefix, prefix | span(depth), self.data_offset(rec)?);
                continue;
            }
            if depth >= bits {
                return Err(self.err(format!("the search tree is deeper than {bits} bits")));
            }
            for bit in [1u8, 0] {
                let child = self.record(rec, bit);
                let cp = prefix | (u128::from(bit) << (bits - 1 - depth));
                if !skip(depth + 1, cp, child) {
                    stack.push((child, depth + 1, cp));
                }
            }
        }
        Ok(())
    }

    /// Every range of the database with its country, per family. Data records without a
    /// country are left out.
    pub(crate) fn country_entries(&self) -> Result<CountryEntries, GeoError> {
        // Bounded by the distinct data records the tree points to, at most one per byte of
        // the data section (itself bounded by the file size); no eviction needed.
        let mut cache: HashMap<usize, Option<CountryCode>> = HashMap::new();
        let mut out = CountryEntries::default();
        let mut first_err = None;
        let mut country = |off: usize| -> Option<CountryCode> {
            *cache
                .entry(off)
                .or_insert_with(|| match self.decode_at(off) {
                    Ok(v) => country_of(&v),
                    Err(e) => {
                        first_err.get_or_insert(e);
                        None
                    }
                })
        };
        let v4_root = self.ipv4_root();
        let n = self.meta.node_count;
        self.walk(
            v4_root,
            32,
            |_, _, _| false,
            |s, e, off| {
                if let Some(cc) = country(off) {
                    out.v4.push((s as u32, e as u32, cc));
                }
            },
        )?;
        if self.meta.ip_version == 6 {
            // Skip ::/96 (walked above as IPv4) and the aliases pointing at its node.
            self.walk(
                0,
                128,
                |depth, prefix, rec| {
                    (depth == 96 && prefix == 0) || (rec < n && rec == v4_root && v4_root != 0)
                },
                |s, e, off| {
                    if let Some(cc) = country(off) {
                        out.v6.push((s, e, cc));
                    }
                },
            )?;
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

/// How a written database stores the country of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `{"country": {"iso_code": "DE"}}`, as GeoIP2/GeoLite2/DB-IP write it.
    GeoIp2,
    /// `{"country_code": "DE"}`, as ip-location-db writes it.
    Flat,
}

/// Options for [`write_country_db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// 24, 28 or 32 bits per record.
    pub record_size: u16,
    /// 4 or 6 (IPv4 entries then live under `::/96`).
    pub ip_version: u16,
    /// The data layout.
    pub layout: Layout,
    /// With `ip_version` 6: also point `::ffff:0:0/96` and `2002::/16` at the IPv4 subtree,
    /// as MaxMind's own databases do.
    pub ipv4_aliases: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            record_size: 28,
            ip_version: 6,
            layout: Layout::GeoIp2,
            ipv4_aliases: true,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    Node(u32),
    Data(CountryCode),
}

/// A value encoder for the data and metadata sections.
struct Enc {
    out: Vec<u8>,
}

impl Enc {
    fn ctrl(&mut self, ty: u8, size: usize) {
        let (sbits, extra): (u8, Vec<u8>) = if size < 29 {
            (size as u8, vec![])
        } else if size < 285 {
            (29, vec![(size - 29) as u8])
        } else if size < 65_821 {
            (30, ((size - 285) as u16).to_be_bytes().to_vec())
        } else {
            (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
        };
        if ty <= 7 {
            self.out.push((ty << 5) | sbits);
        } else {
            self.out.push(sbits);
            self.out.push(ty - 7);
        }
        self.out.extend_from_slice(&extra);
    }

    fn uint(&mut self, ty: u8, v: u128) {
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        self.ctrl(ty, 16 - skip);
        self.out.extend_from_slice(&bytes[skip..]);
    }

    fn pointer(&mut self, p: usize) {
        if p < 2048 {
            self.out.push(0x20 | ((p >> 8) as u8 & 7));
            self.out.push(p as u8);
        } else if p < 2048 + (1 << 19) {
            let q = p - 2048;
            self.out.push(0x28 | ((q >> 16) as u8 & 7));
            self.out.extend_from_slice(&(q as u16).to_be_bytes());
        } else if p < 526_336 + (1 << 27) {
            let q = p - 526_336;
            self.out.push(0x30 | ((q >> 24) as u8 & 7));
            self.out.extend_from_slice(&(q as u32).to_be_bytes()[1..]);
        } else {
            self.out.push(0x38);
            self.out.extend_from_slice(&(p as u32).to_be_bytes());
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) => {
                self.ctrl(2, s.len());
                self.out.extend_from_slice(s.as_bytes());
            }
            Value::Double(d) => {
                self.ctrl(3, 8);
                self.out.extend_from_slice(&d.to_be_bytes());
            }
            Value::Bytes(b) => {
                self.ctrl(4, b.len());
                self.out.extend_from_slice(b);
            }
            Value::Uint(u) => {
                let ty = if *u <= 0xffff {
                    5
                } else if *u <= 0xffff_ffff {
                    6
                } else if *u <= u128::from(u64::MAX) {
                    9
                } else {
                    10
                };
                self.uint(ty, *u);
            }
            Value::Int(i) => {
                self.ctrl(8, 4);
                self.out.extend_from_slice(&i.to_be_bytes());
            }
            Value::Map(m) => {
                self.ctrl(7, m.len());
                for (k, v) in m {
                    self.value(&Value::String(k.clone()));
                    self.value(v);
                }
            }
            Value::Array(a) => {
                self.ctrl(11, a.len());
                for v in a {
                    self.value(v);
                }
            }
            Value::Bool(b) => self.ctrl(14, usize::from(*b)),
            Value::Float(f) => {
                self.ctrl(15, 4);
                self.out.extend_from_slice(&f.to_be_bytes());
            }
        }
    }
}

/// Encodes one value as the data section would hold it (for tests of the decoder).
pub fn encode_value(v: &Value) -> Vec<u8> {
    let mut e = Enc { out: Vec::new() };
    e.value(v);
    e.out
}

/// Decodes one value from bytes laid out as a data section, starting at offset 0.
pub fn decode_value(bytes: &[u8]) -> Result<Value, GeoError> {
    Decoder { s: bytes }
        .decode(0, 0)
        .map(|(v, _)| v)
        .map_err(GeoError::Invalid)
}

/// Writes a country database: every network of `entries` maps to its country. Entries are
/// inserted in order, so a later entry overrides an earlier one where they overlap (put
/// less specific networks first to keep both). Fails on IPv6 entries in an IPv4 database
/// and on a tree too large for the record size.
pub fn write_country_db(
    entries: &[(IpNet, CountryCode)],
    opts: &WriteOptions,
) -> Result<Vec<u8>, GeoError> {
    if !matches!(opts.record_size, 24 | 28 | 32) || !matches!(opts.ip_version, 4 | 6) {
        return Err(GeoError::Invalid(format!(
            "record size {} / ip_version {} is not supported",
            opts.record_size, opts.ip_version
        )));
    }
    let bits: u32 = if opts.ip_version == 4 { 32 } else { 128 };
    let mut nodes: Vec<[Slot; 2]> = vec![[Slot::Empty; 2]];
    // Follows (creating as needed) the first `len - 1` bits of `key`; returns the node whose
    // slot for bit `len - 1` is the prefix.
    let descend = |nodes: &mut Vec<[Slot; 2]>, key: u128, len: u32| -> u32 {
        let mut node = 0u32;
        for i in 0..len - 1 {
            let bit = ((key >> (bits - 1 - i)) & 1) as usize;
            node = match nodes[node as usize][bit] {
                Slot::Node(c) => c,
                other => {
                    let c = nodes.len() as u32;
                    nodes.push([other; 2]);
                    nodes[node as usize][bit] = Slot::Node(c);
                    c
                }
            };
        }
        node
    };
    for (net, cc) in entries {
        let (key, len) = match net {
            IpNet::V4(n) if bits == 32 => (
                u128::from(u32::from(n.network())),
                u32::from(n.prefix_len()),
            ),
            IpNet::V4(n) => (
                u128::from(u32::from(n.network())),
                96 + u32::from(n.prefix_len()),
            ),
            IpNet::V6(n) if bits == 128 => (u128::from(n.network()), u32::from(n.prefix_len())),
            IpNet::V6(n) => {
                return Err(GeoError::Invalid(format!("{n} in an IPv4 database")));
            }
        };
        if len == 0 {
            nodes[0] = [Slot::Data(*cc); 2];
            continue;
        }
        let node = descend(&mut nodes, key, len);
        let bit = ((key >> (bits - len)) & 1) as usize;
        nodes[node as usize][bit] = Slot::Data(*cc);
    }
    if opts.ip_version == 6 && opts.ipv4_aliases {
        // The IPv4 subtree's node (at depth 96 under ::); make sure it exists.
        let parent = descend(&mut nodes, 0, 96);
        let v4 = match nodes[parent as usize][0] {
            Slot::Node(c) => c,
            other => {
                let c = nodes.len() as u32;
                nodes.push([other; 2]);
                nodes[parent as usize][0] = Slot::Node(c);
                c
            }
        };
        for (key, len) in [(0xffffu128 << 32, 96u32), (0x2002u128 << 112, 16)] {
            let node = descend(&mut nodes, key, len);
            let bit = ((key >> (bits - len)) & 1) as usize;
            nodes[node as usize][bit] = Slot::Node(v4);
        }
    }

    // Data section: one record per country; map keys after the first record are pointers
    // to the first record's key strings.
    let mut data = Enc { out: Vec::new() };
    // Both bounded by the caller's input: one entry per distinct country / key string.
    let mut offsets: HashMap<CountryCode, usize> = HashMap::new();
    let mut key_offsets: HashMap<&'static str, usize> = HashMap::new();
    let mut ccs: Vec<CountryCode> = entries.iter().map(|(_, c)| *c).collect();
    ccs.sort();
    ccs.dedup();
    for cc in ccs {
        offsets.insert(cc, data.out.len());
        let mut key = |data: &mut Enc, k: &'static str| match key_offsets.get(k) {
            Some(&p) => data.pointer(p),
            None => {
                key_offsets.insert(k, data.out.len());
                data.value(&Value::String(k.to_string()));
            }
        };
        match opts.layout {
            Layout::GeoIp2 => {
                data.ctrl(7, 1);
                key(&mut data, "country");
                data.ctrl(7, 2);
                key(&mut data, "geoname_id");
                data.value(&Value::Uint(u128::from(cc.to_u16())));
                key(&mut data, "iso_code");
                data.value(&Value::String(cc.to_string()));
            }
            Layout::Flat => {
                data.ctrl(7, 1);
                key(&mut data, "country_code");
                data.value(&Value::String(cc.to_string()));
            }
        }
    }

    let node_count = nodes.len() as u32;
    let max = if opts.record_size == 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << opts.record_size) - 1
    };
    if u64::from(node_count) + 16 + data.out.len() as u64 > max {
        return Err(GeoError::Invalid(format!(
            "{node_count} nodes do not fit in {}-bit records",
            opts.record_size
        )));
    }
    let value = |s: Slot| -> u32 {
        match s {
            Slot::Empty => node_count,
            Slot::Node(c) => c,
            Slot::Data(cc) => node_count + 16 + offsets[&cc] as u32,
        }
    };
    let mut out = Vec::with_capacity(nodes.len() * 8 + data.out.len() + 256);
    for [l, r] in &nodes {
        let (l, r) = (value(*l), value(*r));
        match opts.record_size {
            24 => {
                out.extend_from_slice(&l.to_be_bytes()[1..]);
                out.extend_from_slice(&r.to_be_bytes()[1..]);
            }
            28 => {
                out.extend_from_slice(&l.to_be_bytes()[1..]);
                out.push((((l >> 24) & 0xf) << 4) as u8 | ((r >> 24) & 0xf) as u8);
                out.extend_from_slice(&r.to_be_bytes()[1..]);
            }
            _ => {
                out.extend_from_slice(&l.to_be_bytes());
                out.extend_from_slice(&r.to_be_bytes());
            }
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data.out);
    out.extend_from_slice(METADATA_MARKER);
    let meta = Value::Map(vec![
        ("binary_format_major_version".into(), Value::Uint(2)),
        ("binary_format_minor_version".into(), Value::Uint(0)),
        ("build_epoch".into(), Value::Uint(1_767_225_600)),
        (
            "database_type".into(),
            Value::String("rampart-Test-Country".into()),
        ),
        (
            "description".into(),
            Value::Map(vec![(
                "en".into(),
                Value::String("rampart test country database".into()),
            )]),
        ),
        (
            "ip_version".into(),
            Value::Uint(u128::from(opts.ip_version)),
        ),
        (
            "languages".into(),
            Value::Array(vec![Value::String("en".into())]),
        ),
        ("node_count".into(), Value::Uint(u128::from(node_count))),
        (
            "record_size".into(),
            Value::Uint(u128::from(opts.record_size)),
        ),
    ]);
    let mut m = Enc { out: Vec::new() };
    m.value(&meta);
    out.extend_from_slice(&m.out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_type_round_trips_through_the_encoder() {
        let long = "x".repeat(70_000);
        let v = Value::Map(vec![
            ("s".into(), Value::String("héllo".into())),
            ("s29".into(), Value::String("y".repeat(29))),
            ("s300".into(), Value::String("z".repeat(300))),
            ("long".into(), Value::String(long)),
            ("d".into(), Value::Double(-1.5)),
            ("f".into(), Value::Float(2.25)),
            ("b".into(), Value::Bytes(vec![0, 1, 2, 255])),
            ("u16".into(), Value::Uint(0xfffe)),
            ("u32".into(), Value::Uint(0xdead_beef)),
            ("u64".into(), Value::Uint(u128::from(u64::MAX))),
            ("u128".into(), Value::Uint(u128::MAX)),
            ("zero".into(), Value::Uint(0)),
            ("i".into(), Value::Int(-7)),
            ("t".into(), Value::Bool(true)),
            ("no".into(), Value::Bool(false)),
            (
                "a".into(),
                Value::Array(vec![Value::Uint(1), Value::String("two".into())]),
            ),
        ]);
        assert_eq!(decode_value(&encode_value(&v)).unwrap(), v);
    }

    #[test]
    fn pointers_of_every_size_are_followed() {
        let hit = encode_value(&Value::String("hit".into()));
        for target in [5usize, 2047, 2048, 600_000] {
            let mut e = Enc { out: Vec::new() };
            e.pointer(target);
            let mut bytes = e.out;
            bytes.resize(target, 0);
            bytes.extend_from_slice(&hit);
            assert_eq!(
                decode_value(&bytes).unwrap(),
                Value::String("hit".into()),
                "target {target}"
            );
        }
        // The 4-byte form (SS = 3) takes the value as is; writers only use it past 134 MB.
        let mut bytes = vec![0x38, 0, 0, 0, 6, 0];
        bytes.extend_from_slice(&hit);
        assert_eq!(decode_value(&bytes).unwrap(), Value::String("hit".into()));
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        // A map claiming 20 pairs with 1 byte behind it; a string running off the end; a
        // pointer to itself (depth limit); an unknown extended type.
        for bad in [
            vec![0xf4u8, 0],
            vec![0x45, b'a'],
            vec![0x20, 0x00],
            vec![0x00, 0x10],
        ] {
            assert!(decode_value(&bad).is_err(), "{bad:?}");
        }
    }
}

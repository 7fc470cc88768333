//! The RIRs' delegated-extended statistics files.
//!
//! ```text
//! 2.3|apnic|20181014|113050||20181012|+1000              version line
//! apnic|*|ipv4|*|41684|summary                            one summary line per type
//! apnic|CN|ipv4|180.152.0.0|524288|20090821|allocated|A92951CA
//! ```
//!
//! Records are `registry|cc|type|start|value|date|status[|opaque-id[|extensions]]`. For
//! `ipv4` the value is a host count that need not be a power of two nor aligned (such a
//! block becomes several CIDRs); for `ipv6` it is a prefix length; `asn` records are counted
//! and otherwise skipped. The country is empty (or `ZZ` at AFRINIC) for undelegated space;
//! RIPE's and LACNIC's `available`/`reserved` lines have no opaque-id field at all. An
//! opaque-id names one holder within one file: it is not stable between files.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::addr::Addr;
use crate::input::{lines, read_file};
use crate::types::{CountryCode, Registry, RirDate, Status};
use crate::GeoError;

/// "No holder" in [`Rec::holder`].
pub(crate) const NO_HOLDER: u32 = u32::MAX;

/// One address record, in integer form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rec<A> {
    pub(crate) start: A,
    pub(crate) end: A,
    pub(crate) cc: Option<CountryCode>,
    pub(crate) registry: Registry,
    pub(crate) status: Status,
    /// `YYYYMMDD` as a number, 0 for none.
    pub(crate) date: u32,
    /// Index into [`RirFile::holders`], or [`NO_HOLDER`].
    pub(crate) holder: u32,
    /// 1-based line in the file.
    pub(crate) line: u32,
}

impl<A: Addr> Rec<A> {
    /// Whether the record gives its addresses a registration country: delegated, with a
    /// country code other than `ZZ`.
    pub(crate) fn country(&self) -> Option<CountryCode> {
        if self.status.is_delegated() {
            self.cc.filter(CountryCode::is_known)
        } else {
            None
        }
    }
}

/// The version line of a delegated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RirHeader {
    /// Format version (`2` or `2.3`).
    pub version: String,
    /// The registry that published the file.
    pub registry: Registry,
    /// The serial (a date, or a timestamp at ARIN and RIPE).
    pub serial: String,
    /// The number of records the file declares (all types).
    pub records: u64,
    /// The end date of the data (`YYYYMMDD`).
    pub end_date: String,
}

/// A parsed delegated-extended file: the IPv4 and IPv6 records (ASN records are only
/// counted), the holder ids, and the header and summary counts.
#[derive(Debug, Clone)]
pub struct RirFile {
    path: PathBuf,
    header: Option<RirHeader>,
    pub(crate) v4: Vec<Rec<u32>>,
    pub(crate) v6: Vec<Rec<u128>>,
    holders: Vec<Box<str>>,
    asn: u64,
    /// `(type, declared count, line)` of each summary line.
    summaries: Vec<(String, u64, usize)>,
}

/// One block of a delegated file, as the offline whois shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RirBlock<'a> {
    /// The registry.
    pub registry: Registry,
    /// The registration country (`None` when the file leaves it empty).
    pub cc: Option<CountryCode>,
    /// The first address.
    pub start: IpAddr,
    /// The last address.
    pub end: IpAddr,
    /// allocated, assigned, available or reserved.
    pub status: Status,
    /// The registration date, when the file gives one.
    pub date: Option<RirDate>,
    /// The holder's opaque id, when the file gives one.
    pub holder: Option<&'a str>,
    /// The 1-based line in the file.
    pub line: u32,
}

impl RirBlock<'_> {
    /// The number of addresses in the block.
    pub fn size(&self) -> u128 {
        match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => u128::from(u32::from(e) - u32::from(s)) + 1,
            (IpAddr::V6(s), IpAddr::V6(e)) => (u128::from(e) - u128::from(s)).saturating_add(1),
            _ => 0,
        }
    }

    /// The block as the fewest CIDRs (one for an aligned power of two).
    pub fn cidrs(&self) -> Vec<IpNet> {
        crate::aggregate::range_to_cidrs(self.start, self.end).unwrap_or_default()
    }

    /// Whether the block holds `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.start, self.end, ip) {
            (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => s <= a && a <= e,
            (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => s <= a && a <= e,
            _ => false,
        }
    }

    /// Whether the block is allocated or assigned.
    pub fn is_delegated(&self) -> bool {
        self.status.is_delegated()
    }
}

/// Splits a line on `|` into at most 8 fields without allocating; returns the field count.
fn fields(line: &str) -> ([&str; 8], usize) {
    let mut f = [""; 8];
    let mut n = 0;
    for part in line.split('|') {
        if n < 8 {
            f[n] = part;
        }
        n += 1;
    }
    (f, n)
}

impl RirFile {
    /// Reads and parses a delegated file (plain or gzip). Header and summary counts are
    /// checked when the file has them.
    pub fn load(path: &Path) -> Result<RirFile, GeoError> {
        let bytes = read_file(path)?;
        RirFile::parse(path, &bytes)
    }

    /// Parses a delegated file's text; `path` is only used in errors. Header and summary
    /// counts are checked when the file has them (see [`RirFile::check_counts`]).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<RirFile, GeoError> {
        let mut file = RirFile {
            path: path.to_path_buf(),
            header: None,
            v4: Vec::new(),
            v6: Vec::new(),
            holders: Vec::new(),
            asn: 0,
            summaries: Vec::new(),
        };
        // One entry per distinct holder id, at most one per line of the file (itself bounded
        // by MAX_DECOMPRESSED); lives only while parsing.
        let mut holder_ids: HashMap<&str, u32> = HashMap::new();
        for item in lines(path, bytes) {
            let (n, line) = item?;
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |m: String| GeoError::parse(path, n, m);
            let (f, nf) = fields(line);
            if f[0].starts_with(|c: char| c.is_ascii_digit()) {
                // Version line: version|registry|serial|records|startdate|enddate|UTCoffset
                if file.header.is_some() {
                    return Err(err("a second version line".into()));
                }
                if nf < 6 {
                    return Err(err(format!("version line has {nf} fields, expected 7")));
                }
                let registry = Registry::parse(f[1])
                    .ok_or_else(|| err(format!("unknown registry {:?}", f[1])))?;
                let records = f[3]
                    .parse()
                    .map_err(|_| err(format!("record count {:?} is not a number", f[3])))?;
                file.header = Some(RirHeader {
                    version: f[0].to_string(),
                    registry,
                    serial: f[2].to_string(),
                    records,
                    end_date: f[5].to_string(),
                });
                continue;
            }
            if nf >= 6 && f[1] == "*" && f[5] == "summary" {
                let count = f[4]
                    .parse()
                    .map_err(|_| err(format!("summary count {:?} is not a number", f[4])))?;
                file.summaries.push((f[2].to_string(), count, n));
                continue;
            }
            if nf < 7 {
                return Err(err(format!(
                    "record has {nf} fields, expected registry|cc|type|start|value|date|status[|opaque-id]"
                )));
            }
            let registry =
                Registry::parse(f[0]).ok_or_else(|| err(format!("unknown registry {:?}", f[0])))?;
            let kind = f[2];
            if kind == "asn" {
                file.asn += 1;
                continue;
            }
            if kind != "ipv4" && kind != "ipv6" {
                return Err(err(format!(
                    "unknown record type {kind:?} (asn, ipv4, ipv6)"
                )));
            }
            let cc = match f[1] {
                "" => None,
                s => Some(
                    CountryCode::parse(s)
                        .ok_or_else(|| err(format!("country {s:?} is not two letters")))?,
                ),
            };
            let status = Status::parse(f[6]).ok_or_else(|| {
                err(format!(
                    "status {:?} is not allocated, assigned, available or reserved",
                    f[6]
                ))
            })?;
            let date = RirDate::pack(RirDate::parse(f[5]).map_err(err)?);
            let holder = match f[7] {
                "" => NO_HOLDER,
                id => match holder_ids.get(id) {
                    Some(&h) => h,
                    None => {
                        let h = file.holders.len() as u32;
                        file.holders.push(id.into());
                        holder_ids.insert(id, h);
                        h
                    }
                },
            };
            let value = f[4];
            if kind == "ipv4" {
                let start: Ipv4Addr = f[3]
                    .parse()
                    .map_err(|_| err(format!("{:?} is not an IPv4 address", f[3])))?;
                let count: u64 = value.parse().ok().filter(|&c| c > 0).ok_or_else(|| {
                    err(format!(
                        "IPv4 host count {value:?} is not a positive number"
                    ))
                })?;
                let s = u32::from(start);
                let e = u64::from(s) + count - 1;
                let end = u32::try_from(e).map_err(|_| {
                    err(format!(
                        "{start} + {count} addresses runs past 255.255.255.255"
                    ))
                })?;
                file.v4.push(Rec {
                    start: s,
                    end,
                    cc,
                    registry,
                    status,
                    date,
                    holder,
                    line: n as u32,
                });
            } else {
                let start: Ipv6Addr = f[3]
                    .parse()
                    .map_err(|_| err(format!("{:?} is not an IPv6 address", f[3])))?;
                let len: u32 = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=128).contains(l))
                    .ok_or_else(|| err(format!("IPv6 prefix length {value:?} is not 1-128")))?;
                let s = u128::from(start);
                let host = <u128 as Addr>::low_mask(128 - len);
                if s & host != 0 {
                    return Err(err(format!("{start}/{len} has host bits set")));
                }
                file.v6.push(Rec {
                    start: s,
                    end: s | host,
                    cc,
                    registry,
                    status,
                    date,
                    holder,
                    line: n as u32,
                });
            }
        }
        file.check_counts(false)?;
        Ok(file)
    }

    /// Checks the counts the file declares: every summary line's count must equal the number
    /// of records of its type, and the version line's record count the number of records.
    /// With `require`, a file without a version line or without ipv4/ipv6 summary lines is
    /// an error too (a download cut short before its records is then caught).
    pub fn check_counts(&self, require: bool) -> Result<(), GeoError> {
        let found = |kind: &str| -> u64 {
            match kind {
                "asn" => self.asn,
                "ipv4" => self.v4.len() as u64,
                "ipv6" => self.v6.len() as u64,
                _ => 0,
            }
        };
        for (kind, declared, line) in &self.summaries {
            let got = found(kind);
            if got != *declared {
                return Err(GeoError::parse(
                    &self.path,
                    *line,
                    format!("the summary declares {declared} {kind} records, the file has {got}"),
                ));
            }
        }
        if let Some(h) = &self.header {
            let got = self.asn + self.v4.len() as u64 + self.v6.len() as u64;
            if got != h.records {
                return Err(GeoError::format(
                    &self.path,
                    format!(
                        "the version line declares {} records, the file has {got}",
                        h.records
                    ),
                ));
            }
        }
        if require {
            if self.header.is_none() {
                return Err(GeoError::format(&self.path, "no version line"));
            }
            for kind in ["ipv4", "ipv6"] {
                if !self.summaries.iter().any(|(k, _, _)| k == kind) {
                    return Err(GeoError::format(
                        &self.path,
                        format!("no {kind} summary line"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version line, when the file has one.
    pub fn header(&self) -> Option<&RirHeader> {
        self.header.as_ref()
    }

    /// The registry that published the file: the version line's, else the first record's.
    pub fn registry(&self) -> Option<Registry> {
        self.header
            .as_ref()
            .map(|h| h.registry)
            .or_else(|| self.v4.first().map(|r| r.registry))
            .or_else(|| self.v6.first().map(|r| r.registry))
    }

    /// The number of IPv4 records.
    pub fn len_v4(&self) -> usize {
        self.v4.len()
    }

    /// The number of IPv6 records.
    pub fn len_v6(&self) -> usize {
        self.v6.len()
    }

    /// The number of ASN records (counted, not kept).
    pub fn asn_records(&self) -> u64 {
        self.asn
    }

    /// The number of distinct holder ids.
    pub fn holders(&self) -> usize {
        self.holders.len()
    }

    pub(crate) fn holder_name(&self, h: u32) -> Option<&str> {
        self.holders.get(h as usize).map(|s| &**s)
    }

    pub(crate) fn block_v4(&self, i: usize) -> RirBlock<'_> {
        let r = &self.v4[i];
        self.block(r.start.ip(), r.end.ip(), r)
    }

    pub(crate) fn block_v6(&self, i: usize) -> RirBlock<'_> {
        let r = &self.v6[i];
        self.block(r.start.ip(), r.end.ip(), r)
    }

    fn block<A>(&self, start: IpAddr, end: IpAddr, r: &Rec<A>) -> RirBlock<'_> {
        RirBlock {
            registry: r.registry,
            cc: r.cc,
            start,
            end,
            status: r.status,
            date: RirDate::unpack(r.date),
            holder: self.holder_name(r.holder),
            line: r.line,
        }
    }

    /// Every IPv4 then IPv6 block, in file order.
    pub fn blocks(&self) -> impl Iterator<Item = RirBlock<'_>> + '_ {
        (0..self.v4.len())
            .map(|i| self.block_v4(i))
            .chain((0..self.v6.len()).map(|i| self.block_v6(i)))
    }

    /// Every block of one holder (IPv4 then IPv6, in file order).
    pub fn holder_blocks(&self, holder: &str) -> Vec<RirBlock<'_>> {
        let Some(h) = self.holders.iter().position(|x| &**x == holder) else {
            return Vec::new();
        };
        let h = h as u32;
        let v4 = (0..self.v4.len())
            .filter(|&i| self.v4[i].holder == h)
            .map(|i| self.block_v4(i));
        let v6 = (0..self.v6.len())
            .filter(|&i| self.v6[i].holder == h)
            .map(|i| self.block_v6(i));
        v4.chain(v6).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment lines are skipped
2.3|apnic|20181014|6||20181012|+1000
apnic|*|asn|*|1|summary
apnic|*|ipv4|*|4|summary
apnic|*|ipv6|*|1|summary
apnic|JP|asn|173|1|20020801|allocated|A92E1062
apnic|CN|ipv4|180.152.0.0|524288|20090821|allocated|A92951CA
apnic|CN|ipv4|58.32.0.0|524288|20050128|allocated|A92951CA
apnic||ipv4|1.0.0.0|768||available
apnic|AU|ipv4|203.0.113.32|64|20110811|assigned|
apnic|CN|ipv6|2001:db8::|32|20100101|allocated|A92951CA
";

    fn sample() -> RirFile {
        RirFile::parse(Path::new("apnic.txt"), SAMPLE.as_bytes()).unwrap()
    }

    #[test]
    fn parses_records_header_and_holders() {
        let f = sample();
        assert_eq!(f.registry(), Some(Registry::Apnic));
        assert_eq!(f.header().unwrap().version, "2.3");
        assert_eq!((f.len_v4(), f.len_v6(), f.asn_records()), (4, 1, 1));
        let b = f.blocks().next().unwrap();
        assert_eq!(b.registry, Registry::Apnic);
        assert_eq!(b.cc, CountryCode::parse("CN"));
        assert_eq!(b.start, "180.152.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(b.size(), 524_288);
        assert_eq!(b.status, Status::Allocated);
        assert_eq!(b.date.unwrap().to_string(), "2009-08-21");
        assert_eq!(b.holder, Some("A92951CA"));
        assert_eq!(b.line, 7);
        let cidrs: Vec<String> = b.cidrs().iter().map(|n| n.to_string()).collect();
        assert_eq!(cidrs, ["180.152.0.0/13"]);
        let avail = f.blocks().nth(2).unwrap();
        assert_eq!((avail.cc, avail.holder, avail.date), (None, None, None));
        let cidrs: Vec<String> = avail.cidrs().iter().map(|n| n.to_string()).collect();
        assert_eq!(
            cidrs,
            ["1.0.0.0/23", "1.0.2.0/24"],
            "768 hosts are two CIDRs"
        );
        let mis: Vec<String> = f
            .blocks()
            .nth(3)
            .unwrap()
            .cidrs()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(mis, ["203.0.113.32/27", "203.0.113.64/27"], "misaligned 64");
        let held: Vec<String> = f
            .holder_blocks("A92951CA")
            .iter()
            .flat_map(|b| b.cidrs())
            .map(|n| n.to_string())
            .collect();
        assert_eq!(held, ["180.152.0.0/13", "58.32.0.0/13", "2001:db8::/32"]);
        assert!(f.holder_blocks("nobody").is_empty());
        assert_eq!(f.holders(), 1);
    }

    #[test]
    fn only_delegated_blocks_with_a_real_country_give_a_country() {
        let f = RirFile::parse(
            Path::new("afrinic"),
            b"afrinic|ZZ|ipv4|192.0.2.0|256||available|\n\
              afrinic|ZA|ipv4|198.51.100.0|256|20100101|reserved|\n\
              afrinic|ZA|ipv4|203.0.113.0|256|20100101|assigned|F36B9F4B\n",
        )
        .unwrap();
        let v4 = crate::Source::from_rir(f).countries_v4();
        assert_eq!(v4.len(), 1);
        assert_eq!(v4[0].2.as_str(), "ZA");
    }

    fn err(text: &str) -> String {
        RirFile::parse(Path::new("f.txt"), text.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_file_and_line() {
        assert_eq!(
            err("arin|US|ipv4|192.0.2.0|256|20100101|allocated|x\narin|US|ipv4|192.0.2|256|20100101|allocated|x\n"),
            "f.txt:2: \"192.0.2\" is not an IPv4 address"
        );
        assert_eq!(
            err("arin|US|ipv4|192.0.2.0|0|20100101|allocated|x\n"),
            "f.txt:1: IPv4 host count \"0\" is not a positive number"
        );
        assert_eq!(
            err("arin|US|ipv4|255.255.255.0|512|20100101|allocated|x\n"),
            "f.txt:1: 255.255.255.0 + 512 addresses runs past 255.255.255.255"
        );
        assert_eq!(
            err("arin|US|ipv4|192.0.2.0|256|20100101|leased|x\n"),
            "f.txt:1: status \"leased\" is not allocated, assigned, available or reserved"
        );
        assert_eq!(
            err("arin|US|ipv6|2001:db8::1|32|20100101|allocated|x\n"),
            "f.txt:1: 2001:db8::1/32 has host bits set"
        );
        assert_eq!(
            err("arin|US|ipv6|2001:db8::|129|20100101|allocated|x\n"),
            "f.txt:1: IPv6 prefix length \"129\" is not 1-128"
        );
        assert_eq!(
            err("arin|USA|ipv4|192.0.2.0|256|20100101|allocated|x\n"),
            "f.txt:1: country \"USA\" is not two letters"
        );
        assert_eq!(
            err("arin|US|ipv4|192.0.2.0|256|20101301|allocated|x\n"),
            "f.txt:1: date \"20101301\" has no such month or day"
        );
        assert_eq!(
            err("arin|US|ipv4|192.0.2.0|256\n"),
            "f.txt:1: record has 5 fields, expected registry|cc|type|start|value|date|status[|opaque-id]"
        );
        assert_eq!(
            err("nic|US|ipv4|192.0.2.0|256|20100101|allocated|x\n"),
            "f.txt:1: unknown registry \"nic\""
        );
    }

    #[test]
    fn summary_and_header_counts_must_match_the_records() {
        let cut = SAMPLE.lines().take(8).collect::<Vec<_>>().join("\n");
        assert_eq!(
            err(&cut),
            "f.txt:4: the summary declares 4 ipv4 records, the file has 2"
        );
        let no_summary: String = SAMPLE
            .lines()
            .filter(|l| !l.ends_with("summary"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace("|6||", "|7||");
        assert_eq!(
            err(&no_summary),
            "f.txt: the version line declares 7 records, the file has 6"
        );
        let bare = "apnic|CN|ipv4|180.152.0.0|524288|20090821|allocated|A92951CA\n";
        let f = RirFile::parse(Path::new("f.txt"), bare.as_bytes()).unwrap();
        assert_eq!(
            f.check_counts(true).unwrap_err().to_string(),
            "f.txt: no version line"
        );
        assert!(sample().check_counts(true).is_ok());
    }
}

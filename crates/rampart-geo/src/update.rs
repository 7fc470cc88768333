//! `geo update`: fetch the RIRs' delegated-extended "latest" files into a cache directory,
//! check them, keep the previous copy, and report what changed.
//!
//! For each registry: download the file (HTTPS; plain http only to a loopback host, for
//! tests), with connect, per-read and total timeouts and a size limit; fetch the `.md5`
//! file the RIR publishes next to it and verify it (a 404 means "not published", any other
//! failure fails the registry); parse the download and check its version line and summary
//! counts; then, if it differs from the cached copy, hard-link the cached copy to
//! `NAME.prev` and rename the new file over `NAME` (both renames are atomic, so a reader
//! always sees a complete file). A registry that fails keeps its cached copy; the others
//! still update.
//!
//! The diff compares blocks by their exact range (a block that was split or merged shows
//! as removed + added). Opaque holder ids are not stable between files, so a block "changed
//! holder" only when its holder id does not follow the dominant renumbering: each old id is
//! paired with the new id most of its blocks carry (and back), and a block whose pair breaks
//! that mapping changed hands.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::input::{gunzip_if_needed, MAX_DECOMPRESSED};
use crate::rir::{RirBlock, RirFile};
use crate::types::{CountryCode, Registry, Status};
use crate::GeoError;

/// The default cache directory.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/rampart/geo";

/// The official HTTPS URL of a registry's delegated-extended "latest" file.
pub fn default_url(r: Registry) -> &'static str {
    match r {
        Registry::Afrinic => {
            "https://ftp.afrinic.net/pub/stats/afrinic/delegated-afrinic-extended-latest"
        }
        Registry::Apnic => "https://ftp.apnic.net/stats/apnic/delegated-apnic-extended-latest",
        Registry::Arin => "https://ftp.arin.net/pub/stats/arin/delegated-arin-extended-latest",
        Registry::Lacnic => {
            "https://ftp.lacnic.net/pub/stats/lacnic/delegated-lacnic-extended-latest"
        }
        Registry::Ripencc | Registry::Iana => {
            "https://ftp.ripe.net/pub/stats/ripencc/delegated-ripencc-extended-latest"
        }
    }
}

/// The file name a registry's data has in the cache directory
/// (`delegated-apnic-extended-latest`); the previous copy adds `.prev`.
pub fn cache_file_name(r: Registry) -> String {
    format!("delegated-{}-extended-latest", r.as_str())
}

/// The current (not `.prev`) delegated files in a cache directory, in registry order: the
/// default sources of `geo lookup`.
pub fn cached_files(dir: &Path) -> Vec<PathBuf> {
    Registry::RIRS
        .iter()
        .map(|r| dir.join(cache_file_name(*r)))
        .filter(|p| p.is_file())
        .collect()
}

/// What to fetch and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOptions {
    /// Where the files go.
    pub cache_dir: PathBuf,
    /// The registries to fetch and their URLs, in order.
    pub urls: Vec<(Registry, String)>,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for each read from the network (a stalled transfer fails after this).
    pub read_timeout: Duration,
    /// Limit for a whole download.
    pub total_timeout: Duration,
    /// The largest download accepted, in bytes (default 512 MiB; RIPE's file is ~30 MB).
    pub max_bytes: u64,
}

impl UpdateOptions {
    /// The five RIRs from their official URLs into `cache_dir`; timeouts 15 s to connect,
    /// 60 s per read, 10 min per download.
    pub fn new(cache_dir: impl Into<PathBuf>) -> UpdateOptions {
        UpdateOptions {
            cache_dir: cache_dir.into(),
            urls: Registry::RIRS
                .iter()
                .map(|r| (*r, default_url(*r).to_string()))
                .collect(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(600),
            max_bytes: 512 << 20,
        }
    }

    /// Replaces one registry's URL.
    pub fn set_url(&mut self, r: Registry, url: impl Into<String>) {
        let url = url.into();
        match self.urls.iter_mut().find(|(x, _)| *x == r) {
            Some(slot) => slot.1 = url,
            None => self.urls.push((r, url)),
        }
    }
}

/// Refuses a URL before any connection: only `https://`, or `http://` to a loopback host
/// (`localhost`, 127.0.0.0/8, `[::1]`).
pub fn check_url(url: &str) -> Result<(), GeoError> {
    let refuse = |reason: &str| GeoError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| refuse("not a URL (no scheme)"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(refuse("credentials in the URL are not accepted"));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err(refuse("no host"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" => {
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(refuse(
                    "plain http is refused (use https; http is only allowed to a loopback host)",
                ))
            }
        }
        _ => Err(refuse("only https URLs are fetched")),
    }
}

fn is_loopback_url(url: &str) -> bool {
    url.to_ascii_lowercase().starts_with("http://")
}

/// Downloads `url`; `Ok(None)` on 404/410 when `missing_ok`.
fn fetch(url: &str, opts: &UpdateOptions, missing_ok: bool) -> Result<Option<Vec<u8>>, GeoError> {
    check_url(url)?;
    let fail = |m: String| GeoError::Fetch {
        url: url.to_string(),
        message: m,
    };
    let plain = is_loopback_url(url);
    let mut cfg = ureq::Agent::config_builder()
        .https_only(!plain)
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_per_read(Some(opts.read_timeout))
        .timeout_global(Some(opts.total_timeout))
        .max_redirects(if plain { 0 } else { 5 })
        .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")));
    if plain {
        // Never send loopback test traffic through a proxy from the environment.
        cfg = cfg.proxy(None);
    }
    let agent: ureq::Agent = cfg.build().into();
    let mut resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::StatusCode(404 | 410)) if missing_ok => return Ok(None),
        Err(ureq::Error::StatusCode(c)) => return Err(fail(format!("HTTP status {c}"))),
        Err(e) => return Err(fail(e.to_string())),
    };
    if resp.status().as_u16() != 200 {
        return Err(fail(format!("HTTP status {}", resp.status().as_u16())));
    }
    let limit = opts.max_bytes.min(MAX_DECOMPRESSED);
    let body = resp
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(n) => fail(format!("larger than the {n}-byte limit")),
            e => fail(e.to_string()),
        })?;
    Ok(Some(body))
}

/// The first 32-hex-digit token of an `.md5` file (`MD5 (name) = hex`, `hex  name`, or a
/// bare hex digest), lower case.
pub fn parse_md5_file(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .find(|t| t.len() == 32)
        .map(|t| t.to_ascii_lowercase())
}

/// A block as the diff reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockState {
    /// The country (`None` when the file leaves it empty).
    pub cc: Option<CountryCode>,
    /// The status.
    pub status: Status,
    /// The holder id.
    pub holder: Option<String>,
}

impl BlockState {
    fn of(b: &RirBlock<'_>) -> BlockState {
        BlockState {
            cc: b.cc,
            status: b.status,
            holder: b.holder.map(str::to_string),
        }
    }
}

/// A block that is in both files with different data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockChange {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
    /// Before.
    pub old: BlockState,
    /// After.
    pub new: BlockState,
    /// The country differs.
    pub country_changed: bool,
    /// The status differs.
    pub status_changed: bool,
    /// The holder changed hands (see the module documentation for renumbered ids).
    pub holder_changed: bool,
}

/// A block only one of the files has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOnly {
    /// First address.
    pub start: IpAddr,
    /// Last address.
    pub end: IpAddr,
    /// Its data.
    pub state: BlockState,
}

/// What changed between two versions of a delegated file (IPv4 and IPv6 blocks; ASNs are
/// not compared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Blocks whose country, status or holder changed.
    pub changed: Vec<BlockChange>,
    /// Blocks only in the new file.
    pub added: Vec<BlockOnly>,
    /// Blocks only in the old file.
    pub removed: Vec<BlockOnly>,
}

/// Counts of a [`Diff`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffCounts {
    /// Blocks that changed country.
    pub country: usize,
    /// Blocks that changed holder.
    pub holder: usize,
    /// Blocks that changed status.
    pub status: usize,
    /// Blocks added.
    pub added: usize,
    /// Blocks removed.
    pub removed: usize,
    /// IPv4 addresses in blocks that changed country.
    pub country_v4_addresses: u64,
}

impl Diff {
    /// The counts.
    pub fn counts(&self) -> DiffCounts {
        let mut c = DiffCounts {
            added: self.added.len(),
            removed: self.removed.len(),
            ..DiffCounts::default()
        };
        for ch in &self.changed {
            c.country += usize::from(ch.country_changed);
            c.holder += usize::from(ch.holder_changed);
            c.status += usize::from(ch.status_changed);
            if let (true, IpAddr::V4(s), IpAddr::V4(e)) = (ch.country_changed, ch.start, ch.end) {
                c.country_v4_addresses += u64::from(u32::from(e) - u32::from(s)) + 1;
            }
        }
        c
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

fn key(b: &RirBlock<'_>) -> (bool, u128, u128) {
    let w = |a: IpAddr| match a {
        IpAddr::V4(x) => u128::from(u32::from(x)),
        IpAddr::V6(x) => u128::from(x),
    };
    (b.start.is_ipv6(), w(b.start), w(b.end))
}

/// For each id, the id it is paired with most often; ties go to a partner for which
/// `mutual(id, partner)` holds, then to the smaller id.
fn dominant<'a>(
    pairs: &[(&'a str, &'a str)],
    mutual: impl Fn(&str, &str) -> bool,
) -> HashMap<&'a str, &'a str> {
    // These maps hold at most one entry per block of the two files being compared (the
    // files are bounded by the download limit) and live only for one diff.
    let mut counts: HashMap<(&str, &str), usize> = HashMap::new();
    for &p in pairs {
        *counts.entry(p).or_default() += 1;
    }
    let mut best: HashMap<&str, (usize, bool, &str)> = HashMap::new();
    for ((a, b), n) in counts {
        let m = mutual(a, b);
        let e = best.entry(a).or_insert((n, m, b));
        if (n, m) > (e.0, e.1) || ((n, m) == (e.0, e.1) && b < e.2) {
            *e = (n, m, b);
        }
    }
    best.into_iter().map(|(a, (_, _, b))| (a, b)).collect()
}

/// Compares two versions of a delegated file.
pub fn diff(old: &RirFile, new: &RirFile) -> Diff {
    let old_blocks: Vec<RirBlock<'_>> = old.blocks().collect();
    let new_blocks: Vec<RirBlock<'_>> = new.blocks().collect();
    let old_index: HashMap<(bool, u128, u128), usize> = old_blocks
        .iter()
        .enumerate()
        .map(|(i, b)| (key(b), i))
        .collect();
    let mut matched = vec![false; old_blocks.len()];
    let mut both: Vec<(usize, usize)> = Vec::new();
    let mut out = Diff::default();
    for (j, b) in new_blocks.iter().enumerate() {
        match old_index.get(&key(b)) {
            Some(&i) => {
                matched[i] = true;
                both.push((i, j));
            }
            None => out.added.push(BlockOnly {
                start: b.start,
                end: b.end,
                state: BlockState::of(b),
            }),
        }
    }
    for (i, b) in old_blocks.iter().enumerate() {
        if !matched[i] {
            out.removed.push(BlockOnly {
                start: b.start,
                end: b.end,
                state: BlockState::of(b),
            });
        }
    }
    let pairs: Vec<(&str, &str)> = both
        .iter()
        .filter_map(|&(i, j)| Some((old_blocks[i].holder?, new_blocks[j].holder?)))
        .collect();
    let forward = dominant(&pairs, |_, _| false);
    let reversed: Vec<(&str, &str)> = pairs.iter().map(|&(a, b)| (b, a)).collect();
    let back = dominant(&reversed, |new, old| forward.get(old) == Some(&new));
    for (i, j) in both {
        let (o, n) = (&old_blocks[i], &new_blocks[j]);
        let holder_changed = match (o.holder, n.holder) {
            (None, None) => false,
            (Some(a), Some(b)) => forward.get(a) != Some(&b) || back.get(b) != Some(&a),
            _ => true,
        };
        let country_changed = o.cc != n.cc;
        let status_changed = o.status != n.status;
        if country_changed || status_changed || holder_changed {
            out.changed.push(BlockChange {
                start: n.start,
                end: n.end,
                old: BlockState::of(o),
                new: BlockState::of(n),
                country_changed,
                status_changed,
                holder_changed,
            });
        }
    }
    let order = |s: &IpAddr| (s.is_ipv6(), *s);
    out.changed.sort_by_key(|c| order(&c.start));
    out.added.sort_by_key(|c| order(&c.start));
    out.removed.sort_by_key(|c| order(&c.start));
    out
}

/// What happened to one registry.
#[derive(Debug)]
pub enum Outcome {
    /// A new file was written; the old one (if any) is now `NAME.prev`.
    Updated {
        /// Size of the new file.
        bytes: u64,
        /// Whether an `.md5` file was published and verified.
        md5_verified: bool,
        /// IPv4 + IPv6 records in the new file.
        records: usize,
        /// The changes since the previous copy; `None` on the first download (or when the
        /// previous copy could not be read: see `previous_error`).
        diff: Option<Diff>,
        /// Why the previous copy could not be compared, if it could not.
        previous_error: Option<String>,
    },
    /// The download is identical to the cached copy; nothing was written.
    Unchanged {
        /// Whether an `.md5` file was published and verified.
        md5_verified: bool,
    },
    /// The registry was not updated; its cached copy is untouched.
    Failed(GeoError),
}

/// One registry's result.
#[derive(Debug)]
pub struct RegistryUpdate {
    /// The registry.
    pub registry: Registry,
    /// Where it was fetched from.
    pub url: String,
    /// The cached file.
    pub path: PathBuf,
    /// What happened.
    pub outcome: Outcome,
}

/// The result of [`update`].
#[derive(Debug)]
pub struct UpdateReport {
    /// Per registry, in the order of [`UpdateOptions::urls`].
    pub registries: Vec<RegistryUpdate>,
}

impl UpdateReport {
    /// Whether every registry updated or was unchanged.
    pub fn is_ok(&self) -> bool {
        self.registries
            .iter()
            .all(|r| !matches!(r.outcome, Outcome::Failed(_)))
    }
}

/// Fetches every configured registry into the cache directory (see the module
/// documentation). Fails as a whole only when the cache directory cannot be created.
pub fn update(opts: &UpdateOptions) -> Result<UpdateReport, GeoError> {
    fs::create_dir_all(&opts.cache_dir)
        .map_err(|e| GeoError::io(&opts.cache_dir, "create the cache directory", e))?;
    let registries = opts
        .urls
        .iter()
        .map(|(r, url)| {
            let path = opts.cache_dir.join(cache_file_name(*r));
            let outcome = update_one(*r, url, &path, opts).unwrap_or_else(Outcome::Failed);
            RegistryUpdate {
                registry: *r,
                url: url.clone(),
                path,
                outcome,
            }
        })
        .collect();
    Ok(UpdateReport { registries })
}

fn update_one(
    registry: Registry,
    url: &str,
    path: &Path,
    opts: &UpdateOptions,
) -> Result<Outcome, GeoError> {
    let body = fetch(url, opts, false)?.unwrap_or_default();
    let md5_url = format!("{url}.md5");
    let md5_verified = match fetch(&md5_url, opts, true)? {
        None => false,
        Some(text) => {
            let expected =
                parse_md5_file(&String::from_utf8_lossy(&text)).ok_or_else(|| GeoError::Fetch {
                    url: md5_url.clone(),
                    message: "the .md5 file holds no MD5 checksum".into(),
                })?;
            let actual = format!("{:x}", md5::compute(&body));
            if actual != expected {
                return Err(GeoError::Checksum {
                    url: url.to_string(),
                    expected,
                    actual,
                });
            }
            true
        }
    };
    let text = gunzip_if_needed(path, body)?;
    let label = PathBuf::from(format!("{url} (downloaded)"));
    let new = RirFile::parse(&label, &text)?;
    new.check_counts(true)?;
    if new.registry() != Some(registry) {
        return Err(GeoError::format(
            &label,
            format!(
                "the file is {}'s, expected {registry}'s",
                new.registry().map_or("no registry", |r| r.as_str())
            ),
        ));
    }
    let old_bytes = match fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(GeoError::io(path, "read", e)),
    };
    if old_bytes.as_deref() == Some(&text[..]) {
        return Ok(Outcome::Unchanged { md5_verified });
    }
    let (diff, previous_error) = match &old_bytes {
        None => (None, None),
        Some(b) => match RirFile::parse(path, b) {
            Ok(old) => (Some(diff(&old, &new)), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    write_atomically(path, &text)?;
    Ok(Outcome::Updated {
        bytes: text.len() as u64,
        md5_verified,
        records: new.len_v4() + new.len_v6(),
        diff,
        previous_error,
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, after hard-linking the
/// current file (if any) to `path.prev` through another rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), GeoError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    let tmp = dir.join(format!(".{name}.tmp-{pid}"));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| GeoError::io(&tmp, "create", e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| GeoError::io(&tmp, "write", e))?;
        if path.exists() {
            let prev = dir.join(format!("{name}.prev"));
            let prev_tmp = dir.join(format!(".{name}.prev.tmp-{pid}"));
            let _ = fs::remove_file(&prev_tmp);
            fs::hard_link(path, &prev_tmp)
                .map_err(|e| GeoError::io(path, format!("link to {}", prev_tmp.display()), e))?;
            fs::rename(&prev_tmp, &prev).map_err(|e| {
                let _ = fs::remove_file(&prev_tmp);
                GeoError::io(&prev_tmp, format!("rename to {}", prev.display()), e)
            })?;
        }
        fs::rename(&tmp, path)
            .map_err(|e| GeoError::io(&tmp, format!("rename to {}", path.display()), e))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert!(check_url("https://ftp.apnic.net/stats/apnic/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        assert!(check_url("http://[::1]:9/x").is_ok());
        for bad in [
            "http://192.0.2.1/x",
            "http://ftp.apnic.net/x",
            "http://127.0.0.1.example.com/x",
            "ftp://ftp.apnic.net/x",
            "https://user:pw@ftp.apnic.net/x",
            "ftp.apnic.net/x",
            "https:///x",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_url("http://192.0.2.1/x").unwrap_err().to_string(),
            "http://192.0.2.1/x: plain http is refused (use https; http is only allowed to a loopback host)"
        );
    }

    #[test]
    fn md5_files_in_every_published_form() {
        let h = "0123456789abcdef0123456789ABCDEF";
        let want = Some(h.to_ascii_lowercase());
        assert_eq!(
            parse_md5_file(&format!("MD5 (delegated-apnic-extended-latest) = {h}\n")),
            want
        );
        assert_eq!(
            parse_md5_file(&format!("{h}  delegated-arin-extended-latest\n")),
            want
        );
        assert_eq!(parse_md5_file(h), want);
        assert_eq!(parse_md5_file("<html>not found</html>"), None);
    }

    fn file(text: &str) -> RirFile {
        RirFile::parse(Path::new("t"), text.as_bytes()).unwrap()
    }

    #[test]
    fn diff_reports_country_status_holder_changes_and_added_removed_blocks() {
        let old = file(
            "apnic|CN|ipv4|180.152.0.0|524288|20090821|allocated|H1\n\
             apnic|CN|ipv4|58.32.0.0|524288|20050128|allocated|H1\n\
             apnic|CN|ipv4|58.40.0.0|131072|20050128|allocated|H1\n\
             apnic|JP|ipv4|203.0.113.0|256|20100101|assigned|H2\n\
             apnic|JP|ipv4|198.51.100.0|256|20100101|assigned|H2\n\
             apnic||ipv4|192.0.2.0|256||available|\n\
             apnic|AU|ipv6|2001:db8::|32|20100101|allocated|H3\n",
        );
        // Every holder id renumbered (H1->X1, H2->X2, H3->X3): not a change by itself.
        // 180.152/13 moves to JP; 58.40/15 goes to holder X2; 192.0.2.0 is now assigned to
        // X3 in AU; 198.51.100.0 is gone; 100.64.0.0/10 is new.
        let new = file(
            "apnic|JP|ipv4|180.152.0.0|524288|20090821|allocated|X1\n\
             apnic|CN|ipv4|58.32.0.0|524288|20050128|allocated|X1\n\
             apnic|CN|ipv4|58.40.0.0|131072|20050128|allocated|X2\n\
             apnic|JP|ipv4|203.0.113.0|256|20100101|assigned|X2\n\
             apnic|AU|ipv4|192.0.2.0|256|20200101|assigned|X3\n\
             apnic|AU|ipv6|2001:db8::|32|20100101|allocated|X3\n\
             apnic|NZ|ipv4|100.64.0.0|4194304|20200101|allocated|X4\n",
        );
        let d = diff(&old, &new);
        let changed: Vec<(String, bool, bool, bool)> = d
            .changed
            .iter()
            .map(|c| {
                (
                    c.start.to_string(),
                    c.country_changed,
                    c.status_changed,
                    c.holder_changed,
                )
            })
            .collect();
        assert_eq!(
            changed,
            vec![
                ("58.40.0.0".into(), false, false, true),
                ("180.152.0.0".into(), true, false, false),
                ("192.0.2.0".into(), true, true, true),
            ]
        );
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].start.to_string(), "100.64.0.0");
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.removed[0].start.to_string(), "198.51.100.0");
        let c = d.counts();
        assert_eq!(
            (c.country, c.holder, c.status, c.added, c.removed),
            (2, 2, 1, 1, 1)
        );
        assert_eq!(c.country_v4_addresses, 524_288 + 256);
        assert!(diff(&old, &old).is_empty());
    }
}

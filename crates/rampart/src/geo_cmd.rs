//! `rampart geo lookup|update`: the offline whois and the RIR data updater.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use ipnet::IpNet;
use rampart_geo::update::{
    cached_files, update, BlockState, Diff, Outcome, UpdateOptions, DEFAULT_CACHE_DIR,
};
use rampart_geo::{Answer, GeoDb, Registry, RirBlock, Source};
use serde::Serialize;

/// `rampart geo ...`.
#[derive(Debug, Subcommand)]
pub enum GeoCommand {
    /// Offline whois: what each source says about an address (registry, country, block and
    /// its CIDRs, status, registration date, holder id and the holder's other blocks).
    Lookup(LookupArgs),
    /// Fetch the RIRs' delegated-extended files into the cache (checked, atomically, keeping
    /// the previous copy) and print what changed.
    Update(UpdateArgs),
}

/// `rampart geo lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// The address (IPv4 or IPv6).
    pub addr: String,
    /// A data file (repeatable; the order is the precedence): an RIR delegated-extended
    /// file, a country prefix list, a MaxMind DB (.mmdb) or a start,end,cc CSV; plain or
    /// gzip. Default: the files `geo update` keeps in the cache directory.
    #[arg(long = "source", value_name = "FILE")]
    pub sources: Vec<PathBuf>,
    /// The cache directory read when no --source is given.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CACHE_DIR)]
    pub cache: PathBuf,
    /// Print one JSON document (documented in docs/geo.md).
    #[arg(long)]
    pub json: bool,
}

/// `rampart geo update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Where the files go (`delegated-RIR-extended-latest`, previous copy `.prev`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CACHE_DIR)]
    pub cache: PathBuf,
    /// Fetch a registry from another URL (repeatable), e.g. apnic=https://mirror/x. Plain
    /// http is refused unless the host is loopback.
    #[arg(long = "url", value_name = "RIR=URL")]
    pub urls: Vec<String>,
    /// Only these registries (repeatable; default: afrinic, apnic, arin, lacnic, ripencc).
    #[arg(long = "only", value_name = "RIR")]
    pub only: Vec<String>,
    /// Seconds a connection may take to open and a read may stall.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// Changed, added and removed blocks listed per registry in the text report (--json
    /// lists all).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print one JSON document (documented in docs/geo.md).
    #[arg(long)]
    pub json: bool,
}

/// Writes to standard output; a closed pipe surfaces as an `io::Error` the caller maps to a
/// quiet exit.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Runs a `geo` subcommand.
pub fn run(cmd: &GeoCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        GeoCommand::Lookup(a) => lookup(a),
        GeoCommand::Update(a) => run_update(a),
    }
}

// ---------------------------------------------------------------------------------------
// lookup
// ---------------------------------------------------------------------------------------

/// Holder blocks listed in the text report; JSON lists all.
const TEXT_HOLDER_BLOCKS: usize = 50;

#[derive(Serialize)]
struct LookupJson {
    address: IpAddr,
    /// By precedence: the first source that gives the address a country.
    country: Option<String>,
    /// Index into `answers` of the source that decided `country`.
    decided_by: Option<usize>,
    sources: Vec<SourceJson>,
    answers: Vec<AnswerJson>,
}

#[derive(Serialize)]
struct SourceJson {
    path: String,
    kind: &'static str,
}

#[derive(Serialize)]
struct AnswerJson {
    source: SourceJson,
    country: Option<String>,
    block: BlockJson,
    registry: Option<&'static str>,
    cc: Option<String>,
    status: Option<&'static str>,
    date: Option<String>,
    holder: Option<String>,
    holder_blocks: Option<Vec<HolderBlockJson>>,
}

#[derive(Serialize)]
struct BlockJson {
    start: IpAddr,
    end: IpAddr,
    addresses: u128,
    cidrs: Vec<String>,
}

#[derive(Serialize)]
struct HolderBlockJson {
    start: IpAddr,
    end: IpAddr,
    addresses: u128,
    cidrs: Vec<String>,
    cc: Option<String>,
    status: &'static str,
    date: Option<String>,
}

fn cidr_strings(nets: &[IpNet]) -> Vec<String> {
    nets.iter().map(ToString::to_string).collect()
}

fn range_size(s: IpAddr, e: IpAddr) -> u128 {
    match (s, e) {
        (IpAddr::V4(s), IpAddr::V4(e)) => u128::from(u32::from(e) - u32::from(s)) + 1,
        (IpAddr::V6(s), IpAddr::V6(e)) => (u128::from(e) - u128::from(s)).saturating_add(1),
        _ => 0,
    }
}

fn load_sources(args: &LookupArgs) -> anyhow::Result<GeoDb> {
    let paths = if args.sources.is_empty() {
        let found = cached_files(&args.cache);
        if found.is_empty() {
            bail!(
                "no geo data in {}: run `rampart geo update` first, or pass --source FILE",
                args.cache.display()
            );
        }
        found
    } else {
        args.sources.clone()
    };
    let sources = paths
        .iter()
        .map(|p| Source::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GeoDb::new(sources))
}

/// The holder's blocks in the answer's own file, other than the answer's block.
fn other_blocks<'a>(db: &'a GeoDb, a: &Answer<'a>, b: &RirBlock<'a>) -> Vec<RirBlock<'a>> {
    let Some(holder) = b.holder else {
        return Vec::new();
    };
    db.sources()[a.source_index]
        .rir()
        .map(|f| f.holder_blocks(holder))
        .unwrap_or_default()
        .into_iter()
        .filter(|o| o.start != b.start)
        .collect()
}

fn lookup(args: &LookupArgs) -> anyhow::Result<ExitCode> {
    let ip: IpAddr = args
        .addr
        .trim()
        .parse()
        .with_context(|| format!("{:?} is not an IP address", args.addr))?;
    let db = load_sources(args)?;
    let answers = db.lookup(ip);
    let located = db.locate(ip);
    if args.json {
        let doc = LookupJson {
            address: ip,
            country: located.map(|l| l.country.to_string()),
            decided_by: located
                .and_then(|l| answers.iter().position(|a| a.source_index == l.source)),
            sources: db
                .sources()
                .iter()
                .map(|s| SourceJson {
                    path: s.info().path.display().to_string(),
                    kind: s.info().kind.as_str(),
                })
                .collect(),
            answers: answers.iter().map(|a| answer_json(&db, a)).collect(),
        };
        emit(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    emit(&lookup_text(&db, ip, &answers))?;
    Ok(ExitCode::SUCCESS)
}

fn answer_json(db: &GeoDb, a: &Answer<'_>) -> AnswerJson {
    let source = SourceJson {
        path: a.source.path.display().to_string(),
        kind: a.source.kind.as_str(),
    };
    let (start, end) = match &a.hit.block {
        Some(b) => (b.start, b.end),
        None => (a.hit.start, a.hit.end),
    };
    let block = BlockJson {
        start,
        end,
        addresses: range_size(start, end),
        cidrs: cidr_strings(&a.cidrs()),
    };
    let mut out = AnswerJson {
        source,
        country: a.hit.country.map(|c| c.to_string()),
        block,
        registry: None,
        cc: None,
        status: None,
        date: None,
        holder: None,
        holder_blocks: None,
    };
    if let Some(b) = &a.hit.block {
        out.registry = Some(b.registry.as_str());
        out.cc = b.cc.map(|c| c.to_string());
        out.status = Some(b.status.as_str());
        out.date = b.date.map(|d| d.to_string());
        out.holder = b.holder.map(str::to_string);
        out.holder_blocks = b.holder.map(|_| {
            other_blocks(db, a, b)
                .iter()
                .map(|o| HolderBlockJson {
                    start: o.start,
                    end: o.end,
                    addresses: o.size(),
                    cidrs: cidr_strings(&o.cidrs()),
                    cc: o.cc.map(|c| c.to_string()),
                    status: o.status.as_str(),
                    date: o.date.map(|d| d.to_string()),
                })
                .collect()
        });
    }
    out
}

fn lookup_text(db: &GeoDb, ip: IpAddr, answers: &[Answer<'_>]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{ip}");
    if answers.is_empty() {
        let _ = writeln!(
            t,
            "  no source knows this address ({} source{} loaded)",
            db.sources().len(),
            if db.sources().len() == 1 { "" } else { "s" }
        );
        return t;
    }
    for a in answers {
        let _ = writeln!(t, "  {} ({})", a.source.name(), a.source.kind);
        let cidrs = a
            .cidrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        match &a.hit.block {
            Some(b) => {
                let _ = writeln!(t, "    registry  {}", b.registry);
                let cc = b.cc.map_or("-".to_string(), |c| c.to_string());
                let note = if a.hit.country.is_none() {
                    "  (no registration country: not delegated)"
                } else {
                    ""
                };
                let _ = writeln!(t, "    country   {cc}{note}");
                let _ = writeln!(
                    t,
                    "    block     {cidrs}  ({} - {}, {} addresses)",
                    b.start,
                    b.end,
                    b.size()
                );
                let _ = writeln!(t, "    status    {}", b.status);
                let _ = writeln!(
                    t,
                    "    date      {}",
                    b.date.map_or("-".to_string(), |d| d.to_string())
                );
                match b.holder {
                    None => {
                        let _ = writeln!(t, "    holder    -");
                    }
                    Some(h) => {
                        let others = other_blocks(db, a, b);
                        let (mut n4, mut n6, mut addrs4) = (0usize, 0usize, u128::from(0u8));
                        for o in others.iter().chain(std::iter::once(b)) {
                            if o.start.is_ipv4() {
                                n4 += 1;
                                addrs4 += o.size();
                            } else {
                                n6 += 1;
                            }
                        }
                        let _ = writeln!(
                            t,
                            "    holder    {h}: {n4} IPv4 block{} ({addrs4} addresses), {n6} IPv6 block{}",
                            if n4 == 1 { "" } else { "s" },
                            if n6 == 1 { "" } else { "s" }
                        );
                        if !others.is_empty() {
                            let _ = writeln!(t, "    the holder's other blocks:");
                            for o in others.iter().take(TEXT_HOLDER_BLOCKS) {
                                let nets = o
                                    .cidrs()
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join(" ");
                                let _ = writeln!(
                                    t,
                                    "      {nets:<24} {:<3} {:<9} {}",
                                    o.cc.map_or("-".to_string(), |c| c.to_string()),
                                    o.status,
                                    o.date.map_or("-".to_string(), |d| d.to_string())
                                );
                            }
                            if others.len() > TEXT_HOLDER_BLOCKS {
                                let _ = writeln!(
                                    t,
                                    "      ... and {} more (--json lists all)",
                                    others.len() - TEXT_HOLDER_BLOCKS
                                );
                            }
                        }
                    }
                }
            }
            None => {
                let cc = a.hit.country.map_or("-".to_string(), |c| c.to_string());
                let _ = writeln!(t, "    country   {cc}");
                let _ = writeln!(t, "    network   {cidrs}");
            }
        }
    }
    match db.locate(ip) {
        Some(l) if answers.len() > 1 => {
            let name = db.sources()[l.source].info().name();
            let agree = answers
                .iter()
                .filter_map(|a| a.hit.country)
                .all(|c| c == l.country);
            let _ = writeln!(
                t,
                "  country by precedence: {} (from {name}){}",
                l.country,
                if agree { "" } else { "; the sources disagree" }
            );
        }
        _ => {}
    }
    t
}

// ---------------------------------------------------------------------------------------
// update
// ---------------------------------------------------------------------------------------

#[derive(Serialize)]
struct UpdateJson {
    cache: String,
    ok: bool,
    registries: Vec<RegistryJson>,
}

#[derive(Serialize)]
struct RegistryJson {
    registry: &'static str,
    url: String,
    path: String,
    /// "updated", "unchanged" or "failed".
    result: &'static str,
    error: Option<String>,
    md5_verified: Option<bool>,
    bytes: Option<u64>,
    records: Option<usize>,
    /// True on the first download (nothing to compare with).
    first_download: Option<bool>,
    counts: Option<CountsJson>,
    changed: Vec<ChangeJson>,
    added: Vec<OnlyJson>,
    removed: Vec<OnlyJson>,
}

#[derive(Serialize)]
struct CountsJson {
    country: usize,
    holder: usize,
    status: usize,
    added: usize,
    removed: usize,
    country_v4_addresses: u64,
}

#[derive(Serialize)]
struct StateJson {
    cc: Option<String>,
    status: &'static str,
    holder: Option<String>,
}

impl From<&BlockState> for StateJson {
    fn from(s: &BlockState) -> Self {
        StateJson {
            cc: s.cc.map(|c| c.to_string()),
            status: s.status.as_str(),
            holder: s.holder.clone(),
        }
    }
}

#[derive(Serialize)]
struct ChangeJson {
    start: IpAddr,
    end: IpAddr,
    cidrs: Vec<String>,
    country_changed: bool,
    holder_changed: bool,
    status_changed: bool,
    old: StateJson,
    new: StateJson,
}

#[derive(Serialize)]
struct OnlyJson {
    start: IpAddr,
    end: IpAddr,
    cidrs: Vec<String>,
    #[serde(flatten)]
    state: StateJson,
}

fn cidrs_of(s: IpAddr, e: IpAddr) -> Vec<String> {
    cidr_strings(&rampart_geo::range_to_cidrs(s, e).unwrap_or_default())
}

fn options(args: &UpdateArgs) -> anyhow::Result<UpdateOptions> {
    let mut opts = UpdateOptions::new(&args.cache);
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    opts.connect_timeout = timeout;
    opts.read_timeout = timeout;
    for spec in &args.urls {
        let (r, url) = spec
            .split_once('=')
            .with_context(|| format!("--url {spec:?}: expected RIR=URL"))?;
        let r: Registry = r.parse().with_context(|| format!("--url {spec:?}"))?;
        rampart_geo::update::check_url(url).with_context(|| format!("--url {spec:?}"))?;
        opts.set_url(r, url);
    }
    if !args.only.is_empty() {
        let only = args
            .only
            .iter()
            .map(|r| {
                r.parse::<Registry>()
                    .with_context(|| format!("--only {r:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        opts.urls.retain(|(r, _)| only.contains(r));
    }
    Ok(opts)
}

fn run_update(args: &UpdateArgs) -> anyhow::Result<ExitCode> {
    let opts = options(args)?;
    let report = update(&opts)?;
    if args.json {
        let doc = UpdateJson {
            cache: opts.cache_dir.display().to_string(),
            ok: report.is_ok(),
            registries: report.registries.iter().map(registry_json).collect(),
        };
        emit(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
    } else {
        emit(&update_text(&report, args.limit))?;
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn registry_json(r: &rampart_geo::update::RegistryUpdate) -> RegistryJson {
    let mut out = RegistryJson {
        registry: r.registry.as_str(),
        url: r.url.clone(),
        path: r.path.display().to_string(),
        result: "failed",
        error: None,
        md5_verified: None,
        bytes: None,
        records: None,
        first_download: None,
        counts: None,
        changed: Vec::new(),
        added: Vec::new(),
        removed: Vec::new(),
    };
    match &r.outcome {
        Outcome::Failed(e) => out.error = Some(e.to_string()),
        Outcome::Unchanged { md5_verified } => {
            out.result = "unchanged";
            out.md5_verified = Some(*md5_verified);
        }
        Outcome::Updated {
            bytes,
            md5_verified,
            records,
            diff,
            previous_error,
        } => {
            out.result = "updated";
            out.md5_verified = Some(*md5_verified);
            out.bytes = Some(*bytes);
            out.records = Some(*records);
            out.first_download = Some(diff.is_none() && previous_error.is_none());
            out.error = previous_error
                .as_ref()
                .map(|e| format!("previous copy not compared: {e}"));
            if let Some(d) = diff {
                let c = d.counts();
                out.counts = Some(CountsJson {
                    country: c.country,
                    holder: c.holder,
                    status: c.status,
                    added: c.added,
                    removed: c.removed,
                    country_v4_addresses: c.country_v4_addresses,
                });
                out.changed = d
                    .changed
                    .iter()
                    .map(|ch| ChangeJson {
                        start: ch.start,
                        end: ch.end,
                        cidrs: cidrs_of(ch.start, ch.end),
                        country_changed: ch.country_changed,
                        holder_changed: ch.holder_changed,
                        status_changed: ch.status_changed,
                        old: (&ch.old).into(),
                        new: (&ch.new).into(),
                    })
                    .collect();
                let only = |b: &rampart_geo::update::BlockOnly| OnlyJson {
                    start: b.start,
                    end: b.end,
                    cidrs: cidrs_of(b.start, b.end),
                    state: (&b.state).into(),
                };
                out.added = d.added.iter().map(only).collect();
                out.removed = d.removed.iter().map(only).collect();
            }
        }
    }
    out
}

fn state_text(s: &BlockState) -> String {
    format!(
        "{} {} {}",
        s.cc.map_or("-".to_string(), |c| c.to_string()),
        s.status,
        s.holder.as_deref().unwrap_or("-")
    )
}

fn diff_text(t: &mut String, d: &Diff, limit: usize) {
    let c = d.counts();
    let _ = writeln!(
        t,
        "          {} changed country ({} IPv4 addresses), {} changed holder, {} changed status, {} added, {} removed",
        c.country, c.country_v4_addresses, c.holder, c.status, c.added, c.removed
    );
    let mut listed = 0;
    for ch in &d.changed {
        if listed == limit {
            break;
        }
        let what = [
            (ch.country_changed, "country"),
            (ch.holder_changed, "holder"),
            (ch.status_changed, "status"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, w)| *w)
        .collect::<Vec<_>>()
        .join("+");
        let _ = writeln!(
            t,
            "          {what:<14} {}  {} -> {}",
            cidrs_of(ch.start, ch.end).join(" "),
            state_text(&ch.old),
            state_text(&ch.new)
        );
        listed += 1;
    }
    for (word, list) in [("added", &d.added), ("removed", &d.removed)] {
        for b in list.iter().take(limit.saturating_sub(listed)) {
            let _ = writeln!(
                t,
                "          {word:<14} {}  {}",
                cidrs_of(b.start, b.end).join(" "),
                state_text(&b.state)
            );
            listed += 1;
        }
    }
    let total = d.changed.len() + d.added.len() + d.removed.len();
    if total > listed {
        let _ = writeln!(
            t,
            "          ... and {} more (--json lists all)",
            total - listed
        );
    }
}

fn update_text(report: &rampart_geo::update::UpdateReport, limit: usize) -> String {
    let mut t = String::new();
    let (mut updated, mut unchanged, mut failed) = (0, 0, 0);
    for r in &report.registries {
        let name = r.registry.as_str();
        match &r.outcome {
            Outcome::Failed(e) => {
                failed += 1;
                let _ = writeln!(t, "{name:<9} FAILED    {e}");
            }
            Outcome::Unchanged { md5_verified } => {
                unchanged += 1;
                let _ = writeln!(
                    t,
                    "{name:<9} unchanged {} ({})",
                    r.path.display(),
                    if *md5_verified {
                        "md5 verified"
                    } else {
                        "no md5 published"
                    }
                );
            }
            Outcome::Updated {
                bytes,
                md5_verified,
                records,
                diff,
                previous_error,
            } => {
                updated += 1;
                let _ = writeln!(
                    t,
                    "{name:<9} updated   {} ({bytes} bytes, {records} address records, {})",
                    r.path.display(),
                    if *md5_verified {
                        "md5 verified"
                    } else {
                        "no md5 published"
                    }
                );
                match (diff, previous_error) {
                    (Some(d), _) => diff_text(&mut t, d, limit),
                    (None, Some(e)) => {
                        let _ = writeln!(t, "          previous copy not compared: {e}");
                    }
                    (None, None) => {
                        let _ = writeln!(t, "          first download: nothing to compare");
                    }
                }
            }
        }
    }
    let _ = writeln!(
        t,
        "{updated} updated, {unchanged} unchanged, {failed} failed"
    );
    t
}

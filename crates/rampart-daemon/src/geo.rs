//! Country policies in the daemon: load the geo data, compile every `[geo]` policy to its
//! minimal sets, apply them through a [`GeoEnforcer`], poll notify policies for first
//! contacts, and describe addresses (country, registry block) for ban records.
//!
//! Start: [`GeoRuntime::start`] runs in `Engine::new`, before any source starts; an error
//! there stops the daemon (exit 2). Reload: [`GeoRuntime::reload`] loads and compiles the
//! new data and policies completely before touching the kernel; any error leaves the old
//! data and sets in place.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rampart_config::geo::{Geo, GeoPolicy, GeoWiden};
use rampart_config::{BackendKind, Daemon};
use rampart_core::Timestamp;
use rampart_enforce::{
    GeoAction, GeoEnforcer, GeoIpsetConfig, GeoLogOnly, GeoNftConfig, GeoPlan, GeoRule,
};
use rampart_geo::{compile_policy, widen, GeoDb, PolicyMode, PolicySpec, RangeSet, Source, Widen};
use serde_json::{json, Value};

use crate::{info, warn};

/// How often notify policies are polled for new sources.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// First contacts remembered: one per (policy, country); policies are bounded by the
/// config (64) and countries by the two-letter codes, so this cap is a safety net: when
/// full, new first contacts are logged but not kept for `status`.
const MAX_FIRST_CONTACTS: usize = 64 * 256;
/// Above this many prefixes a policy's set costs noticeable memory and per-packet time
/// (geo.md §4.4): the daemon warns.
const WARN_PREFIXES: usize = 200_000;

/// A policy as compiled, for `status`.
#[derive(Debug, Clone)]
struct Compiled {
    policy: GeoPolicy,
    v4: usize,
    v6: usize,
    addresses_v4: u64,
    unknown: Vec<String>,
}

/// The first contact of an unexpected country with a notify policy.
#[derive(Debug, Clone)]
struct FirstContact {
    addr: IpAddr,
    block: Option<String>,
    at: Timestamp,
    count: u64,
}

/// The daemon's geo state (owned by the engine thread).
#[derive(Debug)]
pub struct GeoRuntime {
    geo: Option<Geo>,
    db: Option<Arc<GeoDb>>,
    enforcer: Box<dyn GeoEnforcer>,
    compiled: Vec<Compiled>,
    files: Vec<PathBuf>,
    loaded_at: Option<Timestamp>,
    load_ms: u128,
    apply_ms: u128,
    /// (policy, country or "??") -> first contact. Bounded by [`MAX_FIRST_CONTACTS`].
    contacts: BTreeMap<(String, String), FirstContact>,
    next_poll: Instant,
    errors: u64,
    /// The plan of the `[geo]` policies last applied (without the block bans).
    plan: GeoPlan,
    /// The block bans' deny rule (`[blocks]`), when any block is banned.
    blocks: Option<GeoRule>,
}

/// The data files a `[geo]` section names: files as they are, directories expanded to the
/// files `rampart geo update` keeps there.
pub fn data_files(geo: &Geo) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for p in &geo.sources {
        if p.is_dir() {
            let found = rampart_geo::update::cached_files(p);
            if found.is_empty() {
                return Err(format!(
                    "geo source {}: the directory holds no RIR file (run `rampart geo update --cache {}`)",
                    p.display(),
                    p.display()
                ));
            }
            files.extend(found);
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            return Err(format!(
                "geo source {}: no such file or directory",
                p.display()
            ));
        }
    }
    Ok(files)
}

/// Loads the data of `geo` in its precedence.
pub fn load_db(geo: &Geo) -> Result<(GeoDb, Vec<PathBuf>), String> {
    let files = data_files(geo)?;
    let sources = files
        .iter()
        .map(|f| Source::load(f).map_err(|e| format!("geo source: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((GeoDb::with_precedence(sources, geo.precedence), files))
}

/// Compiles one policy to its rule (minimal aggregated sets).
fn compile_one(db: &GeoDb, p: &GeoPolicy) -> (GeoRule, Compiled) {
    let c = compile_policy(
        db,
        &PolicySpec {
            mode: p.mode,
            countries: p.countries.clone(),
            also: p.also.clone(),
            except: p.except.clone(),
            resolve: p.resolve,
        },
    );
    let mut set = c.set;
    let mut addresses_v4 = c.addresses_v4;
    if p.widen == GeoWiden::Registry {
        // Every block that touches a range contains one of its ends or lies inside it.
        let ends = set.nets().flat_map(|n| [n.network(), n.broadcast()]);
        let grown = widen(db, ends, Widen::Registry)
            .union(&RangeSet::from_nets(set.nets()))
            .difference(&RangeSet::from_nets(p.except.iter().copied()));
        addresses_v4 = grown.count_v4();
        set = grown.to_cidrs();
    }
    let compiled = Compiled {
        policy: p.clone(),
        v4: set.v4.len(),
        v6: set.v6.len(),
        addresses_v4,
        unknown: c
            .unknown_countries
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
    };
    let rule = GeoRule {
        name: p.name.clone(),
        action: match p.mode {
            PolicyMode::Allow => GeoAction::Allow,
            PolicyMode::Deny => GeoAction::Deny,
        },
        notify: p.notify,
        protocols: p.protocols.clone(),
        ports: p.ports.clone(),
        v4: set.v4,
        v6: set.v6,
    };
    (rule, compiled)
}

/// Set sizes of one compiled policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoPolicyReport {
    /// The policy.
    pub name: String,
    /// IPv4 prefixes in its set.
    pub v4: usize,
    /// IPv6 prefixes in its set.
    pub v6: usize,
}

/// Compiles every policy of `geo` against `db`: the kernel plan and each policy's set sizes.
pub fn compile(geo: &Geo, db: &GeoDb) -> (GeoPlan, Vec<GeoPolicyReport>) {
    let (plan, compiled) = compile_all(geo, db);
    let reports = compiled
        .iter()
        .map(|c| GeoPolicyReport {
            name: c.policy.name.clone(),
            v4: c.v4,
            v6: c.v6,
        })
        .collect();
    (plan, reports)
}

fn compile_all(geo: &Geo, db: &GeoDb) -> (GeoPlan, Vec<Compiled>) {
    let (rules, compiled): (Vec<GeoRule>, Vec<Compiled>) =
        geo.policies.iter().map(|p| compile_one(db, p)).unzip();
    (
        GeoPlan {
            rules,
            pass: geo.pass.clone(),
        },
        compiled,
    )
}

/// `plan` plus the block bans' rule.
fn with_blocks(plan: &GeoPlan, blocks: Option<&GeoRule>) -> GeoPlan {
    let mut out = plan.clone();
    out.rules.extend(blocks.cloned());
    out
}

/// The enforcer for the daemon's backend (`dry_run` or log-only: nothing is enforced).
pub fn make_enforcer(d: &Daemon, dry_run: bool) -> Result<Box<dyn GeoEnforcer>, String> {
    if dry_run {
        return Ok(Box::new(GeoLogOnly::default()));
    }
    Ok(match d.backend {
        BackendKind::LogOnly => Box::new(GeoLogOnly::default()),
        BackendKind::Nftables => Box::new(
            GeoNftConfig {
                table: d.table.clone(),
                netns: None,
            }
            .build()
            .map_err(|e| format!("geo (nftables): {e}"))?,
        ),
        BackendKind::Ipset => Box::new(
            GeoIpsetConfig { netns: None }
                .build()
                .map_err(|e| format!("geo (ipset): {e}"))?,
        ),
    })
}

fn now() -> Timestamp {
    use rampart_core::Clock;
    rampart_core::SystemClock.now()
}

impl GeoRuntime {
    /// Loads the data, compiles and applies the policies of `geo` (or removes leftover
    /// geo objects when there is no `[geo]`).
    pub fn start(
        geo: Option<&Geo>,
        mut enforcer: Box<dyn GeoEnforcer>,
    ) -> Result<GeoRuntime, String> {
        let mut rt = GeoRuntime {
            geo: None,
            db: None,
            enforcer: Box::new(GeoLogOnly::default()),
            compiled: Vec::new(),
            files: Vec::new(),
            loaded_at: None,
            load_ms: 0,
            apply_ms: 0,
            contacts: BTreeMap::new(),
            next_poll: Instant::now() + POLL_EVERY,
            errors: 0,
            plan: GeoPlan::default(),
            blocks: None,
        };
        match geo {
            None => {
                enforcer
                    .remove()
                    .map_err(|e| format!("removing old country policies: {e}"))?;
                rt.enforcer = enforcer;
            }
            Some(g) => {
                rt.enforcer = enforcer;
                let msg = rt.reload(Some(g))?;
                info!(; "{msg}");
            }
        }
        Ok(rt)
    }

    /// Replaces the data and policies. Everything is loaded and compiled before the kernel
    /// is touched; on an error the old policies keep running.
    pub fn reload(&mut self, geo: Option<&Geo>) -> Result<String, String> {
        let Some(g) = geo else {
            self.plan = GeoPlan::default();
            self.push()
                .map_err(|e| format!("the firewall refused to remove the country policies: {e}"))?;
            self.geo = None;
            self.db = None;
            self.compiled.clear();
            self.files.clear();
            return Ok("No [geo] section: country policies removed.".into());
        };
        let t0 = Instant::now();
        let (db, files) = load_db(g)?;
        let (plan, compiled) = compile_all(g, &db);
        let load_ms = t0.elapsed().as_millis();
        for c in &compiled {
            if c.v4 + c.v6 > WARN_PREFIXES {
                warn!(policy = %c.policy.name, prefixes = c.v4 + c.v6;
                    "A country policy set is large; consider an allow list or widen = \"registry\".");
            }
            if !c.unknown.is_empty() {
                warn!(policy = %c.policy.name, countries = %c.unknown.join(",");
                    "The geo data has no address for some listed countries.");
            }
        }
        let t1 = Instant::now();
        let applied = self
            .enforcer
            .apply(&with_blocks(&plan, self.blocks.as_ref()))
            .map_err(|e| format!("the firewall refused the country policies: {e}"))?;
        self.plan = plan;
        self.apply_ms = t1.elapsed().as_millis();
        self.load_ms = load_ms;
        self.db = Some(Arc::new(db));
        self.files = files;
        self.geo = Some(g.clone());
        self.loaded_at = Some(now());
        // Contacts of policies that are gone no longer mean anything.
        self.contacts
            .retain(|(p, _), _| g.policies.iter().any(|x| &x.name == p && x.notify));
        self.compiled = compiled;
        Ok(format!(
            "Country policies applied: {} polic(ies), {} set(s) loaded in {} ms (data and compile {} ms).",
            self.compiled.len(),
            applied.loaded.len(),
            self.apply_ms,
            self.load_ms
        ))
    }

    /// Makes the kernel drop exactly `blocks` (the running block bans of `[blocks]`), as a
    /// deny rule named `blocks` on all traffic in the country-policy chain, next to the
    /// `[geo]` policies. The set is replaced atomically like every geo set.
    pub fn set_blocks(&mut self, blocks: &[IpNet]) -> Result<(), String> {
        let rule = if blocks.is_empty() {
            None
        } else {
            let set = rampart_geo::aggregate(blocks.iter().copied());
            Some(GeoRule {
                name: rampart_config::bans::BLOCKS_JAIL.to_owned(),
                action: GeoAction::Deny,
                notify: false,
                protocols: Vec::new(),
                ports: Vec::new(),
                v4: set.v4,
                v6: set.v6,
            })
        };
        if rule == self.blocks {
            return Ok(());
        }
        let before = std::mem::replace(&mut self.blocks, rule);
        self.push().map_err(|e| {
            // Not applied: the next call tries again.
            self.blocks = before;
            format!("the firewall refused the block bans: {e}")
        })
    }

    /// Applies the current plan and block rule (or removes everything when both are empty).
    fn push(&mut self) -> Result<(), rampart_enforce::EnforceError> {
        if self.plan.rules.is_empty() && self.blocks.is_none() {
            return self.enforcer.remove();
        }
        self.enforcer
            .apply(&with_blocks(&self.plan, self.blocks.as_ref()))
            .map(|_| ())
    }

    /// Looks up the registry block of `ip` as CIDRs (empty without geo data).
    pub fn allocation(&self, ip: IpAddr) -> Vec<IpNet> {
        self.db
            .as_ref()
            .and_then(|db| db.registry_block(ip))
            .map(|b| b.cidrs())
            .unwrap_or_default()
    }

    /// Whether geo data is loaded.
    pub fn has_data(&self) -> bool {
        self.db.is_some()
    }

    /// The country (by precedence) and the registry block of `ip`, when geo data is loaded.
    pub fn describe(&self, ip: IpAddr) -> (Option<String>, Option<String>) {
        let Some(db) = &self.db else {
            return (None, None);
        };
        let country = db.country(ip).map(|c| c.as_str().to_owned());
        let block = db.registry_block(ip).map(|b| {
            b.cidrs()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        });
        (country, block)
    }

    /// Polls notify policies (every [`POLL_EVERY`]) and records first contacts.
    pub fn tick(&mut self) {
        if Instant::now() < self.next_poll {
            return;
        }
        self.next_poll = Instant::now() + POLL_EVERY;
        let Some(g) = &self.geo else { return };
        if !g.policies.iter().any(|p| p.notify) {
            return;
        }
        let seen = match self.enforcer.seen() {
            Ok(s) => s,
            Err(e) => {
                self.errors += 1;
                if self.errors < 10 || self.errors.is_power_of_two() {
                    warn!(error = %e; "Could not read the notify sets of the country policies.");
                }
                return;
            }
        };
        let at = now();
        for (policy, ip) in seen {
            let (country, block) = self.describe(ip);
            let cc = country.clone().unwrap_or_else(|| "??".into());
            let key = (policy.clone(), cc.clone());
            if let Some(c) = self.contacts.get_mut(&key) {
                c.count += 1;
                continue;
            }
            let block_text = block.clone().unwrap_or_else(|| "-".into());
            info!(policy = %policy, country = %cc, ip = %ip, block = %block_text;
                "First contact from an unexpected country (notify mode: let through).");
            if self.contacts.len() < MAX_FIRST_CONTACTS {
                self.contacts.insert(
                    key,
                    FirstContact {
                        addr: ip,
                        block,
                        at,
                        count: 1,
                    },
                );
            }
        }
    }

    /// The `geo` part of `rampart status`.
    pub fn status_json(&self) -> Value {
        let Some(g) = &self.geo else {
            return Value::Null;
        };
        let policies: Vec<Value> = self
            .compiled
            .iter()
            .map(|c| {
                let p = &c.policy;
                json!({
                    "name": p.name,
                    "mode": match p.mode { PolicyMode::Allow => "allow", PolicyMode::Deny => "deny" },
                    "action": if p.notify { "notify" } else { "enforce" },
                    "countries": p.countries.iter().map(|c| c.as_str().to_owned()).collect::<Vec<_>>(),
                    "blocks": p.also.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                    "except": p.except.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                    "jail": p.jail.as_ref().map(|j| j.as_str().to_owned()),
                    "ports": p.ports.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                    "protocols": p.protocols.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                    "resolve": format!("{:?}", p.resolve).to_lowercase(),
                    "widen": if p.widen == GeoWiden::Registry { "registry" } else { "none" },
                    "set_v4": c.v4,
                    "set_v6": c.v6,
                    "addresses_v4": c.addresses_v4,
                    "unknown_countries": c.unknown,
                    "first_contacts": self.contacts.iter()
                        .filter(|((name, _), _)| name == &p.name)
                        .map(|((_, cc), f)| json!({
                            "country": cc,
                            "addr": f.addr.to_string(),
                            "block": f.block,
                            "at": f.at.to_string(),
                            "seen": f.count,
                        }))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "backend": self.enforcer.name(),
            "sources": self.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "precedence": format!("{:?}", g.precedence),
            "loaded_at": self.loaded_at.map(|t| t.to_string()),
            "load_ms": self.load_ms,
            "apply_ms": self.apply_ms,
            "pass": g.pass.iter().map(IpNet::to_string).collect::<Vec<_>>(),
            "notify_errors": self.errors,
            "policies": policies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_config::Config;
    use std::path::Path;

    fn config(geo: &str) -> Config {
        let apnic = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/geo/rir/delegated-apnic-extended-20181013.gz");
        let text = format!(
            "[[jail]]\nname = \"sshd\"\nfilter = \"sshd\"\nallow = [\"192.0.2.9\"]\n\n[geo]\nsources = [\"{}\"]\n{geo}",
            apnic.display()
        );
        Config::parse(Path::new("/etc/rampart/t.toml"), &text).unwrap()
    }

    fn contains(rule: &GeoRule, ip: &str) -> bool {
        let ip: std::net::Ipv4Addr = ip.parse().unwrap();
        rule.v4.iter().any(|n| n.contains(&ip))
    }

    #[test]
    fn policies_compile_to_their_sets_and_registry_widening_takes_whole_allocations() {
        let c = config(
            "[[geo.policy]]\nname = \"exact\"\nallow_countries = [\"JP\"]\nalso = [\"180.152.1.0/24\"]\n\n\
             [[geo.policy]]\nname = \"wide\"\nallow_countries = [\"JP\"]\nalso = [\"180.152.1.0/24\"]\nexcept = [\"180.152.2.0/24\"]\nwiden = \"registry\"\n",
        );
        let g = c.geo.unwrap();
        let (db, files) = load_db(&g).unwrap();
        assert_eq!(files.len(), 1);
        let (plan, reports) = compile(&g, &db);
        assert_eq!(plan.pass, vec!["192.0.2.9/32".parse::<IpNet>().unwrap()]);
        let exact = &plan.rules[0];
        assert_eq!(exact.action, GeoAction::Allow);
        assert!(contains(exact, "1.0.16.10"), "JP allocation");
        assert!(
            !contains(exact, "180.152.0.10"),
            "CN outside the also block"
        );
        assert!(contains(exact, "180.152.1.10"), "the also block");
        let wide = &plan.rules[1];
        assert!(
            contains(wide, "180.152.0.10"),
            "the whole CN /13 the also block touches"
        );
        assert!(contains(wide, "180.159.255.1"));
        assert!(!contains(wide, "180.152.2.10"), "except wins over widening");
        assert!(reports[1].v4 > reports[0].v4);
        assert_eq!(reports[0].name, "exact");
    }

    #[test]
    fn a_source_directory_without_rir_files_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("rampart-geo-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut g = config("").geo.unwrap();
        g.sources = vec![dir.clone()];
        let e = load_db(&g).unwrap_err();
        assert!(
            e.contains(&dir.display().to_string()) && e.contains("geo update"),
            "{e}"
        );
        g.sources = vec![dir.join("missing.gz")];
        assert!(load_db(&g).unwrap_err().contains("no such file"));
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn a_runtime_without_geo_describes_nothing_and_reports_null() {
        let rt = GeoRuntime::start(None, Box::new(GeoLogOnly::default())).unwrap();
        assert!(!rt.has_data());
        assert_eq!(rt.describe("1.0.16.10".parse().unwrap()), (None, None));
        assert!(rt.status_json().is_null());
        let c =
            config("[[geo.policy]]\nname = \"voip\"\nports = [5060]\nallow_countries = [\"JP\"]\n");
        let rt = GeoRuntime::start(c.geo.as_ref(), Box::new(GeoLogOnly::default())).unwrap();
        assert_eq!(
            rt.describe("180.152.0.10".parse().unwrap()),
            (Some("CN".into()), Some("180.152.0.0/13".into()))
        );
        let st = rt.status_json();
        assert_eq!(st["backend"], "log-only");
        assert_eq!(st["policies"][0]["name"], "voip");
        assert!(st["policies"][0]["set_v4"].as_u64().unwrap() > 100);
    }
}

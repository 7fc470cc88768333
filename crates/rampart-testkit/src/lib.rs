//! Test and benchmark support for rampart.
//!
//! The main piece is a pair of deterministic log generators ([`generate`]): a Debian-style
//! `auth.log` and an nginx/Apache combined-format `access.log`, with a known share of
//! attack lines from a known set of attacker addresses. The same [`GenConfig`] produces
//! the same bytes on every run and every machine: the generators use a seeded SplitMix64
//! and integer arithmetic only.
//!
//! Addresses come only from documentation ranges (192.0.2.0/24, 198.51.100.0/24,
//! 203.0.113.0/24, 2001:db8::/32) and, unless [`GenConfig::doc_only`] is set, the shared
//! address space 100.64.0.0/10 (attackers only). Benign users and attackers never overlap.
//!
//! What counts as an attack line:
//! * auth: every line of a hostile sshd connection (invalid user, failed password or
//!   publickey, PAM failures, preauth disconnects and resets, kex and banner errors,
//!   AllowUsers refusals). Kernel `[UFW BLOCK]` lines name attacker addresses too but
//!   are counted as benign: they are firewall noise an sshd filter must ignore.
//! * access: 404/403 probes of well-known vulnerable paths and requests with bad-bot user
//!   agents.
//!
//! The [`netns`] module is a network-namespace lab for end-to-end tests: a server, an
//! attacker and a bystander on one bridge, the real OpenSSH server, a small HTTP server
//! and real traffic between them (needs root). [`http::LoopbackHttp`] serves fixed files on
//! 127.0.0.1 for tests that download.

mod access;
mod addr;
mod auth;
mod clock;
pub mod http;
mod line;
pub mod netns;
pub mod rng;

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use rampart_core::Timestamp;

pub use addr::{is_allowed, AddressBook, SERVER_V4, SERVER_V6};
pub use rng::{SplitMix64, Zipf};

/// Which log to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// A Debian `/var/log/auth.log` (sshd, pam, CRON, sudo, systemd-logind, UFW).
    Auth,
    /// An nginx/Apache access log in combined format.
    Access,
}

impl LogKind {
    /// The name used on the command line: `auth` or `access`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Access => "access",
        }
    }
}

impl FromStr for LogKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auth" => Ok(Self::Auth),
            "access" => Ok(Self::Access),
            other => Err(format!(
                "unknown log kind {other:?}: expected auth or access"
            )),
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// The kind of log.
    pub kind: LogKind,
    /// Number of lines.
    pub lines: u64,
    /// The seed: the same seed gives the same bytes.
    pub seed: u64,
    /// The time of the first line (lines advance by 0 to 520 ms each, about 3 days per
    /// million lines).
    pub start: Timestamp,
    /// Use only documentation address ranges (about 535 attackers instead of 3,000).
    pub doc_only: bool,
}

/// What was generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenSummary {
    /// The kind of log.
    pub kind: LogKind,
    /// Lines written.
    pub lines: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Attack lines (see the crate documentation for what counts).
    pub attack_lines: u64,
    /// access: lines that are 404/403 vulnerability probes.
    pub scan_lines: u64,
    /// access: lines with a bad-bot user agent.
    pub bot_lines: u64,
    /// Distinct attacker addresses that appear in attack lines.
    pub attackers_seen: u64,
    /// How many of `attackers_seen` are IPv6.
    pub attackers_seen_v6: u64,
    /// The time of the first line.
    pub start: Timestamp,
    /// The time of the last line.
    pub end: Timestamp,
}

impl GenSummary {
    /// An empty summary.
    fn new(kind: LogKind, start: Timestamp) -> Self {
        Self {
            kind,
            lines: 0,
            bytes: 0,
            attack_lines: 0,
            scan_lines: 0,
            bot_lines: 0,
            attackers_seen: 0,
            attackers_seen_v6: 0,
            start,
            end: start,
        }
    }
}

/// `part` as a percentage of `whole` with two decimals, in integer arithmetic.
struct Percent(u64, u64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hundredths = (u128::from(self.0) * 10_000)
            .checked_div(u128::from(self.1))
            .unwrap_or(0);
        write!(f, "{}.{:02}%", hundredths / 100, hundredths % 100)
    }
}

/// One line: `auth: 1000000 lines, 104857600 bytes, 300000 attack lines (30.00%), 2990
/// distinct attacker addresses (149 IPv6), 2026-11-20T00:00:00Z .. 2026-11-23T00:13:20Z`.
impl fmt::Display for GenSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} lines, {} bytes, {} attack lines ({}",
            self.kind.name(),
            self.lines,
            self.bytes,
            self.attack_lines,
            Percent(self.attack_lines, self.lines)
        )?;
        if self.kind == LogKind::Access {
            write!(
                f,
                ": {} scan {}, {} bad-bot {}",
                self.scan_lines,
                Percent(self.scan_lines, self.lines),
                self.bot_lines,
                Percent(self.bot_lines, self.lines)
            )?;
        }
        write!(
            f,
            "), {} distinct attacker addresses ({} IPv6), {} .. {}",
            self.attackers_seen, self.attackers_seen_v6, self.start, self.end
        )
    }
}

/// Writes the log described by `cfg` to `out` and says what it wrote. Wrap a file in a
/// `BufWriter`: the generators issue one `write_all` per line.
pub fn generate<W: Write>(cfg: &GenConfig, out: &mut W) -> io::Result<GenSummary> {
    let mut rng = SplitMix64::new(cfg.seed);
    let book = AddressBook::new(&mut rng, cfg.doc_only);
    match cfg.kind {
        LogKind::Auth => auth::AuthGen::new(cfg, rng, &book).run(cfg.lines, out),
        LogKind::Access => access::AccessGen::new(cfg, rng, &book).run(cfg.lines, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::IpAddr;

    fn cfg(kind: LogKind, lines: u64, seed: u64, doc_only: bool) -> GenConfig {
        GenConfig {
            kind,
            lines,
            seed,
            start: Timestamp::parse_rfc3339("2026-11-20T00:00:00Z").expect("valid"),
            doc_only,
        }
    }

    fn run(c: &GenConfig) -> (Vec<u8>, GenSummary) {
        let mut out = Vec::new();
        let summary = generate(c, &mut out).expect("writing to a Vec cannot fail");
        (out, summary)
    }

    /// Every token of `text` that parses as an IP address, except the unspecified ones
    /// (`Server listening on 0.0.0.0` and `::`).
    fn addresses(text: &str) -> HashSet<IpAddr> {
        text.split(|c: char| c.is_whitespace() || c == '=' || c == '"')
            .filter_map(|t| t.parse::<IpAddr>().ok())
            .filter(|ip| !ip.is_unspecified())
            .collect()
    }

    #[test]
    fn same_seed_gives_the_same_bytes_and_another_seed_does_not() {
        for kind in [LogKind::Auth, LogKind::Access] {
            let (a, sa) = run(&cfg(kind, 20_000, 42, false));
            let (b, sb) = run(&cfg(kind, 20_000, 42, false));
            let (c, _) = run(&cfg(kind, 20_000, 43, false));
            assert_eq!(a, b, "{kind:?}: same seed, different output");
            assert_eq!(sa, sb);
            assert_ne!(a, c, "{kind:?}: another seed, same output");
            assert_eq!(sa.lines, 20_000);
            assert_eq!(sa.bytes, a.len() as u64);
            assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 20_000);
        }
    }

    #[test]
    fn auth_log_is_about_thirty_percent_attack() {
        let (out, s) = run(&cfg(LogKind::Auth, 200_000, 42, false));
        let share = s.attack_lines * 1000 / s.lines;
        assert!(
            (290..=310).contains(&share),
            "attack share {share} per mille"
        );
        assert!(s.attackers_seen > 2_000, "{s}");
        assert!(s.attackers_seen_v6 * 100 / s.attackers_seen >= 3, "{s}");
        let text = String::from_utf8(out).expect("ASCII output");
        assert!(text.starts_with("Nov 20 00:00:0"));
        for needle in [
            "sshd[",
            "sshd-session[",
            "]: Invalid user ",
            "]: Failed password for invalid user ",
            "]: Failed password for root from ",
            "]: Failed publickey for root from ",
            "PAM 2 more authentication failures",
            "error: maximum authentication attempts exceeded for root from ",
            "Too many authentication failures [preauth]",
            "]: Connection reset by ",
            "no matching key exchange method found",
            "banner exchange: Connection from ",
            "not allowed because not listed in AllowUsers",
            "]: Accepted publickey for deploy from ",
            "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
            "systemd-logind[",
            "sudo:   deploy : TTY=pts/",
            "[UFW BLOCK] IN=eth0",
        ] {
            assert!(text.contains(needle), "no line contains {needle:?}");
        }
    }

    #[test]
    fn access_log_is_about_ten_percent_scans_and_four_percent_bots() {
        let (out, s) = run(&cfg(LogKind::Access, 200_000, 42, false));
        let scan = s.scan_lines * 1000 / s.lines;
        let bot = s.bot_lines * 1000 / s.lines;
        assert!((93..=107).contains(&scan), "scan share {scan} per mille");
        assert!((35..=45).contains(&bot), "bot share {bot} per mille");
        assert_eq!(s.attack_lines, s.scan_lines + s.bot_lines);
        let text = String::from_utf8(out).expect("ASCII output");
        let first = text.lines().next().expect("one line at least");
        assert!(first.contains(" - - [20/Nov/2026:00:00:0"), "{first}");
        let not_found = text.lines().filter(|l| l.contains("\" 404 ")).count() as u64;
        assert!(not_found * 1000 / s.lines >= 70);
    }

    #[test]
    fn timestamps_never_go_backwards() {
        let (out, _) = run(&cfg(LogKind::Access, 50_000, 7, false));
        let text = String::from_utf8(out).expect("ASCII output");
        let mut last = String::new();
        for line in text.lines() {
            let ts = line
                .split_once('[')
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(ts, _)| ts.to_owned())
                .expect("a CLF timestamp");
            // Within one day (`20/Nov/2026`) the text order is the time order.
            if ts.get(..11) == last.get(..11) {
                assert!(ts >= last, "{ts} after {last}");
            }
            last = ts;
        }
    }

    #[test]
    fn doc_only_uses_documentation_ranges_only() {
        for kind in [LogKind::Auth, LogKind::Access] {
            for doc_only in [true, false] {
                let (out, s) = run(&cfg(kind, 50_000, 5, doc_only));
                let text = String::from_utf8(out).expect("ASCII output");
                let seen = addresses(&text);
                assert!(seen.len() > 100);
                for ip in seen {
                    assert!(is_allowed(ip, doc_only), "{kind:?}: {ip} outside ranges");
                }
                if doc_only {
                    assert!(s.attackers_seen <= 535);
                }
            }
        }
    }

    #[test]
    fn benign_lines_never_name_an_attacker() {
        let book = AddressBook::new(&mut SplitMix64::new(42), false);
        let attackers: HashSet<IpAddr> = book.attackers.iter().copied().collect();
        let (out, _) = run(&cfg(LogKind::Auth, 50_000, 42, false));
        let text = String::from_utf8(out).expect("ASCII output");
        for line in text.lines() {
            if line.contains("Accepted publickey") || line.contains("disconnected by user") {
                assert!(
                    addresses(line).iter().all(|ip| !attackers.contains(ip)),
                    "{line}"
                );
            }
        }
    }

    #[test]
    fn summary_reads_as_one_line() {
        let (_, s) = run(&cfg(LogKind::Access, 1_000, 1, true));
        let text = s.to_string();
        assert!(text.starts_with("access: 1000 lines, "), "{text}");
        assert!(text.contains("bad-bot"));
        assert!(!text.contains('\n'));
    }
}

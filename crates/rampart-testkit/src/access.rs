//! An nginx/Apache access log in combined format:
//! `ADDR - - [20/Nov/2026:00:00:01 +0000] "GET /path HTTP/1.1" 200 5123 "REFERER" "UA"`.
//!
//! About 86 % of the lines are normal requests from benign clients, 10 % are 404/403
//! probes for well-known vulnerable paths, 4 % come from bad-bot user agents. Probes and
//! bots come in bursts from one attacker address; a few bursts are open at once and their
//! lines interleave with normal traffic.

use std::io::{self, Write};

use crate::addr::AddressBook;
use crate::clock::LogClock;
use crate::line::Line;
use crate::rng::{SplitMix64, Zipf};
use crate::{GenConfig, GenSummary};

/// Bursts of one kind (scan, bot) open at the same time.
const SLOTS: usize = 3;
/// Per mille of lines that are 404/403 scans.
const SCAN_PER_MILLE: u64 = 100;
/// Per mille of lines from bad-bot user agents.
const BOT_PER_MILLE: u64 = 40;
/// Largest step of the clock between two lines, in ms (mean 260 ms: 1 M lines ≈ 3 days).
const MAX_STEP_MS: u64 = 520;

/// A request path: `head`, then (when `max` is not zero) a number in `1..=max`, then `tail`.
#[derive(Clone, Copy, Debug)]
struct PathT {
    head: &'static str,
    max: u64,
    tail: &'static str,
}

/// A fixed path.
const fn p(head: &'static str) -> PathT {
    PathT {
        head,
        max: 0,
        tail: "",
    }
}

/// A path with a number in it.
const fn pn(head: &'static str, max: u64, tail: &'static str) -> PathT {
    PathT { head, max, tail }
}

/// Pages and assets of the site, for normal traffic.
const SITE_PATHS: &[PathT] = &[
    p("/"),
    p("/"),
    p("/index.html"),
    p("/about/"),
    p("/contact/"),
    p("/blog/"),
    pn("/blog/2026/", 12, "/release-notes/"),
    pn("/blog/post-", 240, "/"),
    pn("/blog/post-", 240, "/"),
    p("/static/css/site.css?v=3"),
    p("/static/js/app.js?v=3"),
    p("/static/img/logo.svg"),
    pn("/images/photo-", 500, ".jpg"),
    p("/favicon.ico"),
    p("/robots.txt"),
    p("/feed.xml"),
    p("/sitemap.xml"),
    pn("/api/v1/items?page=", 40, ""),
    pn("/api/v1/items/", 9000, ""),
    pn("/search?q=rust+", 300, ""),
    p("/docs/getting-started/"),
    p("/docs/install/"),
    p("/docs/configuration/"),
];

/// Probes for vulnerable software, as seen on any public web server.
const SCAN_PATHS: &[&str] = &[
    "/wp-login.php",
    "/wp-login.php",
    "/xmlrpc.php",
    "/wp-admin/setup-config.php",
    "/wordpress/wp-login.php",
    "/wp-content/plugins/wp-file-manager/readme.txt",
    "/admin",
    "/admin/config.php",
    "/administrator/index.php",
    "/.env",
    "/.env",
    "/api/.env",
    "/.git/config",
    "/.git/HEAD",
    "/.aws/credentials",
    "/.DS_Store",
    "/phpmyadmin/index.php",
    "/phpMyAdmin/",
    "/pma/index.php",
    "/myadmin/index.php",
    "/cgi-bin/luci",
    "/cgi-bin/luci/;stok=/locale?form=country&operation=write",
    "/cgi-bin/test.cgi",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/boaform/admin/formLogin",
    "/HNAP1/",
    "/owa/auth/logon.aspx",
    "/webmail/",
    "/server-status",
    "/actuator/env",
    "/manager/html",
    "/solr/admin/info/system",
    "/shell.php",
    "/config.json",
    "/backup.zip",
    "/console/",
];

/// Browser-like agents that scanners send.
const SCAN_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0.2623.112 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
];

/// User agents of real browsers and search engines (normal traffic).
const BROWSER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
];

/// Agents of scanners and scripts that a bad-bot filter should catch.
const BOT_AGENTS: &[&str] = &[
    "Mozilla/5.0 zgrab/0.x",
    "python-requests/2.31.0",
    "python-requests/2.28.1",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "Go-http-client/1.1",
    "curl/8.5.0",
    "curl/8.11.0",
    "sqlmap/1.8.11#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:Port Check)",
    "-",
];

/// What bots fetch.
const BOT_PATHS: &[&str] = &[
    "/",
    "/",
    "/robots.txt",
    "/index.html",
    "/sitemap.xml",
    "/favicon.ico",
    "/.well-known/security.txt",
];

/// Referers of normal traffic.
const REFERERS: &[&str] = &[
    "https://www.example.com/",
    "https://www.example.com/blog/",
    "https://www.example.com/docs/getting-started/",
    "https://www.google.com/",
    "https://duckduckgo.com/",
];

/// A burst of requests from one attacker.
#[derive(Clone, Copy, Debug)]
struct Burst {
    addr: u32,
    agent: u8,
    left: u16,
}

/// The access.log generator's state.
pub(crate) struct AccessGen<'a> {
    rng: SplitMix64,
    book: &'a AddressBook,
    attackers: Zipf,
    clients: Zipf,
    clock: LogClock,
    line: Line,
    scans: [Option<Burst>; SLOTS],
    bots: [Option<Burst>; SLOTS],
    seen: Vec<bool>,
    summary: GenSummary,
}

impl<'a> AccessGen<'a> {
    /// A generator for `cfg`, using `rng` (already used to build `book`).
    pub(crate) fn new(cfg: &GenConfig, rng: SplitMix64, book: &'a AddressBook) -> Self {
        Self {
            attackers: Zipf::new(book.attackers.len()),
            clients: Zipf::new(book.benign.len()),
            clock: LogClock::new(cfg.start),
            line: Line::new(),
            scans: [None; SLOTS],
            bots: [None; SLOTS],
            seen: vec![false; book.attackers.len()],
            summary: GenSummary::new(cfg.kind, cfg.start),
            rng,
            book,
        }
    }

    /// Writes `lines` lines to `out`.
    pub(crate) fn run<W: Write>(mut self, lines: u64, out: &mut W) -> io::Result<GenSummary> {
        for _ in 0..lines {
            self.clock.advance(&mut self.rng, MAX_STEP_MS);
            self.line.clear();
            let r = self.rng.below(1000);
            if r < SCAN_PER_MILLE {
                self.scan();
                self.summary.scan_lines += 1;
            } else if r < SCAN_PER_MILLE + BOT_PER_MILLE {
                self.bot();
                self.summary.bot_lines += 1;
            } else {
                self.normal();
            }
            self.line.end();
            out.write_all(self.line.as_bytes())?;
            self.summary.lines += 1;
            self.summary.bytes += self.line.as_bytes().len() as u64;
        }
        self.summary.attack_lines = self.summary.scan_lines + self.summary.bot_lines;
        self.summary.end = self.clock.now();
        self.summary.attackers_seen = self.seen.iter().filter(|&&s| s).count() as u64;
        self.summary.attackers_seen_v6 = self
            .seen
            .iter()
            .zip(&self.book.attackers)
            .filter(|(&s, a)| s && a.is_ipv6())
            .count() as u64;
        Ok(self.summary)
    }

    /// The next request of a burst in `slots` (opening one when the slot is free).
    fn burst(&mut self, bot: bool, agents: usize, sizes: (u64, u64)) -> Burst {
        let slot = self.rng.index(SLOTS);
        let open = if bot {
            self.bots[slot]
        } else {
            self.scans[slot]
        };
        let mut b = open.unwrap_or_else(|| Burst {
            addr: self.attackers.sample(&mut self.rng) as u32,
            agent: self.rng.index(agents) as u8,
            left: self.rng.range(sizes.0, sizes.1) as u16,
        });
        b.left = b.left.saturating_sub(1);
        let next = (b.left > 0).then_some(b);
        if bot {
            self.bots[slot] = next;
        } else {
            self.scans[slot] = next;
        }
        if let Some(seen) = self.seen.get_mut(b.addr as usize) {
            *seen = true;
        }
        b
    }

    /// An attacker's address as text.
    fn attacker(&self, index: u32) -> &'a str {
        self.book
            .attacker_text
            .get(index as usize)
            .map_or("192.0.2.0", String::as_str)
    }

    /// Writes `ADDR - - [time] "METHOD `.
    fn request_head(&mut self, addr: &str, method: &str) {
        self.line
            .s(addr)
            .s(" - - [")
            .s(self.clock.clf())
            .s("] \"")
            .s(method)
            .s(" ");
    }

    /// Writes one 404/403 probe of a vulnerable path.
    fn scan(&mut self) {
        let b = self.burst(false, SCAN_AGENTS.len(), (3, 25));
        let addr = self.attacker(b.addr);
        let path = *self.rng.pick(SCAN_PATHS);
        let post = matches!(
            path,
            "/xmlrpc.php" | "/boaform/admin/formLogin" | "/wp-login.php"
        ) && self.rng.percent(40);
        let forbidden = path.starts_with("/.") || path == "/server-status";
        self.request_head(addr, if post { "POST" } else { "GET" });
        let proto = if self.rng.percent(85) {
            " HTTP/1.1\" "
        } else {
            " HTTP/1.0\" "
        };
        let agent = SCAN_AGENTS
            .get(usize::from(b.agent))
            .copied()
            .unwrap_or("-");
        self.line
            .s(path)
            .s(proto)
            .s(if forbidden { "403 " } else { "404 " })
            .n(if forbidden { 153 } else { 162 })
            .s(" \"-\" \"")
            .s(agent)
            .s("\"");
    }

    /// Writes one request with a bad-bot user agent.
    fn bot(&mut self) {
        let b = self.burst(true, BOT_AGENTS.len(), (1, 4));
        let addr = self.attacker(b.addr);
        let path = *self.rng.pick(BOT_PATHS);
        let agent = BOT_AGENTS.get(usize::from(b.agent)).copied().unwrap_or("-");
        self.request_head(addr, "GET");
        let missing = path == "/.well-known/security.txt";
        let size = if missing {
            162
        } else {
            self.rng.range(600, 12_000)
        };
        self.line
            .s(path)
            .s(" HTTP/1.1\" ")
            .s(if missing { "404 " } else { "200 " })
            .n(size)
            .s(" \"-\" \"")
            .s(agent)
            .s("\"");
    }

    /// Writes one normal request from a benign client.
    fn normal(&mut self) {
        let book = self.book;
        let addr = book
            .benign_text
            .get(self.clients.sample(&mut self.rng))
            .map_or("192.0.2.2", String::as_str);
        let path = *self.rng.pick(SITE_PATHS);
        let method = match self.rng.below(100) {
            0..=91 => "GET",
            92..=96 => "POST",
            _ => "HEAD",
        };
        self.request_head(addr, method);
        self.line.s(path.head);
        if path.max > 0 {
            let n = self.rng.range(1, path.max);
            self.line.n(n);
        }
        self.line.s(path.tail).s(if self.rng.percent(70) {
            " HTTP/1.1\" "
        } else {
            " HTTP/2.0\" "
        });
        let (status, size) = match (method, self.rng.below(100)) {
            ("HEAD", _) => ("200 ", 0),
            ("POST", _) => ("200 ", self.rng.range(40, 900)),
            (_, 0..=87) => ("200 ", self.rng.range(200, 60_000)),
            (_, 88..=96) => ("304 ", 0),
            _ => ("301 ", 169),
        };
        self.line.s(status).n(size).s(" \"");
        if self.rng.percent(35) {
            self.line.s("-");
        } else {
            let referer = *self.rng.pick(REFERERS);
            self.line.s(referer);
        }
        let agent = *self.rng.pick(BROWSER_AGENTS);
        self.line.s("\" \"").s(agent).s("\"");
    }
}

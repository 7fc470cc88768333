//! A Debian-style `/var/log/auth.log` (rsyslog traditional format).
//!
//! Lines come from "sessions": an sshd connection, a cron job, a login with sudo, a
//! firewall drop. Each session has a plan of messages that share one pid, address and
//! port. A few sessions of each class (hostile, benign) are open at once and their lines
//! interleave, as in a real log. Each line is hostile with probability 30 %; a hostile
//! line is the next line of a hostile sshd session.

use std::io::{self, Write};

use crate::addr::{AddressBook, SERVER_V4_TEXT, SERVER_V6_TEXT};
use crate::clock::LogClock;
use crate::line::Line;
use crate::rng::{SplitMix64, Zipf};
use crate::{GenConfig, GenSummary};

/// The host name in every line.
const HOST: &str = "web1";
/// Sessions of one class open at the same time.
const SLOTS: usize = 3;
/// The longest session plan.
const MAX_PLAN: usize = 16;
/// Percent of lines that are hostile.
const HOSTILE_PERCENT: u64 = 30;
/// Largest step of the clock between two lines, in ms (mean 260 ms: 1 M lines ≈ 3 days).
const MAX_STEP_MS: u64 = 520;

/// User names attackers try, most popular first. Index 0 (`root`) exists on the host;
/// every other name is an invalid user.
const ATTACK_USERS: &[&str] = &[
    "root",
    "admin",
    "test",
    "user",
    "ubuntu",
    "oracle",
    "postgres",
    "git",
    "guest",
    "ftpuser",
    "pi",
    "support",
    "mysql",
    "hadoop",
    "dev",
    "jenkins",
    "test1",
    "ubnt",
    "minecraft",
    "steam",
    "centos",
    "debian",
    "www",
    "sysadmin",
    "administrator",
    "user1",
    "odoo",
    "elastic",
    "nagios",
    "tomcat",
    "ftp",
    "redis",
    "vagrant",
    "docker",
    "student",
    "operator",
    "server",
    "kafka",
    "zabbix",
    "teamspeak",
];

/// Legitimate users of the host: name and uid.
const USERS: &[(&str, u32)] = &[("deploy", 1000), ("maria", 1001)];

/// Commands the legitimate users run with sudo.
const SUDO_COMMANDS: &[&str] = &[
    "/usr/bin/apt update",
    "/usr/bin/apt upgrade -y",
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/journalctl -u nginx --since today",
    "/usr/bin/tail -n 100 /var/log/nginx/error.log",
];

/// Cron jobs.
const CRON_COMMANDS: &[&str] = &[
    "cd / && run-parts --report /etc/cron.hourly",
    "command -v debian-sa1 > /dev/null && debian-sa1 1 1",
    "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi",
    "/usr/local/bin/backup.sh >/dev/null 2>&1",
    "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }",
];

/// Key exchange offers of old scanners.
const KEX_OFFERS: &[&str] = &[
    "diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1,diffie-hellman-group1-sha1",
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group-exchange-sha1,diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha1,diffie-hellman-group1-sha1,diffie-hellman-group-exchange-sha256",
];

/// Ports scanners knock on (UFW drops).
const UFW_PORTS: &[u64] = &[
    23, 23, 23, 2323, 445, 3389, 8080, 5900, 1433, 6379, 8443, 81,
];

/// One message template. The session supplies pid, address, port, user and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Msg {
    // Hostile sshd messages.
    InvalidUser,
    CheckPassUnknown,
    PamAuthFailNoUser,
    PamAuthFailUser,
    FailedPwInvalid,
    FailedPw,
    FailedPubkey,
    MaxAuthExceeded,
    DisconnectingTooMany,
    PamMoreUser,
    PamMoreNoUser,
    ClosedInvalid,
    DisconnectedInvalid,
    ClosedAuthenticating,
    DisconnectedAuthenticating,
    ReceivedDisconnectBye,
    Reset,
    ClosedPreauth,
    KexNoMatch,
    HostKeyNoMatch,
    BannerInvalid,
    NotAllowed,
    // Benign messages.
    Accepted,
    SessionOpened,
    LogindNew,
    SudoCmd,
    SudoOpened,
    SudoClosed,
    ReceivedDisconnectUser,
    DisconnectedUser,
    SessionClosed,
    LogindLoggedOut,
    LogindRemoved,
    CronOpened,
    CronCmd,
    CronClosed,
    Ufw,
    SigTerm,
    Listening4,
    Listening6,
}

/// An open session: its plan and the values its lines share.
#[derive(Clone, Copy, Debug)]
struct Session {
    plan: [Msg; MAX_PLAN],
    len: u8,
    pos: u8,
    /// OpenSSH 9.8+ logs per-connection lines as `sshd-session`.
    sshd_session: bool,
    pid: u32,
    port: u16,
    /// Index into the attackers (hostile sessions, UFW) or the benign list.
    addr: u32,
    /// Index into `ATTACK_USERS` (hostile) or `USERS` (benign).
    user: u8,
    /// Password attempts so far (for `PAM n more authentication failures`).
    tries: u8,
    /// logind session number, cron command, kex offer, or the new listener's pid.
    num: u32,
}

impl Session {
    /// An empty session for a connection or job.
    fn new(pid: u32, port: u16, addr: u32) -> Self {
        Self {
            plan: [Msg::Reset; MAX_PLAN],
            len: 0,
            pos: 0,
            sshd_session: false,
            pid,
            port,
            addr,
            user: 0,
            tries: 0,
            num: 0,
        }
    }

    /// Appends a message to the plan (ignored past `MAX_PLAN`).
    fn push(&mut self, msg: Msg) {
        if let Some(slot) = self.plan.get_mut(usize::from(self.len)) {
            *slot = msg;
            self.len += 1;
        }
    }
}

/// The auth.log generator's state.
pub(crate) struct AuthGen<'a> {
    rng: SplitMix64,
    book: &'a AddressBook,
    attackers: Zipf,
    /// Over the first few benign addresses: where the admins log in from.
    admin_addrs: Zipf,
    users: Zipf,
    clock: LogClock,
    line: Line,
    hostile: [Option<Session>; SLOTS],
    benign: [Option<Session>; SLOTS],
    next_pid: u32,
    listener_pid: u32,
    logind_pid: u32,
    next_logind: u32,
    boot_ms: i64,
    /// Fingerprints of the legitimate users' keys.
    user_keys: Vec<String>,
    seen: Vec<bool>,
    summary: GenSummary,
}

impl<'a> AuthGen<'a> {
    /// A generator for `cfg`, using `rng` (already used to build `book`).
    pub(crate) fn new(cfg: &GenConfig, mut rng: SplitMix64, book: &'a AddressBook) -> Self {
        let clock = LogClock::new(cfg.start);
        let boot_ms = clock.millis() - rng.range(2 * 86_400_000, 40 * 86_400_000) as i64;
        let user_keys = USERS
            .iter()
            .map(|_| {
                let mut l = Line::new();
                l.base64(43, || rng.next_u64());
                String::from_utf8_lossy(l.as_bytes()).into_owned()
            })
            .collect();
        Self {
            attackers: Zipf::new(book.attackers.len()),
            admin_addrs: Zipf::new(book.benign.len().min(8)),
            users: Zipf::new(ATTACK_USERS.len()),
            clock,
            line: Line::new(),
            hostile: [None; SLOTS],
            benign: [None; SLOTS],
            next_pid: rng.range(2_000, 9_000) as u32,
            listener_pid: rng.range(600, 1_500) as u32,
            logind_pid: rng.range(300, 599) as u32,
            next_logind: rng.range(1, 400) as u32,
            boot_ms,
            user_keys,
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
            let hostile = self.rng.below(100) < HOSTILE_PERCENT;
            self.line.clear();
            self.next_line(hostile);
            self.line.end();
            out.write_all(self.line.as_bytes())?;
            self.summary.lines += 1;
            self.summary.bytes += self.line.as_bytes().len() as u64;
            if hostile {
                self.summary.attack_lines += 1;
            }
        }
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

    /// Writes the next line of a random open session of the class, opening one if needed.
    fn next_line(&mut self, hostile: bool) {
        let slot = self.rng.index(SLOTS);
        let open = if hostile {
            self.hostile[slot]
        } else {
            self.benign[slot]
        };
        let mut session = match open {
            Some(s) => s,
            None if hostile => self.start_hostile(),
            None => self.start_benign(),
        };
        let msg = session.plan[usize::from(session.pos)];
        session.pos += 1;
        self.emit(msg, &mut session, hostile);
        let next = (session.pos < session.len).then_some(session);
        if hostile {
            self.hostile[slot] = next;
        } else {
            self.benign[slot] = next;
        }
    }

    /// A fresh process id (increasing, wrapping like the kernel's).
    fn new_pid(&mut self) -> u32 {
        self.next_pid += self.rng.range(1, 60) as u32;
        if self.next_pid > 4_000_000 {
            self.next_pid = 2_000;
        }
        self.next_pid
    }

    /// A client's source port.
    fn port(&mut self) -> u16 {
        self.rng.range(1024, 65535) as u16
    }

    /// Opens a hostile sshd connection from a Zipf-chosen attacker and plans its lines.
    fn start_hostile(&mut self) -> Session {
        use Msg::*;
        let pid = self.new_pid();
        let port = self.port();
        let addr = self.attackers.sample(&mut self.rng) as u32;
        let mut s = Session::new(pid, port, addr);
        s.sshd_session = self.rng.percent(25);
        // Kinds: invalid user, root brute force, AllowUsers, publickey probe,
        // reset/closed, kex mismatch, bad banner.
        match self.rng.weighted(&[34, 28, 6, 8, 10, 8, 6]) {
            0 => {
                s.user = self.invalid_user();
                s.push(InvalidUser);
                if self.rng.percent(30) {
                    s.push(if self.rng.percent(70) {
                        ClosedInvalid
                    } else {
                        DisconnectedInvalid
                    });
                } else {
                    s.push(CheckPassUnknown);
                    s.push(PamAuthFailNoUser);
                    let tries = *self.rng.pick(&[1u8, 1, 1, 2, 3]);
                    for _ in 0..tries {
                        s.push(FailedPwInvalid);
                    }
                    match self.rng.below(3) {
                        0 => s.push(ClosedInvalid),
                        1 => s.push(DisconnectedInvalid),
                        _ => {
                            s.push(ReceivedDisconnectBye);
                            s.push(DisconnectedInvalid);
                        }
                    }
                    if tries > 1 {
                        s.push(PamMoreNoUser);
                    }
                }
            }
            1 => {
                let tries = 1 + self.rng.weighted(&[50, 15, 10, 8, 7, 10]) as u8;
                s.push(PamAuthFailUser);
                for _ in 0..tries {
                    s.push(FailedPw);
                }
                if tries >= 6 {
                    s.push(MaxAuthExceeded);
                    s.push(DisconnectingTooMany);
                } else if self.rng.percent(50) {
                    s.push(ClosedAuthenticating);
                } else {
                    s.push(ReceivedDisconnectBye);
                    s.push(DisconnectedAuthenticating);
                }
                if tries > 1 {
                    s.push(PamMoreUser);
                }
            }
            2 => {
                s.user = self.users.sample(&mut self.rng) as u8;
                s.push(NotAllowed);
                s.push(FailedPwInvalid);
                s.push(ClosedInvalid);
            }
            3 => {
                s.push(FailedPubkey);
                s.push(ClosedAuthenticating);
            }
            4 => s.push(if self.rng.percent(60) {
                Reset
            } else {
                ClosedPreauth
            }),
            5 => {
                s.num = self.rng.index(KEX_OFFERS.len()) as u32;
                s.push(if self.rng.percent(80) {
                    KexNoMatch
                } else {
                    HostKeyNoMatch
                });
            }
            _ => s.push(BannerInvalid),
        }
        s
    }

    /// An index into `ATTACK_USERS` other than root.
    fn invalid_user(&mut self) -> u8 {
        loop {
            let u = self.users.sample(&mut self.rng);
            if u != 0 {
                return u as u8;
            }
        }
    }

    /// Opens a benign session: an admin login, a cron job, a UFW drop or an sshd restart.
    fn start_benign(&mut self) -> Session {
        use Msg::*;
        let pid = self.new_pid();
        let port = self.port();
        let mut s = Session::new(pid, port, 0);
        s.sshd_session = self.rng.percent(25);
        if self.rng.below(5_000) == 0 {
            // sshd restart.
            s.pid = self.listener_pid;
            self.listener_pid = self.new_pid();
            s.num = self.listener_pid;
            s.push(SigTerm);
            s.push(Listening4);
            s.push(Listening6);
            return s;
        }
        match self.rng.weighted(&[20, 40, 40]) {
            0 => {
                s.user = u8::from(self.rng.percent(20));
                s.addr = self.admin_addrs.sample(&mut self.rng) as u32;
                s.num = self.next_logind;
                self.next_logind += 1;
                s.port = self.port();
                s.tries = self.rng.below(4) as u8; // the pts number
                s.push(Accepted);
                s.push(SessionOpened);
                s.push(LogindNew);
                for _ in 0..self.rng.weighted(&[50, 35, 15]) {
                    s.push(SudoCmd);
                    s.push(SudoOpened);
                    s.push(SudoClosed);
                }
                s.push(ReceivedDisconnectUser);
                s.push(DisconnectedUser);
                s.push(SessionClosed);
                s.push(LogindLoggedOut);
                s.push(LogindRemoved);
            }
            1 => {
                s.num = self.rng.weighted(&[50, 20, 20, 5, 5]) as u32;
                s.push(CronOpened);
                s.push(CronCmd);
                s.push(CronClosed);
            }
            _ => {
                s.addr = self.attackers.sample(&mut self.rng) as u32;
                s.push(Ufw);
            }
        }
        s
    }

    /// Writes `Nov 20 00:00:01 web1 program[pid]: `.
    fn head(&mut self, program: &str, pid: Option<u32>) {
        self.line
            .s(self.clock.syslog())
            .s(" ")
            .s(HOST)
            .s(" ")
            .s(program);
        if let Some(pid) = pid {
            self.line.s("[").n(u64::from(pid)).s("]");
        }
        self.line.s(": ");
    }

    /// Writes the line head of the session's sshd (or sshd-session) process.
    fn sshd_head(&mut self, s: &Session) {
        let program = if s.sshd_session {
            "sshd-session"
        } else {
            "sshd"
        };
        self.head(program, Some(s.pid));
    }

    /// Writes one message of a session.
    fn emit(&mut self, msg: Msg, s: &mut Session, hostile: bool) {
        use Msg::*;
        let book = self.book;
        let addr_index = s.addr as usize;
        let a: &str = if hostile || msg == Ufw {
            if hostile {
                if let Some(seen) = self.seen.get_mut(addr_index) {
                    *seen = true;
                }
            }
            book.attacker_text
                .get(addr_index)
                .map_or("192.0.2.0", String::as_str)
        } else {
            book.benign_text
                .get(addr_index)
                .map_or("192.0.2.0", String::as_str)
        };
        let u = ATTACK_USERS
            .get(usize::from(s.user))
            .copied()
            .unwrap_or("root");
        let (bu, uid) = USERS.get(usize::from(s.user)).copied().unwrap_or(USERS[0]);
        let p = u64::from(s.port);
        match msg {
            InvalidUser => {
                self.sshd_head(s);
                self.line
                    .s("Invalid user ")
                    .s(u)
                    .s(" from ")
                    .s(a)
                    .s(" port ")
                    .n(p);
            }
            CheckPassUnknown => {
                self.sshd_head(s);
                self.line.s("pam_unix(sshd:auth): check pass; user unknown");
            }
            PamAuthFailNoUser => {
                self.sshd_head(s);
                self.line
                    .s("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=")
                    .s(a);
            }
            PamAuthFailUser => {
                self.sshd_head(s);
                self.line
                    .s("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=")
                    .s(a)
                    .s("  user=")
                    .s(u);
            }
            FailedPwInvalid => {
                s.tries += 1;
                self.sshd_head(s);
                self.line
                    .s("Failed password for invalid user ")
                    .s(u)
                    .s(" from ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(" ssh2");
            }
            FailedPw => {
                s.tries += 1;
                self.sshd_head(s);
                self.line
                    .s("Failed password for ")
                    .s(u)
                    .s(" from ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(" ssh2");
            }
            FailedPubkey => {
                self.sshd_head(s);
                self.line
                    .s("Failed publickey for ")
                    .s(u)
                    .s(" from ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(" ssh2: RSA SHA256:");
                let rng = &mut self.rng;
                self.line.base64(43, || rng.next_u64());
            }
            MaxAuthExceeded => {
                self.sshd_head(s);
                self.line
                    .s("error: maximum authentication attempts exceeded for ")
                    .s(u)
                    .s(" from ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(" ssh2 [preauth]");
            }
            DisconnectingTooMany => {
                self.sshd_head(s);
                self.line
                    .s("Disconnecting authenticating user ")
                    .s(u)
                    .s(" ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(": Too many authentication failures [preauth]");
            }
            PamMoreUser | PamMoreNoUser => {
                self.sshd_head(s);
                self.line
                    .s("PAM ")
                    .n(u64::from(s.tries.saturating_sub(1)))
                    .s(" more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=")
                    .s(a);
                if msg == PamMoreUser {
                    self.line.s("  user=").s(u);
                }
            }
            ClosedInvalid | DisconnectedInvalid => {
                self.sshd_head(s);
                self.line
                    .s(if msg == ClosedInvalid {
                        "Connection closed by invalid user "
                    } else {
                        "Disconnected from invalid user "
                    })
                    .s(u)
                    .s(" ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(" [preauth]");
            }
            ClosedAuthenticating | DisconnectedAuthenticating => {
                self.sshd_head(s);
                self.line
                    .s(if msg == ClosedAuthenticating {
                        "Connection closed by authenticating user "
                    } else {
                        "Disconnected from authenticating user "
                    })
                    .s(u)
                    .s(" ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(" [preauth]");
            }
            ReceivedDisconnectBye => {
                self.sshd_head(s);
                self.line
                    .s("Received disconnect from ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(":11: Bye Bye [preauth]");
            }
            Reset | ClosedPreauth => {
                self.sshd_head(s);
                self.line
                    .s(if msg == Reset {
                        "Connection reset by "
                    } else {
                        "Connection closed by "
                    })
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(" [preauth]");
            }
            KexNoMatch => {
                self.sshd_head(s);
                let offer = KEX_OFFERS.get(s.num as usize).copied().unwrap_or("");
                self.line
                    .s("Unable to negotiate with ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(": no matching key exchange method found. Their offer: ")
                    .s(offer)
                    .s(" [preauth]");
            }
            HostKeyNoMatch => {
                self.sshd_head(s);
                self.line
                    .s("Unable to negotiate with ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(": no matching host key type found. Their offer: ssh-rsa,ssh-dss [preauth]");
            }
            BannerInvalid => {
                self.sshd_head(s);
                self.line
                    .s("banner exchange: Connection from ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(": invalid format");
            }
            NotAllowed => {
                self.sshd_head(s);
                self.line
                    .s("User ")
                    .s(u)
                    .s(" from ")
                    .s(a)
                    .s(" not allowed because not listed in AllowUsers");
            }
            Accepted => {
                self.sshd_head(s);
                let key = self
                    .user_keys
                    .get(usize::from(s.user))
                    .map_or("", String::as_str);
                self.line
                    .s("Accepted publickey for ")
                    .s(bu)
                    .s(" from ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(" ssh2: ED25519 SHA256:")
                    .s(key);
            }
            SessionOpened => {
                self.sshd_head(s);
                self.line
                    .s("pam_unix(sshd:session): session opened for user ")
                    .s(bu)
                    .s("(uid=")
                    .n(u64::from(uid))
                    .s(") by (uid=0)");
            }
            LogindNew => {
                self.head("systemd-logind", Some(self.logind_pid));
                self.line
                    .s("New session ")
                    .n(u64::from(s.num))
                    .s(" of user ")
                    .s(bu)
                    .s(".");
            }
            SudoCmd => {
                self.head("sudo", None);
                let cmd = *self.rng.pick(SUDO_COMMANDS);
                for _ in bu.len()..8 {
                    self.line.s(" ");
                }
                self.line
                    .s(bu)
                    .s(" : TTY=pts/")
                    .n(u64::from(s.tries))
                    .s(" ; PWD=/home/")
                    .s(bu)
                    .s(" ; USER=root ; COMMAND=")
                    .s(cmd);
            }
            SudoOpened => {
                self.head("sudo", None);
                self.line
                    .s("pam_unix(sudo:session): session opened for user root(uid=0) by ")
                    .s(bu)
                    .s("(uid=")
                    .n(u64::from(uid))
                    .s(")");
            }
            SudoClosed => {
                self.head("sudo", None);
                self.line
                    .s("pam_unix(sudo:session): session closed for user root");
            }
            ReceivedDisconnectUser => {
                self.sshd_head(s);
                self.line
                    .s("Received disconnect from ")
                    .s(a)
                    .s(" port ")
                    .n(p)
                    .s(":11: disconnected by user");
            }
            DisconnectedUser => {
                self.sshd_head(s);
                self.line
                    .s("Disconnected from user ")
                    .s(bu)
                    .s(" ")
                    .s(a)
                    .s(" port ")
                    .n(p);
            }
            SessionClosed => {
                self.sshd_head(s);
                self.line
                    .s("pam_unix(sshd:session): session closed for user ")
                    .s(bu);
            }
            LogindLoggedOut => {
                self.head("systemd-logind", Some(self.logind_pid));
                self.line
                    .s("Session ")
                    .n(u64::from(s.num))
                    .s(" logged out. Waiting for processes to exit.");
            }
            LogindRemoved => {
                self.head("systemd-logind", Some(self.logind_pid));
                self.line.s("Removed session ").n(u64::from(s.num)).s(".");
            }
            CronOpened => {
                self.head("CRON", Some(s.pid));
                self.line
                    .s("pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)");
            }
            CronCmd => {
                self.head("CRON", Some(s.pid));
                let cmd = CRON_COMMANDS.get(s.num as usize).copied().unwrap_or("true");
                self.line.s("(root) CMD (").s(cmd).s(")");
            }
            CronClosed => {
                self.head("CRON", Some(s.pid));
                self.line
                    .s("pam_unix(cron:session): session closed for user root");
            }
            Ufw => self.ufw(a, s.addr),
            SigTerm => {
                self.head("sshd", Some(s.pid));
                self.line.s("Received signal 15; terminating.");
            }
            Listening4 | Listening6 => {
                self.head("sshd", Some(s.num));
                self.line
                    .s("Server listening on ")
                    .s(if msg == Listening4 { "0.0.0.0" } else { "::" })
                    .s(" port 22.");
            }
        }
    }

    /// A kernel UFW drop of a scanner's SYN.
    fn ufw(&mut self, src: &str, addr: u32) {
        let v6 = self
            .book
            .attackers
            .get(addr as usize)
            .is_some_and(|a| a.is_ipv6());
        let up_ms = (self.clock.millis() - self.boot_ms).max(0) as u64;
        let up_us = up_ms * 1000 + self.rng.below(1000);
        self.head("kernel", None);
        self.line
            .s("[")
            .n(up_us / 1_000_000)
            .s(".")
            .n0(up_us % 1_000_000, 6)
            .s("] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:8a:3c:01:fe:54:00:21:7b:9e:")
            .s(if v6 { "86:dd" } else { "08:00" })
            .s(" SRC=")
            .s(src)
            .s(" DST=");
        let ttl = self.rng.range(40, 250);
        if v6 {
            let flow = self.rng.below(1 << 20);
            self.line
                .s(SERVER_V6_TEXT)
                .s(" LEN=60 TC=0 HOPLIMIT=")
                .n(ttl)
                .s(" FLOWLBL=")
                .n(flow);
        } else {
            let id = self.rng.below(65_536);
            self.line
                .s(SERVER_V4_TEXT)
                .s(" LEN=44 TOS=0x00 PREC=0x00 TTL=")
                .n(ttl)
                .s(" ID=")
                .n(id);
        }
        let spt = self.rng.range(1024, 65535);
        let dpt = *self.rng.pick(UFW_PORTS);
        self.line
            .s(" PROTO=TCP SPT=")
            .n(spt)
            .s(" DPT=")
            .n(dpt)
            .s(" WINDOW=1024 RES=0x00 SYN URGP=0");
    }
}

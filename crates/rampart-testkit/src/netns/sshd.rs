//! The real OpenSSH server in the lab's server namespace, and failed logins made with the
//! real client.
//!
//! sshd started with `-D -E FILE` or `-e` writes bare messages (`Invalid user x from
//! 192.0.2.66 port 40000`), without the syslog time, host and `sshd[pid]:` that a log
//! file written by rsyslog carries and that the filters expect. So sshd runs with `-e`
//! (messages on standard error), and a thread of the test process writes each message to
//! the log file the way rsyslog's traditional file format does:
//! `Nov 21 10:00:00 rampart-lab sshd[1234]: Invalid user x from 192.0.2.66 port 40000`
//! (local time, the listener's pid, one `write` and flush per line).

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{
    append_line, argv_text, read_lossy, require_tool, run_command, tail, Host, Lab, LabError,
    CHILD_PATH, SSH, SSHD, SSH_KEYGEN,
};

/// The host name written into the sshd log lines.
pub const SYSLOG_HOST: &str = "rampart-lab";
/// sshd's privilege separation directory (normally made by systemd's `RuntimeDirectory`).
const PRIVSEP_DIR: &str = "/run/sshd";
/// How long sshd may take to listen, and a failed login to be logged.
const SSHD_WAIT: Duration = Duration::from_secs(5);
/// How long one `ssh` attempt may take (it has `ConnectTimeout=3`).
const SSH_TIMEOUT: Duration = Duration::from_secs(10);
/// The line sshd writes last for a connection that ends before authentication.
const CLOSING: &[&str] = &[
    "Connection closed by",
    "Connection reset by",
    "Disconnected from",
    "Received disconnect from",
    "Timeout before authentication",
];

/// A running OpenSSH server in the lab's server namespace, listening on 192.0.2.1 and
/// 2001:db8::1. Dropping it kills the listener (connections in progress end with the lab).
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
    config: PathBuf,
    _writer: JoinHandle<()>,
}

impl Sshd {
    /// Generates a host key in `dir` (created if needed), writes `dir/sshd_config`
    /// (`ListenAddress` on the server's addresses, `PidFile` in `dir`, `UsePAM no`,
    /// `LogLevel VERBOSE`), checks it with `sshd -t`, starts `sshd -D -e` in the server
    /// namespace and waits until it listens on both addresses. The log is `dir/sshd.log`.
    pub fn start(lab: &Lab, dir: &Path, port: u16) -> Result<Sshd, LabError> {
        require_tool(SSHD, "openssh-server")?;
        require_tool(SSH_KEYGEN, "openssh-client")?;
        fs::create_dir_all(dir).map_err(|source| LabError::Io {
            what: "creating the sshd directory",
            path: dir.to_owned(),
            source,
        })?;
        ensure_privsep_dir()?;
        let key = dir.join("ssh_host_ed25519_key");
        for stale in [key.clone(), key.with_extension("pub")] {
            let _ = fs::remove_file(stale);
        }
        let keygen = [
            SSH_KEYGEN.as_ref(),
            "-q".as_ref(),
            "-t".as_ref(),
            "ed25519".as_ref(),
            "-N".as_ref(),
            "".as_ref(),
            "-C".as_ref(),
            "rampart-lab".as_ref(),
            "-f".as_ref(),
            key.as_os_str(),
        ];
        run_root(&keygen, Duration::from_secs(10))?;
        let config = dir.join("sshd_config");
        let log = dir.join("sshd.log");
        let pid_file = dir.join("sshd.pid");
        let mut text = format!(
            "# Written by rampart-testkit for a lab test.\n\
             Port {port}\n\
             ListenAddress {}\n\
             ListenAddress {}\n\
             HostKey {}\n\
             PidFile {}\n\
             UsePAM no\n\
             LogLevel VERBOSE\n\
             PasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\n\
             MaxStartups 100:30:200\n",
            Host::Server.addr4(),
            Host::Server.addr6(),
            key.display(),
            pid_file.display(),
        );
        if sshd_version()? >= (9, 8) {
            // OpenSSH 9.8+ refuses sources after repeated failures; tests decide bans.
            text.push_str("PerSourcePenalties no\n");
        }
        fs::write(&config, text).map_err(|source| LabError::Io {
            what: "writing",
            path: config.clone(),
            source,
        })?;
        run_root(
            &[
                SSHD.as_ref(),
                "-t".as_ref(),
                "-f".as_ref(),
                config.as_os_str(),
            ],
            Duration::from_secs(10),
        )?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|source| LabError::Io {
                what: "opening the sshd log",
                path: log.clone(),
                source,
            })?;
        let argv = [
            SSHD.as_ref(),
            "-D".as_ref(),
            "-e".as_ref(),
            "-f".as_ref(),
            config.as_os_str(),
        ];
        let argv_shown = argv_text(&argv);
        let mut child = lab.spawn_piped(Host::Server, &argv)?;
        let pid = child.id();
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LabError::Protocol {
                what: "starting sshd".into(),
                detail: "no standard error pipe".into(),
            });
        };
        let writer = thread::Builder::new()
            .name("sshd-log".into())
            .spawn(move || {
                let mut reader = BufReader::new(stderr);
                let mut msg = Vec::with_capacity(256);
                loop {
                    msg.clear();
                    match reader.read_until(b'\n', &mut msg) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    while matches!(msg.last(), Some(b'\n' | b'\r')) {
                        msg.pop();
                    }
                    let stamp = jiff::Zoned::now().strftime("%b %e %H:%M:%S").to_string();
                    let mut line = format!("{stamp} {SYSLOG_HOST} sshd[{pid}]: ").into_bytes();
                    line.extend_from_slice(&msg);
                    line.push(b'\n');
                    if append_line(&mut file, &line).is_err() {
                        return;
                    }
                }
            })
            .map_err(|source| LabError::Spawn {
                argv: "sshd log writer thread".into(),
                source,
            })?;
        let mut sshd = Sshd {
            child,
            port,
            log,
            config,
            _writer: writer,
        };
        sshd.wait_listening(&argv_shown)?;
        Ok(sshd)
    }

    /// Waits until the log says sshd listens on both addresses; fails early if it exits.
    fn wait_listening(&mut self, argv: &str) -> Result<(), LabError> {
        let want = [
            format!(
                "Server listening on {} port {}.",
                Host::Server.addr4(),
                self.port
            ),
            format!(
                "Server listening on {} port {}.",
                Host::Server.addr6(),
                self.port
            ),
        ];
        let deadline = Instant::now() + SSHD_WAIT;
        loop {
            let text = read_lossy(&self.log)?;
            if want.iter().all(|w| text.contains(w.as_str())) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(50));
                return Err(LabError::Failed {
                    argv: argv.to_owned(),
                    status,
                    stderr: read_lossy(&self.log)?,
                });
            }
            if Instant::now() >= deadline {
                return Err(LabError::LogTimeout {
                    path: self.log.clone(),
                    needle: want.join(" and "),
                    want: 2,
                    found: want.iter().filter(|w| text.contains(w.as_str())).count(),
                    timeout: SSHD_WAIT,
                    content: tail(&text, 16 * 1024),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The log file (syslog format, see the module documentation).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The configuration file written for this server.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its IPv4 listening address (192.0.2.1:port).
    pub fn addr4(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Host::Server.addr4()), self.port)
    }

    /// Its IPv6 listening address ([2001:db8::1]:port).
    pub fn addr6(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(Host::Server.addr6()), self.port)
    }

    /// The listener's pid (the one written into the log lines).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One failed login attempt as sshd logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedLogin {
    /// The client's address as sshd saw it.
    pub from: IpAddr,
    /// The client's source port (how the log lines of this attempt are told apart).
    pub client_port: u16,
    /// Every log line that names `from port client_port`, in order, from `Connection
    /// from` to the closing line.
    pub lines: Vec<String>,
    /// What the client printed (`Permission denied (...)`).
    pub client_stderr: String,
}

/// Makes one failing login attempt from `from` to `to` as `user` with the real client,
/// `ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no -o
/// UserKnownHostsFile=/dev/null -o ConnectTimeout=3 -o PubkeyAuthentication=no -p PORT
/// user@addr true` (no config file and no keys, so the outcome does not depend on the
/// machine; BatchMode never prompts), then waits until sshd has logged the end of that
/// connection. Fails if the client does not end with `Permission denied`.
pub fn ssh_fail(
    lab: &Lab,
    sshd: &Sshd,
    from: Host,
    to: SocketAddr,
    user: &str,
) -> Result<FailedLogin, LabError> {
    require_tool(SSH, "openssh-client")?;
    if user.is_empty()
        || user.starts_with('-')
        || user.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(LabError::BadArgv {
            argv: format!("ssh {user:?}@{}", to.ip()),
            why: "the user name must be non-empty, not start with '-', and hold no spaces or control characters",
        });
    }
    let source = from.addr_like(to.ip());
    let before = connection_ports(&read_lossy(sshd.log_path())?, source);
    let port = to.port().to_string();
    let target = format!("{user}@{}", to.ip());
    let argv = [
        SSH,
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=3",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "LogLevel=ERROR",
        "-p",
        &port,
        &target,
        "true",
    ];
    let out = lab.run(from, &argv, SSH_TIMEOUT)?;
    let client_stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() || !client_stderr.contains("Permission denied") {
        return Err(LabError::Failed {
            argv: argv_text(&argv),
            status: out.status,
            stderr: format!("expected a refused login, got: {client_stderr}"),
        });
    }
    let deadline = Instant::now() + SSHD_WAIT;
    loop {
        let text = read_lossy(sshd.log_path())?;
        // New connections from the source that name this user: an earlier bare probe
        // (tcp_connects) whose lines land late is not this attempt.
        let named = format!("user {user} ");
        let new: Vec<u16> = connection_ports(&text, source)
            .into_iter()
            .filter(|p| !before.contains(p))
            .filter(|&p| {
                text.lines()
                    .any(|l| names_endpoint(l, source, p) && l.contains(&named))
            })
            .collect();
        if let [client_port] = new[..] {
            let lines: Vec<String> = text
                .lines()
                .filter(|l| names_endpoint(l, source, client_port))
                .map(str::to_owned)
                .collect();
            if lines.iter().any(|l| CLOSING.iter().any(|c| l.contains(c))) {
                return Ok(FailedLogin {
                    from: source,
                    client_port,
                    lines,
                    client_stderr,
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(LabError::LogTimeout {
                path: sshd.log_path().to_owned(),
                needle: format!("one new connection from {source} and its closing line"),
                want: 1,
                found: new.len(),
                timeout: SSHD_WAIT,
                content: tail(&text, 16 * 1024),
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Client ports of the `Connection from ADDR port N on ...` lines (LogLevel VERBOSE).
fn connection_ports(log: &str, addr: IpAddr) -> Vec<u16> {
    let needle = format!("Connection from {addr} port ");
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find(&needle)? + needle.len()..];
            let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
            digits.parse().ok()
        })
        .collect()
}

/// Whether `line` names `addr port N` (and not a longer port that starts with N).
fn names_endpoint(line: &str, addr: IpAddr, port: u16) -> bool {
    let needle = format!("{addr} port {port}");
    line.match_indices(&needle).any(|(i, m)| {
        !line[i + m.len()..].starts_with(|c: char| c.is_ascii_digit())
            && !line[..i].ends_with(|c: char| c.is_ascii_hexdigit() || c == ':' || c == '.')
    })
}

/// Creates `/run/sshd` (root-owned, 0755) if it is missing; sshd refuses to start without it.
fn ensure_privsep_dir() -> Result<(), LabError> {
    let dir = Path::new(PRIVSEP_DIR);
    if dir.is_dir() {
        return Ok(());
    }
    let io_err = |source| LabError::Io {
        what: "creating sshd's privilege separation directory",
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(io_err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io_err)
}

/// The installed sshd's version as (major, minor), from `sshd -V` (`OpenSSH_9.2p1, ...`).
fn sshd_version() -> Result<(u32, u32), LabError> {
    let mut cmd = Command::new(SSHD);
    cmd.arg("-V")
        .env_clear()
        .env("PATH", CHILD_PATH)
        .stdin(Stdio::null());
    let out = run_command(cmd, format!("{SSHD} -V"), Duration::from_secs(10))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let parsed = text.split("OpenSSH_").nth(1).and_then(|v| {
        let mut parts = v.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    });
    parsed.ok_or_else(|| LabError::Protocol {
        what: format!("{SSHD} -V"),
        detail: format!("no OpenSSH version in {text:?}"),
    })
}

/// Runs a tool in the test's own namespace; a non-zero exit is an error.
fn run_root(argv: &[&std::ffi::OsStr], timeout: Duration) -> Result<(), LabError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(LabError::BadArgv {
            argv: String::new(),
            why: "the argv is empty",
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", CHILD_PATH)
        .stdin(Stdio::null());
    let text = argv_text(argv);
    let out = run_command(cmd, text.clone(), timeout)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Failed {
            argv: text,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ports_reads_the_client_ports_of_one_address() {
        let log = "Nov 21 10:00:00 h sshd[1]: Connection from 192.0.2.66 port 40000 on 192.0.2.1 port 22 rdomain \"\"\n\
                   Nov 21 10:00:00 h sshd[1]: Connection from 192.0.2.77 port 40001 on 192.0.2.1 port 22 rdomain \"\"\n\
                   Nov 21 10:00:01 h sshd[1]: Connection from 192.0.2.66 port 40002 on 192.0.2.1 port 22 rdomain \"\"\n";
        let ip: IpAddr = "192.0.2.66".parse().expect("valid");
        assert_eq!(connection_ports(log, ip), vec![40000, 40002]);
    }

    #[test]
    fn names_endpoint_does_not_confuse_longer_ports_or_addresses() {
        let ip: IpAddr = "192.0.2.6".parse().expect("valid");
        assert!(names_endpoint(
            "Invalid user x from 192.0.2.6 port 4000",
            ip,
            4000
        ));
        assert!(!names_endpoint(
            "Invalid user x from 192.0.2.6 port 40001",
            ip,
            4000
        ));
        assert!(!names_endpoint(
            "Invalid user x from 192.0.2.66 port 4000",
            ip,
            4000
        ));
        assert!(!names_endpoint(
            "Invalid user x from 1192.0.2.6 port 4000",
            ip,
            4000
        ));
        assert!(names_endpoint(
            "Received disconnect from 192.0.2.6 port 4000:11: bye [preauth]",
            ip,
            4000
        ));
    }
}

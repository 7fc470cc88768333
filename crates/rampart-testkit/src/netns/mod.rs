//! A network-namespace lab for end-to-end tests (needs root).
//!
//! [`Lab::new`] builds four namespaces with unique names (`rlab-<pid>-<n>-<role>`): a
//! `switch` that holds only a bridge, and three hosts joined to it by veth pairs:
//!
//! | host | IPv4 (/24) | IPv6 (/64) |
//! |---|---|---|
//! | [`Host::Server`] | 192.0.2.1 | 2001:db8::1 |
//! | [`Host::Attacker`] | 192.0.2.66 | 2001:db8::66 |
//! | [`Host::Bystander`] | 192.0.2.77 | 2001:db8::77 |
//!
//! IPv6 addresses are added with `nodad`, so they work at once; loopback is up everywhere.
//! The bridge lives in its own namespace so that the server's firewall sees only traffic
//! addressed to the server, as on a real host.
//!
//! Dropping the [`Lab`] (also while a failing test unwinds) kills every process still
//! running in its namespaces, deletes the namespaces and removes the lab's temporary
//! directory (kept when `RAMPART_LAB_KEEP` is set in the environment, for debugging, until
//! the next test run). A lab left behind by a test process that was killed (namespaces,
//! processes in them, directory) is removed by the next [`Lab::new`]: its name carries the
//! dead process's pid.
//!
//! Traffic helpers ([`Lab::tcp_connects`], [`Lab::http_get`]) run on a short-lived thread
//! that moves into the source host's namespace, so they need no helper binary. Real
//! servers: [`Sshd`] (the system's OpenSSH) and [`HttpServer`] (a tiny combined-log HTTP
//! server, also available as `rampart-testkit http-serve`).

pub mod http;
mod sshd;

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

pub use http::{HttpServer, MAX_HTTP_CONNECTIONS};
pub use sshd::{ssh_fail, FailedLogin, Sshd};

/// `ip` from iproute2.
pub const IP: &str = "/usr/bin/ip";
/// `nft` from nftables.
pub const NFT: &str = "/usr/sbin/nft";
/// The OpenSSH server.
pub const SSHD: &str = "/usr/sbin/sshd";
/// The OpenSSH client.
pub const SSH: &str = "/usr/bin/ssh";
/// `ssh-keygen` from the OpenSSH client package.
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
/// The only `PATH` a child process sees (its environment is cleared).
pub const CHILD_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// Prefix of every lab namespace name: `rlab-<pid>-<n>-<role>`.
pub const NS_PREFIX: &str = "rlab-";

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Timeout for the `ip` commands that build and tear down a lab.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Labs made by this process; with the pid it makes namespace names unique.
static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Errors from building or using the lab. Each names what it was doing (argv, path,
/// namespace, addresses).
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab creates namespaces and firewall rules: it needs root.
    #[error("the network lab needs root (effective uid {euid}); run the tests as root")]
    NotRoot {
        /// The effective uid of the test process.
        euid: u32,
    },
    /// A tool the lab runs is not installed.
    #[error("{path} is missing: install the Debian package {package}")]
    MissingTool {
        /// Absolute path of the tool.
        path: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A file system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("creating", "reading", ...).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An argv the lab refuses to run.
    #[error("refusing to run {argv}: {why}")]
    BadArgv {
        /// The argv, space-joined.
        argv: String,
        /// Why.
        why: &'static str,
    },
    /// A process could not be started.
    #[error("cannot start {argv}: {source}")]
    Spawn {
        /// The argv, space-joined.
        argv: String,
        /// The OS error.
        source: io::Error,
    },
    /// A process exited unsuccessfully (or otherwise than expected).
    #[error("{argv} exited with {status}: {stderr}")]
    Failed {
        /// The argv, space-joined.
        argv: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its standard error (and output, where useful).
        stderr: String,
    },
    /// A process did not finish in time and was killed.
    #[error("{argv} did not finish within {timeout:?} and was killed; output so far: {output}")]
    Timeout {
        /// The argv, space-joined.
        argv: String,
        /// The time it had.
        timeout: Duration,
        /// Standard output and error read before it was killed.
        output: String,
    },
    /// A thread could not move into a namespace.
    #[error("cannot enter network namespace {name}: {source}")]
    Enter {
        /// The namespace name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// A network operation failed in an unexpected way.
    #[error("{what} from {from} to {to}: {source}")]
    Net {
        /// What was being done.
        what: &'static str,
        /// The host the traffic came from.
        from: Host,
        /// The destination.
        to: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A peer answered something the helper does not understand.
    #[error("{what}: {detail}")]
    Protocol {
        /// What was being done.
        what: String,
        /// What was received or what went wrong.
        detail: String,
    },
    /// A log file did not get the expected lines in time.
    #[error(
        "{}: waited {timeout:?} for {want} line(s) containing {needle:?}, found {found}; the file holds:\n{content}",
        path.display()
    )]
    LogTimeout {
        /// The log file.
        path: PathBuf,
        /// The substring looked for.
        needle: String,
        /// How many lines were wanted.
        want: usize,
        /// How many were there at the deadline.
        found: usize,
        /// How long it waited.
        timeout: Duration,
        /// The file's content (its last 16 KiB).
        content: String,
    },
}

/// One of the lab's three hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// The protected server (192.0.2.1, 2001:db8::1).
    Server,
    /// The attacker (192.0.2.66, 2001:db8::66).
    Attacker,
    /// An innocent client on the same network (192.0.2.77, 2001:db8::77).
    Bystander,
}

impl Host {
    /// Every host.
    pub const ALL: [Host; 3] = [Host::Server, Host::Attacker, Host::Bystander];

    /// `server`, `attacker` or `bystander`.
    pub const fn name(self) -> &'static str {
        match self {
            Host::Server => "server",
            Host::Attacker => "attacker",
            Host::Bystander => "bystander",
        }
    }

    /// The last byte of both of the host's addresses.
    const fn octet(self) -> u8 {
        match self {
            Host::Server => 1,
            Host::Attacker => 0x66,
            Host::Bystander => 0x77,
        }
    }

    /// The host's IPv4 address (192.0.2.1, .66, .77).
    pub const fn addr4(self) -> Ipv4Addr {
        let o = match self {
            Host::Server => 1,
            Host::Attacker => 66,
            Host::Bystander => 77,
        };
        Ipv4Addr::new(192, 0, 2, o)
    }

    /// The host's IPv6 address (2001:db8::1, ::66, ::77).
    pub const fn addr6(self) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, self.octet() as u16)
    }

    /// The host's address in the family of `like` (to pick a source address).
    pub fn addr_like(self, like: IpAddr) -> IpAddr {
        match like {
            IpAddr::V4(_) => IpAddr::V4(self.addr4()),
            IpAddr::V6(_) => IpAddr::V6(self.addr6()),
        }
    }

    /// Index into per-host arrays.
    const fn index(self) -> usize {
        match self {
            Host::Server => 0,
            Host::Attacker => 1,
            Host::Bystander => 2,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a TCP connection attempt saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connect {
    /// The handshake completed.
    Connected,
    /// The peer answered with a reset (closed port, or a `reject with tcp reset` rule).
    Refused,
    /// No answer within the timeout (a `drop` rule, or nobody there).
    TimedOut,
    /// An ICMP error said the host or network is unreachable (a `reject` rule with an ICMP
    /// type, or no route).
    Unreachable,
}

/// A process started in a lab namespace by [`Lab::spawn`]. Its standard output and error
/// both go to the file [`Spawned::output`]. The lab kills it when the lab is dropped;
/// dropping this value does not (use `child.kill()` for that).
#[derive(Debug)]
pub struct Spawned {
    /// The process (`ip netns exec` replaces itself with the program, so this is the
    /// program's pid).
    pub child: Child,
    /// The file that receives its standard output and error.
    pub output: PathBuf,
}

impl Spawned {
    /// What the process has written so far (lossy UTF-8; empty if unreadable).
    pub fn output_text(&self) -> String {
        fs::read(&self.output)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, LabError> {
        wait_child(&mut self.child, timeout).map_err(|source| LabError::Io {
            what: "waiting for the process that writes",
            path: self.output.clone(),
            source,
        })
    }
}

/// Three hosts on one bridge, each in its own network namespace. See the module
/// documentation.
#[derive(Debug)]
pub struct Lab {
    /// `rlab-<pid>-<n>`.
    id: String,
    /// Namespace names of the hosts, by [`Host::index`].
    hosts: [String; 3],
    /// Namespace name of the switch.
    switch: String,
    /// Namespaces actually created, in creation order (cleanup deletes these).
    created: Vec<String>,
    /// The lab's temporary directory.
    dir: PathBuf,
    /// Processes spawned so far (names their output files).
    spawned: AtomicU32,
}

impl Lab {
    /// Builds a lab: checks root and `ip`, removes labs left by dead test processes, then
    /// creates the namespaces, bridge, links and addresses. On an error everything made so
    /// far is removed again.
    pub fn new() -> Result<Lab, LabError> {
        require_root()?;
        require_tool(IP, "iproute2")?;
        remove_stale_labs();
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("{NS_PREFIX}{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&id);
        let hosts = Host::ALL.map(|h| format!("{id}-{}", h.name()));
        let mut lab = Lab {
            switch: format!("{id}-switch"),
            hosts,
            created: Vec::new(),
            dir,
            id,
            spawned: AtomicU32::new(0),
        };
        if lab.dir.exists() {
            let _ = fs::remove_dir_all(&lab.dir);
        }
        fs::create_dir_all(&lab.dir).map_err(|source| LabError::Io {
            what: "creating the lab directory",
            path: lab.dir.clone(),
            source,
        })?;
        lab.build()?;
        Ok(lab)
    }

    /// Creates the namespaces and wires them (called once by [`Lab::new`]; on an error the
    /// caller's drop of the half-built lab cleans up).
    fn build(&mut self) -> Result<(), LabError> {
        let sw = self.switch.clone();
        ip(&["netns", "add", &sw])?;
        self.created.push(sw.clone());
        for name in self.hosts.clone() {
            ip(&["netns", "add", &name])?;
            self.created.push(name);
        }
        // No multicast snooping: IPv6 neighbour discovery must not depend on the bridge
        // having seen MLD reports.
        ip(&[
            "-n",
            &sw,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for host in Host::ALL {
            let ns = self.hosts[host.index()].clone();
            let port = format!("to-{}", host.name());
            // Both ends are created directly in their namespaces: nothing touches the
            // root namespace, so parallel labs cannot collide on interface names.
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            let v4 = format!("{}/24", host.addr4());
            let v6 = format!("{}/64", host.addr6());
            ip(&["-n", &ns, "addr", "add", &v4, "dev", "eth0"])?;
            ip(&["-n", &ns, "addr", "add", &v6, "dev", "eth0", "nodad"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// `rlab-<pid>-<n>`: the prefix of all of this lab's namespace names.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The lab's temporary directory (removed on drop): a place for configs and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace name of `host` (for `ip netns exec NAME`, `ip -n NAME`).
    pub fn ns_name(&self, host: Host) -> &str {
        &self.hosts[host.index()]
    }

    /// The namespace name of the switch that holds the bridge.
    pub fn switch_name(&self) -> &str {
        &self.switch
    }

    /// The namespace file of `host` (`/run/netns/NAME`), for `setns`.
    pub fn ns_path(&self, host: Host) -> PathBuf {
        Path::new(NETNS_DIR).join(self.ns_name(host))
    }

    /// The IPv4 address of `host`.
    pub fn addr4(&self, host: Host) -> Ipv4Addr {
        host.addr4()
    }

    /// The IPv6 address of `host`.
    pub fn addr6(&self, host: Host) -> Ipv6Addr {
        host.addr6()
    }

    /// The `ip netns exec NAME argv...` command with a clean environment.
    fn command<S: AsRef<OsStr>>(&self, host: Host, argv: &[S]) -> Result<Command, LabError> {
        check_argv(argv)?;
        let mut cmd = Command::new(IP);
        cmd.args(["netns", "exec", self.ns_name(host)])
            .args(argv)
            .env_clear()
            .env("PATH", CHILD_PATH)
            .stdin(Stdio::null());
        Ok(cmd)
    }

    /// Starts `argv` (absolute program path first) inside `host` with a clean environment
    /// plus `env` and `PATH`, standard input from `/dev/null`, and standard output and
    /// error appended to a file in the lab directory. No shell is involved.
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        host: Host,
        argv: &[S],
        env: &[(&str, &str)],
    ) -> Result<Spawned, LabError> {
        let mut cmd = self.command(host, argv)?;
        cmd.envs(env.iter().copied());
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let program = argv
            .first()
            .and_then(|a| Path::new(a.as_ref()).file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let output = self.dir.join(format!("{}-{n}-{program}.out", host.name()));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&output)
            .map_err(|source| LabError::Io {
                what: "creating the output file",
                path: output.clone(),
                source,
            })?;
        let err = file.try_clone().map_err(|source| LabError::Io {
            what: "duplicating the output file",
            path: output.clone(),
            source,
        })?;
        cmd.stdout(file).stderr(err);
        let child = cmd.spawn().map_err(|source| LabError::Spawn {
            argv: argv_text(argv),
            source,
        })?;
        Ok(Spawned { child, output })
    }

    /// Starts `argv` inside `host` with its standard error piped and standard output
    /// discarded (for servers whose log the lab rewrites, such as sshd).
    fn spawn_piped<S: AsRef<OsStr>>(&self, host: Host, argv: &[S]) -> Result<Child, LabError> {
        let mut cmd = self.command(host, argv)?;
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.spawn().map_err(|source| LabError::Spawn {
            argv: argv_text(argv),
            source,
        })
    }

    /// Runs `argv` inside `host` to completion and returns its output, whatever its exit
    /// status. Kills it and fails with [`LabError::Timeout`] after `timeout`.
    pub fn run<S: AsRef<OsStr>>(
        &self,
        host: Host,
        argv: &[S],
        timeout: Duration,
    ) -> Result<Output, LabError> {
        let cmd = self.command(host, argv)?;
        run_command(cmd, argv_text(argv), timeout)
    }

    /// Like [`Lab::run`], but a non-zero exit status is an error ([`LabError::Failed`]).
    pub fn run_ok<S: AsRef<OsStr>>(
        &self,
        host: Host,
        argv: &[S],
        timeout: Duration,
    ) -> Result<Output, LabError> {
        let out = self.run(host, argv, timeout)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(LabError::Failed {
                argv: argv_text(argv),
                status: out.status,
                stderr: output_text(&out),
            })
        }
    }

    /// Runs `f` on a new thread that has moved into `host`'s network namespace, and returns
    /// its result. Sockets created there belong to that namespace (and may be used from
    /// any thread afterwards).
    pub fn in_netns<T, F>(&self, host: Host, f: F) -> Result<T, LabError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let path = self.ns_path(host);
        let name = self.ns_name(host).to_owned();
        let ns = File::open(&path).map_err(|source| LabError::Enter {
            name: name.clone(),
            source,
        })?;
        let worker = thread::Builder::new()
            .name(format!("lab-{host}"))
            .spawn(move || {
                move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                    .map_err(io::Error::from)?;
                drop(ns);
                Ok::<T, io::Error>(f())
            })
            .map_err(|source| LabError::Enter {
                name: name.clone(),
                source,
            })?;
        match worker.join() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(LabError::Enter { name, source }),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// One real TCP connection attempt from inside `from` to `to`, closed at once.
    pub fn tcp_connects(
        &self,
        from: Host,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<Connect, LabError> {
        let result = self.in_netns(from, move || TcpStream::connect_timeout(&to, timeout))?;
        match result {
            Ok(_stream) => Ok(Connect::Connected),
            Err(e) => match e.kind() {
                io::ErrorKind::ConnectionRefused => Ok(Connect::Refused),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Ok(Connect::TimedOut),
                io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                    Ok(Connect::Unreachable)
                }
                _ => Err(LabError::Net {
                    what: "connecting",
                    from,
                    to,
                    source: e,
                }),
            },
        }
    }

    /// One `GET path` from inside `from` to the HTTP server at `to` with the given
    /// `User-Agent`; returns the status code. Connect and read time out after 3 s each.
    pub fn http_get(
        &self,
        from: Host,
        to: SocketAddr,
        path: &str,
        agent: &str,
    ) -> Result<u16, LabError> {
        http::get(self, from, to, path, agent)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in &self.created {
            kill_processes_in(&Path::new(NETNS_DIR).join(name));
        }
        // Hosts first: deleting a host namespace removes its veth pair from the switch.
        for name in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("rampart lab: cannot delete namespace {name}: {e}");
            }
        }
        if std::env::var_os("RAMPART_LAB_KEEP").is_some() {
            eprintln!("rampart lab: kept {}", self.dir.display());
        } else if let Err(e) = fs::remove_dir_all(&self.dir) {
            if e.kind() != io::ErrorKind::NotFound {
                eprintln!("rampart lab: cannot remove {}: {e}", self.dir.display());
            }
        }
    }
}

/// Fails unless the effective uid is 0.
pub fn require_root() -> Result<(), LabError> {
    let euid = rustix::process::geteuid();
    if euid.is_root() {
        Ok(())
    } else {
        Err(LabError::NotRoot {
            euid: euid.as_raw(),
        })
    }
}

/// Fails with [`LabError::MissingTool`] unless `path` exists.
pub fn require_tool(path: &'static str, package: &'static str) -> Result<(), LabError> {
    if Path::new(path).is_file() {
        Ok(())
    } else {
        Err(LabError::MissingTool { path, package })
    }
}

/// Runs `ip ARGS` in the root namespace; a non-zero exit is an error.
fn ip(args: &[&str]) -> Result<(), LabError> {
    let mut cmd = Command::new(IP);
    cmd.args(args)
        .env_clear()
        .env("PATH", CHILD_PATH)
        .stdin(Stdio::null());
    let mut argv = vec![IP];
    argv.extend_from_slice(args);
    let text = argv_text(&argv);
    let out = run_command(cmd, text.clone(), SETUP_TIMEOUT)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Failed {
            argv: text,
            status: out.status,
            stderr: output_text(&out),
        })
    }
}

/// Runs a prepared command (stdin already set) with a timeout, collecting its output.
/// Output of grandchildren that keep the pipes open is collected for at most one second
/// after the child exits.
pub(crate) fn run_command(
    mut cmd: Command,
    argv: String,
    timeout: Duration,
) -> Result<Output, LabError> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
        argv: argv.clone(),
        source,
    })?;
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    let mut readers = 0;
    if let Some(mut out) = child.stdout.take() {
        let tx = tx.clone();
        readers += 1;
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            let _ = tx.send((true, buf));
        });
    }
    if let Some(mut err) = child.stderr.take() {
        let tx = tx.clone();
        readers += 1;
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            let _ = tx.send((false, buf));
        });
    }
    drop(tx);
    let status = wait_child(&mut child, timeout).map_err(|source| LabError::Spawn {
        argv: argv.clone(),
        source,
    })?;
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let mut output = String::new();
            while let Ok((_, buf)) = rx.recv_timeout(Duration::from_millis(500)) {
                output.push_str(&String::from_utf8_lossy(&buf));
            }
            return Err(LabError::Timeout {
                argv,
                timeout,
                output,
            });
        }
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    for _ in 0..readers {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, buf)) => stdout = buf,
            Ok((false, buf)) => stderr = buf,
            Err(_) => break,
        }
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Polls `child` until it exits or `timeout` passes (`None`).
fn wait_child(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Refuses an empty argv or one whose program is not an absolute path.
fn check_argv<S: AsRef<OsStr>>(argv: &[S]) -> Result<(), LabError> {
    match argv.first() {
        None => Err(LabError::BadArgv {
            argv: String::new(),
            why: "the argv is empty",
        }),
        Some(p) if !Path::new(p.as_ref()).is_absolute() => Err(LabError::BadArgv {
            argv: argv_text(argv),
            why: "the program must be an absolute path",
        }),
        Some(_) => Ok(()),
    }
}

/// The argv, space-joined, for messages.
pub(crate) fn argv_text<S: AsRef<OsStr>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A process's standard error followed by its standard output, for messages.
fn output_text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        s.push_str(" | stdout: ");
        s.push_str(stdout.trim_end());
    }
    s
}

/// Kills (SIGKILL) every process whose network namespace is the one bound at `ns_file`,
/// then waits up to two seconds for them to be gone. The test process itself is never
/// killed (its helper threads may be inside the namespace; they end on their own).
fn kill_processes_in(ns_file: &Path) {
    let Ok(ns) = fs::metadata(ns_file) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut found = 0;
        for (pid, pidfd) in processes_in(ns.dev(), ns.ino()) {
            found += 1;
            if let Err(e) = pidfd_send_signal(&pidfd, Signal::KILL) {
                eprintln!("rampart lab: cannot kill pid {pid}: {e}");
            }
        }
        if found == 0 || Instant::now() >= deadline {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The live processes (pid and a pidfd, so that a recycled pid is never signalled) whose
/// network namespace has the inode `(dev, ino)`. Zombies have no namespace and are not
/// listed.
fn processes_in(dev: u64, ino: u64) -> Vec<(i32, std::os::fd::OwnedFd)> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if u32::try_from(pid).ok() == Some(me) {
            continue;
        }
        let Some(p) = Pid::from_raw(pid) else {
            continue;
        };
        // Open the pidfd first, then check the namespace: if the pid was recycled in
        // between, the check looks at the process the pidfd refers to.
        let Ok(pidfd) = pidfd_open(p, PidfdFlags::empty()) else {
            continue;
        };
        let Ok(net) = fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if net.dev() == dev && net.ino() == ino {
            found.push((pid, pidfd));
        }
    }
    found
}

/// Deletes `rlab-<pid>-...` namespaces and temporary directories whose process no longer
/// exists (left by a test process that was killed before its labs were dropped).
fn remove_stale_labs() {
    if let Ok(entries) = fs::read_dir(NETNS_DIR) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !owner_is_dead(&name) {
                continue;
            }
            kill_processes_in(&entry.path());
            if ip(&["netns", "del", &name]).is_ok() {
                eprintln!("rampart lab: removed stale namespace {name}");
            }
        }
    }
    if let Ok(entries) = fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only `rlab-<pid>-<n>` exactly: the lab directories.
            let is_lab_dir = name
                .strip_prefix(NS_PREFIX)
                .and_then(|rest| rest.split_once('-'))
                .is_some_and(|(pid, n)| {
                    [pid, n]
                        .iter()
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                });
            if is_lab_dir && owner_is_dead(&name) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Whether `name` is `rlab-<pid>-...` and no process `pid` exists.
fn owner_is_dead(name: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(NS_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return false;
    };
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Reads `path` until at least `count` lines contain `needle`, polling every 20 ms, and
/// returns those lines. A missing file counts as empty. Fails after `timeout` with the
/// file's content in the error.
pub fn wait_for_lines(
    path: &Path,
    needle: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<String>, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = read_lossy(path)?;
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect();
        if lines.len() >= count {
            return Ok(lines);
        }
        if Instant::now() >= deadline {
            return Err(LabError::LogTimeout {
                path: path.to_owned(),
                needle: needle.to_owned(),
                want: count,
                found: lines.len(),
                timeout,
                content: tail(&text, 16 * 1024),
            });
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The file's content as lossy UTF-8; a missing file is empty.
pub(crate) fn read_lossy(path: &Path) -> Result<String, LabError> {
    match fs::read(path) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(LabError::Io {
            what: "reading",
            path: path.to_owned(),
            source,
        }),
    }
}

/// The last `max` bytes of `text` (on a character boundary).
pub(crate) fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Appends one line to a log file opened for appending: one `write` per line, so lines
/// from several writers never interleave.
pub(crate) fn append_line(file: &mut File, line: &[u8]) -> io::Result<()> {
    file.write_all(line)?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_have_the_documented_addresses() {
        assert_eq!(Host::Server.addr4().to_string(), "192.0.2.1");
        assert_eq!(Host::Attacker.addr4().to_string(), "192.0.2.66");
        assert_eq!(Host::Bystander.addr4().to_string(), "192.0.2.77");
        assert_eq!(Host::Server.addr6().to_string(), "2001:db8::1");
        assert_eq!(Host::Attacker.addr6().to_string(), "2001:db8::66");
        assert_eq!(Host::Bystander.addr6().to_string(), "2001:db8::77");
    }

    #[test]
    fn argv_must_start_with_an_absolute_program() {
        assert!(check_argv::<&str>(&[]).is_err());
        assert!(check_argv(&["ip", "link"]).is_err());
        assert!(check_argv(&["/usr/bin/ip", "link"]).is_ok());
    }

    #[test]
    fn wait_for_lines_returns_matches_or_fails_with_the_content() {
        let path = std::env::temp_dir().join(format!(
            "rampart-testkit-wait-{}-{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::write(&path, "one apple\ntwo pears\nthree apples\n").expect("write temp file");
        let got = wait_for_lines(&path, "apple", 2, Duration::from_millis(100)).expect("found");
        assert_eq!(got, vec!["one apple", "three apples"]);
        let err = wait_for_lines(&path, "apple", 3, Duration::from_millis(60))
            .expect_err("only two lines");
        let text = err.to_string();
        assert!(text.contains("found 2"), "{text}");
        assert!(text.contains("two pears"), "{text}");
        fs::remove_file(&path).expect("remove temp file");
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("aé", 1), "");
    }
}

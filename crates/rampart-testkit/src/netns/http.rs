//! A tiny HTTP/1.x server that writes a combined-format access log, and a one-request
//! client. The server answers `GET /` with 200 and any other path with 404 (other methods
//! 405, unparsable requests 400), always with an empty body and `Connection: close`, and
//! appends one line per request:
//!
//! ```text
//! 192.0.2.66 - - [21/Nov/2026:10:00:00 +0000] "GET /.env HTTP/1.1" 404 0 "-" "agent"
//! ```
//!
//! with the real peer address and the local time, one `write` per line (no buffering), so
//! a tailer sees each request at once. The request line, referer and agent are escaped as
//! nginx does (`"`, `\` and bytes outside printable ASCII become `\xHH`).
//!
//! [`serve`] is shared by [`HttpServer`] (threads of the test process, bound inside the
//! server namespace) and the `rampart-testkit http-serve` subcommand.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{Host, Lab, LabError};

/// At most this many connections are served at once. Overflow policy: a connection
/// accepted beyond the cap is closed at once without a response or a log line, and
/// counted in [`ServeStats::refused`].
pub const MAX_HTTP_CONNECTIONS: usize = 64;
/// The most bytes read for a request head; a longer head is answered 400.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle accept loop checks whether it should stop.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// Counters of a running server.
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Requests answered (and logged).
    pub requests: AtomicUsize,
    /// Connections closed unanswered because [`MAX_HTTP_CONNECTIONS`] were open.
    pub refused: AtomicUsize,
}

/// Serves `listeners` until `stop` is set, logging to `log` (created if missing, appended
/// to). Returns the accept threads (one per listener); each ends within ~10 ms of `stop`.
pub fn serve(
    listeners: Vec<TcpListener>,
    log: &Path,
    stop: Arc<AtomicBool>,
    stats: Arc<ServeStats>,
) -> io::Result<Vec<JoinHandle<()>>> {
    let file = OpenOptions::new().create(true).append(true).open(log)?;
    let log = Arc::new(Mutex::new(file));
    let active = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for listener in listeners {
        listener.set_nonblocking(true)?;
        let (log, stop, stats, active) = (
            Arc::clone(&log),
            Arc::clone(&stop),
            Arc::clone(&stats),
            Arc::clone(&active),
        );
        threads.push(
            thread::Builder::new()
                .name("http-accept".into())
                .spawn(move || accept_loop(&listener, &log, &stop, &stats, &active))?,
        );
    }
    Ok(threads)
}

/// Accepts until `stop`; one thread per connection, at most [`MAX_HTTP_CONNECTIONS`].
fn accept_loop(
    listener: &TcpListener,
    log: &Arc<Mutex<File>>,
    stop: &AtomicBool,
    stats: &Arc<ServeStats>,
    active: &Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("http-serve: accept: {e}");
                thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_HTTP_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            stats.refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        }
        let (log, stats, active) = (Arc::clone(log), Arc::clone(stats), Arc::clone(active));
        let spawned = thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || {
                handle(stream, peer, &log, &stats);
                active.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            eprintln!("http-serve: cannot start a connection thread: {e}");
        }
    }
}

/// One parsed request head.
struct Request {
    /// The request line as sent (`GET /x HTTP/1.1`), or `None` if unparsable.
    line: Option<String>,
    method: String,
    path: String,
    referer: Option<Vec<u8>>,
    agent: Option<Vec<u8>>,
}

/// Serves one connection: reads the head, answers, logs.
fn handle(mut stream: TcpStream, peer: SocketAddr, log: &Mutex<File>, stats: &ServeStats) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let Some(head) = read_head(&mut stream) else {
        // Nothing sent (a bare TCP connect): like nginx, no log line.
        return;
    };
    let req = parse(&head);
    let status = match &req.line {
        None => 400,
        Some(_) if req.method != "GET" => 405,
        Some(_) if req.path == "/" => 200,
        Some(_) => 404,
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let response =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    let stamp = jiff::Zoned::now()
        .strftime("%d/%b/%Y:%H:%M:%S %z")
        .to_string();
    let mut line = format!("{} - - [{stamp}] \"", client_ip(peer)).into_bytes();
    match &req.line {
        Some(l) => escape_into(&mut line, l.as_bytes()),
        None => line.push(b'-'),
    }
    line.extend_from_slice(format!("\" {status} 0 \"").as_bytes());
    escape_into(&mut line, req.referer.as_deref().unwrap_or(b"-"));
    line.extend_from_slice(b"\" \"");
    escape_into(&mut line, req.agent.as_deref().unwrap_or(b"-"));
    line.extend_from_slice(b"\"\n");
    if let Ok(mut file) = log.lock() {
        if let Err(e) = super::append_line(&mut file, &line) {
            eprintln!("http-serve: cannot write the log: {e}");
        }
    }
    stats.requests.fetch_add(1, Ordering::Relaxed);
}

/// The peer address as a log shows it (an IPv4-mapped IPv6 address as IPv4).
fn client_ip(peer: SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Reads up to the blank line that ends the head (at most [`MAX_HEAD`] bytes). `None` if
/// the client sent nothing at all.
fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_HEAD {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    (!head.is_empty()).then_some(head)
}

/// Parses the request line and the `Referer` and `User-Agent` headers.
fn parse(head: &[u8]) -> Request {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let parts: Vec<&[u8]> = first.split(|&b| b == b' ').collect();
    let mut req = Request {
        line: None,
        method: String::new(),
        path: String::new(),
        referer: None,
        agent: None,
    };
    if let [method, path, version] = parts[..] {
        if !method.is_empty() && path.starts_with(b"/") && version.starts_with(b"HTTP/") {
            req.line = Some(String::from_utf8_lossy(first).into_owned());
            req.method = String::from_utf8_lossy(method).into_owned();
            let path = path.split(|&b| b == b'?').next().unwrap_or_default();
            req.path = String::from_utf8_lossy(path).into_owned();
        }
    }
    for header in lines {
        let Some(colon) = header.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = header.split_at(colon);
        let value = value[1..].trim_ascii().to_vec();
        if name.eq_ignore_ascii_case(b"user-agent") {
            req.agent = Some(value);
        } else if name.eq_ignore_ascii_case(b"referer") {
            req.referer = Some(value);
        }
    }
    req
}

/// Appends `text` escaped as nginx escapes log variables.
fn escape_into(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.extend_from_slice(format!("\\x{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// An HTTP server inside the lab's server namespace, on 192.0.2.1 and 2001:db8::1, run by
/// threads of the test process (no helper binary needed). Dropping it stops it; drop it
/// before the [`Lab`] (declare it after the lab), because its sockets keep the namespace
/// alive.
#[derive(Debug)]
pub struct HttpServer {
    addrs: Vec<SocketAddr>,
    log: PathBuf,
    stop: Arc<AtomicBool>,
    stats: Arc<ServeStats>,
    threads: Vec<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `port` on both server addresses inside the server namespace and serves,
    /// logging to `log`.
    pub fn start(lab: &Lab, port: u16, log: &Path) -> Result<HttpServer, LabError> {
        let addrs = vec![
            SocketAddr::new(IpAddr::V4(Host::Server.addr4()), port),
            SocketAddr::new(IpAddr::V6(Host::Server.addr6()), port),
        ];
        let to_bind = addrs.clone();
        let listeners = lab.in_netns(Host::Server, move || {
            to_bind
                .iter()
                .map(|a| TcpListener::bind(a).map_err(|e| (*a, e)))
                .collect::<Result<Vec<_>, _>>()
        })?;
        let listeners = listeners.map_err(|(to, source)| LabError::Net {
            what: "binding the HTTP server",
            from: Host::Server,
            to,
            source,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ServeStats::default());
        let threads =
            serve(listeners, log, Arc::clone(&stop), Arc::clone(&stats)).map_err(|source| {
                LabError::Io {
                    what: "starting the HTTP server with its log",
                    path: log.to_owned(),
                    source,
                }
            })?;
        Ok(HttpServer {
            addrs,
            log: log.to_owned(),
            stop,
            stats,
            threads,
        })
    }

    /// The IPv4 address it listens on.
    pub fn addr4(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The IPv6 address it listens on.
    pub fn addr6(&self) -> SocketAddr {
        self.addrs[1]
    }

    /// The access log.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Its counters.
    pub fn stats(&self) -> &ServeStats {
        &self.stats
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// See [`Lab::http_get`].
pub(super) fn get(
    lab: &Lab,
    from: Host,
    to: SocketAddr,
    path: &str,
    agent: &str,
) -> Result<u16, LabError> {
    if !path.starts_with('/')
        || [path, agent]
            .iter()
            .any(|s| s.chars().any(char::is_control))
    {
        return Err(LabError::Protocol {
            what: format!("GET {path:?} from {from} to {to}"),
            detail: "the path must start with '/' and path and agent hold no control characters"
                .into(),
        });
    }
    let host = match to.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let result = lab.in_netns(from, move || -> io::Result<Vec<u8>> {
        let timeout = Duration::from_secs(3);
        let mut stream = TcpStream::connect_timeout(&to, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(request.as_bytes())?;
        let mut response = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut response)?;
        Ok(response)
    })?;
    let response = result.map_err(|source| LabError::Net {
        what: "HTTP GET",
        from,
        to,
        source,
    })?;
    let status_line = response.split(|&b| b == b'\r').next().unwrap_or_default();
    let text = String::from_utf8_lossy(status_line);
    let mut words = text.split(' ');
    match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(v), Some(Ok(code))) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(LabError::Protocol {
            what: format!("GET {path} from {from} to {to}"),
            detail: format!("not an HTTP response: {text:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_the_request_line_and_headers() {
        let req = parse(
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nuser-agent:  curl/8 \r\nReferer: http://r/\r\n\r\n",
        );
        assert_eq!(req.line.as_deref(), Some("GET /a?b=1 HTTP/1.1"));
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/a");
        assert_eq!(req.agent.as_deref(), Some(&b"curl/8"[..]));
        assert_eq!(req.referer.as_deref(), Some(&b"http://r/"[..]));
        assert!(parse(b"garbage\r\n\r\n").line.is_none());
        assert!(parse(b"GET  HTTP/1.1\r\n\r\n").line.is_none());
    }

    #[test]
    fn escape_keeps_a_forged_quote_inside_the_field() {
        let mut out = Vec::new();
        escape_into(&mut out, b"a\" 200 0 \"x\\\n\xff");
        assert_eq!(out, b"a\\x22 200 0 \\x22x\\x5C\\x0A\\xFF".to_vec());
    }

    #[test]
    fn client_ip_unmaps_ipv4_mapped_addresses() {
        let mapped: SocketAddr = "[::ffff:192.0.2.66]:1".parse().expect("valid");
        assert_eq!(client_ip(mapped).to_string(), "192.0.2.66");
        let v6: SocketAddr = "[2001:db8::66]:1".parse().expect("valid");
        assert_eq!(client_ip(v6).to_string(), "2001:db8::66");
    }
}

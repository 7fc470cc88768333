//! The control socket: newline-delimited JSON, one request and one response per connection.
//!
//! The socket is root-only: its directory is created 0700, the socket itself is 0600, and
//! every connection's peer credentials are checked (uid 0 or the daemon's own uid).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest request accepted, in bytes.
const MAX_REQUEST: u64 = 64 * 1024;
/// How long a client may take to send its request, and the engine to answer.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A command sent to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Daemon and jail counters; one jail when named.
    Status {
        /// Only this jail.
        #[serde(default)]
        jail: Option<String>,
    },
    /// The active bans.
    Bans,
    /// Bans an address (or network) in a jail.
    Ban {
        /// The jail.
        jail: String,
        /// An address or CIDR.
        addr: String,
        /// How long (default: the jail's `ban_for`).
        #[serde(default)]
        duration: Option<String>,
    },
    /// Lifts every ban of an address (or network) in every jail.
    Unban {
        /// An address or CIDR.
        addr: String,
    },
    /// Reloads the configuration file.
    Reload,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the command succeeded.
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it returned.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    /// A success carrying `data`.
    pub fn ok(data: serde_json::Value) -> Self {
        Self {
            ok: true,
            error: None,
            data,
        }
    }
    /// A failure with a message.
    pub fn err(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(message.into()),
            data: serde_json::Value::Null,
        }
    }
}

/// Errors of the control socket, on either side.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be created or reached.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The peer sent something that is not the protocol.
    #[error("control socket {path}: bad message: {message}")]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// Sends one request and waits for the answer.
pub fn request(socket: &Path, req: &Request) -> Result<Response, ControlError> {
    let io_err = |source| ControlError::Io {
        path: socket.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(io_err)?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
    stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io_err)?;
    let mut line = serde_json::to_vec(req).map_err(|e| ControlError::Protocol {
        path: socket.to_owned(),
        message: e.to_string(),
    })?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io_err)?;
    let mut answer = String::new();
    BufReader::new(stream.take(16 << 20))
        .read_line(&mut answer)
        .map_err(io_err)?;
    serde_json::from_str(&answer).map_err(|e| ControlError::Protocol {
        path: socket.to_owned(),
        message: format!("{e} in {:?}", answer.chars().take(200).collect::<String>()),
    })
}

/// A request waiting for the engine, with the channel its answer goes back on.
#[derive(Debug)]
pub struct Call {
    /// The request.
    pub request: Request,
    /// Where the engine sends the response (capacity 1; the engine never blocks on it).
    pub reply: SyncSender<Response>,
}

/// Binds the socket (root-only) and serves it on a thread; each request is handed to
/// `submit`, which forwards it to the engine.
pub fn serve(
    path: &Path,
    submit: impl Fn(Call) -> bool + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, ControlError> {
    let io_err = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err)?;
        }
    }
    if path.exists() {
        // A live daemon answers on it: refuse to steal its socket. A stale one is removed.
        if UnixStream::connect(path).is_ok() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another rampart daemon is listening on it",
            )));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    let path = path.to_owned();
    let handle = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                // One connection at a time: commands are rare and quick, and this bounds
                // what a client can tie up.
                if let Err(e) = handle(stream, &submit) {
                    crate::warn!(socket = %path.display(), error = %e; "Control connection failed.");
                }
            }
        })
        .map_err(io_err)?;
    Ok(handle)
}

fn handle(stream: UnixStream, submit: &impl Fn(Call) -> bool) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut out = stream.try_clone()?;
    let me = rustix::process::geteuid();
    let cred = rustix::net::sockopt::socket_peercred(&stream)?;
    if !(cred.uid.is_root() || cred.uid == me) {
        let resp = Response::err("permission denied: the control socket is root-only");
        return write_response(&mut out, &resp);
    }
    let mut line = String::new();
    BufReader::new(stream.take(MAX_REQUEST)).read_line(&mut line)?;
    let resp = match serde_json::from_str::<Request>(&line) {
        Err(e) => Response::err(format!("bad request: {e}")),
        Ok(request) => {
            let (tx, rx) = mpsc::sync_channel(1);
            if submit(Call { request, reply: tx }) {
                rx.recv_timeout(IO_TIMEOUT)
                    .unwrap_or_else(|_| Response::err("the daemon did not answer in time"))
            } else {
                Response::err("the daemon is shutting down")
            }
        }
    };
    write_response(&mut out, &resp)
}

fn write_response(out: &mut UnixStream, resp: &Response) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(resp).map_err(io::Error::other)?;
    bytes.push(b'\n');
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_tagged_json() {
        let r = Request::Ban {
            jail: "sshd".into(),
            addr: "192.0.2.7".into(),
            duration: Some("1h".into()),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"cmd":"ban","jail":"sshd","addr":"192.0.2.7","duration":"1h"}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"ban","jail":"x"}"#).is_err());
    }

    #[test]
    fn serves_requests_on_a_0600_socket_and_refuses_a_second_daemon() {
        let dir = std::env::temp_dir().join(format!("rampart-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sock = dir.join("sub/ctl.sock");
        let _h = serve(&sock, |call: Call| {
            let echo = serde_json::to_value(&call.request).unwrap();
            call.reply.send(Response::ok(echo)).is_ok()
        })
        .unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(dir.join("sub"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        let resp = request(&sock, &Request::Status { jail: None }).unwrap();
        assert!(resp.ok);
        assert_eq!(resp.data["cmd"], "status");
        // A garbage request gets an error response, not a hang.
        let mut s = UnixStream::connect(&sock).unwrap();
        s.write_all(b"{nonsense}\n").unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).unwrap();
        let r: Response = serde_json::from_str(&answer).unwrap();
        assert!(!r.ok && r.error.unwrap().contains("bad request"));
        let second = serve(&sock, |_c: Call| true);
        assert!(matches!(second, Err(ControlError::Io { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

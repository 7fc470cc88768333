//! Running firewall tools: argv with absolute paths, a clean environment, stdin fed from
//! memory, stdout/stderr captured (bounded), and a hard time limit.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use crate::EnforceError;

/// The only `PATH` a child process sees.
const CHILD_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// `ip`, used to run a tool inside a named network namespace (tests).
pub(crate) const IP: &str = "/usr/bin/ip";

/// Captured stdout is cut at this many bytes (a `ipset save` of 1 M elements is ~45 MB);
/// past it the rest is read and discarded, and the run fails as unparseable output would.
const MAX_STDOUT: u64 = 256 << 20;
/// Captured stderr is cut at this many bytes; the rest is discarded.
const MAX_STDERR: u64 = 64 << 10;

/// What a finished process left behind.
#[derive(Debug)]
pub(crate) struct Output {
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output (at most `MAX_STDOUT` bytes).
    pub stdout: Vec<u8>,
    /// Its standard error (at most `MAX_STDERR` bytes).
    pub stderr: Vec<u8>,
}

/// How to start tools: directly, or inside a named network namespace via `ip netns exec`.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    /// The namespace name for `ip netns exec NAME`, when set.
    netns: Option<String>,
    /// Time limit of every run.
    pub timeout: Duration,
}

impl Runner {
    /// A runner for `netns` (a path like `/run/netns/NAME`) or the current namespace.
    pub fn new(netns: Option<&Path>, timeout: Duration) -> Result<Self, EnforceError> {
        let netns = match netns {
            None => None,
            Some(path) => Some(netns_name(path)?),
        };
        Ok(Self { netns, timeout })
    }

    /// The full argv for `program args...`, prefixed with `ip netns exec NAME` when needed.
    pub fn argv(&self, program: &str, args: &[&str]) -> Vec<String> {
        let mut argv = Vec::with_capacity(args.len() + 4);
        if let Some(ns) = &self.netns {
            argv.extend([IP.to_owned(), "netns".into(), "exec".into(), ns.clone()]);
        }
        argv.push(program.to_owned());
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    /// Runs `program args...` with `stdin` as its input; returns its output whatever the
    /// exit status.
    pub fn run(&self, program: &str, args: &[&str], stdin: &[u8]) -> Result<Output, EnforceError> {
        run(&self.argv(program, args), stdin, self.timeout)
    }

    /// Like [`Runner::run`], but a non-zero exit is an error carrying stderr.
    pub fn run_ok(
        &self,
        program: &str,
        args: &[&str],
        stdin: &[u8],
    ) -> Result<Output, EnforceError> {
        let argv = self.argv(program, args);
        let out = run(&argv, stdin, self.timeout)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(EnforceError::Failed {
                argv: argv.join(" "),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }
}

/// The `NAME` of `/run/netns/NAME`.
pub(crate) fn netns_name(path: &Path) -> Result<String, EnforceError> {
    let bad = || EnforceError::InvalidNetns {
        path: PathBuf::from(path),
    };
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(bad())
    }
}

/// Runs `argv` (absolute program path first) with a clean environment, `stdin` written
/// from a helper thread, stdout/stderr drained by helper threads, and kills it after
/// `timeout`.
pub(crate) fn run(
    argv: &[String],
    stdin: &[u8],
    timeout: Duration,
) -> Result<Output, EnforceError> {
    let line = argv.join(" ");
    let Some((program, args)) = argv.split_first() else {
        return Err(EnforceError::Spawn {
            argv: line,
            source: std::io::Error::other("empty argv"),
        });
    };
    let spawn_err = |source| EnforceError::Spawn {
        argv: line.clone(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", CHILD_PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // Open the pidfd before anything can reap the child, so signalling it is race-free.
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let pidfd = pid.map(|p| pidfd_open(p, PidfdFlags::empty()));
    let mut stdin_pipe = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let result = thread::scope(|s| {
        let writer = s.spawn(move || {
            if let Some(mut pipe) = stdin_pipe.take() {
                // A child that exits early closes its end: EPIPE is not our error; its exit
                // status tells what happened.
                let _ = pipe.write_all(stdin);
            }
        });
        let out_reader = s.spawn(move || drain(stdout, MAX_STDOUT));
        let err_reader = s.spawn(move || drain(stderr, MAX_STDERR));
        let waited = match &pidfd {
            Some(Ok(fd)) => wait_pidfd(fd, timeout),
            _ => Ok(true),
        };
        let finished = match waited {
            Ok(done) => done,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(EnforceError::sys(format!("waiting for {line}"), e));
            }
        };
        if !finished {
            if let Some(Ok(fd)) = &pidfd {
                let _ = pidfd_send_signal(fd, Signal::KILL);
            } else {
                let _ = child.kill();
            }
            let _ = child.wait();
            return Err(EnforceError::Timeout {
                argv: line.clone(),
                timeout,
            });
        }
        let status = child.wait().map_err(|source| EnforceError::Io {
            what: format!("waiting for {line}"),
            source,
        })?;
        let _ = writer.join();
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = err_reader.join().unwrap_or_default();
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    });
    result
}

/// Reads a pipe to its end, keeping at most `cap` bytes.
fn drain<R: Read>(pipe: Option<R>, cap: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = (&mut pipe).take(cap).read_to_end(&mut buf);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
    }
    buf
}

/// Waits until the process behind `pidfd` exits (`true`) or `timeout` passes (`false`).
fn wait_pidfd(pidfd: &impl AsFd, timeout: Duration) -> Result<bool, Errno> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ts = Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn feeds_stdin_and_captures_stdout_with_a_clean_environment() {
        let out = run(&argv(&["/bin/cat"]), b"hello", Duration::from_secs(5)).unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hello");
        let env = run(&argv(&["/usr/bin/env"]), b"", Duration::from_secs(5)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&env.stdout).trim(),
            format!("PATH={CHILD_PATH}")
        );
    }

    #[test]
    fn large_stdin_and_stdout_do_not_deadlock() {
        let input = vec![b'x'; 4 << 20];
        let out = run(&argv(&["/bin/cat"]), &input, Duration::from_secs(20)).unwrap();
        assert_eq!(out.stdout.len(), input.len());
    }

    #[test]
    fn kills_a_process_past_its_time_limit() {
        let start = Instant::now();
        let err = run(
            &argv(&["/bin/sleep", "10"]),
            b"",
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(matches!(err, EnforceError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn netns_exec_prefix_and_name_validation() {
        let r = Runner::new(Some(Path::new("/run/netns/t-1")), Duration::from_secs(1)).unwrap();
        assert_eq!(
            r.argv("/usr/sbin/nft", &["-f", "-"]),
            argv(&[
                "/usr/bin/ip",
                "netns",
                "exec",
                "t-1",
                "/usr/sbin/nft",
                "-f",
                "-"
            ])
        );
        assert!(Runner::new(Some(Path::new("/")), Duration::from_secs(1)).is_err());
        assert!(Runner::new(Some(Path::new("/run/netns/a b")), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn failing_exit_is_an_error_with_stderr() {
        let r = Runner::new(None, Duration::from_secs(5)).unwrap();
        let err = r
            .run_ok("/bin/ls", &["/nonexistent-rampart-path"], b"")
            .unwrap_err();
        assert!(
            err.to_string().contains("nonexistent-rampart-path"),
            "{err}"
        );
    }
}

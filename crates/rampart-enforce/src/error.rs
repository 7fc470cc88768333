//! The crate's one error type, and its conversion into the core seam's [`BackendError`].

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use rampart_core::{BackendError, JailName};

/// Everything that can go wrong in a firewall backend.
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    /// A configured table or chain name outside `[A-Za-z][A-Za-z0-9_]{0,31}`.
    #[error("invalid {what} name {name:?}: use 1 to 32 ASCII letters, digits or '_', starting with a letter")]
    InvalidName {
        /// `table` or `chain`.
        what: &'static str,
        /// The name as configured.
        name: String,
    },
    /// A network namespace path without a usable file name (the name `ip netns exec` needs).
    #[error("invalid network namespace path {path:?}: expected /run/netns/NAME")]
    InvalidNetns {
        /// The path as configured.
        path: PathBuf,
    },
    /// A scope the backend cannot express.
    #[error("jail {jail}: invalid scope: {why}")]
    InvalidScope {
        /// The jail of the scope.
        jail: JailName,
        /// What is wrong with it.
        why: String,
    },
    /// Two jails whose derived set names are the same.
    #[error("jails {first} and {second} map to the same set name {set:?}")]
    SetNameCollision {
        /// The first jail.
        first: JailName,
        /// The second jail.
        second: JailName,
        /// The set name both produce.
        set: String,
    },
    /// A ban or unban for a jail that the last `prepare` did not include.
    #[error("jail {0} has no sets: prepare was not called with its scope")]
    UnknownJail(JailName),
    /// An entry whose prefix length does not fit the jail's set.
    #[error("jail {jail}: entry {net} does not fit the set: {why}")]
    BadEntry {
        /// The jail the entry was for.
        jail: JailName,
        /// The entry's network.
        net: IpNet,
        /// Why it does not fit.
        why: &'static str,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The error number.
        source: rustix::io::Errno,
    },
    /// A file or thread operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The kernel rejected one or more messages of a netlink transaction; nothing of the
    /// transaction was applied.
    #[error(
        "netlink transaction rejected: {first}: {errno} ({failed} of {messages} messages failed)"
    )]
    Rejected {
        /// The first failing message, described (operation and object).
        first: String,
        /// The kernel's error for it.
        errno: rustix::io::Errno,
        /// How many messages failed.
        failed: usize,
        /// How many messages the transaction had.
        messages: usize,
    },
    /// The netlink conversation did not follow the protocol.
    #[error("netlink protocol: {0}")]
    Protocol(String),
    /// A process could not be started.
    #[error("cannot run {argv}: {source}")]
    Spawn {
        /// The command line.
        argv: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// A process ran past its time limit and was killed.
    #[error("{argv}: killed after {timeout:?}")]
    Timeout {
        /// The command line.
        argv: String,
        /// The limit.
        timeout: Duration,
    },
    /// A process exited unsuccessfully.
    #[error("{argv}: {status}: {stderr}")]
    Failed {
        /// The command line.
        argv: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The start of what it wrote to stderr.
        stderr: String,
    },
    /// Output of a tool that does not parse.
    #[error("{argv}: unexpected output line {line:?}")]
    Parse {
        /// The command line.
        argv: String,
        /// The line.
        line: String,
    },
}

impl EnforceError {
    /// This error as the core seam's error for `backend` and `op`.
    pub fn into_backend(self, backend: &'static str, op: &'static str) -> BackendError {
        BackendError {
            backend,
            op,
            message: self.to_string(),
        }
    }

    pub(crate) fn sys(what: impl Into<String>, source: rustix::io::Errno) -> Self {
        Self::Sys {
            what: what.into(),
            source,
        }
    }
}

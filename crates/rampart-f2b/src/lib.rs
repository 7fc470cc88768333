//! fail2ban compatibility: load fail2ban's `filter.d` files unchanged (INI layering,
//! includes, both interpolation layers, jail parameters), translate their Python regexes
//! (to the `regex` crate where the meaning is the same, to a step-limited backtracking
//! matcher where it is not), parse their dates, and match log lines the way fail2ban does,
//! multi-line state included; and read fail2ban's jails (`jail.conf`, `jail.local`,
//! `jail.d`) into values rampart can run ([`jail`]).

pub mod date;
pub mod filter;
pub mod ini;
pub mod jail;
pub mod loader;
pub mod prefilter;
pub mod pyre;
pub mod tags;

use std::path::PathBuf;

pub use date::DefaultZone;
pub use filter::{F2bFilter, FailId, Failure, LoadOptions, State};

/// Errors from loading a fail2ban filter. Each names the file (and line) or the option.
#[derive(Debug, thiserror::Error)]
pub enum F2bError {
    /// A file could not be read.
    #[error("{path}: cannot read: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// An INI syntax error.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No filter file for this name.
    #[error("no fail2ban filter {name:?} under {dir} (looked for {dir}/filter.d/{name}.conf and .local)")]
    NotFound {
        /// The filter name.
        name: String,
        /// The configuration directory.
        dir: PathBuf,
    },
    /// `%(name)s` or `<tag>` interpolation failed.
    #[error("{filter}: option {option:?}: {message}")]
    Interpolation {
        /// The filter.
        filter: String,
        /// The option being read.
        option: String,
        /// What is wrong.
        message: String,
    },
    /// A jail-style filter spec such as `sshd[mode=aggressive]` is malformed.
    #[error("filter spec {spec:?}: {message}")]
    Spec {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// A regex does not compile (after tag expansion).
    #[error("{filter}: {option} #{index}: {message}")]
    Regex {
        /// The filter.
        filter: String,
        /// `failregex`, `ignoreregex`, `prefregex` or `datepattern`.
        option: String,
        /// 0-based index within the option.
        index: usize,
        /// The compile error (with the pattern).
        message: String,
    },
    /// A jail option is invalid (or not supported, such as a Python `bantime.formula`).
    #[error("jail [{jail}]: option {option:?}: {message}")]
    Jail {
        /// The jail (section).
        jail: String,
        /// The option.
        option: String,
        /// What is wrong.
        message: String,
    },
    /// Any other invalid option value.
    #[error("{filter}: option {option:?}: {message}")]
    Invalid {
        /// The filter.
        filter: String,
        /// The option.
        option: String,
        /// What is wrong.
        message: String,
    },
}

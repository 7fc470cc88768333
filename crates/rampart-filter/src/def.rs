//! The native filter format: a TOML file, parsed strictly (unknown keys are errors).
//!
//! ```toml
//! description = "OpenSSH server: failed logins"
//! timestamp = "auto"                 # auto | syslog | iso8601 | clf | epoch
//! prefix = '^\S+ sshd\[\d+\]: '      # prepended to every pattern below
//!
//! [[failure]]
//! id = "failed-password"
//! regex = 'Failed password for (?P<user>.*) from <HOST> port \d+ ssh2$'
//!
//! [[ignore]]
//! id = "trusted-scanner"
//! regex = 'Failed password for nagios from'
//! ```

use serde::Deserialize;

use crate::time::FormatChoice;

/// A filter file as written. Every field is documented in `docs/filters.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// One line saying what the filter catches.
    #[serde(default)]
    pub description: String,
    /// Where the lines come from, for people (`/var/log/auth.log`, `journal: _COMM=sshd`).
    #[serde(default)]
    pub sources: Vec<String>,
    /// The timestamp format of the log (`auto` detects it once per source).
    #[serde(default)]
    pub timestamp: FormatChoice,
    /// A regex prepended to every `failure`, `note` and `ignore` pattern. It, or each
    /// pattern, must start with `^`: patterns are anchored to the start of the message (the
    /// line after its leading timestamp).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Lines that are failures. Tried in order; the first that matches wins.
    #[serde(default)]
    pub failure: Vec<PatternConfig>,
    /// Lines that are not failures but tell which address a connection id belongs to, so a
    /// later failure line of the same connection that lacks the address can be attributed.
    #[serde(default)]
    pub note: Vec<PatternConfig>,
    /// Lines that must never count as failures, even when a failure pattern matches.
    #[serde(default)]
    pub ignore: Vec<PatternConfig>,
}

/// One pattern of a filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// A short unique name (`[a-z0-9-]+`), reported with every match.
    pub id: String,
    /// The regex (Rust `regex` syntax, linear time). `<HOST>` stands for the offending
    /// address; named groups `user` and `conn` (connection id) are recognised.
    pub regex: String,
}

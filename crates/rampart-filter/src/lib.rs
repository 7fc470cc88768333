//! Filters: definitions (TOML) compiled into fast, linear-time matchers, timestamp parsing,
//! and the corpus format that proves a filter.
//!
//! The hot path, per line: literal prefilter (Aho-Corasick) on the raw line -> timestamp
//! (only for candidates) -> the first pattern that matches (candidates from the literals the
//! message contains, or one multi-pattern DFA pass) -> that pattern's groups
//! ([`extract`]) -> `<HOST>` text parsed into an [`std::net::IpAddr`].

pub mod builtin;
pub mod compile;
pub mod corpus;
pub mod def;
pub mod extract;
pub mod host;
pub mod literal;
pub mod plan;
pub mod scan;
pub mod time;

use std::path::Path;

pub use compile::{Candidates, Filter, Hit, Pattern, PatternKind, Scratch, Verdict};
pub use def::{Attempt, FilterSpec, ParamValue, ParamValues, ResolvedParam};
pub use scan::{Event, EventKind, FilterStats, ScanStats, Scanner};

/// Errors from loading or compiling a filter. Each names the file (`origin`) and, where
/// there is one, the pattern id.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The file could not be read.
    #[error("{origin}: cannot read filter: {message}")]
    Io {
        /// The file.
        origin: String,
        /// The OS error.
        message: String,
    },
    /// The TOML is malformed or has unknown keys (the message names line and column).
    #[error("{origin}: {message}")]
    Toml {
        /// The file.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A pattern's regex does not compile.
    #[error("{origin}: pattern {id:?}: regex does not compile: {message}")]
    Regex {
        /// The file.
        origin: String,
        /// The pattern id.
        id: String,
        /// The regex error.
        message: String,
    },
    /// The filter is well-formed TOML but not a valid filter.
    #[error("{origin}: pattern {id:?}: {what}")]
    Invalid {
        /// The file.
        origin: String,
        /// The pattern id (`-` for the filter as a whole).
        id: String,
        /// What is wrong.
        what: String,
    },
    /// A parameter is unknown to the filter, or its value is not allowed.
    #[error("filter {filter}: {message}")]
    Param {
        /// The filter's name.
        filter: String,
        /// What is wrong, naming the parameter.
        message: String,
    },
    /// A filter spec (`name[key=value,...]`) is malformed.
    #[error("filter spec {spec:?}: {message}")]
    Spec {
        /// The spec as written.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// Neither a built-in filter name nor an existing file.
    #[error(
        "unknown filter {0:?}: not a built-in filter (see `rampart filter list`) and no such file"
    )]
    Unknown(String),
}

/// Loads a filter by built-in name, or from a path (anything containing `/` or ending in
/// `.toml`, or an existing file), with parameter values in brackets:
/// `sshd[mode=aggressive]` (see [`FilterSpec`]).
pub fn load(spec: &str) -> Result<Filter, FilterError> {
    load_with(spec, &ParamValues::new())
}

/// [`load`] with further parameter values (a jail's `filter_params`); a parameter given
/// both in the spec and in `extra` is an error.
pub fn load_with(spec: &str, extra: &ParamValues) -> Result<Filter, FilterError> {
    let parsed = FilterSpec::parse(spec)?;
    let mut params = parsed.params;
    for (k, v) in extra {
        if params.insert(k.clone(), v.clone()).is_some() {
            return Err(FilterError::Spec {
                spec: spec.to_owned(),
                message: format!("parameter {k:?} is set both in the spec and in filter_params"),
            });
        }
    }
    load_spec(&parsed.name, &params)
}

/// Loads every filter of a comma-separated list (`sshd,web-scan[mode=x]`), in order.
pub fn load_many(specs: &str) -> Result<Vec<Filter>, FilterError> {
    FilterSpec::parse_list(specs)?
        .iter()
        .map(|s| load_spec(&s.name, &s.params))
        .collect()
}

fn load_spec(name: &str, params: &ParamValues) -> Result<Filter, FilterError> {
    let looks_like_path = name.contains('/') || name.ends_with(".toml");
    if !looks_like_path {
        if let Some(b) = builtin::builtin(name) {
            return Filter::from_toml_with(
                b.name,
                &format!("built-in filter {}", b.name),
                b.toml,
                params,
            );
        }
    }
    let path = Path::new(name);
    if looks_like_path || path.is_file() {
        return Filter::from_path_with(path, params);
    }
    Err(FilterError::Unknown(name.to_owned()))
}

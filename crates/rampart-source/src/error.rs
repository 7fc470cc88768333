//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file pattern that is not an absolute path or whose glob does not parse.
    #[error("invalid file pattern {pattern:?}: {why}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A setting outside its range.
    #[error("invalid source setting {field}: {why}")]
    InvalidConfig {
        /// The setting's name.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A journal match term that is neither `FIELD=value` (FIELD in `[A-Z0-9_]+`) nor `+`.
    #[error("invalid journal match {term:?}: expected FIELD=value with FIELD made of A-Z, 0-9 and '_', or a lone '+'")]
    InvalidJournalMatch {
        /// The term as given.
        term: String,
    },
    /// A process that could not be started.
    #[error("cannot start {argv:?}: {source}")]
    Spawn {
        /// The full argv.
        argv: Vec<String>,
        /// The operating system's answer.
        source: io::Error,
    },
    /// A file operation that failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done (`"open"`, `"read"`, ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's answer.
        source: io::Error,
    },
    /// The thread reading `journalctl` is gone (it only stops when the source is dropped, so
    /// this means it panicked).
    #[error("the journal reader thread stopped unexpectedly; last error: {last_error}")]
    JournalReaderGone {
        /// The last error the reader recorded, if any.
        last_error: String,
    },
}

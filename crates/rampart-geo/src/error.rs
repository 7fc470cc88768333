//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Errors from loading, looking up, aggregating and fetching geo data. Every variant names
/// the file (and line, for text formats) or the URL it is about.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// A file could not be read, written or renamed.
    #[error("{}: cannot {op}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("read", "write", "rename to ...").
        op: String,
        /// Why.
        source: io::Error,
    },
    /// A line of a text source (delegated file, prefix list, CSV) is malformed.
    #[error("{}:{line}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong, quoting the offending field.
        message: String,
    },
    /// A whole file is malformed (no line to blame): a truncated gzip stream, a bad MaxMind DB
    /// file, a count in a header or summary line that the records do not match.
    #[error("{}: {message}", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An argument is invalid (a range whose start is after its end, mixed families, an
    /// unknown registry name).
    #[error("{0}")]
    Invalid(String),
    /// A URL is refused before any connection (plain http to a non-loopback host, a scheme
    /// other than http/https, no host).
    #[error("{url}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// A download failed (connection, timeout, HTTP status, size limit).
    #[error("{url}: download failed: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A download does not match the checksum published next to it.
    #[error(
        "{url}: MD5 mismatch: the published checksum is {expected}, the download's is {actual}"
    )]
    Checksum {
        /// The data URL.
        url: String,
        /// The checksum in the `.md5` file.
        expected: String,
        /// The checksum of what was downloaded.
        actual: String,
    },
}

impl GeoError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: impl Into<String>, source: io::Error) -> Self {
        GeoError::Io {
            path: path.into(),
            op: op.into(),
            source,
        }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        GeoError::Parse {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        GeoError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

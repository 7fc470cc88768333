//! Log sources: where rampart reads what the server logs.
//!
//! - [`LineReader`]: bounded line splitting of any `Read`.
//! - [`FileSource`]: tails files named by absolute paths or globs; follows rotation (rename +
//!   create, copytruncate, delete + recreate), resumes from [`Checkpoint`]s after a restart,
//!   hands out lines in a reusable [`LineBatch`].
//! - [`JournalSource`]: follows systemd's journal through `journalctl --output=json`.
//!
//! Every source is poll-style: a non-blocking `read` and a blocking `wait`. The daemon owns
//! the threads and the queues; when its queue is full it simply stops calling `read`, and
//! the source keeps its position. A source never drops a line to make room.

mod batch;
mod error;
mod file;
mod fingerprint;
mod glob;
mod journal;
mod lines;

pub use batch::{LineBatch, LineIter};
pub use error::SourceError;
pub use file::{
    Checkpoint, FileSource, FileSourceConfig, FileSourceStats, RotatedPosition, ROTATE_GRACE,
};
pub use fingerprint::{Fingerprint, FINGERPRINT_BYTES};
pub use journal::{
    check_journal_matches, JournalEntry, JournalSource, JournalSourceConfig, JournalStart,
    JournalStats, JOURNALCTL,
};
pub use lines::{LineReader, LineStats, DEFAULT_MAX_LINE};

/// The files a path pattern (absolute, globs allowed in any component) names right now,
/// as [`FileSource`] would find them (compressed files skipped).
pub fn matching_files(pattern: &str) -> Result<Vec<std::path::PathBuf>, SourceError> {
    let pattern = glob::Pattern::parse(pattern)?;
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    pattern.expand(&mut files, &mut dirs);
    Ok(files)
}

#[cfg(test)]
mod tests {
    fn assert_send<T: Send>() {}

    #[test]
    fn sources_can_move_to_the_daemons_threads() {
        assert_send::<crate::FileSource>();
        assert_send::<crate::JournalSource>();
        assert_send::<crate::LineBatch>();
    }
}

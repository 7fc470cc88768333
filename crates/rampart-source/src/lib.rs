//! Log sources. For now: reading lines from any `Read` with bounded memory.

mod lines;

pub use lines::{LineReader, LineStats, DEFAULT_MAX_LINE};

//! File identity by content: a hash of the first bytes, so that a file keeps its identity
//! across a rename, and a file that is replaced (or truncated and refilled) does not.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};

/// How many leading bytes identify a file. A file shorter than this is identified by all of
/// its bytes (and their count) until it grows.
pub const FINGERPRINT_BYTES: u32 = 1024;

/// A hash of a file's first [`len`](Self::len) bytes (at most [`FINGERPRINT_BYTES`]), with
/// the length hashed in. A file that grows keeps its fingerprint as long as it is compared
/// over the same length; the checkpoint stores the length for that reason.
///
/// The hash is 64-bit FNV-1a: stable across builds and platforms (changing it would make
/// every stored checkpoint miss), not collision resistant. A collision only makes a restart
/// resume at a wrong offset in a same-looking file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// Number of leading bytes hashed.
    pub len: u32,
    /// FNV-1a 64 of `len` (little-endian u64) followed by the bytes.
    pub hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fingerprint {
    /// The fingerprint of an empty file: matches every file.
    pub const EMPTY: Fingerprint = Fingerprint {
        len: 0,
        hash: FNV_OFFSET,
    };

    /// The fingerprint of `bytes` (all of them; callers pass at most
    /// [`FINGERPRINT_BYTES`]).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        let mut h = FNV_OFFSET;
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        for &b in u64::from(len).to_le_bytes().iter().chain(bytes) {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        if len == 0 {
            return Self::EMPTY;
        }
        Self { len, hash: h }
    }

    /// The fingerprint over the first `len` bytes of `file`, or `None` when the file is
    /// shorter than that.
    pub fn of_file_prefix(file: &File, len: u32) -> io::Result<Option<Self>> {
        let mut buf = [0u8; FINGERPRINT_BYTES as usize];
        let want = (len.min(FINGERPRINT_BYTES)) as usize;
        let mut got = 0;
        while got < want {
            match file.read_at(&mut buf[got..want], got as u64) {
                Ok(0) => return Ok(None),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(Self::of_bytes(&buf[..want])))
    }

    /// The fingerprint of `file`, whose size is `size`: over `min(size, FINGERPRINT_BYTES)`
    /// bytes (fewer if the file shrank meanwhile).
    pub fn of_file(file: &File, size: u64) -> io::Result<Self> {
        let want = size.min(u64::from(FINGERPRINT_BYTES)) as u32;
        let mut len = want;
        loop {
            if let Some(fp) = Self::of_file_prefix(file, len)? {
                return Ok(fp);
            }
            // The file shrank between the size check and the read: hash what is there.
            len /= 2;
        }
    }

    /// True when `file` starts with the bytes this fingerprint was taken over.
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        Ok(Self::of_file_prefix(file, self.len)? == Some(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_part_of_the_hash_and_empty_matches_everything() {
        assert_ne!(Fingerprint::of_bytes(b"ab"), Fingerprint::of_bytes(b"abc"));
        assert_eq!(Fingerprint::of_bytes(b""), Fingerprint::EMPTY);
        assert_eq!(Fingerprint::of_bytes(b"abc").len, 3);
    }

    #[test]
    fn a_growing_file_keeps_its_fingerprint_over_the_stored_length() {
        let dir = std::env::temp_dir().join(format!("rampart-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("grow.log");
        std::fs::write(&path, b"first line\n").unwrap();
        let f = File::open(&path).unwrap();
        let fp = Fingerprint::of_file(&f, 11).unwrap();
        assert_eq!(fp.len, 11);
        std::fs::write(&path, b"first line\nsecond line\n").unwrap();
        let f = File::open(&path).unwrap();
        assert!(fp.matches(&f).unwrap());
        std::fs::write(&path, b"other line\n").unwrap();
        let f = File::open(&path).unwrap();
        assert!(!fp.matches(&f).unwrap());
        std::fs::write(&path, b"first").unwrap();
        let f = File::open(&path).unwrap();
        assert!(!fp.matches(&f).unwrap(), "a shorter file cannot match");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

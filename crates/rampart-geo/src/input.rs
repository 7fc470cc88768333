//! Reading source files: whole-file reads, transparent gzip, and numbered text lines.

use std::io::Read;
use std::path::Path;

use crate::GeoError;

/// The most a source may decompress to (1 GiB). The RIR files are 1-30 MB of text and a
/// world MaxMind country database is under 10 MB, so this only stops gzip bombs.
pub(crate) const MAX_DECOMPRESSED: u64 = 1 << 30;

/// Whether `bytes` starts with the gzip magic.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Reads a whole file, decompressing it when it is gzip.
pub fn read_file(path: &Path) -> Result<Vec<u8>, GeoError> {
    let bytes = std::fs::read(path).map_err(|e| GeoError::io(path, "read", e))?;
    gunzip_if_needed(path, bytes)
}

/// Decompresses `bytes` when they are gzip (all members), else returns them unchanged.
pub(crate) fn gunzip_if_needed(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, GeoError> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(6));
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| GeoError::format(path, format!("bad gzip data: {e}")))?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(GeoError::format(
            path,
            format!("decompresses to more than {MAX_DECOMPRESSED} bytes"),
        ));
    }
    Ok(out)
}

/// The lines of a text file with their 1-based numbers, `\r\n` tolerated. A line that is not
/// UTF-8 is an error naming the line.
pub(crate) fn lines<'a>(
    path: &'a Path,
    bytes: &'a [u8],
) -> impl Iterator<Item = Result<(usize, &'a str), GeoError>> + 'a {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut n = 0usize;
    bytes
        .split(|&b| b == b'\n')
        .filter(move |_| !bytes.is_empty())
        .map(move |l| {
            n += 1;
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            std::str::from_utf8(l)
                .map(|s| (n, s))
                .map_err(|_| GeoError::parse(path, n, "not UTF-8 text"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_read_transparently_and_plain_text_passes_through() {
        let text = b"a\r\nb\n\nc".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let p = Path::new("x.gz");
        assert_eq!(gunzip_if_needed(p, gz).unwrap(), text);
        assert_eq!(gunzip_if_needed(p, text.clone()).unwrap(), text);
        let got: Vec<(usize, &str)> = lines(p, &text).map(|r| r.unwrap()).collect();
        assert_eq!(got, vec![(1, "a"), (2, "b"), (3, ""), (4, "c")]);
        assert_eq!(lines(p, b"").count(), 0);
        let err = gunzip_if_needed(p, vec![0x1f, 0x8b, 8, 0, 1, 2]).unwrap_err();
        assert!(err.to_string().starts_with("x.gz: bad gzip data"), "{err}");
        let bad = lines(p, b"ok\n\xff\xfe\n").nth(1).unwrap().unwrap_err();
        assert_eq!(bad.to_string(), "x.gz:2: not UTF-8 text");
    }
}

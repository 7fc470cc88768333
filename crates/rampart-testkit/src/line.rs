//! A reusable line buffer with cheap appends (no `fmt` machinery on the hot path).

/// One log line under construction. Cleared and reused for every line, so writing a line
/// allocates nothing once the buffer has grown to the longest line.
#[derive(Debug, Default)]
pub(crate) struct Line {
    buf: Vec<u8>,
}

impl Line {
    /// An empty line with room for a typical log line.
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::with_capacity(512),
        }
    }

    /// Empties the buffer, keeping its capacity.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// The bytes written so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Appends text.
    pub(crate) fn s(&mut self, text: &str) -> &mut Self {
        self.buf.extend_from_slice(text.as_bytes());
        self
    }

    /// Appends a decimal number.
    pub(crate) fn n(&mut self, mut value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&digits[i..]);
        self
    }

    /// Appends a decimal number zero-padded to `width` digits.
    pub(crate) fn n0(&mut self, value: u64, width: usize) -> &mut Self {
        let mut v = value;
        let mut len = 0;
        loop {
            len += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for _ in len..width {
            self.buf.push(b'0');
        }
        self.n(value)
    }

    /// Appends `len` characters of the base64 alphabet drawn from `bits` (a source of
    /// random 64-bit words), as in an OpenSSH `SHA256:` key fingerprint.
    pub(crate) fn base64(&mut self, len: usize, mut bits: impl FnMut() -> u64) -> &mut Self {
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut word = 0u64;
        for i in 0..len {
            if i % 10 == 0 {
                word = bits();
            }
            self.buf.push(B64[(word & 63) as usize]);
            word >>= 6;
        }
        self
    }

    /// Ends the line with `\n`.
    pub(crate) fn end(&mut self) {
        self.buf.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        let mut l = Line::new();
        l.n(0).s(" ").n(4242).s(" ").n0(7, 6).s(" ").n0(1234567, 6);
        assert_eq!(l.as_bytes(), b"0 4242 000007 1234567");
        l.clear();
        l.n(u64::MAX);
        assert_eq!(l.as_bytes(), u64::MAX.to_string().as_bytes());
    }
}

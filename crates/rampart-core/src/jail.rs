use std::fmt;
use std::sync::Arc;

use crate::CoreError;

/// The name of a jail: 1 to 64 of `[A-Za-z0-9_.-]`, starting with a letter or digit, so it
/// is safe in a firewall set name, a file name and a log line.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JailName(Arc<str>);

impl JailName {
    /// Validates and wraps a jail name.
    pub fn new(name: &str) -> Result<Self, CoreError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Self(name.into()))
        } else {
            Err(CoreError::InvalidJailName(name.to_owned()))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JailName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JailName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JailName({:?})", &*self.0)
    }
}

impl serde::Serialize for JailName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_rejects_unsafe_ones() {
        for good in ["sshd", "nginx-botsearch", "postfix_sasl", "a.b", "9x"] {
            assert!(JailName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "ssh d", "a;rm", "x/y", &"a".repeat(65)] {
            assert!(JailName::new(bad).is_err(), "{bad}");
        }
    }
}

//! File patterns: absolute paths whose components may hold `*`, `?` and `[...]`.
//!
//! Matching works on one path component at a time, on bytes. `*` matches any run of bytes
//! (never a `/`), `?` one byte, `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`) one byte of (or not
//! of) the set; `\` makes the next character literal. As in the shell, a wildcard does not
//! match a leading `.` (write it explicitly: `/var/log/.*.log`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::SourceError;

/// Suffixes of compressed files, which a glob never picks up (a tailer cannot read them).
pub(crate) const COMPRESSED_SUFFIXES: &[&[u8]] =
    &[b".gz", b".bz2", b".xz", b".zst", b".lz4", b".Z", b".zip"];

/// True when `name` ends with a compressed-file suffix.
pub(crate) fn is_compressed(name: &[u8]) -> bool {
    COMPRESSED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Byte(u8),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
}

/// One compiled glob component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    fn parse(text: &[u8]) -> Result<Self, &'static str> {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                }
                b'?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                b'\\' => {
                    let b = *text.get(i + 1).ok_or("a trailing '\\' escapes nothing")?;
                    tokens.push(Token::Byte(b));
                    i += 2;
                }
                b'[' => {
                    let (tok, next) = parse_class(text, i)?;
                    tokens.push(tok);
                    i = next;
                }
                b => {
                    tokens.push(Token::Byte(b));
                    i += 1;
                }
            }
        }
        Ok(Self { tokens })
    }

    /// True when the whole of `name` matches.
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        if name.first() == Some(&b'.') && self.tokens.first() != Some(&Token::Byte(b'.')) {
            return false;
        }
        // Classic wildcard matching with one backtrack point for the last `*`: O(n * m)
        // worst case, on names of at most 255 bytes.
        let (t, n) = (&self.tokens, name);
        let (mut ti, mut ni) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ni < n.len() {
            if ti < t.len() {
                match &t[ti] {
                    Token::Star => {
                        star = Some((ti, ni));
                        ti += 1;
                        continue;
                    }
                    tok if token_matches(tok, n[ni]) => {
                        ti += 1;
                        ni += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            match star {
                Some((sti, sni)) => {
                    ti = sti + 1;
                    ni = sni + 1;
                    star = Some((sti, sni + 1));
                }
                None => return false,
            }
        }
        t[ti..].iter().all(|tok| *tok == Token::Star)
    }
}

fn token_matches(tok: &Token, b: u8) -> bool {
    match tok {
        Token::Byte(x) => *x == b,
        Token::Any => true,
        Token::Star => false,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= b && b <= hi) != *negated
        }
    }
}

fn parse_class(text: &[u8], open: usize) -> Result<(Token, usize), &'static str> {
    let mut i = open + 1;
    let negated = matches!(text.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let b = *text.get(i).ok_or("a '[' is never closed")?;
        if b == b']' && !first {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        let lo = if b == b'\\' {
            i += 1;
            *text.get(i).ok_or("a '[' is never closed")?
        } else {
            b
        };
        i += 1;
        if text.get(i) == Some(&b'-') && text.get(i + 1).is_some_and(|&c| c != b']') {
            let mut hi = text[i + 1];
            i += 2;
            if hi == b'\\' {
                hi = *text.get(i).ok_or("a '[' is never closed")?;
                i += 1;
            }
            if hi < lo {
                return Err("a range in '[...]' runs backwards");
            }
            ranges.push((lo, hi));
        } else {
            ranges.push((lo, lo));
        }
    }
}

/// One component of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// A plain name.
    Literal(Vec<u8>),
    /// A name with wildcards.
    Glob(Glob),
}

impl Part {
    /// True when `name` is what this component stands for.
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        match self {
            Part::Literal(l) => l == name,
            Part::Glob(g) => g.matches(name),
        }
    }
}

/// An absolute path pattern, compiled.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    parts: Vec<Part>,
}

impl Pattern {
    /// Compiles `text`: an absolute path; `.` components are dropped, `..` is refused.
    pub(crate) fn parse(text: &str) -> Result<Self, SourceError> {
        let err = |why| SourceError::InvalidPattern {
            pattern: text.to_owned(),
            why,
        };
        if !text.starts_with('/') {
            return Err(err("it must be an absolute path"));
        }
        if text.ends_with('/') {
            return Err(err("it names a directory; name the files (e.g. dir/*.log)"));
        }
        if text.contains('\0') {
            return Err(err("it contains a NUL byte"));
        }
        let mut parts = Vec::new();
        for comp in text.split('/').skip(1) {
            match comp {
                "" | "." => continue,
                ".." => return Err(err("'..' is not allowed")),
                c if c.bytes().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')) => {
                    let g = Glob::parse(c.as_bytes()).map_err(err)?;
                    // A component made only of escaped bytes is a literal.
                    if g.tokens.iter().all(|t| matches!(t, Token::Byte(_))) {
                        let lit = g
                            .tokens
                            .iter()
                            .filter_map(|t| match t {
                                Token::Byte(b) => Some(*b),
                                _ => None,
                            })
                            .collect();
                        parts.push(Part::Literal(lit));
                    } else {
                        parts.push(Part::Glob(g));
                    }
                }
                c => parts.push(Part::Literal(c.as_bytes().to_vec())),
            }
        }
        if parts.is_empty() {
            return Err(err("it names the root directory"));
        }
        Ok(Self { parts })
    }

    /// The components.
    pub(crate) fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// True when `path` (absolute, normalized) matches the whole pattern.
    pub(crate) fn matches_path(&self, path: &Path) -> bool {
        let mut comps = path.components();
        if comps.next() != Some(Component::RootDir) {
            return false;
        }
        let names: Vec<&OsStr> = comps
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        names.len() == self.parts.len()
            && names
                .iter()
                .zip(&self.parts)
                .all(|(n, p)| p.matches(n.as_bytes()))
    }

    /// Adds to `files` the paths this pattern names now: every literal final path (existing
    /// or not: it may appear later) and every regular file a glob matches (UTF-8 names only,
    /// compressed files skipped). Adds to `dirs` every existing directory in which a component
    /// is looked up: watching those reveals files that appear later.
    pub(crate) fn expand(&self, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
        let mut dir = PathBuf::from("/");
        walk(&mut dir, &self.parts, files, dirs);
    }
}

fn walk(dir: &mut PathBuf, parts: &[Part], files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    dirs.push(dir.clone());
    match first {
        Part::Literal(name) => {
            dir.push(OsStr::from_bytes(name));
            if rest.is_empty() {
                files.push(dir.clone());
            } else if dir.is_dir() {
                walk(dir, rest, files, dirs);
            }
            dir.pop();
        }
        Part::Glob(g) => {
            let Ok(entries) = std::fs::read_dir(&*dir) else {
                return;
            };
            let mut names: Vec<_> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .filter(|n| n.to_str().is_some() && g.matches(n.as_bytes()))
                .collect();
            names.sort();
            for name in names {
                dir.push(&name);
                if rest.is_empty() {
                    if !is_compressed(name.as_bytes()) && dir.is_file() {
                        files.push(dir.clone());
                    }
                } else if dir.is_dir() {
                    walk(dir, rest, files, dirs);
                }
                dir.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::parse(p.as_bytes()).unwrap()
    }

    #[test]
    fn wildcards_match_like_the_shell() {
        assert!(g("*.log").matches(b"auth.log"));
        assert!(!g("*.log").matches(b"auth.log.1"));
        assert!(g("*.log*").matches(b"auth.log.1"));
        assert!(g("a?c").matches(b"abc"));
        assert!(!g("a?c").matches(b"ac"));
        assert!(g("*").matches(b""));
        assert!(g("a*b*c").matches(b"aXXbYYbc"));
        assert!(!g("a*b*c").matches(b"aXXbYYb"));
        assert!(g("log[0-9]").matches(b"log7"));
        assert!(!g("log[!0-9]").matches(b"log7"));
        assert!(g("log[^0-9]").matches(b"logx"));
        assert!(g("[]]x").matches(b"]x"));
        assert!(g("[a-]").matches(b"-"));
        assert!(g(r"\*").matches(b"*"));
        assert!(!g(r"\*").matches(b"x"));
    }

    #[test]
    fn wildcards_do_not_match_a_leading_dot() {
        assert!(!g("*.log").matches(b".hidden.log"));
        assert!(!g("?x").matches(b".x"));
        assert!(g(".*.log").matches(b".hidden.log"));
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        for bad in [
            "var/log/x",
            "/var/log/",
            "/var/../x",
            "/var/log/[abc",
            "/x/a\\",
            "/",
            "/x/[z-a]",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn matches_whole_paths_component_by_component() {
        let p = Pattern::parse("/var/log/*/access*.log").unwrap();
        assert!(p.matches_path(Path::new("/var/log/nginx/access.log")));
        assert!(p.matches_path(Path::new("/var/log/nginx/access-2.log")));
        assert!(!p.matches_path(Path::new("/var/log/access.log")));
        assert!(!p.matches_path(Path::new("/var/log/a/b/access.log")));
        let lit = Pattern::parse("/var/./log/\\*weird").unwrap();
        assert_eq!(lit.parts()[2], Part::Literal(b"*weird".to_vec()));
    }

    #[test]
    fn expands_globs_in_any_component_and_skips_compressed_files() {
        let root = std::env::temp_dir().join(format!("rampart-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["a", "b", "c"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "a/x.log",
            "a/x.log.1.gz",
            "b/y.log",
            "b/notes.txt",
            "c/.h.log",
        ] {
            std::fs::write(root.join(f), b"").unwrap();
        }
        std::fs::create_dir_all(root.join("b/dir.log")).unwrap();
        let pat = Pattern::parse(&format!("{}/*/*.log*", root.display())).unwrap();
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        pat.expand(&mut files, &mut dirs);
        assert_eq!(files, vec![root.join("a/x.log"), root.join("b/y.log")]);
        assert!(dirs.contains(&root.join("a")) && dirs.contains(&root));
        let lit = Pattern::parse(&format!("{}/missing/z.log", root.display())).unwrap();
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        lit.expand(&mut files, &mut dirs);
        assert!(
            files.is_empty(),
            "missing directory: nothing to look up yet"
        );
        assert_eq!(dirs.last(), Some(&root), "but its parent is watched");
        std::fs::remove_dir_all(&root).unwrap();
    }
}

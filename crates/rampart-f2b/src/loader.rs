//! From `filter.d` files to a filter definition: jail-style parameters
//! (`sshd[mode=aggressive]`), `[Definition]` and `[Init]` options, `%(name)s` interpolation
//! with the jail's values as `vars`, then recursive `<tag>` substitution.

use std::path::{Path, PathBuf};

use crate::ini::{Config, OMap};
use crate::F2bError;

/// A filter name with its jail-style parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    /// The filter name (`sshd`) or a path to a filter file.
    pub name: String,
    /// Parameters in order (`mode` -> `aggressive`).
    pub params: OMap,
}

/// Parses `name[k=v, k2="v,2", k3='x']` as fail2ban reads a jail's `filter =` value.
pub fn parse_spec(spec: &str) -> Result<FilterSpec, F2bError> {
    let err = |m: &str| F2bError::Spec {
        spec: spec.to_owned(),
        message: m.to_owned(),
    };
    let s = spec.trim();
    let (name, rest) = match s.find('[') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(err("empty filter name"));
    }
    let mut params = OMap::new();
    if let Some(rest) = rest {
        let Some(body) = rest.trim_end().strip_suffix(']') else {
            return Err(err("missing closing ']'"));
        };
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < chars.len() && chars[*i].is_whitespace() {
                *i += 1;
            }
        };
        loop {
            skip_ws(&mut i);
            if i >= chars.len() {
                break;
            }
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.'))
            {
                i += 1;
            }
            let key: String = chars[start..i].iter().collect();
            if key.is_empty() || chars.get(i) != Some(&'=') {
                return Err(err(&format!(
                    "expected `key=value` at {:?}",
                    chars[start..].iter().collect::<String>()
                )));
            }
            i += 1;
            let value: String = match chars.get(i) {
                Some(&q) if q == '"' || q == '\'' => {
                    let vs = i + 1;
                    let Some(off) = chars[vs..].iter().position(|&c| c == q) else {
                        return Err(err("unterminated quoted value"));
                    };
                    i = vs + off + 1;
                    chars[vs..vs + off].iter().collect()
                }
                _ => {
                    let vs = i;
                    while i < chars.len() && chars[i] != ',' && chars[i] != ']' {
                        i += 1;
                    }
                    chars[vs..i].iter().collect::<String>()
                }
            };
            params.set(&key, &value);
            skip_ws(&mut i);
            match chars.get(i) {
                None => break,
                Some(',') => i += 1,
                Some(c) => return Err(err(&format!("unexpected {c:?} after option {key:?}"))),
            }
        }
    }
    Ok(FilterSpec {
        name: name.to_owned(),
        params,
    })
}

/// A filter's options after both interpolation layers, as fail2ban hands them to its
/// server (`failregex` split into lines, `journalmatch` into words).
#[derive(Debug, Clone, Default)]
pub struct FilterDef {
    /// The filter name.
    pub name: String,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// `prefregex`.
    pub prefregex: Option<String>,
    /// `failregex`, one regex per non-empty line.
    pub failregex: Vec<String>,
    /// `ignoreregex`, one regex per non-empty line.
    pub ignoreregex: Vec<String>,
    /// `datepattern` (unsplit).
    pub datepattern: Option<String>,
    /// `maxlines` (default 1).
    pub maxlines: usize,
    /// `journalmatch`: each line split into `FIELD=value` words and `+`.
    pub journalmatch: Vec<Vec<String>>,
    /// `usedns` (`yes`, `warn`, `no`, `raw`; default `warn`).
    pub usedns: String,
    /// Every combined option after substitution (for `logtype` and friends).
    pub options: OMap,
}

/// Most replacements of one tag in one value (fail2ban's limit).
const MAX_TAG_REPLACE_COUNT: usize = 25;

/// Finds the next `<tag>` (`<([^ <>]+)>`) at or after `from`: returns (start, end, name).
fn next_tag(s: &str, from: usize) -> Option<(usize, usize, &str)> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            while j < b.len() && !matches!(b[j], b' ' | b'<' | b'>') {
                j += 1;
            }
            if j < b.len() && b[j] == b'>' && j > i + 1 {
                return Some((i, j + 1, &s[i + 1..j]));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    None
}

/// fail2ban's recursive `<tag>` substitution over `tags`; unknown tags stay as they are.
/// `extra` resolves names not in `tags` (fail2ban: `get_ex` on `[Definition]`).
pub fn substitute_tags(
    tags: &mut OMap,
    extra: &dyn Fn(&str) -> Result<Option<String>, String>,
) -> Result<(), String> {
    let keys: Vec<String> = tags.iter().map(|(k, _)| k.to_owned()).collect();
    let mut done: Vec<bool> = vec![false; keys.len()];
    let mut counts: Vec<Vec<(String, usize)>> = vec![Vec::new(); keys.len()];
    for _round in 0..10_000 {
        let mut again = false;
        for (ki, tag) in keys.iter().enumerate() {
            if done[ki] {
                continue;
            }
            let orig = tags.get(tag).unwrap_or_default().to_owned();
            let mut value = orig.clone();
            let mut pos = 0;
            let rplc = &mut counts[ki];
            while let Some((s, e, rtag)) = next_tag(&value, pos) {
                let rtag = rtag.to_owned();
                let n = rplc.iter().find(|(t, _)| *t == rtag).map_or(0, |x| x.1);
                if rtag == *tag || n >= MAX_TAG_REPLACE_COUNT {
                    return Err(format!(
                        "properties contain self-referencing definitions: tag <{rtag}> in {tag:?}"
                    ));
                }
                let repl = match tags.get(&rtag) {
                    Some(v) => Some(v.to_owned()),
                    None => extra(&rtag)?,
                };
                let Some(repl) = repl else {
                    pos = e;
                    continue;
                };
                value = value.replace(&format!("<{rtag}>"), &repl);
                match rplc.iter_mut().find(|(t, _)| *t == rtag) {
                    Some(x) => x.1 += 1,
                    None => rplc.push((rtag, 1)),
                }
                pos = s;
            }
            if orig != value {
                if next_tag(&value, 0).is_some() {
                    again = true;
                }
                tags.set(tag, &value);
            }
            if !value.contains('<') {
                done[ki] = true;
            }
        }
        if !again {
            return Ok(());
        }
    }
    Err("tag substitution does not terminate".into())
}

/// The options fail2ban's filter reader consumes from `[Definition]`.
const CONFIG_OPTS: [&str; 7] = [
    "usedns",
    "prefregex",
    "ignoreregex",
    "failregex",
    "maxlines",
    "datepattern",
    "journalmatch",
];

/// Loads filter `spec.name` from `dir/filter.d` (or a filter file when the name is a path
/// ending in `.conf`/`.local`), with `spec.params` as the jail's parameters.
pub fn load_def(dir: &Path, spec: &FilterSpec) -> Result<FilterDef, F2bError> {
    let (cfg, name) = if spec.name.ends_with(".conf") || spec.name.ends_with(".local") {
        let p = PathBuf::from(&spec.name);
        if !p.is_file() {
            return Err(F2bError::Io {
                path: p,
                message: "no such filter file".into(),
            });
        }
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        (Config::read_files(&[p])?, name)
    } else {
        if spec.name.contains('/') || spec.name.starts_with('.') {
            return Err(F2bError::Spec {
                spec: spec.name.clone(),
                message: "a filter name has no '/' (give a path ending in .conf for a file)".into(),
            });
        }
        match Config::read_component(dir, &format!("filter.d/{}", spec.name))? {
            Some(c) => (c, spec.name.clone()),
            None => {
                return Err(F2bError::NotFound {
                    name: spec.name.clone(),
                    dir: dir.to_owned(),
                })
            }
        }
    };
    let ierr = |option: &str, message: String| F2bError::Interpolation {
        filter: name.clone(),
        option: option.to_owned(),
        message,
    };
    let p_opts = spec.params.clone();
    let mut opts = OMap::new();
    for o in CONFIG_OPTS {
        if p_opts.contains(o) {
            continue;
        }
        if let Some(v) = cfg.get("Definition", o, &p_opts).map_err(|m| ierr(o, m))? {
            opts.set(o, &v);
        }
    }
    let mut init = p_opts.clone();
    for o in cfg.own_keys("Init") {
        if o == "__name__" {
            continue;
        }
        let v = cfg
            .get("Init", &o, &OMap::new())
            .map_err(|m| ierr(&o, m))?
            .unwrap_or_default();
        if !o.starts_with("known/") {
            init.set(&format!("known/{o}"), &v);
        }
        if !init.contains(&o) {
            init.set(&o, &v);
        }
    }
    let mut combined = opts;
    for (k, v) in init.iter() {
        combined.set(k, v);
    }
    let extra = |n: &str| cfg.get_ex("Definition", n, &p_opts);
    substitute_tags(&mut combined, &extra).map_err(|m| ierr("<tags>", m))?;
    let lines = |o: &str| -> Vec<String> {
        combined
            .get(o)
            .map(|v| {
                v.split('\n')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let maxlines = match combined.get("maxlines") {
        None => 1,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(F2bError::Invalid {
                    filter: name,
                    option: "maxlines".into(),
                    message: format!("{v:?} is not an integer greater than zero"),
                })
            }
        },
    };
    let journalmatch = lines("journalmatch")
        .iter()
        .map(|l| shell_words(l))
        .filter(|w| !w.is_empty())
        .collect();
    Ok(FilterDef {
        name: name.clone(),
        files: cfg.files.clone(),
        prefregex: combined
            .get("prefregex")
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned),
        failregex: lines("failregex"),
        ignoreregex: lines("ignoreregex"),
        datepattern: combined
            .get("datepattern")
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned),
        maxlines,
        journalmatch,
        usedns: combined.get("usedns").unwrap_or("warn").trim().to_owned(),
        options: combined,
    })
}

/// Splits a line into words the way a POSIX shell would for plain words and quotes (no
/// expansion): `_SYSTEMD_UNIT=sshd.service + _COMM=sshd`.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                have = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                have = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        _ => cur.push(d),
                    }
                }
            }
            '\\' => {
                have = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                have = true;
                cur.push(c);
            }
        }
    }
    if have {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parameters_parse_like_a_jail() {
        let s = parse_spec(r#"sshd[mode=aggressive, publickey="a,b", x='y']"#).unwrap();
        assert_eq!(s.name, "sshd");
        assert_eq!(s.params.get("mode"), Some("aggressive"));
        assert_eq!(s.params.get("publickey"), Some("a,b"));
        assert_eq!(s.params.get("x"), Some("y"));
        assert!(parse_spec("sshd[mode").is_err());
        assert_eq!(parse_spec("sshd").unwrap().params.len(), 0);
    }

    #[test]
    fn nested_tags_resolve_recursively() {
        let mut t = OMap::new();
        t.set("failregex", "a <mdre-<mode>> <HOST>");
        t.set("mode", "normal");
        t.set("mdre-normal", "N<x>");
        t.set("x", "!");
        substitute_tags(&mut t, &|_| Ok(None)).unwrap();
        assert_eq!(t.get("failregex"), Some("a N! <HOST>"));
        let mut bad = OMap::new();
        bad.set("a", "<a>");
        assert!(substitute_tags(&mut bad, &|_| Ok(None)).is_err());
    }

    #[test]
    fn journalmatch_splits_like_a_shell() {
        assert_eq!(
            shell_words("_SYSTEMD_UNIT=sshd.service + _COMM='s d'"),
            vec!["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=s d"]
        );
    }
}

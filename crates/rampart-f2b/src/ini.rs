//! fail2ban's INI dialect: Python `configparser` rules (lower-cased keys, `#`/`;` comment
//! lines, ` ;` inline comments, indented continuation lines, `%%`, `%(name)s`), plus
//! fail2ban's additions: `.conf`/`.d`/`.local` layering, `[INCLUDES] before/after` with
//! `.local` siblings, `KNOWN/<section>` (the value a later file overrode), and
//! `%(section/option)s`, `%(default/option)s`, `%(known/option)s` references.

use std::path::{Path, PathBuf};

use crate::F2bError;

/// A small insertion-ordered string map (sections hold a few dozen keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OMap(Vec<(String, String)>);

impl OMap {
    /// An empty map.
    pub fn new() -> Self {
        Self(Vec::new())
    }
    /// The value for `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    /// Whether `k` is present.
    pub fn contains(&self, k: &str) -> bool {
        self.get(k).is_some()
    }
    /// Sets `k` (keeping its position if present).
    pub fn set(&mut self, k: &str, v: &str) {
        match self.0.iter_mut().find(|(key, _)| key == k) {
            Some(e) => e.1 = v.to_owned(),
            None => self.0.push((k.to_owned(), v.to_owned())),
        }
    }
    /// Removes `k`.
    pub fn remove(&mut self, k: &str) -> Option<String> {
        let i = self.0.iter().position(|(key, _)| key == k)?;
        Some(self.0.remove(i).1)
    }
    /// Keys and values in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One parsed file: `[DEFAULT]` and the other sections, values joined but not interpolated.
#[derive(Debug, Clone, Default)]
pub struct IniFile {
    /// `[DEFAULT]`.
    pub defaults: OMap,
    /// Other sections, in file order.
    pub sections: Vec<(String, OMap)>,
}

/// Parses one file with configparser's rules.
pub fn parse_ini(path: &Path, text: &str) -> Result<IniFile, F2bError> {
    let mut file = IniFile::default();
    // (section index or usize::MAX for DEFAULT, option, value lines)
    let mut cur: Option<usize> = None;
    let mut opt: Option<(String, Vec<String>)> = None;
    let mut indent_level = usize::MAX;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    fn flush(file: &mut IniFile, cur: Option<usize>, opt: &mut Option<(String, Vec<String>)>) {
        if let (Some(c), Some((name, lines))) = (cur, opt.take()) {
            let v = lines.join("\n");
            let v = v.trim_end();
            if c == usize::MAX {
                file.defaults.set(&name, v);
            } else {
                file.sections[c].1.set(&name, v);
            }
        }
    }

    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Inline comments: ';' at the start or after whitespace.
        let mut comment_start: Option<usize> = None;
        for (idx, ch) in line.char_indices() {
            if ch == ';' && (idx == 0 || line[..idx].ends_with(char::is_whitespace)) {
                comment_start = Some(idx);
                break;
            }
        }
        let t = line.trim();
        if t.starts_with('#') || t.starts_with(';') {
            comment_start = Some(0);
        }
        let value = line[..comment_start.unwrap_or(line.len())].trim();
        if value.is_empty() {
            if comment_start.is_none() {
                if let Some((_, lines)) = opt.as_mut() {
                    lines.push(String::new());
                }
            }
            continue;
        }
        let cur_indent = line.len() - line.trim_start().len();
        if cur.is_some() && opt.is_some() && cur_indent > indent_level {
            if let Some((_, lines)) = opt.as_mut() {
                lines.push(value.to_owned());
            }
            continue;
        }
        indent_level = cur_indent;
        if value.starts_with('[') && value.ends_with(']') && value.len() > 2 {
            flush(&mut file, cur, &mut opt);
            let name = &value[1..value.len() - 1];
            if name == "DEFAULT" {
                cur = Some(usize::MAX);
            } else {
                match file.sections.iter().position(|(n, _)| n == name) {
                    Some(p) => cur = Some(p),
                    None => {
                        file.sections.push((name.to_owned(), OMap::new()));
                        cur = Some(file.sections.len() - 1);
                    }
                }
            }
            continue;
        }
        if cur.is_none() {
            return Err(F2bError::Syntax {
                path: path.to_owned(),
                line: lineno,
                message: format!("no section header before {value:?}"),
            });
        }
        let Some(sep) = value.find(['=', ':']) else {
            return Err(F2bError::Syntax {
                path: path.to_owned(),
                line: lineno,
                message: format!("expected `key = value` or `[section]`, got {value:?}"),
            });
        };
        let name = value[..sep].trim_end().to_lowercase();
        if name.is_empty() {
            return Err(F2bError::Syntax {
                path: path.to_owned(),
                line: lineno,
                message: format!("empty option name in {value:?}"),
            });
        }
        flush(&mut file, cur, &mut opt);
        opt = Some((name, vec![value[sep + 1..].trim().to_owned()]));
    }
    flush(&mut file, cur, &mut opt);
    Ok(file)
}

/// A merged configuration (several files, includes resolved).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `[DEFAULT]`.
    pub defaults: OMap,
    /// Sections by name, including `KNOWN/<name>` sections.
    pub sections: Vec<(String, OMap)>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

fn read_text(path: &Path) -> Result<String, F2bError> {
    std::fs::read_to_string(path).map_err(|e| F2bError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Most `%(...)s` replacements in one value (configparser stops at depth 10).
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// Most files one component may pull in through includes.
const MAX_FILES: usize = 256;

impl Config {
    /// Reads component `rel` (such as `filter.d/sshd`) under `basedir`: `rel.conf`,
    /// `rel.d/*.conf`, `rel.local`, `rel.d/*.local` (those that exist), with includes.
    /// Returns `None` when none of them exists.
    pub fn read_component(basedir: &Path, rel: &str) -> Result<Option<Self>, F2bError> {
        let base = basedir.join(rel);
        let mut files = Vec::new();
        let with_ext = |ext: &str| {
            let mut p = base.clone().into_os_string();
            p.push(ext);
            PathBuf::from(p)
        };
        let dir_glob = |ext: &str| -> Vec<PathBuf> {
            let d = with_ext(".d");
            let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.to_string_lossy().ends_with(ext))
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        files.push(with_ext(".conf"));
        files.extend(dir_glob(".conf"));
        files.push(with_ext(".local"));
        files.extend(dir_glob(".local"));
        let files: Vec<PathBuf> = files.into_iter().filter(|p| p.is_file()).collect();
        if files.is_empty() {
            return Ok(None);
        }
        Self::read_files(&files).map(Some)
    }

    /// Reads `files` (each with its includes and `.local` siblings) and merges them.
    pub fn read_files(files: &[PathBuf]) -> Result<Self, F2bError> {
        let mut order = Vec::new();
        expand_includes(files, &[], &mut order)?;
        let mut cfg = Config::default();
        for f in &order {
            let text = read_text(f)?;
            let ini = parse_ini(f, &text)?;
            for (k, v) in ini.defaults.iter() {
                cfg.defaults.set(k, v);
            }
            for (name, sec) in ini.sections {
                match cfg.sections.iter().position(|(n, _)| *n == name) {
                    Some(p) => {
                        let mut known = OMap::new();
                        for (k, _) in sec.iter() {
                            if let Some(old) = cfg.sections[p].1.get(k) {
                                known.set(k, old);
                            }
                        }
                        let kname = format!("KNOWN/{name}");
                        let kp = match cfg.sections.iter().position(|(n, _)| *n == kname) {
                            Some(kp) => kp,
                            None => {
                                cfg.sections.push((kname, OMap::new()));
                                cfg.sections.len() - 1
                            }
                        };
                        for (k, v) in known.iter() {
                            cfg.sections[kp].1.set(k, v);
                        }
                        for (k, v) in sec.iter() {
                            cfg.sections[p].1.set(k, v);
                        }
                    }
                    None => cfg.sections.push((name, sec)),
                }
            }
        }
        cfg.files = order;
        Ok(cfg)
    }

    /// The section named `name`.
    pub fn section(&self, name: &str) -> Option<&OMap> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    /// The raw (uninterpolated) value: section first, then `[DEFAULT]`.
    pub fn raw(&self, section: &str, option: &str) -> Option<&str> {
        if section != "DEFAULT" {
            if let Some(v) = self.section(section)?.get(option) {
                return Some(v);
            }
        }
        self.defaults.get(option)
    }

    /// configparser's `get(section, option, vars=vars)`: `vars` > section > `[DEFAULT]`,
    /// then `%` interpolation. `Ok(None)` when the section or option does not exist.
    pub fn get(&self, section: &str, option: &str, vars: &OMap) -> Result<Option<String>, String> {
        let option = option.to_lowercase();
        if section != "DEFAULT" && self.section(section).is_none() {
            return Ok(None);
        }
        let raw = match vars.get(&option) {
            Some(v) => v,
            None => match self.raw(section, &option) {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        let mut out = String::new();
        self.interpolate(section, &option, raw, vars, &mut out, 1)?;
        Ok(Some(out))
    }

    /// fail2ban's `get_ex`: understands `section/option`, `default/option` and
    /// `known/option` (the value before the last override, else the current one).
    pub fn get_ex(
        &self,
        section: &str,
        option: &str,
        vars: &OMap,
    ) -> Result<Option<String>, String> {
        if let Some((sec, opt)) = split_section_option(option) {
            let lower = sec.to_lowercase();
            let candidates: Vec<String> = if lower == "known" {
                vec![format!("KNOWN/{section}"), section.to_owned()]
            } else if lower == "default" {
                vec!["DEFAULT".to_owned()]
            } else {
                vec![sec.to_owned()]
            };
            for s in candidates {
                if let Some(v) = self.get(&s, opt, &OMap::new())? {
                    return Ok(Some(v));
                }
            }
        }
        self.get(section, option, vars)
    }

    /// Looks up a `%(name)s` reference for `section`: vars, section, DEFAULT, `__name__`,
    /// and `section/option` references.
    fn lookup(&self, section: &str, name: &str, vars: &OMap) -> Option<String> {
        if let Some(v) = vars.get(name) {
            return Some(v.to_owned());
        }
        if section != "DEFAULT" {
            if let Some(v) = self.section(section).and_then(|s| s.get(name)) {
                return Some(v.to_owned());
            }
        }
        if let Some(v) = self.defaults.get(name) {
            return Some(v.to_owned());
        }
        if name == "__name__" {
            return Some(section.to_owned());
        }
        let (sec, opt) = split_section_option(name)?;
        let lower = sec.to_lowercase();
        let found = match lower.as_str() {
            "default" => None,
            "known" => self
                .section(&format!("KNOWN/{section}"))
                .and_then(|s| s.get(opt)),
            _ => self.section(sec)?.get(opt),
        };
        found.or_else(|| self.defaults.get(opt)).map(str::to_owned)
    }

    fn interpolate(
        &self,
        section: &str,
        option: &str,
        rest: &str,
        vars: &OMap,
        out: &mut String,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(format!(
                "recursion limit exceeded interpolating {option:?} in [{section}]"
            ));
        }
        let mut rest = rest;
        while let Some(p) = rest.find('%') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            match rest.as_bytes().get(1) {
                Some(b'%') => {
                    out.push('%');
                    rest = &rest[2..];
                }
                Some(b'(') => {
                    let Some(close) = rest.find(")s") else {
                        return Err(format!(
                            "bad interpolation variable reference {rest:?} in option {option:?} of [{section}]"
                        ));
                    };
                    let orig = &rest[2..close];
                    let name = orig.to_lowercase();
                    if name.is_empty() || name.contains(')') {
                        return Err(format!("bad interpolation variable reference {rest:?}"));
                    }
                    rest = &rest[close + 2..];
                    let found = self
                        .lookup(section, orig, vars)
                        .or_else(|| self.lookup(section, &name, vars));
                    let Some(v) = found else {
                        return Err(format!(
                            "bad option reference %({name})s in option {option:?} of [{section}]: no such option"
                        ));
                    };
                    if v.contains('%') {
                        self.interpolate(section, option, &v, vars, out, depth + 1)?;
                    } else {
                        out.push_str(&v);
                    }
                }
                _ => {
                    return Err(format!(
                        "'%' must be followed by '%' or '(' in option {option:?} of [{section}], found {rest:?}"
                    ))
                }
            }
        }
        out.push_str(rest);
        Ok(())
    }

    /// The keys of `section` itself (not `[DEFAULT]`), in order.
    pub fn own_keys(&self, section: &str) -> Vec<String> {
        self.section(section)
            .map(|s| s.iter().map(|(k, _)| k.to_owned()).collect())
            .unwrap_or_default()
    }
}

/// `sec/opt` as fail2ban reads it (`^([\w\-]+)/([^\s>]+)$`).
fn split_section_option(s: &str) -> Option<(&str, &str)> {
    let (sec, opt) = s.split_once('/')?;
    let ok_sec = !sec.is_empty()
        && sec
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let ok_opt = !opt.is_empty() && !opt.contains(|c: char| c.is_whitespace() || c == '>');
    (ok_sec && ok_opt).then_some((sec, opt))
}

fn with_local(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for f in files {
        out.push(f.clone());
        let local = f.with_extension("local");
        if !files.contains(&local) && local.is_file() && local != *f {
            out.push(local);
        }
    }
    out
}

/// Expands `files` with their includes (before, self, after), as fail2ban orders them.
fn expand_includes(
    files: &[PathBuf],
    seen: &[PathBuf],
    out: &mut Vec<PathBuf>,
) -> Result<(), F2bError> {
    for f in with_local(files) {
        if out.len() > MAX_FILES {
            return Err(F2bError::Syntax {
                path: f,
                line: 0,
                message: format!("more than {MAX_FILES} files through includes"),
            });
        }
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            // fail2ban skips include files it cannot read.
            Err(_) if !seen.is_empty() => continue,
            Err(e) => {
                return Err(F2bError::Io {
                    path: f,
                    message: e.to_string(),
                })
            }
        };
        let ini = parse_ini(&f, &text)?;
        let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut parts: [Vec<PathBuf>; 2] = [Vec::new(), Vec::new()];
        if let Some((_, inc)) = ini.sections.iter().find(|(n, _)| n == "INCLUDES") {
            let tmp = Config {
                defaults: ini.defaults.clone(),
                sections: ini.sections.clone(),
                files: Vec::new(),
            };
            for (k, slot) in [("before", 0usize), ("after", 1)] {
                if !inc.contains(k) {
                    continue;
                }
                let v = tmp
                    .get("INCLUDES", k, &OMap::new())
                    .map_err(|m| F2bError::Syntax {
                        path: f.clone(),
                        line: 0,
                        message: m,
                    })?
                    .unwrap_or_default();
                for name in v.split('\n') {
                    let p = Path::new(name);
                    let r = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        dir.join(p)
                    };
                    if seen.contains(&r) {
                        continue;
                    }
                    let mut s = seen.to_vec();
                    s.push(f.clone());
                    expand_includes(&[r], &s, &mut parts[slot])?;
                }
            }
        }
        let [before, after] = parts;
        out.extend(before);
        out.push(f.clone());
        out.extend(after);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ini(text: &str) -> IniFile {
        parse_ini(Path::new("t.conf"), text).unwrap()
    }

    #[test]
    fn configparser_rules() {
        let f = ini("[Definition]\nFooBar = 1 ; comment\nhash = a # not a comment\nmulti = l1\n  l2\n\n  l4\n# c\nnext: x;y\n");
        let s = &f.sections[0].1;
        assert_eq!(s.get("foobar"), Some("1"));
        assert_eq!(s.get("hash"), Some("a # not a comment"));
        assert_eq!(s.get("multi"), Some("l1\nl2\n\nl4"));
        assert_eq!(s.get("next"), Some("x;y"));
    }

    #[test]
    fn interpolation_orders_vars_section_default() {
        let f = ini("[DEFAULT]\na = d\nb = %(a)s-b\n[S]\na = s\nc = %(b)s %%x %(__name__)s\n[T]\nv = %(S/a)s\n");
        let cfg = Config {
            defaults: f.defaults,
            sections: f.sections,
            files: vec![],
        };
        assert_eq!(
            cfg.get("S", "c", &OMap::new()).unwrap().unwrap(),
            "s-b %x S"
        );
        let mut vars = OMap::new();
        vars.set("a", "v");
        assert_eq!(cfg.get("S", "c", &vars).unwrap().unwrap(), "v-b %x S");
        assert_eq!(cfg.get("T", "v", &OMap::new()).unwrap().unwrap(), "s");
        assert!(cfg.get("S", "missing", &OMap::new()).unwrap().is_none());
        let bad = ini("[S]\nx = %(nope)s\n");
        let cfg = Config {
            defaults: bad.defaults,
            sections: bad.sections,
            files: vec![],
        };
        assert!(cfg.get("S", "x", &OMap::new()).is_err());
    }

    #[test]
    fn layering_keeps_known_values() {
        let dir = std::env::temp_dir().join(format!("f2b-ini-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("filter.d")).unwrap();
        std::fs::write(dir.join("filter.d/common.conf"), "[DEFAULT]\nc = common\n").unwrap();
        std::fs::write(
            dir.join("filter.d/common.local"),
            "[DEFAULT]\nc = common-local\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("filter.d/x.conf"),
            "[INCLUDES]\nbefore = common.conf\n[Definition]\nfailregex = base\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("filter.d/x.local"),
            "[Definition]\nfailregex = mine\n  %(known/failregex)s\n",
        )
        .unwrap();
        let cfg = Config::read_component(&dir, "filter.d/x").unwrap().unwrap();
        assert_eq!(cfg.raw("Definition", "c"), Some("common-local"));
        assert_eq!(
            cfg.get("Definition", "failregex", &OMap::new())
                .unwrap()
                .unwrap(),
            "mine\nbase"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

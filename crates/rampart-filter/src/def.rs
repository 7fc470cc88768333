//! The native filter format: a TOML file, parsed strictly (unknown keys are errors).
//!
//! ```toml
//! description = "OpenSSH server: failed logins"
//! timestamp = "auto"                 # auto | syslog | iso8601 | clf | epoch
//! prefix = '^\S+ sshd\[\d+\]: '      # prepended to every pattern below
//! attacker_fields = ["user"]         # text the client chooses (the corpus must inject there)
//!
//! [params.mode]                      # a parameter a jail may set: filter = "x[mode=aggressive]"
//! kind = "choice"
//! values = ["normal", "aggressive"]
//! default = "normal"
//!
//! [[failure]]
//! id = "failed-password"
//! regex = 'Failed password for (?P<user>.*) from <HOST> port \d+ ssh2$'
//!
//! [[failure]]
//! id = "kex-garbage"
//! when = { mode = ["aggressive"] }   # only in these modes
//! regex = 'Bad protocol version identification .* from <HOST> port \d+$'
//!
//! [[ignore]]
//! id = "trusted-scanner"
//! regex = 'Failed password for nagios from'
//! ```
//!
//! Parameters are resolved before compiling ([`FilterConfig::resolve`]): patterns whose
//! `when` does not hold are dropped, and every `%{name}` in a regex is replaced by the
//! parameter's value: a `choice` value or the members of a `list` as escaped literals (a
//! list becomes `(?:a|b|c)`), a `regex` parameter as the fragment itself in `(?:...)`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::host::HOST_TAG;
use crate::time::FormatChoice;
use crate::FilterError;

/// How a parameter reference is written inside a regex: `%{name}`.
pub const PARAM_OPEN: &str = "%{";

/// Most members a `list` parameter may have (a filter is data; keep automata small).
pub const MAX_LIST: usize = 256;

/// A filter file as written. Every field is documented in `docs/filters.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// One line saying what the filter catches.
    #[serde(default)]
    pub description: String,
    /// Where the lines come from, for people (`/var/log/auth.log`, `journal: _COMM=sshd`).
    #[serde(default)]
    pub sources: Vec<String>,
    /// The timestamp format of the log (`auto` detects it once per source).
    #[serde(default)]
    pub timestamp: FormatChoice,
    /// A regex prepended to every `failure`, `note` and `ignore` pattern. It, or each
    /// pattern, must start with `^`: patterns are anchored to the start of the message (the
    /// line after its leading timestamp).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Names of the parts of a line that the remote party chooses (`user`, `url`, `agent`,
    /// ...). Documentation for readers, and a promise the corpus test checks: the corpus
    /// has an injection line (`forged=... via=NAME`) for each of them.
    #[serde(default)]
    pub attacker_fields: Vec<String>,
    /// Parameters a jail may set (`filter = "name[mode=aggressive]"`), by name.
    #[serde(default)]
    pub params: BTreeMap<String, ParamConfig>,
    /// Lines that are failures. Tried in order; the first that matches wins.
    #[serde(default)]
    pub failure: Vec<PatternConfig>,
    /// Lines that are not failures but tell which address a connection id belongs to, so a
    /// later failure line of the same connection that lacks the address can be attributed.
    #[serde(default)]
    pub note: Vec<PatternConfig>,
    /// Lines that must never count as failures, even when a failure pattern matches.
    #[serde(default)]
    pub ignore: Vec<PatternConfig>,
}

/// One pattern of a filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// A short unique name (`[a-z0-9-]+`), reported with every match.
    pub id: String,
    /// The regex (Rust `regex` syntax, linear time). `<HOST>` stands for the offending
    /// address; named groups `user` and `conn` (connection id) are recognised; `%{name}`
    /// is a parameter's value.
    pub regex: String,
    /// The pattern is active only when every named `choice` parameter has one of the
    /// listed values: `when = { mode = ["aggressive", "ddos"] }`. Empty: always active.
    #[serde(default)]
    pub when: BTreeMap<String, Vec<String>>,
    /// The line's part in a login attempt of its connection (needs a `conn` group); see
    /// [`Attempt`]. Absent: the line counts on its own.
    #[serde(default)]
    pub attempt: Option<Attempt>,
}

/// What a line means for the login attempt of its connection (the `conn` group), so that
/// one failed attempt counts once however many lines it logs. Per connection the scanner
/// keeps whether the current attempt already counted, whether anything counted, and at
/// most one held (not yet counted) failure; see `docs/filters.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attempt {
    /// Starts an attempt and counts it (`Invalid user U from A`): the attempt's later
    /// lines (`Failed password for invalid user U`) do not count again.
    Opens,
    /// May be part of a failed attempt, but a later line decides (a PAM module's
    /// `authentication failure`, which another module may still turn into a success):
    /// held; folded into the attempt's counting line, dropped on success, counted when
    /// the connection ends without either.
    Pending,
    /// Ends an attempt (`Failed password for U from A`): counts unless the attempt already
    /// counted; the next line starts a new attempt.
    Closes,
    /// Ends the connection (`Connection closed by ... [preauth]`, `Too many authentication
    /// failures`): counts a held failure if there is one; otherwise counts itself only if
    /// nothing of this connection counted yet. On a note: counts a held failure only.
    Ends,
    /// A successful login (notes only): drops the held failure.
    Succeeds,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Opens => "opens",
            Self::Pending => "pending",
            Self::Closes => "closes",
            Self::Ends => "ends",
            Self::Succeeds => "succeeds",
        })
    }
}

/// A parameter a filter declares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamConfig {
    /// What kind of value it takes.
    pub kind: ParamKind,
    /// For a `choice`: the allowed values.
    #[serde(default)]
    pub values: Vec<String>,
    /// The value when a jail does not set it (a string; a list of strings for `list`).
    pub default: ParamValue,
    /// What it does, for `rampart filter show` readers.
    #[serde(default)]
    pub description: String,
}

/// The kinds of parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// One of `values`; switches patterns on and off through `when`, and `%{name}` is the
    /// value as a literal.
    Choice,
    /// Literal strings; `%{name}` becomes `(?:a|b|c)` with each member escaped. Written
    /// `a|b|c` in a filter spec. A pattern that uses an empty list is switched off.
    List,
    /// A regex fragment, inserted as `(?:fragment)` (the filter's author or the admin
    /// writes it; it is checked to compile on its own and to hold no named group).
    Regex,
}

/// A parameter value as written: one string, or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// `"aggressive"`, or `"zgrab|masscan"` for a list.
    One(String),
    /// `["zgrab", "masscan"]`.
    Many(Vec<String>),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(s) => f.write_str(s),
            Self::Many(v) => f.write_str(&v.join("|")),
        }
    }
}

/// Parameter values given for one filter (by a jail, or a filter spec).
pub type ParamValues = BTreeMap<String, ParamValue>;

/// A resolved parameter: its effective value, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedParam {
    /// The parameter's name.
    pub name: String,
    /// The value in effect, written as in a spec (`aggressive`, `zgrab|masscan`).
    pub value: String,
    /// Whether the value is the filter's default.
    pub is_default: bool,
}

/// The effective value of one parameter.
enum Value {
    Choice(String),
    List(Vec<String>),
    Regex(String),
}

impl FilterConfig {
    /// Applies parameter values: checks them against the declarations, drops the patterns
    /// whose `when` does not hold (or that use an empty list), and substitutes every
    /// `%{name}`. The result has no `params` and no `when`. `filter` and `origin` name the
    /// filter in errors.
    pub fn resolve(
        &self,
        filter: &str,
        origin: &str,
        given: &ParamValues,
    ) -> Result<(FilterConfig, Vec<ResolvedParam>), FilterError> {
        let perr = |message: String| FilterError::Param {
            filter: filter.to_owned(),
            message,
        };
        let ierr = |id: &str, what: String| FilterError::Invalid {
            origin: origin.to_owned(),
            id: id.to_owned(),
            what,
        };
        for name in given.keys() {
            if !self.params.contains_key(name) {
                let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
                return Err(perr(format!(
                    "unknown parameter {name:?} ({})",
                    if known.is_empty() {
                        "this filter has no parameters".to_owned()
                    } else {
                        format!("parameters: {}", known.join(", "))
                    }
                )));
            }
        }
        let mut values: BTreeMap<&str, Value> = BTreeMap::new();
        let mut report = Vec::new();
        for (name, decl) in &self.params {
            check_param_name(name).map_err(|w| ierr("-", w))?;
            if decl.kind == ParamKind::Choice && decl.values.is_empty() {
                return Err(ierr(
                    "-",
                    format!("parameter {name:?}: a choice needs `values`"),
                ));
            }
            // The default is checked like a given value, so a broken filter fails at load
            // time whatever a jail sets.
            let default = value_of(name, decl, &decl.default).map_err(|w| ierr("-", w))?;
            let value = match given.get(name) {
                Some(v) => value_of(name, decl, v).map_err(perr)?,
                None => default,
            };
            report.push(ResolvedParam {
                name: name.clone(),
                value: match &value {
                    Value::Choice(s) | Value::Regex(s) => s.clone(),
                    Value::List(v) => v.join("|"),
                },
                is_default: !given.contains_key(name),
            });
            values.insert(name.as_str(), value);
        }
        let active = |p: &PatternConfig| -> Result<bool, FilterError> {
            for (name, allowed) in &p.when {
                let Some(Value::Choice(v)) = values.get(name.as_str()) else {
                    return Err(ierr(
                        &p.id,
                        format!("`when` names {name:?}, which is not a choice parameter"),
                    ));
                };
                let decl = &self.params[name];
                if let Some(bad) = allowed.iter().find(|a| !decl.values.contains(a)) {
                    return Err(ierr(
                        &p.id,
                        format!("`when` lists {bad:?}, not a value of {name:?}"),
                    ));
                }
                if !allowed.contains(v) {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        let prefix = match &self.prefix {
            Some(p) => match substitute(p, &values).map_err(|w| ierr("(prefix)", w))? {
                Some(s) => Some(s),
                None => {
                    return Err(ierr(
                        "(prefix)",
                        "the prefix uses an empty list parameter".into(),
                    ))
                }
            },
            None => None,
        };
        let resolve_all = |list: &[PatternConfig]| -> Result<Vec<PatternConfig>, FilterError> {
            let mut out = Vec::with_capacity(list.len());
            for p in list {
                let is_active = active(p)?;
                let Some(regex) = substitute(&p.regex, &values).map_err(|w| ierr(&p.id, w))? else {
                    continue;
                };
                if !is_active {
                    // Switched off here, but another value may switch it on: its syntax is
                    // checked now so a broken pattern never waits for that day.
                    let full = format!("{}{}", prefix.as_deref().unwrap_or(""), regex)
                        .replace(HOST_TAG, crate::host::HOST_REGEX);
                    regex_syntax::ParserBuilder::new()
                        .unicode(false)
                        .utf8(false)
                        .build()
                        .parse(&full)
                        .map_err(|e| ierr(&p.id, format!("regex does not compile: {e}")))?;
                    continue;
                }
                out.push(PatternConfig {
                    id: p.id.clone(),
                    regex,
                    when: BTreeMap::new(),
                    attempt: p.attempt,
                });
            }
            Ok(out)
        };
        let (failure, note, ignore) = (
            resolve_all(&self.failure)?,
            resolve_all(&self.note)?,
            resolve_all(&self.ignore)?,
        );
        let resolved = FilterConfig {
            description: self.description.clone(),
            sources: self.sources.clone(),
            timestamp: self.timestamp,
            prefix,
            attacker_fields: self.attacker_fields.clone(),
            params: BTreeMap::new(),
            failure,
            note,
            ignore,
        };
        Ok((resolved, report))
    }
}

fn check_param_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "parameter name {name:?}: 1 to 32 of [a-z0-9_], starting with a letter"
        ))
    }
}

/// Checks a value against a parameter's declaration.
fn value_of(name: &str, decl: &ParamConfig, v: &ParamValue) -> Result<Value, String> {
    match (decl.kind, v) {
        (ParamKind::Choice, ParamValue::One(s)) => {
            if decl.values.contains(s) {
                Ok(Value::Choice(s.clone()))
            } else {
                Err(format!(
                    "parameter {name:?}: {s:?} is not one of {}",
                    decl.values.join(", ")
                ))
            }
        }
        (ParamKind::List, v) => {
            let members: Vec<String> = match v {
                ParamValue::One(s) => s.split('|').map(str::to_owned).collect(),
                ParamValue::Many(m) => m.clone(),
            };
            let members: Vec<String> = members.into_iter().filter(|m| !m.is_empty()).collect();
            if members.len() > MAX_LIST {
                return Err(format!("parameter {name:?}: more than {MAX_LIST} members"));
            }
            if let Some(bad) = members.iter().find(|m| m.contains('\n')) {
                return Err(format!(
                    "parameter {name:?}: member {bad:?} holds a newline"
                ));
            }
            Ok(Value::List(members))
        }
        (ParamKind::Regex, ParamValue::One(s)) => {
            if s.contains(HOST_TAG) || s.contains(PARAM_OPEN) {
                return Err(format!(
                    "parameter {name:?}: a regex fragment may not hold <HOST> or %{{...}}"
                ));
            }
            let hir = regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(s)
                .map_err(|e| format!("parameter {name:?}: the regex does not compile: {e}"))?;
            if has_named_group(&hir) {
                return Err(format!(
                    "parameter {name:?}: a regex fragment may not hold a named group"
                ));
            }
            Ok(Value::Regex(s.clone()))
        }
        (kind, ParamValue::Many(_)) => Err(format!(
            "parameter {name:?}: a {} takes one value, not a list",
            match kind {
                ParamKind::Choice => "choice",
                ParamKind::List => "list",
                ParamKind::Regex => "regex",
            }
        )),
    }
}

fn has_named_group(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => c.name.is_some() || has_named_group(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(has_named_group),
        HirKind::Repetition(r) => has_named_group(&r.sub),
        _ => false,
    }
}

/// Replaces every `%{name}` in `regex`. `Ok(None)`: it uses an empty list (the pattern is
/// switched off).
fn substitute(regex: &str, values: &BTreeMap<&str, Value>) -> Result<Option<String>, String> {
    let mut out = String::with_capacity(regex.len());
    let mut rest = regex;
    while let Some(at) = rest.find(PARAM_OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + PARAM_OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err("`%{` without a closing `}`".into());
        };
        let name = &after[..end];
        match values.get(name) {
            None => {
                return Err(format!(
                "%{{{name}}} names no parameter of this filter (declare it under [params.{name}])"
            ))
            }
            Some(Value::Choice(v)) => out.push_str(&regex_syntax::escape(v)),
            Some(Value::Regex(v)) => {
                out.push_str("(?:");
                out.push_str(v);
                out.push(')');
            }
            Some(Value::List(members)) => {
                if members.is_empty() {
                    return Ok(None);
                }
                out.push_str("(?:");
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    out.push_str(&regex_syntax::escape(m));
                }
                out.push(')');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Some(out))
}

/// A filter reference as a jail or the command line writes it: a name or path, and
/// parameter values: `sshd`, `sshd[mode=aggressive]`, `web-badbots[agents=zgrab|masscan]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    /// The built-in name or the path.
    pub name: String,
    /// The values in brackets (`key=value`, comma separated; a list's members separated
    /// by `|`).
    pub params: ParamValues,
}

impl FilterSpec {
    /// Parses `name[key=value,key=value]`. Values cannot contain `,` or `]`; use a jail's
    /// `filter_params` table for those.
    pub fn parse(spec: &str) -> Result<Self, FilterError> {
        let err = |message: String| FilterError::Spec {
            spec: spec.to_owned(),
            message,
        };
        let spec_t = spec.trim();
        let Some(open) = spec_t.find('[').filter(|_| spec_t.ends_with(']')) else {
            if spec_t.contains('[') || spec_t.contains(']') {
                return Err(err(
                    "parameters are written name[key=value,...] with the ']' last".into(),
                ));
            }
            return Ok(Self {
                name: spec_t.to_owned(),
                params: ParamValues::new(),
            });
        };
        let name = spec_t[..open].trim();
        if name.is_empty() {
            return Err(err("no filter name before '['".into()));
        }
        let inner = &spec_t[open + 1..spec_t.len() - 1];
        let mut params = ParamValues::new();
        for item in inner.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let Some((k, v)) = item.split_once('=') else {
                return Err(err(format!("{item:?} is not key=value")));
            };
            let k = k.trim();
            if params
                .insert(k.to_owned(), ParamValue::One(v.trim().to_owned()))
                .is_some()
            {
                return Err(err(format!("parameter {k:?} is given twice")));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            params,
        })
    }

    /// Splits a comma-separated list of specs (`sshd,web-scan[mode=x]`); commas inside
    /// brackets belong to the spec.
    pub fn parse_list(specs: &str) -> Result<Vec<Self>, FilterError> {
        let mut out = Vec::new();
        let mut depth = 0usize;
        let mut start = 0;
        for (i, c) in specs.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    out.push(Self::parse(&specs[start..i])?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(Self::parse(&specs[start..])?);
        if out.iter().any(|s| s.name.is_empty()) {
            return Err(FilterError::Spec {
                spec: specs.to_owned(),
                message: "an empty filter name in the list".into(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> FilterConfig {
        toml::from_str(text).expect("valid filter TOML")
    }

    const F: &str = r#"
prefix = '^x '
[params.mode]
kind = "choice"
values = ["normal", "aggressive"]
default = "normal"
[params.agents]
kind = "list"
default = ["zgrab", "a.b"]
[params.tail]
kind = "regex"
default = 'port \d+'
[[failure]]
id = "always"
regex = 'fail <HOST> %{tail}$'
[[failure]]
id = "aggr"
when = { mode = ["aggressive"] }
regex = 'garbage from <HOST>$'
[[failure]]
id = "agent"
regex = '<HOST> "%{agents}"$'
"#;

    fn given(pairs: &[(&str, &str)]) -> ParamValues {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ParamValue::One((*v).to_owned())))
            .collect()
    }

    #[test]
    fn defaults_switch_patterns_and_substitute_escaped_literals() {
        let (r, report) = cfg(F).resolve("t", "t.toml", &ParamValues::new()).unwrap();
        let ids: Vec<&str> = r.failure.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["always", "agent"]);
        assert_eq!(r.failure[0].regex, r"fail <HOST> (?:port \d+)$");
        assert_eq!(r.failure[1].regex, r#"<HOST> "(?:zgrab|a\.b)"$"#);
        assert!(report.iter().all(|p| p.is_default));
    }

    #[test]
    fn given_values_apply_and_an_empty_list_switches_its_pattern_off() {
        let (r, report) = cfg(F)
            .resolve(
                "t",
                "t.toml",
                &given(&[("mode", "aggressive"), ("agents", "")]),
            )
            .unwrap();
        let ids: Vec<&str> = r.failure.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["always", "aggr"]);
        let mode = report.iter().find(|p| p.name == "mode").unwrap();
        assert_eq!(
            (mode.value.as_str(), mode.is_default),
            ("aggressive", false)
        );
    }

    #[test]
    fn unknown_parameters_and_bad_values_are_errors_naming_them() {
        let e = cfg(F)
            .resolve("t", "t.toml", &given(&[("mod", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"mod\"") && e.contains("agents, mode, tail"),
            "{e}"
        );
        let e = cfg(F)
            .resolve("t", "t.toml", &given(&[("mode", "ddos")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"ddos\"") && e.contains("normal, aggressive"),
            "{e}"
        );
        let e = cfg(F)
            .resolve("t", "t.toml", &given(&[("tail", "(?P<user>x)")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("named group"), "{e}");
        let e = cfg(F)
            .resolve("t", "t.toml", &given(&[("tail", "(")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not compile"), "{e}");
    }

    #[test]
    fn a_list_value_is_never_read_as_regex() {
        let (r, _) = cfg(F)
            .resolve("t", "t.toml", &given(&[("agents", ".*|x)(")]))
            .unwrap();
        assert_eq!(r.failure[1].regex, r#"<HOST> "(?:\.\*|x\)\()"$"#);
    }

    #[test]
    fn undeclared_references_and_bad_when_are_errors() {
        let bad = "[[failure]]\nid = \"a\"\nregex = '^%{nope} <HOST>'\n";
        let e = cfg(bad)
            .resolve("t", "t.toml", &ParamValues::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("%{nope}"), "{e}");
        let bad = "[params.mode]\nkind = \"choice\"\nvalues = [\"a\"]\ndefault = \"a\"\n[[failure]]\nid = \"a\"\nwhen = { mode = [\"b\"] }\nregex = '^<HOST>'\n";
        let e = cfg(bad)
            .resolve("t", "t.toml", &ParamValues::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"b\""), "{e}");
    }

    #[test]
    fn specs_parse_names_params_and_lists() {
        let s = FilterSpec::parse("sshd[mode=aggressive]").unwrap();
        assert_eq!(s.name, "sshd");
        assert_eq!(s.params, given(&[("mode", "aggressive")]));
        let s = FilterSpec::parse("web-badbots[agents=zgrab|masscan, x=1]").unwrap();
        assert_eq!(s.params, given(&[("agents", "zgrab|masscan"), ("x", "1")]));
        assert_eq!(FilterSpec::parse("sshd").unwrap().params.len(), 0);
        assert!(FilterSpec::parse("sshd[mode]").is_err());
        assert!(FilterSpec::parse("sshd[mode=a").is_err());
        assert!(FilterSpec::parse("sshd[a=1,a=2]").is_err());
        let l = FilterSpec::parse_list("sshd[mode=a,b=c],web-scan").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].name, "web-scan");
        assert!(FilterSpec::parse_list("sshd,,x").is_err());
    }
}

//! fail2ban's `datepattern`: `%` codes (strptime's and fail2ban's `%Ex…`, `%k`, `%l`),
//! the special tokens (`{^LN-BEG}`, `{DEFAULT}`, `{DATE}`, `{NONE}`, `{UNB}`, `**`,
//! `EPOCH`, `LEPOCH`, `TAI64N`, `{EPOCH}`), the default templates for filters without a
//! pattern, fail2ban's template search and reordering, and the conversion of the matched
//! fields to a time (year and day inference, `%z`/`%Z`, the local zone).

use std::sync::{Arc, OnceLock};

use jiff::tz::TimeZone;
use rampart_core::{Civil, Timestamp};

use crate::pyre::{Caps, PyRegex, Search};

const LINE_BEGIN: u8 = 8;
const LINE_END: u8 = 4;
const WORD_BEGIN: u8 = 2;
const WORD_END: u8 = 1;

const A_WEEKDAY: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const F_WEEKDAY: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const A_MONTH: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const F_MONTH: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Names longest first, as an alternation.
fn names_re(group: &str, names: &[&str]) -> String {
    let mut v: Vec<&str> = names.to_vec();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    format!("(?P<{group}>{})", v.join("|"))
}

/// The regex for one `%` code, or `None` for an unknown code.
fn code_re(code: &str, year_re: &str) -> Option<String> {
    Some(match code {
        "%" => "%".into(),
        "a" => names_re("a", &A_WEEKDAY),
        "A" => names_re("A", &F_WEEKDAY),
        "b" => names_re("b", &A_MONTH),
        "B" => names_re("B", &F_MONTH),
        "p" => "(?P<p>am|pm)".into(),
        "d" => r"(?P<d>[1-2]\d|[0 ]?[1-9]|3[0-1])".into(),
        "f" => r"(?P<f>[0-9]{1,6})".into(),
        "H" => r"(?P<H>[0-1]?\d|2[0-3])".into(),
        "I" => r"(?P<I>1[0-2]|0[1-9]|[1-9])".into(),
        "j" => r"(?P<j>36[0-6]|3[0-5]\d|[12]\d\d|0[1-9]\d|00[1-9]|[1-9]\d|0[1-9]|[1-9])".into(),
        "m" => r"(?P<m>0?[1-9]|1[0-2])".into(),
        "M" => r"(?P<M>[0-5]?\d)".into(),
        "S" => r"(?P<S>[0-5]?\d|6[0-1])".into(),
        "U" => r"(?P<U>5[0-3]|[0-4]\d|\d)".into(),
        "W" => r"(?P<W>5[0-3]|[0-4]\d|\d)".into(),
        "w" => r"(?P<w>[0-6])".into(),
        "y" => r"(?P<y>\d\d)".into(),
        "Y" => r"(?P<Y>\d{4})".into(),
        "z" => r"(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)".into(),
        "Z" => r"(?P<Z>Z|[A-Z]{3,5})".into(),
        "k" => r" ?(?P<H>[0-2]?\d)".into(),
        "l" => r" ?(?P<I>1?\d)".into(),
        "ExZ" => r"(?P<Z>[A-Z](?:[A-Z]{2,4})?)".into(),
        "Exz" => {
            r"(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d{2})?|[A-Z](?:[A-Z]{2,4})?)".into()
        }
        "Exd" => r"(?P<d>[1-2]\d|0[1-9]|3[0-1])".into(),
        "Exm" => r"(?P<m>0[1-9]|1[0-2])".into(),
        "ExH" => r"(?P<H>[0-1]\d|2[0-3])".into(),
        "Exk" => r" ?(?P<H>[0-1]?\d|2[0-3])".into(),
        "Exl" => r" ?(?P<I>1[0-2]|\d)".into(),
        "ExM" => r"(?P<M>[0-5]\d)".into(),
        "ExS" => r"(?P<S>[0-5]\d|6[0-1])".into(),
        "ExY" => format!("(?P<Y>{year_re})"),
        "Exy" => r"(?P<y>\d{2})".into(),
        _ => return None,
    })
}

const LONG_CODES: [&str; 13] = [
    "ExZ", "Exz", "Exd", "Exm", "ExH", "Exk", "Exl", "ExM", "ExS", "ExY", "Exy", "ExZ", "Exz",
];

/// `%ExY`: a four-digit year from 2000 to three years past `current_year`, as fail2ban
/// limits it (plausible years only).
fn year_re(current_year: i16) -> String {
    let last = (current_year as i32 + 3) / 10;
    let decades: Vec<String> = (200..=last.max(200)).map(|d| d.to_string()).collect();
    format!(r"(?:{})\d", decades.join("|"))
}

/// Expands `%` codes; returns the regex and whether it needs case-insensitive matching.
fn expand_codes(pattern: &str, year: &str) -> Result<(String, bool), String> {
    let mut out = String::new();
    let mut alpha = false;
    let mut rest = pattern;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        rest = &rest[p + 1..];
        let code = LONG_CODES
            .iter()
            .find(|c| rest.starts_with(**c))
            .map(|c| c.to_string())
            .or_else(|| rest.chars().next().map(|c| c.to_string()))
            .ok_or_else(|| format!("datepattern {pattern:?} ends with '%'"))?;
        let re = code_re(&code, year)
            .ok_or_else(|| format!("datepattern {pattern:?}: unknown code %{code}"))?;
        if matches!(code.as_str(), "a" | "A" | "b" | "B" | "p" | "c") {
            alpha = true;
        }
        out.push_str(&re);
        rest = &rest[code.len()..];
    }
    out.push_str(rest);
    Ok((out, alpha))
}

/// Length of a `(?flags)` group at the start of `s` (letters, digits, `_`), or 0.
fn flag_group_len(s: &str) -> usize {
    if let Some(r) = s.strip_prefix("(?") {
        let n = r
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count();
        if n > 0 && r[n..].starts_with(')') {
            return n + 3;
        }
    }
    0
}

/// Whether the pattern opens (after optional `(`s and a flag group) with `^`, `**`, `(^`
/// or `(?:^`: then no word boundary is added in front.
fn no_bound_begin(re: &str) -> bool {
    let parens = re.len() - re.trim_start_matches('(').len();
    (0..=parens).any(|k| {
        let s = &re[k..];
        let s = &s[flag_group_len(s)..];
        s.starts_with('^')
            || s.trim_start_matches('(').starts_with("**")
            || s.starts_with("(^")
            || s.starts_with("(?:^")
    })
}

/// Whether the pattern is anchored at the line start (`^`, `(^`, `(?:^` not followed by
/// `|`, after an optional flag group).
fn line_bound_begin(re: &str) -> bool {
    let s = &re[flag_group_len(re)..];
    if s.starts_with('^') {
        return true;
    }
    let rest = s.strip_prefix("(?:^").or_else(|| s.strip_prefix("(^"));
    rest.is_some_and(|r| !r.starts_with('|'))
}

/// Whether the pattern closes with `$`, `$)`, `\b`, `\s` or `**` (plus `)`s): then no word
/// boundary is added behind.
fn no_bound_end(re: &str) -> bool {
    let unescaped =
        |s: &str, tail: &str| s.ends_with(tail) && !s[..s.len() - tail.len()].ends_with('\\');
    if unescaped(re, "$") || unescaped(re, "$)") || unescaped(re, r"\b") || unescaped(re, r"\s") {
        return true;
    }
    let t = re.trim_end_matches(')');
    unescaped(t, "**")
}

/// Whether the pattern has a capturing group of its own (`(` not followed by `?`).
fn has_plain_group(re: &str) -> bool {
    let b = re.as_bytes();
    (0..b.len()).any(|i| {
        b[i] == b'('
            && b.get(i + 1) != Some(&b'?')
            && !(i > 0 && b[i - 1] == b'\\')
            && !(i > 1 && b[i - 1] == b'?' && b[i - 2] == b'(')
    })
}

/// Wraps the middle of a pattern in a group, keeping a leading `^`/flag group and a
/// trailing `$` outside.
fn wrap_group(re: &str) -> String {
    let mut head = 0;
    let flag_len = flag_group_len;
    let bytes = re.as_bytes();
    head += flag_len(&re[head..]);
    if bytes.get(head) == Some(&b'^') {
        head += 1;
    }
    head += flag_len(&re[head..]);
    let (mid, tail) = match re[head..].strip_suffix('$') {
        Some(m) => (m, "$"),
        None => (&re[head..], ""),
    };
    format!("{}({mid}){tail}", &re[..head])
}

/// Removes `**` markers at the start (after `(`s and a flag group) and the end.
fn del_word_markers(re: &str) -> String {
    let mut s = re.to_owned();
    // start
    let lead = s.len() - s.trim_start_matches('(').len();
    let after = &s[lead..];
    let fl = flag_group_len(after);
    let at = lead + fl;
    let lead2 = s[at..].len() - s[at..].trim_start_matches('(').len();
    if s[at + lead2..].starts_with("**") {
        s.replace_range(at + lead2..at + lead2 + 2, "");
    }
    // end
    let t = s.trim_end_matches(')').len();
    if s[..t].ends_with("**") && !s[..t - 2].ends_with('\\') {
        s.replace_range(t - 2..t, "");
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Pattern,
    Epoch { long: bool, group: usize },
    Tai64n,
}

/// One compiled date template.
#[derive(Debug)]
pub struct Template {
    /// fail2ban-style name (the pattern with `%` codes).
    pub name: String,
    /// The pattern, compiled on first use (built-in templates) or at load (the others,
    /// see [`DateDetector::new`]).
    regex: OnceLock<PyRegex>,
    source: String,
    flags: u8,
    weight: f64,
    kind: Kind,
    /// The anchored default syslog template, which has a hand-written fast path.
    fast_syslog: bool,
    /// One of [`default_templates`]: known to compile (a unit test compiles them all), so
    /// it is compiled on first use even when a `datepattern` (`{^LN-BEG}`, `{DEFAULT}`)
    /// brings it in.
    builtin: bool,
}

/// Reads `Mmm dd HH:MM:SS` (day `dd` or ` d`) at the start of `line` when it is followed by
/// the end of the line or by a space and a non-digit: for exactly these lines the anchored
/// default syslog template matches `line[..15]` with these fields, so the regex can be
/// skipped. Anything else (weekday, fraction, year, other padding) returns `None`.
fn fast_syslog(line: &str) -> Option<(Parts, usize)> {
    let b = line.as_bytes();
    if b.len() < 15 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    if !fast_syslog_tail(b) {
        return None;
    }
    let mon = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    let month = month_of_abbr(mon)?;
    let two = |x: u8, y: u8| -> Option<u32> {
        (x.is_ascii_digit() && y.is_ascii_digit())
            .then(|| u32::from(x - b'0') * 10 + u32::from(y - b'0'))
    };
    let day = if b[4] == b' ' {
        (b[5].is_ascii_digit() && b[5] != b'0').then(|| u32::from(b[5] - b'0'))?
    } else {
        two(b[4], b[5]).filter(|d| (1..=31).contains(d))?
    };
    let hour = two(b[7], b[8]).filter(|h| *h <= 23)?;
    let minute = two(b[10], b[11]).filter(|m| *m <= 59)?;
    let second = two(b[13], b[14]).filter(|s| *s <= 59)?;
    Some((
        Parts {
            month: Some(month),
            day: Some(day),
            hour,
            minute,
            second,
            ..Parts::default()
        },
        15,
    ))
}

/// The number of a month from its lower-case abbreviation (the index in [`A_MONTH`] + 1).
fn month_of_abbr(m: [u8; 3]) -> Option<u32> {
    Some(match &m {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// What may follow the 15 date bytes for [`fast_syslog`]: the end of the line, or a space
/// and a non-digit (`b` has at least 15 bytes).
fn fast_syslog_tail(b: &[u8]) -> bool {
    match b.get(15) {
        None => true,
        Some(b' ') => !b.get(16).is_some_and(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// The last line [`fast_syslog`] read: its 15 date bytes, `now`, and the converted time.
/// Consecutive syslog lines very often carry the same second; the time depends only on
/// these bytes, `now` and the detector's fixed zone, so an equal key gives the same result.
#[derive(Debug, Clone, Copy)]
struct FastLast {
    text: [u8; 15],
    now: i64,
    time: Option<Timestamp>,
}

#[derive(Clone, Copy, PartialEq)]
enum Begin {
    Word,
    Start,
    None,
}

impl Template {
    fn build(
        name: String,
        regex: &str,
        begin: Begin,
        word_end: bool,
        kind: Kind,
    ) -> Result<Self, String> {
        let mut re = regex.trim().to_owned();
        // A global flag group is taken out and put back in front at the end.
        let mut gflags = String::new();
        let found = re.match_indices("(?").map(|(i, _)| i).find(|&i| {
            let r = &re[i + 2..];
            let n = r.chars().take_while(char::is_ascii_lowercase).count();
            n > 0 && r[n..].starts_with(')')
        });
        if let Some(i) = found {
            let n = re[i + 2..]
                .chars()
                .take_while(char::is_ascii_lowercase)
                .count();
            gflags = re[i..i + n + 3].to_owned();
            re.replace_range(i..i + n + 3, "");
        }
        let bound_begin = begin != Begin::None && !no_bound_begin(&re);
        let bound_end = word_end && !no_bound_end(&re);
        if !has_plain_group(&re) {
            re = wrap_group(&re);
        }
        let mut flags = 0;
        let mut name = name;
        if bound_begin {
            if begin == Begin::Start {
                flags |= LINE_BEGIN;
                re = format!(r"^(?:\W{{0,2}})?{re}");
                if !name.starts_with("{^LN-BEG}") {
                    name = format!("{{^LN-BEG}}{name}");
                }
            } else {
                flags |= WORD_BEGIN;
                re = format!(r"(?=^|\b|\W){re}");
            }
        }
        if bound_end {
            flags |= WORD_END;
            re.push_str(r"(?=\b|\W|$)");
        }
        if flags & LINE_BEGIN == 0 && line_bound_begin(&re) {
            flags |= LINE_BEGIN;
        }
        if flags & LINE_END == 0 && (re.ends_with('$') || re.ends_with("$)")) {
            let t = re.trim_end_matches(')').trim_end_matches('$');
            if !t.ends_with('\\') && !t.ends_with('|') {
                flags |= LINE_END;
            }
        }
        let re = del_word_markers(&re);
        let full = format!("{gflags}{re}");
        Ok(Template {
            name,
            regex: OnceLock::new(),
            source: full,
            flags,
            weight: 1.0,
            kind,
            fast_syslog: false,
            builtin: false,
        })
    }

    /// A template from a `datepattern` line (not a special token).
    fn pattern(pattern: &str, year: &str) -> Result<Self, String> {
        let mut p = pattern;
        let mut begin = Begin::Word;
        let mut end = true;
        if let Some(r) = p.strip_prefix("{UNB}") {
            p = r;
            begin = Begin::None;
            end = false;
        }
        if begin == Begin::Word {
            if let Some(r) = p.strip_prefix("{^LN-BEG}") {
                p = r;
                begin = Begin::Start;
            }
        }
        let (re, alpha) = expand_codes(p, year)?;
        let re = if alpha { format!("(?iu){re}") } else { re };
        Template::build(p.to_owned(), &re, begin, end, Kind::Pattern)
    }

    fn epoch(line_begin: bool, long: bool) -> Result<Self, String> {
        let digits = if long {
            r"\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?"
        } else {
            r"\d{10,11}\b(?:\.\d{3,6})?"
        };
        let name = if long { "LongEpoch" } else { "Epoch" };
        if line_begin {
            Template::build(
                name.into(),
                &format!("({digits})"),
                Begin::Start,
                true,
                Kind::Epoch { long, group: 1 },
            )
        } else {
            // At the line start, right after a leading '[' (then ']' follows), or right
            // after "audit(" (then ":serial)" follows).
            let re =
                format!(r"(?:^|(?<=^\[)(?={digits}\])|(?<=\baudit\()(?={digits}:\d+\)))({digits})");
            Template::build(
                name.into(),
                &re,
                Begin::None,
                true,
                Kind::Epoch { long, group: 1 },
            )
        }
    }

    fn epoch_in(pattern: &str, year: &str) -> Result<Self, String> {
        let long = pattern.to_uppercase().contains("{LEPOCH}");
        let digits = if long {
            r"(\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?)"
        } else {
            r"(\d{10,11}\b(?:\.\d{3,6})?)"
        };
        let mut p = pattern.to_owned();
        for tok in ["{LEPOCH}", "{lepoch}", "{EPOCH}", "{epoch}"] {
            p = p.replace(tok, digits);
        }
        let mut begin = Begin::Word;
        let mut end = true;
        if let Some(r) = p.strip_prefix("{UNB}") {
            p = r.to_owned();
            begin = Begin::None;
            end = false;
        }
        if let Some(r) = p.strip_prefix("{^LN-BEG}") {
            p = r.to_owned();
            begin = Begin::Start;
        }
        let (re, _) = expand_codes(&p, year)?;
        Template::build(
            pattern.to_owned(),
            &format!("({re})"),
            begin,
            end,
            Kind::Epoch { long, group: 2 },
        )
    }

    fn tai64n(line_begin: bool) -> Result<Self, String> {
        Template::build(
            "TAI64N".into(),
            "@[0-9a-f]{24}",
            if line_begin {
                Begin::Start
            } else {
                Begin::None
            },
            true,
            Kind::Tai64n,
        )
    }

    /// Whether this template runs on the backtracking matcher.
    pub fn is_backtracking(&self) -> bool {
        self.regex().is_backtracking()
    }

    /// Compiles the pattern now, reporting an error.
    fn compile(&self) -> Result<&PyRegex, String> {
        if let Some(r) = self.regex.get() {
            return Ok(r);
        }
        let r = PyRegex::new(&self.source, false)?;
        Ok(self.regex.get_or_init(|| r))
    }

    /// The compiled pattern.
    fn regex(&self) -> &PyRegex {
        self.regex.get_or_init(|| {
            PyRegex::new(&self.source, false)
                .expect("templates from a datepattern compile at load; built-in ones always do")
        })
    }
}

/// The default formats, in fail2ban's order (the dates real logs use).
const DEFAULT_FORMATS: [&str; 17] = [
    // ISO 8601 with any of - / . as the (repeated) separator
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    // syslog
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    // Apache / nginx access logs
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    "EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    "TAI64N",
];

fn template_for(p: &str, year: &str) -> Result<Template, String> {
    let up = p.to_uppercase();
    if up.contains("{EPOCH}") || up.contains("{LEPOCH}") {
        return Template::epoch_in(p, year);
    }
    match up.as_str() {
        "EPOCH" => Template::epoch(false, false),
        "{^LN-BEG}EPOCH" | "^EPOCH" => Template::epoch(true, false),
        "LEPOCH" => Template::epoch(false, true),
        "{^LN-BEG}LEPOCH" | "^LEPOCH" => Template::epoch(true, true),
        "TAI64N" => Template::tai64n(false),
        "{^LN-BEG}TAI64N" | "^TAI64N" => Template::tai64n(true),
        _ => Template::pattern(p, year),
    }
}

/// The default templates: the anchored copies (weight 100) then the originals.
fn default_templates(year: &str) -> Result<Vec<Arc<Template>>, String> {
    let mut anchored = Vec::new();
    let mut plain = Vec::new();
    for f in DEFAULT_FORMATS {
        let mut t = template_for(f, year)?;
        t.builtin = true;
        if !f.starts_with("{^LN-BEG}") && !f.starts_with('^') {
            let mut a = template_for(&format!("{{^LN-BEG}}{f}"), year)?;
            a.weight = 100.0;
            a.fast_syslog = f == DEFAULT_FORMATS[1];
            a.builtin = true;
            anchored.push(Arc::new(a));
        }
        plain.push(Arc::new(t));
    }
    anchored.extend(plain);
    Ok(anchored)
}

/// Removes the bounds markers from a pattern put inside `{DATE}`.
fn unbound(p: &str) -> &str {
    let p = p.strip_prefix("{UNB}").unwrap_or(p);
    p.strip_prefix("{^LN-BEG}").unwrap_or(p)
}

#[derive(Debug, Clone)]
struct Slot {
    t: Arc<Template>,
    hits: u64,
    /// Successful searches of the template (fail2ban counts them per template).
    t_hits: u64,
    last_used: f64,
    distance: usize,
}

impl Slot {
    fn weight(&self) -> f64 {
        self.hits as f64 * self.t.weight / (self.distance.max(1) as f64)
    }
}

/// Time zone used for dates without a zone: the local zone, or a fixed offset
/// (`logtimezone`).
#[derive(Debug, Clone)]
pub enum DefaultZone {
    /// A zone with rules (the system's, or a POSIX TZ string in tests).
    Local(TimeZone),
    /// A fixed offset in minutes east of UTC.
    Fixed(i32),
}

/// What the date detector found on a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateHit {
    /// Byte span of the date text (group 1), to cut out of the line.
    pub span: (usize, usize),
    /// The time, `None` when the text did not convert (or was empty).
    pub time: Option<Timestamp>,
}

/// fail2ban's date detector for one filter: its templates, their hit counts and order.
#[derive(Debug, Clone)]
pub struct DateDetector {
    slots: Vec<Slot>,
    last_pos: (usize, Option<char>, Option<char>),
    last_end: (usize, Option<char>, Option<char>),
    last_idx: usize,
    first_unused: usize,
    zone: DefaultZone,
    caps: Caps,
    zcache: ZoneCache,
    fast_last: Option<FastLast>,
    /// Searches that hit the backtracking step limit.
    pub limit_hits: u64,
}

fn char_before(s: &str, pos: usize) -> Option<char> {
    s.get(..pos)?.chars().next_back()
}

fn char_at(s: &str, pos: usize) -> Option<char> {
    s.get(pos..)?.chars().next()
}

/// The current year from a Unix time (UTC).
pub fn year_of(unix: i64) -> i16 {
    Timestamp::from_secs(unix).to_civil().year as i16
}

impl DateDetector {
    /// Builds the detector for `datepattern` (`None`: the default templates).
    /// `current_year` bounds `%ExY`.
    pub fn new(
        datepattern: Option<&str>,
        zone: DefaultZone,
        current_year: i16,
    ) -> Result<Self, String> {
        let year = year_re(current_year);
        let mut templates: Vec<Arc<Template>> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let push = |t: Arc<Template>,
                    ignore_dup: bool,
                    templates: &mut Vec<Arc<Template>>,
                    names: &mut Vec<String>|
         -> Result<(), String> {
            if names.contains(&t.name) {
                if ignore_dup {
                    return Ok(());
                }
                return Err(format!("duplicate date template {:?}", t.name));
            }
            names.push(t.name.clone());
            templates.push(t);
            Ok(())
        };
        match datepattern {
            None => {
                for t in default_templates(&year)? {
                    push(t, false, &mut templates, &mut names)?;
                }
            }
            Some(dp) => {
                let lines: Vec<&str> = dp
                    .split('\n')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                for line in lines {
                    let key = if line.contains('%') {
                        line.to_owned()
                    } else {
                        line.to_uppercase()
                    };
                    let ignore_dup = !templates.is_empty();
                    if key == "{^LN-BEG}" || key == "{DEFAULT}" {
                        for t in default_templates(&year)? {
                            if key == "{^LN-BEG}" && t.flags & LINE_BEGIN == 0 {
                                continue;
                            }
                            push(t, ignore_dup, &mut templates, &mut names)?;
                        }
                    } else if line.to_uppercase().contains("{DATE}") {
                        for f in DEFAULT_FORMATS {
                            if f == "EPOCH" || f == "TAI64N" {
                                // fail2ban puts these in by name, which matches nothing.
                                continue;
                            }
                            let inner = unbound(f);
                            let mut p = String::new();
                            let mut rest = line;
                            while let Some(i) = rest.to_uppercase().find("{DATE}") {
                                p.push_str(&rest[..i]);
                                p.push_str(inner);
                                rest = &rest[i + 6..];
                            }
                            p.push_str(rest);
                            let t = Template::pattern(&p, &year)?;
                            push(Arc::new(t), ignore_dup, &mut templates, &mut names)?;
                        }
                    } else if key == "{NONE}" {
                        let t = Template::pattern("{UNB}^", &year)?;
                        push(Arc::new(t), false, &mut templates, &mut names)?;
                    } else {
                        let t = template_for(line, &year)?;
                        push(Arc::new(t), false, &mut templates, &mut names)?;
                    }
                }
            }
        }
        if datepattern.is_some() {
            // A datepattern's own templates are checked now (errors belong to the load);
            // the built-in ones (`{^LN-BEG}`, `{DEFAULT}`) compile when first tried.
            for t in templates.iter().filter(|t| !t.builtin) {
                t.compile()?;
            }
        }
        Ok(DateDetector {
            slots: templates
                .into_iter()
                .map(|t| Slot {
                    t,
                    hits: 0,
                    t_hits: 0,
                    last_used: 0.0,
                    distance: 0x7fff_ffff,
                })
                .collect(),
            last_pos: (1, None, None),
            last_end: (0x7fff_ffff, None, None),
            last_idx: usize::MAX,
            first_unused: 0,
            zone,
            caps: Caps::default(),
            zcache: ZoneCache::default(),
            fast_last: None,
            limit_hits: 0,
        })
    }

    /// The templates in their current order (names), and whether each backtracks.
    pub fn templates(&self) -> Vec<(String, bool)> {
        self.slots
            .iter()
            .map(|s| (s.t.name.clone(), s.t.is_backtracking()))
            .collect()
    }

    fn try_match(
        &mut self,
        i: usize,
        line: &str,
        start: usize,
        end: usize,
    ) -> Option<(usize, usize)> {
        let t = Arc::clone(&self.slots[i].t);
        match t.regex().search_in(line, start, end, &mut self.caps) {
            Search::Match => {
                self.slots[i].t_hits += 1;
                self.caps.get(0)
            }
            Search::NoMatch => None,
            Search::Limit => {
                self.limit_hits += 1;
                None
            }
        }
    }

    /// Finds the date on `line` (fail2ban's `matchTime` + `getTime`), with `now` (Unix
    /// seconds) for year and day inference.
    pub fn find(&mut self, line: &str, now: i64) -> Option<DateHit> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let mut found: Option<(usize, usize, usize, Caps)> = None;
        let mut matched: Option<(usize, usize, usize)> = None;
        let mut ignore = usize::MAX;
        let i = self.last_idx;
        let mut fast: Option<Parts> = None;
        if i < n && self.slots[i].t.fast_syslog {
            // The anchored syslog template was used last: read the common strict form by
            // hand (exactly what the regex would match), else fall back to the regex.
            if let Some(time) = self.fast_same_text(line, now) {
                return Some(self.fast_hit(i, line, now, time));
            }
            if let Some((p, end)) = fast_syslog(line) {
                self.slots[i].t_hits += 1;
                fast = Some(p);
                matched = Some((i, 0, end));
            }
        }
        if matched.is_none() && i < n {
            let flags = self.slots[i].t.flags;
            let m = if flags & (LINE_BEGIN | LINE_END) != 0 {
                ignore = i;
                self.try_match(i, line, 0, line.len())
            } else {
                let (d, pc, cc) = self.last_pos;
                let (e, ec, nc) = self.last_end;
                let begin_ok = char_before(line, d) == pc
                    || (char_at(line, d) == cc && cc.is_some_and(|c| !c.is_alphanumeric()));
                let end_ok = char_at(line, e) == nc
                    || (char_before(line, e) == ec && ec.is_some_and(|c| !c.is_alphanumeric()));
                if begin_ok && end_ok && d <= line.len() && e <= line.len() && d <= e {
                    self.try_match(i, line, d, e)
                } else {
                    ignore = i;
                    self.try_match(i, line, 0, line.len())
                }
            };
            if let Some((s, e)) = m {
                if n == 1
                    || flags & (LINE_BEGIN | LINE_END) != 0
                    || (s == self.last_pos.0 && e == self.last_end.0)
                {
                    matched = Some((i, s, e));
                } else {
                    found = Some((i, s, e, self.caps.clone()));
                }
            }
        }
        if matched.is_none() {
            let mut k = 0;
            while k < n {
                if k == ignore {
                    k += 1;
                    continue;
                }
                if let Some((s, e)) = self.try_match(k, line, 0, line.len()) {
                    if k + 1 >= n {
                        matched = Some((k, s, e));
                        break;
                    }
                    let flags = self.slots[k].t.flags;
                    if flags & (LINE_BEGIN | LINE_END) != 0 {
                        matched = Some((k, s, e));
                        break;
                    }
                    if s == 0 && self.slots[k].hits > 0 && self.slots[k + 1].t_hits == 0 {
                        matched = Some((k, s, e));
                        break;
                    }
                    if s > self.slots[k].distance || s > self.last_pos.0 {
                        if found.as_ref().is_none_or(|f| s < f.1) {
                            found = Some((k, s, e, self.caps.clone()));
                        }
                        k += 1;
                        continue;
                    }
                    matched = Some((k, s, e));
                    break;
                }
                k += 1;
            }
            if matched.is_none() {
                if let Some((k, s, e, caps)) = found.take() {
                    self.caps = caps;
                    matched = Some((k, s, e));
                }
            }
        }
        let (mut i, s, e) = matched?;
        let slot = &mut self.slots[i];
        slot.hits += 1;
        // fail2ban uses the wall clock; the caller's "now" serves the same purpose
        // (templates unused for 5 minutes may be overtaken) and keeps runs reproducible.
        slot.last_used = now as f64;
        slot.distance = s;
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = (s, char_before(line, s), char_at(line, s));
        self.last_end = (e, char_before(line, e), char_at(line, e));
        let caps = std::mem::take(&mut self.caps);
        if i != 0 && i != self.last_idx {
            i = self.reorder(i);
        }
        self.last_idx = i;
        let (span, time) = match fast {
            Some(p) => {
                // (`fast_last` is this path's cache, keyed by the text)
                let time = finish_uncached(p, &self.zone, now, &mut self.zcache);
                let mut text = [0; 15];
                text.copy_from_slice(&line.as_bytes()[..15]);
                self.fast_last = Some(FastLast { text, now, time });
                ((s, e), time)
            }
            None => {
                // (the matched template, at its place after any reordering)
                let t = Arc::clone(&self.slots[i].t);
                let span = caps.get(1).unwrap_or((s, s));
                let time = if span.0 == span.1 {
                    None
                } else {
                    self.convert(&t, line, &caps, now)
                };
                (span, time)
            }
        };
        self.caps = caps;
        Some(DateHit { span, time })
    }

    /// The time of `line` when the syslog fast path would read it and its 15 date bytes
    /// (and `now`) equal those of the last line it read: then the result is the same.
    fn fast_same_text(&self, line: &str, now: i64) -> Option<Option<Timestamp>> {
        let last = self.fast_last.as_ref()?;
        let b = line.as_bytes();
        (b.get(..15)? == last.text && last.now == now && fast_syslog_tail(b)).then_some(last.time)
    }

    /// The bookkeeping of [`DateDetector::find`] for a fast-path hit of slot `i` (the last
    /// used one, so no reordering) that matched `line[..15]` (ASCII, as the fast path
    /// checked): the same updates as the general path, without decoding characters.
    fn fast_hit(&mut self, i: usize, line: &str, now: i64, time: Option<Timestamp>) -> DateHit {
        let b = line.as_bytes();
        let slot = &mut self.slots[i];
        slot.t_hits += 1;
        slot.hits += 1;
        slot.last_used = now as f64;
        slot.distance = 0;
        if self.first_unused == i {
            self.first_unused += 1;
        }
        self.last_pos = (0, None, Some(char::from(b[0])));
        // (the byte after the date is a space or the line ends)
        self.last_end = (
            15,
            Some(char::from(b[14])),
            b.get(15).map(|&c| char::from(c)),
        );
        DateHit {
            span: (0, 15),
            time,
        }
    }

    fn reorder(&mut self, num: usize) -> usize {
        let weight = self.slots[num].weight();
        let untime = self.slots[num].last_used - 300.0;
        let mut pos = if self.first_unused < num {
            self.first_unused
        } else {
            num / 2
        };
        let movable = |s: &Slot| weight > s.weight() || untime > s.last_used;
        if !movable(&self.slots[pos]) {
            if pos == num - 1 {
                return num;
            }
            pos = num - 1;
            if !movable(&self.slots[pos]) {
                return num;
            }
        }
        let slot = self.slots.remove(num);
        self.slots.insert(pos, slot);
        while self.first_unused < self.slots.len() && self.slots[self.first_unused].hits > 0 {
            self.first_unused += 1;
        }
        pos
    }

    fn convert(&mut self, t: &Template, line: &str, caps: &Caps, now: i64) -> Option<Timestamp> {
        match t.kind {
            Kind::Epoch { long, group } => {
                let (s, e) = caps.get(group)?;
                let v = &line[s..e];
                let mut f: f64 = v.parse().ok()?;
                if long && v.len() >= 13 {
                    if v.len() >= 16 && !v.contains('.') {
                        f /= 1_000_000.0;
                    } else {
                        f /= 1000.0;
                    }
                }
                Some(Timestamp::from_micros((f * 1e6).round() as i64))
            }
            Kind::Tai64n => {
                let (s, e) = caps.get(1)?;
                let v = line.get(s + 2..(s + 17).min(e))?;
                let secs = i64::from_str_radix(v, 16).ok()?;
                Some(Timestamp::from_secs(secs))
            }
            Kind::Pattern => {
                let mut fields: Vec<(&str, &str)> = Vec::new();
                for (name, &g) in t.regex().names() {
                    if let Some((s, e)) = caps.get(g) {
                        fields.push((name.as_str(), &line[s..e]));
                    }
                }
                let parts = parse_fields(&fields)?;
                finish(parts, &self.zone, now, &mut self.zcache)
            }
        }
    }
}

/// Offsets (minutes) of the zone abbreviations fail2ban accepts without a rule set.
fn abbr_offset(abbr: &str) -> Option<i32> {
    let h = |x: f64| Some((x * 60.0) as i32);
    match abbr {
        "" | "Z" | "UTC" | "GMT" | "UT" | "WET" | "WT" | "EGST" => h(0.0),
        "CET" | "WAT" | "WEST" | "BST" | "IST" | "WEDT" | "DFT" | "A" => h(1.0),
        "CEST" | "EET" | "CAT" | "SAST" | "CEDT" | "WAST" | "B" => h(2.0),
        "EEST" | "MSK" | "EAT" | "IDT" | "EEDT" | "C" => h(3.0),
        "MSD" | "GST" | "AMT" | "AZT" | "GET" | "SAMT" | "D" => h(4.0),
        "PKT" | "YEKT" | "UZT" | "TJT" | "TMT" | "E" => h(5.0),
        "OMST" | "ALMT" | "BTT" | "KGT" | "NOVT" | "F" => h(6.0),
        "ICT" | "KRAT" | "WIB" | "CXT" | "G" => h(7.0),
        "AWST" | "HKT" | "SGT" | "PHT" | "MYT" | "IRKT" | "CST8" | "WITA" | "H" => h(8.0),
        "JST" | "KST" | "YAKT" | "WIT" | "I" => h(9.0),
        "AEST" | "VLAT" | "ChST" | "PGT" | "K" => h(10.0),
        "AEDT" | "MAGT" | "NCT" | "SBT" | "L" => h(11.0),
        "NZST" | "FJT" | "ANAT" | "PETT" | "M" => h(12.0),
        "NZDT" | "FJST" => h(13.0),
        "ACST" => h(9.5),
        "ACDT" => h(10.5),
        "IRST" => h(3.5),
        "AFT" | "IRDT" => h(4.5),
        "NPT" => h(5.75),
        "SLT" => h(5.5),
        "MMT" | "CCT" => h(6.5),
        "NST" | "HNT" | "NT" => h(-3.5),
        "NDT" | "HAT" => h(-2.5),
        "VET" | "HLV" => h(-4.5),
        "AZOT" | "CVT" | "EGT" | "N" => h(-1.0),
        "BRST" | "FNT" | "PMDT" | "UYST" | "WGST" | "O" => h(-2.0),
        "ADT" | "ART" | "BRT" | "CLST" | "GFT" | "SRT" | "UYT" | "WGT" | "FKST" | "PYST"
        | "PMST" | "P" => h(-3.0),
        "AST" | "EDT" | "BOT" | "CLT" | "GYT" | "PYT" | "FKT" | "COST" | "Q" => h(-4.0),
        "EST" | "CDT" | "COT" | "ECT" | "PET" | "ET" | "EASST" | "R" => h(-5.0),
        "CST" | "MDT" | "EAST" | "GALT" | "S" => h(-6.0),
        "MST" | "PDT" | "T" => h(-7.0),
        "PST" | "AKDT" | "PT" | "U" => h(-8.0),
        "AKST" | "HADT" | "GAMT" | "V" => h(-9.0),
        "HST" | "HAST" | "CKT" | "TAHT" | "W" => h(-10.0),
        "SST" | "NUT" | "X" => h(-11.0),
        "Y" => h(-12.0),
        "MART" | "MIT" => h(-9.5),
        _ => None,
    }
}

/// A zone text (`+0100`, `-05:00`, `CEST`, `UTC+2`) to minutes east of UTC.
pub fn zone_offset(z: &str) -> Option<i32> {
    let split = z.find(['+', '-']).unwrap_or(z.len());
    let (abbr, off) = z.split_at(split);
    let base = abbr_offset(abbr)?;
    if off.is_empty() {
        return Some(base);
    }
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let digits = &off[1..];
    let (hh, mm) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        5 if &digits[2..3] == ":" => (digits[..2].parse().ok()?, digits[3..].parse().ok()?),
        _ => return None,
    };
    if digits.len() <= 2 {
        // fail2ban adds a bare hour count without applying the sign to it separately.
        return Some(base + sign * hh * 60);
    }
    Some(base + sign * (hh * 60 + mm))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    rampart_core::days_in_month(y, m as u8) as u32
}

/// Naive civil date-time, as seconds from 1970-01-01 00:00 (no zone).
fn naive_secs(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = rampart_core::days_from_civil(y, mo as u8, d as u8);
    Some(days * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

fn local_naive_now(zone: &DefaultZone, now: i64) -> i64 {
    match zone {
        DefaultZone::Local(tz) => {
            let ts = jiff::Timestamp::from_second(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            now + i64::from(tz.to_offset(ts).seconds())
        }
        DefaultZone::Fixed(m) => now + i64::from(*m) * 60,
    }
}

fn local_to_utc(tz: &TimeZone, naive: i64) -> Option<i64> {
    let c = Timestamp::from_secs(naive).to_civil();
    let dt = jiff::civil::DateTime::new(
        c.year as i16,
        c.month as i8,
        c.day as i8,
        c.hour as i8,
        c.minute as i8,
        c.second as i8,
        0,
    )
    .ok()?;
    tz.to_timestamp(dt).ok().map(|t| t.as_second())
}

/// Date fields read from a match, before inference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Parts {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
    hour: u32,
    minute: u32,
    second: u32,
    tzoff: Option<i32>,
    julian: Option<u32>,
}

/// fail2ban's conversion of matched `%` fields to a time (sub-seconds dropped).
fn parse_fields(fields: &[(&str, &str)]) -> Option<Parts> {
    let mut year: Option<i32> = None;
    let mut month: Option<u32> = None;
    let mut day: Option<u32> = None;
    let (mut hour, mut minute, mut second) = (0u32, 0u32, 0u32);
    let mut tzoff: Option<i32> = None;
    let mut julian: Option<u32> = None;
    let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    for (k, v) in fields {
        match *k {
            "y" => {
                let y: i32 = v.parse().ok()?;
                year = Some(if y <= 2000 { y + 2000 } else { y });
            }
            "Y" => year = Some(v.parse().ok()?),
            "m" => month = Some(v.trim().parse().ok()?),
            "B" => month = Some(F_MONTH.iter().position(|m| *m == v.to_lowercase())? as u32 + 1),
            "b" => month = Some(A_MONTH.iter().position(|m| *m == v.to_lowercase())? as u32 + 1),
            "d" => day = Some(v.trim().parse().ok()?),
            "H" => hour = v.trim().parse().ok()?,
            "I" => {
                hour = v.trim().parse().ok()?;
                let ampm = get("p").unwrap_or("").to_lowercase();
                if ampm.is_empty() || ampm == "am" {
                    if hour == 12 {
                        hour = 0;
                    }
                } else if ampm == "pm" && hour != 12 {
                    hour += 12;
                }
            }
            "M" => minute = v.parse().ok()?,
            "S" => second = v.parse().ok()?,
            "j" => julian = Some(v.parse().ok()?),
            "z" | "Z" => {
                tzoff = Some(if matches!(*v, "Z" | "UTC" | "GMT") {
                    0
                } else {
                    zone_offset(v)?
                });
            }
            _ => {}
        }
    }
    Some(Parts {
        year,
        month,
        day,
        hour,
        minute,
        second,
        tzoff,
        julian,
    })
}

/// Converts local civil seconds to UTC, caching the offset per hour when it is the same at
/// both ends of the hour (no transition inside).
#[derive(Debug, Clone, Default)]
struct ZoneCache {
    hour: i64,
    offset: Option<i64>,
    /// (now, now in local civil seconds, its civil date) of the last call.
    now: Option<(i64, i64, Civil)>,
    /// The last conversion (fields, now, result): consecutive log lines often carry the
    /// same second, and [`finish`] depends only on these (the zone is fixed per detector).
    last: Option<(Parts, i64, Option<Timestamp>)>,
}

impl ZoneCache {
    fn utc_of(&mut self, tz: &TimeZone, naive: i64) -> Option<i64> {
        let h = naive.div_euclid(3600);
        if self.offset.is_some() && self.hour == h {
            return self.offset.map(|o| naive - o);
        }
        let start = local_to_utc(tz, h * 3600)?;
        let end = local_to_utc(tz, h * 3600 + 3599)?;
        if h * 3600 - start == h * 3600 + 3599 - end {
            self.hour = h;
            self.offset = Some(h * 3600 - start);
        } else {
            self.offset = None;
        }
        local_to_utc(tz, naive)
    }
}

/// Year and day inference, zone, and the Unix time of `p` (fail2ban's rules).
fn finish(p: Parts, zone: &DefaultZone, now: i64, cache: &mut ZoneCache) -> Option<Timestamp> {
    if let Some((lp, ln, t)) = cache.last {
        if lp == p && ln == now {
            return t;
        }
    }
    let t = finish_uncached(p, zone, now, cache);
    cache.last = Some((p, now, t));
    t
}

fn finish_uncached(
    p: Parts,
    zone: &DefaultZone,
    now: i64,
    cache: &mut ZoneCache,
) -> Option<Timestamp> {
    let Parts {
        year,
        mut month,
        mut day,
        hour,
        minute,
        second,
        mut tzoff,
        julian,
    } = p;
    let (now_local, now_civil) = match cache.now {
        Some((n, l, c)) if n == now => (l, c),
        _ => {
            let l = local_naive_now(zone, now);
            let c = Timestamp::from_secs(l).to_civil();
            cache.now = Some((now, l, c));
            (l, c)
        }
    };
    let mut assume_year = false;
    let year = match year {
        Some(y) => y,
        None => {
            assume_year = true;
            now_civil.year
        }
    };
    if (month.is_none() || day.is_none()) && julian.is_some() {
        let j = julian?;
        let base = rampart_core::days_from_civil(year, 1, 1) + i64::from(j) - 1;
        let c = Timestamp::from_secs(base * 86_400).to_civil();
        month = Some(c.month as u32);
        day = Some(c.day as u32);
    }
    let mut assume_today = false;
    if month.is_none() && day.is_none() {
        month = Some(now_civil.month as u32);
        day = Some(now_civil.day as u32);
        assume_today = true;
    }
    let (month, day) = (month?, day?);
    let mut naive = naive_secs(year, month, day, hour, minute, second)?;
    if tzoff.is_none() {
        if let DefaultZone::Fixed(m) = zone {
            tzoff = Some(*m);
        }
    }
    if let Some(off) = tzoff {
        naive -= i64::from(off) * 60;
    }
    if assume_today && naive > now_local {
        naive -= 86_400;
    }
    if assume_year && naive > now_local + 86_400 {
        let c = Timestamp::from_secs(naive).to_civil();
        naive = naive_secs(
            year - 1,
            month,
            day,
            c.hour as u32,
            c.minute as u32,
            c.second as u32,
        )?;
    }
    let secs = match (tzoff, zone) {
        (Some(_), _) => naive,
        (None, DefaultZone::Local(tz)) => cache.utc_of(tz, naive)?,
        (None, DefaultZone::Fixed(m)) => naive - i64::from(*m) * 60,
    };
    Some(Timestamp::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_124_013_600; // 2005-08-14T10:00:00Z

    fn cet() -> DefaultZone {
        DefaultZone::Local(TimeZone::posix("CET-01CEST-02,M3.5.0,M10.5.0").unwrap())
    }

    #[test]
    fn built_in_templates_compile_when_first_tried_and_datepatterns_at_load() {
        for y in [1990, 2026, 2099] {
            for t in default_templates(&year_re(y)).unwrap() {
                assert!(t.regex.get().is_none(), "{} compiled early", t.name);
                t.compile().unwrap_or_else(|e| panic!("{}: {e}", t.name));
            }
        }
        assert!(DateDetector::new(Some("^(%Y-%m-%d"), cet(), 2026).is_err());
        let d = DateDetector::new(Some("%Y-%m-%d %H:%M:%S"), cet(), 2026).unwrap();
        assert!(d.slots.iter().all(|s| s.t.regex.get().is_some()));
    }

    #[test]
    fn built_in_templates_named_by_a_datepattern_compile_when_first_tried() {
        for dp in ["{^LN-BEG}", "{DEFAULT}", "{^ln-beg}"] {
            let d = DateDetector::new(Some(dp), cet(), 2026).unwrap();
            assert!(d.slots.len() > 10, "{dp}");
            assert!(d.slots.iter().all(|s| s.t.regex.get().is_none()), "{dp}");
        }
        // A datepattern's own lines are still compiled (and checked) at load.
        let d = DateDetector::new(Some("{^LN-BEG}\n%d.%m.%Y %H:%M"), cet(), 2026).unwrap();
        let own: Vec<bool> = d.slots.iter().map(|s| s.t.regex.get().is_some()).collect();
        assert_eq!(own.iter().filter(|c| **c).count(), 1);
        assert!(d
            .slots
            .iter()
            .any(|s| s.t.name.contains("%d.%m.%Y") && s.t.regex.get().is_some()));
        let e = DateDetector::new(Some("{^LN-BEG}\n^(%Y-%m-%d"), cet(), 2026).unwrap_err();
        assert_eq!(
            e,
            DateDetector::new(Some("^(%Y-%m-%d"), cet(), 2026).unwrap_err()
        );
        // Lazily compiled, the templates find the same dates.
        let (text, t) = find(Some("{^LN-BEG}"), "2005-08-14 12:00:01 host x").unwrap();
        assert_eq!(text, "2005-08-14 12:00:01");
        assert_eq!(t.as_deref(), Some("2005-08-14T10:00:01Z"));
    }

    /// The same detector with the syslog fast path switched off (the regex reads every
    /// line): the reference for the fast path and its caches.
    fn without_fast_path(d: &DateDetector) -> DateDetector {
        let mut r = d.clone();
        for s in &mut r.slots {
            if s.t.fast_syslog {
                s.t = Arc::new(Template {
                    name: s.t.name.clone(),
                    regex: OnceLock::new(),
                    source: s.t.source.clone(),
                    flags: s.t.flags,
                    weight: s.t.weight,
                    kind: s.t.kind,
                    fast_syslog: false,
                    builtin: s.t.builtin,
                });
            }
        }
        r
    }

    /// Everything `find` updates, for comparing two detectors.
    #[allow(clippy::type_complexity)]
    fn state(
        d: &DateDetector,
    ) -> (
        Vec<(String, u64, u64, f64, usize)>,
        (usize, Option<char>, Option<char>),
        (usize, Option<char>, Option<char>),
        usize,
        usize,
    ) {
        (
            d.slots
                .iter()
                .map(|s| (s.t.name.clone(), s.hits, s.t_hits, s.last_used, s.distance))
                .collect(),
            d.last_pos,
            d.last_end,
            d.last_idx,
            d.first_unused,
        )
    }

    #[test]
    fn month_abbreviations_map_to_their_numbers() {
        for (k, m) in A_MONTH.iter().enumerate() {
            let b = m.as_bytes();
            assert_eq!(month_of_abbr([b[0], b[1], b[2]]), Some(k as u32 + 1), "{m}");
        }
        for bad in [*b"Jan", *b"ju ", *b"xyz", *b"ja\0", *b"dez"] {
            assert_eq!(month_of_abbr(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn syslog_fast_path_and_its_cache_answer_like_the_regex() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let tails = [
            " host sshd[1]: x",
            "",
            " 2005 host x",
            " é host",
            "x host",
            " ",
            "  host",
            ".123 host",
            " host\u{e9}t\u{e9}",
        ];
        for dp in [None, Some("{^LN-BEG}"), Some("{DEFAULT}")] {
            for zone in [cet(), DefaultZone::Fixed(90), DefaultZone::Fixed(0)] {
                let mut fast = DateDetector::new(dp, zone, 2026).unwrap();
                let mut slow = without_fast_path(&fast);
                // Around a new year (year inference), across DST (CET).
                let mut now = 1_136_073_000; // 2005-12-31T23:50:00Z
                let mut line = String::new();
                let mut fast_hits = 0;
                for step in 0..4000 {
                    if rnd(3) != 0 {
                        // a new line, else the same date text again
                        line.clear();
                        match rnd(12) {
                            0 => line.push_str("2005-12-31 23:59:59 host x"),
                            1 => line.push_str("Sat Dec 31 23:59:59 host"),
                            _ => {
                                let mon = ["Dec", "Jan", "Mar", "Oct", "dec"][rnd(5) as usize];
                                let day = [" 1", "31", "01", "26", "00", " 0", "32", "27"]
                                    [rnd(8) as usize];
                                let hh = ["23", "00", "01", "02", "24", "03"][rnd(6) as usize];
                                let mm = ["59", "00", "60", "30"][rnd(4) as usize];
                                let ss = ["59", "00", "60", "58"][rnd(4) as usize];
                                line.push_str(&format!("{mon} {day} {hh}:{mm}:{ss}"));
                            }
                        }
                    }
                    let mut l = line.clone();
                    l.push_str(tails[rnd(tails.len() as u64) as usize]);
                    if rnd(20) == 0 {
                        now += 3600 * 24 * rnd(40) as i64;
                    } else if rnd(4) == 0 {
                        now += 1;
                    }
                    let a = fast.find(&l, now);
                    let b = slow.find(&l, now);
                    assert_eq!(a, b, "step {step}: {l:?} at {now}");
                    assert_eq!(state(&fast), state(&slow), "step {step}: {l:?} at {now}");
                    if fast.fast_last.is_some_and(|f| f.text == l.as_bytes()[..15]) {
                        fast_hits += 1;
                    }
                }
                assert!(fast_hits > 300, "fast path used {fast_hits} times");
            }
        }
    }

    fn find(dp: Option<&str>, line: &str) -> Option<(String, Option<String>)> {
        let mut d = DateDetector::new(dp, cet(), 2026).unwrap();
        let h = d.find(line, NOW)?;
        Some((
            line[h.span.0..h.span.1].to_owned(),
            h.time.map(|t| t.to_string()),
        ))
    }

    #[test]
    fn syslog_dates_infer_the_year_in_local_time() {
        let (text, t) = find(Some("{^LN-BEG}"), "Aug 14 11:59:59 host sshd[1]: x").unwrap();
        assert_eq!(text, "Aug 14 11:59:59");
        assert_eq!(t.as_deref(), Some("2005-08-14T09:59:59Z"));
        // More than a day in the future: last year.
        let (_, t) = find(None, "Nov 28 09:16:03 host x").unwrap();
        assert_eq!(t.as_deref(), Some("2004-11-28T08:16:03Z"));
    }

    #[test]
    fn iso_dates_with_zones_and_backreferences() {
        let (text, t) = find(None, "2005-08-14 12:00:01.110+0100 x").unwrap();
        assert_eq!(text, "2005-08-14 12:00:01.110+0100");
        assert_eq!(t.as_deref(), Some("2005-08-14T11:00:01Z"));
        assert!(find(Some("{^LN-BEG}"), "2005-08/14 12:00:01 x").is_none());
    }

    #[test]
    fn epoch_and_tai64n() {
        let (_, t) = find(Some("EPOCH"), "1124013600.500 x").unwrap();
        assert_eq!(t.as_deref(), Some("2005-08-14T10:00:00.5Z"));
        let (_, t) = find(None, "type=X msg=audit(1124013600.123:42): x").unwrap();
        assert_eq!(t.as_deref(), Some("2005-08-14T10:00:00.123Z"));
        let (_, t) = find(Some("TAI64N"), "@4000000042ff1d5f00000000 x").unwrap();
        assert_eq!(t.as_deref(), Some("2005-08-14T10:30:55Z"));
    }

    #[test]
    fn custom_patterns_date_placeholder_and_none() {
        let (text, t) = find(
            Some(r"^[^\[]*\[({DATE})"),
            "1.2.3.4 - - [14/Aug/2005:12:00:00 +0200] x",
        )
        .unwrap();
        assert_eq!(text, "14/Aug/2005:12:00:00 +0200");
        assert_eq!(t.as_deref(), Some("2005-08-14T10:00:00Z"));
        let (text, t) = find(Some("{NONE}"), "no date here").unwrap();
        assert_eq!(text, "");
        assert_eq!(t, None);
    }
}

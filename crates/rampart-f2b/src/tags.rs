//! fail2ban's regex tags: `<HOST>`, `<ADDR>`, `<IP4>`, `<IP6>`, `<DNS>`, `<CIDR>`,
//! `<SUBNET>`, `<F-ID/>`, `<F-PORT/>`, `<F-NAME>…</F-NAME>`, `<SKIPLINES>`, expanded into
//! named groups with the names fail2ban's matcher reads.

const IP4: &str = r"(?:\d{1,3}\.){3}\d{1,3}";
// The look-behind fail2ban has before the final ':' always holds (every repetition of the
// first group ends in ':'), so it is left out.
const IP6: &str = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)";

fn ip4() -> String {
    format!(r"(?:::f{{4,6}}:)?(?P<ip4>{IP4})")
}
fn ip6() -> String {
    format!(r"(?P<ip6>{IP6})")
}
fn dns() -> String {
    r"(?P<dns>[\w\-.^_]*\w)".to_owned()
}
fn addr() -> String {
    format!(r"\[?(?:{}|{})\]?", ip4(), ip6())
}

/// Expands the tags in `regex`. `usedns = no` makes `<HOST>` match addresses only.
pub fn expand(regex: &str, usedns: &str) -> String {
    let mut out = String::new();
    let mut open: Vec<String> = Vec::new();
    let mut skiplines = 0;
    let mut rest = regex;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt + 1..];
        // A tag is `</?[\w\-]+/?>`.
        let body_len = {
            let mut n = 0;
            let b = after.as_bytes();
            if b.first() == Some(&b'/') {
                n = 1;
            }
            let start = n;
            while n < b.len() && (b[n].is_ascii_alphanumeric() || b[n] == b'_' || b[n] == b'-') {
                n += 1;
            }
            if n == start {
                None
            } else {
                if b.get(n) == Some(&b'/') {
                    n += 1;
                }
                (b.get(n) == Some(&b'>')).then_some(n)
            }
        };
        let Some(n) = body_len else {
            out.push('<');
            rest = after;
            continue;
        };
        let tag = &after[..n];
        rest = &after[n + 1..];
        let rep: Option<String> = match tag {
            "HOST" => Some(if usedns == "no" {
                addr()
            } else {
                format!("(?:{}|{})", addr(), dns())
            }),
            "SKIPLINES" => {
                let s = format!(r"\n(?P<skiplines{skiplines}>(?:(?:.*\n)*?))");
                skiplines += 1;
                Some(s)
            }
            "IP4" | "F-IP4/" => Some(ip4()),
            "IP6" | "F-IP6/" => Some(ip6()),
            "ADDR" | "F-ADDR/" => Some(addr()),
            "CIDR" | "F-CIDR/" => Some(r"(?P<cidr>\d+)".to_owned()),
            "SUBNET" | "F-SUBNET/" => {
                Some(format!(r"\[?(?:{}|{})(?:/(?P<cidr>\d+))?\]?", ip4(), ip6()))
            }
            "DNS" | "F-DNS/" => Some(dns()),
            "F-ID/" => Some(r"(?P<fid>\S+)".to_owned()),
            "F-PORT/" => Some(r"(?P<fport>\w+)".to_owned()),
            _ => custom(tag, &mut open),
        };
        match rep {
            Some(r) => out.push_str(&r),
            None => {
                out.push('<');
                out.push_str(tag);
                out.push('>');
            }
        }
    }
    out.push_str(rest);
    out
}

/// `<F-NAME>` opens `(?P<name>`, `</F-NAME>` closes it if it was opened; NAME is upper
/// case letters, digits, `_` and `-`.
fn custom(tag: &str, open: &mut Vec<String>) -> Option<String> {
    let (close, name) = match tag.strip_prefix('/') {
        Some(t) => (true, t),
        None => (false, tag),
    };
    let name = name.strip_prefix("F-")?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return None;
    }
    if close {
        return open.iter().any(|o| o == name).then(|| ")".to_owned());
    }
    open.push(name.to_owned());
    Some(format!("(?P<{}>", group_name(name)))
}

/// The group name for an `F-` tag name: `ID` -> `fid`, `PORT` -> `fport`, else lower case.
pub fn group_name(tag: &str) -> String {
    match tag.to_lowercase().as_str() {
        "id" => "fid".into(),
        "port" => "fport".into(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_custom_tags_expand_to_named_groups() {
        let r = expand("user <F-USER>.*</F-USER> from <HOST> <F-x>", "warn");
        assert!(r.contains("(?P<user>.*)"));
        assert!(r.contains("(?P<ip4>"));
        assert!(r.contains("(?P<dns>"));
        assert!(r.ends_with("<F-x>"));
        assert!(!expand("<HOST>", "no").contains("dns"));
        assert_eq!(
            expand("a </F-USER> <F-ID/>", "no"),
            r"a </F-USER> (?P<fid>\S+)"
        );
    }
}

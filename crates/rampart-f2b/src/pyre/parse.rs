//! A parser for Python's `re` syntax (as Python 3.11 reads a `str` pattern) into an AST.

use std::collections::HashMap;

/// One item of a character class.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassItem {
    /// A range of characters, inclusive (a single character is `lo == hi`).
    Range(char, char),
    /// `\d` (`true`: `\D`).
    Digit(bool),
    /// `\w` (`true`: `\W`).
    Word(bool),
    /// `\s` (`true`: `\S`).
    Space(bool),
}

/// A character class: `[...]`, `\d`, `\w`, `\s` and their negations.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    /// The items; a character matches when one of them does.
    pub items: Vec<ClassItem>,
    /// `[^...]`.
    pub negated: bool,
    /// Match case-insensitively (`(?i)`).
    pub icase: bool,
}

/// A parsed regular expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Matches the empty string.
    Empty,
    /// One character.
    Literal {
        /// The character.
        c: char,
        /// Case-insensitive.
        icase: bool,
    },
    /// A class.
    Class(Class),
    /// `.`.
    Any {
        /// `(?s)`: `.` also matches a newline.
        dotall: bool,
    },
    /// `^`.
    Start {
        /// `(?m)`.
        multiline: bool,
    },
    /// `$`.
    End {
        /// `(?m)`.
        multiline: bool,
    },
    /// `\A`.
    StartText,
    /// `\Z`.
    EndText,
    /// `\b`.
    WordBoundary,
    /// `\B`.
    NotWordBoundary,
    /// `(...)` (with a group index) or `(?:...)`.
    Group {
        /// Capture group index (1-based), `None` for a non-capturing group.
        index: Option<usize>,
        /// The body.
        node: Box<Node>,
    },
    /// A sequence.
    Concat(Vec<Node>),
    /// Alternatives, tried in order.
    Alt(Vec<Node>),
    /// A quantifier.
    Repeat {
        /// The repeated node.
        node: Box<Node>,
        /// Minimum count.
        min: u32,
        /// Maximum count, `None` for unbounded.
        max: Option<u32>,
        /// Greedy (`*`) or lazy (`*?`).
        greedy: bool,
    },
    /// `(?P=name)` or `\N`.
    Backref {
        /// The group index.
        group: usize,
        /// Case-insensitive.
        icase: bool,
    },
    /// `(?=...)`, `(?!...)`, `(?<=...)`, `(?<!...)`.
    Look {
        /// Look-ahead (`false`: look-behind).
        ahead: bool,
        /// Negative.
        negate: bool,
        /// The body.
        node: Box<Node>,
    },
    /// `(?(group)yes|no)`.
    Cond {
        /// The group tested.
        group: usize,
        /// Taken when the group participated.
        yes: Box<Node>,
        /// Taken otherwise.
        no: Box<Node>,
    },
}

/// The result of parsing: the tree, the number of groups and the group names.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The tree.
    pub node: Node,
    /// Number of capture groups (not counting group 0).
    pub groups: usize,
    /// Group name -> index.
    pub names: HashMap<String, usize>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    icase: bool,
    multiline: bool,
    dotall: bool,
    verbose: bool,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    groups: usize,
    names: HashMap<String, usize>,
    /// Group indices that are closed (for back-reference validity).
    closed: Vec<usize>,
    src: &'a str,
}

/// Parses `pattern`; `multiline` sets `re.MULTILINE` globally.
pub fn parse(pattern: &str, multiline: bool) -> Result<Parsed, String> {
    let mut p = Parser {
        chars: pattern.chars().collect(),
        pos: 0,
        groups: 0,
        names: HashMap::new(),
        closed: Vec::new(),
        src: pattern,
    };
    let mut flags = Flags {
        multiline,
        ..Flags::default()
    };
    let node = p.alt(&mut flags, 0)?;
    if p.pos < p.chars.len() {
        return Err(p.err("unbalanced parenthesis"));
    }
    Ok(Parsed {
        node,
        groups: p.groups,
        names: p.names,
    })
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("{what} at position {} in {:?}", self.pos, self.src)
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn peek_at(&self, off: usize) -> Option<char> {
        self.chars.get(self.pos + off).copied()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn starts(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn alt(&mut self, flags: &mut Flags, depth: usize) -> Result<Node, String> {
        if depth > 200 {
            return Err(self.err("nesting too deep"));
        }
        let mut alts = vec![self.concat(flags, depth)?];
        while self.eat('|') {
            alts.push(self.concat(flags, depth)?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alts)
        })
    }

    fn concat(&mut self, flags: &mut Flags, depth: usize) -> Result<Node, String> {
        let mut items: Vec<Node> = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            if flags.verbose {
                if c.is_whitespace() {
                    self.pos += 1;
                    continue;
                }
                if c == '#' {
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == '\n' {
                            break;
                        }
                    }
                    continue;
                }
            }
            let atom = match self.atom(flags, depth)? {
                Some(a) => a,
                None => continue,
            };
            let atom = self.quantifier(atom)?;
            items.push(atom);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    /// Parses `{m,n}` at the current position if it is a valid quantifier; returns
    /// `None` (position unchanged) when `{` is a literal.
    fn brace_quant(&mut self) -> Option<(u32, Option<u32>)> {
        let save = self.pos;
        if !self.eat('{') {
            return None;
        }
        let mut lo = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            lo.push(c);
            self.pos += 1;
        }
        let mut hi = lo.clone();
        let comma = self.eat(',');
        if comma {
            hi.clear();
            while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                hi.push(c);
                self.pos += 1;
            }
        }
        if !self.eat('}') || (!comma && lo.is_empty()) {
            self.pos = save;
            return None;
        }
        let min = if lo.is_empty() { 0 } else { lo.parse().ok()? };
        let max = if hi.is_empty() {
            None
        } else {
            Some(hi.parse().ok()?)
        };
        Some((min, max))
    }

    fn quantifier(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => {
                self.pos += 1;
                (0, None)
            }
            Some('+') => {
                self.pos += 1;
                (1, None)
            }
            Some('?') => {
                self.pos += 1;
                (0, Some(1))
            }
            Some('{') => match self.brace_quant() {
                Some(q) => q,
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        if let Some(m) = max {
            if m < min {
                return Err(self.err("min repeat greater than max repeat"));
            }
        }
        if matches!(
            atom,
            Node::Empty
                | Node::Start { .. }
                | Node::End { .. }
                | Node::StartText
                | Node::EndText
                | Node::WordBoundary
                | Node::NotWordBoundary
                | Node::Repeat { .. }
        ) {
            if matches!(atom, Node::Repeat { .. }) {
                return Err(self.err("multiple repeat"));
            }
            return Err(self.err("nothing to repeat"));
        }
        let greedy = !self.eat('?');
        if self.peek() == Some('+') {
            return Err(self.err("possessive quantifiers are not supported"));
        }
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
            greedy,
        })
    }

    fn group_name(&mut self, end: char) -> Result<String, String> {
        let mut name = String::new();
        loop {
            match self.peek() {
                Some(c) if c == end => {
                    self.pos += 1;
                    break;
                }
                Some(c) => {
                    name.push(c);
                    self.pos += 1;
                }
                None => return Err(self.err("missing group name terminator")),
            }
        }
        if name.is_empty()
            || name.starts_with(|c: char| c.is_ascii_digit())
            || !name.chars().all(|c| c.is_alphanumeric() || c == '_')
        {
            return Err(self.err(&format!("bad character in group name {name:?}")));
        }
        Ok(name)
    }

    /// One atom; `None` for constructs that produce nothing (comments, global flags).
    fn atom(&mut self, flags: &mut Flags, depth: usize) -> Result<Option<Node>, String> {
        let Some(c) = self.peek() else {
            return Ok(Some(Node::Empty));
        };
        self.pos += 1;
        let node = match c {
            '.' => Node::Any {
                dotall: flags.dotall,
            },
            '^' => Node::Start {
                multiline: flags.multiline,
            },
            '$' => Node::End {
                multiline: flags.multiline,
            },
            '[' => Node::Class(self.class(flags)?),
            '\\' => self.escape(flags, false)?,
            '(' => return self.group(flags, depth),
            '*' | '+' | '?' => return Err(self.err("nothing to repeat")),
            '{' => {
                self.pos -= 1;
                if self.brace_quant().is_some() {
                    return Err(self.err("nothing to repeat"));
                }
                self.pos += 1;
                Node::Literal {
                    c: '{',
                    icase: false,
                }
            }
            c => Node::Literal {
                c,
                icase: flags.icase,
            },
        };
        Ok(Some(node))
    }

    fn parse_flags(&mut self) -> Result<(Flags, Flags, bool), String> {
        // Returns (on, off, scoped): after the letters comes ':' (scoped) or ')' (global).
        let mut on = Flags::default();
        let mut off = Flags::default();
        let mut neg = false;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("missing flag terminator"));
            };
            self.pos += 1;
            let target = if neg { &mut off } else { &mut on };
            match c {
                'i' => target.icase = true,
                'm' => target.multiline = true,
                's' => target.dotall = true,
                'x' => target.verbose = true,
                'u' | 'a' | 'L' => {}
                '-' if !neg => neg = true,
                ':' => return Ok((on, off, true)),
                ')' => return Ok((on, off, false)),
                _ => return Err(self.err("unknown flag")),
            }
        }
    }

    fn group(&mut self, flags: &mut Flags, depth: usize) -> Result<Option<Node>, String> {
        if !self.eat('?') {
            self.groups += 1;
            let index = self.groups;
            let mut inner = *flags;
            let body = self.alt(&mut inner, depth + 1)?;
            self.close()?;
            self.closed.push(index);
            return Ok(Some(Node::Group {
                index: Some(index),
                node: Box::new(body),
            }));
        }
        if self.eat('P') {
            if self.eat('<') {
                let name = self.group_name('>')?;
                if self.names.contains_key(&name) {
                    return Err(self.err(&format!("redefinition of group name {name:?}")));
                }
                self.groups += 1;
                let index = self.groups;
                self.names.insert(name, index);
                let mut inner = *flags;
                let body = self.alt(&mut inner, depth + 1)?;
                self.close()?;
                self.closed.push(index);
                return Ok(Some(Node::Group {
                    index: Some(index),
                    node: Box::new(body),
                }));
            }
            if self.eat('=') {
                let name = self.group_name(')')?;
                let Some(&group) = self.names.get(&name) else {
                    return Err(self.err(&format!("unknown group name {name:?}")));
                };
                if !self.closed.contains(&group) {
                    return Err(self.err("cannot refer to an open group"));
                }
                return Ok(Some(Node::Backref {
                    group,
                    icase: flags.icase,
                }));
            }
            return Err(self.err("unknown extension ?P"));
        }
        if self.eat(':') {
            let mut inner = *flags;
            let body = self.alt(&mut inner, depth + 1)?;
            self.close()?;
            return Ok(Some(Node::Group {
                index: None,
                node: Box::new(body),
            }));
        }
        if self.eat('#') {
            while let Some(c) = self.peek() {
                self.pos += 1;
                if c == ')' {
                    return Ok(None);
                }
            }
            return Err(self.err("missing ), unterminated comment"));
        }
        let look = if self.eat('=') {
            Some((true, false))
        } else if self.eat('!') {
            Some((true, true))
        } else if self.starts("<=") {
            self.pos += 2;
            Some((false, false))
        } else if self.starts("<!") {
            self.pos += 2;
            Some((false, true))
        } else {
            None
        };
        if let Some((ahead, negate)) = look {
            let mut inner = *flags;
            let body = self.alt(&mut inner, depth + 1)?;
            self.close()?;
            if !ahead && fixed_width(&body).is_none() {
                return Err(self.err("look-behind requires fixed-width pattern"));
            }
            return Ok(Some(Node::Look {
                ahead,
                negate,
                node: Box::new(body),
            }));
        }
        if self.eat('(') {
            let mut name = String::new();
            loop {
                match self.peek() {
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) => {
                        name.push(c);
                        self.pos += 1;
                    }
                    None => return Err(self.err("unterminated condition")),
                }
            }
            let group = match name.parse::<usize>() {
                Ok(n) if n >= 1 && n <= self.groups => n,
                Ok(_) => return Err(self.err("invalid group reference in condition")),
                Err(_) => match self.names.get(&name) {
                    Some(&g) => g,
                    None => return Err(self.err(&format!("unknown group name {name:?}"))),
                },
            };
            let mut inner = *flags;
            let yes = self.concat(&mut inner, depth + 1)?;
            let no = if self.eat('|') {
                self.concat(&mut inner, depth + 1)?
            } else {
                Node::Empty
            };
            if self.peek() == Some('|') {
                return Err(self.err("conditional backref with more than two branches"));
            }
            self.close()?;
            return Ok(Some(Node::Cond {
                group,
                yes: Box::new(yes),
                no: Box::new(no),
            }));
        }
        let (on, off, scoped) = self.parse_flags()?;
        let apply = |f: &mut Flags| {
            f.icase = (f.icase || on.icase) && !off.icase;
            f.multiline = (f.multiline || on.multiline) && !off.multiline;
            f.dotall = (f.dotall || on.dotall) && !off.dotall;
            f.verbose = (f.verbose || on.verbose) && !off.verbose;
        };
        if scoped {
            let mut inner = *flags;
            apply(&mut inner);
            let body = self.alt(&mut inner, depth + 1)?;
            self.close()?;
            return Ok(Some(Node::Group {
                index: None,
                node: Box::new(body),
            }));
        }
        // A global flag group: applies to the rest of the enclosing group (fail2ban rewrites
        // mid-pattern global flags into scoped ones, which has this meaning).
        apply(flags);
        Ok(None)
    }

    fn close(&mut self) -> Result<(), String> {
        if self.eat(')') {
            Ok(())
        } else {
            Err(self.err("missing ), unterminated subpattern"))
        }
    }

    fn hex(&mut self, n: usize) -> Result<char, String> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self
                .peek()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.err("bad hex escape"))?;
            v = v * 16 + d;
            self.pos += 1;
        }
        char::from_u32(v).ok_or_else(|| self.err("bad character code"))
    }

    /// After a backslash. `in_class`: inside `[...]` (where `\b` is a backspace).
    fn escape(&mut self, flags: &Flags, in_class: bool) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Err(self.err("bad escape (end of pattern)"));
        };
        self.pos += 1;
        let lit = |c: char| Node::Literal {
            c,
            icase: flags.icase,
        };
        let class = |item: ClassItem| {
            Node::Class(Class {
                items: vec![item],
                negated: false,
                icase: false,
            })
        };
        Ok(match c {
            'd' => class(ClassItem::Digit(false)),
            'D' => class(ClassItem::Digit(true)),
            'w' => class(ClassItem::Word(false)),
            'W' => class(ClassItem::Word(true)),
            's' => class(ClassItem::Space(false)),
            'S' => class(ClassItem::Space(true)),
            'b' if in_class => lit('\u{8}'),
            'b' => Node::WordBoundary,
            'B' if !in_class => Node::NotWordBoundary,
            'A' if !in_class => Node::StartText,
            'Z' if !in_class => Node::EndText,
            'n' => lit('\n'),
            't' => lit('\t'),
            'r' => lit('\r'),
            'f' => lit('\u{c}'),
            'v' => lit('\u{b}'),
            'a' => lit('\u{7}'),
            'x' => lit(self.hex(2)?),
            'u' => lit(self.hex(4)?),
            'U' => lit(self.hex(8)?),
            '0' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match self.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                lit(char::from_u32(v).unwrap_or('\0'))
            }
            '1'..='9' => {
                // Octal escape with three octal digits, otherwise a group reference.
                let d2 = self.peek();
                let d3 = self.peek_at(1);
                if let (Some(a), Some(b)) = (d2, d3) {
                    if c <= '7' && a.is_digit(8) && b.is_digit(8) {
                        self.pos += 2;
                        let v = c.to_digit(8).unwrap_or(0) * 64
                            + a.to_digit(8).unwrap_or(0) * 8
                            + b.to_digit(8).unwrap_or(0);
                        return Ok(lit(char::from_u32(v).unwrap_or('\0')));
                    }
                }
                if in_class {
                    return Err(self.err("bad escape in class"));
                }
                let mut n = c.to_digit(10).unwrap_or(0) as usize;
                if let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
                    n = n * 10 + d as usize;
                    self.pos += 1;
                }
                if !self.closed.contains(&n) {
                    return Err(self.err("invalid group reference"));
                }
                Node::Backref {
                    group: n,
                    icase: flags.icase,
                }
            }
            c if c.is_ascii_alphanumeric() => {
                return Err(self.err(&format!("bad escape \\{c}")));
            }
            c => lit(c),
        })
    }

    fn class(&mut self, flags: &Flags) -> Result<Class, String> {
        let negated = self.eat('^');
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated character set"));
            };
            if c == ']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            self.pos += 1;
            let lo = if c == '\\' {
                match self.escape(flags, true)? {
                    Node::Literal { c, .. } => c,
                    Node::Class(cl) => {
                        items.extend(cl.items);
                        continue;
                    }
                    _ => return Err(self.err("bad escape in class")),
                }
            } else {
                c
            };
            // A range?
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| c != ']') {
                self.pos += 1;
                let c2 = self.peek().unwrap_or(']');
                self.pos += 1;
                let hi = if c2 == '\\' {
                    match self.escape(flags, true)? {
                        Node::Literal { c, .. } => c,
                        _ => return Err(self.err("bad character range")),
                    }
                } else {
                    c2
                };
                if hi < lo {
                    return Err(self.err("bad character range"));
                }
                items.push(ClassItem::Range(lo, hi));
            } else {
                items.push(ClassItem::Range(lo, lo));
            }
        }
        Ok(Class {
            items,
            negated,
            icase: flags.icase,
        })
    }
}

impl Node {
    /// A zero-width assertion (anchor, word boundary, look-around): it consumes nothing,
    /// so a run of literals goes on across it.
    pub fn is_assertion(&self) -> bool {
        matches!(
            self,
            Node::Start { .. }
                | Node::End { .. }
                | Node::StartText
                | Node::EndText
                | Node::WordBoundary
                | Node::NotWordBoundary
                | Node::Look { .. }
        )
    }
}

/// The width in characters of every match of `node`, if it is fixed.
pub fn fixed_width(node: &Node) -> Option<usize> {
    match node {
        Node::Empty
        | Node::Start { .. }
        | Node::End { .. }
        | Node::StartText
        | Node::EndText
        | Node::WordBoundary
        | Node::NotWordBoundary
        | Node::Look { .. } => Some(0),
        Node::Literal { .. } | Node::Class(_) | Node::Any { .. } => Some(1),
        Node::Group { node, .. } => fixed_width(node),
        Node::Concat(v) => v.iter().map(fixed_width).sum(),
        Node::Alt(v) => {
            let first = fixed_width(v.first()?)?;
            v.iter()
                .all(|n| fixed_width(n) == Some(first))
                .then_some(first)
        }
        Node::Repeat { node, min, max, .. } => {
            (Some(*min) == *max).then(|| fixed_width(node).map(|w| w * *min as usize))?
        }
        Node::Backref { .. } => None,
        Node::Cond { yes, no, .. } => {
            let y = fixed_width(yes)?;
            (fixed_width(no) == Some(y)).then_some(y)
        }
    }
}

/// The fewest characters a match of `node` consumes (0 where unsure: back-references,
/// conditionals).
pub fn min_width(node: &Node) -> usize {
    match node {
        Node::Literal { .. } | Node::Class(_) | Node::Any { .. } => 1,
        Node::Group { node, .. } => min_width(node),
        Node::Concat(v) => v.iter().map(min_width).sum(),
        Node::Alt(v) => v.iter().map(min_width).min().unwrap_or(0),
        Node::Repeat { node, min, .. } => min_width(node).saturating_mul(*min as usize),
        _ => 0,
    }
}

/// The capture groups that take part in every match of `node` with a non-empty text:
/// groups reached through sequences, groups and repeats only (never through an
/// alternative, a conditional or a look-around), whose body cannot match empty.
pub fn always_nonempty_groups(node: &Node, out: &mut Vec<usize>) {
    match node {
        Node::Group { index, node } => {
            if let Some(i) = index {
                if min_width(node) > 0 {
                    out.push(*i);
                }
            }
            always_nonempty_groups(node, out);
        }
        Node::Concat(v) => v.iter().for_each(|x| always_nonempty_groups(x, out)),
        Node::Repeat { node, min, .. } if *min >= 1 => always_nonempty_groups(node, out),
        _ => {}
    }
}

/// Whether the tree needs a backtracking engine (look-around, back-references or
/// conditionals that have no linear-time equivalent).
pub fn needs_backtracking(node: &Node) -> bool {
    match node {
        Node::Look { .. } => word_edge_look(node).is_none(),
        Node::Backref { .. } | Node::Cond { .. } => true,
        Node::Group { node, .. } | Node::Repeat { node, .. } => needs_backtracking(node),
        Node::Concat(v) | Node::Alt(v) => v.iter().any(needs_backtracking),
        _ => false,
    }
}

/// Recognises the word-edge look-aheads fail2ban wraps date patterns in, `(?=^|\b|\W)` and
/// `(?=\b|\W|$)`. Both hold exactly when the characters on the two sides of the position
/// are not both word characters (up to the empty rest of text), which `regex` spells
/// `\b{start-half}|\b{end-half}`. Returns that replacement.
pub fn word_edge_look(node: &Node) -> Option<&'static str> {
    let Node::Look {
        ahead: true,
        negate: false,
        node,
    } = node
    else {
        return None;
    };
    let Node::Alt(alts) = node.as_ref() else {
        return None;
    };
    let mut has_b = false;
    let mut has_w = false;
    for a in alts {
        match a {
            Node::WordBoundary => has_b = true,
            Node::Class(c) if !c.negated && c.items == [ClassItem::Word(true)] => has_w = true,
            Node::Start { .. } | Node::End { .. } | Node::StartText | Node::EndText => {}
            _ => return None,
        }
    }
    (has_b && has_w).then_some(r"(?:\b{start-half}|\b{end-half})")
}

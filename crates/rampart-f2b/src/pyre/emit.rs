//! Translation of a parsed Python pattern into the `regex` crate's syntax, for patterns that
//! need no backtracking. The meaning is kept, including the dialect differences: Python's
//! `{,n}`, literal `{`, `[` inside classes, `\<`/`\>` as literal characters (all gone after
//! parsing) and `$`, which the matcher sees against a buffer without its final newline, so
//! Python's "end, or before a final newline" is the end of the text.

use std::fmt::Write;

use super::parse::{word_edge_look, Class, ClassItem, Node};

fn push_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || c == ' ' || c == '_' {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:x}}}", c as u32);
    }
}

fn push_class(out: &mut String, cl: &Class) {
    if cl.icase {
        out.push_str("(?i:");
    }
    if !cl.negated && cl.items.len() == 1 {
        match cl.items[0] {
            ClassItem::Digit(n) => out.push_str(if n { r"\D" } else { r"\d" }),
            ClassItem::Word(n) => out.push_str(if n { r"\W" } else { r"\w" }),
            ClassItem::Space(n) => out.push_str(if n { r"\S" } else { r"\s" }),
            ClassItem::Range(lo, hi) => push_range(out, lo, hi),
        }
    } else {
        out.push('[');
        if cl.negated {
            out.push('^');
        }
        for it in &cl.items {
            match *it {
                ClassItem::Digit(n) => out.push_str(if n { r"\D" } else { r"\d" }),
                ClassItem::Word(n) => out.push_str(if n { r"\W" } else { r"\w" }),
                ClassItem::Space(n) => out.push_str(if n { r"\S" } else { r"\s" }),
                ClassItem::Range(lo, hi) => {
                    let _ = write!(out, "\\x{{{:x}}}", lo as u32);
                    if hi != lo {
                        let _ = write!(out, "-\\x{{{:x}}}", hi as u32);
                    }
                }
            }
        }
        out.push(']');
    }
    if cl.icase {
        out.push(')');
    }
}

fn push_range(out: &mut String, lo: char, hi: char) {
    if lo == hi {
        push_char(out, lo);
    } else {
        let _ = write!(out, "[\\x{{{:x}}}-\\x{{{:x}}}]", lo as u32, hi as u32);
    }
}

/// Emits `node` in `regex` syntax. Capture groups are emitted unnamed, in the same order,
/// so group numbers are unchanged. Callers check `needs_backtracking` first.
pub fn emit(node: &Node, out: &mut String) {
    match node {
        Node::Empty => out.push_str("(?:)"),
        Node::Literal { c, icase } => {
            if *icase && c.to_lowercase().ne(c.to_uppercase()) {
                out.push_str("(?i:");
                push_char(out, *c);
                out.push(')');
            } else {
                push_char(out, *c);
            }
        }
        Node::Class(cl) => push_class(out, cl),
        Node::Any { dotall } => out.push_str(if *dotall { "(?s:.)" } else { "." }),
        Node::Start { multiline } => out.push_str(if *multiline { "(?m:^)" } else { r"\A" }),
        Node::End { multiline } => out.push_str(if *multiline { "(?m:$)" } else { r"\z" }),
        Node::StartText => out.push_str(r"\A"),
        Node::EndText => out.push_str(r"\z"),
        Node::WordBoundary => out.push_str(r"\b"),
        Node::NotWordBoundary => out.push_str(r"\B"),
        Node::Group { index, node } => {
            out.push_str(if index.is_some() { "(" } else { "(?:" });
            emit(node, out);
            out.push(')');
        }
        Node::Concat(v) => {
            for n in v {
                emit(n, out);
            }
        }
        Node::Alt(v) => {
            out.push_str("(?:");
            for (i, n) in v.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                emit(n, out);
            }
            out.push(')');
        }
        Node::Repeat {
            node,
            min,
            max,
            greedy,
        } => {
            out.push_str("(?:");
            emit(node, out);
            out.push(')');
            match (min, max) {
                (0, None) => out.push('*'),
                (1, None) => out.push('+'),
                (0, Some(1)) => out.push('?'),
                (m, None) => {
                    let _ = write!(out, "{{{m},}}");
                }
                (m, Some(x)) => {
                    let _ = write!(out, "{{{m},{x}}}");
                }
            }
            if !greedy {
                out.push('?');
            }
        }
        Node::Look { .. } => {
            // Only the word-edge look-aheads get here (see needs_backtracking).
            out.push_str(word_edge_look(node).unwrap_or("(?:)"));
        }
        // Unreachable for patterns that passed needs_backtracking; emit something that
        // never matches rather than panic.
        Node::Backref { .. } | Node::Cond { .. } => out.push_str(r"[^\s\S]"),
    }
}

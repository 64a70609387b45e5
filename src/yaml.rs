//! A document tree ([`Node`]) and its two spellings: YAML in block style and JSON.
//!
//! Written for `setup`, whose documents carry what the user typed (URLs, names, claim
//! prefixes) into files an API server, Dex and Argo CD parse. So the YAML writer never
//! leaves a string to a parser's guess: every string scalar is double-quoted with JSON's
//! escapes (which YAML 1.2 double-quoted scalars share), except a multi-line string that
//! is plain printable ASCII, which becomes a literal block (`|` or `|-`) so that embedded
//! JSON stays readable. Keys are written bare only when they cannot be read as anything
//! but a string. Nothing here reads or writes files.

use std::fmt::Write as _;

/// One value of a document. Maps keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// `Node::Str`.
pub fn str(text: impl Into<String>) -> Node {
    Node::Str(text.into())
}

/// A map from literal pairs. (An array, not a `Vec`: `vec!` at each of the call sites
/// costs more code than one copy of this per length.)
pub fn map<const N: usize>(pairs: [(&str, Node); N]) -> Node {
    Node::Map(pairs.into_iter().map(|(key, value)| (key.to_string(), value)).collect())
}

/// A list of strings.
pub fn strs<S: AsRef<str>>(items: &[S]) -> Node {
    Node::List(items.iter().map(|item| str(item.as_ref())).collect())
}

/// A document with the comment lines that say where it goes, as `# ...` before it.
pub fn document(comment: &str, node: &Node) -> String {
    let mut out = String::new();
    for line in comment.lines() {
        out.push_str("# ");
        // A control character or a line separator would end the comment line early and
        // inject YAML: libyaml (and so kubectl) and PyYAML break lines at U+2028 and U+2029.
        out.extend(line.chars().map(|c| if c.is_control() || special(c) { '?' } else { c }));
        out.push('\n');
    }
    block(&mut out, node, 0);
    out
}

/// The value as YAML at `indent`, starting on a fresh line.
fn block(out: &mut String, node: &Node, indent: usize) {
    match node {
        Node::Map(pairs) if !pairs.is_empty() => {
            for (key, value) in pairs {
                out.push_str(&" ".repeat(indent));
                out.push_str(&key_text(key));
                out.push(':');
                after_key(out, value, indent);
            }
        }
        Node::List(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&" ".repeat(indent));
                out.push('-');
                match item {
                    // `- key: value` with the map's other keys under the first one
                    Node::Map(pairs) if !pairs.is_empty() => {
                        let mut nested = String::new();
                        block(&mut nested, item, indent + 2);
                        out.push(' ');
                        out.push_str(&nested[indent + 2..]);
                    }
                    _ => after_key(out, item, indent),
                }
            }
        }
        scalar => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

/// What follows `key:` or `-`: a scalar on the same line, a collection below it.
fn after_key(out: &mut String, value: &Node, indent: usize) {
    match value {
        Node::Map(pairs) if !pairs.is_empty() => {
            out.push('\n');
            block(out, value, indent + 2);
        }
        Node::List(items) if !items.is_empty() => {
            out.push('\n');
            block(out, value, indent + 2);
        }
        Node::Str(text) if literal_block_fits(text) => {
            out.push_str(if text.ends_with('\n') { " |\n" } else { " |-\n" });
            for line in text.trim_end_matches('\n').split('\n') {
                if !line.is_empty() {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

/// A literal block keeps every character as it is, so it is used only for text that it
/// cannot change: several lines of printable ASCII, the first that is not empty not
/// starting with a space (the reader takes the block's indentation from that line, so it
/// would need an indentation indicator), no line ending in white space, at most one final
/// newline (`|` keeps exactly one, `|-` none).
fn literal_block_fits(text: &str) -> bool {
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.contains('\n')
        && !body.ends_with('\n')
        && !body.trim_start_matches('\n').starts_with(' ')
        && body.bytes().all(|b| b == b'\n' || (b' '..=b'~').contains(&b))
        && body.split('\n').all(|line| !line.ends_with(' '))
}

/// A scalar, or an empty collection, on one line.
fn inline(node: &Node) -> String {
    match node {
        Node::Str(text) => quoted(text),
        Node::Bool(value) => value.to_string(),
        Node::Int(value) => value.to_string(),
        Node::List(_) => "[]".into(),
        Node::Map(_) => "{}".into(),
    }
}

/// A key bare when it is a plain word no YAML reader takes for a boolean, number or null;
/// otherwise quoted.
fn key_text(key: &str) -> String {
    let plain = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null"
        );
    if plain { key.to_string() } else { quoted(key) }
}

/// Characters outside YAML's printable set or read as a line break by YAML 1.1 readers:
/// the line and paragraph separators, the byte order mark, and U+FFFE and U+FFFF.
pub fn special(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// A double-quoted string with JSON's escapes: valid JSON and valid YAML.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // control characters, DEL, the line separators YAML treats as breaks, and
            // what YAML does not allow in a document at all
            c if c.is_control() || special(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON, indented by two spaces per level; empty collections as `[]` and `{}`.
pub fn json(node: &Node) -> String {
    let mut out = String::new();
    json_into(&mut out, node, 0);
    out
}

fn json_into(out: &mut String, node: &Node, indent: usize) {
    let pad = |out: &mut String, n: usize| out.push_str(&" ".repeat(n));
    match node {
        Node::Map(pairs) if !pairs.is_empty() => {
            out.push_str("{\n");
            for (i, (key, value)) in pairs.iter().enumerate() {
                pad(out, indent + 2);
                out.push_str(&quoted(key));
                out.push_str(": ");
                json_into(out, value, indent + 2);
                out.push_str(if i + 1 < pairs.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push('}');
        }
        Node::List(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(out, indent + 2);
                json_into(out, item, indent + 2);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push(']');
        }
        scalar => out.push_str(&inline(scalar)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(node: Node, expected: &str) {
        assert_eq!(document("", &node), expected);
    }

    #[test]
    fn strings_are_always_quoted_and_escaped() {
        check(
            map([
                ("a", str("yes")),
                ("b", str("1.0")),
                ("c", str("x: y # z")),
                ("d", str("tab\tquote\"back\\slash\u{7}\u{2028}")),
                ("e", str("")),
                ("f", Node::Bool(true)),
                ("g", Node::Int(3600)),
            ]),
            "a: \"yes\"\nb: \"1.0\"\nc: \"x: y # z\"\nd: \"tab\\tquote\\\"back\\\\slash\\u0007\\u2028\"\ne: \"\"\nf: true\ng: 3600\n",
        );
        // not in YAML's printable set: a reader refuses the whole stream
        assert_eq!(quoted("\u{fffe}\u{ffff}\u{feff}"), "\"\\ufffe\\uffff\\ufeff\"");
    }

    #[test]
    fn keys_that_a_reader_could_take_for_something_else_are_quoted() {
        check(
            map([
                ("on", str("x")),
                ("policy.json", str("y")),
                ("argocd.argoproj.io/secret-type", str("z")),
                ("1", str("w")),
            ]),
            "\"on\": \"x\"\npolicy.json: \"y\"\nargocd.argoproj.io/secret-type: \"z\"\n\"1\": \"w\"\n",
        );
    }

    #[test]
    fn nesting() {
        check(
            map([
                ("list", Node::List(vec![map([("k", str("v")), ("m", strs(&["a"]))]), str("s")])),
                ("empty", Node::List(vec![])),
                ("nested", map([("deep", map([("x", Node::Bool(false))]))])),
            ]),
            "list:\n  - k: \"v\"\n    m:\n      - \"a\"\n  - \"s\"\nempty: []\nnested:\n  deep:\n    x: false\n",
        );
    }

    #[test]
    fn literal_blocks_only_where_they_cannot_change_the_text() {
        check(map([("c", str("{\n  \"a\": 1\n}\n"))]), "c: |\n  {\n    \"a\": 1\n  }\n");
        check(map([("c", str("one\n\ntwo"))]), "c: |-\n  one\n\n  two\n");
        // a trailing space, a leading space, two final newlines, a tab, non-ASCII: quoted
        for text in ["a \nb", " a\nb", "\n a\nb", "\n\n  a", "a\nb\n\n", "a\tb\nc", "é\nb", "single line"] {
            assert_eq!(document("", &map([("c", str(text))])), format!("c: {}\n", quoted(text)), "{text:?}");
        }
    }

    #[test]
    fn comments_cannot_break_out() {
        assert_eq!(document("where\nit goes\r: x", &map([("a", str("b"))])), "# where\n# it goes?: x\na: \"b\"\n");
        // libyaml and PyYAML end a line at U+2028 and U+2029 (and U+0085)
        assert_eq!(document("a\u{2028}kind: Pod\u{2029}b\u{85}c\u{feff}", &map([])), "# a?kind: Pod?b?c?\n{}\n");
    }

    #[test]
    fn json_form() {
        assert_eq!(
            json(&map([("a", strs(&["x", "y\"z"])), ("b", map([])), ("c", Node::Bool(true))])),
            "{\n  \"a\": [\n    \"x\",\n    \"y\\\"z\"\n  ],\n  \"b\": {},\n  \"c\": true\n}"
        );
    }
}

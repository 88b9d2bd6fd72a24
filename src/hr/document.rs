//! JSON, YAML and TOML: a list of people (or `{"users": [...]}`) of scalar values.

use super::attr::allowed_keys;
use super::doc::{self, Node};
use super::error::{Collector, Location};
use super::record::{derived_column_message, unknown_key_message};
use super::{Format, Mapping};

pub(super) fn parse_document(format: Format, bytes: &[u8]) -> Result<Node, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    doc::parse(format, text)
}

/// The first key of `pairs` that appears twice, if any.
fn duplicate_key(pairs: &[(String, Node)]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .find(|k| !seen.insert(*k))
}

/// The list of people of a document (a list, `{"users": [...]}`, or
/// nothing); `None` (reported) for any other shape.
fn people(doc: Node, c: &mut Collector) -> Option<Vec<Node>> {
    match doc {
        Node::List(items) => Some(items),
        Node::Map(mut m) => {
            if let Some(k) = duplicate_key(&m) {
                c.push(
                    Location::File,
                    Some(k),
                    "duplicate key: it appears more than once at the top level",
                );
                return None;
            }
            if let Some((k, _)) = m.iter().find(|(k, _)| k != "users") {
                c.push(
                    Location::File,
                    Some(k),
                    "unexpected top-level key: expected a list of people or {\"users\": [...]} ([[users]] in TOML)",
                );
                return None;
            }
            match m.pop().map(|(_, v)| v) {
                Some(Node::List(items)) => Some(items),
                Some(Node::Null) | None => Some(Vec::new()),
                Some(other) => {
                    c.push(
                        Location::File,
                        Some("users"),
                        format!("must be a list of people, got {}", type_name(&other)),
                    );
                    None
                }
            }
        }
        Node::Null => Some(Vec::new()),
        other => {
            c.push(
                Location::File,
                None,
                format!(
                    "expected a list of people or {{\"users\": [...]}}, got {}",
                    type_name(&other)
                ),
            );
            None
        }
    }
}

pub(super) fn load_values(doc: Node, c: &mut Collector, mapping: &Mapping) {
    let Some(list) = people(doc, c) else {
        return;
    };
    for (i, item) in list.into_iter().enumerate() {
        let loc = Location::Record(i as u64 + 1);
        let Node::Map(m) = item else {
            c.push(
                loc,
                None,
                format!(
                    "a person must be an object of fields, got {}",
                    type_name(&item)
                ),
            );
            continue;
        };
        value_record(loc, &m, c, mapping);
    }
}

/// A plain decimal integer with no sign and no leading zero: the only
/// non-string scalar whose text means one thing in every format and reader.
fn is_plain_integer(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && (t == "0" || !t.starts_with('0'))
}

/// The text of one value, or why it has none.
fn scalar_text(v: &Node) -> Result<String, String> {
    match v {
        Node::Null => Ok(String::new()),
        Node::Str(s) => Ok(s.clone()),
        Node::Other { text, .. } if is_plain_integer(text) => Ok(text.clone()),
        Node::Other { what, text } => Err(format!(
            "{what} written as {text}, which readers convert differently (1e3 becomes \
             1000.0, 0x1F becomes 31, a leading + or 0 is dropped, true becomes text): \
             quote it (\"{text}\") if that exact text is meant"
        )),
        other => Err(format!(
            "expected text (or a number), got {}",
            type_name(other)
        )),
    }
}

fn value_record(loc: Location, m: &[(String, Node)], c: &mut Collector, mapping: &Mapping) {
    if let Some(k) = duplicate_key(m) {
        c.push(
            loc,
            Some(k),
            "duplicate key: this person gives it more than once; give it once",
        );
    }
    let mut texts: Vec<(&'static str, String)> = Vec::new();
    for (i, (k, v)) in m.iter().enumerate() {
        // A repeated key was reported above; its later values are not read.
        if m[..i].iter().any(|(first, _)| first == k) {
            continue;
        }
        let key = mapping.rename(k);
        if mapping.derived_fields().any(|f| f == key) {
            c.push(loc, Some(k), derived_column_message(key));
            continue;
        }
        let Some(target) = allowed_keys().find(|f| *f == key) else {
            c.push(loc, Some(k), unknown_key_message(k));
            continue;
        };
        let text = match scalar_text(v) {
            Ok(t) => t,
            Err(msg) => {
                c.push(loc, Some(k), msg);
                continue;
            }
        };
        texts.push((target, text));
    }
    // Checked and staged even after a problem above, so that every
    // problem of the person is reported (any makes the source invalid).
    c.mapped_record(mapping, loc, texts);
}

fn type_name(v: &Node) -> &'static str {
    match v {
        Node::Null => "nothing",
        Node::Other { what, .. } => what,
        Node::Str(_) => "text",
        Node::List(_) => "a list",
        Node::Map(_) => "an object",
    }
}

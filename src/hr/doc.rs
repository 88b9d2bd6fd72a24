//! JSON, YAML and TOML documents as one tree that keeps every scalar's text
//! as written in the file.
//!
//! Parsing into a generic value converts numbers on the way: `1e3` became
//! "1000.0", a 23-digit number "1.2345678901234568e+22", `+4915112345678`
//! lost its `+` and `0x1F` became "31". The loader can only refuse those
//! forms if it sees them, so each format is read keeping the literal:
//! * JSON through [`RawValue`] (each value's exact text), objects as key
//!   lists so a duplicate key is visible instead of last-one-wins;
//! * YAML in two passes: a typed pass tells quoted text from resolved
//!   scalars (numbers, booleans), a second pass driven by that shape asks
//!   for every scalar as a string, which the YAML reader answers with the
//!   scalar's text;
//! * TOML through its spanned document, slicing each literal out of the text.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A document, scalars with their text as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    /// Text (a quoted string, or a YAML plain scalar that is not a number,
    /// boolean or null).
    Str(String),
    /// Any other scalar: what it is ("a number", "a boolean", "a date") and
    /// its text as written.
    Other {
        what: &'static str,
        text: String,
    },
    List(Vec<Node>),
    /// Keys in file order, duplicates kept (the loader refuses them).
    Map(Vec<(String, Node)>),
}

/// Parse `text` as JSON, YAML or TOML (`format` is "JSON", "YAML" or "TOML").
pub fn parse(format: super::Format, text: &str) -> Result<Node, String> {
    use super::Format;
    match format {
        Format::Json => {
            let raw: Box<RawValue> =
                serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
            json(&raw).map_err(|e| format!("malformed JSON: {e}"))
        }
        Format::Yaml => {
            let shape: Node =
                serde_norway::from_str(text).map_err(|e| format!("malformed YAML: {e}"))?;
            Shaped(&shape)
                .deserialize(serde_norway::Deserializer::from_str(text))
                .map_err(|e| format!("malformed YAML: {e}"))
        }
        Format::Toml => {
            let table =
                toml::de::DeTable::parse(text).map_err(|e| format!("malformed TOML: {e}"))?;
            Ok(toml_table(text, table.get_ref()))
        }
        Format::Csv => unreachable!("CSV is streamed"),
    }
}

// --- JSON -----------------------------------------------------------------

fn json(raw: &RawValue) -> Result<Node, serde_json::Error> {
    let t = raw.get().trim();
    Ok(match t.as_bytes().first() {
        Some(b'{') => {
            let pairs: JsonPairs = serde_json::from_str(t)?;
            let mut out = Vec::with_capacity(pairs.0.len());
            for (k, v) in pairs.0 {
                out.push((k, json(&v)?));
            }
            Node::Map(out)
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(t)?;
            Node::List(items.iter().map(|v| json(v)).collect::<Result<_, _>>()?)
        }
        Some(b'"') => Node::Str(serde_json::from_str(t)?),
        Some(b'n') => Node::Null,
        Some(b't' | b'f') => Node::Other {
            what: "a boolean",
            text: t.to_owned(),
        },
        _ => Node::Other {
            what: "a number",
            text: t.to_owned(),
        },
    })
}

/// A JSON object as its (key, raw value) pairs, duplicates kept.
struct JsonPairs(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for JsonPairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonPairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<JsonPairs, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, Box<RawValue>>()? {
                    out.push(entry);
                }
                Ok(JsonPairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

// --- YAML -----------------------------------------------------------------

/// The typed pass: which scalars are text and which were resolved (their
/// text is filled in by the second pass).
impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TypedVisitor)
    }
}

struct TypedVisitor;

impl<'de> Visitor<'de> for TypedVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(other("a number"))
    }
    fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
        Ok(other("a number"))
    }
    fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
        Ok(other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(other("a number"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::Str(s.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = s.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Node::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = m.next_key::<String>()? {
            out.push((k, m.next_value::<Node>()?));
        }
        Ok(Node::Map(out))
    }
}

fn other(what: &'static str) -> Node {
    Node::Other {
        what,
        text: String::new(),
    }
}

/// The second pass: the same document, each scalar asked for as a string.
struct Shaped<'a>(&'a Node);

impl<'de> DeserializeSeed<'de> for Shaped<'_> {
    type Value = Node;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        match self.0 {
            Node::Null => IgnoredAny::deserialize(d).map(|_| Node::Null),
            Node::Str(_) => String::deserialize(d).map(Node::Str),
            Node::Other { what, .. } => {
                String::deserialize(d).map(|text| Node::Other { what, text })
            }
            Node::List(_) | Node::Map(_) => d.deserialize_any(ShapedVisitor(self.0)),
        }
    }
}

struct ShapedVisitor<'a>(&'a Node);

impl<'de> Visitor<'de> for ShapedVisitor<'_> {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the same document as the first pass")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
        let Node::List(items) = self.0 else {
            return Err(serde::de::Error::custom(
                "the document changed between passes",
            ));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match s.next_element_seed(Shaped(item))? {
                Some(n) => out.push(n),
                None => break,
            }
        }
        Ok(Node::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
        let Node::Map(pairs) = self.0 else {
            return Err(serde::de::Error::custom(
                "the document changed between passes",
            ));
        };
        let mut out = Vec::with_capacity(pairs.len());
        for (_, value) in pairs {
            let Some(k) = m.next_key::<String>()? else {
                break;
            };
            out.push((k, m.next_value_seed(Shaped(value))?));
        }
        Ok(Node::Map(out))
    }
}

// --- TOML -----------------------------------------------------------------

fn toml_table(src: &str, t: &toml::de::DeTable<'_>) -> Node {
    Node::Map(
        t.iter()
            .map(|(k, v)| (k.get_ref().to_string(), toml_value(src, v)))
            .collect(),
    )
}

fn toml_value(src: &str, v: &toml::Spanned<toml::de::DeValue<'_>>) -> Node {
    use toml::de::DeValue;
    let text = || src.get(v.span()).unwrap_or("").trim().to_owned();
    match v.get_ref() {
        DeValue::String(s) => Node::Str(s.to_string()),
        DeValue::Integer(_) | DeValue::Float(_) => Node::Other {
            what: "a number",
            text: text(),
        },
        DeValue::Boolean(_) => Node::Other {
            what: "a boolean",
            text: text(),
        },
        DeValue::Datetime(_) => Node::Other {
            what: "a date",
            text: text(),
        },
        DeValue::Array(items) => Node::List(items.iter().map(|i| toml_value(src, i)).collect()),
        DeValue::Table(t) => toml_table(src, t),
    }
}

//! Unknown keys and where each key came from.
//!
//! Before anything is deserialized, the config file (parsed with spans) and
//! every `CLIQ_SYNC__…` variable are walked against the set of valid keys, so
//! a typo is reported with its source (file and line, or the variable's name)
//! and the closest valid key, instead of serde's "unknown field" without a
//! place. The same walk records each key's [`Origin`], which later errors
//! (bad duration, bad cron line, refused URL) use to say where to look.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::Settings;

/// Prefix of the environment overrides (`CLIQ_SYNC__SECTION__KEY`).
pub const ENV_PREFIX: &str = "CLIQ_SYNC__";

/// Where a config key was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// In the config file, at this (1-based) line.
    File { path: PathBuf, line: usize },
    /// By this environment variable.
    Env { var: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
        }
    }
}

/// A key that is not a config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// The full dotted path as written (`cliq.clinet_id`).
    pub key: String,
    pub origin: Origin,
    /// It is a table (`[clq]`), not a value.
    pub is_table: bool,
    /// The closest valid key (full dotted path), if one is close enough.
    pub suggestion: Option<String>,
    /// The valid keys at that level, shown when nothing is close.
    pub valid_here: Vec<String>,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let top = !self.key.contains('.');
        let what = |k: &str| {
            if self.is_table && top {
                format!("section [{k}]")
            } else {
                format!("key {k}")
            }
        };
        write!(f, "{}: unknown {}", self.origin, what(&self.key))?;
        match &self.suggestion {
            Some(s) => {
                let s_is_table = self.is_table && top;
                let shown = if s_is_table {
                    format!("[{s}]")
                } else {
                    s.clone()
                };
                match &self.origin {
                    Origin::Env { .. } => write!(f, "; did you mean {shown} ({})?", env_var(s)),
                    Origin::File { .. } => write!(f, "; did you mean {shown}?"),
                }
            }
            None if !self.valid_here.is_empty() => {
                write!(f, " (valid here: {})", self.valid_here.join(", "))
            }
            None => Ok(()),
        }
    }
}

/// The environment variable that sets `key` (`push.enabled` →
/// `CLIQ_SYNC__PUSH__ENABLED`).
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

/// The shape of the configuration: tables and values.
#[derive(Debug, Clone)]
pub enum Node {
    Value,
    Table(BTreeMap<String, Node>),
    /// A table whose keys are the user's (`[hr.columns]`: source column
    /// names), at any depth: nothing inside is an unknown key.
    Free,
}

/// The tables with free-form keys.
const FREE_FORM: [&str; 3] = ["hr.columns", "hr.derive", "hr.values"];

impl Node {
    /// Every valid key, derived from [`Settings::exemplar`] (all optional
    /// parts filled in), so it follows the structs without a second list.
    pub fn schema() -> Node {
        let v = serde_json::to_value(Settings::exemplar()).expect("settings serialize");
        let mut root = Node::from_json(&v);
        for path in FREE_FORM {
            let (parent, last) = path.rsplit_once('.').expect("dotted");
            let mut node = &mut root;
            for seg in parent.split('.') {
                let Node::Table(m) = node else { break };
                node = m.get_mut(seg).expect("free-form table in the exemplar");
            }
            if let Node::Table(m) = node {
                m.insert(last.to_owned(), Node::Free);
            }
        }
        root
    }

    fn from_json(v: &serde_json::Value) -> Node {
        match v {
            serde_json::Value::Object(m) => Node::Table(
                m.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
            _ => Node::Value,
        }
    }

    fn children(&self) -> Option<&BTreeMap<String, Node>> {
        match self {
            Node::Table(m) => Some(m),
            Node::Value | Node::Free => None,
        }
    }

    /// Every value key as a full dotted path.
    fn leaves(&self, prefix: &str, out: &mut Vec<String>) {
        if let Node::Table(m) = self {
            for (k, n) in m {
                let path = join(prefix, k);
                match n {
                    Node::Value | Node::Free => out.push(path),
                    Node::Table(_) => n.leaves(&path, out),
                }
            }
        }
    }
}

fn join(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_owned()
    } else {
        format!("{prefix}.{k}")
    }
}

/// Where each key (dotted path, tables included) was last set.
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    /// The origin of exactly `key`.
    pub fn get(&self, key: &str) -> Option<&Origin> {
        self.0.get(key)
    }

    /// The origin of `key`, or of the nearest enclosing table that has one
    /// (`hr.managed_fields[2]` → `hr.managed_fields`).
    pub fn find(&self, key: &str) -> Option<&Origin> {
        let mut k = key.split('[').next().unwrap_or(key);
        loop {
            if let Some(o) = self.0.get(k) {
                return Some(o);
            }
            k = &k[..k.rfind('.')?];
        }
    }
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walk {
    pub origins: Origins,
    pub unknown: Vec<UnknownKey>,
    /// Values refused before deserializing (a non-boolean for a boolean key).
    pub bad_values: Vec<super::ConfigError>,
    /// The boolean keys (dotted), filled in by [`Walk::file`] / [`Walk::env_bools`].
    bools: Option<std::collections::BTreeSet<String>>,
}

/// Every boolean key (`push.enabled`), from [`Settings::exemplar`].
fn bool_keys() -> std::collections::BTreeSet<String> {
    fn walk(v: &serde_json::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                m.iter().for_each(|(k, v)| walk(v, &join(prefix, k), out))
            }
            serde_json::Value::Bool(_) => {
                out.insert(prefix.to_owned());
            }
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(
        &serde_json::to_value(Settings::exemplar()).expect("settings serialize"),
        "",
        &mut out,
    );
    out
}

/// Booleans are strict: the `config` crate would read "yes", "on" or 1 as
/// true, so `enabled = "yes"` would switch pushing on by accident of type.
fn not_a_bool(key: &str, origin: Origin, found: &str) -> super::ConfigError {
    super::ConfigError::Invalid {
        key: key.to_owned(),
        message: format!("expected true or false (a boolean), found {found}"),
        origin: Some(origin),
    }
}

fn describe(v: &toml::de::DeValue<'_>) -> String {
    use toml::de::DeValue;
    match v {
        DeValue::String(s) => format!("the string {:?}", s.as_ref()),
        DeValue::Integer(_) | DeValue::Float(_) => "a number".into(),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
        _ => "a value of another type".into(),
    }
}

impl Walk {
    fn is_bool(&mut self, key: &str) -> bool {
        self.bools.get_or_insert_with(bool_keys).contains(key)
    }

    /// Refuse `CLIQ_SYNC__…` values other than `true`/`false` for boolean keys.
    pub fn env_bools(&mut self, env: &BTreeMap<String, String>) {
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = rest
                .split("__")
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            if self.is_bool(&key) && !matches!(value.as_str(), "true" | "false") {
                let origin = Origin::Env { var: var.clone() };
                let e = not_a_bool(&key, origin, &format!("{value:?}"));
                self.bad_values.push(e);
            }
        }
    }

    /// Walk the parsed config file.
    pub fn file(&mut self, schema: &Node, path: &Path, text: &str, table: &toml::de::DeTable<'_>) {
        let lines = LineIndex::new(text);
        self.file_table(schema, schema, "", path, &lines, table);
    }

    fn file_table(
        &mut self,
        root: &Node,
        node: &Node,
        prefix: &str,
        path: &Path,
        lines: &LineIndex,
        table: &toml::de::DeTable<'_>,
    ) {
        for (k, v) in table {
            let name: &str = k.get_ref();
            let key = join(prefix, name);
            let origin = Origin::File {
                path: path.to_owned(),
                line: lines.line(k.span().start),
            };
            self.origins.0.insert(key.clone(), origin.clone());
            let sub = v.get_ref();
            if matches!(node, Node::Free) {
                // Any key; deeper tables are walked for their origins only.
                if let toml::de::DeValue::Table(t) = sub {
                    self.file_table(root, node, &key, path, lines, t);
                }
                continue;
            }
            match node.children().and_then(|c| c.get(name)) {
                None => {
                    let is_table = matches!(sub, toml::de::DeValue::Table(_));
                    self.unknown
                        .push(unknown(root, node, prefix, name, key, origin, is_table));
                }
                Some(child @ (Node::Table(_) | Node::Free)) => {
                    if let toml::de::DeValue::Table(t) = sub {
                        self.file_table(root, child, &key, path, lines, t);
                    }
                    // A value where a table belongs: serde reports the type.
                }
                Some(Node::Value) => {
                    if self.is_bool(&key) && !matches!(sub, toml::de::DeValue::Boolean(_)) {
                        self.bad_values
                            .push(not_a_bool(&key, origin, &describe(sub)));
                    }
                }
            }
        }
    }

    /// Walk the `CLIQ_SYNC__…` variables (others are ignored). Keys are
    /// lower-cased, as the `config` crate does.
    pub fn env<'a>(&mut self, schema: &Node, vars: impl IntoIterator<Item = &'a str>) {
        for var in vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let segments: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            let key = segments.join(".");
            let origin = Origin::Env {
                var: var.to_owned(),
            };
            let mut node = schema;
            let mut prefix = String::new();
            for (i, seg) in segments.iter().enumerate() {
                let last = i + 1 == segments.len();
                if matches!(node, Node::Free) {
                    break; // any key below a free-form table
                }
                match node.children().and_then(|c| c.get(seg.as_str())) {
                    None => {
                        let mut u = unknown(
                            schema,
                            node,
                            &prefix,
                            seg,
                            key.clone(),
                            origin.clone(),
                            false,
                        );
                        // CLIQ_SYNC__CLIQQ__CLIENT_ID: suggest the whole
                        // key, cliq.client_id, when the rest is valid there.
                        if let Some(s) = u.suggestion.as_ref().filter(|_| !last) {
                            let full = s
                                .split('.')
                                .chain(segments[i + 1..].iter().map(String::as_str));
                            if lookup(schema, full).is_some() {
                                u.suggestion = Some(join(s, &segments[i + 1..].join(".")));
                            }
                        }
                        self.unknown.push(u);
                        break;
                    }
                    Some(child) => {
                        prefix = join(&prefix, seg);
                        node = child;
                    }
                }
                if matches!(node, Node::Value) {
                    break; // more segments after a value: serde reports the type
                }
            }
            self.origins.0.insert(key, origin);
        }
    }
}

fn lookup<'a, 'k>(root: &'a Node, path: impl IntoIterator<Item = &'k str>) -> Option<&'a Node> {
    path.into_iter()
        .try_fold(root, |node, seg| node.children()?.get(seg))
}

#[allow(clippy::too_many_arguments)]
fn unknown(
    root: &Node,
    node: &Node,
    prefix: &str,
    name: &str,
    key: String,
    origin: Origin,
    is_table: bool,
) -> UnknownKey {
    let siblings: Vec<String> = node
        .children()
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default();
    let suggestion = closest(name, siblings.iter().map(String::as_str))
        .map(|s| join(prefix, s))
        .or_else(|| {
            // The right key in the wrong section (`[cliq] listen`): a valid
            // key elsewhere whose last segment is (nearly) the same.
            let mut all = Vec::new();
            root.leaves("", &mut all);
            let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_owned();
            let lasts: Vec<String> = all.iter().map(|k| last(k)).collect();
            let best = closest(name, lasts.iter().map(String::as_str))?;
            let mut hits = all.into_iter().filter(|k| last(k) == best);
            let hit = hits.next()?;
            // Ambiguous (`requests` is in every [limits] entry): no guess.
            hits.next().is_none().then_some(hit)
        });
    UnknownKey {
        key,
        origin,
        is_table,
        suggestion,
        valid_here: if node.children().is_some() {
            siblings
        } else {
            Vec::new()
        },
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough
/// to be a typo of it: at most a third of the name's length (at least 1).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of two neighbours as one edit (optimal
/// string alignment), so `clinet_id` is one edit from `client_id`.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// Byte offset → 1-based line number.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        Self(
            text.char_indices()
                .filter(|(_, c)| *c == '\n')
                .map(|(i, _)| i)
                .collect(),
        )
    }

    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

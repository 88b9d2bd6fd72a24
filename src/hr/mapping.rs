//! Mapping HR exports as they come: `[hr.columns]`, `[hr.derive]`,
//! `[hr.values.FIELD]`.
//!
//! The steps apply in this order, to every record, before the record is
//! validated like any other:
//! 1. **rename** (`[hr.columns]`): a source column (CSV header or
//!    JSON/YAML/TOML key, compared trimmed and case-insensitively) becomes a
//!    field (`"Work Email" = "email_id"`);
//! 2. **derive** (`[hr.derive]`): a field is computed from the renamed fields
//!    with a minijinja template (`display_name = "{{ first_name }} {{ last_name }}"`);
//! 3. **value maps** (`[hr.values.FIELD]`): a value is replaced
//!    (`"ENG" = "Engineering"`), derived values included.
//!
//! Everything is checked when the config is loaded, and each error names
//! its key (`hr.derive.display_name`): a rename to a field that does not
//! exist, two columns renamed to one field, a template that does not parse,
//! names something that is not a source field or uses a filter outside
//! [`FILTERS`], a value map on a field that does not exist. Templates are
//! compiled once, at load, with strict undefined: a template that prints a
//! field this person leaves empty is an error for that person (`default`
//! allows it), never a silently shorter name.
//!
//! A value missing from a field's value map is an error, not passed
//! through: a new HR code must not reach Cliq as it is (add it to the map,
//! even as `"X" = "X"`). Empty values stay empty (not managed here).

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{Environment, UndefinedBehavior};

/// The filters a template may use: text filters of minijinja's builtins.
/// A closed list, so a typo is caught at load rather than on the first
/// person whose value reaches it.
pub const FILTERS: [&str; 13] = [
    "capitalize",
    "d",
    "default",
    "first",
    "join",
    "last",
    "lower",
    "replace",
    "split",
    "string",
    "title",
    "trim",
    "upper",
];

/// A mapping setting that cannot work, with the config key it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct MappingError {
    /// The dotted config key (`hr.derive.display_name`).
    pub key: String,
    pub message: String,
}

fn err(key: String, message: impl Into<String>) -> MappingError {
    MappingError {
        key,
        message: message.into(),
    }
}

/// A value that cannot be derived or mapped: `(field, message)`.
pub type Problem = (String, String);

/// The compiled `[hr.columns]`, `[hr.derive]` and `[hr.values]`.
#[derive(Debug, Default, Clone)]
pub struct Mapping {
    /// Lower-cased, trimmed source column → field.
    renames: BTreeMap<String, &'static str>,
    /// Derived field → its template's name in `env`.
    derived: BTreeMap<&'static str, String>,
    env: Environment<'static>,
    /// Field → (source value → mapped value).
    values: BTreeMap<&'static str, BTreeMap<String, String>>,
}

/// The field named `name` (a source key such as `email_id` or `department`).
fn field(name: &str) -> Option<&'static str> {
    super::allowed_keys().find(|k| *k == name)
}

fn not_a_field(name: &str) -> String {
    let allowed: Vec<&str> = super::allowed_keys().collect();
    format!(
        "'{name}' is not a field{} (fields: {})",
        super::did_you_mean(name, &allowed),
        allowed.join(", ")
    )
}

impl Mapping {
    /// No mapping: every column must already be a field.
    pub fn is_empty(&self) -> bool {
        self.renames.is_empty() && self.derived.is_empty() && self.values.is_empty()
    }

    /// Check and compile the three tables.
    pub fn compile(
        columns: &BTreeMap<String, String>,
        derive: &BTreeMap<String, String>,
        values: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Mapping, MappingError> {
        let mut m = Mapping {
            env: Environment::new(), // with the builtin filters
            ..Mapping::default()
        };
        m.compile_renames(columns)?;
        m.env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Values are text for Cliq, not HTML: never escape them.
        m.env
            .set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (name, template) in derive {
            m.compile_derive(name, template)?;
        }
        for (name, map) in values {
            let key = format!("hr.values.{name}");
            let f = field(name.trim()).ok_or_else(|| err(key.clone(), not_a_field(name)))?;
            for (from, to) in map {
                if let Some(msg) = super::check_value(f, to) {
                    return Err(err(format!("{key}.{from}"), format!("the value {msg}")));
                }
            }
            let map = map
                .iter()
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            m.values.insert(f, map);
        }
        Ok(m)
    }

    fn compile_renames(&mut self, columns: &BTreeMap<String, String>) -> Result<(), MappingError> {
        let mut by_field: BTreeMap<&'static str, &str> = BTreeMap::new();
        for (column, target) in columns {
            let key = format!("hr.columns.{column}");
            let f = field(target.trim()).ok_or_else(|| err(key.clone(), not_a_field(target)))?;
            if let Some(first) = by_field.insert(f, column) {
                return Err(err(
                    key,
                    format!("'{first}' is renamed to {f} too: rename one column to each field"),
                ));
            }
            let source = column.trim().to_lowercase();
            if self.renames.insert(source, f).is_some() {
                return Err(err(
                    key,
                    "another key of [hr.columns] names the same column (columns are compared without case)",
                ));
            }
        }
        Ok(())
    }

    fn compile_derive(&mut self, name: &str, template: &str) -> Result<(), MappingError> {
        let key = format!("hr.derive.{name}");
        let f = field(name.trim()).ok_or_else(|| err(key.clone(), not_a_field(name)))?;
        check_filters(template).map_err(|m| err(key.clone(), m))?;
        self.env
            .add_template_owned(f.to_owned(), template.to_owned())
            .map_err(|e| err(key.clone(), format!("the template does not parse: {e:#}")))?;
        let tmpl = self.env.get_template(f).expect("added above");
        let used: BTreeSet<String> = tmpl.undeclared_variables(false).into_iter().collect();
        for var in used {
            if field(&var).is_none() {
                return Err(err(
                    key,
                    format!(
                        "the template uses {}; templates see the fields after [hr.columns]",
                        not_a_field(&var)
                    ),
                ));
            }
        }
        self.derived.insert(f, f.to_owned());
        Ok(())
    }

    /// The field a source column stands for after `[hr.columns]` (the
    /// column itself, trimmed, when it is not renamed).
    pub fn rename<'a>(&self, column: &'a str) -> &'a str {
        match self.renames.get(&column.trim().to_lowercase()) {
            Some(f) => f,
            None => column.trim(),
        }
    }

    /// The fields `[hr.derive]` computes.
    pub fn derived_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.derived.keys().copied()
    }

    /// Derive and map one record's values (`(field, text)` after renaming):
    /// the values to load, or every problem as `(field, message)`.
    pub fn apply(
        &self,
        values: Vec<(&'static str, String)>,
    ) -> Result<Vec<(&'static str, String)>, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut out = values;
        if !self.derived.is_empty() {
            // A field this person leaves empty is undefined, not "".
            let ctx: BTreeMap<String, minijinja::Value> = out
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| ((*k).to_owned(), minijinja::Value::from(v.trim())))
                .collect();
            let ctx = minijinja::Value::from_object(ctx);
            let mut derived = Vec::new();
            for (f, name) in &self.derived {
                let tmpl = self.env.get_template(name).expect("compiled at load");
                match tmpl.render(&ctx) {
                    Ok(text) => derived.push((*f, text)),
                    Err(e) => problems.push(((*f).to_owned(), render_error(f, &e))),
                }
            }
            out.extend(derived);
        }
        for (f, text) in &mut out {
            let Some(map) = self.values.get(f) else {
                continue;
            };
            let v = text.trim();
            if v.is_empty() {
                continue;
            }
            match map.get(v) {
                Some(to) => *text = to.clone(),
                None => problems.push(((*f).to_owned(), unmapped(f, v, map))),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

fn render_error(field: &str, e: &minijinja::Error) -> String {
    let hint = if e.kind() == minijinja::ErrorKind::UndefinedError {
        " (a field the template uses is empty for this person; `| default(\"\")` allows that)"
    } else {
        ""
    };
    format!("hr.derive.{field} cannot be computed: {}{hint}", e.kind())
}

fn unmapped(field: &str, value: &str, map: &BTreeMap<String, String>) -> String {
    let known: Vec<&str> = map.keys().map(String::as_str).take(20).collect();
    format!(
        "'{value}' is not in [hr.values.{field}] (mapped: {}): add it there, \
         even as \"{value}\" = \"{value}\"; unmapped values are never pushed",
        known.join(", ")
    )
}

/// Every filter a template applies, checked against [`FILTERS`]. A small
/// scan of the tags (`{{ … }}`, `{% … %}`) outside string literals: a name
/// after `|` is a filter.
fn check_filters(template: &str) -> Result<(), String> {
    for name in filter_names(template) {
        if !FILTERS.contains(&name.as_str()) {
            return Err(format!(
                "unknown filter '{name}'{} (filters: {})",
                super::did_you_mean(&name, &FILTERS),
                FILTERS.join(", ")
            ));
        }
    }
    Ok(())
}

fn filter_names(template: &str) -> Vec<String> {
    let chars: Vec<char> = template.chars().collect();
    let (mut out, mut i, mut in_tag, mut quote) = (Vec::new(), 0, false, None::<char>);
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match (in_tag, quote) {
            (false, _) if c == '{' && matches!(next, Some('{' | '%')) => {
                in_tag = true;
                i += 1;
            }
            (true, Some(_)) if c == '\\' => i += usize::from(next.is_some()),
            (true, Some(q)) if c == q => quote = None,
            (true, None) if c == '"' || c == '\'' => quote = Some(c),
            (true, None) if matches!(c, '}' | '%') && next == Some('}') => {
                in_tag = false;
                i += 1;
            }
            (true, None) if c == '|' => {
                let rest: String = chars[i + 1..]
                    .iter()
                    .skip_while(|c| c.is_whitespace())
                    .take_while(|c| c.is_alphanumeric() || **c == '_')
                    .collect();
                out.push(rest);
            }
            _ => {}
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;

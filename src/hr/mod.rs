//! The HR source: the people and attributes that a push makes true in Cliq.
//!
//! One record per person, keyed by `email_id` (case-insensitive), in CSV
//! (header row), JSON or YAML (a list of objects or `{"users": [...]}`) or
//! TOML (`[[users]]` tables). The keys are the Cliq user fields plus three
//! by-name conveniences resolved through the mirror at plan time
//! (`department`, `designation`, `reporting_to_email`).
//!
//! The whole file is validated before anything is planned and **every**
//! error is collected (bad or duplicate email, unknown column with a "did
//! you mean", wrong value type, malformed CSV, both forms of one attribute),
//! each naming the file, the line (CSV) or record index (JSON/YAML/TOML) and
//! the field. An empty value means "not managed here": it is never pushed as
//! a blank.
//!
//! Values are kept as trimmed text; numbers and booleans become text.
//! CSV is read record by record (100,000 rows load in well under a second in
//! a release build); JSON, YAML and TOML are parsed whole by their crates.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// An attribute of a Cliq user that the HR source can manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    FirstName,
    LastName,
    DisplayName,
    Phone,
    Mobile,
    Timezone,
    Language,
    Country,
    EmployeeId,
    Extension,
    WorkLocation,
    Department,
    Designation,
    ReportingTo,
}

impl Attr {
    pub const ALL: [Attr; 14] = [
        Attr::FirstName,
        Attr::LastName,
        Attr::DisplayName,
        Attr::Phone,
        Attr::Mobile,
        Attr::Timezone,
        Attr::Language,
        Attr::Country,
        Attr::EmployeeId,
        Attr::Extension,
        Attr::WorkLocation,
        Attr::Department,
        Attr::Designation,
        Attr::ReportingTo,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The attribute's name (as in `[hr] managed_fields`).
    pub fn name(self) -> &'static str {
        match self {
            Attr::FirstName => "first_name",
            Attr::LastName => "last_name",
            Attr::DisplayName => "display_name",
            Attr::Phone => "phone",
            Attr::Mobile => "mobile",
            Attr::Timezone => "timezone",
            Attr::Language => "language",
            Attr::Country => "country",
            Attr::EmployeeId => "employee_id",
            Attr::Extension => "extension",
            Attr::WorkLocation => "work_location",
            Attr::Department => "department",
            Attr::Designation => "designation",
            Attr::ReportingTo => "reporting_to",
        }
    }

    /// The key sent to Cliq (`PUT`/`POST /users`).
    pub fn cliq_key(self) -> &'static str {
        match self {
            Attr::Department => "department_id",
            Attr::Designation => "designation_id",
            Attr::ReportingTo => "reporting_to_zuid",
            other => other.name(),
        }
    }

    /// The `users` column of the mirror holding the current value.
    pub fn mirror_column(self) -> &'static str {
        match self {
            Attr::Department => "department_id",
            Attr::Designation => "designation_id",
            Attr::ReportingTo => "reporting_to_id",
            other => other.name(),
        }
    }

    /// The mirror column holding the referenced object's name, if any.
    pub fn name_column(self) -> Option<&'static str> {
        match self {
            Attr::Department => Some("department_name"),
            Attr::Designation => Some("designation_name"),
            Attr::ReportingTo => Some("reporting_to_name"),
            _ => None,
        }
    }

    pub fn from_name(s: &str) -> Option<Attr> {
        Attr::ALL.into_iter().find(|a| a.name() == s)
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a value in the source designates the attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// The value itself (for references: the Cliq id).
    Direct,
    /// A department or designation name, resolved through the mirror.
    Name,
    /// The manager's email, resolved through the mirror.
    Email,
}

/// One value of a record: how it is given and the trimmed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrValue {
    pub kind: ValueKind,
    pub text: Box<str>,
}

/// The source columns / keys besides `email_id`: (key, attribute, kind).
pub const COLUMNS: [(&str, Attr, ValueKind); 17] = [
    ("first_name", Attr::FirstName, ValueKind::Direct),
    ("last_name", Attr::LastName, ValueKind::Direct),
    ("display_name", Attr::DisplayName, ValueKind::Direct),
    ("phone", Attr::Phone, ValueKind::Direct),
    ("mobile", Attr::Mobile, ValueKind::Direct),
    ("timezone", Attr::Timezone, ValueKind::Direct),
    ("language", Attr::Language, ValueKind::Direct),
    ("country", Attr::Country, ValueKind::Direct),
    ("employee_id", Attr::EmployeeId, ValueKind::Direct),
    ("extension", Attr::Extension, ValueKind::Direct),
    ("work_location", Attr::WorkLocation, ValueKind::Direct),
    ("department_id", Attr::Department, ValueKind::Direct),
    ("designation_id", Attr::Designation, ValueKind::Direct),
    ("reporting_to_zuid", Attr::ReportingTo, ValueKind::Direct),
    ("department", Attr::Department, ValueKind::Name),
    ("designation", Attr::Designation, ValueKind::Name),
    ("reporting_to_email", Attr::ReportingTo, ValueKind::Email),
];

/// Every accepted key, `email_id` first.
pub fn allowed_keys() -> impl Iterator<Item = &'static str> {
    std::iter::once("email_id").chain(COLUMNS.iter().map(|c| c.0))
}

fn column(key: &str) -> Option<(Attr, ValueKind)> {
    COLUMNS.iter().find(|c| c.0 == key).map(|&(_, a, k)| (a, k))
}

/// Where a record is in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The whole file (unreadable, wrong top-level shape).
    File,
    /// A CSV line (1-based; the header is line 1).
    Line(u64),
    /// A record of a JSON/YAML/TOML list (1-based).
    Record(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::Line(n) => write!(f, "line {n}"),
            Location::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// One person of the HR source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrRecord {
    /// Lowercased, trimmed.
    pub email: String,
    pub location: Location,
    /// Per [`Attr`] (by [`Attr::index`]); `None` = not managed here.
    pub values: [Option<HrValue>; 14],
}

impl HrRecord {
    pub fn get(&self, a: Attr) -> Option<&HrValue> {
        self.values[a.index()].as_ref()
    }
}

/// A loaded, validated HR source.
#[derive(Debug, Clone)]
pub struct HrSource {
    pub path: PathBuf,
    pub records: Vec<HrRecord>,
}

impl HrSource {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// One problem in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrError {
    pub file: PathBuf,
    pub location: Location,
    /// The column / key concerned, if any.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for HrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.location != Location::File {
            write!(f, ": {}", self.location)?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// At most this many errors are kept (the rest are counted).
pub const MAX_ERRORS: usize = 200;

/// Every problem found in a source (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HrErrors {
    pub errors: Vec<HrError>,
    /// Errors beyond [`MAX_ERRORS`], not kept.
    pub more: usize,
}

impl HrErrors {
    pub fn total(&self) -> usize {
        self.errors.len() + self.more
    }
}

impl fmt::Display for HrErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .errors
            .first()
            .map(|e| e.file.display().to_string())
            .unwrap_or_default();
        write!(
            f,
            "the HR source {file} is invalid ({} error{}); nothing was planned or pushed:",
            self.total(),
            if self.total() == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        if self.more > 0 {
            write!(f, "\n  … and {} more", self.more)?;
        }
        Ok(())
    }
}

/// The file formats, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Yaml,
    Toml,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "yaml" | "yml" => Format::Yaml,
            "toml" => Format::Toml,
            _ => return None,
        })
    }
}

/// Validate `[hr] managed_fields`: each name an attribute (`department`,
/// `reporting_to`, …) or one of its source keys (`department_id`,
/// `reporting_to_email`, …). Returns the managed attributes (all when `None`).
pub fn managed_attrs(names: Option<&[String]>) -> Result<Vec<Attr>, String> {
    let Some(names) = names else {
        return Ok(Attr::ALL.to_vec());
    };
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for n in names {
        let t = n.trim();
        let a = Attr::from_name(t).or_else(|| column(t).map(|c| c.0));
        match a {
            Some(a) => {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            None => {
                let candidates: Vec<&str> = Attr::ALL
                    .iter()
                    .map(|a| a.name())
                    .chain(COLUMNS.iter().map(|c| c.0))
                    .collect();
                bad.push(format!(
                    "'{t}' is not a field{}",
                    did_you_mean(t, &candidates)
                ));
            }
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "{} (allowed: {})",
            bad.join("; "),
            Attr::ALL.map(|a| a.name()).join(", ")
        ))
    }
}

/// Load and validate the source at `path` (format by extension).
pub fn load(path: &Path) -> Result<HrSource, HrErrors> {
    let mut c = Collector::new(path);
    let Some(format) = Format::of(path) else {
        c.push(
            Location::File,
            None,
            "unknown format: the file name must end in .csv, .json, .yaml, .yml or .toml",
        );
        return Err(c.into_errors());
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            c.push(Location::File, None, format!("cannot read the file: {e}"));
            return Err(c.into_errors());
        }
    };
    load_bytes(path, format, &bytes)
}

/// Load from bytes already read (tests, benchmarks); `path` names the file in errors.
pub fn load_bytes(path: &Path, format: Format, bytes: &[u8]) -> Result<HrSource, HrErrors> {
    let mut c = Collector::new(path);
    let records = match format {
        Format::Csv => load_csv(bytes, &mut c),
        other => match parse_document(other, bytes) {
            Ok(v) => load_values(v, &mut c),
            Err(msg) => {
                c.push(Location::File, None, msg);
                Vec::new()
            }
        },
    };
    if c.errors.is_empty() && c.more == 0 {
        Ok(HrSource {
            path: path.to_owned(),
            records,
        })
    } else {
        Err(c.into_errors())
    }
}

struct Collector {
    file: PathBuf,
    errors: Vec<HrError>,
    more: usize,
    /// email → where it was first seen.
    seen: HashMap<String, Location>,
}

impl Collector {
    fn new(path: &Path) -> Self {
        Collector {
            file: path.to_owned(),
            errors: Vec::new(),
            more: 0,
            seen: HashMap::new(),
        }
    }

    fn push(&mut self, location: Location, field: Option<&str>, message: impl Into<String>) {
        if self.errors.len() >= MAX_ERRORS {
            self.more += 1;
            return;
        }
        self.errors.push(HrError {
            file: self.file.clone(),
            location,
            field: field.map(str::to_owned),
            message: message.into(),
        });
    }

    fn into_errors(self) -> HrErrors {
        HrErrors {
            errors: self.errors,
            more: self.more,
        }
    }

    /// Check the email and every value of one record; `None` if it is invalid.
    fn record<'a>(
        &mut self,
        location: Location,
        email: Option<&str>,
        values: impl Iterator<Item = (&'a str, Attr, ValueKind, &'a str)>,
    ) -> Option<HrRecord> {
        let mut ok = true;
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            None => {
                self.push(
                    location,
                    Some("email_id"),
                    "missing: every record needs an email_id",
                );
                ok = false;
                String::new()
            }
            Some(e) if !valid_email(e) => {
                self.push(
                    location,
                    Some("email_id"),
                    format!("'{e}' is not a valid email address"),
                );
                ok = false;
                String::new()
            }
            Some(e) => {
                let lower = e.to_lowercase();
                if let Some(first) = self.seen.get(&lower) {
                    let first = *first;
                    self.push(
                        location,
                        Some("email_id"),
                        format!(
                            "duplicate email '{e}' (emails are case-insensitive): first at {first}"
                        ),
                    );
                    ok = false;
                } else {
                    self.seen.insert(lower.clone(), location);
                }
                lower
            }
        };
        let mut out: [Option<HrValue>; 14] = Default::default();
        let mut from: [&str; 14] = [""; 14];
        for (key, attr, kind, text) in values {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let slot = &mut out[attr.index()];
            if slot.is_some() {
                self.push(
                    location,
                    Some(key),
                    format!(
                        "both `{}` and `{key}` are set; give {} one way only",
                        from[attr.index()],
                        attr.name()
                    ),
                );
                ok = false;
                continue;
            }
            let text = if kind == ValueKind::Email {
                if !valid_email(text) {
                    self.push(
                        location,
                        Some(key),
                        format!("'{text}' is not a valid email address"),
                    );
                    ok = false;
                    continue;
                }
                text.to_lowercase()
            } else {
                text.to_owned()
            };
            from[attr.index()] = key;
            *slot = Some(HrValue {
                kind,
                text: text.into_boxed_str(),
            });
        }
        ok.then_some(HrRecord {
            email,
            location,
            values: out,
        })
    }
}

/// A plausible email: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn unknown_key_message(key: &str) -> String {
    let allowed: Vec<&str> = allowed_keys().collect();
    format!(
        "unknown column{} (allowed: {})",
        did_you_mean(key, &allowed),
        allowed.join(", ")
    )
}

/// `"; did you mean 'x'?"` for the closest candidate within a small edit distance.
pub fn did_you_mean(key: &str, candidates: &[&str]) -> String {
    let k = key.trim().to_ascii_lowercase();
    let best = candidates
        .iter()
        .map(|c| (levenshtein(&k, c), *c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= (k.chars().count() / 3).max(2) => format!("; did you mean '{c}'?"),
        _ => String::new(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------

fn load_csv(bytes: &[u8], c: &mut Collector) -> Vec<HrRecord> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            c.push(
                Location::Line(1),
                None,
                format!("malformed CSV header: {e}"),
            );
            return Vec::new();
        }
    };
    if headers.is_empty() {
        c.push(
            Location::Line(1),
            None,
            "the file is empty: a header row is required",
        );
        return Vec::new();
    }
    // Column index → what it holds.
    let mut email_col = None;
    let mut cols: Vec<(usize, &'static str, Attr, ValueKind)> = Vec::new();
    let mut seen_names: Vec<String> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let name = h.trim().to_ascii_lowercase();
        if seen_names.contains(&name) {
            c.push(
                Location::Line(1),
                Some(h),
                "this column appears twice in the header",
            );
            continue;
        }
        seen_names.push(name.clone());
        if name == "email_id" {
            email_col = Some(i);
        } else if let Some(&(key, attr, kind)) = COLUMNS.iter().find(|col| col.0 == name) {
            cols.push((i, key, attr, kind));
        } else {
            c.push(Location::Line(1), Some(h), unknown_key_message(h));
        }
    }
    if email_col.is_none() {
        c.push(
            Location::Line(1),
            Some("email_id"),
            "the header has no email_id column (required)",
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                // A blank line (a lone empty field) is skipped by the csv crate;
                // a record of only empty fields is ignored too.
                if rec.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                let email = email_col.and_then(|i| rec.get(i));
                let values = cols
                    .iter()
                    .map(|&(i, key, attr, kind)| (key, attr, kind, rec.get(i).unwrap_or("")));
                if let Some(r) = c.record(Location::Line(line), email, values) {
                    out.push(r);
                }
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("malformed CSV: {len} fields where the header has {expected_len}"),
                    csv::ErrorKind::Utf8 { err, .. } => {
                        format!("malformed CSV: invalid UTF-8 in field {}", err.field() + 1)
                    }
                    _ => format!("malformed CSV: {e}"),
                };
                let field = match e.kind() {
                    csv::ErrorKind::Utf8 { err, .. } => headers.get(err.field()),
                    _ => None,
                };
                c.push(Location::Line(line), field, msg);
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    break;
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// JSON, YAML, TOML
// ---------------------------------------------------------------------------

fn parse_document(format: Format, bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}")),
        Format::Yaml => serde_norway::from_str(text).map_err(|e| format!("malformed YAML: {e}")),
        Format::Toml => {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| format!("malformed TOML: {e}"))?;
            serde_json::to_value(table).map_err(|e| format!("TOML: {e}"))
        }
        Format::Csv => unreachable!("CSV is streamed"),
    }
}

fn load_values(doc: Value, c: &mut Collector) -> Vec<HrRecord> {
    let list = match doc {
        Value::Array(items) => items,
        Value::Object(mut m) => {
            if let Some(k) = m.keys().find(|k| *k != "users") {
                c.push(
                    Location::File,
                    Some(k),
                    "unexpected top-level key: expected a list of people or {\"users\": [...]} ([[users]] in TOML)",
                );
                return Vec::new();
            }
            match m.remove("users") {
                Some(Value::Array(items)) => items,
                Some(Value::Null) | None => Vec::new(),
                Some(other) => {
                    c.push(
                        Location::File,
                        Some("users"),
                        format!("must be a list of people, got {}", type_name(&other)),
                    );
                    return Vec::new();
                }
            }
        }
        Value::Null => Vec::new(),
        other => {
            c.push(
                Location::File,
                None,
                format!(
                    "expected a list of people or {{\"users\": [...]}}, got {}",
                    type_name(&other)
                ),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        let loc = Location::Record(i as u64 + 1);
        let Value::Object(m) = item else {
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
        if let Some(r) = value_record(loc, &m, c) {
            out.push(r);
        }
    }
    out
}

fn value_record(loc: Location, m: &Map<String, Value>, c: &mut Collector) -> Option<HrRecord> {
    let mut ok = true;
    let mut email: Option<String> = None;
    let mut texts: Vec<(&'static str, Attr, ValueKind, String)> = Vec::new();
    for (k, v) in m {
        let key = k.trim();
        let target = if key == "email_id" {
            None
        } else if let Some(&(name, attr, kind)) = COLUMNS.iter().find(|col| col.0 == key) {
            Some((name, attr, kind))
        } else {
            c.push(loc, Some(k), unknown_key_message(k));
            ok = false;
            continue;
        };
        let text = match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                c.push(
                    loc,
                    Some(k),
                    format!("expected text (or a number), got {}", type_name(other)),
                );
                ok = false;
                continue;
            }
        };
        match target {
            None => email = Some(text),
            Some((name, attr, kind)) => texts.push((name, attr, kind, text)),
        }
    }
    let rec = c.record(
        loc,
        email.as_deref(),
        texts
            .iter()
            .map(|(k, a, kind, t)| (*k, *a, *kind, t.as_str())),
    );
    if ok {
        rec
    } else {
        None
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;

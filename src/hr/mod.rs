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
//! Values are kept as trimmed text. The reading is strict, because a lenient
//! reader turns a broken export into a valid-looking one with people or
//! values missing:
//! * CSV quotes are checked before parsing ([`quotes`]): an unterminated
//!   quote, a quoted field crossing a line, text after a closing quote;
//!   every row must have the header's number of fields.
//! * A value may not contain a control character (C0 including tab and
//!   newline, DEL, C1, bidi controls; [`crate::text::is_unsafe`]) nor be
//!   longer than its field's limit ([`max_len`]).
//! * A non-string scalar (JSON/YAML/TOML) is taken only when it is a plain
//!   decimal integer, as written; floats, exponents, signs, leading zeros,
//!   hex/octal/binary, booleans and dates are refused with "quote it"
//!   ([`doc`] keeps each literal's text). A duplicate key is refused.
//!
//! CSV is read record by record (100,000 rows load in well under a second in
//! a release build); JSON, YAML and TOML are parsed whole.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::mirror::Column;
use crate::text::{describe, escape, is_unsafe};
use doc::Node;

pub mod doc;
pub mod mapping;
pub mod quotes;

pub use mapping::{Mapping, MappingError};

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
    pub fn mirror_column(self) -> Column {
        match self {
            Attr::FirstName => Column::FirstName,
            Attr::LastName => Column::LastName,
            Attr::DisplayName => Column::DisplayName,
            Attr::Phone => Column::Phone,
            Attr::Mobile => Column::Mobile,
            Attr::Timezone => Column::Timezone,
            Attr::Language => Column::Language,
            Attr::Country => Column::Country,
            Attr::EmployeeId => Column::EmployeeId,
            Attr::Extension => Column::Extension,
            Attr::WorkLocation => Column::WorkLocation,
            Attr::Department => Column::DepartmentId,
            Attr::Designation => Column::DesignationId,
            Attr::ReportingTo => Column::ReportingToId,
        }
    }

    /// The mirror column holding the referenced object's name, if any.
    pub fn name_column(self) -> Option<Column> {
        match self {
            Attr::Department => Some(Column::DepartmentName),
            Attr::Designation => Some(Column::DesignationName),
            Attr::ReportingTo => Some(Column::ReportingToName),
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
        // Messages quote values from the file: never let them drive the terminal.
        if let Some(field) = &self.field {
            write!(f, ": field `{}`", escape(field))?;
        }
        write!(f, ": {}", escape(&self.message))
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
    load_mapped(path, &Mapping::default())
}

/// As [`load`], through `[hr.columns]`, `[hr.derive]` and `[hr.values]`.
pub fn load_mapped(path: &Path, mapping: &Mapping) -> Result<HrSource, HrErrors> {
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
    load_bytes_mapped(path, format, &bytes, mapping)
}

/// Load the content of `path` already read (the daemon reads the file
/// once, checks it has settled, and loads exactly those bytes).
pub fn load_read(path: &Path, bytes: &[u8], mapping: &Mapping) -> Result<HrSource, HrErrors> {
    match Format::of(path) {
        Some(format) => load_bytes_mapped(path, format, bytes, mapping),
        None => load_mapped(path, mapping),
    }
}

/// Load from bytes already read (tests, benchmarks); `path` names the file in errors.
pub fn load_bytes(path: &Path, format: Format, bytes: &[u8]) -> Result<HrSource, HrErrors> {
    load_bytes_mapped(path, format, bytes, &Mapping::default())
}

/// As [`load_bytes`], through a mapping.
pub fn load_bytes_mapped(
    path: &Path,
    format: Format,
    bytes: &[u8],
    mapping: &Mapping,
) -> Result<HrSource, HrErrors> {
    let mut c = Collector::new(path);
    let records = match format {
        Format::Csv => load_csv(bytes, &mut c, mapping),
        other => match parse_document(other, bytes) {
            Ok(v) => load_values(v, &mut c, mapping),
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

    /// Derive and map one record's values (`(field, text)` after
    /// `[hr.columns]`), then check it as [`Collector::record`] does: the
    /// reader's checks (control characters, lengths) see the final values.
    fn mapped_record(
        &mut self,
        mapping: &Mapping,
        location: Location,
        values: Vec<(&'static str, String)>,
    ) -> Option<HrRecord> {
        let values = match mapping.apply(values) {
            Ok(v) => v,
            Err(problems) => {
                for (field, msg) in problems {
                    self.push(location, Some(&field), msg);
                }
                return None;
            }
        };
        let email = values.iter().find(|(k, _)| *k == "email_id");
        let email = email.map(|(_, v)| v.as_str());
        let fields = values
            .iter()
            .filter_map(|(k, v)| column(k).map(|(attr, kind)| (*k, attr, kind, v.as_str())));
        self.record(location, email, fields)
    }

    /// Check the email and every value of one record; `None` if it is invalid.
    fn record<'a>(
        &mut self,
        location: Location,
        email: Option<&str>,
        values: impl Iterator<Item = (&'a str, Attr, ValueKind, &'a str)>,
    ) -> Option<HrRecord> {
        let mut ok = true;
        if let Some(msg) = email.and_then(|e| check_value("email_id", e)) {
            self.push(location, Some("email_id"), msg);
            return None;
        }
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
            if let Some(msg) = check_value(key, text) {
                self.push(location, Some(key), msg);
                ok = false;
                continue;
            }
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

/// The longest value accepted for a source key, in characters. Generous
/// for real data, far below what a corrupted or hostile export produces
/// (10 kB, 1 MB): names 100 (Cliq's own name fields are short), emails 254
/// (the SMTP path limit, RFC 5321), phone numbers 40 (E.164 is 15 digits;
/// room for spacing and an extension), ids 40 (Cliq ids are 19 digits),
/// extensions 20, timezones and languages 64 (IANA names are under 40),
/// countries 100, locations and department/designation names 255.
pub fn max_len(key: &str) -> usize {
    match key {
        "email_id" | "reporting_to_email" => 254,
        "first_name" | "last_name" | "display_name" | "country" => 100,
        "phone" | "mobile" => 40,
        "employee_id" | "department_id" | "designation_id" | "reporting_to_zuid" => 40,
        "extension" => 20,
        "timezone" | "language" => 64,
        _ => 255,
    }
}

/// Why `raw` (untrimmed) is not an acceptable value of `key`, if it is not.
fn check_value(key: &str, raw: &str) -> Option<String> {
    if let Some((i, c)) = raw.chars().enumerate().find(|(_, c)| is_unsafe(*c)) {
        let shown: String = raw.chars().take(60).collect();
        return Some(format!(
            "contains a control character ({}) at character {}: HR values must be \
             single-line printable text (tab, newline, DEL, C1 and bidi controls are \
             refused in every field); the value starts '{}'",
            describe(c),
            i + 1,
            escape(&shown)
        ));
    }
    let len = raw.trim().chars().count();
    let max = max_len(key);
    (len > max).then(|| {
        format!("is {len} characters long; at most {max} are allowed for {key} (see the README)")
    })
}

fn derived_column_message(field: &str) -> String {
    format!(
        "{field} is derived by [hr.derive] {field}, and this column gives it too: \
         remove the column or the template"
    )
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

fn load_csv(bytes: &[u8], c: &mut Collector, mapping: &Mapping) -> Vec<HrRecord> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Broken quoting makes every later row doubtful: refuse the file whole.
    if let Err(q) = quotes::check(bytes) {
        let header = csv::Reader::from_reader(bytes).headers().ok().cloned();
        let field = header.filter(|_| q.line > 1);
        c.push(
            Location::Line(q.line),
            field.as_ref().and_then(|h| h.get(q.field)),
            format!("malformed CSV: {}", q.message),
        );
        return Vec::new();
    }
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
    let mut cols: Vec<(usize, &'static str)> = Vec::new();
    let mut seen_names: Vec<String> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let name = mapping.rename(h).to_ascii_lowercase();
        if mapping.derived_fields().any(|f| f == name) {
            c.push(Location::Line(1), Some(h), derived_column_message(&name));
            continue;
        }
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
            cols.push((i, "email_id"));
        } else if let Some(&(key, ..)) = COLUMNS.iter().find(|col| col.0 == name) {
            cols.push((i, key));
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
                let values = cols
                    .iter()
                    .map(|&(i, key)| (key, rec.get(i).unwrap_or("").to_owned()))
                    .collect();
                if let Some(r) = c.mapped_record(mapping, Location::Line(line), values) {
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

fn parse_document(format: Format, bytes: &[u8]) -> Result<Node, String> {
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

fn load_values(doc: Node, c: &mut Collector, mapping: &Mapping) -> Vec<HrRecord> {
    let list = match doc {
        Node::List(items) => items,
        Node::Map(mut m) => {
            if let Some(k) = duplicate_key(&m) {
                c.push(
                    Location::File,
                    Some(k),
                    "duplicate key: it appears more than once at the top level",
                );
                return Vec::new();
            }
            if let Some((k, _)) = m.iter().find(|(k, _)| k != "users") {
                c.push(
                    Location::File,
                    Some(k),
                    "unexpected top-level key: expected a list of people or {\"users\": [...]} ([[users]] in TOML)",
                );
                return Vec::new();
            }
            match m.pop().map(|(_, v)| v) {
                Some(Node::List(items)) => items,
                Some(Node::Null) | None => Vec::new(),
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
        Node::Null => Vec::new(),
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
        if let Some(r) = value_record(loc, &m, c, mapping) {
            out.push(r);
        }
    }
    out
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

fn value_record(
    loc: Location,
    m: &[(String, Node)],
    c: &mut Collector,
    mapping: &Mapping,
) -> Option<HrRecord> {
    let mut ok = true;
    if let Some(k) = duplicate_key(m) {
        c.push(
            loc,
            Some(k),
            "duplicate key: this person gives it more than once; give it once",
        );
        ok = false;
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
            ok = false;
            continue;
        }
        let Some(target) = allowed_keys().find(|f| *f == key) else {
            c.push(loc, Some(k), unknown_key_message(k));
            ok = false;
            continue;
        };
        let text = match scalar_text(v) {
            Ok(t) => t,
            Err(msg) => {
                c.push(loc, Some(k), msg);
                ok = false;
                continue;
            }
        };
        texts.push((target, text));
    }
    let rec = c.mapped_record(mapping, loc, texts);
    if ok {
        rec
    } else {
        None
    }
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

#[cfg(test)]
mod tests;

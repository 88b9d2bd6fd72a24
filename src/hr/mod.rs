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
//! a release build); JSON, YAML and TOML are parsed whole. The records go
//! to a stage on disk as they are read ([`staging`]), and duplicate emails
//! are found there once all are in.

use std::path::Path;

use error::Collector;
use record::check_value;

mod attr;
mod csv;
pub mod doc;
mod document;
mod error;
pub mod mapping;
pub mod quotes;
mod record;
mod staging;

pub use attr::{allowed_keys, managed_attrs, Attr, ValueKind, COLUMNS};
pub use error::{HrError, HrErrors, Location, MAX_ERRORS};
pub use mapping::{Mapping, MappingError};
pub use record::{max_len, valid_email, HrRecord, HrValue};
pub use staging::{from_staged, HrSource};

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
/// Load and validate the source at `path` (format by extension).
pub async fn load(path: &Path) -> Result<HrSource, HrErrors> {
    load_mapped(path, &Mapping::default()).await
}

/// As [`load`], through `[hr.columns]`, `[hr.derive]` and `[hr.values]`.
pub async fn load_mapped(path: &Path, mapping: &Mapping) -> Result<HrSource, HrErrors> {
    let mut c = Collector::new(path);
    let Some(format) = Format::of(path) else {
        c.push(
            Location::File,
            None,
            "unknown format: the file name must end in .csv, .json, .yaml, .yml or .toml",
        );
        return Err(c.into_errors());
    };
    let bytes = match tokio::fs::read(path).await {
        Ok(b) => b,
        Err(e) => {
            c.push(Location::File, None, format!("cannot read the file: {e}"));
            return Err(c.into_errors());
        }
    };
    staging::load_staged(path, format, bytes, mapping).await
}

/// Load the content of `path` already read (the daemon reads the file
/// once, checks it has settled, and loads exactly those bytes). Takes
/// them: the parser's thread owns what it reads, and a copy of a large
/// export would double the load's memory for nothing.
pub async fn load_read(
    path: &Path,
    bytes: Vec<u8>,
    mapping: &Mapping,
) -> Result<HrSource, HrErrors> {
    match Format::of(path) {
        Some(format) => staging::load_staged(path, format, bytes, mapping).await,
        None => load_mapped(path, mapping).await,
    }
}

/// Load from bytes already read (tests, benchmarks); `path` names the file in errors.
pub async fn load_bytes(path: &Path, format: Format, bytes: &[u8]) -> Result<HrSource, HrErrors> {
    load_bytes_mapped(path, format, bytes, &Mapping::default()).await
}

/// As [`load_bytes`], through a mapping.
pub async fn load_bytes_mapped(
    path: &Path,
    format: Format,
    bytes: &[u8],
    mapping: &Mapping,
) -> Result<HrSource, HrErrors> {
    staging::load_staged(path, format, bytes.to_vec(), mapping).await
}

/// Parse `bytes` as `format`: problems and records to the collector.
fn parse_into(format: Format, bytes: &[u8], c: &mut Collector, mapping: &Mapping) {
    match format {
        Format::Csv => csv::load_csv(bytes, c, mapping),
        other => match document::parse_document(other, bytes) {
            Ok(v) => document::load_values(v, c, mapping),
            Err(msg) => c.push(Location::File, None, msg),
        },
    }
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

#[cfg(test)]
mod tests;

//! CSV: quotes checked first, then read record by record against the header.

use super::attr::COLUMNS;
use super::error::{Collector, Location};
use super::record::{derived_column_message, unknown_key_message};
use super::{quotes, Mapping};

pub(super) fn load_csv(bytes: &[u8], c: &mut Collector, mapping: &Mapping) {
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
        return;
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
            return;
        }
    };
    if headers.is_empty() {
        c.push(
            Location::Line(1),
            None,
            "the file is empty: a header row is required",
        );
        return;
    }
    let Some(cols) = columns(&headers, c, mapping) else {
        return;
    };
    read_rows(&mut rdr, &headers, &cols, c, mapping)
}

/// Column index → the source key it holds, checked against the header
/// rules (known, not twice, not derived); `None` without `email_id`.
fn columns(
    headers: &csv::StringRecord,
    c: &mut Collector,
    mapping: &Mapping,
) -> Option<Vec<(usize, &'static str)>> {
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
        return None;
    }
    Some(cols)
}

/// Every row after the header: a record each, or the problems found.
fn read_rows(
    rdr: &mut csv::Reader<&[u8]>,
    headers: &csv::StringRecord,
    cols: &[(usize, &'static str)],
    c: &mut Collector,
    mapping: &Mapping,
) {
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
                c.mapped_record(mapping, Location::Line(line), values);
            }
            Err(e) => {
                row_error(&e, headers, c);
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    break;
                }
            }
        }
    }
}

/// Report a row the csv reader refused (wrong field count, bad UTF-8, …).
fn row_error(e: &csv::Error, headers: &csv::StringRecord, c: &mut Collector) {
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
}

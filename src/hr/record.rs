//! One person of the HR source and the checks every value goes through.

use super::attr::{allowed_keys, column};
use super::error::{Collector, Location};
use super::{did_you_mean, Attr, Mapping, ValueKind};
use crate::text::{describe, escape, is_unsafe};

/// One value of a record: how it is given and the trimmed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HrValue {
    pub kind: ValueKind,
    pub text: Box<str>,
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

impl Collector {
    /// Derive and map one record's values (`(field, text)` after
    /// `[hr.columns]`), then check it as [`Collector::record`] does: the
    /// reader's checks (control characters, lengths) see the final values.
    pub(super) fn mapped_record(
        &mut self,
        mapping: &Mapping,
        location: Location,
        values: Vec<(&'static str, String)>,
    ) {
        let values = match mapping.apply(values) {
            Ok(v) => v,
            Err(problems) => {
                for (field, msg) in problems {
                    self.push(location, Some(&field), msg);
                }
                return;
            }
        };
        let email = values.iter().find(|(k, _)| *k == "email_id");
        let email = email.map(|(_, v)| v.as_str());
        let fields = values
            .iter()
            .filter_map(|(k, v)| column(k).map(|(attr, kind)| (*k, attr, kind, v.as_str())));
        self.record(location, email, fields)
    }

    /// The record's email, lowercased, and whether it is acceptable
    /// (present and plausible; a second record of it is found by the stage).
    fn email(&mut self, location: Location, email: Option<&str>) -> (String, bool) {
        match email.map(str::trim).filter(|e| !e.is_empty()) {
            None => {
                self.push(
                    location,
                    Some("email_id"),
                    "missing: every record needs an email_id",
                );
                (String::new(), false)
            }
            Some(e) if !valid_email(e) => {
                self.push(
                    location,
                    Some("email_id"),
                    format!("'{e}' is not a valid email address"),
                );
                (String::new(), false)
            }
            Some(e) => (e.to_lowercase(), true),
        }
    }

    /// Check the email and every value of one record (problems to the
    /// collector) and stage it.
    fn record<'a>(
        &mut self,
        location: Location,
        email: Option<&str>,
        values: impl Iterator<Item = (&'a str, Attr, ValueKind, &'a str)>,
    ) {
        if let Some(msg) = email.and_then(|e| check_value("email_id", e)) {
            self.push(location, Some("email_id"), msg);
            return;
        }
        let given = email.map(str::trim).unwrap_or_default().to_owned();
        let (email, email_ok) = self.email(location, email);
        let mut out: [Option<HrValue>; 14] = Default::default();
        let mut from: [&str; 14] = [""; 14];
        for (key, attr, kind, text) in values {
            let Some(text) = self.checked(location, key, text) else {
                continue;
            };
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
                continue;
            }
            let Some(text) = self.normalised(location, key, kind, text) else {
                continue;
            };
            from[attr.index()] = key;
            *slot = Some(HrValue {
                kind,
                text: text.into_boxed_str(),
            });
        }
        // Every record with a usable email goes to the stage, valid or not,
        // so that a duplicate of a broken record is still reported;
        // any error makes the whole source invalid.
        if email_ok {
            let record = HrRecord {
                email,
                location,
                values: out,
            };
            self.emit(super::staging::to_staged(record, given));
        }
    }

    /// The trimmed value, `None` if it is empty (not managed here) or
    /// refused (reported).
    fn checked<'t>(&mut self, location: Location, key: &str, raw: &'t str) -> Option<&'t str> {
        if let Some(msg) = check_value(key, raw) {
            self.push(location, Some(key), msg);
            return None;
        }
        Some(raw.trim()).filter(|t| !t.is_empty())
    }

    /// The value as kept: emails lowercased, once checked (`None`: refused,
    /// reported).
    fn normalised(
        &mut self,
        location: Location,
        key: &str,
        kind: ValueKind,
        text: &str,
    ) -> Option<String> {
        if kind != ValueKind::Email {
            return Some(text.to_owned());
        }
        if !valid_email(text) {
            self.push(
                location,
                Some(key),
                format!("'{text}' is not a valid email address"),
            );
            return None;
        }
        Some(text.to_lowercase())
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
pub(super) fn check_value(key: &str, raw: &str) -> Option<String> {
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

pub(super) fn derived_column_message(field: &str) -> String {
    format!(
        "{field} is derived by [hr.derive] {field}, and this column gives it too: \
         remove the column or the template"
    )
}

pub(super) fn unknown_key_message(key: &str) -> String {
    let allowed: Vec<&str> = allowed_keys().collect();
    format!(
        "unknown column{} (allowed: {})",
        did_you_mean(key, &allowed),
        allowed.join(", ")
    )
}

//! The user layouts (`GET /users/layout`).

use serde_json::{json, Value};

pub(crate) const LAYOUT_NAMES: [&str; 4] = [
    "quick_view",
    "profile_details_android",
    "profile_details_ios",
    "profile_details_web",
];

/// A section: label, unique name, and its fields (label, unique name).
type Sec = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);
/// Every section, in order.
const SECTIONS: [Sec; 4] = [
    (
        "Basic Information",
        "basic_info",
        &[
            ("First Name", "first_name"),
            ("Last Name", "last_name"),
            ("Display Name", "display_name"),
            ("Email", "email_id"),
        ],
    ),
    (
        "Work Information",
        "work_info",
        &[
            ("Department", "department"),
            ("Designation", "designation"),
            ("Reporting To", "reporting_to"),
            ("Employee ID", "employee_id"),
            ("Work Location", "work_location"),
            ("Extension", "extension"),
        ],
    ),
    (
        "Contact Information",
        "contact_info",
        &[
            ("Mobile", "mobile"),
            ("Phone", "phone"),
            ("Time Zone", "timezone"),
        ],
    ),
    (
        "Additional Information",
        "custom_fields",
        &[("Cost Center", "cost_center"), ("Shirt Size", "shirt_size")],
    ),
];

/// The layout (`GET /users/layout?unique_name=`) for one of [`LAYOUT_NAMES`].
pub(crate) fn layout(unique_name: &str) -> Option<Value> {
    let idx = LAYOUT_NAMES.iter().position(|n| *n == unique_name)?;
    // The quick view shows the first two sections only; the phone apps hide
    // the custom fields.
    let count = if idx == 0 { 2 } else { 4 };
    let sections: Vec<Value> = SECTIONS
        .iter()
        .take(count)
        .enumerate()
        .map(|(s, sec)| section(idx, s, sec))
        .collect();
    Some(json!({"data": [{"unique_name": unique_name, "sections": sections}]}))
}

/// Section number `s` (from 0) of layout number `idx`.
fn section(idx: usize, s: usize, (label, name, fields): &Sec) -> Value {
    let custom = *name == "custom_fields";
    let fields: Vec<Value> = fields
        .iter()
        .enumerate()
        .map(|(f, (flabel, fname))| {
            // The phone apps (android, ios) hide the custom fields.
            let hidden = custom && (idx == 1 || idx == 2);
            json!({
                "label": flabel,
                "unique_name": fname,
                "status": if hidden { "hidden" } else { "active" },
                "sequence_number": f + 1,
                "system_defined": !custom,
                "id": format!("1901318000002{:03}{:03}", s + 1, f + 1),
            })
        })
        .collect();
    json!({
        "label": label,
        "unique_name": name,
        "sequence_number": s + 1,
        "system_defined": !custom,
        "fields": fields,
    })
}

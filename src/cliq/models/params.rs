//! Query parameters of `GET /users` and the config enums that shape
//! requests (`modified_after` format, update body shape).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $var),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let t = s.trim().to_ascii_lowercase();
                $name::ALL.iter().copied().find(|v| v.as_str() == t).ok_or_else(|| {
                    let all: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!(concat!("unknown ", stringify!($name), " '{}' (expected one of: {})"), s, all.join(", "))
                })
            }
        }
    };
}

str_enum!(
    /// `status` filter of `GET /users`.
    UserStatus {
        Active => "active",
        Inactive => "inactive",
        Pending => "pending",
        ImportedActive => "imported_active",
        ImportedInactive => "imported_inactive",
    }
);

str_enum!(
    /// `plan_type` filter of `GET /users`.
    PlanType {
        Paid => "paid",
        Free => "free",
    }
);

str_enum!(
    /// One value of the `fields` query parameter.
    UserField {
        DisplayName => "display_name",
        Mobile => "mobile",
        Department => "department",
        Designation => "designation",
    }
);

str_enum!(
    /// How `modified_after` is written (`[cliq] modified_after_format`).
    /// The documentation says "date-time" (RFC 3339, the default); some
    /// clients send epoch milliseconds.
    #[derive(Default)]
    ModifiedAfterFormat {
        #[default]
        Rfc3339 => "rfc3339",
        EpochMillis => "epoch_millis",
    }
);

str_enum!(
    /// The body shape of `PUT /users/{id}` (`[cliq] update_body`).
    /// `wrapped` (documented, default): `{"users": [{email_id, …changed}]}`;
    /// `flat`: the changed-fields object alone.
    #[derive(Default)]
    UpdateBodyShape {
        #[default]
        Wrapped => "wrapped",
        Flat => "flat",
    }
);

impl ModifiedAfterFormat {
    pub fn format(self, t: DateTime<Utc>) -> String {
        match self {
            ModifiedAfterFormat::Rfc3339 => t.to_rfc3339_opts(SecondsFormat::Secs, true),
            ModifiedAfterFormat::EpochMillis => t.timestamp_millis().to_string(),
        }
    }
}

/// The `fields` query parameter: `all`, or a list of the documented names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fields {
    All,
    List(Vec<UserField>),
}

impl Fields {
    /// The query value (`all` or `display_name,mobile`); `None` for an empty list.
    pub fn to_query_value(&self) -> Option<String> {
        match self {
            Fields::All => Some("all".into()),
            Fields::List(l) if l.is_empty() => None,
            Fields::List(l) => {
                let mut seen: Vec<&str> = Vec::new();
                for f in l {
                    if !seen.contains(&f.as_str()) {
                        seen.push(f.as_str());
                    }
                }
                Some(seen.join(","))
            }
        }
    }
}

/// Parameters of `GET /users` (the cursor is passed separately).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListUsersParams {
    pub status: Option<UserStatus>,
    pub plan_type: Option<PlanType>,
    pub fields: Option<Fields>,
    /// 1..=100; the client fills in its configured page size when `None`.
    pub limit: Option<u32>,
    /// `sort_by=usage`.
    pub sort_by_usage: bool,
    pub modified_after: Option<DateTime<Utc>>,
}

impl ListUsersParams {
    /// Every field (`fields=all`), the form a mirror wants.
    pub fn all_fields() -> Self {
        ListUsersParams {
            fields: Some(Fields::All),
            ..Default::default()
        }
    }

    /// The query pairs, in a stable order. Only documented parameters are
    /// ever produced (any other one is a 400 `extra_param_found`).
    pub fn to_query(&self, fmt: ModifiedAfterFormat) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(s) = self.status {
            q.push(("status", s.as_str().to_string()));
        }
        if let Some(p) = self.plan_type {
            q.push(("plan_type", p.as_str().to_string()));
        }
        if let Some(f) = self.fields.as_ref().and_then(Fields::to_query_value) {
            q.push(("fields", f));
        }
        if let Some(l) = self.limit {
            q.push(("limit", l.clamp(1, 100).to_string()));
        }
        if self.sort_by_usage {
            q.push(("sort_by", "usage".to_string()));
        }
        if let Some(t) = self.modified_after {
            q.push(("modified_after", fmt.format(t)));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params_query() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T10:20:30.456Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = ListUsersParams {
            status: Some(UserStatus::ImportedActive),
            plan_type: Some(PlanType::Paid),
            fields: Some(Fields::List(vec![
                UserField::Department,
                UserField::Mobile,
                UserField::Department,
            ])),
            limit: Some(500),
            sort_by_usage: true,
            modified_after: Some(t),
        };
        let q = p.to_query(ModifiedAfterFormat::Rfc3339);
        assert_eq!(
            q,
            vec![
                ("status", "imported_active".to_string()),
                ("plan_type", "paid".to_string()),
                ("fields", "department,mobile".to_string()),
                ("limit", "100".to_string()),
                ("sort_by", "usage".to_string()),
                ("modified_after", "2026-03-01T10:20:30Z".to_string()),
            ]
        );
        let q = p.to_query(ModifiedAfterFormat::EpochMillis);
        assert_eq!(q.last().unwrap().1, t.timestamp_millis().to_string());
        assert!(ListUsersParams::default()
            .to_query(ModifiedAfterFormat::Rfc3339)
            .is_empty());
        assert_eq!(
            ListUsersParams::all_fields().to_query(ModifiedAfterFormat::Rfc3339),
            vec![("fields", "all".to_string())]
        );
    }

    #[test]
    fn config_enums_parse() {
        assert_eq!(
            "epoch_millis".parse::<ModifiedAfterFormat>().unwrap(),
            ModifiedAfterFormat::EpochMillis
        );
        assert_eq!(
            "Flat".parse::<UpdateBodyShape>().unwrap(),
            UpdateBodyShape::Flat
        );
        let e = "nested".parse::<UpdateBodyShape>().unwrap_err();
        assert!(e.contains("wrapped, flat"), "{e}");
        let s: UpdateBodyShape = serde_json::from_str("\"wrapped\"").unwrap();
        assert_eq!(s, UpdateBodyShape::default());
        assert_eq!(ModifiedAfterFormat::default(), ModifiedAfterFormat::Rfc3339);
    }
}

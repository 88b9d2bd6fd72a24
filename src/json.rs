//! Every JSON document cliq-sync prints (`--json` on `sync`, `push`, `plan`,
//! `status`, …) carries a top-level `"schema_version"`, so scripts can tell
//! a format they know from a newer one. Bump it on an incompatible change
//! (a field removed, renamed or retyped); added fields keep it.

use serde::Serialize;

/// The version of every JSON document's format.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// `body`'s fields with `schema_version` first.
#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// `body` (a struct or map) as a pretty-printed JSON document with its
/// `schema_version`.
pub fn document<T: Serialize>(body: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Document {
        schema_version: SCHEMA_VERSION,
        body,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_comes_first_beside_the_fields() {
        #[derive(serde::Serialize)]
        struct Body {
            status: &'static str,
        }
        let text = super::document(&Body { status: "ok" }).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["status"], "ok");
        assert!(text.find("schema_version") < text.find("status"));
    }
}

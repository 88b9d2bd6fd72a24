//! The words of `sync_runs`: a run's kind and its status. A leaf module (it
//! uses nothing else of the mirror), so the store, the progress hub, the
//! daemon's metrics and the run queries can all name them without naming
//! each other.
//!
//! One spelling everywhere, lowercase: the database column, `status
//! --json`, log fields (`kind = %kind`), metrics labels and messages. Each
//! enum's word table (`as_str`) is the only one: `Display`, `FromStr` and
//! the sqlx encoding read it, and serde's `rename_all = "lowercase"` is
//! pinned to it by the tests below.

use serde::{Deserialize, Serialize};

/// Declares the sqlx TEXT encoding, `Display` and `FromStr` of a word enum
/// from its `ALL` and `as_str`, so no second spelling can exist.
macro_rules! words {
    ($t:ident) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $t {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                $t::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownWord {
                        what: stringify!($t),
                        word: s.to_owned(),
                    })
            }
        }

        impl sqlx::Type<sqlx::Sqlite> for $t {
            fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
                <&str as sqlx::Type<sqlx::Sqlite>>::type_info()
            }
            fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Sqlite>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for $t {
            fn decode(
                value: <sqlx::Sqlite as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Sqlite>>::decode(value)?;
                Ok(text.parse()?)
            }
        }
    };
}

/// A word that is not one of a run's kinds or statuses (a row written by
/// something else, or a typo in a query).
#[derive(Debug, thiserror::Error)]
#[error("{word:?} is not a {what}")]
pub struct UnknownWord {
    what: &'static str,
    word: String,
}

/// The `kind` column of `sync_runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Full,
    Incremental,
    Push,
}

impl RunKind {
    pub const ALL: [RunKind; 3] = [RunKind::Full, RunKind::Incremental, RunKind::Push];

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Full => "full",
            RunKind::Incremental => "incremental",
            RunKind::Push => "push",
        }
    }

    /// For messages: "full pull", "incremental pull", "push".
    pub fn describe(self) -> &'static str {
        match self {
            RunKind::Full => "full pull",
            RunKind::Incremental => "incremental pull",
            RunKind::Push => "push",
        }
    }
}

words!(RunKind);

/// The kinds of pull: the part of [`RunKind`] a pull can be, spelled as
/// `RunKind` spells it (a pull cannot be a `push`, so the type says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullKind {
    Full,
    Incremental,
}

impl From<PullKind> for RunKind {
    fn from(k: PullKind) -> RunKind {
        match k {
            PullKind::Full => RunKind::Full,
            PullKind::Incremental => RunKind::Incremental,
        }
    }
}

impl PullKind {
    pub fn as_str(self) -> &'static str {
        RunKind::from(self).as_str()
    }
}

impl std::fmt::Display for PullKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `status` of a run: `running` until it ends, then one of the final
/// ones ([`RunStatus::FINAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Ok,
    Failed,
    Stopped,
    /// Stopped by a safety threshold before it wrote what it would have
    /// (e.g. a full pull's removals); `error` says why and how to confirm.
    Held,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Ok,
        RunStatus::Failed,
        RunStatus::Stopped,
        RunStatus::Held,
    ];
    /// The statuses a run can end with.
    pub const FINAL: [RunStatus; 4] = [
        RunStatus::Ok,
        RunStatus::Failed,
        RunStatus::Stopped,
        RunStatus::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Stopped => "stopped",
            RunStatus::Held => "held",
        }
    }
}

words!(RunStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_display_and_from_str_spell_every_word_as_the_table_does() {
        let kinds = RunKind::ALL.map(|k| (k.as_str(), serde_json::to_value(k).unwrap(), k));
        for (word, json, k) in kinds {
            assert_eq!(json, word);
            assert_eq!(k.to_string(), word);
            assert_eq!(word.parse::<RunKind>().unwrap(), k);
            assert_eq!(serde_json::from_value::<RunKind>(json).unwrap(), k);
        }
        for k in [PullKind::Full, PullKind::Incremental] {
            assert_eq!(serde_json::to_value(k).unwrap(), RunKind::from(k).as_str());
            assert_eq!(k.to_string(), RunKind::from(k).as_str());
        }
        for s in RunStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.to_string(), s.as_str());
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), s);
        }
        assert!("Full".parse::<RunKind>().is_err());
        assert_eq!(
            "bogus".parse::<RunStatus>().unwrap_err().to_string(),
            "\"bogus\" is not a RunStatus"
        );
    }
}

//! Keys that take one word of a closed set (`[sync] teams`, `[log] format`,
//! …): deserialised straight into their enum, so a value is checked and
//! parsed in one step, and a typo is refused with the choices and the
//! closest one ("did you mean"); the loader adds the key and where it was
//! set (file:line or variable).

use serde::{Deserialize, Serialize};

use crate::cliq::models::{ModifiedAfterFormat, UpdateBodyShape};

/// An enum a config key takes, spelled by `word`.
pub trait Choice: Copy + Sized + 'static {
    const ALL: &'static [Self];
    fn word(self) -> &'static str;
}

/// `must be "a", "b" or "c", found "x"; did you mean "b"?`
pub fn refuse<T: Choice>(text: &str) -> String {
    let words: Vec<String> = T::ALL.iter().map(|v| format!("{:?}", v.word())).collect();
    let list = match words.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    let mut message = format!("must be {list}, found {text:?}");
    let guess = super::keys::closest(&text.to_ascii_lowercase(), T::ALL.iter().map(|v| v.word()));
    if let Some(g) = guess {
        message.push_str(&format!("; did you mean {g:?}?"));
    }
    message
}

/// The `deserialize_with` of a [`Choice`] key (exact spelling only: a
/// config file says what it means).
pub fn one_of<'de, D: serde::Deserializer<'de>, T: Choice>(d: D) -> Result<T, D::Error> {
    let text = String::deserialize(d)?;
    T::ALL
        .iter()
        .copied()
        .find(|v| v.word() == text)
        .ok_or_else(|| serde::de::Error::custom(refuse::<T>(&text)))
}

/// Declares a config enum: variants and words in one table, serialised by
/// the word, deserialised through [`one_of`] (by hand rather than derived:
/// serde's "unknown variant" names a Rust type, not the operator's choices).
macro_rules! choice {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $var),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }

        impl Choice for $name {
            const ALL: &'static [$name] = $name::ALL;
            fn word(self) -> &'static str {
                self.as_str()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                one_of(d)
            }
        }
    };
}

choice!(
    /// `[sync] teams`: which users' team memberships a pull fetches.
    TeamsMode {
        Off => "off",
        /// Users new or changed in this run.
        #[default]
        Changed => "changed",
        /// Every user, spread over runs.
        All => "all",
    }
);

choice!(
    /// `[sync] status_listing`: one listing without a status filter (the
    /// simulator, like our reading of the API, returns every status), or one
    /// listing per status, for an API that filters by default.
    StatusListing {
        #[default]
        Combined => "combined",
        PerStatus => "per_status",
    }
);

choice!(
    /// `[log] format`: human lines (coloured on a terminal) or flat JSON.
    LogFormat {
        #[default]
        Pretty => "pretty",
        Json => "json",
    }
);

choice!(
    /// `[push] on_threshold`: a push over `max_changes_per_run` or
    /// `max_source_drop`.
    OnThreshold {
        /// Keep the plan (`held_plans`) until `cliq-sync approve ID` releases it;
        /// the same plan held again on later ticks is the same incident.
        #[default]
        Hold => "hold",
        /// Record a failed push run (and `push_failed`) every time.
        Fail => "fail",
    }
);

choice!(
    /// `[push] on_conflict`: a field HR manages was changed in Cliq (by hand,
    /// by an admin) since our last push of it, and HR wants another value.
    OnConflict {
        /// Push HR's value anyway; the plan marks it (today's behaviour).
        #[default]
        Overwrite => "overwrite",
        /// Leave Cliq's value; the plan lists the field as skipped.
        Skip => "skip",
        /// Hold the whole push (a `held` run, exit 3) until reviewed.
        Hold => "hold",
    }
);

/// The Cliq client's own enums, taken by `[cliq]` keys as they are.
impl Choice for ModifiedAfterFormat {
    const ALL: &'static [Self] = ModifiedAfterFormat::ALL;
    fn word(self) -> &'static str {
        self.as_str()
    }
}

impl Choice for UpdateBodyShape {
    const ALL: &'static [Self] = UpdateBodyShape::ALL;
    fn word(self) -> &'static str {
        self.as_str()
    }
}

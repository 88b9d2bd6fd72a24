//! Who a push may write: `[push] include`, `exclude` (email globs) and
//! `exclude_departments` (Cliq department names).
//!
//! A person is out of scope when their email matches an `exclude` glob, or
//! their department is an excluded one, or no `include` glob matches their
//! email; the first rule that applies, in that order, is the one the plan
//! names. Emails and department names compare case-insensitively. Globs are
//! `globset`'s syntax (`*`, `?`, `[abc]`, `{a,b}`), compiled once at load so a
//! bad one is a config error naming its entry (`push.exclude[1]`).
//!
//! Departments protect both ways: a person whose department in the mirror is
//! excluded, and a person whose HR record moves them into one, are not
//! written (an excluded department is a protected set: nobody leaves or
//! joins it through a push).
//!
//! It lives with the settings because it is one: parsed, and so validated,
//! when they load; the plan only applies it.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// A scope entry that cannot be used, with the entry's key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ScopeError {
    /// `push.include`, `push.exclude[1]`, `push.exclude_departments[0]`.
    pub key: String,
    pub message: String,
}

/// Compiled email globs, with the text each was written as.
#[derive(Debug, Clone)]
struct Globs {
    set: GlobSet,
    patterns: Vec<String>,
}

impl Globs {
    fn new(key: &str, patterns: &[String]) -> Result<Self, ScopeError> {
        let mut b = GlobSetBuilder::new();
        for (i, p) in patterns.iter().enumerate() {
            b.add(glob(&format!("{key}[{i}]"), p)?);
        }
        let set = b.build().map_err(|e| ScopeError {
            key: key.to_owned(),
            message: format!("cannot compile the globs: {e}"),
        })?;
        Ok(Self {
            set,
            patterns: patterns.to_vec(),
        })
    }

    /// The first pattern (in the order written) that matches.
    fn first_match(&self, email: &str) -> Option<&str> {
        let hits = self.set.matches(email);
        hits.iter().min().map(|&i| self.patterns[i].as_str())
    }
}

fn glob(key: &str, pattern: &str) -> Result<Glob, ScopeError> {
    if pattern.trim().is_empty() {
        return Err(ScopeError {
            key: key.to_owned(),
            message: "an empty glob matches nobody; remove it".into(),
        });
    }
    // Emails are compared lowercased on both sides: `CEO@Example.com` in HR
    // is `ceo@example.com` here.
    GlobBuilder::new(pattern.trim())
        .case_insensitive(true)
        .build()
        .map_err(|e| ScopeError {
            key: key.to_owned(),
            message: format!(
                "{pattern:?} is not a valid glob ({}); use * for any text, ? for one \
                 character, [abc] for a set, e.g. \"svc-*@example.com\"",
                e.kind()
            ),
        })
}

/// Why a person is out of scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfScope {
    /// The rule as the plan names it: `exclude "svc-*@example.com"`,
    /// `exclude_departments "Board"`, `not in include`.
    pub rule: String,
    /// The rule in a sentence, for the operator.
    pub reason: String,
}

/// The department a person has in the mirror, or the one HR gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepartmentOf<'a> {
    Mirror(&'a str),
    Hr(&'a str),
}

/// `[push] include`, `exclude` and `exclude_departments`, compiled.
#[derive(Debug, Clone)]
pub struct Scope {
    include: Globs,
    exclude: Globs,
    /// (lowercased, as written).
    departments: Vec<(String, String)>,
    /// include = ["*"] and nothing excluded: the fast path.
    everyone: bool,
}

impl Default for Scope {
    fn default() -> Self {
        Self::new(&["*".into()], &[], &[]).expect("the default scope compiles")
    }
}

impl Scope {
    pub fn new(
        include: &[String],
        exclude: &[String],
        exclude_departments: &[String],
    ) -> Result<Self, ScopeError> {
        if include.is_empty() {
            return Err(ScopeError {
                key: "push.include".into(),
                message: "[] would let the push write nobody; use [\"*\"] for everyone \
                          (or [push] enabled = false to stop pushing)"
                    .into(),
            });
        }
        let mut departments = Vec::with_capacity(exclude_departments.len());
        for (i, d) in exclude_departments.iter().enumerate() {
            if d.trim().is_empty() {
                return Err(ScopeError {
                    key: format!("push.exclude_departments[{i}]"),
                    message: "an empty department name; remove it".into(),
                });
            }
            departments.push((d.trim().to_lowercase(), d.trim().to_owned()));
        }
        Ok(Self {
            everyone: include.iter().all(|p| p.trim() == "*")
                && exclude.is_empty()
                && departments.is_empty(),
            include: Globs::new("push.include", include)?,
            exclude: Globs::new("push.exclude", exclude)?,
            departments,
        })
    }

    pub fn from_settings(p: &crate::config::PushSettings) -> Result<Self, ScopeError> {
        Self::new(&p.include, &p.exclude, &p.exclude_departments)
    }

    /// Everyone may be written (no rule to check).
    pub fn is_everyone(&self) -> bool {
        self.everyone
    }

    /// `None`: the push may write this person. `departments`: every
    /// department the person has in the mirror and the one HR gives them.
    pub fn check(&self, email: &str, departments: &[DepartmentOf<'_>]) -> Option<OutOfScope> {
        if self.everyone {
            return None;
        }
        if let Some(p) = self.exclude.first_match(email) {
            return Some(OutOfScope {
                rule: format!("exclude {p:?}"),
                reason: format!("the email matches [push] exclude {p:?}"),
            });
        }
        for d in departments {
            let name = match d {
                DepartmentOf::Mirror(n) | DepartmentOf::Hr(n) => n.trim().to_lowercase(),
            };
            if let Some((_, written)) = self.departments.iter().find(|(l, _)| *l == name) {
                let reason = match d {
                    DepartmentOf::Mirror(n) => format!("in department {n:?} in Cliq"),
                    DepartmentOf::Hr(n) => format!("HR puts them in department {n:?}"),
                };
                return Some(OutOfScope {
                    rule: format!("exclude_departments {written:?}"),
                    reason: format!("{reason}, which [push] exclude_departments protects"),
                });
            }
        }
        if self.include.first_match(email).is_none() {
            return Some(OutOfScope {
                rule: "not in include".into(),
                reason: "the email matches no [push] include glob".into(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rules_apply_in_order_and_ignore_case() {
        let s = Scope::new(
            &v(&["*@eng.example"]),
            &v(&["ceo@example.com", "svc-*@example.com"]),
            &v(&["Board"]),
        )
        .unwrap();
        assert_eq!(s.check("ann@eng.example", &[]), None);
        assert_eq!(s.check("ANN@Eng.Example", &[]), None);
        let rule = |e: &str, d: &[DepartmentOf]| s.check(e, d).map(|o| o.rule);
        assert_eq!(
            rule("SVC-Build@example.com", &[]).as_deref(),
            Some("exclude \"svc-*@example.com\"")
        );
        assert_eq!(
            rule("ceo@EXAMPLE.com", &[]).as_deref(),
            Some("exclude \"ceo@example.com\"")
        );
        assert_eq!(
            rule("bob@example.com", &[]).as_deref(),
            Some("not in include")
        );
        assert_eq!(
            rule("ann@eng.example", &[DepartmentOf::Hr(" board ")]).as_deref(),
            Some("exclude_departments \"Board\"")
        );
        assert_eq!(
            rule(
                "ann@eng.example",
                &[DepartmentOf::Mirror("Sales"), DepartmentOf::Mirror("BOARD")]
            )
            .as_deref(),
            Some("exclude_departments \"Board\"")
        );
        // A pattern written in capitals matches a lowercased email too.
        let caps = Scope::new(&v(&["*"]), &v(&["CEO@Example.COM"]), &[]).unwrap();
        assert!(caps.check("ceo@example.com", &[]).is_some());
    }

    #[test]
    fn the_default_scope_is_everyone() {
        let s = Scope::default();
        assert!(s.is_everyone());
        assert_eq!(s.check("anyone@anywhere.example", &[]), None);
    }

    #[test]
    fn a_bad_glob_names_its_entry() {
        let e = Scope::new(&v(&["*"]), &v(&["a@x", "svc-[*"]), &[]).unwrap_err();
        assert_eq!(e.key, "push.exclude[1]");
        assert!(e.message.contains("svc-[*"), "{e}");
    }
}

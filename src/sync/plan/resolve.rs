//! Resolve: HR's values as the ids Cliq takes, through the index, and the
//! management cycles the planned manager changes would make.

use std::collections::{HashMap, HashSet};

use super::index::Index;
use crate::hr::{Attr, HrRecord, ValueKind};
use crate::mirror::plan_join::ManagerLink;

/// How one field resolved.
pub(super) enum Resolved {
    /// The value to send, and for references the name of the object.
    Value(String, Option<String>),
    /// Not pushed: kind (`unresolved`, `ambiguous`) and reason.
    Blocked(&'static str, String),
}

/// Resolve `a` of `rec`; `None` when HR does not manage it here.
pub(super) fn resolve(index: &Index, rec: &HrRecord, a: Attr) -> Option<Resolved> {
    let v = rec.get(a)?;
    let text = v.text.as_ref();
    Some(match (a, v.kind) {
        (_, ValueKind::Direct) => {
            let name = match a {
                Attr::Department => index.departments.by_id.get(text).cloned(),
                Attr::Designation => index.designations.by_id.get(text).cloned(),
                Attr::ReportingTo => index.by_id.get(text).and_then(|u| u.display.clone()),
                _ => None,
            };
            Resolved::Value(text.to_owned(), name)
        }
        (Attr::Department | Attr::Designation, ValueKind::Name) => by_name(index, a, text),
        (_, _) => match index.by_email.get(text).map(Vec::as_slice) {
            Some([u]) => Resolved::Value(u.id.clone(), u.display.clone()),
            Some(us) if us.len() > 1 => Resolved::Blocked(
                "ambiguous",
                format!(
                    "reporting_to_email '{text}' matches {} Cliq users",
                    us.len()
                ),
            ),
            _ => Resolved::Blocked(
                "unresolved",
                format!("reporting_to_email '{text}' is not a Cliq user in the mirror"),
            ),
        },
    })
}

/// A department or designation given by name.
fn by_name(index: &Index, a: Attr, text: &str) -> Resolved {
    let names = if a == Attr::Department {
        &index.departments
    } else {
        &index.designations
    };
    match names.by_name.get(&text.to_lowercase()).map(Vec::as_slice) {
        Some([id]) => Resolved::Value(id.clone(), names.by_id.get(id).cloned()),
        Some(ids) if ids.len() > 1 => Resolved::Blocked(
            "ambiguous",
            format!(
                "{a} '{text}' matches {} ids in the mirror ({}); give {}_id instead",
                ids.len(),
                ids.join(", "),
                a
            ),
        ),
        _ => Resolved::Blocked(
            "unresolved",
            format!(
                "no user in the mirror has {a} '{text}', so its id is unknown; give {a}_id instead"
            ),
        ),
    }
}

/// The people whose planned manager change would make them report to
/// themselves, directly (`self_report`) or around a cycle (`cycle`), once
/// every planned change is applied: user id → (kind, reason naming the
/// people). `desired` holds the planned changes (user id → manager id);
/// everyone else keeps their manager in the mirror (`links`), so a loop
/// through people HR does not manage is seen too. Only a changed edge is
/// blocked: a loop already in Cliq that HR merely restates changes nothing.
///
/// `Err` lists the ids whose link is needed and not in `links` yet: the
/// caller looks them up (a missing user as `None`) and asks again, so only
/// the chains above the changed people are ever read.
pub(super) fn manager_loops(
    desired: &HashMap<String, String>,
    links: &HashMap<String, Option<ManagerLink>>,
) -> Result<HashMap<String, (&'static str, String)>, Vec<String>> {
    let mut missing: HashSet<String> = desired
        .keys()
        .filter(|id| !links.contains_key(id.as_str()))
        .cloned()
        .collect();
    let mut out = HashMap::new();
    for start in desired.keys() {
        let mut path = vec![start.clone()];
        let mut seen: HashSet<String> = HashSet::from([start.clone()]);
        loop {
            let last = path.last().expect("non-empty");
            let next = match (desired.get(last), links.get(last)) {
                (Some(m), _) => Some(m.clone()),
                (None, Some(l)) => l.as_ref().and_then(|l| l.manager_id.clone()),
                (None, None) => {
                    missing.insert(last.clone());
                    break;
                }
            };
            let Some(next) = next else { break };
            if next == *start {
                out.insert(start.clone(), cycle(&path, start, links));
                break;
            }
            // A loop that `start` only leads into is blocked at its own members.
            if !seen.insert(next.clone()) {
                break;
            }
            path.push(next);
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing.into_iter().collect())
    }
}

/// The block of a person whose change closes the loop `path` → `start`.
fn cycle(
    path: &[String],
    start: &str,
    links: &HashMap<String, Option<ManagerLink>>,
) -> (&'static str, String) {
    let name = |id: &str| {
        links
            .get(id)
            .and_then(|l| l.as_ref()?.email.clone())
            .unwrap_or_else(|| format!("user {id}"))
    };
    if path.len() == 1 {
        let reason = format!(
            "{} would report to themselves (reporting_to resolves to their own id {start}); fix the HR value",
            name(start)
        );
        return ("self_report", reason);
    }
    let people: Vec<String> = path.iter().map(|id| name(id)).collect();
    let reason = format!(
        "reporting_to would make a management cycle: {} -> {}; fix the HR values of the people in it",
        people.join(" -> "),
        name(start)
    );
    ("cycle", reason)
}

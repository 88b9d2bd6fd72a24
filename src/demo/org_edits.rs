//! The admin's edits to the simulated org after the push (as made in the
//! Cliq console): tracked fields, and one field `modified_after` misses.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::hr_file::{active_other_than, distinct, name_of, org_users, other, text, HrPerson};
use super::{Mutation, TRACKED_EDITS, TRACKED_EDITS_IN_HR};
use crate::cliq::models::User;
use crate::sim::Simulator;

/// An admin edits the org in the Cliq console: tracked fields of
/// [`TRACKED_EDITS`] users (some the HR file manages), and the display name
/// of one more (a field `modified_after` does not see).
pub(super) fn mutate_org(sim: &Simulator, hr_people: &[HrPerson]) -> anyhow::Result<Vec<Mutation>> {
    let users = org_users(sim)?;
    let owner = sim.owner_id();
    let in_hr: BTreeSet<&str> = hr_people.iter().map(|p| p.id.as_str()).collect();
    let by_id: BTreeMap<String, &User> = users.iter().map(|u| (text(&u.id), u)).collect();
    let everyone: Vec<&User> = users.iter().collect();
    let locations = distinct(&everyone, |u| text(&u.work_location));
    let departments = sim.departments();
    let hr_targets = hr_people
        .iter()
        .filter(|p| p.changed)
        .map(|p| p.id.clone())
        .take(TRACKED_EDITS_IN_HR);
    let others: Vec<String> = users
        .iter()
        .rev()
        .filter(|u| active_other_than(u, &owner))
        .map(|u| text(&u.id))
        .filter(|id| !in_hr.contains(id.as_str()))
        .take(TRACKED_EDITS + 1)
        .collect();
    let targets: Vec<String> = hr_targets
        .chain(others.iter().cloned())
        .take(TRACKED_EDITS)
        .collect();
    let mut out = Vec::new();
    for (n, id) in targets.iter().enumerate() {
        let u = by_id.get(id).context("an edited user vanished")?;
        let (field, from, to, body) = if n % 2 == 0 {
            location_edit(u, &locations, n)?
        } else {
            department_edit(u, &departments, n)?
        };
        edit(sim, id, body)?;
        out.push(Mutation {
            user_id: id.clone(),
            email: text(&u.email_id),
            field,
            from,
            to,
            tracked: true,
            in_hr: in_hr.contains(id.as_str()),
        });
    }
    // The untracked edit: someone not edited above.
    let id = others
        .iter()
        .find(|id| !targets.contains(id))
        .context("no user left for the display-name edit")?;
    let u = by_id.get(id).context("an edited user vanished")?;
    out.push(display_name_edit(sim, id, u)?);
    Ok(out)
}

/// An edit: the field, its old and new value, the body sent to the simulator.
type Edit = (&'static str, String, String, Value);

fn location_edit(u: &User, locations: &[String], n: usize) -> anyhow::Result<Edit> {
    let from = text(&u.work_location);
    let to = other(locations, &from, n + 5)
        .context("the org has one work location only")?
        .to_owned();
    let body = json!({ "work_location": to });
    Ok(("work_location", from, to, body))
}

fn department_edit(u: &User, departments: &[(String, String)], n: usize) -> anyhow::Result<Edit> {
    let from_id = u.department.as_ref().and_then(|d| d.id.clone());
    let candidates: Vec<&(String, String)> = departments
        .iter()
        .filter(|(id, _)| Some(id) != from_id.as_ref())
        .collect();
    let (to_id, to_name) = candidates
        .get(n % candidates.len().max(1))
        .map(|d| (*d).clone())
        .context("the org has one department only")?;
    let body = json!({ "department_id": to_id });
    Ok(("department", name_of(&u.department), to_name, body))
}

fn display_name_edit(sim: &Simulator, id: &str, u: &User) -> anyhow::Result<Mutation> {
    let from = text(&u.display_name);
    let to = format!("{} (they/them)", text(&u.first_name));
    edit(sim, id, json!({ "display_name": to }))?;
    Ok(Mutation {
        user_id: id.to_owned(),
        email: text(&u.email_id),
        field: "display_name",
        from,
        to,
        tracked: false,
        in_hr: false,
    })
}

fn edit(sim: &Simulator, id: &str, body: Value) -> anyhow::Result<()> {
    if !sim.mutate_user(id, body) {
        bail!("the simulator refused to edit user {id}");
    }
    Ok(())
}

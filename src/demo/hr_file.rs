//! The demo's HR file, generated from the seeded org (read through the one
//! reader of Cliq's user JSON, `cliq::models::User`).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context};

use super::{CHANGE_EVERY, HR_PEOPLE};
use crate::cliq::models::{NamedRef, User};
use crate::sim::Simulator;

/// The simulator's users as Cliq's JSON reads them.
pub(super) fn org_users(sim: &Simulator) -> anyhow::Result<Vec<User>> {
    sim.users()
        .into_iter()
        .map(|v| User::from_value(v).context("the simulator served a user that is no object"))
        .collect()
}

/// A text field of a user, empty when absent.
pub(super) fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// The name of a reference (department, designation), empty when absent.
pub(super) fn name_of(r: &Option<NamedRef>) -> String {
    r.as_ref().and_then(|r| r.name.clone()).unwrap_or_default()
}

/// Whether `u` is an active user other than `owner`.
pub(super) fn active_other_than(u: &User, owner: &str) -> bool {
    u.status.as_deref() == Some("active") && u.id.as_deref() != Some(owner)
}

/// The next value of `options` after `current` (wrapping), never `current`.
pub(super) fn other<'a>(options: &'a [String], current: &str, salt: usize) -> Option<&'a str> {
    let candidates: Vec<&String> = options.iter().filter(|o| *o != current).collect();
    (!candidates.is_empty()).then(|| candidates[salt % candidates.len()].as_str())
}

/// The distinct non-empty values of `f` over `users`, sorted.
pub(super) fn distinct(users: &[&User], f: impl Fn(&User) -> String) -> Vec<String> {
    let set: BTreeSet<String> = users
        .iter()
        .map(|u| f(u))
        .filter(|s| !s.is_empty())
        .collect();
    set.into_iter().collect()
}

/// A person of the generated HR file (for choosing the admin's edits).
#[derive(Debug, Clone)]
pub(super) struct HrPerson {
    pub(super) id: String,
    pub(super) changed: bool,
}

/// Values that exist in the org (names resolve through the mirror).
struct OrgValues {
    locations: Vec<String>,
    departments: Vec<String>,
    designations: Vec<String>,
}

const COLUMNS: [&str; 8] = [
    "email_id",
    "first_name",
    "last_name",
    "employee_id",
    "extension",
    "work_location",
    "department",
    "designation",
];

/// Write the demo's HR file from the seeded org: up to [`HR_PEOPLE`] active
/// users spread evenly over the org, every [`CHANGE_EVERY`]th with new values
/// (work location, department or designation by name, extension), the rest
/// exactly as Cliq has them, plus two new hires.
pub(super) fn write_hr_file(sim: &Simulator, path: &Path) -> anyhow::Result<Vec<HrPerson>> {
    let users = org_users(sim)?;
    let owner = sim.owner_id();
    let active: Vec<&User> = users
        .iter()
        .filter(|u| active_other_than(u, &owner) && u.email_id.is_some())
        .collect();
    if active.len() < 4 * CHANGE_EVERY {
        bail!(
            "the simulated org is too small for the demo ({} active users)",
            active.len()
        );
    }
    let values = OrgValues {
        locations: distinct(&active, |u| text(&u.work_location)),
        departments: distinct(&active, |u| name_of(&u.department)),
        designations: distinct(&active, |u| name_of(&u.designation)),
    };

    // Every other active user at most: the admin's edits need people the
    // HR file does not manage too.
    let step = (active.len() / HR_PEOPLE).max(2);
    let mut people = Vec::new();
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    w.write_record(COLUMNS)?;
    for (i, u) in active.iter().step_by(step).take(HR_PEOPLE).enumerate() {
        let changed = i % CHANGE_EVERY == 3;
        w.write_record(record(u, changed.then_some(i), &values))?;
        people.push(HrPerson {
            id: text(&u.id),
            changed,
        });
    }
    write_new_hires(sim, &mut w, &values)?;
    w.flush()?;
    Ok(people)
}

/// One HR record: the user as Cliq has them, or, for the `change`th
/// person, with new values.
fn record(u: &User, change: Option<usize>, values: &OrgValues) -> [String; 8] {
    let mut rec = [
        text(&u.email_id),
        text(&u.first_name),
        text(&u.last_name),
        text(&u.employee_id),
        text(&u.extension),
        text(&u.work_location),
        name_of(&u.department),
        name_of(&u.designation),
    ];
    let Some(i) = change else {
        return rec;
    };
    let n = i / CHANGE_EVERY;
    let set = |slot: &mut String, options: &[String], salt: usize| {
        if let Some(v) = other(options, slot.as_str(), salt) {
            *slot = v.to_owned();
        }
    };
    match n % 4 {
        0 => set(&mut rec[5], &values.locations, n),
        1 => set(&mut rec[6], &values.departments, n),
        2 => rec[4] = format!("{}", 7000 + i),
        _ => {
            set(&mut rec[7], &values.designations, n);
            set(&mut rec[5], &values.locations, n + 1);
        }
    }
    rec
}

/// Two new hires: `create_missing` adds them.
fn write_new_hires(
    sim: &Simulator,
    w: &mut csv::Writer<std::fs::File>,
    values: &OrgValues,
) -> anyhow::Result<()> {
    let dept = values.departments.first().cloned().unwrap_or_default();
    let desig = values.designations.last().cloned().unwrap_or_default();
    for (n, (first, last)) in [("Ada", "Lovelace"), ("Alan", "Turing")]
        .into_iter()
        .enumerate()
    {
        let email = format!(
            "{}.{}.newhire@zylker.example",
            first.to_lowercase(),
            last.to_lowercase()
        );
        if sim.user_id_by_email(&email).is_some() {
            bail!("the seeded org already has {email}");
        }
        w.write_record([
            email.as_str(),
            first,
            last,
            &format!("NH-{:04}", n + 1),
            &format!("{}", 9001 + n),
            "Remote",
            &dept,
            &desig,
        ])?;
    }
    Ok(())
}

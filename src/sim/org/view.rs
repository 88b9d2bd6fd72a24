//! The user in the API's JSON forms: a borrowed view that serialises straight to bytes, and teams.

use serde::Serialize;
use serde_json::{json, Value};

use super::seed::ZONES;
use super::{Fields, Named, Org, Text, User, ORG_ID, ZOID};

/// A user as the API shows it. Fields are in alphabetical order, the order
/// in which `serde_json::Map` (a `BTreeMap`) writes keys, so a view and the
/// `Value` made from it serialise to the same bytes.
#[derive(Serialize)]
pub(crate) struct UserView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_attributes: Option<CustomView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<NamedView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    designation: Option<NamedView<'a>>,
    display_name: String,
    email_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    employee_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    full_name: Option<String>,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mobile: Option<&'a str>,
    name: String,
    organization_id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reportingto: Option<ManagerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeoffset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    work_location: Option<&'a Text>,
    zoid: &'static str,
    zuid: String,
}

#[derive(Serialize)]
pub(crate) struct NamedView<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
pub(crate) struct ManagerView {
    id: String,
    name: String,
}

#[derive(Serialize)]
pub(crate) struct CustomView<'a> {
    cost_center: &'a Text,
    shirt_size: &'a Text,
}

impl Org {
    fn named(items: &[Named], idx: Option<usize>) -> Option<NamedView<'_>> {
        let n = items.get(idx?)?;
        Some(NamedView {
            id: &n.id,
            name: &n.name,
        })
    }

    /// The user in the API's form for `fields`.
    pub(crate) fn render(&self, u: &User, f: Fields) -> Value {
        serde_json::to_value(self.view(u, f)).unwrap_or(Value::Null)
    }

    /// The user in the API's form for `fields`, as a borrowed view that
    /// serialises straight to bytes: a listing page is written without
    /// building a `Value` per user (which made the simulator, not the
    /// client, the slow side of a raw-speed benchmark).
    pub(crate) fn view<'a>(&'a self, u: &'a User, f: Fields) -> UserView<'a> {
        let id = u.id.to_string();
        let display = u.display();
        let mut v = UserView {
            country: None,
            custom_attributes: None,
            department: None,
            designation: None,
            display_name: display.clone(),
            email_id: &u.email,
            employee_id: None,
            extension: None,
            first_name: None,
            full_name: None,
            id: id.clone(),
            language: None,
            last_name: None,
            mobile: None,
            name: display,
            organization_id: ORG_ID,
            phone: None,
            reportingto: None,
            status: None,
            timeoffset: None,
            timezone: None,
            user_type: None,
            work_location: None,
            zoid: ZOID,
            zuid: id,
        };
        if f.mobile {
            v.mobile = Some(&u.mobile);
        }
        if f.department {
            v.department = Self::named(&self.departments, u.department);
        }
        if f.designation {
            v.designation = Self::named(&self.designations, u.designation);
        }
        if f.all {
            self.show_all(&mut v, u);
        }
        v
    }

    /// The members only `fields=all` shows.
    fn show_all<'a>(&'a self, v: &mut UserView<'a>, u: &'a User) {
        v.first_name = Some(&u.first_name);
        v.last_name = Some(&u.last_name);
        v.full_name = Some(u.full_name());
        v.employee_id = Some(&u.employee_id);
        v.phone = Some(&u.phone);
        v.extension = Some(&u.extension);
        v.work_location = Some(&u.work_location);
        v.status = Some(u.status.as_str());
        v.timezone = Some(&u.timezone);
        v.timeoffset = Some(ZONES.iter().find(|z| z.0 == u.timezone).map_or(0, |z| z.1));
        v.language = Some(&u.language);
        v.country = Some(&u.country);
        v.user_type = Some(if u.paid { "paid" } else { "free" });
        // The top of the management chain has no `reportingto` at all;
        // neither has a user whose manager was removed.
        v.reportingto = u
            .reporting_to
            .and_then(|r| self.users.get(&r))
            .map(|mgr| ManagerView {
                id: mgr.id.to_string(),
                name: mgr.display(),
            });
        v.custom_attributes = Some(CustomView {
            cost_center: &u.cost_center,
            shirt_size: &u.shirt_size,
        });
    }

    /// `GET /users/{id}/teams` entries.
    pub(crate) fn teams_of(&self, u: &User) -> Vec<Value> {
        self.teams
            .iter()
            .enumerate()
            .filter(|(t, _)| u.teams & (1 << t) != 0)
            .map(|(t, team)| {
                json!({
                    "name": team.name,
                    "team_id": team.id,
                    "organization_id": ORG_ID,
                    "creation_time": team.created.timestamp_millis().to_string(),
                    "description": team.description,
                    "is_active": team.active,
                    "is_moderator": (u.id + t as u64) % 7 == 0,
                    "joined": true,
                    "participant_count": team.participants,
                })
            })
            .collect()
    }
}

//! Manager resolution: self-reports and cycles (issue 9, point 5), and the
//! escaping of the human plan.

use std::path::Path;

use super::*;
use crate::clock::Clock;
use crate::hr::{load_bytes, Format};
use crate::mirror::column::Values;
use crate::mirror::pushes::MirrorUser;
use crate::mirror::runs::RunKind;
use crate::mirror::users::FlatUser;
use crate::mirror::Column;

/// A mirror user `n` (id `10n`, email `un@x.example`) reporting to `manager`.
fn user(n: u32, manager: Option<u32>) -> MirrorUser {
    let mut values = Values::default();
    values[Column::DisplayName] = Some(format!("User {n}"));
    values[Column::ReportingToId] = manager.map(|m| format!("10{m}"));
    MirrorUser {
        id: format!("10{n}"),
        email: Some(format!("u{n}@x.example")),
        status: Some("active".into()),
        removed: false,
        values,
    }
}

async fn plan_of(csv: &str, users: &[MirrorUser]) -> Plan {
    plan_with(csv, users, &PlanOptions::default()).await
}

/// Plan `csv` against a fresh mirror holding `users` (as a full pull of
/// them would write it).
async fn plan_with(csv: &str, users: &[MirrorUser], opts: &PlanOptions) -> Plan {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    let store = Store::open(&dir.path().join("m.db"), &clock).await.unwrap();
    let run = store.start_run(RunKind::Full, clock.now()).await.unwrap();
    let page: Vec<FlatUser> = users
        .iter()
        .map(|u| FlatUser::from_raw(&raw(u)).unwrap())
        .collect();
    store
        .write_users_page(&page, run, RunKind::Full, clock.now())
        .await
        .unwrap();
    let hr = load_bytes(Path::new("hr.csv"), Format::Csv, csv.as_bytes())
        .await
        .unwrap();
    plan(&store, &hr, opts, &Limits::documented())
        .await
        .unwrap()
}

/// The Cliq user object of a test user.
fn raw(u: &MirrorUser) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": u.id, "email_id": u.email, "status": u.status,
        "display_name": u.get(Column::DisplayName),
    });
    if let Some(m) = u.get(Column::ReportingToId) {
        v["reportingto"] = serde_json::json!({ "id": m });
    }
    v
}

fn reporting_changes(p: &Plan) -> Vec<(&str, &str)> {
    p.updates
        .iter()
        .flat_map(|u| u.changes.iter().map(move |c| (u.email.as_str(), c)))
        .filter(|(_, c)| c.field == "reporting_to")
        .map(|(e, c)| (e, c.desired.as_str()))
        .collect()
}

fn blocked_of<'a>(p: &'a Plan, kind: &str) -> Vec<&'a Blocked> {
    p.blocked.iter().filter(|b| b.kind == kind).collect()
}

#[tokio::test]
async fn a_person_reporting_to_themselves_is_blocked_by_email_and_by_zuid() {
    let users = [user(1, None), user(2, None)];
    let p = plan_of(
        "email_id,reporting_to_email,reporting_to_zuid\nu1@x.example,u1@x.example,\nu2@x.example,,102\n",
        &users,
    ).await;
    assert_eq!(reporting_changes(&p), vec![], "{p:#?}");
    let b = blocked_of(&p, "self_report");
    assert_eq!(b.len(), 2, "{:#?}", p.blocked);
    assert_eq!(b[0].email, "u1@x.example");
    assert_eq!(b[0].field, Some("reporting_to"));
    assert!(b[0].reason.contains("u1@x.example"), "{}", b[0].reason);
    assert!(b[1].reason.contains("u2@x.example"), "{}", b[1].reason);
}

#[tokio::test]
async fn a_two_person_cycle_is_blocked_naming_both() {
    let users = [user(1, None), user(2, None)];
    let p = plan_of(
        "email_id,reporting_to_email\nu1@x.example,u2@x.example\nu2@x.example,u1@x.example\n",
        &users,
    )
    .await;
    assert_eq!(reporting_changes(&p), vec![], "{p:#?}");
    let b = blocked_of(&p, "cycle");
    assert_eq!(b.len(), 2, "{:#?}", p.blocked);
    for x in b {
        assert!(
            x.reason.contains("u1@x.example") && x.reason.contains("u2@x.example"),
            "{}",
            x.reason
        );
    }
}

#[tokio::test]
async fn a_three_person_cycle_through_a_manager_hr_does_not_manage_is_blocked() {
    // u3 already reports to u1 in Cliq and is not in HR; HR makes u1 -> u2 -> u3.
    let users = [user(1, None), user(2, None), user(3, Some(1))];
    let p = plan_of(
        "email_id,reporting_to_zuid\nu1@x.example,102\nu2@x.example,103\n",
        &users,
    )
    .await;
    assert_eq!(reporting_changes(&p), vec![], "{p:#?}");
    let b = blocked_of(&p, "cycle");
    assert_eq!(b.len(), 2, "{:#?}", p.blocked);
    assert!(b[0].reason.contains("u3@x.example"), "{}", b[0].reason);
}

#[tokio::test]
async fn a_chain_and_a_cycle_already_in_cliq_are_not_blocked() {
    // u1 -> u2 -> u3 is a chain; u4 <-> u5 already loop in Cliq and HR only
    // restates it (no change, nothing to block).
    let users = [
        user(1, None),
        user(2, None),
        user(3, None),
        user(4, Some(5)),
        user(5, Some(4)),
    ];
    let p = plan_of(
        "email_id,reporting_to_zuid\nu1@x.example,102\nu2@x.example,103\nu4@x.example,105\n",
        &users,
    )
    .await;
    assert_eq!(
        reporting_changes(&p),
        vec![("u1@x.example", "102"), ("u2@x.example", "103")]
    );
    assert!(p.blocked.is_empty(), "{:#?}", p.blocked);
}

#[tokio::test]
async fn the_human_plan_escapes_control_characters_from_the_mirror() {
    let mut u = user(1, None);
    u.values[Column::DisplayName] = Some("Evil\u{1b}[2J\u{202e}Name".into());
    u.email = Some("u1@x.example".into());
    let users = [u, user(2, None)];
    let p = plan_of("email_id,display_name\nu1@x.example,Good\n", &users).await;
    let text = render(&p);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text}"
    );
    assert!(text.contains("Evil\\u{1b}[2J"), "{text}");
}

/// An excluded person's planned manager change never happens, so it cannot
/// close a cycle: the other half of the would-be loop goes through.
#[tokio::test]
async fn an_excluded_persons_change_takes_no_part_in_the_cycle_check() {
    let users = [user(1, None), user(2, None)];
    let opts = PlanOptions {
        scope: scope::Scope::new(&["*".into()], &["U2@*".into()], &[]).unwrap(),
        ..PlanOptions::default()
    };
    let p = plan_with(
        "email_id,reporting_to_email\nu1@x.example,u2@x.example\nu2@x.example,u1@x.example\n",
        &users,
        &opts,
    )
    .await;
    assert_eq!(
        reporting_changes(&p),
        vec![("u1@x.example", "102")],
        "{p:#?}"
    );
    assert!(p.blocked.is_empty(), "{:#?}", p.blocked);
    assert_eq!(p.excluded.len(), 1);
    assert_eq!(p.excluded[0].rule, "exclude \"U2@*\"");
    assert!(render(&p).contains("Excluded by"), "{}", render(&p));
}

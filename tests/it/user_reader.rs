//! One reader of Cliq's user JSON: the client's typed `User` (what
//! reconcile and `GET /users/{id}` see) and the mirror's flattening (what a
//! pull stores) read every variant of a user object the same way.

use cliq_sync::cliq::models::{NamedRef, User};
use cliq_sync::mirror::users::FlatUser;
use cliq_sync::mirror::Column;

fn both(text: &str) -> (User, FlatUser) {
    let user = User::from_value(serde_json::from_str(text).unwrap()).unwrap();
    let flat = FlatUser::from_raw_json(text).unwrap().expect("an id");
    (user, flat)
}

fn named(id: Option<&str>, name: Option<&str>) -> Option<NamedRef> {
    Some(NamedRef {
        id: id.map(String::from),
        name: name.map(String::from),
    })
}

/// A reference given as a bare value (`"department": "Ops"`) is not the
/// documented `{"name", "id"}` object. It is read as the reference's
/// *name*, never as its id: "Ops" is no Cliq id, and an id taken from it
/// would be compared, snapshotted and sent back as `department_id`.
#[test]
fn bare_string_reference_is_a_name_without_an_id() {
    let text = r#"{"id": "1", "department": "Ops", "designation": "Lead",
                   "reportingto": "Tim Harrison"}"#;
    let (user, flat) = both(text);
    assert_eq!(user.department, named(None, Some("Ops")));
    assert_eq!(user.designation, named(None, Some("Lead")));
    assert_eq!(user.reportingto, named(None, Some("Tim Harrison")));
    let cols = |c: [Column; 2]| (flat.get(c[0]), flat.get(c[1]));
    assert_eq!(
        cols([Column::DepartmentId, Column::DepartmentName]),
        (None, Some("Ops"))
    );
    assert_eq!(
        cols([Column::DesignationId, Column::DesignationName]),
        (None, Some("Lead"))
    );
    assert_eq!(
        cols([Column::ReportingToId, Column::ReportingToName]),
        (None, Some("Tim Harrison"))
    );
}

/// Every tolerated variant gives the client and the mirror the same id,
/// e-mail and references.
#[test]
fn client_and_mirror_read_user_variants_alike() {
    let texts = [
        r#"{"id": "1", "email_id": "a@x.example", "department": {"id": "5", "name": "Ops"}}"#,
        r#"{"user_id": 2, "email": "b@x.example", "department_id": "5", "department_name": "Ops"}"#,
        r#"{"zuid": "3", "reporting_to": {"zuid": "77", "display_name": "Boss"}}"#,
        r#"{"id": "", "zuid": "4", "reportingto": {"name": "Boss"}, "reporting_to_zuid": "8"}"#,
        r#"{"id": "5", "reporting_to_id": "9", "reporting_to_name": "M", "designation": null}"#,
        r#"{"id": "6", "designation": {"id": {"x": 1}, "name": "Lead"}, "designation_id": 12}"#,
    ];
    let refs = |f: &FlatUser, [id, name]: [Column; 2]| {
        let (id, name) = (f.get(id), f.get(name));
        (id.is_some() || name.is_some()).then(|| NamedRef {
            id: id.map(String::from),
            name: name.map(String::from),
        })
    };
    for text in texts {
        let (u, f) = both(text);
        assert_eq!(u.id.as_deref(), Some(f.id.as_str()), "{text}");
        assert_eq!(u.email_id.as_deref(), f.get(Column::EmailId), "{text}");
        assert_eq!(
            u.department,
            refs(&f, [Column::DepartmentId, Column::DepartmentName]),
            "{text}"
        );
        assert_eq!(
            u.designation,
            refs(&f, [Column::DesignationId, Column::DesignationName]),
            "{text}"
        );
        assert_eq!(
            u.reportingto,
            refs(&f, [Column::ReportingToId, Column::ReportingToName]),
            "{text}"
        );
    }
}

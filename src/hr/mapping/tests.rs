use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn derive_only(field: &str, template: &str) -> Result<Mapping, MappingError> {
    Mapping::compile(
        &BTreeMap::new(),
        &map(&[(field, template)]),
        &BTreeMap::new(),
    )
}

fn hr_like() -> Mapping {
    let columns = map(&[
        ("Work Email", "email_id"),
        ("Dept Code", "department"),
        ("First", "first_name"),
        ("Last", "last_name"),
    ]);
    let derive = map(&[("display_name", "{{ first_name }} {{ last_name | upper }}")]);
    let values = BTreeMap::from([("department".to_owned(), map(&[("ENG", "Engineering")]))]);
    Mapping::compile(&columns, &derive, &values).expect("valid mapping")
}

#[test]
fn renames_derives_then_maps_values() {
    let m = hr_like();
    assert_eq!(m.rename(" work email "), "email_id");
    assert_eq!(m.rename("Phone"), "Phone");
    let out = m
        .apply(vec![
            ("email_id", "ada@x.test".into()),
            ("department", "ENG".into()),
            ("first_name", "Ada".into()),
            ("last_name", "Lovelace".into()),
        ])
        .expect("maps");
    assert!(
        out.contains(&("department", "Engineering".into())),
        "{out:?}"
    );
    assert!(
        out.contains(&("display_name", "Ada LOVELACE".into())),
        "{out:?}"
    );
}

#[test]
fn an_unmapped_value_is_an_error_naming_the_map() {
    let err = hr_like()
        .apply(vec![
            ("department", "MKT".into()),
            ("first_name", "Ada".into()),
            ("last_name", "Lovelace".into()),
        ])
        .expect_err("unmapped");
    assert_eq!(err[0].0, "department");
    assert!(
        err[0].1.contains("'MKT' is not in [hr.values.department]"),
        "{err:?}"
    );
}

#[test]
fn a_template_printing_an_empty_field_is_an_error_unless_defaulted() {
    let m = hr_like();
    let err = m
        .apply(vec![("first_name", "Ada".into())])
        .expect_err("strict undefined");
    assert_eq!(err[0].0, "display_name");
    assert!(err[0].1.contains("hr.derive.display_name"), "{err:?}");
    let m = derive_only(
        "display_name",
        "{{ first_name }} {{ last_name | default('') }}",
    )
    .unwrap();
    let out = m.apply(vec![("first_name", "Ada".into())]).unwrap();
    assert!(out.contains(&("display_name", "Ada ".into())), "{out:?}");
}

#[test]
fn every_allowed_filter_exists_in_minijinja() {
    for f in FILTERS {
        let t = match f {
            "replace" => "{{ first_name | replace('a', 'b') }}".to_owned(),
            "join" | "first" | "last" => format!("{{{{ first_name | split | {f} }}}}"),
            _ => format!("{{{{ first_name | {f} }}}}"),
        };
        let m = derive_only("display_name", &t).unwrap_or_else(|e| panic!("{f}: {e}"));
        m.apply(vec![("first_name", "ada".into())])
            .unwrap_or_else(|e| panic!("{f}: {e:?}"));
    }
}

#[test]
fn load_time_errors_name_their_key() {
    let none = BTreeMap::new;
    let no_values = BTreeMap::<String, BTreeMap<String, String>>::new;
    let cases: Vec<(Result<Mapping, MappingError>, &str, &str)> = vec![
        (
            Mapping::compile(&map(&[("Work Email", "emial_id")]), &none(), &no_values()),
            "hr.columns.Work Email",
            "did you mean 'email_id'",
        ),
        (
            Mapping::compile(
                &map(&[("A", "phone"), ("B", "phone")]),
                &none(),
                &no_values(),
            ),
            "hr.columns.B",
            "renamed to phone too",
        ),
        (
            derive_only("display_name", "{{ first_name "),
            "hr.derive.display_name",
            "does not parse",
        ),
        (
            derive_only("display_name", "{{ first }}"),
            "hr.derive.display_name",
            "'first' is not a field",
        ),
        (
            derive_only("display_name", "{{ first_name | lowr }}"),
            "hr.derive.display_name",
            "unknown filter 'lowr'; did you mean 'lower'",
        ),
        (
            derive_only("display_nmae", "{{ first_name }}"),
            "hr.derive.display_nmae",
            "did you mean 'display_name'",
        ),
        (
            Mapping::compile(
                &none(),
                &none(),
                &BTreeMap::from([("departmnt".into(), map(&[("ENG", "Engineering")]))]),
            ),
            "hr.values.departmnt",
            "did you mean 'department'",
        ),
        (
            Mapping::compile(
                &none(),
                &none(),
                &BTreeMap::from([("department".into(), map(&[("ENG", "Eng\nineering")]))]),
            ),
            "hr.values.department.ENG",
            "control character",
        ),
    ];
    for (got, key, text) in cases {
        let e = got.expect_err(key);
        assert_eq!(e.key, key, "{e}");
        assert!(e.message.contains(text), "{key}: {e}");
    }
}

#[test]
fn filter_names_skip_string_literals() {
    assert_eq!(
        filter_names("{{ a | replace('|', '-') | upper }} | not_a_tag"),
        vec!["replace".to_owned(), "upper".to_owned()]
    );
}

fn load(
    format: crate::hr::Format,
    text: &str,
) -> Result<crate::hr::staging::Loaded, crate::hr::HrErrors> {
    crate::hr::staging::load_now(
        std::path::Path::new("hr.x"),
        format,
        text.as_bytes(),
        &hr_like(),
    )
}

#[test]
fn the_loader_maps_csv_and_json_alike() {
    use crate::hr::{Attr, Format};
    let csv = "Work Email,Dept Code,First,Last\nAda@X.test,ENG,Ada,Lovelace\n";
    let json =
        r#"[{"Work Email": "Ada@X.test", "Dept Code": "ENG", "First": "Ada", "Last": "Lovelace"}]"#;
    for (format, text) in [(Format::Csv, csv), (Format::Json, json)] {
        let src = load(format, text).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        let r = &src.records[0];
        assert_eq!(r.email, "ada@x.test");
        assert_eq!(&*r.get(Attr::DisplayName).unwrap().text, "Ada LOVELACE");
        assert_eq!(&*r.get(Attr::Department).unwrap().text, "Engineering");
        assert_eq!(
            r.get(Attr::Department).unwrap().kind,
            crate::hr::ValueKind::Name
        );
    }
}

#[test]
fn a_column_that_is_also_derived_is_refused() {
    let csv = "Work Email,First,Last,display_name\nada@x.test,Ada,Lovelace,Ada L\n";
    let e = load(crate::hr::Format::Csv, csv).expect_err("both");
    assert!(
        e.to_string()
            .contains("line 1: field `display_name`: display_name is derived"),
        "{e}"
    );
}

#[test]
fn derived_values_get_the_readers_value_checks() {
    let m = derive_only("display_name", "{{ first_name }}\u{202e}").unwrap();
    let csv = "email_id,first_name\nada@x.test,Ada\n";
    let e = crate::hr::staging::load_now(
        std::path::Path::new("hr.csv"),
        crate::hr::Format::Csv,
        csv.as_bytes(),
        &m,
    )
    .expect_err("bidi control in a derived value");
    assert!(
        e.to_string()
            .contains("line 2: field `display_name`: contains a control character"),
        "{e}"
    );
}

use super::staging::{load_now, Loaded};
use super::*;

fn load_str(name: &str, text: &str) -> Result<Loaded, HrErrors> {
    let path = Path::new(name);
    load_now(
        path,
        Format::of(path).unwrap(),
        text.as_bytes(),
        &Mapping::default(),
    )
}

fn errs(name: &str, text: &str) -> Vec<HrError> {
    load_str(name, text).unwrap_err().errors
}

const CSV: &str = "email_id,first_name,department,reporting_to_email,extension,employee_id
Ann.Lee@Zylker.example , Ann ,Sales,boss@zylker.example,,42
bob@zylker.example,Bob,,,1234,
";

const JSON: &str = r#"[
  {"email_id": "Ann.Lee@Zylker.example ", "first_name": " Ann", "department": "Sales",
   "reporting_to_email": "boss@zylker.example", "extension": "", "employee_id": 42},
  {"email_id": "bob@zylker.example", "first_name": "Bob", "extension": 1234, "department": null}
]"#;

const YAML: &str = r#"users:
  - email_id: Ann.Lee@Zylker.example
    first_name: Ann
    department: Sales
    reporting_to_email: boss@zylker.example
    extension: ""
    employee_id: 42
  - email_id: bob@zylker.example
    first_name: Bob
    extension: 1234
"#;

const TOML: &str = r#"
[[users]]
email_id = "Ann.Lee@Zylker.example"
first_name = "Ann"
department = "Sales"
reporting_to_email = "boss@zylker.example"
employee_id = 42

[[users]]
email_id = "bob@zylker.example"
first_name = "Bob"
extension = "1234"
"#;

type Simple = Vec<(String, Vec<(Attr, ValueKind, String)>)>;

fn simplify(s: &Loaded) -> Simple {
    s.records
        .iter()
        .map(|r| {
            (
                r.email.clone(),
                Attr::ALL
                    .iter()
                    .filter_map(|a| r.get(*a).map(|v| (*a, v.kind, v.text.to_string())))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn every_format_loads_to_the_same_records() {
    let csv = simplify(&load_str("hr.csv", CSV).unwrap());
    let json = simplify(&load_str("hr.json", JSON).unwrap());
    let yaml = simplify(&load_str("hr.yaml", YAML).unwrap());
    let yml = simplify(&load_str("hr.yml", YAML).unwrap());
    let toml = simplify(&load_str("hr.toml", TOML).unwrap());
    assert_eq!(csv.len(), 2);
    assert_eq!(csv[0].0, "ann.lee@zylker.example");
    assert_eq!(
        csv[0].1,
        vec![
            (Attr::FirstName, ValueKind::Direct, "Ann".into()),
            (Attr::EmployeeId, ValueKind::Direct, "42".into()),
            (Attr::Department, ValueKind::Name, "Sales".into()),
            (
                Attr::ReportingTo,
                ValueKind::Email,
                "boss@zylker.example".into()
            ),
        ]
    );
    assert_eq!(csv, json);
    assert_eq!(csv, yaml);
    assert_eq!(csv, yml);
    assert_eq!(csv, toml);
    // A JSON object with "users" is the same as the bare list.
    let wrapped = format!("{{\"users\": {JSON}}}");
    assert_eq!(simplify(&load_str("hr.json", &wrapped).unwrap()), csv);
    // A bare YAML list too.
    let bare = "- email_id: a@x.example\n  mobile: 5551234\n";
    let s = load_str("hr.yaml", bare).unwrap();
    assert_eq!(
        s.records[0].get(Attr::Mobile).unwrap().text.as_ref(),
        "5551234"
    );
}

#[test]
fn csv_locations_are_lines() {
    let s = load_str("hr.csv", CSV).unwrap();
    assert_eq!(s.records[0].location, Location::Line(2));
    assert_eq!(s.records[1].location, Location::Line(3));
    let s = load_str("hr.json", JSON).unwrap();
    assert_eq!(s.records[1].location, Location::Record(2));
}

#[test]
fn bad_emails_and_duplicates_are_all_reported() {
    let e = errs(
        "hr.csv",
        "email_id,first_name\nnot-an-email,A\n,B\nx@y.example,C\nX@Y.example,D\n",
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert_eq!(e[0].location, Location::Line(2));
    assert_eq!(e[0].field.as_deref(), Some("email_id"));
    assert!(e[0].message.contains("not a valid email"), "{}", e[0]);
    assert_eq!(e[1].location, Location::Line(3));
    assert!(e[1].message.contains("missing"));
    assert_eq!(e[2].location, Location::Line(5));
    assert!(e[2].message.contains("duplicate"), "{}", e[2]);
    assert!(e[2].message.contains("line 4"), "{}", e[2]);
    assert_eq!(
        e[2].to_string(),
        "hr.csv: line 5: field `email_id`: duplicate email 'X@Y.example' (emails are case-insensitive): first at line 4"
    );
}

#[test]
fn unknown_columns_suggest_the_closest_name() {
    let e = errs(
        "hr.csv",
        "email_id,departmnt,shoe_size\na@x.example,Sales,42\n",
    );
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].location, Location::Line(1));
    assert_eq!(e[0].field.as_deref(), Some("departmnt"));
    assert!(
        e[0].message.contains("did you mean 'department'?"),
        "{}",
        e[0]
    );
    assert!(!e[1].message.contains("did you mean"), "{}", e[1]);

    let e = errs(
        "hr.json",
        r#"[{"email_id":"a@x.example","frist_name":"A"}]"#,
    );
    assert_eq!(e[0].location, Location::Record(1));
    assert_eq!(e[0].field.as_deref(), Some("frist_name"));
    assert!(
        e[0].message.contains("did you mean 'first_name'?"),
        "{}",
        e[0]
    );
}

#[test]
fn wrong_types_are_reported_with_their_record() {
    let e = errs(
        "hr.json",
        r#"[{"email_id":"a@x.example"},{"email_id":"b@x.example","department":{"name":"Sales"},"mobile":[1]}, 7]"#,
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert_eq!(e[0].location, Location::Record(2));
    assert_eq!(e[0].field.as_deref(), Some("department"));
    assert!(e[0].message.contains("an object"), "{}", e[0]);
    assert_eq!(e[1].field.as_deref(), Some("mobile"));
    assert_eq!(e[2].location, Location::Record(3));

    let e = errs(
        "hr.yaml",
        "users:\n  - email_id: a@x.example\n    phone: [1, 2]\n",
    );
    assert_eq!(e[0].location, Location::Record(1));
    assert_eq!(e[0].field.as_deref(), Some("phone"));

    let e = errs(
        "hr.toml",
        "[[users]]\nemail_id = \"a@x.example\"\nextension = [1]\n",
    );
    assert_eq!(e[0].location, Location::Record(1));
    assert_eq!(e[0].field.as_deref(), Some("extension"));
}

#[test]
fn malformed_files_are_reported() {
    let e = errs(
        "hr.csv",
        "email_id,first_name\na@x.example,A,extra\nb@x.example,B\n",
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].location, Location::Line(2));
    assert!(e[0].message.contains("3 fields"), "{}", e[0]);

    let e = errs("hr.csv", "first_name\nA\n");
    assert_eq!(e[0].field.as_deref(), Some("email_id"));

    let e = errs("hr.json", "[{\"email_id\": ");
    assert_eq!(e[0].location, Location::File);
    assert!(e[0].message.contains("malformed JSON"), "{}", e[0]);

    let e = errs("hr.yaml", "users: [a: b: c");
    assert!(e[0].message.contains("malformed YAML"), "{}", e[0]);

    let e = errs("hr.toml", "[[users]\n");
    assert!(e[0].message.contains("malformed TOML"), "{}", e[0]);

    let e = errs("hr.toml", "[[people]]\nemail_id = \"a@x.example\"\n");
    assert_eq!(e[0].field.as_deref(), Some("people"));

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let e = rt.block_on(load(Path::new("hr.xlsx"))).unwrap_err();
    assert!(e.errors[0].message.contains("unknown format"));
}

#[test]
fn both_forms_of_one_attribute_conflict() {
    let e = errs(
        "hr.csv",
        "email_id,department,department_id\na@x.example,Sales,123\nb@x.example,,123\n",
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].location, Location::Line(2));
    assert!(e[0].message.contains("both"), "{}", e[0]);
}

#[test]
fn empty_values_are_not_managed() {
    let s = load_str("hr.csv", "email_id,mobile,phone\na@x.example,  ,\n").unwrap();
    assert!(s.records[0].values.iter().all(Option::is_none));
}

#[test]
fn managed_fields_are_validated() {
    assert_eq!(managed_attrs(None).unwrap().len(), 14);
    let m = managed_attrs(Some(&[
        "department".into(),
        "designation_id".into(),
        "reporting_to".into(),
        "reporting_to_email".into(),
        "work_location".into(),
    ]))
    .unwrap();
    assert_eq!(
        m,
        vec![
            Attr::Department,
            Attr::Designation,
            Attr::ReportingTo,
            Attr::WorkLocation
        ]
    );
    let e = managed_attrs(Some(&["work_locaton".into()])).unwrap_err();
    assert!(e.contains("did you mean 'work_location'?"), "{e}");
}

#[test]
fn many_errors_are_capped_but_counted() {
    let mut text = String::from("email_id\n");
    for i in 0..(MAX_ERRORS + 50) {
        text.push_str(&format!("bad{i}\n"));
    }
    let e = load_str("hr.csv", &text).unwrap_err();
    assert_eq!(e.errors.len(), MAX_ERRORS);
    assert_eq!(e.total(), MAX_ERRORS + 50);
    assert!(e.to_string().contains("and 50 more"));
}

#[test]
fn a_large_csv_streams() {
    let mut text = String::from("email_id,first_name,department,extension\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "user{i}@zylker.example,Name{i},Sales,{}\n",
            1000 + i
        ));
    }
    let started = std::time::Instant::now();
    let s = load_str("hr.csv", &text).unwrap();
    assert_eq!(s.records.len(), 20_000);
    // Generous (debug build, shared machine); see benches/plan.rs for figures.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

// ---------------------------------------------------------------------------
// Issue 9, point 4: a partial or malformed CSV is refused, naming the line.
// ---------------------------------------------------------------------------

fn one_err(name: &str, text: &str) -> HrError {
    let e = errs(name, text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap()
}

#[test]
fn csv_an_unterminated_quote_at_the_end_is_refused_with_its_line() {
    // Cut mid-value, inside a quote: the csv crate reads "Bo" as the value.
    let e = one_err(
        "hr.csv",
        "email_id,first_name\na@x.example,Ann\nb@x.example,\"Bo",
    );
    assert_eq!(e.location, Location::Line(3), "{e}");
    assert_eq!(e.field.as_deref(), Some("first_name"), "{e}");
    assert!(e.message.contains("unterminated quote"), "{e}");
    // The same with a final newline: the quoted field runs to the end of the file.
    let e = one_err(
        "hr.csv",
        "email_id,first_name\na@x.example,Ann\nb@x.example,\"Bo\n",
    );
    assert_eq!(e.location, Location::Line(3), "{e}");
}

#[test]
fn csv_a_stray_quote_in_the_middle_does_not_swallow_the_next_rows() {
    // Before: b@x.example vanished into Ann's first_name, exit 0.
    let text = "email_id,first_name\na@x.example,\"Ann\nb@x.example,Bob\nc@x.example,\"Carl\"\n";
    let e = errs("hr.csv", text);
    assert!(!e.is_empty());
    assert_eq!(e[0].location, Location::Line(2), "{}", e[0]);
    assert_eq!(e[0].field.as_deref(), Some("first_name"), "{}", e[0]);
    // Text after a closing quote is refused too.
    let e = one_err("hr.csv", "email_id,first_name\na@x.example,\"Ann\"x\n");
    assert_eq!(e.location, Location::Line(2), "{e}");
    // Proper quoting still works: commas and doubled quotes inside quotes.
    let s = load_str(
        "hr.csv",
        "email_id,work_location\na@x.example,\"Block C, \"\"North\"\"\"\n",
    )
    .unwrap();
    assert_eq!(
        s.records[0].get(Attr::WorkLocation).unwrap().text.as_ref(),
        "Block C, \"North\""
    );
}

#[test]
fn csv_a_row_with_too_few_fields_is_refused_with_its_line() {
    let e = one_err(
        "hr.csv",
        "email_id,first_name,last_name\na@x.example,A,B\nb@x.example,B\n",
    );
    assert_eq!(e.location, Location::Line(3), "{e}");
    assert!(e.message.contains("2 fields"), "{e}");
}

// ---------------------------------------------------------------------------
// Issue 9, point 5: values are checked (control characters, lengths).
// ---------------------------------------------------------------------------

/// `value` as `first_name` of one record, in each format.
fn in_every_format(field: &str, value: &str) -> Vec<(&'static str, String)> {
    // Every unsafe character as \uXXXX: YAML and TOML double-quoted strings
    // accept JSON's escapes (and their parsers refuse some raw controls).
    let mut json = String::from("\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => json.extend(['\\', c]),
            c if crate::text::is_unsafe(c) => json.push_str(&format!("\\u{:04X}", c as u32)),
            c => json.push(c),
        }
    }
    json.push('"');
    vec![
        (
            "hr.json",
            format!("[{{\"email_id\":\"a@x.example\",\"{field}\":{json}}}]"),
        ),
        (
            "hr.yaml",
            format!("- email_id: a@x.example\n  {field}: {json}\n"),
        ),
        (
            "hr.toml",
            format!("[[users]]\nemail_id = \"a@x.example\"\n{field} = {json}\n"),
        ),
    ]
}

#[test]
fn control_characters_are_refused_in_every_format_naming_record_and_field() {
    for ch in [
        '\u{1b}', '\0', '\u{7}', '\u{7f}', '\u{202e}', '\u{2066}', '\u{85}', '\t', '\n', '\r',
    ] {
        let value = format!("An{ch}n");
        for (name, text) in in_every_format("first_name", &value) {
            let e = one_err(name, &text);
            assert_eq!(e.location, Location::Record(1), "{name} {ch:?}: {e}");
            assert_eq!(e.field.as_deref(), Some("first_name"), "{name}: {e}");
            assert!(
                e.message.contains(&format!("U+{:04X}", ch as u32)),
                "{name} {ch:?}: {e}"
            );
            assert!(
                !e.to_string().contains(ch),
                "the message echoes {ch:?}: {e}"
            );
        }
    }
    // CSV: unquoted ESC, NUL, BEL, DEL, U+202E; a tab too.
    for ch in ['\u{1b}', '\0', '\u{7}', '\u{7f}', '\u{202e}', '\t'] {
        let e = one_err(
            "hr.csv",
            &format!("email_id,first_name\na@x.example,An{ch}n\n"),
        );
        assert_eq!(e.location, Location::Line(2), "{ch:?}: {e}");
        assert_eq!(e.field.as_deref(), Some("first_name"), "{e}");
        assert!(!e.to_string().contains(ch), "{e}");
    }
    // A newline inside a quoted CSV field is refused (and names its line).
    let e = one_err("hr.csv", "email_id,first_name\na@x.example,\"An\nn\"\n");
    assert_eq!(e.location, Location::Line(2), "{e}");
    // An email with ESC is refused without echoing it raw.
    let e = one_err("hr.csv", "email_id\na\u{1b}[2J@x.example\n");
    assert!(!e.to_string().contains('\u{1b}'), "{e}");
    // Ordinary non-ASCII text is fine.
    let s = load_str("hr.csv", "email_id,first_name\na@x.example,Zoë 李\n").unwrap();
    assert_eq!(
        s.records[0].get(Attr::FirstName).unwrap().text.as_ref(),
        "Zoë 李"
    );
}

#[test]
fn values_over_the_field_limit_are_refused() {
    for (field, limit) in [
        ("first_name", 100),
        ("display_name", 100),
        ("phone", 40),
        ("employee_id", 40),
        ("work_location", 255),
    ] {
        let ok = "x".repeat(limit);
        let csv = format!("email_id,{field}\na@x.example,{ok}\n");
        assert!(load_str("hr.csv", &csv).is_ok(), "{field} at its limit");
        for len in [limit + 1, 10_000, 1_000_000] {
            let long = "x".repeat(len);
            let e = one_err("hr.csv", &format!("email_id,{field}\na@x.example,{long}\n"));
            assert_eq!(e.location, Location::Line(2));
            assert_eq!(e.field.as_deref(), Some(field));
            assert!(e.message.contains(&format!("at most {limit}")), "{e}");
            assert!(e.to_string().len() < 400, "the message echoes the value");
            for (name, text) in in_every_format(field, &long) {
                let e = one_err(name, &text);
                assert_eq!(e.location, Location::Record(1), "{name}");
                assert_eq!(e.field.as_deref(), Some(field), "{name}");
            }
        }
    }
    let long_email = format!("{}@x.example", "a".repeat(250));
    let e = one_err("hr.csv", &format!("email_id\n{long_email}\n"));
    assert_eq!(e.field.as_deref(), Some("email_id"), "{e}");
    assert!(e.message.contains("at most 254"), "{e}");
}

// ---------------------------------------------------------------------------
// Issue 9, point 6: numbers are taken only when unambiguous.
// ---------------------------------------------------------------------------

#[test]
fn a_plain_integer_is_taken_exactly_as_written() {
    let big = "12345678901234567890123";
    for (name, text) in [
        ("hr.json", format!("[{{\"email_id\":\"a@x.example\",\"employee_id\":{big},\"extension\":0}}]")),
        ("hr.yaml", format!("- email_id: a@x.example\n  employee_id: {big}\n  extension: 0\n")),
        ("hr.toml", "[[users]]\nemail_id = \"a@x.example\"\nemployee_id = 1234567890123456789\nextension = 0\n".to_string()),
    ] {
        let s = load_str(name, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = if name == "hr.toml" { "1234567890123456789" } else { big };
        assert_eq!(s.records[0].get(Attr::EmployeeId).unwrap().text.as_ref(), want, "{name}");
        assert_eq!(s.records[0].get(Attr::Extension).unwrap().text.as_ref(), "0", "{name}");
    }
}

#[test]
fn ambiguous_scalars_are_refused_with_quote_it() {
    let cases: &[(&str, &[&str])] = &[
        (
            "hr.json",
            &["1e3", "1.5", "1.0", "-5", "true", "false", "1E+22"],
        ),
        (
            "hr.yaml",
            &[
                "1e3",
                "1.5",
                "+4915112345678",
                "0x1F",
                "0o17",
                "true",
                "false",
                "-5",
                ".inf",
            ],
        ),
        (
            "hr.toml",
            &[
                "1e3",
                "1.5",
                "+4915112345678",
                "0x1F",
                "0o17",
                "0b11",
                "1_000",
                "true",
                "-5",
                "1979-05-27",
            ],
        ),
    ];
    for (name, literals) in cases {
        for lit in *literals {
            let text = match *name {
                "hr.json" => format!("[{{\"email_id\":\"a@x.example\",\"mobile\":{lit}}}]"),
                "hr.yaml" => format!("- email_id: a@x.example\n  mobile: {lit}\n"),
                _ => format!("[[users]]\nemail_id = \"a@x.example\"\nmobile = {lit}\n"),
            };
            let e = one_err(name, &text);
            assert_eq!(e.location, Location::Record(1), "{name} {lit}: {e}");
            assert_eq!(e.field.as_deref(), Some("mobile"), "{name} {lit}: {e}");
            assert!(e.message.contains("quote it"), "{name} {lit}: {e}");
            assert!(
                e.message.contains(lit),
                "{name} {lit}: the literal as written: {e}"
            );
        }
    }
    // Quoted, the same texts are fine.
    let s = load_str(
        "hr.yaml",
        "- email_id: a@x.example\n  mobile: \"+4915112345678\"\n",
    )
    .unwrap();
    assert_eq!(
        s.records[0].get(Attr::Mobile).unwrap().text.as_ref(),
        "+4915112345678"
    );
}

#[test]
fn a_duplicate_key_is_refused() {
    let e = one_err(
        "hr.json",
        r#"[{"email_id":"a@x.example","first_name":"A"},{"email_id":"b@x.example","first_name":"B","first_name":"C"}]"#,
    );
    assert_eq!(e.location, Location::Record(2), "{e}");
    assert_eq!(e.field.as_deref(), Some("first_name"), "{e}");
    assert!(e.message.contains("duplicate key"), "{e}");
    let e = one_err(
        "hr.json",
        r#"{"users":[],"users":[{"email_id":"a@x.example"}]}"#,
    );
    assert_eq!(e.field.as_deref(), Some("users"), "{e}");
    assert!(e.message.contains("duplicate key"), "{e}");
    let e = one_err(
        "hr.yaml",
        "- email_id: a@x.example\n  mobile: \"1\"\n  mobile: \"2\"\n",
    );
    assert_eq!(e.field.as_deref(), Some("mobile"), "{e}");
}

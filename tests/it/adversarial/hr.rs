//! Bad HR sources (issue 9, points 4-6, and the older validation errors):
//! each row is written to a file, then run through `plan` and `push` (push
//! enabled) of the real binary. Every row must exit 2, name the file, the
//! line or record and the field, write no raw control character to the
//! terminal, and send nothing at all to Cliq, not even a token request:
//! the HR source is validated before anything touches the network.

use super::{run, Peer};

/// One bad source: its file name, content, and where the error must point.
struct Row {
    name: &'static str,
    file: &'static str,
    content: Vec<u8>,
    /// `line N` or `record N`.
    location: &'static str,
    field: Option<&'static str>,
}

fn row(
    name: &'static str,
    file: &'static str,
    content: impl Into<Vec<u8>>,
    location: &'static str,
    field: Option<&'static str>,
) -> Row {
    Row {
        name,
        file,
        content: content.into(),
        location,
        field,
    }
}

const H: &str = "email_id,first_name\n";

fn csv_rows() -> Vec<Row> {
    let v = |s: &str| format!("{H}a@x.example,{s}\n");
    vec![
        row(
            "csv unterminated quote at the end",
            "hr.csv",
            format!("{H}a@x.example,Ann\nb@x.example,\"Bo"),
            "line 3",
            Some("first_name"),
        ),
        row(
            "csv quoted field runs to the end",
            "hr.csv",
            format!("{H}a@x.example,Ann\nb@x.example,\"Bo\n"),
            "line 3",
            Some("first_name"),
        ),
        row(
            "csv stray quote swallows rows",
            "hr.csv",
            format!("{H}a@x.example,\"Ann\nb@x.example,Bob\nc@x.example,\"Carl\"\n"),
            "line 2",
            Some("first_name"),
        ),
        row(
            "csv text after closing quote",
            "hr.csv",
            v("\"Ann\"x"),
            "line 2",
            Some("first_name"),
        ),
        row(
            "csv too many fields",
            "hr.csv",
            format!("{H}a@x.example,A,extra\n"),
            "line 2",
            None,
        ),
        row(
            "csv too few fields",
            "hr.csv",
            "email_id,first_name,last_name\na@x.example,A,B\nb@x.example,B\n",
            "line 3",
            None,
        ),
        row(
            "csv ESC",
            "hr.csv",
            v("An\u{1b}[2Jn"),
            "line 2",
            Some("first_name"),
        ),
        row(
            "csv NUL",
            "hr.csv",
            v("An\0n"),
            "line 2",
            Some("first_name"),
        ),
        row(
            "csv BEL",
            "hr.csv",
            v("An\u{7}n"),
            "line 2",
            Some("first_name"),
        ),
        row(
            "csv DEL",
            "hr.csv",
            v("An\u{7f}n"),
            "line 2",
            Some("first_name"),
        ),
        row(
            "csv U+202E",
            "hr.csv",
            v("An\u{202e}n"),
            "line 2",
            Some("first_name"),
        ),
        row(
            "csv tab",
            "hr.csv",
            v("An\tn"),
            "line 2",
            Some("first_name"),
        ),
        row(
            "csv 10 kB value",
            "hr.csv",
            format!(
                "email_id,work_location\na@x.example,{}\n",
                "x".repeat(10_000)
            ),
            "line 2",
            Some("work_location"),
        ),
        row(
            "csv 1 MB value",
            "hr.csv",
            format!(
                "email_id,display_name\na@x.example,{}\n",
                "x".repeat(1 << 20)
            ),
            "line 2",
            Some("display_name"),
        ),
        row(
            "csv bad email",
            "hr.csv",
            format!("{H}not-an-email,A\n"),
            "line 2",
            Some("email_id"),
        ),
        row(
            "csv duplicate email",
            "hr.csv",
            format!("{H}a@x.example,A\nA@X.example,B\n"),
            "line 3",
            Some("email_id"),
        ),
        row(
            "csv unknown column",
            "hr.csv",
            "email_id,departmnt\na@x.example,Sales\n",
            "line 1",
            Some("departmnt"),
        ),
        row(
            "csv both forms",
            "hr.csv",
            "email_id,department,department_id\na@x.example,Sales,123\n",
            "line 2",
            Some("department_id"),
        ),
        row(
            "csv bad manager email",
            "hr.csv",
            "email_id,reporting_to_email\na@x.example,boss\n",
            "line 2",
            Some("reporting_to_email"),
        ),
        row(
            "csv invalid UTF-8",
            "hr.csv",
            [H.as_bytes(), b"a@x.example,An\xffn\n"].concat(),
            "line 2",
            Some("first_name"),
        ),
    ]
}

fn json(value: &str) -> String {
    format!("[{{\"email_id\":\"a@x.example\",\"mobile\":{value}}}]")
}

fn yaml(value: &str) -> String {
    format!("- email_id: a@x.example\n  mobile: {value}\n")
}

fn toml(value: &str) -> String {
    format!("[[users]]\nemail_id = \"a@x.example\"\nmobile = {value}\n")
}

fn document_rows() -> Vec<Row> {
    let r1 = "record 1";
    let m = Some("mobile");
    let big = format!("\"{}\"", "x".repeat(10_000));
    let huge = format!("\"{}\"", "x".repeat(1 << 20));
    vec![
        row("json exponent", "hr.json", json("1e3"), r1, m),
        row("json float", "hr.json", json("1.5"), r1, m),
        row(
            "json float of 23 digits",
            "hr.json",
            json("12345678901234567890123.0"),
            r1,
            m,
        ),
        row("json boolean", "hr.json", json("true"), r1, m),
        row("json signed", "hr.json", json("-5"), r1, m),
        row("json ESC", "hr.json", json("\"5\\u001b[2J\""), r1, m),
        row("json U+202E", "hr.json", json("\"5\\u202e1\""), r1, m),
        row("json newline", "hr.json", json("\"5\\n1\""), r1, m),
        row("json 10 kB", "hr.json", json(&big), r1, m),
        row("json 1 MB", "hr.json", json(&huge), r1, m),
        row(
            "json duplicate key",
            "hr.json",
            "[{\"email_id\":\"a@x.example\",\"mobile\":\"1\",\"mobile\":\"2\"}]",
            r1,
            m,
        ),
        row("json wrong type", "hr.json", json("{\"n\": 1}"), r1, m),
        row(
            "json unknown key",
            "hr.json",
            "[{\"email_id\":\"a@x.example\",\"frist_name\":\"A\"}]",
            r1,
            Some("frist_name"),
        ),
        row(
            "yaml leading plus",
            "hr.yaml",
            yaml("+4915112345678"),
            r1,
            m,
        ),
        row("yaml hex", "hr.yaml", yaml("0x1F"), r1, m),
        row("yaml octal", "hr.yaml", yaml("0o17"), r1, m),
        row("yaml exponent", "hr.yaml", yaml("1e3"), r1, m),
        row("yaml boolean", "hr.yaml", yaml("true"), r1, m),
        row("yaml ESC", "hr.yaml", yaml("\"5\\e[2J\""), r1, m),
        row("yaml NUL", "hr.yaml", yaml("\"5\\0\""), r1, m),
        row("yaml 10 kB", "hr.yaml", yaml(&big), r1, m),
        row(
            "yaml duplicate key",
            "hr.yaml",
            "- email_id: a@x.example\n  mobile: \"1\"\n  mobile: \"2\"\n",
            r1,
            m,
        ),
        row("yaml wrong type", "hr.yaml", yaml("[1, 2]"), r1, m),
        row("toml hex", "hr.toml", toml("0x1F"), r1, m),
        row(
            "toml leading plus",
            "hr.toml",
            toml("+4915112345678"),
            r1,
            m,
        ),
        row("toml exponent", "hr.toml", toml("1e3"), r1, m),
        row("toml boolean", "hr.toml", toml("true"), r1, m),
        row("toml underscores", "hr.toml", toml("1_000"), r1, m),
        row("toml date", "hr.toml", toml("1979-05-27"), r1, m),
        row("toml BEL", "hr.toml", toml("\"5\\u0007\""), r1, m),
        row("toml 1 MB", "hr.toml", toml(&huge), r1, m),
        row(
            "toml bad email",
            "hr.toml",
            "[[users]]\nemail_id = \"nobody\"\n",
            r1,
            Some("email_id"),
        ),
    ]
}

/// No character that could drive a terminal.
fn has_raw_control(s: &str) -> bool {
    s.chars().any(|c| {
        (c.is_control() && c != '\n')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_hr_source_exits_2_names_the_place_and_sends_nothing() {
    let peer = Peer::start().await;
    let rows: Vec<Row> = csv_rows().into_iter().chain(document_rows()).collect();
    assert!(rows.len() >= 30, "{} rows", rows.len());
    let mut failures = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let hr = peer.dir.path().join(format!("{i:02}-{}", r.file));
        std::fs::write(&hr, &r.content).unwrap();
        let extra = format!(
            "[hr]\nsource = \"{}\"\n\n[push]\nenabled = true\n",
            hr.display()
        );
        let config = peer.config(&format!("{i:02}.toml"), &extra);
        for args in [&["plan"][..], &["push"][..]] {
            let out = run(&config, args).await;
            let mut wrong = Vec::new();
            if out.code != Some(2) {
                wrong.push(format!("exit {:?}", out.code));
            }
            let e = &out.stderr;
            let field = r.field.map(|f| format!("field `{f}`"));
            for want in [
                Some(hr.display().to_string()),
                Some(r.location.to_owned()),
                field,
            ]
            .into_iter()
            .flatten()
            {
                if !e.contains(&want) {
                    wrong.push(format!("no '{want}' in the message"));
                }
            }
            if has_raw_control(e) || has_raw_control(&out.stdout) {
                wrong.push("a raw control character reached the terminal".into());
            }
            if peer.requests() != 0 {
                wrong.push(format!("{} requests reached Cliq", peer.requests()));
            }
            if !wrong.is_empty() {
                let shown: String = e.chars().take(300).collect();
                failures.push(format!(
                    "{} / {}: {} — {shown}",
                    r.name,
                    args[0],
                    wrong.join(", ")
                ));
            }
        }
    }
    // The counter is live: a pull through the same config is seen.
    let config = peer.config("ok.toml", "");
    assert_eq!(run(&config, &["sync"]).await.code, Some(0));
    assert!(peer.requests() > 0, "the request counter sees nothing");
    peer.shut().await;
    assert!(
        failures.is_empty(),
        "{} of {} runs wrong:\n{}",
        failures.len(),
        rows.len() * 2,
        failures.join("\n")
    );
}

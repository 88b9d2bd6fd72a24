//! Mapping HR exports as they come (`[hr.columns]`, `[hr.derive]`,
//! `[hr.values.FIELD]`): an export with its own column names and codes is
//! planned and pushed by the real binary against the simulator, with the
//! mapped values.

use std::time::Duration;

use cliq_sync::cliq::Endpoint;
use serde_json::Value;

use crate::crash::{tcp_sim, TcpSim};

const MAPPING: &str = r#"
[push]
enabled = true

[hr]
source = "{dir}/hr.csv"

# rename, then derive, then value maps
[hr.columns]
"Work Email" = "email_id"
"Dept Code" = "department"
"First" = "first_name"
"Last" = "last_name"

[hr.derive]
display_name = "{{ first_name | trim }} {{ last_name | upper }}"

[hr.values.department]
"ENG" = "Engineering"
"#;

async fn cli(ts: &TcpSim, args: &[&str]) -> (i32, String, String) {
    let out = ts.cli(args).output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The config of `ts` with `extra` appended, `{dir}` filled in.
async fn mapped_sim(extra: &str) -> TcpSim {
    let ts = tcp_sim(20, Duration::ZERO, "[sync]\nteams = \"off\"").await;
    let text = std::fs::read_to_string(&ts.config).unwrap()
        + &extra.replace("{dir}", &ts.dir().display().to_string());
    std::fs::write(&ts.config, text).unwrap();
    ts
}

fn email(u: &Value) -> String {
    u["email_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_with_its_own_columns_and_codes_is_planned_and_pushed_mapped() {
    let ts = mapped_sim(MAPPING).await;
    let (code, _, err) = cli(&ts, &["sync", "--full"]).await;
    assert_eq!(code, 0, "{err}");
    let users = ts.sim.users();
    let (a, b) = (email(&users[3]), email(&users[4]));
    std::fs::write(
        ts.dir().join("hr.csv"),
        format!("Work Email,Dept Code,First,Last\n{a},ENG, Ada ,Lovelace\n{b},ENG,Grace,Hopper\n"),
    )
    .unwrap();

    let (code, out, err) = cli(&ts, &["plan", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let text = plan.to_string();
    for shown in ["Ada LOVELACE", "Grace HOPPER", "Engineering"] {
        assert!(text.contains(shown), "plan --json lacks {shown}: {text}");
    }
    let (code, human, err) = cli(&ts, &["plan"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        human.contains("Ada LOVELACE"),
        "plan lacks the derived name:\n{human}"
    );
    assert!(
        human.contains("(Engineering)"),
        "plan lacks the mapped department:\n{human}"
    );
    assert!(!human.contains("ENG"), "{human}");

    let (code, _, err) = cli(&ts, &["push"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(ts.requests(Endpoint::UpdateUser), 2, "one PUT per person");
    let after = ts.sim.users();
    for (who, name) in [(&a, "Ada LOVELACE"), (&b, "Grace HOPPER")] {
        let u = after.iter().find(|u| email(u) == *who).unwrap();
        assert_eq!(u["display_name"], name, "{u}");
        assert_eq!(u["department"]["name"], "Engineering", "{u}");
        assert_eq!(
            u["first_name"],
            if name.starts_with("Ada") {
                "Ada"
            } else {
                "Grace"
            }
        );
    }

    // check-config prints the tables back, as valid TOML.
    let (code, out, err) = cli(&ts, &["check-config"]).await;
    assert_eq!(code, 0, "{err}");
    let effective: toml::Table = out.parse().unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(
        effective["hr"]["columns"]["Work Email"].as_str(),
        Some("email_id")
    );
    assert_eq!(
        effective["hr"]["values"]["department"]["ENG"].as_str(),
        Some("Engineering")
    );
    ts.shut().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_values_get_the_readers_checks_and_unmapped_codes_are_refused() {
    let ts = mapped_sim(MAPPING).await;
    let (code, _, err) = cli(&ts, &["sync", "--full"]).await;
    assert_eq!(code, 0, "{err}");
    let users = ts.sim.users();
    let (a, b) = (email(&users[3]), email(&users[4]));
    // A derived name over the length limit (100), and a code with no mapping.
    let long = "x".repeat(60);
    std::fs::write(
        ts.dir().join("hr.csv"),
        format!("Work Email,Dept Code,First,Last\n{a},ENG,{long},{long}\n{b},MKT,Grace,Hopper\n"),
    )
    .unwrap();
    let (code, _, err) = cli(&ts, &["push"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 2: field `display_name`"), "{err}");
    assert!(err.contains("at most 100"), "{err}");
    assert!(
        err.contains("line 3: field `department`: 'MKT' is not in [hr.values.department]"),
        "{err}"
    );
    assert_eq!(ts.requests(Endpoint::UpdateUser), 0, "nothing is pushed");
    ts.shut().await;
}

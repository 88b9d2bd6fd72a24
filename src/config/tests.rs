use std::path::Path;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::keys::{closest, distance, Node, Walk};
use super::*;
use crate::cliq::Endpoint;

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cliq-sync.toml");
    std::fs::write(&path, toml).unwrap();
    Settings::load_with_env(
        Some(&path),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .map_err(|e| {
        // Make the temp path predictable in messages.
        let text = e.to_string().replace(&path.display().to_string(), "FILE");
        ConfigError::Load(text)
    })
}

fn err(toml: &str, env: &[(&str, &str)]) -> String {
    load(toml, env).unwrap_err().to_string()
}

#[test]
fn the_exemplar_fills_every_optional_part() {
    // A new Option<…> section left as None here would make its keys
    // "unknown": fill it in Settings::exemplar().
    fn no_nulls(v: &serde_json::Value, path: &str) {
        match v {
            serde_json::Value::Null => panic!("{path} is null in Settings::exemplar()"),
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    no_nulls(v, &format!("{path}.{k}"));
                }
            }
            _ => {}
        }
    }
    no_nulls(&serde_json::to_value(Settings::exemplar()).unwrap(), "");
}

#[test]
fn the_documented_example_config_has_only_known_keys() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/cliq-sync.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let table = toml::de::DeTable::parse(&text).unwrap();
    let mut walk = Walk::default();
    walk.file(&Node::schema(), &path, &text, table.get_ref());
    assert!(walk.unknown.is_empty(), "{:?}", walk.unknown);
}

#[test]
fn defaults_are_valid() {
    Settings::default().validate().unwrap();
    Settings::load_with_env(None, Vec::new()).unwrap();
}

#[test]
fn edit_distance_counts_a_swap_as_one() {
    assert_eq!(distance("clinet_id", "client_id"), 1);
    assert_eq!(distance("enabld", "enabled"), 1);
    assert_eq!(distance("", "abc"), 3);
    assert_eq!(distance("full", "push"), 3);
    assert_eq!(
        closest("clinet_id", ["client_id", "data_center"]),
        Some("client_id")
    );
    // Too far to be a typo: no guess.
    assert_eq!(closest("full", ["push"]), None);
    assert_eq!(closest("zzz", ["log", "hr"]), None);
}

#[test]
fn unknown_file_key_names_file_line_and_closest_key() {
    let e = err("[cliq]\nclient_id = \"a\"\nclinet_id = \"b\"\n", &[]);
    assert_eq!(
        e,
        "FILE:3: unknown key cliq.clinet_id; did you mean cliq.client_id?"
    );
}

#[test]
fn unknown_section_is_named_as_a_section() {
    let e = err("[clq]\nclient_id = \"a\"\n", &[]);
    assert_eq!(e, "FILE:1: unknown section [clq]; did you mean [cliq]?");
}

#[test]
fn unknown_key_in_an_inline_table() {
    let e = err("[limits]\nlist_users = { request = 5 }\n", &[]);
    assert_eq!(
        e,
        "FILE:2: unknown key limits.list_users.request; did you mean limits.list_users.requests?"
    );
}

#[test]
fn dotted_keys_and_sub_tables_are_walked() {
    let e = err("[limits.list_users]\nrequest = 5\n", &[]);
    assert!(
        e.starts_with("FILE:2: unknown key limits.list_users.request;"),
        "{e}"
    );
    let e = err("cliq.page_sise = 5\n", &[]);
    assert_eq!(
        e,
        "FILE:1: unknown key cliq.page_sise; did you mean cliq.page_size?"
    );
}

#[test]
fn a_key_in_the_wrong_section_points_to_the_right_one() {
    let e = err("[cliq]\nlisten = \"0.0.0.0:9464\"\n", &[]);
    assert_eq!(
        e,
        "FILE:2: unknown key cliq.listen; did you mean server.listen?"
    );
    // Ambiguous (every [limits] entry has `requests`): no guess, the list.
    let e = err("[limits]\nrequests = 5\n", &[]);
    assert!(
        e.starts_with("FILE:2: unknown key limits.requests (valid here: "),
        "{e}"
    );
    assert!(e.contains("list_users"), "{e}");
}

#[test]
fn far_from_everything_lists_the_valid_keys() {
    let e = err("[log]\nverbosity = 3\n", &[]);
    assert_eq!(
        e,
        "FILE:2: unknown key log.verbosity (valid here: format, level)"
    );
}

#[test]
fn keys_are_case_sensitive_in_the_file() {
    let e = err("[cliq]\nClient_ID = \"a\"\n", &[]);
    assert_eq!(
        e,
        "FILE:2: unknown key cliq.Client_ID; did you mean cliq.client_id?"
    );
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let e = err("[push]\nenabeld = true\n[log]\nlevl = \"debug\"\n", &[]);
    assert_eq!(e.lines().count(), 2, "{e}");
    assert!(e.contains("FILE:2: unknown key push.enabeld; did you mean push.enabled?"));
    assert!(e.contains("FILE:4: unknown key log.levl; did you mean log.level?"));
}

#[test]
fn unknown_env_key_names_the_variable_and_the_right_one() {
    let e = err("", &[("CLIQ_SYNC__PUSH__ENABLD", "true")]);
    assert_eq!(
        e,
        "environment variable CLIQ_SYNC__PUSH__ENABLD: unknown key push.enabld; \
         did you mean push.enabled (CLIQ_SYNC__PUSH__ENABLED)?"
    );
    let e = err("", &[("CLIQ_SYNC__CLIQQ__CLIENT_ID", "x")]);
    assert_eq!(
        e,
        "environment variable CLIQ_SYNC__CLIQQ__CLIENT_ID: unknown key cliqq.client_id; \
         did you mean cliq.client_id (CLIQ_SYNC__CLIQ__CLIENT_ID)?"
    );
    // Other variables are none of our business.
    load("", &[("CLIQ_SYNC_CONFIG", "x"), ("CLIQ_SYNC_BIN", "y")]).unwrap();
}

#[test]
fn env_overrides_still_work() {
    let s = load(
        "[push]\nenabled = false\n",
        &[
            ("CLIQ_SYNC__PUSH__ENABLED", "true"),
            ("CLIQ_SYNC__LIMITS__LIST_USERS__REQUESTS", "7"),
            ("CLIQ_SYNC__SYNC__OVERLAP", "10 minutes"),
        ],
    )
    .unwrap();
    assert!(s.push.enabled);
    assert_eq!(s.limits.list_users.unwrap().requests, Some(7));
    assert_eq!(s.sync.overlap, Duration::from_secs(600));
}

#[test]
fn bad_duration_names_key_and_place() {
    let e = err("[sync]\noverlap = \"ten\"\n", &[]);
    assert!(
        e.starts_with("FILE:2: sync.overlap: invalid duration \"ten\""),
        "{e}"
    );
    let e = err("", &[("CLIQ_SYNC__CLIQ__REQUEST_TIMEOUT", "soon")]);
    assert!(
        e.starts_with(
            "environment variable CLIQ_SYNC__CLIQ__REQUEST_TIMEOUT: cliq.request_timeout: invalid duration \"soon\""
        ),
        "{e}"
    );
    let e = err("[limits]\nlist_users = { per = \"1 fortnight\" }\n", &[]);
    assert!(
        e.starts_with("FILE:2: limits.list_users.per: invalid duration"),
        "{e}"
    );
    let e = err("[cliq]\nrequest_timeout = \"0s\"\n", &[]);
    assert!(
        e.starts_with("FILE:2: cliq.request_timeout: must be longer than zero"),
        "{e}"
    );
    // humantime's long forms are fine.
    let s = load("[sync]\noverlap = \"10 minutes\"\n", &[]).unwrap();
    assert_eq!(s.sync.overlap, Duration::from_secs(600));
}

#[test]
fn wrong_type_names_key_and_place() {
    let e = err("[cliq]\npage_size = \"many\"\n", &[]);
    assert_eq!(
        e,
        "FILE:2: cliq.page_size: expected an integer, found string \"many\""
    );
}

#[test]
fn bad_cron_names_key_and_shows_the_format() {
    let e = err("[schedule]\nincremental = \"*/5 * * *\"\n", &[]);
    assert!(
        e.starts_with(
            "FILE:2: schedule.incremental: \"*/5 * * *\" is not a valid cron line (it has 4 fields)"
        ),
        "{e}"
    );
    assert!(e.contains("\"0 */5 * * * *\""), "{e}");
    let e = err("[schedule]\nfull = \"0 61 2 * * *\"\n", &[]);
    assert!(
        e.starts_with("FILE:2: schedule.full: \"0 61 2 * * *\" is not a valid cron line ("),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    let e = err("", &[("CLIQ_SYNC__SCHEDULE__PUSH", "every hour")]);
    assert!(
        e.starts_with("environment variable CLIQ_SYNC__SCHEDULE__PUSH: schedule.push: "),
        "{e}"
    );
    // 6 and 7 fields are both fine.
    load(
        "[schedule]\nincremental = \"0 */5 * * * *\"\nfull = \"0 30 2 * * * *\"\n",
        &[],
    )
    .unwrap();
}

#[test]
fn urls_must_be_https_unless_loopback() {
    for ok in [
        "https://cliq.example.com",
        "https://cliq.example.com:8443/",
        "http://127.0.0.1:8080",
        "http://127.1.2.3",
        "http://[::1]:8080",
        "http://localhost:8080",
        "HTTP://LOCALHOST",
        "https://127.0.0.1",
    ] {
        check_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, why) in [
        ("http://cliq.example.com", "clear text"),
        ("http://10.0.0.1:8080", "clear text"),
        ("http://[::2]", "clear text"),
        ("http://127.0.0.1.nip.io", "clear text"),
        ("http://localhost.example.com", "clear text"),
        ("ftp://127.0.0.1", "scheme ftp:// is not supported"),
        ("file:///etc/passwd", "scheme file:// is not supported"),
        ("cliq.zoho.eu", "is not a valid URL"),
        ("https://", "is not a valid URL"),
        ("https://user:pw@cliq.example.com", "user name or password"),
    ] {
        let e = check_url(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
        assert!(!e.contains(":pw@"), "{bad}: {e}");
    }
}

#[test]
fn every_data_centre_default_is_https() {
    for dc in crate::cliq::dc::DataCenter::ALL {
        check_url(dc.api_base()).unwrap();
        check_url(dc.accounts_base()).unwrap();
        assert!(dc.api_base().starts_with("https://"));
        assert!(dc.accounts_base().starts_with("https://"));
    }
}

#[test]
fn refused_url_names_key_place_and_reason() {
    let e = err("[cliq]\nbase_url = \"http://cliq.example.com\"\n", &[]);
    assert_eq!(
        e,
        "FILE:2: cliq.base_url: \"http://cliq.example.com\" is refused: plain http:// would send \
         the OAuth tokens in clear text; use https:// (http:// is only allowed to a loopback host)"
    );
    let e = err("", &[("CLIQ_SYNC__CLIQ__ACCOUNTS_URL", "not a url")]);
    assert!(
        e.starts_with(
            "environment variable CLIQ_SYNC__CLIQ__ACCOUNTS_URL: cliq.accounts_url: \"not a url\" is not a valid URL"
        ),
        "{e}"
    );
}

#[test]
fn syntax_errors_do_not_quote_the_line() {
    let e = err("[cliq]\nclient_secret = \"s3cr3t-VALUE-xyz\n", &[]);
    assert!(e.starts_with("FILE: TOML parse error at line 2"), "{e}");
    assert!(!e.contains("s3cr3t"), "{e}");
}

#[test]
fn removal_breaker_keys_default_and_validate() {
    let s = load("", &[]).unwrap();
    assert_eq!(
        (s.sync.max_removals, s.sync.max_removal_fraction),
        (500, 0.1)
    );
    let s = load(
        "[sync]\nmax_removals = 20\nmax_removal_fraction = 0.5\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        (s.sync.max_removals, s.sync.max_removal_fraction),
        (20, 0.5)
    );
    let e = err("[sync]\nmax_removal_fraction = 1.5\n", &[]);
    assert!(e.contains("sync.max_removal_fraction"), "{e}");
    assert!(e.contains("between 0 and 1"), "{e}");
    let e = err("[sync]\nmax_removals = -1\n", &[]);
    assert!(e.contains("sync.max_removals"), "{e}");
}

// ------------------------------------------------------------ issue 9, point 11

#[test]
fn an_inline_secret_from_the_environment_wins_over_the_files_file_form() {
    // "Every key can be overridden": the variable replaces the file's
    // client_secret_file instead of clashing with it ("not both").
    let s = load(
        "[cliq]\nclient_secret_file = \"/nonexistent/secret\"\n",
        &[("CLIQ_SYNC__CLIQ__CLIENT_SECRET", "from-env")],
    )
    .unwrap();
    assert_eq!(s.client_secret().unwrap().expose_secret(), "from-env");
    assert!(s.cliq.client_secret_file.is_none());
    // And the other way round: a _file variable beats the file's inline value.
    let s = load(
        "[cliq]\nrefresh_token = \"inline\"\n",
        &[("CLIQ_SYNC__CLIQ__REFRESH_TOKEN_FILE", "/run/secrets/rt")],
    )
    .unwrap();
    assert!(s.cliq.refresh_token.is_none());
    assert_eq!(
        s.cliq.refresh_token_file.as_deref(),
        Some(Path::new("/run/secrets/rt"))
    );
    // Both forms in the same layer are still a mistake.
    let e = err(
        "[cliq]\nclient_secret = \"a\"\nclient_secret_file = \"/x\"\n",
        &[],
    );
    assert!(e.contains("not both"), "{e}");
}

#[test]
fn booleans_are_strict_in_the_file_and_in_variables() {
    for (toml, env) in [
        ("[push]\nenabled = \"yes\"\n", vec![]),
        ("[push]\nenabled = \"true\"\n", vec![]),
        ("[push]\ncreate_missing = 1\n", vec![]),
        ("", vec![("CLIQ_SYNC__PUSH__ENABLED", "yes")]),
        ("", vec![("CLIQ_SYNC__PUSH__ENABLED", "on")]),
        ("", vec![("CLIQ_SYNC__PUSH__ENABLED", "1")]),
    ] {
        let e = err(toml, &env);
        assert!(e.contains("push."), "{toml} {env:?}: {e}");
        assert!(e.contains("true or false"), "{toml} {env:?}: {e}");
    }
    let s = load("[push]\nenabled = true\n", &[]).unwrap();
    assert!(s.push.enabled);
    let s = load("", &[("CLIQ_SYNC__PUSH__ENABLED", "true")]).unwrap();
    assert!(s.push.enabled);
    let s = load(
        "[push]\nenabled = true\n",
        &[("CLIQ_SYNC__PUSH__ENABLED", "false")],
    )
    .unwrap();
    assert!(!s.push.enabled);
}

#[test]
fn log_levels_are_checked_and_filters_still_work() {
    let e = err("[log]\nlevel = \"verbose\"\n", &[]);
    assert!(e.starts_with("FILE:2: log.level: "), "{e}");
    assert!(e.contains("off, error, warn, info, debug, trace"), "{e}");
    for ok in ["info", "DEBUG", "warn,cliq_sync::cliq=debug", "off"] {
        let toml = format!("[log]\nlevel = \"{ok}\"\n");
        load(&toml, &[]).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    assert!(err("[log]\nlevel = \"cliq_sync=loud\"\n", &[]).contains("log.level"));
}

#[test]
fn listen_must_be_an_address_and_port() {
    let e = err("[server]\nlisten = \"abc\"\n", &[]);
    assert!(e.starts_with("FILE:2: server.listen: "), "{e}");
    load("[server]\nlisten = \"0.0.0.0:9464\"\n", &[]).unwrap();
    load("[server]\nlisten = \"[::1]:9464\"\n", &[]).unwrap();
}

#[test]
fn a_cron_line_that_never_fires_is_refused() {
    let e = err("[schedule]\nfull = \"0 0 0 30 2 *\"\n", &[]);
    assert!(e.starts_with("FILE:2: schedule.full: "), "{e}");
    assert!(e.contains("never fires"), "{e}");
    // Once every four years is rare, not never.
    load("[schedule]\nfull = \"0 0 0 29 2 *\"\n", &[]).unwrap();
}

#[test]
fn limits_above_the_documented_quota_need_an_explicit_choice() {
    for entry in [
        "list_users = { requests = 31 }",
        "update_user = { per = \"30s\" }",
        "get_user = { lock = \"1m\" }",
    ] {
        let e = err(&format!("[limits]\n{entry}\n"), &[]);
        assert!(e.starts_with("FILE:2: limits."), "{e}");
        assert!(e.contains("allow_above_documented = true"), "{e}");
    }
    // Lowering is always fine.
    load(
        "[limits]\nlist_users = { requests = 10, per = \"2m\" }\n",
        &[],
    )
    .unwrap();
    let s = load(
        "[limits]\nallow_above_documented = true\nlist_users = { requests = 1000 }\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        s.limits
            .to_limits()
            .unwrap()
            .get(Endpoint::ListUsers)
            .requests,
        1000
    );
    assert_eq!(s.limits.above_documented(), vec!["limits.list_users"]);
}

#[test]
fn schedule_timezone_takes_an_iana_name_and_suggests_one() {
    assert_eq!(load("", &[]).unwrap().schedule.timezone, "UTC");
    let s = load("[schedule]\ntimezone = \"Europe/Berlin\"\n", &[]).unwrap();
    assert_eq!(s.schedule.timezone, "Europe/Berlin");
    let e = err("[schedule]\ntimezone = \"Europe/Berln\"\n", &[]);
    assert!(e.starts_with("FILE:2: schedule.timezone: "), "{e}");
    assert!(e.contains("did you mean \"Europe/Berlin\"?"), "{e}");
    let e = err("", &[("CLIQ_SYNC__SCHEDULE__TIMEZONE", "Mars/Olympus")]);
    assert!(e.contains("schedule.timezone") && e.contains("IANA"), "{e}");
}

#[test]
fn five_field_cron_is_accepted_and_never_firing_lines_are_refused_in_any_zone() {
    let s = load(
        "[schedule]\nincremental = \"*/5 * * * *\"\nfull = \"30 2 * * *\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.schedule.full, "30 2 * * *");
    for toml in [
        "[schedule]\nfull = \"0 0 30 2 *\"\n",
        "[schedule]\ntimezone = \"Asia/Tokyo\"\nfull = \"0 0 0 30 2 *\"\n",
        "[schedule]\ntimezone = \"America/New_York\"\nfull = \"0 0 31 4 *\"\n",
    ] {
        let e = err(toml, &[]);
        assert!(
            e.contains("schedule.full") && e.contains("never fires"),
            "{e}"
        );
    }
}

#[test]
fn push_scope_globs_are_checked_at_load_and_name_the_entry() {
    let ok = load(
        "[push]\ninclude = [\"*@eng.example\"]\nexclude = [\"ceo@example.com\", \"svc-*@example.com\"]\n\
         exclude_departments = [\"Board\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(ok.push.include, ["*@eng.example"]);
    assert_eq!(ok.push.exclude, ["ceo@example.com", "svc-*@example.com"]);
    assert_eq!(ok.push.exclude_departments, ["Board"]);
    let d = Settings::default();
    assert_eq!(d.push.include, ["*"]);
    assert!(d.push.exclude.is_empty() && d.push.exclude_departments.is_empty());

    let bad = err(
        "[push]\nexclude = [\"ceo@example.com\", \"svc-[*@example.com\"]\n",
        &[],
    );
    assert!(bad.starts_with("FILE:2: push.exclude[1]: "), "{bad}");
    assert!(bad.contains("svc-[*@example.com"), "{bad}");
    let empty = err("[push]\ninclude = [\"*\", \"  \"]\n", &[]);
    assert!(
        empty.contains("push.include[1]") && empty.contains("empty"),
        "{empty}"
    );
    let none = err("[push]\ninclude = []\n", &[]);
    assert!(
        none.contains("push.include") && none.contains("[\"*\"]"),
        "{none}"
    );
    let dept = err("[push]\nexclude_departments = [\"\"]\n", &[]);
    assert!(dept.contains("push.exclude_departments[0]"), "{dept}");
}

// ------------------------------------------------------------ issue 12, point 5

#[test]
fn push_on_conflict_is_overwrite_skip_or_hold_and_a_bad_value_names_the_key() {
    let on_conflict =
        |s: &Settings| serde_json::to_value(s).unwrap()["push"]["on_conflict"].clone();
    assert_eq!(on_conflict(&load("", &[]).unwrap()), "overwrite");
    for v in ["overwrite", "skip", "hold"] {
        let s = load(&format!("[push]\non_conflict = \"{v}\"\n"), &[]).unwrap();
        assert_eq!(on_conflict(&s), v);
    }
    let s = load("", &[("CLIQ_SYNC__PUSH__ON_CONFLICT", "skip")]).unwrap();
    assert_eq!(on_conflict(&s), "skip");
    let e = err("[push]\non_conflict = \"ask\"\n", &[]);
    assert!(e.contains("push.on_conflict"), "{e}");
    assert!(e.contains("FILE:2"), "{e}");
    assert!(
        e.contains("overwrite") && e.contains("skip") && e.contains("hold"),
        "{e}"
    );
    let e = err("", &[("CLIQ_SYNC__PUSH__ON_CONFLICT", "Skip")]);
    assert!(e.contains("push.on_conflict"), "{e}");
    assert!(e.contains("CLIQ_SYNC__PUSH__ON_CONFLICT"), "{e}");
}

#[test]
fn hr_mapping_tables_take_any_key_but_a_misspelt_table_is_caught() {
    let s = load(
        "[hr]\nsource = \"/x/hr.csv\"\n[hr.columns]\n\"Work Email\" = \"email_id\"\n\
         [hr.derive]\ndisplay_name = \"{{ first_name }}\"\n\
         [hr.values.department]\n\"ENG\" = \"Engineering\"\n",
        &[],
    )
    .expect("free-form keys are valid");
    let hr = s.hr.unwrap();
    assert_eq!(hr.columns["Work Email"], "email_id");
    assert_eq!(
        hr.values["department"]["ENG"], "Engineering",
        "keys keep their case"
    );
    assert_eq!(hr.mapping().unwrap().rename("WORK EMAIL"), "email_id");
    let e = err(
        "[hr]\nsource = \"/x/hr.csv\"\n[hr.colums]\n\"A\" = \"email_id\"\n",
        &[],
    );
    assert!(e.contains("did you mean hr.columns"), "{e}");
    let e = err(
        "[hr]\nsource = \"/x/hr.csv\"\n[hr.derive]\ndisplay_name = \"{{ nick }}\"\n",
        &[],
    );
    assert!(e.contains("hr.derive.display_name"), "{e}");
}

// ------------------------------------------------------------ issue 12, point 1

#[test]
fn push_on_threshold_is_hold_or_fail_and_a_typo_names_the_key() {
    let on_threshold =
        |s: &Settings| serde_json::to_value(s).unwrap()["push"]["on_threshold"].clone();
    assert_eq!(on_threshold(&load("", &[]).unwrap()), "hold");
    for v in ["hold", "fail"] {
        let s = load(&format!("[push]\non_threshold = \"{v}\"\n"), &[]).unwrap();
        assert_eq!(on_threshold(&s), v);
    }
    let e = err("[push]\non_threshold = \"retry\"\n", &[]);
    assert!(e.contains("push.on_threshold"), "{e}");
    assert!(e.contains("FILE:2"), "{e}");
    assert!(e.contains("\"hold\" or \"fail\""), "{e}");
    // A misspelt key is unknown, with the "did you mean".
    let e = err("[push]\non_treshold = \"fail\"\n", &[]);
    assert!(e.contains("push.on_treshold"), "{e}");
    assert!(e.contains("on_threshold"), "{e}");
}

// ------------------------------------------------- issue 10, point 2 (enums)

#[test]
fn a_misspelt_choice_names_key_and_line_and_suggests_the_closest() {
    for (toml, want) in [
        (
            "[sync]\n\nteams = \"chnaged\"\n",
            "FILE:3: sync.teams: must be \"off\", \"changed\" or \"all\", found \"chnaged\"; \
             did you mean \"changed\"?",
        ),
        (
            "[log]\nformat = \"jsno\"\n",
            "FILE:2: log.format: must be \"pretty\" or \"json\", found \"jsno\"; \
             did you mean \"json\"?",
        ),
        (
            "[cliq]\nclient_id = \"a\"\nupdate_body = \"wraped\"\n",
            "FILE:3: cliq.update_body: must be \"wrapped\" or \"flat\", found \"wraped\"; \
             did you mean \"wrapped\"?",
        ),
        (
            "[sync]\nstatus_listing = \"per-status\"\n",
            "FILE:2: sync.status_listing: must be \"combined\" or \"per_status\", \
             found \"per-status\"; did you mean \"per_status\"?",
        ),
    ] {
        assert_eq!(err(toml, &[]), want, "{toml}");
    }
    // Far from every choice: no guess, still the choices.
    let e = err("[sync]\nteams = \"everything\"\n", &[]);
    assert!(e.starts_with("FILE:2: sync.teams: must be"), "{e}");
    assert!(!e.contains("did you mean"), "{e}");
}

#[test]
fn choices_are_typed_once_loaded() {
    let s = load(
        "[sync]\nteams = \"all\"\nstatus_listing = \"per_status\"\n[log]\nformat = \"json\"\n\
         [cliq]\nupdate_body = \"flat\"\nmodified_after_format = \"epoch_millis\"\n",
        &[],
    )
    .unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["sync"]["teams"], "all");
    assert_eq!(v["sync"]["status_listing"], "per_status");
    assert_eq!(v["log"]["format"], "json");
    assert_eq!(v["cliq"]["update_body"], "flat");
    assert_eq!(v["cliq"]["modified_after_format"], "epoch_millis");
    let e = err("", &[("CLIQ_SYNC__LOG__FORMAT", "Json")]);
    assert!(
        e.contains("log.format") && e.contains("CLIQ_SYNC__LOG__FORMAT"),
        "{e}"
    );
    assert!(e.contains("did you mean \"json\"?"), "{e}");
}

//! Bad configs: see the module doc of `adversarial`.
//!
//! Each row is one defect in an otherwise valid config (in the file, in a
//! `CLIQ_SYNC__…` variable or in a secret file), run through the real
//! binary twice, as `check-config` and as `sync` against a simulator on a
//! loopback port. Every run must exit 2 with a message that names where
//! the defect is (the config file and line, the variable, or the secret
//! file) and the key, and not one request (not even a token mint) may
//! reach the simulator.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cliq_sync::clock::Clock;
use cliq_sync::sim::{SimConfig, Simulator};
use tokio_util::sync::CancellationToken;

/// Where the message must say the defect is.
enum Place {
    /// `FILE:LINE: KEY` with the line of `section.key` (or of `[section]`
    /// when `key` is empty) in the config file.
    File(&'static str, &'static str),
    /// `environment variable VAR`.
    Env(&'static str),
    /// The secret file's path (`{dir}/NAME`).
    Secret(&'static str),
    /// `FILE` and `line N` (a TOML syntax error, found before any key).
    Syntax(usize),
}

/// What is in the secret file location `{dir}/NAME` before the run.
enum SecretSetup {
    None,
    /// Name, mode, content.
    File(&'static str, u32, &'static str),
    Dir(&'static str),
}

struct Row {
    name: &'static str,
    /// `(section, key, Some(TOML value) | None to remove)` applied to the base.
    edits: Vec<(&'static str, &'static str, Option<&'static str>)>,
    /// Raw text appended to the file (after the sections).
    raw: &'static str,
    env: Vec<(&'static str, &'static str)>,
    secret: SecretSetup,
    place: Place,
    /// The key the message must name.
    key: &'static str,
    /// Further text the message must contain ...
    says: &'static str,
    /// ... and text it must not.
    not: &'static str,
}

fn row(name: &'static str, place: Place, key: &'static str, says: &'static str) -> Row {
    Row {
        name,
        edits: Vec::new(),
        raw: "",
        env: Vec::new(),
        secret: SecretSetup::None,
        place,
        key,
        says,
        not: "",
    }
}

impl Row {
    fn set(mut self, section: &'static str, key: &'static str, value: &'static str) -> Self {
        self.edits.push((section, key, Some(value)));
        self
    }
    fn unset(mut self, section: &'static str, key: &'static str) -> Self {
        self.edits.push((section, key, None));
        self
    }
    fn env(mut self, var: &'static str, value: &'static str) -> Self {
        self.env.push((var, value));
        self
    }
    fn secret(mut self, s: SecretSetup) -> Self {
        self.secret = s;
        self
    }
    fn raw(mut self, raw: &'static str) -> Self {
        self.raw = raw;
        self
    }
    fn not(mut self, not: &'static str) -> Self {
        self.not = not;
        self
    }
}

/// File rows: one defect in the config file each.
fn file_rows() -> Vec<Row> {
    use Place::File;
    vec![
        row(
            "unknown key",
            File("cliq", "clinet_id"),
            "cliq.clinet_id",
            "did you mean cliq.client_id",
        )
        .set("cliq", "clinet_id", "\"1000.X\""),
        row(
            "unknown section",
            File("clq", ""),
            "clq",
            "did you mean [cliq]",
        )
        .set("clq", "client_id", "\"1000.X\""),
        row(
            "bad duration",
            File("sync", "overlap"),
            "sync.overlap",
            "invalid duration",
        )
        .set("sync", "overlap", "\"ten\""),
        row(
            "zero timeout",
            File("cliq", "request_timeout"),
            "cliq.request_timeout",
            "longer than zero",
        )
        .set("cliq", "request_timeout", "\"0s\""),
        // 5-field cron is accepted (issue 11); 4 fields are not cron.
        row(
            "4-field cron",
            File("schedule", "incremental"),
            "schedule.incremental",
            "has 4 fields",
        )
        .set("schedule", "incremental", "\"*/5 * * *\""),
        row(
            "cron prose",
            File("schedule", "push"),
            "schedule.push",
            "not a valid cron line",
        )
        .set("schedule", "push", "\"every 15 minutes\""),
        row(
            "cron that never fires",
            File("schedule", "full"),
            "schedule.full",
            "never fires",
        )
        .set("schedule", "full", "\"0 0 0 30 2 *\""),
        row(
            "bad URL",
            File("cliq", "base_url"),
            "cliq.base_url",
            "not a valid URL",
        )
        .set("cliq", "base_url", "\"::not a url::\""),
        row(
            "http to non-loopback",
            File("cliq", "accounts_url"),
            "cliq.accounts_url",
            "clear text",
        )
        .set("cliq", "accounts_url", "\"http://accounts.example.com\""),
        row(
            "unknown data centre",
            File("cliq", "data_center"),
            "cliq.data_center",
            "mars",
        )
        .set("cliq", "data_center", "\"mars\""),
        row(
            "page size 0",
            File("cliq", "page_size"),
            "cliq.page_size",
            "between 1 and 100",
        )
        .set("cliq", "page_size", "0"),
        row(
            "page size of the wrong type",
            File("cliq", "page_size"),
            "cliq.page_size",
            "expected",
        )
        .set("cliq", "page_size", "\"many\""),
        row(
            "modified_after_format",
            File("cliq", "modified_after_format"),
            "cliq.modified_after_format",
            "epoch_millis",
        )
        .set("cliq", "modified_after_format", "\"iso\""),
        row(
            "update_body",
            File("cliq", "update_body"),
            "cliq.update_body",
            "wrapped",
        )
        .set("cliq", "update_body", "\"nested\""),
        row(
            "both secret forms in the file",
            File("cliq", "client_secret"),
            "cliq.client_secret",
            "not both",
        )
        .set("cliq", "client_secret_file", "\"{dir}/client_secret\"")
        .secret(SecretSetup::File("client_secret", 0o600, "s3cret\n")),
        row("log level", File("log", "level"), "log.level", "trace").set(
            "log",
            "level",
            "\"verbose\"",
        ),
        row("log format", File("log", "format"), "log.format", "json")
            .set("log", "format", "\"xml\""),
        row(
            "listen",
            File("server", "listen"),
            "server.listen",
            "address",
        )
        .set("server", "listen", "\"abc\""),
        row(
            "no connections",
            File("server", "max_connections"),
            "server.max_connections",
            "at least 1",
        )
        .set("server", "max_connections", "0"),
        row(
            "limits above the documented quota",
            File("limits", "list_users"),
            "limits.list_users",
            "allow_above_documented",
        )
        .set("limits", "list_users", "{ requests = 1000 }"),
        row(
            "limits window shorter than documented",
            File("limits", "update_user"),
            "limits.update_user",
            "allow_above_documented",
        )
        .set("limits", "update_user", "{ per = \"10s\" }"),
        row(
            "limits zero requests",
            File("limits", "get_user"),
            "limits.get_user",
            "at least 1",
        )
        .set("limits", "get_user", "{ requests = 0 }"),
        row(
            "boolean as a string",
            File("push", "enabled"),
            "push.enabled",
            "true or false",
        )
        .set("push", "enabled", "\"yes\""),
        row(
            "boolean as a number",
            File("push", "create_missing"),
            "push.create_missing",
            "true or false",
        )
        .set("push", "create_missing", "1"),
        row("teams mode", File("sync", "teams"), "sync.teams", "changed")
            .set("sync", "teams", "\"some\""),
        row(
            "status listing",
            File("sync", "status_listing"),
            "sync.status_listing",
            "per_status",
        )
        .set("sync", "status_listing", "\"per_team\""),
        row(
            "source drop over 1",
            File("push", "max_source_drop"),
            "push.max_source_drop",
            "between 0 and 1",
        )
        .set("push", "max_source_drop", "2.0"),
        row(
            "add batch 0",
            File("push", "add_batch_size"),
            "push.add_batch_size",
            "between 1 and 100",
        )
        .set("push", "add_batch_size", "0"),
        row(
            "managed field unknown",
            File("hr", "managed_fields"),
            "hr.managed_fields",
            "salary",
        )
        .set("hr", "source", "\"{dir}/hr.csv\"")
        .set("hr", "managed_fields", "[\"salary\"]"),
        row(
            "rename to an unknown field",
            File("hr.columns", "\"Work Email\""),
            "hr.columns.Work Email",
            "'emial_id' is not a field; did you mean 'email_id'?",
        )
        .set("hr", "source", "\"{dir}/hr.csv\"")
        .set("hr.columns", "\"Work Email\"", "\"emial_id\""),
        row(
            "two columns renamed to one field",
            File("hr.columns", "Given"),
            "hr.columns.Given",
            "'First' is renamed to first_name too",
        )
        .set("hr", "source", "\"{dir}/hr.csv\"")
        .set("hr.columns", "First", "\"first_name\"")
        .set("hr.columns", "Given", "\"first_name\""),
        row(
            "template syntax error",
            File("hr.derive", "display_name"),
            "hr.derive.display_name",
            "the template does not parse",
        )
        .set("hr", "source", "\"{dir}/hr.csv\"")
        .set("hr.derive", "display_name", "\"{{ first_name \""),
        row(
            "template names an unknown field",
            File("hr.derive", "display_name"),
            "hr.derive.display_name",
            "'first' is not a field",
        )
        .set("hr", "source", "\"{dir}/hr.csv\"")
        .set(
            "hr.derive",
            "display_name",
            "\"{{ first }} {{ last_name }}\"",
        ),
        row(
            "template with an unknown filter",
            File("hr.derive", "display_name"),
            "hr.derive.display_name",
            "unknown filter 'lowr'; did you mean 'lower'?",
        )
        .set("hr", "source", "\"{dir}/hr.csv\"")
        .set("hr.derive", "display_name", "\"{{ first_name | lowr }}\""),
        row(
            "value map on an unknown field",
            File("hr.values.departmnt", ""),
            "hr.values.departmnt",
            "did you mean 'department'?",
        )
        .set("hr", "source", "\"{dir}/hr.csv\"")
        .set("hr.values.departmnt", "ENG", "\"Engineering\""),
        row("TOML syntax", Place::Syntax(10), "", "TOML parse error")
            .raw("[extra]\nclient_id = \"unterminated\n"),
    ]
}

/// Environment and secret-file rows.
fn other_rows() -> Vec<Row> {
    use Place::{Env, Secret};
    vec![
        row(
            "unknown variable",
            Env("CLIQ_SYNC__PUSH__ENABLE"),
            "push.enable",
            "did you mean push.enabled",
        )
        .env("CLIQ_SYNC__PUSH__ENABLE", "true"),
        row(
            "variable: bad duration",
            Env("CLIQ_SYNC__CLIQ__REQUEST_TIMEOUT"),
            "cliq.request_timeout",
            "invalid duration",
        )
        .env("CLIQ_SYNC__CLIQ__REQUEST_TIMEOUT", "forever"),
        row(
            "variable: wrong type",
            Env("CLIQ_SYNC__CLIQ__PAGE_SIZE"),
            "cliq.page_size",
            "expected",
        )
        .env("CLIQ_SYNC__CLIQ__PAGE_SIZE", "lots"),
        row(
            "variable: log level",
            Env("CLIQ_SYNC__LOG__LEVEL"),
            "log.level",
            "trace",
        )
        .env("CLIQ_SYNC__LOG__LEVEL", "loud"),
        row(
            "variable: listen",
            Env("CLIQ_SYNC__SERVER__LISTEN"),
            "server.listen",
            "address",
        )
        .env("CLIQ_SYNC__SERVER__LISTEN", "abc"),
        row(
            "variable: boolean yes",
            Env("CLIQ_SYNC__PUSH__ENABLED"),
            "push.enabled",
            "true or false",
        )
        .env("CLIQ_SYNC__PUSH__ENABLED", "yes"),
        row(
            "variable: boolean 1",
            Env("CLIQ_SYNC__PUSH__CREATE_MISSING"),
            "push.create_missing",
            "true or false",
        )
        .env("CLIQ_SYNC__PUSH__CREATE_MISSING", "1"),
        row(
            "variable: cron that never fires",
            Env("CLIQ_SYNC__SCHEDULE__FULL"),
            "schedule.full",
            "never fires",
        )
        .env("CLIQ_SYNC__SCHEDULE__FULL", "0 0 0 31 4 *"),
        row(
            "secret file open to others",
            Secret("client_secret"),
            "cliq.client_secret_file",
            "chmod 600",
        )
        .unset("cliq", "client_secret")
        .set("cliq", "client_secret_file", "\"{dir}/client_secret\"")
        .secret(SecretSetup::File("client_secret", 0o644, "s3cret\n")),
        row(
            "secret path is a directory",
            Secret("secrets.d"),
            "cliq.refresh_token_file",
            "directory",
        )
        .unset("cliq", "refresh_token")
        .set("cliq", "refresh_token_file", "\"{dir}/secrets.d\"")
        .secret(SecretSetup::Dir("secrets.d"))
        .not("mode 0"),
        row(
            "secret file empty",
            Secret("client_secret"),
            "cliq.client_secret_file",
            "empty",
        )
        .unset("cliq", "client_secret")
        .set("cliq", "client_secret_file", "\"{dir}/client_secret\"")
        .secret(SecretSetup::File("client_secret", 0o600, " \n")),
    ]
}

/// The base config: valid, pointed at the simulator.
fn base(addr: &str, sim: &SimConfig) -> BTreeMap<&'static str, Vec<(&'static str, String)>> {
    let mut m = BTreeMap::new();
    m.insert(
        "cliq",
        vec![
            ("base_url", format!("\"http://{addr}\"")),
            ("accounts_url", format!("\"http://{addr}\"")),
            ("client_id", format!("\"{}\"", sim.client_id)),
            ("client_secret", format!("\"{}\"", sim.client_secret)),
            ("refresh_token", format!("\"{}\"", sim.refresh_token)),
        ],
    );
    m.insert("mirror", vec![("path", "\"{dir}/mirror.db\"".to_owned())]);
    m
}

/// The config file of `row` and the line of its defect.
fn render(addr: &str, sim: &SimConfig, dir: &Path, row: &Row) -> (String, Option<usize>) {
    let mut sections = base(addr, sim);
    for (section, key, value) in &row.edits {
        let entries = sections.entry(section).or_default();
        entries.retain(|(k, _)| k != key);
        if let Some(v) = value {
            entries.push((key, (*v).to_owned()));
        }
    }
    let mut text = String::new();
    let mut line = None;
    let mut n = 0;
    for (section, entries) in &sections {
        text.push_str(&format!("[{section}]\n"));
        n += 1;
        if let Place::File(s, "") = row.place {
            if s == *section {
                line = Some(n);
            }
        }
        for (k, v) in entries {
            text.push_str(&format!("{k} = {v}\n"));
            n += 1;
            if let Place::File(s, key) = row.place {
                if s == *section && key == *k {
                    line = Some(n);
                }
            }
        }
    }
    text.push_str(row.raw);
    (text.replace("{dir}", &dir.display().to_string()), line)
}

fn prepare(dir: &Path, setup: &SecretSetup) {
    match setup {
        SecretSetup::None => {}
        SecretSetup::File(name, mode, content) => {
            let p = dir.join(name);
            std::fs::write(&p, content).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        SecretSetup::Dir(name) => {
            let p = dir.join(name);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

async fn run(config: &Path, cmd: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CLIQ_SYNC") {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG")
        .arg("--config")
        .arg(config)
        .arg(cmd)
        .envs(env.iter().copied())
        .kill_on_drop(true);
    let Ok(out) = tokio::time::timeout(std::time::Duration::from_secs(10), c.output()).await else {
        return (None, "(did not end within 10 s)".into());
    };
    let out = out.unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What is wrong with one run's outcome (empty: nothing).
fn judge(
    row: &Row,
    config: &Path,
    dir: &Path,
    line: Option<usize>,
    code: Option<i32>,
    err: &str,
) -> Vec<String> {
    let mut wrong = Vec::new();
    if code != Some(2) {
        wrong.push(format!("exit code {code:?}, not 2"));
    }
    let mut want = vec![row.key.to_owned(), row.says.to_owned()];
    match row.place {
        Place::File(..) => match line {
            Some(l) => want.push(format!("{}:{l}: ", config.display())),
            None => wrong.push("(row error: no line for the key)".into()),
        },
        Place::Env(var) => want.push(format!("environment variable {var}")),
        Place::Secret(name) => want.push(dir.join(name).display().to_string()),
        Place::Syntax(l) => {
            want.push(config.display().to_string());
            want.push(format!("line {l}"));
        }
    }
    for w in want.iter().filter(|w| !w.is_empty()) {
        if !err.contains(w.as_str()) {
            wrong.push(format!("message lacks {w:?}"));
        }
    }
    if !row.not.is_empty() && err.contains(row.not) {
        wrong.push(format!("message says {:?}", row.not));
    }
    wrong
}

struct LoopbackSim {
    sim: Simulator,
    addr: String,
    stop: CancellationToken,
}

async fn loopback_sim() -> LoopbackSim {
    let sim = Simulator::new(
        SimConfig {
            users: 5,
            ..SimConfig::default()
        },
        Clock::system(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = CancellationToken::new();
    tokio::spawn(sim.clone().serve(listener, stop.clone().cancelled_owned()));
    LoopbackSim { sim, addr, stop }
}

fn requests_seen(sim: &Simulator) -> u64 {
    let c = sim.counters();
    c.requests.values().sum::<u64>() + c.tokens_minted + c.token_refusals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_config_exits_2_naming_place_and_key_and_sends_nothing() {
    let sim = loopback_sim().await;
    let sim_cfg = SimConfig::default();
    let rows: Vec<Row> = file_rows().into_iter().chain(other_rows()).collect();
    assert!(rows.len() >= 25, "{} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path(), &row.secret);
        let (text, line) = render(&sim.addr, &sim_cfg, dir.path(), row);
        let config: PathBuf = dir.path().join("cliq-sync.toml");
        std::fs::write(&config, &text).unwrap();
        for cmd in ["check-config", "sync"] {
            let before = requests_seen(&sim.sim);
            let (code, err) = run(&config, cmd, &row.env).await;
            let mut wrong = judge(row, &config, dir.path(), line, code, &err);
            let sent = requests_seen(&sim.sim) - before;
            if sent > 0 {
                wrong.push(format!("{sent} requests reached the simulator"));
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "{} ({cmd}): {}\n    stderr: {}",
                    row.name,
                    wrong.join("; "),
                    err.trim()
                ));
            }
        }
    }
    sim.stop.cancel();
    assert!(
        failures.is_empty(),
        "{} of {} runs ({} rows) wrong:\n{}",
        failures.len(),
        rows.len() * 2,
        rows.len(),
        failures.join("\n")
    );
}

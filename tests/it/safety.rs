//! Safety of the installation: typos are errors (with "did you mean"),
//! tokens only travel over HTTPS (or to loopback), secret files must be
//! private, secrets never show up in output, the mirror is 0640, and every
//! config problem is exit code 2 through the real binary.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use cliq_sync::app::App;
use cliq_sync::cliq::transport::{RouterTransport, Transport};
use cliq_sync::clock::Clock;
use cliq_sync::config::{ConfigError, Settings};
use cliq_sync::mirror::Store;
use cliq_sync::sim::{SimConfig, Simulator};
use cliq_sync::sync::{pull, PullKind};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::helpers::{base_time, settings_for, Logs};

const SECRET: &str = "s3cr3t-VALUE-xyz";
const REFRESH: &str = "r3fr3sh-VALUE-xyz";

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn load(config: &Path, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load_with_env(
        Some(config),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

/// A config whose secrets come from files in `dir`.
fn config_with_secret_files(dir: &Path, mode: u32) -> (PathBuf, PathBuf, PathBuf) {
    let secret = write(dir, "client_secret", &format!("{SECRET}\n"), mode);
    let refresh = write(dir, "refresh_token", &format!("  {REFRESH}\n\n"), 0o600);
    let config = write(
        dir,
        "cliq-sync.toml",
        &format!(
            "[cliq]\nclient_id = \"1000.ID\"\nclient_secret_file = \"{}\"\n\
             refresh_token_file = \"{}\"\n[mirror]\npath = \"{}\"\n",
            secret.display(),
            refresh.display(),
            dir.join("mirror.db").display()
        ),
        0o644,
    );
    (config, secret, refresh)
}

fn no_secret_in(what: &str, text: &str) {
    for s in [SECRET, REFRESH] {
        assert!(!text.contains(s), "{what} shows a secret: {text}");
    }
}

// ------------------------------------------------------------ unknown keys

#[test]
fn an_unknown_key_in_the_file_is_an_error_with_file_line_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.toml",
        "[cliq]\ndata_center = \"eu\"\nclinet_id = \"1000.X\"\n",
        0o644,
    );
    let e = load(&config, &[]).unwrap_err();
    assert!(matches!(e, ConfigError::UnknownKeys(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3: unknown key cliq.clinet_id; did you mean cliq.client_id?",
            config.display()
        )
    );
}

#[test]
fn an_unknown_key_from_the_environment_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "c.toml", "", 0o644);
    let e = load(&config, &[("CLIQ_SYNC__CLIQ__CLINET_ID", "1000.X")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "environment variable CLIQ_SYNC__CLIQ__CLINET_ID: unknown key cliq.clinet_id; \
         did you mean cliq.client_id (CLIQ_SYNC__CLIQ__CLIENT_ID)?"
    );
}

#[test]
fn a_typo_never_falls_back_to_a_default() {
    // Each of these would otherwise silently keep the default.
    let dir = tempfile::tempdir().unwrap();
    for (toml, env) in [
        ("[push]\nenable = true\n", None),
        ("[push]\nmax_changes_per_runs = 5\n", None),
        ("[limit]\nlist_users = { requests = 5 }\n", None),
        ("[schedule]\nincremantal = \"0 * * * * *\"\n", None),
        ("", Some(("CLIQ_SYNC__PUSH__ENABLE", "true"))),
        ("", Some(("CLIQ_SYNC__PUSHH__ENABLED", "true"))),
    ] {
        let config = write(dir.path(), "c.toml", toml, 0o644);
        let env: Vec<_> = env.into_iter().collect();
        let e = load(&config, &env).unwrap_err().to_string();
        assert!(e.contains("unknown"), "{toml} {env:?}: {e}");
        assert!(e.contains("did you mean"), "{toml} {env:?}: {e}");
    }
}

#[test]
fn bad_values_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (toml, key, expect) in [
        (
            "[sync]\noverlap = \"ten\"\n",
            "sync.overlap",
            "invalid duration",
        ),
        (
            "[schedule]\nincremental = \"*/5 * * *\"\n",
            "schedule.incremental",
            "\"0 */5 * * * *\"",
        ),
        (
            "[schedule]\npush = \"every 15 minutes\"\n",
            "schedule.push",
            "\"0 */5 * * * *\"",
        ),
        (
            "[cliq]\nbase_url = \"::not a url::\"\n",
            "cliq.base_url",
            "is not a valid URL",
        ),
    ] {
        let config = write(dir.path(), "c.toml", toml, 0o644);
        let e = load(&config, &[]).unwrap_err().to_string();
        let at = format!("{}:2: {key}: ", config.display());
        assert!(e.starts_with(&at), "{e}");
        assert!(e.contains(expect), "{e}");
    }
}

// ------------------------------------------------------------ HTTPS

#[test]
fn tokens_only_travel_over_https_unless_to_loopback() {
    let dir = tempfile::tempdir().unwrap();
    for (key, url) in [
        ("base_url", "http://cliq.example.com"),
        ("accounts_url", "http://accounts.example.com:8080"),
        ("accounts_url", "ftp://127.0.0.1"),
    ] {
        let config = write(
            dir.path(),
            "c.toml",
            &format!("[cliq]\n{key} = \"{url}\"\n"),
            0o644,
        );
        let e = load(&config, &[]).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:2: cliq.{key}: ", config.display())),
            "{e}"
        );
        assert!(e.contains("refused"), "{e}");
    }
    let config = write(
        dir.path(),
        "c.toml",
        "[cliq]\nbase_url = \"http://127.0.0.1:8080\"\naccounts_url = \"http://[::1]:8080\"\n",
        0o644,
    );
    load(&config, &[]).unwrap();
    let config = write(dir.path(), "c.toml", "", 0o644);
    load(
        &config,
        &[("CLIQ_SYNC__CLIQ__BASE_URL", "http://localhost:8080")],
    )
    .unwrap();
}

#[tokio::test]
async fn settings_built_in_code_get_the_https_rule_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings_for(&SimConfig::default(), dir.path());
    s.cliq.accounts_url = Some("http://accounts.example.com".into());
    let transport: Arc<dyn Transport> = Arc::new(RouterTransport::new(
        Simulator::new(SimConfig::default(), Clock::system()).router(),
    ));
    let e = App::open_with(s, Clock::system(), transport)
        .await
        .unwrap_err();
    let e = format!("{e:#}");
    assert!(e.starts_with("cliq.accounts_url: "), "{e}");
    assert!(e.contains("clear text"), "{e}");
    assert!(
        !dir.path().join("mirror.db").exists(),
        "refused before the mirror"
    );
}

// ------------------------------------------------------------ secret files

#[test]
fn a_secret_file_open_to_group_or_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        let (config, secret, _) = config_with_secret_files(dir.path(), mode);
        let e = load(&config, &[]).unwrap_err();
        assert!(matches!(e, ConfigError::SecretFileMode { .. }), "{e:?}");
        let e = e.to_string();
        assert_eq!(
            e,
            format!(
                "cliq.client_secret_file: {p} is open to group or others (mode {mode:04o}); \
                 run chmod 600 {p} (a secret file you own must be private, as ssh requires for keys)",
                p = secret.display()
            )
        );
        no_secret_in("the mode error", &e);
    }
}

#[test]
fn a_private_secret_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o600, 0o400] {
        let (config, _, _) = config_with_secret_files(dir.path(), mode);
        let s = load(&config, &[]).unwrap();
        assert_eq!(s.client_secret().unwrap().expose_secret(), SECRET);
        assert_eq!(s.refresh_token().unwrap().expose_secret(), REFRESH);
        s.check_secrets().unwrap();
    }
}

#[test]
fn a_secret_file_owned_by_someone_else_is_judged_by_its_owner() {
    // Kubernetes Secret volume with fsGroup: 0440 root:<fsGroup>. Only root
    // can build that situation in a test (chown); as anyone else, skip.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to chown a file to another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (config, secret, _) = config_with_secret_files(dir.path(), 0o440);
    std::os::unix::fs::chown(&secret, Some(65534), Some(65534)).unwrap();
    let s = load(&config, &[]).unwrap();
    assert_eq!(s.client_secret().unwrap().expose_secret(), SECRET);
    // The same file owned by us is refused.
    std::os::unix::fs::chown(&secret, Some(0), Some(0)).unwrap();
    assert!(matches!(
        load(&config, &[]).unwrap_err(),
        ConfigError::SecretFileMode { mode: 0o440, .. }
    ));
}

#[test]
fn a_missing_or_empty_secret_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (config, secret, refresh) = config_with_secret_files(dir.path(), 0o600);
    std::fs::remove_file(&secret).unwrap();
    // Loading works (`status` needs no secret, and may run as another user);
    // reading the secret does not.
    let s = load(&config, &[]).unwrap();
    let e = s.client_secret().unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "cliq.client_secret_file: cannot read {}: ",
            secret.display()
        )),
        "{e}"
    );
    assert!(s.check_secrets().is_err());

    write(dir.path(), "refresh_token", " \n\t\n", 0o600);
    let e = s.refresh_token().unwrap_err().to_string();
    assert_eq!(
        e,
        format!("cliq.refresh_token_file: {} is empty", refresh.display())
    );
}

// ------------------------------------------------------------ secrets never shown

#[test]
fn settings_debug_masked_toml_and_errors_show_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    // Inline secrets (from the file and from the environment).
    let config = write(
        dir.path(),
        "c.toml",
        &format!("[cliq]\nclient_secret = \"{SECRET}\"\n"),
        0o644,
    );
    let s = load(&config, &[("CLIQ_SYNC__CLIQ__REFRESH_TOKEN", REFRESH)]).unwrap();
    assert_eq!(s.client_secret().unwrap().expose_secret(), SECRET);
    assert_eq!(s.refresh_token().unwrap().expose_secret(), REFRESH);
    no_secret_in("Debug", &format!("{s:?}"));
    no_secret_in("Debug", &format!("{s:#?}"));
    let masked = s.to_masked_toml();
    no_secret_in("check-config", &masked);
    assert!(masked.contains("client_secret = \"***\""), "{masked}");
    assert!(masked.contains("refresh_token = \"***\""), "{masked}");

    // Secret files: the path is shown, never the contents.
    let (config, secret, _) = config_with_secret_files(dir.path(), 0o600);
    let s = load(&config, &[]).unwrap();
    no_secret_in("Debug", &format!("{s:?}"));
    let masked = s.to_masked_toml();
    no_secret_in("check-config", &masked);
    assert!(masked.contains(&secret.display().to_string()), "{masked}");

    // Errors that involve a secret.
    let mut errors = Vec::new();
    let (config, _, _) = config_with_secret_files(dir.path(), 0o644);
    errors.push(load(&config, &[]).unwrap_err().to_string());
    for toml in [
        format!("[cliq]\nclient_secert = \"{SECRET}\"\n"),
        format!("[cliq]\nclient_secret = [\"{SECRET}\"]\n"),
        format!("[cliq]\nclient_secret = {{ v = \"{SECRET}\" }}\n"),
        format!("[cliq]\nclient_secret = \"{SECRET}\"\nclient_secret_file = \"/x\"\n"),
        format!("[cliq]\nclient_secret = \"{SECRET}\n"),
    ] {
        let config = write(dir.path(), "c.toml", &toml, 0o644);
        errors.push(load(&config, &[]).unwrap_err().to_string());
    }
    let config = write(dir.path(), "c.toml", "", 0o644);
    errors.push(
        load(&config, &[("CLIQ_SYNC__CLIQ__REFRESH_TOKN", REFRESH)])
            .unwrap_err()
            .to_string(),
    );
    assert_eq!(errors.len(), 7);
    for e in &errors {
        no_secret_in("an error", e);
    }
    assert!(
        errors[1].contains("did you mean cliq.client_secret?"),
        "{}",
        errors[1]
    );
}

#[tokio::test(start_paused = true)]
async fn app_token_manager_and_logs_show_no_secret() {
    let logs = Logs::default();
    let _guard = logs.capture("trace");

    let clock = Clock::anchored(base_time());
    let sim_cfg = SimConfig {
        users: 30,
        client_secret: SECRET.into(),
        refresh_token: REFRESH.into(),
        ..SimConfig::default()
    };
    let sim = Simulator::new(sim_cfg.clone(), clock.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_for(&sim_cfg, dir.path());
    settings.sync.teams = cliq_sync::config::TeamsMode::Off;
    let transport: Arc<dyn Transport> = Arc::new(RouterTransport::new(sim.router()));
    let app = App::open_with(settings, clock, transport).await.unwrap();

    let access: SecretString = app.auth.token().await.unwrap();
    let access = access.expose_secret().to_owned();
    assert!(access.len() >= 8, "a distinctive access token: {access}");
    let report = pull(&app, PullKind::Full, &CancellationToken::new())
        .await
        .unwrap();
    assert!(report.ok());
    // And once more after the token expired and was refreshed.
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    pull(&app, PullKind::Full, &CancellationToken::new())
        .await
        .unwrap();

    // The shared token cache (`<mirror>.token`, 0600) holds the access
    // token but neither secret, and its contents never reach the logs.
    let cache = std::fs::read_to_string(dir.path().join("mirror.db.token")).unwrap();
    no_secret_in("the token cache", &cache);
    let cached: serde_json::Value = serde_json::from_str(&cache).unwrap();
    let cached_token = cached["access_token"].as_str().unwrap().to_owned();
    let logs = logs.text();
    assert!(!logs.is_empty(), "trace logs were captured");
    assert!(
        !logs.contains(&cached_token),
        "the logs show the cached token"
    );
    assert!(!logs.contains(&cache), "the logs show the token cache");
    for (what, text) in [
        ("App Debug", format!("{app:?}")),
        ("App Debug", format!("{app:#?}")),
        ("TokenManager Debug", format!("{:?}", app.auth)),
        ("logs", logs),
    ] {
        no_secret_in(what, &text);
        assert!(!text.contains(&access), "{what} shows the access token");
    }
}

// ------------------------------------------------------------ mirror modes

/// The process umask, read without changing it (changing it would race
/// with every other test creating files in this process).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[tokio::test]
async fn the_mirror_and_its_wal_and_shm_are_0640() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.db");
    let store = Store::open(&path, &Clock::system()).await.unwrap();
    {
        let mut tx = store.write().await.unwrap();
        for sql in ["CREATE TABLE probe (x)", "INSERT INTO probe VALUES (1)"] {
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    // 0640 as created, less whatever the umask takes away (systemd's UMask=
    // 0027 keeps it; a stricter umask is the admin's choice). SQLite gives
    // -wal and -shm the main file's mode.
    let expected = 0o640 & !umask();
    for name in ["mirror.db", "mirror.db-wal", "mirror.db-shm"] {
        let meta =
            std::fs::metadata(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mode = meta.mode() & 0o777;
        assert_eq!(mode, expected, "{name} has mode {mode:04o}");
        assert_eq!(mode & 0o007, 0, "{name} is open to others");
        assert_eq!(mode & 0o022, 0, "{name} is writable by group or others");
    }
    store.close().await;
}

// ------------------------------------------------------------ the binary

fn cliq_sync(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"));
    // Only the variables this test sets.
    for (k, _) in std::env::vars() {
        if k.starts_with("CLIQ_SYNC") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG")
        .args(args)
        .envs(env.iter().copied());
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_config_exits_2_naming_file_key_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "bad.toml",
        "[cliq]\ndata_center = \"eu\"\nclinet_id = \"1000.X\"\n",
        0o644,
    );
    let out = cliq_sync(&["--config", config.to_str().unwrap(), "check-config"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:3", config.display())), "{err}");
    assert!(err.contains("cliq.clinet_id"), "{err}");
    assert!(err.contains("did you mean cliq.client_id?"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing printed as the effective config"
    );
}

#[test]
fn every_config_problem_is_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empty = write(d, "empty.toml", "", 0o644);
    let empty = empty.to_str().unwrap();
    for (var, value, expect) in [
        ("CLIQ_SYNC__LOG__LEVL", "debug", "CLIQ_SYNC__LOG__LEVL"),
        (
            "CLIQ_SYNC__CLIQ__BASE_URL",
            "http://cliq.example.com",
            "cliq.base_url",
        ),
        ("CLIQ_SYNC__SCHEDULE__FULL", "30 2 * *", "schedule.full"),
        ("CLIQ_SYNC__SYNC__OVERLAP", "ten", "sync.overlap"),
    ] {
        let out = cliq_sync(&["--config", empty, "check-config"], &[(var, value)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert!(err.contains(expect), "{var}: {err}");
    }

    // An open secret file: refused by check-config already.
    let (config, secret, _) = config_with_secret_files(d, 0o644);
    let out = cliq_sync(&["--config", config.to_str().unwrap(), "check-config"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", secret.display())),
        "{err}"
    );
    no_secret_in("stderr", &err);
    no_secret_in("stdout", &String::from_utf8_lossy(&out.stdout));

    // A missing secret file: refused by a command that needs it, before the
    // mirror is created.
    let (config, secret, _) = config_with_secret_files(d, 0o600);
    std::fs::remove_file(&secret).unwrap();
    let out = cliq_sync(&["--config", config.to_str().unwrap(), "sync"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&secret.display().to_string()), "{err}");
    assert!(!d.join("mirror.db").exists());
}

#[test]
fn the_documented_example_configs_pass_check_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = write(d, "client_secret", &format!("{SECRET}\n"), 0o600);
    let refresh = write(d, "refresh_token", &format!("{REFRESH}\n"), 0o600);
    let mirror = d.join("mirror.db");
    for (config, hr) in [
        ("config/cliq-sync.toml", "config/hr.example.csv"),
        (
            "deploy/kubernetes/cliq-sync.toml",
            "deploy/kubernetes/hr.csv",
        ),
    ] {
        let config = root.join(config);
        let hr = root.join(hr);
        let out = cliq_sync(
            &["--config", config.to_str().unwrap(), "check-config"],
            &[
                (
                    "CLIQ_SYNC__CLIQ__CLIENT_SECRET_FILE",
                    secret.to_str().unwrap(),
                ),
                (
                    "CLIQ_SYNC__CLIQ__REFRESH_TOKEN_FILE",
                    refresh.to_str().unwrap(),
                ),
                ("CLIQ_SYNC__MIRROR__PATH", mirror.to_str().unwrap()),
                ("CLIQ_SYNC__HR__SOURCE", hr.to_str().unwrap()),
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            config.display(),
            stderr(&out)
        );
        assert!(stdout.contains("[cliq]"), "{stdout}");
        no_secret_in("check-config", &stdout);
    }
}

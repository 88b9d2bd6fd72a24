//! Opening mirrors this binary did not just make: one from a newer
//! cliq-sync (refused plainly, exit 2 from every command), one from an older
//! one, and one on a read-only filesystem (ops teams read mirrors from
//! read-only mounts: `status` must work there). Also: error chains say
//! each thing once.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use cliq_sync::clock::Clock;
use cliq_sync::mirror::runs::RunKind;
use cliq_sync::mirror::Store;

/// A config for the mirror at `dir/mirror.db`, with an HR file, pointing at
/// a loopback port nobody listens on (nothing here may reach Cliq).
fn config(dir: &Path) -> PathBuf {
    let hr = dir.join("hr.csv");
    std::fs::write(&hr, "email_id,department\na@example.com,Sales\n").unwrap();
    let path = dir.join("cliq-sync.toml");
    std::fs::write(
        &path,
        format!(
            "[cliq]\nbase_url = \"http://127.0.0.1:9\"\naccounts_url = \"http://127.0.0.1:9\"\n\
             client_id = \"1000.X\"\nclient_secret = \"s\"\nrefresh_token = \"r\"\n\
             [mirror]\npath = \"{}\"\n[hr]\nsource = \"{}\"\n",
            dir.join("mirror.db").display(),
            hr.display()
        ),
    )
    .unwrap();
    path
}

fn cliq_sync(config: &Path, args: &[&str], as_nobody: bool) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cliq-sync"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CLIQ_SYNC") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("RUST_LOG")
        .arg("--config")
        .arg(config)
        .args(args);
    // Root writes through any mode bits: run as nobody so that read-only
    // means read-only.
    // SAFETY: geteuid has no preconditions.
    if as_nobody && unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A mirror with one run, closed, as a lone file (no -wal/-shm).
async fn make_mirror(dir: &Path) -> PathBuf {
    let work = tempfile::tempdir().unwrap();
    let built = work.path().join("mirror.db");
    let store = Store::open(&built, &Clock::system()).await.unwrap();
    store
        .start_run(RunKind::Full, Clock::system().now())
        .await
        .unwrap();
    store.close().await;
    // close() normally removes the WAL, but a pool connection's worker
    // thread may still be closing: fold the WAL in and copy the main file
    // alone.
    sql(&built, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    let path = dir.join("mirror.db");
    std::fs::copy(&built, &path).unwrap();
    path
}

/// One connection of the project's one driver, on `db` as it is.
async fn connect(db: &Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
    sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap()
}

async fn sql(db: &Path, statement: &str) {
    use sqlx::Connection;
    let mut conn = connect(db).await;
    sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_mirror_from_a_newer_version_says_upgrade_with_exit_2_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = make_mirror(dir.path()).await;
    sql(
        &db,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (20991231000001, 'from the future', 1, x'00', 0)",
    )
    .await;
    let config = config(dir.path());
    let mut wrong = Vec::new();
    for args in [
        &["status"][..],
        &["sync"],
        &["plan"],
        &["push", "--dry-run"],
        &["push"],
        &["run"],
    ] {
        let out = cliq_sync(&config, args, false);
        let err = text(&out.stderr);
        let ok = out.status.code() == Some(2)
            && err.contains("made by a newer cliq-sync")
            && err.contains("20991231000001")
            && err.contains("upgrade");
        if !ok {
            wrong.push(format!(
                "{args:?}: exit {:?}: {}",
                out.status.code(),
                err.trim()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Make `dir` and everything in it read-only.
fn read_only(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
}

fn writable(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn status_json(config: &Path) -> Result<serde_json::Value, String> {
    let out = cliq_sync(config, &["status", "--json"], true);
    if out.status.code() != Some(0) {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            text(&out.stderr).trim()
        ));
    }
    serde_json::from_str(&text(&out.stdout)).map_err(|e| e.to_string())
}

#[tokio::test]
async fn status_reads_a_mirror_on_a_read_only_filesystem() {
    // Without leftover -wal/-shm (the daemon stopped cleanly).
    let dir = tempfile::tempdir().unwrap();
    make_mirror(dir.path()).await;
    let config = config(dir.path());
    for leftover in ["mirror.db-wal", "mirror.db-shm"] {
        assert!(!dir.path().join(leftover).exists(), "{leftover}");
    }
    read_only(dir.path());
    let clean = status_json(&config);
    writable(dir.path());

    // With leftover -wal/-shm holding the latest run (a copy taken while the
    // daemon had it open, as a snapshot of a live volume would be).
    let live = tempfile::tempdir().unwrap();
    let store = Store::open(&live.path().join("mirror.db"), &Clock::system())
        .await
        .unwrap();
    store
        .start_run(RunKind::Full, Clock::system().now())
        .await
        .unwrap();
    let snap = tempfile::tempdir().unwrap();
    for f in ["mirror.db", "mirror.db-wal", "mirror.db-shm"] {
        std::fs::copy(live.path().join(f), snap.path().join(f)).unwrap();
    }
    store.close().await;
    let config = self::config(snap.path());
    read_only(snap.path());
    let with_wal = status_json(&config);
    writable(snap.path());

    let clean = clean.expect("status on a read-only mirror without -wal/-shm");
    assert_eq!(clean["runs"].as_array().map(Vec::len), Some(1), "{clean}");
    let with_wal = with_wal.expect("status on a read-only mirror with -wal/-shm");
    assert_eq!(
        with_wal["runs"].as_array().map(Vec::len),
        Some(1),
        "the run in the WAL is seen: {with_wal}"
    );
}

#[tokio::test]
async fn status_reports_on_an_older_mirror_without_migrating_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = make_mirror(dir.path()).await;
    sql(
        &db,
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .await;
    let config = config(dir.path());
    let out = cliq_sync(&config, &["status"], false);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("users"), "{stdout}");
    assert!(
        stdout.contains("run any write command") || stderr.contains("run any write command"),
        "{stdout}{stderr}"
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut connect(&db).await)
        .await
        .unwrap();
    let known = cliq_sync::mirror::store::MIGRATIONS.iter().count() as i64;
    assert_eq!(n, known - 1, "status migrated the mirror");
}

#[tokio::test]
async fn error_chains_say_each_thing_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    // The mirror's directory is a regular file.
    std::fs::write(dir.path().join("blocker"), "").unwrap();
    let text_cfg = std::fs::read_to_string(&config)
        .unwrap()
        .replace("mirror.db", "blocker/mirror.db");
    std::fs::write(&config, text_cfg).unwrap();
    for args in [&["sync"][..], &["status"]] {
        let out = cliq_sync(&config, args, false);
        let err = text(&out.stderr);
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
        let parts: Vec<&str> = line.split(": ").collect();
        for w in parts.windows(2) {
            assert_ne!(w[0], w[1], "{args:?}: repeated: {line}");
        }
        assert_eq!(line.matches("os error").count(), 1, "{args:?}: {line}");
    }
}

/// A mirror written by an earlier main (hot writes through its rusqlite
/// connection; 7 of today's migrations): `tests/fixtures/
/// mirror-before-sqlx-only.db`, made by that binary's `sync --full`, twice,
/// against a 40-user simulator with the default config. It opens on the
/// one driver (the newer migrations are added, no table is rewritten),
/// every row reads as that binary wrote it, and a new page writes on top.
#[tokio::test]
async fn a_mirror_written_before_sqlx_only_opens_and_reads_unchanged() {
    use cliq_sync::mirror::users::{ChangeSource, FlatUser};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.db");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mirror-before-sqlx-only.db"
    );
    std::fs::copy(fixture, &path).unwrap();
    let store = Store::open(&path, &Clock::system()).await.unwrap();
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM user_changes),
                (SELECT count(*) FROM user_teams), (SELECT count(*) FROM sync_runs WHERE status = 'ok')",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(counts, (40, 40, 29, 2));
    let (email, department, raw): (String, String, String) = sqlx::query_as(
        "SELECT email_id, department_name, raw_json FROM users WHERE id = '631830982'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        (email.as_str(), department.as_str()),
        ("ava.martinez0@zylker.example", "Zylker Corp")
    );
    let same = FlatUser::from_raw_json(&raw).unwrap().unwrap();
    let renamed = raw.replacen("\"first_name\":\"", "\"first_name\":\"X", 1);
    let renamed = FlatUser::from_raw_json(&renamed).unwrap().unwrap();
    let now = Clock::system().now();
    let run = store.start_run(RunKind::Full, now).await.unwrap();
    let page = store
        .write_users_page(&[same, renamed], run, ChangeSource::Full, now)
        .await
        .unwrap();
    assert_eq!((page.seen, page.added, page.changed), (2, 0, 1));
    let first: String = sqlx::query_scalar("SELECT first_name FROM users WHERE id = '631830982'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(first.starts_with('X'), "{first}");
    store.close().await;
}

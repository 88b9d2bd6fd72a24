//! # cliq-sync
//!
//! Keeps a local SQLite mirror of a Zoho Cliq organisation's users and pushes
//! attribute changes from an HR source into Cliq, on a schedule, without ever
//! tripping Cliq's rate-limit lock periods.
//!
//! ## Layers
//!
//! Lowest first; a module uses its own layer and those below it, never one
//! above, and no modules import each other in a cycle (at the granularity
//! of top-level modules and of the files of `cliq/`, `mirror/` and
//! `sync/`). The test `layers` in `tests/it/` reads `src/` and enforces both.
//!
//! 1. foundations: [`clock`], [`text`], [`json`], [`systemd`], and the
//!    shapes of Cliq's JSON, [`cliq::models`] (the one reader of a user);
//! 2. the store: [`mirror`];
//! 3. talking to Cliq: [`cliq`] (its quota scheduler persists in the store);
//! 4. the test peer and the HR source: [`sim`], [`hr`];
//! 5. the settings: [`config`] (they parse into the types below);
//! 6. moving data and reporting on it: [`sync`], [`status`], [`notify`],
//!    [`progress`], [`logging`];
//! 7. the assembled parts and exit codes: [`app`], [`exit`];
//! 8. the long-running parts: [`server`], [`daemon`];
//! 9. building and running them: [`startup`];
//! 10. the commands: [`check_config`], [`demo`], [`cli`].
//!
//! ## Module map
//!
//! Every module, with its one concern (private modules in plain code
//! spans; the test `crate_doc` in `tests/it/` checks that each is named).
//!
//! * [`clock`]: the one injectable clock (wall-clock UTC that follows tokio's
//!   possibly paused clock in tests).
//! * [`cliq`]: everything that talks to Cliq.
//!   * [`cliq::endpoint`]: the endpoints and their documented quotas;
//!     [`cliq::dc`]: the data centres' API and accounts hosts.
//!   * [`cliq::quotas`]: the quota scheduler, the heart of the product: never
//!     more than N request starts in any window, locks persisted in SQLite and
//!     shared by every process using the same mirror.
//!   * [`cliq::gate`]: the two things the client and the token manager ask
//!     of the scheduler (start a request, report a throttle), beside it so
//!     neither needs the other; [`cliq::stats`]: request counts and durations.
//!   * [`cliq::auth`]: the OAuth access-token cache (single-flight refresh,
//!     across processes through [`cliq::token_file`], `<mirror>.token`).
//!     Files: `cliq::auth::cache` (the token shared across processes),
//!     `cliq::auth::refresh` (minting, single-flight), `cliq::auth::response`
//!     (the token endpoint's answer).
//!   * [`cliq::client`]: the typed client for the six endpoints, with
//!     retries; [`cliq::error`]: its errors and the classification of
//!     HTTP answers into them.
//!     Files: `cliq::client::paginate` (pages, full listings as a stream),
//!     `cliq::client::send` (the request pipeline), `cliq::client::users`
//!     (the single-user endpoints).
//!   * [`cliq::models`]: request and response types that keep unknown fields.
//!     * [`cliq::models::user`]: the one reader of Cliq's user JSON (pull,
//!       client and reconcile; a bare-string reference is a name);
//!       `cliq::models::user::value`: the values its fields hold.
//!     * [`cliq::models::page`]: pages of `GET /users`, typed and raw.
//!     * [`cliq::models::params`]: listing parameters, request-shaping enums.
//!     * [`cliq::models::fields`]: add and update bodies.
//!     * [`cliq::models::batch`]: add and update outcomes.
//!     * [`cliq::models::team`], [`cliq::models::layout`]: teams, layouts.
//!   * [`cliq::transport`]: HTTPS via reqwest, or in-process to the simulator.
//! * [`mirror`]: the SQLite store (WAL, embedded migrations, the public schema,
//!   all its SQL; one driver, sqlx, whose connections run on their own
//!   threads; every write through one door, [`mirror::Store::write`], which
//!   takes the clock hold and the writer turn).
//!   * [`mirror::store`]: opening the database, and the write door
//!     (`mirror::door`: its transaction, `WriteTx`, shared with the
//!     ledger's file); [`mirror::error`]: `StoreError`; `mirror::sqlite`: what the mirror's
//!     SQLite files share (busy timeout, statement logs, private creation).
//!   * [`mirror::column`]: the mirror's user columns, one type shared by
//!     flattening, the plan, the push and the HR attributes.
//!   * [`mirror::users`]: users and their change history, a page at a time
//!     (`mirror::users::wire`: the old path of the user reader).
//!     Files: `mirror::users::flatten` (a user object into the columns),
//!     `mirror::users::page_write` (a page in a few statements),
//!     `mirror::users::first_load` (a first pull builds `users_email` at its end).
//!   * [`mirror::runs`]: `sync_runs`, the watermark, status figures;
//!     `mirror::vocab`: the words of `sync_runs` (run kinds, statuses).
//!   * [`mirror::quotas`]: the quota ledger and endpoint locks;
//!     `mirror::ledger`: the ledger's own file, `<mirror path>.quota`, so a
//!     request start never waits for the mirror's writer.
//!   * [`mirror::lease`]: the owner lease every opener holds (a run belongs
//!     to a live process) and the one-push-per-mirror lock.
//!   * [`mirror::pushes`]: the `pushes` and `push_failures` tables and the
//!     mirror user a plan reads; [`mirror::plan_join`]: the mirror joined
//!     in SQL with the staged HR source, so only what may change crosses;
//!     [`mirror::hr_stage`]: the HR source's records in a temporary SQLite
//!     file (`TMPDIR`), never held whole.
//!   * [`mirror::held`]: held runs; [`mirror::held_plans`]: held plans.
//!   * [`mirror::history`]: a field's history (hand edits in Cliq).
//!   * [`mirror::leavers`]: Cliq users HR no longer lists.
//!   * [`mirror::progress`]: the progress columns of running runs;
//!     `mirror::hub`: the in-process progress hub the bar reads.
//!   * [`mirror::teams`]: team memberships, the teams queue, layouts.
//!   * [`mirror::undo`]: the queries behind `undo`; `mirror::health`: those
//!     behind `status --check`.
//! * [`sim`]: the built-in, strict Cliq simulator (`cliq-sync simulate`).
//!   `sim::api`: the six endpoints (the lookups), by concern in
//!   `sim::api::list` (the listing), `sim::api::add`, `sim::api::update`,
//!   `sim::api::validate` (queries, bodies, their 400s) and
//!   `sim::api::cursor` (listing cursors);
//!   `sim::org`: the seeded organisation; `sim::quotas`: its own quota
//!   table written from the documentation (a test compares it with the
//!   client's); [`sim::admin`]: the loopback fault-injection path.
//!   Files: `sim::config` (knobs and counters), `sim::dispatch` (routing and
//!   faults), `sim::handler` (the axum handler), `sim::oauth` (the token
//!   endpoint), `sim::reply` (answers), `sim::window` (its quota windows and
//!   locks); `sim::org::seed`, `sim::org::view`, `sim::org::change`,
//!   `sim::org::layout` (the organisation: seeded, shown, changed, layouts).
//! * [`sync`]: moving data between Cliq, the mirror and the HR source.
//!   * [`sync::pull`]: Cliq → mirror (full and incremental, removal breaker).
//!     Files: `sync::pull::full` (the removal breaker, what a complete listing
//!     does), `sync::pull::pipeline` (fetch, read, write, overlapped),
//!     `sync::pull::page` (a page read in full or by its users' keys alone),
//!     `sync::pull::teams` (memberships from the queue), `sync::pull::watermark`
//!     (Cliq's clock and the watermark).
//!   * [`sync::plan`]: what a push would change, as index → resolve → diff
//!     over the streamed mirror (`sync::plan::index`,
//!     `sync::plan::resolve`, `sync::plan::diff`), with hand edits found by
//!     [`sync::plan::conflicts`].
//!     `sync::plan::render`: the human table of `plan`.
//!   * [`sync::push`]: HR → Cliq within the quotas, reconciling unknown
//!     outcomes; `sync::push::given`: a push of a given plan whose parts
//!     carry preconditions.
//!     Files: `sync::push::run` (one recorded run), `sync::push::update`,
//!     `sync::push::add`, `sync::push::reconcile` (unknown outcomes re-checked),
//!     `sync::push::safety` (thresholds, held and approved plans),
//!     `sync::push::report`.
//!   * [`sync::reviewed`]: plan files (`plan --out`, `push --plan`);
//!     [`sync::undo`]: the inverse of a push run.
//!   * [`sync::approve`]: held plans and their approval;
//!     `sync::held_plan`: a held plan's content and hash.
//!   * [`sync::progress`]: a long run's progress as it goes (rates, ETA).
//! * [`daemon`]: `cliq-sync run`: cron schedules without overlap, graceful
//!   stop; `daemon::hr_watch`: HR files used only once settled;
//!   `daemon::alerts`: the incidents it raises and clears.
//!   Files: `daemon::schedules` (the cron lines and their zone),
//!   `daemon::state` (its own figures, for `/readyz` and `/metrics`),
//!   `daemon::jobs` (a pull, a push, and what each outcome counts and raises).
//! * [`notify`]: `[[notify]]`: one notification per incident and one on
//!   recovery, rate-limited; `notify::target`: webhook, Slack, Cliq channel
//!   and channel targets; `notify::email`: e-mail over SMTP.
//! * [`status`]: `cliq-sync status [--json] [--check]`.
//! * [`app`]: the assembled parts every command and the daemon share (a pull
//!   takes only its parts, [`sync::PullParts`]).
//! * [`startup`]: builds them ([`app::App::open`]) and the daemon's
//!   long-running parts ([`startup::Application`]: `build`,
//!   `run_until_stopped`); the CLI, `cliq-sync run` and the tests'
//!   `spawn_app` all start here.
//! * [`config`]: layered configuration (defaults, file, environment).
//!   `config::keys`: unknown keys ("did you mean") and each key's origin;
//!   `config::checks`: URLs and cron lines; `config::secrets`: secret
//!   files; `config::notify`: `[[notify]]` entries; [`config::scope`]:
//!   whom a push may write.
//!   Files: `config::settings` (one struct per section), `config::load`
//!   (defaults, file, environment), `config::validate` (checks beyond types),
//!   `config::choice` (closed-set words read by serde), `config::limits`
//!   (quota overrides).
//! * [`hr`]: loading and validating the HR source (CSV, JSON, YAML, TOML).
//!   [`hr::quotes`]: strict CSV quotes; [`hr::doc`]: documents that keep
//!   every scalar's text; [`hr::mapping`]: `[hr.columns]`, `[hr.derive]`,
//!   `[hr.values.FIELD]`.
//!   Files: `hr::attr` (the attributes), `hr::record` (one person and its
//!   checks), `hr::csv`, `hr::document` (JSON, YAML, TOML), `hr::error`,
//!   `hr::staging` (the loaded source: parsed on a blocking thread, its
//!   records staged on disk a batch at a time, duplicates found there).
//! * [`logging`]: the stderr subscriber (pretty, coloured only on a terminal;
//!   or flat JSON).
//! * [`progress`]: the live bar of `sync` and `push` on a terminal.
//! * [`server`]: `/healthz`, `/readyz`, `/metrics`. `server::conns`:
//!   connections served by hand (timeouts, a cap); `server::exposition`:
//!   OpenMetrics or the Prometheus text format; `server::process`: process
//!   metrics from `/proc`.
//!   `server::metrics`: the exposition, computed at scrape time.
//! * [`exit`]: exit codes: [`exit::Failure`] (1 runtime, 2 config, 3 safety),
//!   and those of commands stopped by a signal (130, 143).
//! * [`systemd`]: sd_notify (READY, STATUS, RELOADING, STOPPING, WATCHDOG).
//! * [`demo`]: `cliq-sync demo`, the whole loop against a loopback simulator.
//!   Files: `demo::steps`, `demo::hr_file`, `demo::org_edits`,
//!   `demo::write_side` (held → approved → pushed, and an undo),
//!   `demo::report`, `demo::live`.
//! * [`json`]: the `schema_version` every JSON document carries.
//! * [`text`]: escaping untrusted text in every human-readable output.
//! * [`check_config`]: `check-config [--online]`.
//! * [`cli`]: the command line; `main.rs` only calls [`cli::main`].
//!   `cli::args`: the clap definitions; a handler per command, parse →
//!   build → call → report: `cli::sync`, `cli::status`, `cli::plan`,
//!   `cli::push` (and what every push shares), `cli::given` (`push --plan`,
//!   `undo`), `cli::approve`, `cli::check_config`, `cli::run`,
//!   `cli::simulate`.

pub mod app;
pub(crate) mod check_config;
pub mod cli;
pub mod cliq;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod exit;
pub mod hr;
pub mod json;
pub(crate) mod logging;
pub mod mirror;
pub mod notify;
pub mod progress;
pub mod server;
pub mod sim;
pub mod startup;
pub mod status;
pub mod sync;
pub mod systemd;
pub(crate) mod text;

/// rustls needs one process-wide crypto provider; we ship `ring` (small, no
/// C toolchain beyond a compiler). Installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

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
//! * [`clock`]: the one injectable clock (wall-clock UTC that follows tokio's
//!   possibly paused clock in tests).
//! * [`cliq`]: everything that talks to Cliq.
//!   * [`cliq::endpoint`]: the endpoints and their documented quotas.
//!   * [`cliq::quotas`]: the quota scheduler, the heart of the product: never
//!     more than N request starts in any window, locks persisted in SQLite and
//!     shared by every process using the same mirror.
//!   * [`cliq::gate`]: the two things the client and the token manager ask
//!     of the scheduler (start a request, report a throttle), beside it so
//!     neither needs the other; [`cliq::stats`]: request counts and durations.
//!   * [`cliq::auth`]: the OAuth access-token cache (single-flight refresh,
//!     across processes through [`cliq::token_file`], `<mirror>.token`).
//!     Files: `auth/cache.rs` (adopting and publishing the shared token),
//!     `auth/refresh.rs` (minting), `auth/response.rs` (the token answer).
//!   * [`cliq::client`]: the typed client for the six endpoints, with error
//!     classification and retries.
//!     Files: `client/paginate.rs` (pages, full listings), `client/send.rs`
//!     (the request pipeline), `client/users.rs` (the single-user endpoints).
//!   * [`cliq::models`]: request and response types that keep unknown fields.
//!     * [`cliq::models::user`]: the one reader of Cliq's user JSON (pull,
//!       client and reconcile; a bare-string reference is a name).
//!     * [`cliq::models::page`]: pages of `GET /users`, typed and raw.
//!     * [`cliq::models::params`]: listing parameters, request-shaping enums.
//!     * [`cliq::models::fields`]: add and update bodies.
//!     * [`cliq::models::batch`]: add and update outcomes.
//!     * [`cliq::models::team`], [`cliq::models::layout`]: teams, layouts.
//!   * [`cliq::transport`]: HTTPS via reqwest, or in-process to the simulator.
//! * [`mirror`]: the SQLite store (WAL, embedded migrations, the public schema,
//!   all its SQL; one driver, sqlx, whose connections run on their own
//!   threads; every write through one door, [`mirror::Store::write`], which
//!   takes the clock hold and the writer turn). [`mirror::quotas`]: the quota
//!   ledger and endpoint locks. [`mirror::lease`]: the owner lease every opener
//!   holds (a run belongs to a live process) and the one-push-per-mirror lock.
//! * [`sim`]: the built-in, strict Cliq simulator (`cliq-sync simulate`), with
//!   its own quota table written from the documentation (a test compares it
//!   with the client's).
//!   Files: `config.rs` (settings, faults, counters), `dispatch.rs` (routing),
//!   `handler.rs` (the axum handler), `window.rs` (quota windows and locks),
//!   `oauth.rs` (the token endpoint), `reply.rs` (answers), `api.rs` (the
//!   Users API), `org/` (the organisation: `seed`, `view`, `change`, `layout`).
//! * [`sync`]: pulls from Cliq into the mirror, the plan and the push,
//!   reviewed plan files and undo.
//! * [`daemon`]: `cliq-sync run`: cron schedules without overlap, HR files used
//!   only once settled, graceful stop.
//! * [`notify`]: `[[notify]]`: webhook, Slack, Cliq channel and e-mail
//!   notifications, one per incident and one on recovery, rate-limited.
//! * [`status`]: `cliq-sync status [--json] [--check]`.
//! * [`app`]: the assembled parts every command and the daemon share (a pull
//!   takes only its parts, [`sync::PullParts`]).
//! * [`startup`]: builds them ([`app::App::open`]) and the daemon's
//!   long-running parts ([`startup::Application`]: `build`,
//!   `run_until_stopped`); the CLI, `cliq-sync run` and the tests'
//!   `spawn_app` all start here.
//! * [`config`]: layered configuration (defaults, file, environment).
//! * [`hr`]: loading and validating the HR source (CSV, JSON, YAML, TOML).
//! * [`logging`]: the stderr subscriber (pretty, coloured only on a terminal;
//!   or flat JSON).
//! * [`progress`]: the live bar of `sync` and `push` on a terminal.
//! * [`server`]: `/healthz`, `/readyz`, `/metrics` (OpenMetrics, or the
//!   Prometheus text format on request; process metrics from `/proc`).
//! * [`exit`]: exit codes: [`exit::Failure`] (1 runtime, 2 config, 3 safety),
//!   and those of commands stopped by a signal (130, 143).
//! * [`systemd`]: sd_notify (READY, STATUS, RELOADING, STOPPING, WATCHDOG).
//! * [`demo`]: `cliq-sync demo`, the whole loop against a loopback simulator.
//! * [`json`]: the `schema_version` every JSON document carries.
//! * [`text`]: escaping untrusted text in every human-readable output.
//! * [`check_config`]: `check-config [--online]`.
//! * [`cli`]: the command line; `main.rs` only calls [`cli::main`].

pub mod app;
pub mod check_config;
pub mod cli;
pub mod cliq;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod exit;
pub mod hr;
pub mod json;
pub mod logging;
pub mod mirror;
pub mod notify;
pub mod progress;
pub mod server;
pub mod sim;
pub mod startup;
pub mod status;
pub mod sync;
pub mod systemd;
pub mod text;

/// rustls needs one process-wide crypto provider; we ship `ring` (small, no
/// C toolchain beyond a compiler). Installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

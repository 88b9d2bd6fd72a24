//! # cliq-sync
//!
//! Keeps a local SQLite mirror of a Zoho Cliq organisation's users and pushes
//! attribute changes from an HR source into Cliq, on a schedule, without ever
//! tripping Cliq's rate-limit lock periods.
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
//!   * [`cliq::auth`]: the OAuth access-token cache (single-flight refresh,
//!     across processes through [`cliq::token_file`], `<mirror>.token`).
//!   * [`cliq::client`]: the typed client for the six endpoints, with error
//!     classification and retries.
//!   * [`cliq::models`]: request and response types that keep unknown fields.
//!   * [`cliq::transport`]: HTTPS via reqwest, or in-process to the simulator.
//! * [`mirror`]: the SQLite store (WAL, embedded migrations, the public schema,
//!   all its SQL; one driver, sqlx, whose connections run on their own
//!   threads; every write through one door, [`mirror::Store::write`], which
//!   takes the clock hold and the writer turn). [`mirror::quotas`]: the quota
//!   ledger and endpoint locks. [`mirror::lease`]: the owner lease every opener
//!   holds (a run belongs to a live process) and the one-push-per-mirror lock.
//! * [`sim`]: the built-in, strict Cliq simulator (`cliq-sync simulate`).
//! * [`sync`]: pulls from Cliq into the mirror, the plan and the push.
//! * [`daemon`]: `cliq-sync run`: cron schedules without overlap, HR files used
//!   only once settled, graceful stop.
//! * [`notify`]: `[[notify]]`: webhook, Slack, Cliq channel and e-mail
//!   notifications, one per incident and one on recovery, rate-limited.
//! * [`status`]: `cliq-sync status [--json] [--check]`.
//! * [`app`]: assembles store, scheduler, token cache and client from the settings.
//! * [`config`]: layered configuration (defaults, file, environment).
//! * [`hr`]: loading and validating the HR source (CSV, JSON, YAML, TOML).
//! * [`logging`]: the stderr subscriber (pretty, coloured only on a terminal;
//!   or flat JSON).
//! * [`progress`]: the live bar of `sync` and `push` on a terminal.
//! * [`server`]: `/healthz`, `/readyz`, `/metrics` (OpenMetrics, or the
//!   Prometheus text format on request; process metrics from `/proc`).
//! * [`exit`]: exit codes of commands stopped by a signal (130, 143).
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
pub mod status;
pub mod sync;
pub mod systemd;
pub mod text;

/// rustls needs one process-wide crypto provider; we ship `ring` (small, no
/// C toolchain beyond a compiler). Installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

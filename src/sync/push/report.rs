//! What a push reports: its figures and failures, and the push side of
//! `cliq-sync status`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::given::Refused;
use super::SOURCE_RECORDS_KEY;
use crate::mirror::pushes::PushFailure;
use crate::mirror::{Store, StoreError};
use crate::sync::plan::Plan;

/// One failure of a run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailureLine {
    pub email: String,
    pub action: &'static str,
    pub code: Option<String>,
    pub message: String,
    /// Remembered: not retried until the HR values change.
    pub permanent: bool,
}

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    pub run_id: Option<i64>,
    /// `disabled`, `dry_run`, `ok`, `stopped` or `failed`.
    pub status: String,
    pub updates_applied: u64,
    pub adds_applied: u64,
    /// Adds answered `email.activeuser` / `email.pendinguser`.
    pub adds_already_present: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Attempts of unknown outcome found applied by a re-check.
    pub reconciled: u64,
    /// Writes of unknown outcome that a re-check found not applied, sent
    /// again (once each, in the same run).
    pub resent: u64,
    pub requests: u64,
    pub elapsed_secs: f64,
    pub error: Option<String>,
    pub failures: Vec<FailureLine>,
    /// Parts of a given plan (`push --plan`, `undo`) not sent because their
    /// mirror values changed since (or, for an undo, an add).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refused>,
    /// An undo: the push run it undoes (`sync_runs.undoes_run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undoes_run: Option<i64>,
}

impl PushReport {
    pub(super) fn new(status: &str) -> Self {
        PushReport {
            run_id: None,
            status: status.into(),
            updates_applied: 0,
            adds_applied: 0,
            adds_already_present: 0,
            failed: 0,
            skipped: 0,
            reconciled: 0,
            resent: 0,
            requests: 0,
            elapsed_secs: 0.0,
            error: None,
            failures: Vec::new(),
            refused: Vec::new(),
            undoes_run: None,
        }
    }

    pub fn ok(&self) -> bool {
        matches!(self.status.as_str(), "ok" | "disabled" | "dry_run")
    }
}

/// The plan the push worked from (after reconciliation) and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    pub plan: Plan,
    pub report: PushReport,
}

/// The push side of `cliq-sync status`: attempts per status and the
/// remembered permanent failures (not retried until the HR values change).
#[derive(Debug, Clone, Serialize)]
pub struct PushStatusSummary {
    pub attempts: BTreeMap<String, i64>,
    pub failures: Vec<PushFailure>,
    pub last_source_records: Option<u64>,
}

pub async fn status_summary(store: &Store) -> Result<PushStatusSummary, StoreError> {
    Ok(PushStatusSummary {
        attempts: store.push_counts().await?.into_iter().collect(),
        failures: store.push_failures().await?,
        last_source_records: store
            .state(SOURCE_RECORDS_KEY)
            .await?
            .and_then(|v| v.parse().ok()),
    })
}

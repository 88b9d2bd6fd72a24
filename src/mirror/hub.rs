//! The in-process progress hub: the run this opener is running, published
//! by pulls and pushes as they go and read by the CLI's bar. The store
//! holds one; it knows nothing of the store (the `sync_runs` progress
//! columns are in [`super::progress`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::vocab::RunKind;

/// How far a run has got.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunProgress {
    pub run_id: i64,
    pub kind: RunKind,
    /// Listing pages written (pulls).
    pub pages: u64,
    /// Pages a full pull expects: the present users over the page size.
    pub expected_pages: Option<u64>,
    /// Users seen (pulls) or done (push: updated, added or failed).
    pub users: u64,
    /// Present users (full pull) or planned users (push).
    pub expected_users: Option<u64>,
    pub requests: u64,
    /// The quota floor of the run's main endpoint, in requests per minute.
    pub rate_per_min: f64,
    /// The estimated end; `None` without an estimate of the total.
    pub eta_at: Option<DateTime<Utc>>,
}

impl RunProgress {
    pub fn new(run_id: i64, kind: RunKind, rate_per_min: f64) -> Self {
        Self {
            run_id,
            kind,
            pages: 0,
            expected_pages: None,
            users: 0,
            expected_users: None,
            requests: 0,
            rate_per_min,
            eta_at: None,
        }
    }

    /// Work done and expected, in requests' worth: pages for a pull (one
    /// request each), users for a push (one update each).
    pub(crate) fn units(&self) -> (u64, Option<u64>) {
        match self.kind {
            RunKind::Push => (self.users, self.expected_users),
            RunKind::Full | RunKind::Incremental => (self.pages, self.expected_pages),
        }
    }
}

/// The progress of the run this opener is running (`None` between runs).
/// A `watch` channel: publishing is a store under a lock, cheap enough for
/// every page, and readers only ever see the latest value.
#[derive(Clone, Debug)]
pub struct ProgressHub(Arc<watch::Sender<Option<RunProgress>>>);

impl Default for ProgressHub {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(None)))
    }
}

impl ProgressHub {
    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<RunProgress>> {
        self.0.subscribe()
    }

    pub(crate) fn publish(&self, progress: Option<RunProgress>) {
        self.0.send_replace(progress);
    }

    /// Change the current run's progress in place (nothing between runs).
    pub(crate) fn modify(&self, f: impl FnOnce(&mut RunProgress)) {
        self.0.send_if_modified(|p| match p {
            Some(p) => {
                f(p);
                true
            }
            None => false,
        });
    }

    pub fn current(&self) -> Option<RunProgress> {
        self.0.borrow().clone()
    }
}

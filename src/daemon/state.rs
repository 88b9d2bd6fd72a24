//! What the daemon knows about itself: run counts, push results, HR
//! source health, last durations (read by `/readyz` and `/metrics`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use crate::mirror::runs::{RunKind, RunStatus};

/// What the daemon knows about itself (read by `/readyz` and `/metrics`).
#[derive(Default)]
pub struct DaemonState {
    pub consecutive_pull_failures: AtomicU32,
    /// Runs by kind and final status (`cliq_sync_runs_total`).
    pub runs: RunCounts,
    /// The last HR load/validation result: 1 valid, 0 invalid or
    /// unreadable, -1 not tried yet (`cliq_sync_hr_source_valid`).
    pub hr_source_valid: AtomicU8,
    pub pushes_applied: AtomicU64,
    pub pushes_failed: AtomicU64,
    pub pushes_skipped: AtomicU64,
    pub hr_reloads: AtomicU64,
    pub hr_errors: AtomicU64,
    /// Push ticks skipped because the HR file had not settled or could not be read whole.
    pub hr_unsettled: AtomicU64,
    /// Seconds the last run of each kind took, in the order of
    /// [`RunKind::ALL`] (full, incremental, push).
    pub last_duration: Mutex<[Option<f64>; 3]>,
    pub running: AtomicBool,
    /// systemd's view (STATUS=, RELOADING=1); a no-op outside systemd.
    pub systemd: crate::systemd::Systemd,
}

impl DaemonState {
    pub(super) fn record_duration(&self, kind: RunKind, secs: f64) {
        let i = RunKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        if let Ok(mut d) = self.last_duration.lock() {
            d[i] = Some(secs);
        }
    }

    /// `cliq_sync_hr_source_valid`: `None` before the first load.
    pub fn hr_source_valid(&self) -> Option<bool> {
        match self.hr_source_valid.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v == 1),
        }
    }
}

/// Runs of this process by kind and final status ([`RunStatus::FINAL`]; a
/// run reported still `running` counts as `failed`: it did not end well).
#[derive(Default)]
pub struct RunCounts(Mutex<BTreeMap<(RunKind, RunStatus), u64>>);

impl RunCounts {
    pub fn add(&self, kind: RunKind, status: RunStatus) {
        let status = match status {
            RunStatus::Running => RunStatus::Failed,
            s => s,
        };
        if let Ok(mut m) = self.0.lock() {
            *m.entry((kind, status)).or_default() += 1;
        }
    }

    /// Runs of any kind that ended with `status`.
    pub fn total(&self, status: RunStatus) -> u64 {
        self.snapshot()
            .into_iter()
            .filter(|((_, s), _)| *s == status)
            .map(|(_, n)| n)
            .sum()
    }

    /// `((kind, status), runs)` for every kind and final status, zeros
    /// included: a series that exists from the start lets `increase()`
    /// see the first run of its kind.
    pub fn snapshot(&self) -> Vec<((RunKind, RunStatus), u64)> {
        let m = self.0.lock().map(|m| m.clone()).unwrap_or_default();
        RunKind::ALL
            .iter()
            .flat_map(|k| RunStatus::FINAL.map(|s| (*k, s)))
            .map(|key| (key, m.get(&key).copied().unwrap_or(0)))
            .collect()
    }
}

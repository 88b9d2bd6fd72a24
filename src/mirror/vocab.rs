//! The words of `sync_runs`: a run's kind and its final status. A leaf
//! module (it uses nothing else of the mirror), so the store, the progress
//! hub and the run queries can all name them without naming each other.

use serde::Serialize;

/// The `kind` column of `sync_runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Full,
    Incremental,
    Push,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Full => "full",
            RunKind::Incremental => "incremental",
            RunKind::Push => "push",
        }
    }
}

/// The db spelling (`full`, `incremental`, `push`): logs and messages use
/// the same word as `sync_runs.kind`, never the Debug `Full`.
impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The final `status` of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Stopped,
    /// Stopped by a safety threshold before it wrote what it would have
    /// (e.g. a full pull's removals); `error` says why and how to confirm.
    Held,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Stopped => "stopped",
            RunStatus::Held => "held",
        }
    }
}

//! Moving data between Cliq, the mirror and the HR source.
//!
//! * [`mod@pull`]: full and incremental pulls from Cliq into the mirror.
//! * [`plan`]: what a push would change (HR source joined to the mirror).
//! * [`push`]: applying a plan to Cliq, resumable and within the quotas.
//! * [`reviewed`]: plan files (`plan --out`, `push --plan`); [`undo`]: the
//!   inverse of a push run. Both push through `push::push_given`.
//! * [`approve`]: held plans (`[push] on_threshold = "hold"`) and their release.
//! * [`progress`]: a long run's progress: its row, its log line, the hub.

pub mod approve;
mod held_plan;
pub mod plan;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reviewed;
pub mod undo;

pub use pull::{pull, pull_with, PullKind, PullOptions, PullParts, PullReport, TeamsMode};

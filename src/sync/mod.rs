//! Moving data between Cliq, the mirror and the HR source.
//!
//! * [`mod@pull`]: full and incremental pulls from Cliq into the mirror.
//! * [`plan`]: what a push would change (HR source joined to the mirror).
//! * [`push`]: applying a plan to Cliq, resumable and within the quotas.
//! * [`approve`]: held plans (`[push] on_threshold = "hold"`) and their release.
//! * [`progress`]: a long run's progress: its row, its log line, the hub.

pub mod approve;
pub mod plan;
pub mod progress;
pub mod pull;
pub mod push;

pub use pull::{pull, pull_with, PullKind, PullOptions, PullReport, TeamsMode};

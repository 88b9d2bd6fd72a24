//! Moving data between Cliq, the mirror and the HR source.
//!
//! * [`pull`]: full and incremental pulls from Cliq into the mirror.

pub mod pull;

pub use pull::{pull, PullKind, PullOptions, PullReport, TeamsMode};

//! The SQLite mirror: opening the database and the queries behind the public
//! schema (see `migrations/`).

pub mod column;
mod door;
pub mod error;
mod health;
pub mod held;
pub mod held_plans;
pub mod history;
pub mod hr_stage;
mod hub;
pub mod lease;
pub mod leavers;
pub(crate) mod ledger;
pub(crate) mod plan_join;
pub mod progress;
pub mod pushes;
pub mod quotas;
pub mod runs;
mod sqlite;
pub mod store;
pub mod teams;
pub mod undo;
pub mod users;
mod vocab;

pub use column::Column;
pub use store::{Store, StoreError, WriteTx};

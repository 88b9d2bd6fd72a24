//! The SQLite mirror: opening the database and the queries behind the public
//! schema (see `migrations/`).

mod health;
pub mod held;
pub mod history;
pub mod lease;
pub mod leavers;
pub mod progress;
pub mod pushes;
pub mod quotas;
pub mod runs;
pub mod store;
pub mod teams;
pub mod users;

pub use store::{Store, StoreError, WriteTx};

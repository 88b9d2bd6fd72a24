//! The SQLite mirror: opening the database and the queries behind the public
//! schema (see `migrations/`).

pub mod store;

pub use store::{Store, StoreError};

//! Talking to Zoho Cliq: endpoints and quotas, OAuth, the typed client.

pub mod auth;
pub mod client;
pub mod dc;
pub mod endpoint;
pub mod error;
pub mod gate;
pub mod models;
pub mod quotas;
pub mod stats;
pub mod token_file;
pub mod transport;

pub use endpoint::{Endpoint, Quota};

//! The user reader moved to [`crate::cliq::models::user`], the one reader of
//! Cliq's user JSON; this path stays for the flattening in `users.rs`.

pub(super) use crate::cliq::models::user::{Named, Scalar, UserWire};

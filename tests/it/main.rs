//! The one integration-test binary. Every test talks to the built-in Cliq
//! simulator, almost always in-process and in paused tokio time (see
//! `helpers`); `client::over_real_http` is the exception that proves the
//! socket path too.

mod adversarial;
mod approve;
mod cli_contract;
mod client;
mod conflicts;
mod crash;
mod crate_doc;
mod daemon;
mod demo;
mod group_commit;
mod health;
mod held;
mod helpers;
mod layers;
mod leases;
mod leavers;
mod logs;
mod mapping;
mod mirror_open;
mod monitoring;
mod notify;
mod progress;
mod pull;
mod push;
mod removals;
mod reviewed;
mod safety;
mod scope;
mod settle;
mod simulate;
mod systemd;
mod token;
mod trust;
mod user_reader;
mod vocab;

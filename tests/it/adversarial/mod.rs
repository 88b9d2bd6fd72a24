//! The adversarial table: many bad inputs, each run through the real
//! binary against a simulator, checking three things per row: the exit
//! code, that the message names the file, line and field, and that no
//! request reached Cliq.
//!
//! * [`hr`]: bad HR sources (partial, malformed, unsafe values, lossy numbers).
//! * [`config`]: bad configs.

mod config;
mod hr;

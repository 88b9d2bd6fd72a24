//! Configuration: defaults, then the TOML file, then environment variables
//! `CLIQ_SYNC__SECTION__KEY` (zero2prod-style layering).
//!
//! Every section denies unknown keys: a typo must be an error, never a silent
//! fall-back to a default. Secrets are `SecretString`s and may come from files
//! (the systemd `LoadCredential=` / Kubernetes Secret way).

use std::path::PathBuf;

mod checks;
mod choice;
mod keys;
mod limits;
mod load;
mod notify;
pub mod scope;
mod secrets;
mod settings;
mod validate;

pub use checks::{check_cron, check_url, parse_cron, parse_timezone};
pub use choice::{LogFormat, OnConflict, OnThreshold, StatusListing, TeamsMode};
pub use keys::{env_var, Origin, UnknownKey};
pub use limits::{LimitOverride, LimitsSettings};
pub use notify::{check_smtp_url, check_webhook_url, is_loopback_url, NotifySettings};
use settings::mask_opt;
pub use settings::{
    CliqSettings, HrSettings, LogSettings, MirrorSettings, PushSettings, ScheduleSettings,
    ServerSettings, Settings, SyncSettings,
};

/// A configuration error. Messages name the key, where it was set (file and
/// line, or environment variable) and what to do; never a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("{}", at(.origin.as_ref(), .key, .message))]
    Invalid {
        key: String,
        message: String,
        /// Where the key was set (`None`: the built-in default).
        origin: Option<Origin>,
    },
    /// Keys that are not config keys (all of them, one per line).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    UnknownKeys(Vec<UnknownKey>),
    #[error("{key}_file: cannot read {}: {error}", path.display())]
    SecretFile {
        key: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{key}_file: {} {why}", path.display())]
    SecretFileBad {
        key: &'static str,
        path: PathBuf,
        why: &'static str,
    },
    /// See `config/secrets.rs` for the rule (ssh's, for private keys).
    #[error(
        "{key}_file: {} is open to group or others (mode {mode:04o}); run chmod 600 {} \
         (a secret file you own must be private, as ssh requires for keys)",
        path.display(),
        path.display()
    )]
    SecretFileMode {
        key: &'static str,
        path: PathBuf,
        mode: u32,
    },
}

fn at(origin: Option<&Origin>, key: &str, message: &str) -> String {
    match origin {
        Some(o) => format!("{o}: {key}: {message}"),
        None => format!("config key {key}: {message}"),
    }
}

impl ConfigError {
    /// Fill in where an invalid key was set.
    fn located(self, origins: &keys::Origins) -> Self {
        match self {
            ConfigError::Invalid {
                key,
                message,
                origin: None,
            } => ConfigError::Invalid {
                origin: origins.find(&key).cloned(),
                key,
                message,
            },
            other => other,
        }
    }
}

/// An invalid value of `key` (for checks outside this module).
pub fn invalid_key(key: &str, message: impl Into<String>) -> ConfigError {
    invalid(key, message)
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
        origin: None,
    }
}

impl Settings {
    /// The effective configuration as valid TOML, secrets masked ("***"),
    /// and under `[limits]` the quota in force for every endpoint (the
    /// documented one where the file sets none).
    pub fn to_masked_toml(&self) -> String {
        let mut table = match toml::Table::try_from(self) {
            Ok(t) => t,
            Err(e) => return format!("# the configuration could not be shown as TOML: {e}\n"),
        };
        if let Ok(limits) = self.limits.to_limits() {
            let shown = limits::effective_limits(&self.limits, &limits);
            table.insert("limits".into(), shown);
        }
        toml::to_string(&table).unwrap_or_else(|e| format!("# not shown: {e}\n"))
    }
}

#[cfg(test)]
mod tests;

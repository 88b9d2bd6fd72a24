//! Configuration: defaults, then the TOML file, then environment variables
//! `CLIQ_SYNC__SECTION__KEY` (zero2prod-style layering).
//!
//! Every section denies unknown keys: a typo must be an error, never a silent
//! fall-back to a default. Secrets are `SecretString`s and may come from files
//! (the systemd `LoadCredential=` / Kubernetes Secret way).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::cliq::quotas::Limits;
use crate::cliq::{Endpoint, Quota};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("config key {key}: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot read {what} from {path}: {source}")]
    SecretFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// The whole configuration. Field names are the documented config keys.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub cliq: CliqSettings,
    pub mirror: MirrorSettings,
    pub schedule: ScheduleSettings,
    pub sync: SyncSettings,
    pub hr: Option<HrSettings>,
    pub push: PushSettings,
    pub limits: LimitsSettings,
    pub server: ServerSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CliqSettings {
    pub data_center: String,
    pub base_url: Option<String>,
    pub accounts_url: Option<String>,
    pub client_id: String,
    #[serde(serialize_with = "mask_opt")]
    pub client_secret: Option<SecretString>,
    pub client_secret_file: Option<PathBuf>,
    #[serde(serialize_with = "mask_opt")]
    pub refresh_token: Option<SecretString>,
    pub refresh_token_file: Option<PathBuf>,
    pub modified_after_format: String,
    pub page_size: u32,
    #[serde(with = "humantime_serde_compat")]
    pub request_timeout: Duration,
    pub update_body: String,
}

impl Default for CliqSettings {
    fn default() -> Self {
        Self {
            data_center: "us".into(),
            base_url: None,
            accounts_url: None,
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            refresh_token: None,
            refresh_token_file: None,
            modified_after_format: "rfc3339".into(),
            page_size: 100,
            request_timeout: Duration::from_secs(30),
            update_body: "wrapped".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorSettings {
    pub path: PathBuf,
}

impl Default for MirrorSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/var/lib/cliq-sync/mirror.db"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSettings {
    pub incremental: String,
    pub full: String,
    pub push: String,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            incremental: "0 */5 * * * *".into(),
            full: "0 30 2 * * *".into(),
            push: "0 */15 * * * *".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Subtracted from the watermark for `modified_after` (clock skew).
    #[serde(with = "humantime_serde_compat")]
    pub overlap: Duration,
    /// A watermark older than 7 days minus this margin forces a full pull.
    #[serde(with = "humantime_serde_compat")]
    pub window_margin: Duration,
    /// Team memberships: "off", "changed" (users new or changed in the run) or "all".
    pub teams: String,
    /// Team-membership fetches per run (one request each, 20/min).
    pub teams_per_run: usize,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            overlap: Duration::from_secs(300),
            window_margin: Duration::from_secs(6 * 3600),
            teams: "changed".into(),
            teams_per_run: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HrSettings {
    pub source: PathBuf,
    pub managed_fields: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    pub enabled: bool,
    pub create_missing: bool,
    pub max_changes_per_run: u32,
    /// Refuse a push when the HR source has fewer records than this share of
    /// the previous push's source (a truncated export must not look like
    /// mass departures).
    pub max_source_drop: f64,
    /// People per `POST /users` request when adding (1..=100).
    pub add_batch_size: usize,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            create_missing: false,
            max_changes_per_run: 100,
            max_source_drop: 0.2,
            add_batch_size: 10,
        }
    }
}

/// One `[limits]` entry: `{ requests = 30, per = "60s", lock = "10m" }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverride {
    pub requests: Option<u32>,
    #[serde(default, with = "humantime_serde_compat::option")]
    pub per: Option<Duration>,
    #[serde(default, with = "humantime_serde_compat::option")]
    pub lock: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSettings {
    pub add_users: Option<LimitOverride>,
    pub list_users: Option<LimitOverride>,
    pub update_user: Option<LimitOverride>,
    pub get_user: Option<LimitOverride>,
    pub user_teams: Option<LimitOverride>,
    pub user_layouts: Option<LimitOverride>,
    pub oauth_token: Option<LimitOverride>,
    /// Added to every quota window to absorb network jitter (default 500ms).
    #[serde(default, with = "humantime_serde_compat::option")]
    pub safety_margin: Option<Duration>,
}

impl LimitsSettings {
    fn get(&self, ep: Endpoint) -> Option<&LimitOverride> {
        match ep {
            Endpoint::AddUsers => self.add_users.as_ref(),
            Endpoint::ListUsers => self.list_users.as_ref(),
            Endpoint::UpdateUser => self.update_user.as_ref(),
            Endpoint::GetUser => self.get_user.as_ref(),
            Endpoint::UserTeams => self.user_teams.as_ref(),
            Endpoint::UserLayouts => self.user_layouts.as_ref(),
            Endpoint::OauthToken => self.oauth_token.as_ref(),
        }
    }

    /// The documented quotas with these overrides applied.
    pub fn to_limits(&self) -> Result<Limits, ConfigError> {
        let mut limits = Limits::documented();
        for ep in Endpoint::ALL {
            if let Some(o) = self.get(ep) {
                let d = ep.documented_quota();
                let q = Quota {
                    requests: o.requests.unwrap_or(d.requests),
                    per: o.per.unwrap_or(d.per),
                    lock: o.lock.unwrap_or(d.lock),
                };
                let key = format!("limits.{}", ep.name());
                if q.requests == 0 {
                    return Err(invalid(&key, "requests must be at least 1"));
                }
                if q.per.is_zero() {
                    return Err(invalid(&key, "per must be longer than zero"));
                }
                limits.set(ep, q);
            }
        }
        if let Some(m) = self.safety_margin {
            limits.margin = m;
        }
        Ok(limits)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: String,
    /// `/readyz` answers 503 once this many pulls in a row have failed.
    pub ready_max_pull_failures: u32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            ready_max_pull_failures: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            level: "info".into(),
        }
    }
}

impl Settings {
    /// Load defaults, then `file` (if any), then `CLIQ_SYNC__SECTION__KEY`
    /// environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CLIQ_SYNC__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("CLIQ_SYNC")
                .prefix_separator("__")
                .separator("__")
                .source(Some(env)),
        );
        let raw = builder
            .build()
            .map_err(|e| ConfigError::Load(describe(file, e)))?;
        let settings: Settings = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(describe(file, e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks that need more than types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.cliq;
        c.data_center
            .parse::<crate::cliq::dc::DataCenter>()
            .map_err(|e| invalid("cliq.data_center", e.to_string()))?;
        if !(1..=100).contains(&c.page_size) {
            return Err(invalid("cliq.page_size", "must be between 1 and 100"));
        }
        if !matches!(c.modified_after_format.as_str(), "rfc3339" | "epoch_millis") {
            return Err(invalid(
                "cliq.modified_after_format",
                "must be \"rfc3339\" or \"epoch_millis\"",
            ));
        }
        if !matches!(c.update_body.as_str(), "wrapped" | "flat") {
            return Err(invalid(
                "cliq.update_body",
                "must be \"wrapped\" or \"flat\"",
            ));
        }
        if !matches!(self.sync.teams.as_str(), "off" | "changed" | "all") {
            return Err(invalid(
                "sync.teams",
                "must be \"off\", \"changed\" or \"all\"",
            ));
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(invalid("log.format", "must be \"pretty\" or \"json\""));
        }
        if let Some(hr) = &self.hr {
            crate::hr::managed_attrs(hr.managed_fields.as_deref())
                .map_err(|m| invalid("hr.managed_fields", m))?;
        }
        if !(0.0..=1.0).contains(&self.push.max_source_drop) {
            return Err(invalid(
                "push.max_source_drop",
                "must be between 0 and 1 (a share of the previous source's records)",
            ));
        }
        if !(1..=100).contains(&self.push.add_batch_size) {
            return Err(invalid("push.add_batch_size", "must be between 1 and 100"));
        }
        self.limits.to_limits()?;
        Ok(())
    }

    /// The client secret, from `client_secret` or `client_secret_file`.
    pub fn client_secret(&self) -> Result<SecretString, ConfigError> {
        secret(
            "cliq.client_secret",
            self.cliq.client_secret.as_ref(),
            self.cliq.client_secret_file.as_deref(),
        )
    }

    /// The refresh token, from `refresh_token` or `refresh_token_file`.
    pub fn refresh_token(&self) -> Result<SecretString, ConfigError> {
        secret(
            "cliq.refresh_token",
            self.cliq.refresh_token.as_ref(),
            self.cliq.refresh_token_file.as_deref(),
        )
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> String {
        toml_like(&serde_json::to_value(self).unwrap_or_default())
    }
}

fn secret(
    key: &'static str,
    inline: Option<&SecretString>,
    file: Option<&Path>,
) -> Result<SecretString, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(
            key,
            format!("set either {key} or {key}_file, not both"),
        )),
        (Some(s), None) if !s.expose_secret().trim().is_empty() => Ok(s.clone()),
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
                what: key,
                path: path.to_owned(),
                source,
            })?;
            let text = text.trim();
            if text.is_empty() {
                return Err(invalid(key, format!("{} is empty", path.display())));
            }
            Ok(SecretString::from(text.to_owned()))
        }
        _ => Err(invalid(key, format!("missing: set {key} or {key}_file"))),
    }
}

fn describe(file: Option<&Path>, e: config::ConfigError) -> String {
    match file {
        Some(p) => format!("{}: {e}", p.display()),
        None => e.to_string(),
    }
}

fn mask_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("********"),
        None => s.serialize_none(),
    }
}

/// Render a JSON value as TOML-ish text for `check-config` (sections, then keys).
fn toml_like(v: &serde_json::Value) -> String {
    let mut out = String::new();
    if let serde_json::Value::Object(top) = v {
        let mut sections: BTreeMap<&str, &serde_json::Value> = BTreeMap::new();
        for (k, v) in top {
            sections.insert(k, v);
        }
        for (name, section) in sections {
            if let serde_json::Value::Object(map) = section {
                out.push_str(&format!("[{name}]\n"));
                for (k, v) in map {
                    if !v.is_null() {
                        out.push_str(&format!("{k} = {v}\n"));
                    }
                }
                out.push('\n');
            }
        }
    }
    out
}

/// Durations as humantime text ("30s", "10m", "1h 30m") in config files.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration \"{text}\": {e} (examples: \"30s\", \"10m\", \"1h\")"
            ))
        })
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

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

use crate::cliq::models::{ModifiedAfterFormat, UpdateBodyShape};
use crate::cliq::quotas::Limits;
use crate::cliq::{Endpoint, Quota};

mod checks;
mod choice;
mod keys;
mod notify;
pub mod scope;
mod secrets;

pub use checks::{check_cron, check_url, parse_cron, parse_timezone};
pub use choice::{LogFormat, OnConflict, OnThreshold, StatusListing, TeamsMode};
pub use keys::{env_var, Origin, UnknownKey};
pub use notify::{check_smtp_url, check_webhook_url, is_loopback_url, NotifySettings};

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
    /// `[[notify]]` targets (none: nobody is told but the logs).
    pub notify: Vec<NotifySettings>,
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
    #[serde(deserialize_with = "choice::one_of")]
    pub modified_after_format: ModifiedAfterFormat,
    pub page_size: u32,
    #[serde(with = "crate::clock::duration_text")]
    pub request_timeout: Duration,
    #[serde(deserialize_with = "choice::one_of")]
    pub update_body: UpdateBodyShape,
    /// How long an unreachable accounts server is retried before the
    /// command fails (the token path's bound).
    #[serde(with = "crate::clock::duration_text")]
    pub token_timeout: Duration,
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
            modified_after_format: ModifiedAfterFormat::Rfc3339,
            page_size: 100,
            request_timeout: Duration::from_secs(30),
            update_body: UpdateBodyShape::Wrapped,
            token_timeout: crate::cliq::auth::DEFAULT_TOKEN_TIMEOUT,
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
    /// IANA name; the cron lines are read in it (default UTC).
    pub timezone: String,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            incremental: "0 */5 * * * *".into(),
            full: "0 30 2 * * *".into(),
            push: "0 */15 * * * *".into(),
            timezone: "UTC".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Subtracted from the watermark for `modified_after` (clock skew).
    #[serde(with = "crate::clock::duration_text")]
    pub overlap: Duration,
    /// A watermark older than 7 days minus this margin forces a full pull.
    #[serde(with = "crate::clock::duration_text")]
    pub window_margin: Duration,
    /// Team memberships: "off", "changed" (users new or changed in the run) or "all".
    pub teams: TeamsMode,
    /// Team-membership fetches per run (one request each, 20/min).
    pub teams_per_run: usize,
    /// One listing, or one per status (see [`StatusListing`]).
    pub status_listing: StatusListing,
    /// A full pull that would mark more users removed than this marks
    /// nobody: the run is `held` until `sync --full --allow-removals`.
    pub max_removals: u64,
    /// … or more than this fraction (0..=1) of the users present.
    pub max_removal_fraction: f64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            overlap: Duration::from_secs(300),
            window_margin: Duration::from_secs(6 * 3600),
            teams: TeamsMode::Changed,
            teams_per_run: 20,
            status_listing: StatusListing::Combined,
            max_removals: 500,
            max_removal_fraction: 0.1,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HrSettings {
    pub source: PathBuf,
    pub managed_fields: Option<Vec<String>>,
    /// The daemon uses a version of the file only once it has been
    /// unchanged (length, mtime, content) this long: an export caught
    /// half-written must never be pushed.
    #[serde(default = "default_hr_settle", with = "crate::clock::duration_text")]
    pub settle: Duration,
    /// `[hr.columns]`: source column → field (applied first).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
    /// `[hr.derive]`: field → minijinja template over the renamed fields (second).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub derive: BTreeMap<String, String>,
    /// `[hr.values.FIELD]`: value → value (last, derived values included).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// The three tables compiled, once (see [`HrSettings::mapping`]).
    #[serde(skip)]
    compiled: std::sync::OnceLock<std::sync::Arc<crate::hr::Mapping>>,
}

fn default_hr_settle() -> Duration {
    Duration::from_secs(10)
}

impl HrSettings {
    /// `[hr] source = path`, every other key at its default.
    pub fn new(source: impl Into<PathBuf>) -> Self {
        Self {
            source: source.into(),
            managed_fields: None,
            settle: default_hr_settle(),
            columns: BTreeMap::new(),
            derive: BTreeMap::new(),
            values: BTreeMap::new(),
            compiled: std::sync::OnceLock::new(),
        }
    }

    /// `[hr.columns]`, `[hr.derive]` and `[hr.values]` compiled: templates
    /// are parsed once (at config load, which calls this) and reused by
    /// every load of the HR source.
    pub fn mapping(&self) -> Result<std::sync::Arc<crate::hr::Mapping>, ConfigError> {
        if let Some(m) = self.compiled.get() {
            return Ok(m.clone());
        }
        let m = crate::hr::Mapping::compile(&self.columns, &self.derive, &self.values)
            .map_err(|e| invalid(&e.key, e.message))?;
        Ok(self.compiled.get_or_init(|| std::sync::Arc::new(m)).clone())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    pub enabled: bool,
    pub create_missing: bool,
    pub max_changes_per_run: u32,
    /// Refuse a push when the HR source has lost more than this share of the
    /// largest source pushed in the last 7 days (a truncated export must not
    /// look like mass departures).
    pub max_source_drop: f64,
    /// People per `POST /users` request when adding (1..=100).
    pub add_batch_size: usize,
    /// A remembered permanent failure is tried again after this.
    #[serde(with = "crate::clock::duration_text")]
    pub retry_failed_after: Duration,
    /// Email globs of the people a push may write (`["*"]`: everyone).
    pub include: Vec<String>,
    /// Email globs never written (protected accounts).
    pub exclude: Vec<String>,
    /// Cliq department names whose members are never written.
    pub exclude_departments: Vec<String>,
    /// What to do with an HR-managed field changed in Cliq since our last
    /// push of it.
    pub on_conflict: OnConflict,
    /// What a push that trips a safety threshold does: hold its plan for
    /// `approve`, or fail.
    pub on_threshold: OnThreshold,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            create_missing: false,
            max_changes_per_run: 100,
            max_source_drop: 0.2,
            add_batch_size: 10,
            retry_failed_after: Duration::from_secs(24 * 3600),
            include: vec!["*".into()],
            exclude: Vec::new(),
            exclude_departments: Vec::new(),
            on_conflict: OnConflict::Overwrite,
            on_threshold: OnThreshold::Hold,
        }
    }
}

/// One `[limits]` entry: `{ requests = 30, per = "60s", lock = "10m" }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverride {
    pub requests: Option<u32>,
    #[serde(default, with = "crate::clock::duration_text::option")]
    pub per: Option<Duration>,
    #[serde(default, with = "crate::clock::duration_text::option")]
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
    #[serde(default, with = "crate::clock::duration_text::option")]
    pub safety_margin: Option<Duration>,
    /// Entries above Cliq's documented quotas (more requests, a shorter
    /// window or lock) are refused unless this is true: the docs say "only
    /// lower them", and a real Cliq locks an endpoint whose quota is exceeded.
    pub allow_above_documented: bool,
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

    /// The keys of the entries above the documented quotas (`limits.list_users`).
    pub fn above_documented(&self) -> Vec<String> {
        Endpoint::ALL
            .into_iter()
            .filter(|ep| {
                self.get(*ep)
                    .is_some_and(|o| above(o, ep.documented_quota()))
            })
            .map(|ep| format!("limits.{}", ep.name()))
            .collect()
    }

    /// Refuse an entry above the documented quota unless
    /// `allow_above_documented` says it is meant.
    fn check_documented(&self) -> Result<(), ConfigError> {
        if self.allow_above_documented {
            return Ok(());
        }
        let Some(ep) = Endpoint::ALL.into_iter().find(|ep| {
            self.get(*ep)
                .is_some_and(|o| above(o, ep.documented_quota()))
        }) else {
            return Ok(());
        };
        let d = ep.documented_quota();
        let human = |d: Duration| humantime::format_duration(d).to_string();
        Err(invalid(
            &format!("limits.{}", ep.name()),
            format!(
                "is above Cliq's documented quota ({} requests per {}, lock {}); a real Cliq \
                 locks the endpoint for the lock period when it is exceeded. Lower it (only \
                 fewer requests, a longer per or lock are safe), or set [limits] \
                 allow_above_documented = true if your org's quota really is higher",
                d.requests,
                human(d.per),
                human(d.lock)
            ),
        ))
    }
}

/// More requests, a shorter window or a shorter lock than documented.
fn above(o: &LimitOverride, d: Quota) -> bool {
    o.requests.is_some_and(|r| r > d.requests)
        || o.per.is_some_and(|p| p < d.per)
        || o.lock.is_some_and(|l| l < d.lock)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: String,
    /// `/readyz` answers 503 once this many pulls in a row have failed.
    pub ready_max_pull_failures: u32,
    /// Connections the health server serves at once (see `server/conns.rs`).
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            ready_max_pull_failures: 3,
            max_connections: 64,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
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
    ///
    /// Before deserializing, every key of the file and of the `CLIQ_SYNC__…`
    /// variables is checked against the known keys (see `config/keys.rs`):
    /// a typo is an error naming the key, its source and the closest valid
    /// key, never a silent fall-back to a default.
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let schema = keys::Node::schema();
        let mut walk = keys::Walk::default();
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Load(if e.kind() == std::io::ErrorKind::NotFound {
                    format!("config file {} does not exist", path.display())
                } else {
                    format!("cannot read config file {}: {e}", path.display())
                })
            })?;
            let table = toml::de::DeTable::parse(&text)
                .map_err(|e| ConfigError::Load(syntax_error(path, &e)))?;
            walk.file(&schema, path, &text, table.get_ref());
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(keys::ENV_PREFIX))
            .collect();
        walk.env(&schema, env.keys().map(String::as_str));
        if !walk.unknown.is_empty() {
            return Err(ConfigError::UnknownKeys(walk.unknown));
        }
        walk.env_bools(&env);
        if let Some(e) = walk.bad_values.into_iter().next() {
            return Err(e);
        }
        builder = builder.add_source(
            config::Environment::with_prefix("CLIQ_SYNC")
                .prefix_separator("__")
                .separator("__")
                .source(Some(env.into_iter().collect())),
        );
        let origins = walk.origins;
        let raw = builder.build().map_err(|e| explain(e, &origins, file))?;
        let mut settings: Settings = raw
            .try_deserialize()
            .map_err(|e| explain(e, &origins, file))?;
        settings.prefer_env_secret_forms(&origins);
        settings.validate().map_err(|e| e.located(&origins))?;
        settings.check_secret_file_modes()?;
        Ok(settings)
    }

    /// A secret set one way in the file (`client_secret_file`) and the
    /// other way by a variable (`CLIQ_SYNC__CLIQ__CLIENT_SECRET`): the
    /// variable wins, as "every key can be overridden" promises; both forms
    /// in the same layer stay an error ("not both", in `validate`).
    fn prefer_env_secret_forms(&mut self, origins: &keys::Origins) {
        let from_env = |key: &str| matches!(origins.get(key), Some(Origin::Env { .. }));
        let c = &mut self.cliq;
        for (key, inline_set, file_set) in [
            (
                "cliq.client_secret",
                c.client_secret.is_some(),
                c.client_secret_file.is_some(),
            ),
            (
                "cliq.refresh_token",
                c.refresh_token.is_some(),
                c.refresh_token_file.is_some(),
            ),
        ] {
            if !(inline_set && file_set) {
                continue;
            }
            let (inline_env, file_env) = (from_env(key), from_env(&format!("{key}_file")));
            let client = key == "cliq.client_secret";
            if inline_env && !file_env {
                if client {
                    c.client_secret_file = None;
                } else {
                    c.refresh_token_file = None;
                }
            } else if file_env && !inline_env {
                if client {
                    c.client_secret = None;
                } else {
                    c.refresh_token = None;
                }
            }
        }
    }

    /// Every optional part filled in: the shape of every valid key, from
    /// which the unknown-key check derives its key set.
    pub(crate) fn exemplar() -> Settings {
        let limit = || {
            Some(LimitOverride {
                requests: Some(1),
                per: Some(Duration::from_secs(1)),
                lock: Some(Duration::from_secs(1)),
            })
        };
        let mut s = Settings::default();
        s.cliq.base_url = Some(String::new());
        s.cliq.accounts_url = Some(String::new());
        s.cliq.client_secret = Some(SecretString::from(String::new()));
        s.cliq.client_secret_file = Some(PathBuf::new());
        s.cliq.refresh_token = Some(SecretString::from(String::new()));
        s.cliq.refresh_token_file = Some(PathBuf::new());
        let one = || BTreeMap::from([(String::new(), String::new())]);
        s.hr = Some(HrSettings {
            managed_fields: Some(Vec::new()),
            // Free-form tables (keys.rs lets them take any key).
            columns: one(),
            derive: one(),
            values: BTreeMap::from([(String::new(), one())]),
            ..HrSettings::new(PathBuf::new())
        });
        s.limits = LimitsSettings {
            add_users: limit(),
            list_users: limit(),
            update_user: limit(),
            get_user: limit(),
            user_teams: limit(),
            user_layouts: limit(),
            oauth_token: limit(),
            safety_margin: Some(Duration::from_millis(500)),
            allow_above_documented: false,
        };
        s.notify = vec![NotifySettings::exemplar()];
        s
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
        if let Some(hr) = &self.hr {
            crate::hr::managed_attrs(hr.managed_fields.as_deref())
                .map_err(|m| invalid("hr.managed_fields", m))?;
            hr.mapping()?;
        }
        if !(0.0..=1.0).contains(&self.push.max_source_drop) {
            return Err(invalid(
                "push.max_source_drop",
                "must be between 0 and 1 (a share of the previous source's records)",
            ));
        }
        if !(0.0..=1.0).contains(&self.sync.max_removal_fraction) {
            return Err(invalid(
                "sync.max_removal_fraction",
                "must be between 0 and 1 (a share of the users present in the mirror)",
            ));
        }
        if !(1..=100).contains(&self.push.add_batch_size) {
            return Err(invalid("push.add_batch_size", "must be between 1 and 100"));
        }
        scope::Scope::from_settings(&self.push).map_err(|e| invalid(&e.key, e.message))?;
        self.limits.to_limits()?;
        self.limits.check_documented()?;
        checks::check_log_level(&self.log.level).map_err(|m| invalid("log.level", m))?;
        self.server
            .listen
            .parse::<std::net::SocketAddr>()
            .map_err(|_| {
                invalid(
                    "server.listen",
                    format!(
                        "{:?} is not an IP address and port; expected e.g. \"127.0.0.1:9464\" \
                         or \"0.0.0.0:9464\"",
                        self.server.listen
                    ),
                )
            })?;
        if self.server.max_connections == 0 {
            return Err(invalid(
                "server.max_connections",
                "must be at least 1 (the probes need a connection)",
            ));
        }
        if c.token_timeout.is_zero() {
            return Err(invalid(
                "cliq.token_timeout",
                "must be longer than zero (e.g. \"2m\")",
            ));
        }
        if c.request_timeout.is_zero() {
            return Err(invalid(
                "cliq.request_timeout",
                "must be longer than zero (e.g. \"30s\")",
            ));
        }
        for (key, url) in [
            ("cliq.base_url", &c.base_url),
            ("cliq.accounts_url", &c.accounts_url),
        ] {
            if let Some(url) = url {
                check_url(url).map_err(|m| invalid(key, m))?;
            }
        }
        let s = &self.schedule;
        let tz =
            checks::parse_timezone(&s.timezone).map_err(|m| invalid("schedule.timezone", m))?;
        for (key, line) in [
            ("schedule.incremental", &s.incremental),
            ("schedule.full", &s.full),
            ("schedule.push", &s.push),
        ] {
            check_cron(line, tz).map_err(|m| invalid(key, m))?;
        }
        for (key, inline, file) in [
            (
                "cliq.client_secret",
                c.client_secret.is_some(),
                c.client_secret_file.is_some(),
            ),
            (
                "cliq.refresh_token",
                c.refresh_token.is_some(),
                c.refresh_token_file.is_some(),
            ),
        ] {
            if inline && file {
                return Err(invalid(
                    key,
                    format!("set either {key} or {key}_file, not both"),
                ));
            }
        }
        for (i, n) in self.notify.iter().enumerate() {
            n.validate(&format!("notify[{i}]"))?;
        }
        Ok(())
    }

    /// The secret files' mode rule (see `config/secrets.rs`), for files that
    /// exist and can be looked at. Run on every load, so `check-config`
    /// refuses an open secret file too; a missing file is reported by
    /// [`Settings::check_secrets`] and when a command needs the secret.
    pub fn check_secret_file_modes(&self) -> Result<(), ConfigError> {
        let c = &self.cliq;
        if let Some(p) = &c.client_secret_file {
            secrets::check_mode_if_present("cliq.client_secret", p)?;
        }
        if let Some(p) = &c.refresh_token_file {
            secrets::check_mode_if_present("cliq.refresh_token", p)?;
        }
        Ok(())
    }

    /// Read both secrets (and drop them): every problem a command that talks
    /// to Cliq would hit, found up front (`check-config`).
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        self.client_secret()?;
        self.refresh_token()?;
        // The notification secrets too: an alarm found broken only on the
        // day it is needed is no alarm.
        for (i, n) in self.notify.iter().enumerate() {
            let at = format!("notify[{i}]");
            if n.kind == "email" {
                n.smtp_password(&at)?;
            } else {
                n.webhook_url(&at)?;
            }
        }
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

    /// The effective configuration as valid TOML, secrets masked ("***"),
    /// and under `[limits]` the quota in force for every endpoint (the
    /// documented one where the file sets none).
    pub fn to_masked_toml(&self) -> String {
        let mut table = match toml::Table::try_from(self) {
            Ok(t) => t,
            Err(e) => return format!("# the configuration could not be shown as TOML: {e}\n"),
        };
        if let Ok(limits) = self.limits.to_limits() {
            table.insert("limits".into(), effective_limits(&self.limits, &limits));
        }
        toml::to_string(&table).unwrap_or_else(|e| format!("# not shown: {e}\n"))
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
        (_, Some(path)) => secrets::read(key, path),
        _ => Err(invalid(key, format!("missing: set {key} or {key}_file"))),
    }
}

/// A TOML syntax error without the quoted source line, which could hold a
/// secret (`client_secret = "…` without its closing quote):
/// `FILE: TOML parse error at line 3, column 17: invalid basic string`.
fn syntax_error(path: &Path, e: &toml::de::Error) -> String {
    let text = e.to_string();
    let is_snippet = |l: &str| {
        l.trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start()
            .starts_with('|')
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_snippet(l))
        .collect();
    format!("{}: {}", path.display(), lines.join(": "))
}

fn describe(file: Option<&Path>, e: config::ConfigError) -> String {
    match file {
        Some(p) => format!("{}: {e}", p.display()),
        None => e.to_string(),
    }
}

/// A `config` crate error as a message naming the key and where it was set.
fn explain(e: config::ConfigError, origins: &keys::Origins, file: Option<&Path>) -> ConfigError {
    let (key, message) = match &e {
        config::ConfigError::Type {
            unexpected,
            expected,
            key: Some(key),
            ..
        } => {
            // Never echo what was found under a secret's key.
            let found = if key.contains("secret") || key.contains("token") {
                "a value of another type".to_owned()
            } else {
                unexpected.to_string()
            };
            (key.clone(), format!("expected {expected}, found {found}"))
        }
        config::ConfigError::At {
            error,
            key: Some(key),
            ..
        } => (key.clone(), error.to_string()),
        _ => return ConfigError::Load(describe(file, e)),
    };
    ConfigError::Invalid {
        origin: origins.find(&key).cloned(),
        key,
        message,
    }
}

fn mask_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("***"),
        None => s.serialize_none(),
    }
}

/// `[limits]` as in force: every endpoint's `{ requests, per, lock }`,
/// the safety margin and the switch.
fn effective_limits(set: &LimitsSettings, limits: &Limits) -> toml::Value {
    let human = |d: Duration| toml::Value::String(humantime::format_duration(d).to_string());
    let mut out = toml::Table::new();
    for ep in Endpoint::ALL {
        let q = limits.get(ep);
        let mut entry = toml::Table::new();
        entry.insert(
            "requests".into(),
            toml::Value::Integer(i64::from(q.requests)),
        );
        entry.insert("per".into(), human(q.per));
        entry.insert("lock".into(), human(q.lock));
        out.insert(ep.name().into(), toml::Value::Table(entry));
    }
    out.insert("safety_margin".into(), human(limits.margin));
    out.insert(
        "allow_above_documented".into(),
        toml::Value::Boolean(set.allow_above_documented),
    );
    toml::Value::Table(out)
}

#[cfg(test)]
mod tests;

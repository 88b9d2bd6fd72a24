//! The settings' shape: one struct per `[section]`, field names the
//! documented keys, each with its default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::choice;
use super::{invalid, ConfigError, LimitOverride, LimitsSettings, NotifySettings};
use super::{LogFormat, OnConflict, OnThreshold, StatusListing, TeamsMode};
use crate::cliq::models::{ModifiedAfterFormat, UpdateBodyShape};

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

impl CliqSettings {
    /// The secrets that can be set inline or as a file: the key, and
    /// whether each form is set (both set is an error, or one layer wins).
    pub(crate) fn secret_forms(&self) -> [(&'static str, bool, bool); 2] {
        [
            (
                "cliq.client_secret",
                self.client_secret.is_some(),
                self.client_secret_file.is_some(),
            ),
            (
                "cliq.refresh_token",
                self.refresh_token.is_some(),
                self.refresh_token_file.is_some(),
            ),
        ]
    }
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
}

pub(super) fn mask_opt<S: serde::Serializer>(
    v: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("***"),
        None => s.serialize_none(),
    }
}

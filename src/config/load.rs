//! Loading: defaults, then the TOML file, then `CLIQ_SYNC__…` variables,
//! every key checked against the known ones first, every error located
//! (file:line or variable).

use std::collections::BTreeMap;
use std::path::Path;

use super::{keys, ConfigError, Origin, Settings};

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
        for (key, inline_set, file_set) in c.secret_forms() {
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

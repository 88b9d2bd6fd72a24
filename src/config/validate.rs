//! The checks that need more than types (ranges, URLs, cron lines, the
//! secrets' two forms), run once on every load.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use super::{check_cron, check_url, checks, invalid, scope, secrets, ConfigError, Settings};

impl Settings {
    /// Checks that need more than types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_cliq()?;
        self.check_shares_and_sizes()?;
        scope::Scope::from_settings(&self.push).map_err(|e| invalid(&e.key, e.message))?;
        self.limits.to_limits()?;
        self.limits.check_documented()?;
        checks::check_log_level(&self.log.level).map_err(|m| invalid("log.level", m))?;
        self.check_server()?;
        self.check_schedule()?;
        self.check_secret_forms()?;
        for (i, n) in self.notify.iter().enumerate() {
            n.validate(&format!("notify[{i}]"))?;
        }
        Ok(())
    }

    /// `[cliq]`: the data centre, page size, timeouts and URLs.
    fn check_cliq(&self) -> Result<(), ConfigError> {
        let c = &self.cliq;
        c.data_center
            .parse::<crate::cliq::dc::DataCenter>()
            .map_err(|e| invalid("cliq.data_center", e.to_string()))?;
        if !(1..=100).contains(&c.page_size) {
            return Err(invalid("cliq.page_size", "must be between 1 and 100"));
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
        Ok(())
    }

    /// `[hr]`'s mapping, and the shares and batch sizes of `[push]`/`[sync]`.
    fn check_shares_and_sizes(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }

    /// `[server]`: an address to listen on, room for the probes.
    fn check_server(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }

    /// `[schedule]`: an IANA zone and cron lines that fire in it.
    fn check_schedule(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }

    /// A secret is set inline or as a file, not both (in one layer; see
    /// `prefer_env_secret_forms` for the file against a variable).
    fn check_secret_forms(&self) -> Result<(), ConfigError> {
        let c = &self.cliq;
        for (key, inline, file) in c.secret_forms() {
            if inline && file {
                return Err(invalid(
                    key,
                    format!("set either {key} or {key}_file, not both"),
                ));
            }
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

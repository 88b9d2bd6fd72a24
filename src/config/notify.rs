//! `[[notify]]`: where the daemon tells someone (see `crate::notify`).
//!
//! A webhook URL is a secret (a Slack or Cliq incoming-webhook URL carries
//! its token): it is a `SecretString`, masked in `check-config` output, and
//! no error message here ever shows it.

use std::path::PathBuf;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{invalid, keys::closest, ConfigError};

/// The target kinds.
pub const KINDS: [&str; 4] = ["webhook", "slack", "cliq", "email"];

/// The event names of `events = [...]`.
pub const EVENTS: [&str; 7] = [
    "push_held",
    "push_failed",
    "pull_failing",
    "endpoint_locked",
    "hr_source_invalid",
    "token_failing",
    "recovered",
];

/// One `[[notify]]` target. Which keys apply depends on `kind`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    pub kind: String,
    #[serde(serialize_with = "super::mask_opt")]
    pub url: Option<SecretString>,
    pub url_file: Option<PathBuf>,
    /// `None`: every event.
    pub events: Option<Vec<String>>,
    pub smtp_url: Option<String>,
    pub from: Option<String>,
    pub to: Option<Vec<String>>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

impl NotifySettings {
    /// Every key filled in (the unknown-key schema).
    pub(crate) fn exemplar() -> Self {
        Self {
            kind: "webhook".into(),
            url: Some(SecretString::from(String::new())),
            url_file: Some(PathBuf::new()),
            events: Some(Vec::new()),
            smtp_url: Some(String::new()),
            from: Some(String::new()),
            to: Some(Vec::new()),
            username: Some(String::new()),
            password_file: Some(PathBuf::new()),
        }
    }

    /// Whether this target wants `event`.
    pub fn wants(&self, event: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|e| e.iter().any(|x| x == event))
    }

    /// Checks of one entry; `at` is `notify[0]`.
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        if !KINDS.contains(&self.kind.as_str()) {
            let hint = closest(&self.kind, KINDS)
                .map(|k| format!("; did you mean \"{k}\"?"))
                .unwrap_or_default();
            return Err(invalid(
                &key("kind"),
                format!(
                    "{:?} is not a notification kind (webhook, slack, cliq or email){hint}",
                    self.kind
                ),
            ));
        }
        for e in self.events.iter().flatten() {
            if !EVENTS.contains(&e.as_str()) {
                let hint = closest(e, EVENTS)
                    .map(|k| format!("; did you mean \"{k}\"?"))
                    .unwrap_or_default();
                return Err(invalid(
                    &key("events"),
                    format!("{e:?} is not an event ({}){hint}", EVENTS.join(", ")),
                ));
            }
        }
        if self.kind == "email" {
            self.validate_email(at)
        } else {
            self.validate_http(at)
        }
    }

    fn validate_http(&self, at: &str) -> Result<(), ConfigError> {
        match (&self.url, &self.url_file) {
            (Some(_), Some(_)) => Err(invalid(
                &format!("{at}.url"),
                format!("set either {at}.url or {at}.url_file, not both"),
            )),
            (None, None) => Err(invalid(
                &format!("{at}.url"),
                format!("missing: a {} target needs url or url_file", self.kind),
            )),
            (Some(url), None) => {
                check_webhook_url(url.expose_secret()).map_err(|m| invalid(&format!("{at}.url"), m))
            }
            (None, Some(_)) => Ok(()),
        }
    }

    fn validate_email(&self, at: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        let Some(smtp) = &self.smtp_url else {
            return Err(invalid(
                &key("smtp_url"),
                "missing: an email target needs smtp_url (\"smtp://host:587\" or \"smtps://host:465\")",
            ));
        };
        check_smtp_url(smtp).map_err(|m| invalid(&key("smtp_url"), m))?;
        let from = self.from.as_deref().unwrap_or("");
        if !looks_like_address(from) {
            return Err(invalid(
                &key("from"),
                format!("{from:?} is not an e-mail address (e.g. \"cliq-sync@example.com\")"),
            ));
        }
        let to = self.to.as_deref().unwrap_or_default();
        if to.is_empty() {
            return Err(invalid(&key("to"), "missing: at least one recipient"));
        }
        if let Some(bad) = to.iter().find(|a| !looks_like_address(a)) {
            return Err(invalid(
                &key("to"),
                format!("{bad:?} is not an e-mail address"),
            ));
        }
        if self.username.is_some() != self.password_file.is_some() {
            return Err(invalid(
                &key("password_file"),
                "set both username and password_file, or neither",
            ));
        }
        Ok(())
    }

    /// The webhook URL, from `url` or `url_file` (read and checked).
    pub fn webhook_url(&self, at: &str) -> Result<SecretString, ConfigError> {
        let url = match (&self.url, &self.url_file) {
            (Some(u), _) => u.clone(),
            (None, Some(p)) => super::secrets::read("url", p)
                .map_err(|e| ConfigError::Load(format!("{at}.{e}")))?,
            (None, None) => return Err(invalid(&format!("{at}.url"), "missing")),
        };
        let key = if self.url.is_some() {
            "url"
        } else {
            "url_file"
        };
        check_webhook_url(url.expose_secret()).map_err(|m| invalid(&format!("{at}.{key}"), m))?;
        Ok(url)
    }

    /// The SMTP password from `password_file`, if any.
    pub fn smtp_password(&self, at: &str) -> Result<Option<SecretString>, ConfigError> {
        self.password_file
            .as_deref()
            .map(|p| {
                super::secrets::read("password", p)
                    .map_err(|e| ConfigError::Load(format!("{at}.{e}")))
            })
            .transpose()
    }
}

/// Loopback: `localhost`, `127.0.0.0/8`, `::1`.
pub fn is_loopback_url(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `https://` (or `http://` to loopback). The messages never show the URL:
/// it carries the webhook's token.
pub fn check_webhook_url(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url.trim())
        .map_err(|e| format!("is not a valid URL ({e}); expected \"https://…\""))?;
    if parsed.host().is_none() {
        return Err("has no host".into());
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_url(&parsed) => Ok(()),
        "http" => Err(format!(
            "plain http:// to {} is refused: the URL is a secret and the messages would \
             travel in clear text; use https:// (http:// is only allowed to a loopback host)",
            parsed.host_str().unwrap_or("")
        )),
        other => Err(format!("scheme {other}:// is not supported; use https://")),
    }
}

/// `smtp://host[:port]` (STARTTLS; plain only to loopback) or
/// `smtps://host[:port]` (implicit TLS), without credentials in it.
pub fn check_smtp_url(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url.trim())
        .map_err(|e| format!("{url:?} is not a valid URL ({e}); expected \"smtp://host:587\""))?;
    if !matches!(parsed.scheme(), "smtp" | "smtps") {
        return Err(format!(
            "scheme {}:// is not supported; use smtp:// (STARTTLS) or smtps:// (implicit TLS)",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "carries a user name or password; use username and password_file instead".into(),
        );
    }
    Ok(())
}

fn looks_like_address(a: &str) -> bool {
    let a = a.trim();
    let addr = match (a.rfind('<'), a.ends_with('>')) {
        (Some(i), true) => &a[i + 1..a.len() - 1],
        _ => a,
    };
    addr.split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !addr.contains(' '))
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, Settings};

    fn load(toml: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cliq-sync.toml");
        std::fs::write(&path, toml).unwrap();
        Settings::load_with_env(Some(&path), std::iter::empty())
    }

    fn err(toml: &str) -> String {
        load(toml).unwrap_err().to_string()
    }

    const SECRET: &str = "https://hooks.slack.example/services/T000/B000/SECRETTOKEN";

    #[test]
    fn targets_load_and_the_url_is_masked_everywhere() {
        let s = load(&format!(
            "[[notify]]\nkind = \"slack\"\nurl = \"{SECRET}\"\nevents = [\"push_held\", \"recovered\"]\n\n\
             [[notify]]\nkind = \"email\"\nsmtp_url = \"smtp://127.0.0.1:2525\"\nfrom = \"cliq-sync@example.com\"\nto = [\"ops@example.com\"]\n"
        ))
        .unwrap();
        assert_eq!(s.notify.len(), 2);
        assert!(s.notify[0].wants("push_held") && !s.notify[0].wants("pull_failing"));
        assert!(s.notify[1].wants("pull_failing"), "default: every event");
        assert!(
            !format!("{s:?}").contains("SECRETTOKEN"),
            "Debug shows the URL"
        );
        let masked = s.to_masked_toml();
        assert!(!masked.contains("SECRETTOKEN"), "{masked}");
        assert!(masked.contains("[[notify]]"), "{masked}");
    }

    #[test]
    fn errors_name_the_entry_and_key_and_never_the_url() {
        let e = err("[[notify]]\nkind = \"slak\"\nurl = \"https://x.example/\"\n");
        assert!(
            e.contains("notify[0].kind") && e.contains("did you mean \"slack\"?"),
            "{e}"
        );
        let e = err(&format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"https://ok.example/\"\n[[notify]]\nkind = \"cliq\"\nurl = \"{}\"\n",
            SECRET.replace("https", "http")
        ));
        assert!(e.contains("notify[1].url") && e.contains("https://"), "{e}");
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        let e = err("[[notify]]\nkind = \"webhook\"\n");
        assert!(e.contains("notify[0].url") && e.contains("missing"), "{e}");
        let e = err("[[notify]]\nkind = \"webhook\"\nurl = \"https://x.example/\"\nevents = [\"push_hold\"]\n");
        assert!(
            e.contains("notify[0].events") && e.contains("did you mean \"push_held\"?"),
            "{e}"
        );
        let e = err("[[notify]]\nkind = \"email\"\nsmtp_url = \"http://mail.example\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n");
        assert!(
            e.contains("notify[0].smtp_url") && e.contains("smtps://"),
            "{e}"
        );
        let e = err(
            "[[notify]]\nkind = \"email\"\nsmtp_url = \"smtp://mail.example\"\nfrom = \"a@b\"\n",
        );
        assert!(e.contains("notify[0].to"), "{e}");
        let e =
            err("[[notify]]\nkind = \"webhook\"\nurl = \"https://x.example/\"\nur_file = \"/x\"\n");
        assert!(e.contains("ur_file"), "{e}");
    }

    #[test]
    fn a_url_file_is_read_and_checked_like_a_url() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("url");
        std::fs::write(&p, "http://hooks.example/SECRETTOKEN\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = load(&format!(
            "[[notify]]\nkind = \"webhook\"\nurl_file = \"{}\"\n",
            p.display()
        ))
        .unwrap();
        let e = s.notify[0]
            .webhook_url("notify[0]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("notify[0].url_file") && !e.contains("SECRETTOKEN"),
            "{e}"
        );
    }

    /// `check-config` reads the notification secrets too.
    #[test]
    fn check_secrets_reads_the_url_file() {
        let mut s =
            load("[[notify]]\nkind = \"webhook\"\nurl_file = \"/nonexistent/cliq-sync/url\"\n")
                .unwrap();
        s.cliq.client_secret = Some("x".to_owned().into());
        s.cliq.refresh_token = Some("y".to_owned().into());
        let e = s.check_secrets().unwrap_err().to_string();
        assert!(
            e.contains("notify[0]") && e.contains("/nonexistent/cliq-sync/url"),
            "{e}"
        );
    }
}

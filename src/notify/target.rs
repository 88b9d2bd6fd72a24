//! The targets: a generic JSON webhook, a Slack-compatible webhook, a Cliq
//! channel's incoming webhook (one POST of JSON each), e-mail over SMTP,
//! and a channel (tests).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

use super::{Event, Message};
use crate::config::NotifySettings;

/// One POST or one e-mail may take this long; then it is given up (logged).
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{target}: cannot build the HTTPS client: {error}")]
    Client { target: String, error: String },
    /// Never carries the URL (it is a secret).
    #[error("the request failed: {0}")]
    Http(String),
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("e-mail: {0}")]
    Email(String),
    #[error("the capture channel is closed")]
    Closed,
}

enum Sink {
    /// `webhook` (the full message) or `slack`/`cliq` (`{"text": …}`).
    Http {
        full_body: bool,
        url: SecretString,
        client: reqwest::Client,
    },
    Email(Box<super::email::Mailer>),
    Capture(mpsc::UnboundedSender<Message>),
}

/// A notification target: its name for the logs (`notify[0] (slack)`, never
/// the URL), the events it wants and where it sends.
pub struct Target {
    name: String,
    events: Option<Vec<String>>,
    sink: Sink,
}

impl Target {
    /// `[[notify]]` entry `i`, its URL file read.
    pub fn from_settings(i: usize, n: &NotifySettings) -> Result<Self, NotifyError> {
        let at = format!("notify[{i}]");
        n.validate(&at)?;
        let name = format!("{at} ({})", n.kind);
        let sink = match n.kind.as_str() {
            "email" => Sink::Email(Box::new(super::email::Mailer::new(&at, n)?)),
            kind => Sink::Http {
                full_body: kind == "webhook",
                url: n.webhook_url(&at)?,
                client: http_client().map_err(|error| NotifyError::Client {
                    target: name.clone(),
                    error,
                })?,
            },
        };
        Ok(Self {
            name,
            events: n.events.clone(),
            sink,
        })
    }

    pub fn capture(tx: mpsc::UnboundedSender<Message>) -> Self {
        Self {
            name: "capture".into(),
            events: None,
            sink: Sink::Capture(tx),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn wants(&self, event: Event) -> bool {
        self.events
            .as_ref()
            .is_none_or(|e| e.iter().any(|x| x == event.name()))
    }

    pub async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        match &self.sink {
            Sink::Http {
                full_body,
                url,
                client,
            } => post(client, url, &body(msg, *full_body)).await,
            Sink::Email(m) => m.send(msg).await,
            Sink::Capture(tx) => tx.send(msg.clone()).map_err(|_| NotifyError::Closed),
        }
    }
}

/// The webhook's body is the message; Slack's and Cliq's is `{"text": …}`.
pub fn body(msg: &Message, full: bool) -> serde_json::Value {
    if full {
        serde_json::to_value(msg).unwrap_or_default()
    } else {
        serde_json::json!({ "text": msg.text() })
    }
}

/// No redirects: a redirect could carry the message (and the webhook's
/// token in the URL) somewhere else.
fn http_client() -> Result<reqwest::Client, String> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("cliq-sync/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SEND_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

async fn post(
    client: &reqwest::Client,
    url: &SecretString,
    body: &serde_json::Value,
) -> Result<(), NotifyError> {
    let resp = client
        .post(url.expose_secret())
        .json(body)
        .send()
        .await
        // reqwest's message names the URL, which is a secret.
        .map_err(|e| NotifyError::Http(e.without_url().to_string()))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(NotifyError::Status(status.as_u16()))
    }
}

//! E-mail over SMTP through lettre: `smtps://` is implicit TLS (port 465
//! by default), `smtp://` is STARTTLS, required (587), except to a loopback
//! host, where it is plain SMTP (a local relay; the tests' peer). One
//! connection per message (no pool: messages are rare).

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use reqwest::Url;
use secrecy::ExposeSecret;

use super::{Message, NotifyError};
use crate::config::{invalid_key, is_loopback_url, NotifySettings};

pub(super) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Mailer {
    /// `n` is entry `at` (`notify[1]`), already validated.
    pub fn new(at: &str, n: &NotifySettings) -> Result<Self, NotifyError> {
        let key = |k: &str| format!("{at}.{k}");
        let smtp = n.smtp_url.as_deref().unwrap_or_default();
        let url =
            Url::parse(smtp.trim()).map_err(|e| invalid_key(&key("smtp_url"), e.to_string()))?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let bad_host =
            |e: lettre::transport::smtp::Error| invalid_key(&key("smtp_url"), e.to_string());
        let builder = match url.scheme() {
            "smtps" => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(bad_host)?,
            _ if is_loopback_url(&url) => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(25)
            }
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(bad_host)?,
        };
        let mut builder = builder.timeout(Some(super::target::SEND_TIMEOUT));
        if let Some(port) = url.port() {
            builder = builder.port(port);
        }
        if let (Some(user), Some(password)) = (&n.username, n.smtp_password(at)?) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        let mailbox = |k: &str, a: &str| {
            a.trim()
                .parse::<Mailbox>()
                .map_err(|e| invalid_key(&key(k), format!("{a:?} is not an e-mail address: {e}")))
        };
        let from = mailbox("from", n.from.as_deref().unwrap_or_default())?;
        let to =
            n.to.iter()
                .flatten()
                .map(|a| mailbox("to", a))
                .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            transport: builder.build(),
            from,
            to,
        })
    }

    pub async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(msg.text());
        for to in &self.to {
            b = b.to(to.clone());
        }
        let body = format!(
            "{}\n\nevent:    {}\nseverity: {}\nat:       {}\nrun_id:   {}\nincident: {}\n",
            msg.summary,
            msg.event.name(),
            serde_json::to_value(msg.severity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            msg.at,
            msg.run_id
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            msg.incident,
        );
        let mail = b
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| NotifyError::Email(e.to_string()))?;
        self.transport
            .send(mail)
            .await
            .map(drop)
            .map_err(|e| NotifyError::Email(e.to_string()))
    }
}

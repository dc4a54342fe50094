//! Email alerts: messages with a plain-text and an HTML part, sent through the configured SMTP
//! relay with STARTTLS or TLS (rustls) and the configured credentials. A channel's recipients
//! are its URL, `mailto:ops@example.com,brand@example.com`.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{EmailSettings, EmailTls};

/// Most recipients of one email channel.
pub const MAX_RECIPIENTS: usize = 20;

/// The recipients of a `mailto:` channel URL; an error says what is wrong.
pub fn recipients(url: &str) -> Result<Vec<Mailbox>, String> {
    let list = url
        .strip_prefix("mailto:")
        .ok_or("an email channel's url is mailto:address[,address…]")?;
    let boxes: Vec<Mailbox> = list
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<Mailbox>()
                .map_err(|_| format!("{a:?} is not an email address"))
        })
        .collect::<Result<_, _>>()?;
    if boxes.is_empty() || boxes.len() > MAX_RECIPIENTS {
        return Err(format!("1 to {MAX_RECIPIENTS} recipients"));
    }
    Ok(boxes)
}

/// A connection recipe to the relay; each message opens its own connection.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The mailer of `settings`; `None` when no relay is configured.
    pub fn from_settings(settings: &EmailSettings) -> anyhow::Result<Option<Mailer>> {
        if settings.smtp_host.is_empty() {
            return Ok(None);
        }
        let host = settings.smtp_host.as_str();
        let tls = match settings.tls {
            EmailTls::None => {
                let loopback = host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                anyhow::ensure!(
                    loopback,
                    "email.tls = none is only for a relay on this machine, not {host}"
                );
                Tls::None
            }
            mode => {
                let mut params = TlsParameters::builder(host.to_string());
                if !settings.ca_file.is_empty() {
                    let pem = std::fs::read(&settings.ca_file).map_err(|e| {
                        anyhow::anyhow!("reading email.ca_file {}: {e}", settings.ca_file)
                    })?;
                    params = params.add_root_certificate(Certificate::from_pem(&pem)?);
                }
                let params = params.build_rustls()?;
                if mode == EmailTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(settings.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(settings.timeout_secs.max(1))));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.expose().to_string(),
            ));
        }
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|e| anyhow::anyhow!("email.from {:?}: {e}", settings.from))?;
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    /// Sends `message` (`{"subject", "text", "html"}`, as rendered for the email channel) to
    /// the recipients of `url`: the relay's reply code when it took it, else the code (if
    /// any) and what went wrong.
    pub async fn send(
        &self,
        url: &str,
        message: &serde_json::Value,
    ) -> Result<u16, (Option<u16>, String)> {
        let to = recipients(url).map_err(|e| (None, e))?;
        let text = |k: &str| message[k].as_str().unwrap_or("").to_string();
        let mut email = Message::builder()
            .from(self.from.clone())
            .subject(text("subject"));
        for mailbox in to {
            email = email.to(mailbox);
        }
        let alternative = MultiPart::alternative_plain_html(text("text"), text("html"));
        let images = inline_images(message).map_err(|e| (None, e))?;
        let body = if images.is_empty() {
            alternative
        } else {
            // The HTML part names each image by its content id (`cid:`).
            images.into_iter().fold(
                MultiPart::related().multipart(alternative),
                |related, (cid, png)| {
                    related.singlepart(Attachment::new_inline(cid).body(
                        png,
                        ContentType::parse("image/png").expect("a valid content type"),
                    ))
                },
            )
        };
        let email = email
            .multipart(body)
            .map_err(|e| (None, format!("building the email: {e}")))?;
        match self.transport.send(email).await {
            Ok(response) => Ok(u16::from(response.code())),
            Err(e) => Err((e.status().map(u16::from), smtp_error(&e))),
        }
    }
}

/// The message's inline images: `images` of `{"cid", "png_base64"}`.
fn inline_images(message: &serde_json::Value) -> Result<Vec<(String, Vec<u8>)>, String> {
    use base64::Engine as _;
    let Some(images) = message["images"].as_array() else {
        return Ok(Vec::new());
    };
    images
        .iter()
        .map(|image| {
            let cid = image["cid"].as_str().unwrap_or_default().to_string();
            let png = base64::engine::general_purpose::STANDARD
                .decode(image["png_base64"].as_str().unwrap_or_default())
                .map_err(|e| format!("an inline image is not base64: {e}"))?;
            Ok((cid, png))
        })
        .collect()
}

/// What went wrong, without the relay's free text beyond its first line.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("SMTP error");
    crate::models::text::prefix_chars(first, 300).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_come_from_a_mailto_url() {
        let boxes = recipients("mailto:ops@example.com, Brand Team <brand@example.com>").unwrap();
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[1].email.to_string(), "brand@example.com");
        assert!(recipients("https://example.com").is_err());
        assert!(recipients("mailto:").is_err());
        assert!(recipients("mailto:not-an-address").is_err());
        let many: Vec<String> = (0..=MAX_RECIPIENTS)
            .map(|i| format!("a{i}@x.org"))
            .collect();
        assert!(recipients(&format!("mailto:{}", many.join(","))).is_err());
    }

    #[test]
    fn plain_smtp_is_only_for_this_machine() {
        let settings = EmailSettings {
            smtp_host: "smtp.example.com".into(),
            tls: EmailTls::None,
            ..EmailSettings::default()
        };
        assert!(Mailer::from_settings(&settings).is_err());
        let local = EmailSettings {
            smtp_host: "127.0.0.1".into(),
            ..settings
        };
        assert!(Mailer::from_settings(&local).unwrap().is_some());
        assert!(Mailer::from_settings(&EmailSettings::default())
            .unwrap()
            .is_none());
    }
}

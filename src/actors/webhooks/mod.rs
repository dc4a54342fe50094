//! Webhook delivery: POSTs every pending delivery (one per alert or digest, event and subscription) in
//! its channel's format (see [`channels`]), Pulse's own with an
//! HMAC-SHA256 signature, retries failures with exponential backoff and jitter, and gives up
//! (`dead`) after `webhooks.max_attempts`. It runs on its own timer, so a slow or failing
//! receiver never delays the alerter; each delivery is recorded as soon as its receiver answers
//! and its place goes to the next, and a channel has at most [`PER_CHANNEL`] in flight (one
//! while it is failing: a delivery of it is due again after a failed attempt), so a slow
//! receiver never delays the other channels either, and receivers that time out hold a place
//! each.
//!
//! Each request carries `x-pulse-event` (`alert:<kind>`, or `digest`), `x-pulse-delivery` (the delivery
//! id), `x-pulse-timestamp` (Unix seconds) and `x-pulse-signature`:
//! `sha256=` + hex(HMAC-SHA256(secret, "<timestamp>.<body>")). Receivers recompute it and
//! reject old timestamps to stop replays.
//!
//! A receiver that asks for a wait (`429` or `503` with `Retry-After`, or a spent rate-limit
//! window, read as the sources read them: [`crate::sources::asked_wait`]) gets it: the channel
//! is held for that long ([`crate::db::webhooks::hold_channel`]), so the refused delivery and
//! every other one of the channel, queued before the refusal or during the wait, goes no
//! sooner, and an alert burst against a rate-limited receiver neither hammers it nor spends
//! every delivery's attempts inside its window. The hold ends with the wait, not with the
//! refused delivery's own backoff, which may be much longer.

pub mod channels;
pub mod mailer;

use std::sync::Arc;
use std::time::Duration;

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context};
use deadpool_postgres::Pool;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Settings;
use crate::db::webhooks;
use crate::models::backoff;
use crate::models::webhooks::{ChannelKind, DeliveryEvent};
use crate::sources::asked_wait::asked_wait;
use crate::telemetry::names;
use channels::render;
use mailer::Mailer;

/// Deliveries one process sends at once.
const MAX_SENDING: usize = 32;
/// Deliveries one channel may have in flight from one process.
pub const PER_CHANNEL: usize = 4;
/// The part of a lease kept for recording a delivery's outcome.
const RECORD_SECS: f64 = 10.0;

/// How long a claimed delivery is reserved for the process that claimed it: three times the
/// longest one send may take (a send is cut off after that), and [`RECORD_SECS`] to record the
/// outcome. A process that dies holding it (killed in the middle of a send) leaves it to the
/// others after that.
fn lease_secs(settings: &Settings) -> f64 {
    let send = settings
        .webhooks
        .timeout_secs
        .max(settings.email.timeout_secs)
        .max(1);
    (3 * send) as f64 + RECORD_SECS
}

/// The signature header value for `body` sent at `timestamp` with `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!("sha256={}", crate::models::hex::hex(&bytes))
}

/// The delay before attempt `attempt + 1`: exponential from `base`, capped, with ±50% jitter
/// so failing receivers are not hit by every retry at once.
pub fn retry_delay(attempt: i32, base: Duration, max: Duration) -> Duration {
    backoff::spread(backoff::ceiling(base, max, attempt.max(0) as u32))
}

/// What a receiver (or the way to it) refused a message with.
#[derive(Debug)]
pub struct Refusal {
    /// The receiver's status (or the relay's reply code), when it answered.
    pub status: Option<u16>,
    pub error: String,
    /// How long the receiver asked the channel to wait before its next request.
    pub asked: Option<Duration>,
}

impl From<(Option<u16>, String)> for Refusal {
    fn from((status, error): (Option<u16>, String)) -> Self {
        Refusal {
            status,
            error,
            asked: None,
        }
    }
}

/// Where a message goes.
pub struct Target<'a> {
    pub channel: ChannelKind,
    pub url: &'a str,
    /// The signing secret (generic webhooks; other channels carry theirs in URL or body).
    pub secret: &'a str,
}

/// Sends one message: the receiver's status when it took it, else the status (if any) and
/// what went wrong. Only Pulse's own format is signed (`event` and `delivery` go in its
/// headers).
pub async fn send(
    http: &reqwest::Client,
    policy: &crate::egress::TargetPolicy,
    target: &Target<'_>,
    event: &str,
    delivery: i64,
    body: String,
) -> Result<u16, Refusal> {
    // IP literals are not resolved, so the resolver cannot refuse them: checked here, on
    // every delivery, against the policy in force now.
    if policy.check_url(target.url).is_err() {
        return Err((None, "target not allowed".to_string()).into());
    }
    let mut request = http
        .post(target.url)
        .header("content-type", "application/json");
    if target.channel == ChannelKind::Webhook {
        let timestamp = chrono::Utc::now().timestamp();
        request = request
            .header("x-pulse-event", event)
            .header("x-pulse-delivery", delivery.to_string())
            .header("x-pulse-timestamp", timestamp.to_string())
            .header(
                "x-pulse-signature",
                signature(target.secret, timestamp, &body),
            );
    }
    match request.body(body).send().await {
        Ok(res) if res.status().is_success() => Ok(res.status().as_u16()),
        // Redirects are not followed: a receiver could point at an internal address.
        Ok(res) if res.status().is_redirection() => Err((
            Some(res.status().as_u16()),
            "receiver answered a redirect, which is not followed".to_string(),
        )
            .into()),
        Ok(res) => {
            let status = res.status().as_u16();
            Err(Refusal {
                status: Some(status),
                error: format!("receiver answered {}", res.status()),
                asked: asked_wait(status, res.headers(), chrono::Utc::now()).map(|a| a.wait),
            })
        }
        Err(e) => Err((None, crate::egress::describe(&e).to_string()).into()),
    }
}

/// Sends one rendered message by its channel's means: SMTP for email, HTTP for the others.
pub async fn deliver(
    http: &reqwest::Client,
    policy: &crate::egress::TargetPolicy,
    mailer: Option<&Mailer>,
    target: &Target<'_>,
    event: &str,
    delivery: i64,
    body: serde_json::Value,
) -> Result<u16, Refusal> {
    if target.channel == ChannelKind::Email {
        return match mailer {
            Some(mailer) => mailer.send(target.url, &body).await.map_err(Refusal::from),
            None => Err((
                None,
                "email is not configured (email.smtp_host)".to_string(),
            )
                .into()),
        };
    }
    send(http, policy, target, event, delivery, body.to_string()).await
}

/// The delivery actor.
pub struct Deliverer {
    settings: Arc<Settings>,
    pool: Pool,
    http: reqwest::Client,
    mailer: Option<Arc<Mailer>>,
    claiming: bool,
    sending: webhooks::Sending,
}

impl Deliverer {
    /// A deliverer sending through its own HTTP client, which reaches only the targets
    /// `webhooks.allow_private_targets` allows (see [`crate::egress`]).
    pub fn new(settings: Arc<Settings>, pool: Pool) -> Self {
        let policy = crate::egress::TargetPolicy::from_settings(&settings.webhooks);
        if policy.allow_private {
            tracing::warn!("webhooks.allow_private_targets is on: webhooks may reach loopback and internal addresses");
        }
        let http = policy.client(Duration::from_secs(settings.webhooks.timeout_secs.max(1)));
        let mailer = match Mailer::from_settings(&settings.email) {
            Ok(mailer) => mailer.map(Arc::new),
            Err(e) => {
                tracing::error!(error = %format_args!("{e:#}"), "email is misconfigured: email channels will fail until it is fixed");
                None
            }
        };
        Self {
            settings,
            pool,
            http,
            mailer,
            claiming: false,
            sending: webhooks::Sending::default(),
        }
    }
}

impl Actor for Deliverer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = Duration::from_millis(self.settings.webhooks.poll_ms.max(10));
        ctx.run_interval(every, |this, ctx| this.claim(ctx));
    }
}

impl Deliverer {
    /// Claims what is due for the free places, and sends each claimed delivery on its own.
    fn claim(&mut self, ctx: &mut Context<Self>) {
        let free = MAX_SENDING.saturating_sub(self.sending.0.len());
        if self.claiming || free == 0 {
            return;
        }
        self.claiming = true;
        let (pool, sending, lease) = (
            self.pool.clone(),
            self.sending.clone(),
            lease_secs(&self.settings),
        );
        let claimed = async move {
            let mut client = pool.get().await?;
            anyhow::Ok(webhooks::claim_due(&mut client, free, lease, PER_CHANNEL, &sending).await?)
        };
        ctx.spawn(
            wrap_future::<_, Self>(claimed).map(|result, this, ctx| {
                this.claiming = false;
                match result {
                    Ok(due) => due.into_iter().for_each(|d| this.send(d, ctx)),
                    Err(e) => {
                        pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "claiming webhook deliveries failed")
                    }
                }
            }),
        );
    }

    fn send(&mut self, due: webhooks::Due, ctx: &mut Context<Self>) {
        let id = due.id;
        self.sending.0.insert(id, due.webhook_id);
        let (pool, http, settings, mailer) = (
            self.pool.clone(),
            self.http.clone(),
            self.settings.clone(),
            self.mailer.clone(),
        );
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                deliver_one(&pool, &http, mailer.as_deref(), &settings, due).await
            })
            .map(move |result, this, _| {
                this.sending.0.remove(&id);
                if let Err(e) = result {
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "recording a webhook delivery failed");
                }
            }),
        );
    }
}

/// Sends one claimed delivery and records its outcome.
async fn deliver_one(
    pool: &Pool,
    http: &reqwest::Client,
    mailer: Option<&Mailer>,
    settings: &Settings,
    d: webhooks::Due,
) -> anyhow::Result<()> {
    let policy = crate::egress::TargetPolicy::from_settings(&settings.webhooks);
    let body = render(
        d.channel,
        d.event,
        &d.payload,
        &settings.webhooks.dashboard_url,
        &d.secret,
    );
    let event = if d.event == DeliveryEvent::Digest {
        "digest".to_string()
    } else if d.kind == "volume_spike" {
        "alert:spike".to_string()
    } else {
        format!("alert:{}", d.kind)
    };
    let target = Target {
        channel: d.channel,
        url: &d.url,
        secret: &d.secret,
    };
    // Within its lease whatever the channel: an SMTP relay that takes the connection and then
    // says nothing has no timeout of its own.
    let limit = Duration::from_secs_f64(lease_secs(settings) - RECORD_SECS);
    let outcome = tokio::time::timeout(
        limit,
        deliver(http, &policy, mailer, &target, &event, d.id, body),
    )
    .await
    .unwrap_or_else(|_| Err((None, format!("no answer within {} s", limit.as_secs())).into()));

    let (id, attempts) = (d.id, d.attempts + 1);
    // The receiver has answered: its outcome is worth a wait for a connection, or it is sent
    // again once the lease ends.
    let mut tries = 0;
    let client = loop {
        match pool.get().await {
            Ok(client) => break client,
            Err(e) if tries < 2 => {
                tries += 1;
                tracing::debug!(error = %e, "no connection to record a webhook delivery; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    match outcome {
        Ok(status) => {
            metrics::counter!(names::WEBHOOK_DELIVERIES, "outcome" => "delivered").increment(1);
            webhooks::mark_delivered(&client, id, attempts, status).await?;
        }
        Err(Refusal {
            status,
            error,
            asked,
        }) => {
            let dead = attempts >= settings.webhooks.max_attempts as i32;
            let outcome = if dead { "dead" } else { "retry" };
            metrics::counter!(names::WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
            let base = Duration::from_millis(settings.webhooks.base_delay_ms.max(1));
            let max = Duration::from_secs(settings.webhooks.max_delay_secs.max(1));
            let delay = retry_delay(attempts - 1, base, max).max(asked.unwrap_or_default());
            let delay = delay.as_secs_f64();
            // Held before the refusal is recorded: a claim between the two would send the
            // channel's next delivery inside the wait.
            if let Some(wait) = asked {
                webhooks::hold_channel(&client, d.webhook_id, wait.as_secs_f64()).await?;
            }
            webhooks::mark_failed(&client, id, attempts, status, &error, dead, delay).await?;
            if dead {
                // The error may quote a receiver or relay: logged escaped.
                tracing::warn!(
                    delivery = id,
                    attempts,
                    ?error,
                    "webhook delivery dead-lettered"
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // Reference value computed independently (Python: hmac.new(b"key", b"1.{}", sha256)).
        assert_eq!(
            signature("key", 1, "{}"),
            "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }

    #[test]
    fn retry_delays_grow_and_are_capped() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..100 {
            let first = retry_delay(0, base, max);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_millis(1500));
            assert!(retry_delay(30, base, max) <= Duration::from_secs(90));
        }
    }
}

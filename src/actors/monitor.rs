//! The group monitor: publishes consumer-group lag and pending counts as metrics, and trims
//! stream entries the group has acknowledged so Redis memory stays bounded.
//!
//! Trimming uses `XTRIM MINID ~ <id>` where `<id>` is the oldest entry still pending, or the
//! group's last delivered id when nothing is pending: every entry below it has been
//! acknowledged by this group. Turn it off (`redis.trim_acknowledged = false`) when other
//! consumer groups read the same stream.

use std::sync::Arc;
use std::time::Duration;

use actix::{fut::wrap_future, Actor, AsyncContext, Context};
use fred::prelude::{Client, Error};

use crate::config::Settings;
use crate::streams::group::detailed_group_stats;
use crate::streams::upkeep;
use crate::telemetry::causes::causes;
use crate::telemetry::names;

/// How often figures are refreshed and the stream trimmed.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(5);
/// How long a process's published settings fingerprint counts (six monitor intervals).
pub const FINGERPRINT_FRESH_MS: i64 = 30_000;

/// The monitor actor.
pub struct GroupMonitor {
    settings: Arc<Settings>,
    redis: Client,
    consumer: String,
}

impl GroupMonitor {
    /// A monitor of the configured stream and group, run by consumer `consumer`.
    pub fn new(settings: Arc<Settings>, redis: Client, consumer: String) -> Self {
        Self {
            settings,
            redis,
            consumer,
        }
    }
}

impl Actor for GroupMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(MONITOR_INTERVAL, |this, ctx| {
            let (settings, redis) = (this.settings.clone(), this.redis.clone());
            let consumer = this.consumer.clone();
            ctx.spawn(wrap_future(async move {
                if let Err(e) = tick(&settings, &redis, &consumer).await {
                    tracing::debug!(error = %causes(&e), "group monitor tick failed");
                }
            }));
        });
    }
}

async fn tick(settings: &Settings, redis: &Client, consumer: &str) -> Result<(), Error> {
    let (stream, group) = (&settings.redis.stream, &settings.redis.group);
    if let Err(e) = compare_settings(settings, redis, consumer).await {
        tracing::debug!(error = %causes(&e), "comparing the group's settings failed");
    }
    let stats = detailed_group_stats(redis, settings).await?;
    if let Some(lag) = stats.lag {
        metrics::gauge!(names::CONSUMER_LAG).set(lag as f64);
    }
    metrics::gauge!(names::CONSUMER_PENDING).set(stats.pending as f64);
    if let Some(age) = stats.oldest_age_secs {
        metrics::gauge!(names::CONSUMER_OLDEST_AGE_SECONDS).set(age);
    }
    if let Some(bytes) = stats.stream_bytes {
        metrics::gauge!(names::STREAM_BYTES).set(bytes as f64);
    }
    // A live consumer reads at least every `ingest.idle_poll_ms`, and one that comes back
    // later is recreated by its next read; removing the others keeps consumer lists readable
    // after many restarts.
    let stale_ms =
        i64::try_from(settings.redis.stale_consumer_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
    for name in upkeep::remove_stale_consumers(redis, stream, group, consumer, stale_ms).await? {
        tracing::info!(consumer = %name, "removed a stale consumer from the group");
    }
    // Each letter is bounded (an oversize entry is kept as a truncated copy), and so is their
    // total.
    let cap = settings.redis.dead_letter_max_bytes as f64;
    if let Some(t) = upkeep::cap_dead_letters(redis, &settings.dead_letter_stream(), cap).await? {
        metrics::counter!(names::DEAD_LETTERS_TRIMMED).increment(t.trimmed.max(0) as u64);
        tracing::warn!(
            trimmed = t.trimmed,
            kept = t.kept,
            bytes = t.bytes,
            "the dead-letter stream was over redis.dead_letter_max_bytes; its oldest letters were trimmed"
        );
    }
    if settings.redis.trim_acknowledged {
        let trimmed = upkeep::trim_acknowledged(redis, stream, group, &stats).await?;
        if trimmed > 0 {
            tracing::debug!(trimmed, "trimmed acknowledged entries");
        }
    }
    Ok(())
}

/// Publishes this process's settings fingerprint and says when the group's differ: processes
/// that decide the same entry differently (one stores what another dead-letters) must be
/// noticed, not found in the data.
async fn compare_settings(
    settings: &Settings,
    redis: &Client,
    consumer: &str,
) -> Result<(), Error> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let fresh_ms = FINGERPRINT_FRESH_MS;
    let own = settings.decisions_fingerprint();
    let published = upkeep::publish_fingerprint(
        redis,
        &settings.redis.stream,
        consumer,
        &own,
        now_ms,
        fresh_ms,
    )
    .await?;
    let differing: Vec<String> = published
        .iter()
        .filter(|(_, print)| *print != own)
        .map(|(name, print)| format!("{name}={print}"))
        .collect();
    metrics::gauge!(names::GROUP_SETTINGS_DIFFER).set(if differing.is_empty() { 0.0 } else { 1.0 });
    if !differing.is_empty() {
        pulse_core::warn_repeated!(
            own = %own,
            others = %differing.join(", "),
            "processes of this group decide entries under different settings (ingest, analyzer, metrics, stories, topics); make them equal"
        );
    }
    Ok(())
}

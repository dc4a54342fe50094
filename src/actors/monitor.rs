//! The group monitor: publishes consumer-group lag and pending counts as metrics, trims
//! stream entries the group has acknowledged so Redis memory stays bounded, sets the stream's
//! ids back when an entry appended with the largest one used them up, and reports entries
//! another client removed before the group read them.
//!
//! Trimming uses `XTRIM MINID ~ <id>` where `<id>` is the oldest entry still pending, or the
//! group's last delivered id when nothing is pending: every entry below it has been
//! acknowledged by this group. Turn it off (`redis.trim_acknowledged = false`) when other
//! consumer groups read the same stream.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix::{fut::wrap_future, Actor, AsyncContext, Context};
use fred::prelude::{Client, Error};

use crate::config::Settings;
use crate::streams::group::detailed_group_stats;
use crate::streams::upkeep::{self, Ids};
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
    /// What the last look at the stream's ids saw.
    ids_seen: Arc<Mutex<IdsSeen>>,
}

impl GroupMonitor {
    /// A monitor of the configured stream and group, run by consumer `consumer`.
    pub fn new(settings: Arc<Settings>, redis: Client, consumer: String) -> Self {
        Self {
            settings,
            redis,
            consumer,
            ids_seen: Arc::default(),
        }
    }
}

impl Actor for GroupMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(MONITOR_INTERVAL, |this, ctx| {
            let (settings, redis) = (this.settings.clone(), this.redis.clone());
            let consumer = this.consumer.clone();
            let ids_seen = this.ids_seen.clone();
            ctx.spawn(wrap_future(async move {
                if let Err(e) = check_ids(&settings, &redis, &ids_seen).await {
                    // A warning: a stream whose ids are used up and cannot be set back stays
                    // closed to every append.
                    pulse_core::warn_repeated!(error = %causes(&e), "checking the stream's ids failed");
                }
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

/// The stream's last generated id at the monitor's last look, and the last one found removed
/// unread (so one removal is counted once).
#[derive(Default)]
struct IdsSeen {
    generated: Option<String>,
    reported: Option<String>,
}

/// Sets the stream's ids back once an entry appended with the largest id has used them up
/// (Redis refuses every append after it, Pulse's own intake and sources included), and says
/// when entries were removed from the stream before the group read them.
async fn check_ids(
    settings: &Settings,
    redis: &Client,
    seen: &Mutex<IdsSeen>,
) -> Result<(), Error> {
    let (stream, group) = (&settings.redis.stream, &settings.redis.group);
    let found = upkeep::check_ids(redis, stream, group).await?;
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    match found {
        Ids::Reset(id) => {
            *seen = IdsSeen::default();
            metrics::counter!(names::STREAM_IDS_RESET).increment(1);
            tracing::warn!(
                stream = %stream,
                id = %id,
                "an entry appended with the largest possible id had used up the stream's ids (every append was refused); once read, it was deleted and the ids set back"
            );
        }
        Ids::UsedUp => {
            *seen = IdsSeen::default();
            pulse_core::warn_repeated!(
                stream = %stream,
                "an entry appended with the largest possible id has used up the stream's ids: every append is refused until the group has read it, then the ids are set back"
            );
        }
        Ids::Ok(now) => {
            if let Some(before) = seen.generated.take() {
                if now.removed_unread(&before) && seen.reported.as_deref() != Some(&before) {
                    metrics::counter!(names::UNREAD_ENTRIES_REMOVED).increment(1);
                    tracing::error!(
                        stream = %stream,
                        removed = %before,
                        "entries were removed from the stream before the group read them (an XADD with MAXLEN or MINID, or an XTRIM, by another client): their producers were told they were taken, and they will not be stored"
                    );
                    seen.reported = Some(before);
                }
            }
            seen.generated = now.generated;
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

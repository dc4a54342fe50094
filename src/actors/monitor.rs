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
use fred::prelude::*;

use crate::config::Settings;
use crate::streams::group::group_stats;
use crate::telemetry::names;

/// How often figures are refreshed and the stream trimmed.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(5);

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
                    tracing::debug!(error = %e, "group monitor tick failed");
                }
            }));
        });
    }
}

async fn tick(settings: &Settings, redis: &Client, consumer: &str) -> Result<(), Error> {
    let stats = group_stats(redis, settings).await?;
    if let Some(lag) = stats.lag {
        metrics::gauge!(names::CONSUMER_LAG).set(lag as f64);
    }
    metrics::gauge!(names::CONSUMER_PENDING).set(stats.pending as f64);
    remove_stale_consumers(settings, redis, consumer).await?;
    cap_dead_letters(settings, redis).await?;
    if settings.redis.trim_acknowledged {
        if let Some(min_id) = safe_trim_id(settings, redis, &stats).await? {
            let trimmed: i64 = redis
                .xtrim(&settings.redis.stream, ("MINID", "~", min_id.as_str()))
                .await?;
            if trimmed > 0 {
                tracing::debug!(trimmed, "trimmed acknowledged entries");
            }
        }
    }
    Ok(())
}

/// Trims the dead-letter stream's oldest letters while it holds more than
/// `redis.dead_letter_max_bytes` (as `MEMORY USAGE` estimates it): each letter is bounded (an
/// oversize entry is kept as a truncated copy), and so is their total.
async fn cap_dead_letters(settings: &Settings, redis: &Client) -> Result<(), Error> {
    let dead = settings.dead_letter_stream();
    let cap = settings.redis.dead_letter_max_bytes as f64;
    let used: Option<i64> = redis.memory_usage(&dead, None).await?;
    let Some(used) = used.map(|u| u as f64).filter(|&u| u > cap) else {
        return Ok(());
    };
    let len: i64 = redis.xlen(&dead).await?;
    let keep = ((len as f64) * cap / used * 0.9).floor() as i64;
    let trimmed: i64 = redis.xtrim(&dead, ("MAXLEN", keep.max(0))).await?;
    metrics::counter!(names::DEAD_LETTERS_TRIMMED).increment(trimmed.max(0) as u64);
    tracing::warn!(
        trimmed,
        kept = keep,
        bytes = used,
        "the dead-letter stream was over redis.dead_letter_max_bytes; its oldest letters were trimmed"
    );
    Ok(())
}

/// The lowest id the group may still need: the oldest pending entry, else the last delivered.
async fn safe_trim_id(
    settings: &Settings,
    redis: &Client,
    stats: &crate::streams::group::GroupStats,
) -> Result<Option<String>, Error> {
    if stats.pending > 0 {
        let summary: Value = redis
            .xpending(&settings.redis.stream, &settings.redis.group, ())
            .await?;
        if let Value::Array(parts) = summary {
            return Ok(parts.get(1).and_then(|v| v.as_string()));
        }
        return Ok(None);
    }
    Ok(stats.last_delivered_id.clone())
}

/// Deletes consumers of the group, other than `own`, that hold no pending entries and have
/// been idle for `redis.stale_consumer_secs`: they belong to processes that are gone, and
/// removing them keeps consumer lists readable after many restarts. A live consumer reads at
/// least every `ingest.idle_poll_ms`, and one that comes back later is recreated by its next read.
async fn remove_stale_consumers(
    settings: &Settings,
    redis: &Client,
    own: &str,
) -> Result<(), Error> {
    let stale_ms =
        i64::try_from(settings.redis.stale_consumer_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
    let consumers: Value = redis
        .xinfo_consumers(&settings.redis.stream, &settings.redis.group)
        .await?;
    let Value::Array(consumers) = consumers else {
        return Ok(());
    };
    for consumer in consumers {
        let fields: Vec<Value> = match consumer {
            Value::Array(fields) => fields,
            Value::Map(map) => map
                .inner()
                .into_iter()
                .flat_map(|(k, v)| [Value::from(k), v])
                .collect(),
            _ => continue,
        };
        let field = |name: &str| {
            fields
                .chunks(2)
                .find(|kv| kv[0].as_string().as_deref() == Some(name))
                .and_then(|kv| kv.get(1))
                .and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_string().and_then(|s| s.parse().ok()))
                })
        };
        let name = fields
            .chunks(2)
            .find(|kv| kv[0].as_string().as_deref() == Some("name"))
            .and_then(|kv| kv.get(1))
            .and_then(|v| v.as_string());
        let (Some(name), Some(pending), Some(idle)) = (name, field("pending"), field("idle"))
        else {
            continue;
        };
        if name != own && pending == 0 && idle >= stale_ms {
            let _: i64 = redis
                .xgroup_delconsumer(&settings.redis.stream, &settings.redis.group, name.as_str())
                .await?;
            tracing::info!(consumer = %name, "removed a stale consumer from the group");
        }
    }
    Ok(())
}

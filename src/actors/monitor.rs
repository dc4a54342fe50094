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

use crate::actors::ingester::group_stats;
use crate::config::Settings;
use crate::telemetry::names;

/// How often figures are refreshed and the stream trimmed.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(5);

/// The monitor actor.
pub struct GroupMonitor {
    settings: Arc<Settings>,
    redis: Client,
}

impl GroupMonitor {
    /// A monitor of the configured stream and group.
    pub fn new(settings: Arc<Settings>, redis: Client) -> Self {
        Self { settings, redis }
    }
}

impl Actor for GroupMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(MONITOR_INTERVAL, |this, ctx| {
            let (settings, redis) = (this.settings.clone(), this.redis.clone());
            ctx.spawn(wrap_future(async move {
                if let Err(e) = tick(&settings, &redis).await {
                    tracing::debug!(error = %e, "group monitor tick failed");
                }
            }));
        });
    }
}

async fn tick(settings: &Settings, redis: &Client) -> Result<(), Error> {
    let stats = group_stats(redis, settings).await?;
    if let Some(lag) = stats.lag {
        metrics::gauge!(names::CONSUMER_LAG).set(lag as f64);
    }
    metrics::gauge!(names::CONSUMER_PENDING).set(stats.pending as f64);
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

/// The lowest id the group may still need: the oldest pending entry, else the last delivered.
async fn safe_trim_id(
    settings: &Settings,
    redis: &Client,
    stats: &crate::actors::ingester::GroupStats,
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

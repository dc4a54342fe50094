//! Appending only while the consumer group keeps up: what sources and `pulse import` wait on,
//! by the same three limits as `POST /api/v1/events` (entries to read or acknowledge, the age
//! of the oldest of them, and the bytes the stream holds in Redis).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::prelude::*;

use super::group::detailed_group_stats;
use crate::config::Settings;
use crate::telemetry::names;

/// How often a paused producer looks again.
pub const POLL: Duration = Duration::from_millis(200);

/// The limits a producer appends within (each 0: none).
#[derive(Debug, Clone)]
pub struct Gate {
    /// Where the stream and its group are.
    pub settings: Arc<Settings>,
    /// Most entries the group may have to read or acknowledge.
    pub max_entries: i64,
    /// Longest the oldest of them may have waited, in seconds.
    pub max_age_secs: f64,
    /// Most bytes the stream may hold in Redis.
    pub max_bytes: u64,
}

impl Gate {
    /// The limits `POST /api/v1/events` answers 503 past (`ingest.max_backlog`,
    /// `ingest.max_backlog_secs`).
    pub fn of_intake(settings: Arc<Settings>) -> Gate {
        Gate {
            max_entries: settings.ingest.max_backlog as i64,
            max_age_secs: settings.ingest.max_backlog_secs,
            max_bytes: settings.ingest.max_backlog_bytes,
            settings,
        }
    }

    /// Why the group is behind, or `None` when a producer may append.
    pub async fn behind(&self, redis: &Client) -> Result<Option<String>, Error> {
        if self.max_entries <= 0 && self.max_age_secs <= 0.0 && self.max_bytes == 0 {
            return Ok(None);
        }
        let stats = detailed_group_stats(redis, &self.settings).await?;
        if self.max_entries > 0 && stats.backlog() > self.max_entries {
            return Ok(Some(format!(
                "{} entries to read or acknowledge (at most {})",
                stats.backlog(),
                self.max_entries
            )));
        }
        if let Some(bytes) = over_bytes(&stats, self.max_bytes) {
            return Ok(Some(format!(
                "its entries hold about {bytes} bytes in Redis (at most {})",
                self.max_bytes
            )));
        }
        match stats.oldest_age_secs {
            Some(age) if self.max_age_secs > 0.0 && age > self.max_age_secs => Ok(Some(format!(
                "its oldest entry waited {age:.1} s (at most {} s)",
                self.max_age_secs
            ))),
            _ => Ok(None),
        }
    }

    /// Waits while the group is behind; `who` names the producer in logs and metrics.
    pub async fn wait(&self, redis: &Client, who: &str) -> Result<(), Error> {
        let mut paused: Option<Instant> = None;
        while let Some(why) = self.behind(redis).await? {
            if paused.is_none() {
                tracing::info!(producer = who, %why, "the pipeline is behind; pausing");
                paused = Some(Instant::now());
            }
            tokio::time::sleep(POLL).await;
        }
        if let Some(since) = paused {
            let secs = since.elapsed().as_secs_f64();
            tracing::info!(
                producer = who,
                paused_secs = secs,
                "the pipeline caught up; going on"
            );
            metrics::counter!(names::SOURCE_BACKLOG_PAUSE, "source" => who.to_string())
                .increment(secs.ceil() as u64);
        }
        Ok(())
    }
}

/// The backlog's bytes when they are more than `max` (0: no limit).
pub fn over_bytes(stats: &super::group::GroupStats, max: u64) -> Option<i64> {
    stats
        .backlog_bytes()
        .filter(|bytes| max > 0 && *bytes > 0 && *bytes as u64 > max)
}

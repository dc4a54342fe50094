//! The consumer group's backlog as `POST /api/v1/events` sees it, read from Redis at most every
//! [`REFRESH`] (and raised by what this process appended since), so a flood of requests costs
//! Redis a few reads a second and cannot outrun the figure by more than a moment's requests.
//! Successive reads also give the rate at which the group drains its stream, which the fair
//! share of [`crate::http::api::events::fair_share`] divides.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use fred::clients::Client;

use crate::config::Settings;
use crate::http::locks::lock;
use crate::streams::group::detailed_group_stats;

use crate::http::api::events::fair_share::STALLED_PER_SEC;

/// How long a read of the backlog is used.
pub const REFRESH: Duration = Duration::from_millis(250);
/// Shortest span the drained rate is measured over.
pub const DRAIN_SPAN: Duration = Duration::from_secs(2);

/// The backlog as of one read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    /// Entries the group has to read or acknowledge.
    pub entries: u64,
    /// Seconds since the oldest of them was appended (None: Redis cannot tell).
    pub oldest_age_secs: Option<f64>,
    /// Bytes the entries to read or acknowledge hold in Redis (None: Redis cannot tell).
    pub backlog_bytes: Option<i64>,
    /// Entries the whole group acknowledged a second over the last span (None until a span
    /// was measured, or where Redis does not report `entries-read`).
    pub drained_per_sec: Option<f64>,
    /// Processes (consumers) of the group.
    pub consumers: i64,
    /// Entries the group has acknowledged since its stream began (None where Redis does not
    /// count what it delivered).
    pub acknowledged: Option<i64>,
    /// The group acknowledged (almost) nothing over the last span though it had entries
    /// waiting all along: PostgreSQL away, say, not a quiet stream.
    pub stalled: bool,
    /// The order in which the reads were asked for: of two readings, the later is newer.
    pub seq: u64,
}

#[derive(Debug, Default)]
struct Memory {
    reading: Option<(Instant, Reading)>,
    /// Entries acknowledged by the group, when, and the backlog then, at the start of the
    /// current span.
    span_start: Option<(Instant, i64, u64)>,
    drained_per_sec: Option<f64>,
    stalled: bool,
    /// Reads asked for so far.
    asked: u64,
    /// When the last read failed, and why: the requests that waited for it are answered the
    /// same for [`REFRESH`], rather than each asking a Redis that does not answer in turn.
    failed: Option<(Instant, String)>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Backlog {
    memory: Mutex<Memory>,
    /// One read from Redis at a time: requests that find the reading stale while one is
    /// under way wait for it rather than each asking Redis again.
    refreshing: tokio::sync::Mutex<()>,
}

impl Backlog {
    /// The last reading, when it is younger than [`REFRESH`].
    fn fresh(&self) -> Option<Reading> {
        let memory = self.lock();
        memory
            .reading
            .filter(|(at, _)| at.elapsed() < REFRESH)
            .map(|(_, reading)| reading)
    }

    /// The backlog as of at most [`REFRESH`] ago.
    pub async fn read(
        &self,
        redis: &Client,
        settings: &Settings,
    ) -> Result<Reading, fred::error::Error> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let _turn = self.refreshing.lock().await;
        let seq = {
            let mut memory = self.lock();
            if let Some((at, reading)) = memory.reading {
                if at.elapsed() < REFRESH {
                    return Ok(reading);
                }
            }
            if let Some((_, why)) = memory
                .failed
                .as_ref()
                .filter(|(at, _)| at.elapsed() < REFRESH)
            {
                return Err(fred::error::Error::new(
                    fred::error::ErrorKind::IO,
                    why.clone(),
                ));
            }
            memory.asked += 1;
            memory.asked
        };
        let stats = match detailed_group_stats(redis, settings).await {
            Ok(stats) => stats,
            Err(e) => {
                self.lock().failed = Some((Instant::now(), e.details().to_string()));
                return Err(e);
            }
        };
        let now = Instant::now();
        let mut memory = self.lock();
        // Reads run side by side: one that a later-asked read overtook is older than it.
        if let Some((_, newer)) = memory.reading.filter(|(_, r)| r.seq > seq) {
            return Ok(newer);
        }
        let entries = stats.backlog().max(0) as u64;
        // Redis leaves a group's count unset until it first delivers: nothing read yet.
        let entries_read = stats
            .entries_read
            .or_else(|| (stats.last_delivered_id.as_deref() == Some("0-0")).then_some(0));
        if let Some(read) = entries_read {
            let acknowledged = read - stats.pending;
            match memory.span_start {
                Some((at, before, waiting)) if now.duration_since(at) >= DRAIN_SPAN => {
                    let secs = now.duration_since(at).as_secs_f64();
                    let drained = (acknowledged - before).max(0) as f64 / secs;
                    memory.drained_per_sec = Some(drained);
                    memory.stalled = drained < STALLED_PER_SEC && waiting > 0 && entries > 0;
                    memory.span_start = Some((now, acknowledged, entries));
                }
                Some(_) => {}
                None => memory.span_start = Some((now, acknowledged, entries)),
            }
        }
        let reading = Reading {
            entries,
            oldest_age_secs: stats.oldest_age_secs,
            backlog_bytes: stats.backlog_bytes(),
            drained_per_sec: memory.drained_per_sec,
            // A consumer left by a process that stopped is not one that shares the work.
            consumers: stats
                .live_consumers
                .filter(|n| *n > 0)
                .unwrap_or(stats.consumers),
            acknowledged: entries_read
                .filter(|_| stats.lag.is_some())
                .map(|read| read - stats.pending),
            stalled: memory.stalled,
            seq,
        };
        memory.reading = Some((now, reading));
        Ok(reading)
    }

    /// The last reading, if any, without asking Redis.
    pub fn last(&self) -> Option<Reading> {
        self.lock().reading.map(|(_, reading)| reading)
    }

    /// Counts `n` entries just appended, until the next read.
    pub fn appended(&self, n: u64) {
        if let Some((_, reading)) = self.lock().reading.as_mut() {
            reading.entries += n;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        lock(&self.memory)
    }
}

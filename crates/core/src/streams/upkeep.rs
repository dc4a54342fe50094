//! The stream's upkeep, for the group monitor: trimming entries the group acknowledged,
//! capping the dead-letter stream and removing consumers of processes that are gone.

use fred::prelude::*;

use super::group::GroupStats;

/// Trims `stream` below the lowest id `group` may still need (`XTRIM MINID ~`): the oldest
/// pending entry, else the last delivered one. Every entry below it has been acknowledged by
/// this group. Returns how many entries went.
pub async fn trim_acknowledged(
    redis: &Client,
    stream: &str,
    group: &str,
    stats: &GroupStats,
) -> Result<i64, Error> {
    let min_id = if stats.pending > 0 {
        let summary: Value = redis.xpending(stream, group, ()).await?;
        match summary {
            Value::Array(parts) => parts.get(1).and_then(|v| v.as_string()),
            _ => None,
        }
    } else {
        stats.last_delivered_id.clone()
    };
    let Some(min_id) = min_id else { return Ok(0) };
    redis.xtrim(stream, ("MINID", "~", min_id.as_str())).await
}

/// What [`cap_dead_letters`] trimmed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeadLettersTrimmed {
    pub trimmed: i64,
    pub kept: i64,
    /// The stream's size before, in bytes, as `MEMORY USAGE` estimates it.
    pub bytes: f64,
}

/// Trims the oldest letters of `dead` while it holds more than `cap_bytes` (as `MEMORY USAGE`
/// estimates it), keeping a tenth below the cap. `None` when it was under the cap.
pub async fn cap_dead_letters(
    redis: &Client,
    dead: &str,
    cap_bytes: f64,
) -> Result<Option<DeadLettersTrimmed>, Error> {
    let used: Option<i64> = redis.memory_usage(dead, None).await?;
    let Some(used) = used.map(|u| u as f64).filter(|&u| u > cap_bytes) else {
        return Ok(None);
    };
    let len: i64 = redis.xlen(dead).await?;
    let keep = (((len as f64) * cap_bytes / used * 0.9).floor() as i64).max(0);
    let trimmed: i64 = redis.xtrim(dead, ("MAXLEN", keep)).await?;
    Ok(Some(DeadLettersTrimmed {
        trimmed,
        kept: keep,
        bytes: used,
    }))
}

/// Deletes the consumers of `group`, other than `own`, that hold no pending entries and have
/// been idle for `stale_ms`; returns their names.
pub async fn remove_stale_consumers(
    redis: &Client,
    stream: &str,
    group: &str,
    own: &str,
    stale_ms: i64,
) -> Result<Vec<String>, Error> {
    let mut removed = Vec::new();
    for c in super::group::consumers(redis, stream, group).await? {
        if c.name != own && c.pending == 0 && c.idle_ms >= stale_ms {
            let _: i64 = redis
                .xgroup_delconsumer(stream, group, c.name.as_str())
                .await?;
            removed.push(c.name);
        }
    }
    Ok(removed)
}

/// Publishes `consumer`'s settings `fingerprint` at `now_ms` in the hash beside `stream`, and
/// returns every consumer's published within `fresh_ms` (older ones are removed: their
/// processes are gone or stopped publishing).
pub async fn publish_fingerprint(
    redis: &Client,
    stream: &str,
    consumer: &str,
    fingerprint: &str,
    now_ms: i64,
    fresh_ms: i64,
) -> Result<Vec<(String, String)>, Error> {
    let _: i64 = redis
        .hset(
            fingerprints_key(stream),
            (consumer, format!("{fingerprint}@{now_ms}")),
        )
        .await?;
    let (fresh, stale) = read_fingerprints(redis, stream, now_ms, fresh_ms).await?;
    if !stale.is_empty() {
        let _: i64 = redis.hdel(fingerprints_key(stream), stale).await?;
    }
    Ok(fresh)
}

/// Every consumer's settings fingerprint published within `fresh_ms` of `now_ms`, by
/// consumer.
pub async fn fingerprints(
    redis: &Client,
    stream: &str,
    now_ms: i64,
    fresh_ms: i64,
) -> Result<Vec<(String, String)>, Error> {
    Ok(read_fingerprints(redis, stream, now_ms, fresh_ms).await?.0)
}

fn fingerprints_key(stream: &str) -> String {
    format!("{stream}:settings")
}

/// The fresh (consumer, fingerprint) pairs, sorted, and the consumers whose are stale.
async fn read_fingerprints(
    redis: &Client,
    stream: &str,
    now_ms: i64,
    fresh_ms: i64,
) -> Result<(Vec<(String, String)>, Vec<String>), Error> {
    let all: std::collections::HashMap<String, String> =
        redis.hgetall(fingerprints_key(stream)).await?;
    let mut fresh = Vec::new();
    let mut stale = Vec::new();
    for (name, value) in all {
        let parsed = value
            .rsplit_once('@')
            .and_then(|(print, at)| Some((print.to_string(), at.parse::<i64>().ok()?)));
        match parsed {
            Some((print, at)) if now_ms - at <= fresh_ms => fresh.push((name, print)),
            _ => stale.push(name),
        }
    }
    fresh.sort();
    Ok((fresh, stale))
}

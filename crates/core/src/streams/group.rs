//! The consumer group's commands: creating it, keeping held entries from looking abandoned,
//! delivery counts, acknowledgements, dead letters and the figures readiness reports.

use fred::prelude::*;

use super::entry::{entry_bytes, RawEntry};
use super::future_ids;
use super::reply::as_string;
use crate::config::Settings;

/// Where a group's stream, group and consumer are.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub stream: &'a str,
    pub group: &'a str,
    pub consumer: &'a str,
}

/// Creates the consumer group (and the stream) if missing.
pub async fn ensure_group(redis: &Client, stream: &str, group: &str) -> Result<(), Error> {
    let created: Result<Value, Error> = redis.xgroup_create(stream, group, "0", true).await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.details().contains("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Resets the idle time of the entries `ids` held by `member` when idle at least
/// `min_idle_ms`, without counting a delivery (XCLAIM ... JUSTID); entries already
/// acknowledged are skipped by Redis. Returns how many were refreshed.
pub async fn refresh_held(
    redis: &Client,
    member: Member<'_>,
    ids: &[String],
    min_idle_ms: u64,
) -> Result<usize, Error> {
    let mut refreshed = 0;
    for chunk in ids.chunks(1_000) {
        let touched: Value = redis
            .xclaim(
                member.stream,
                member.group,
                member.consumer,
                min_idle_ms,
                chunk.to_vec(),
                None,
                None,
                None,
                false,
                true,
            )
            .await?;
        if let Value::Array(touched) = touched {
            refreshed += touched.len();
        }
    }
    Ok(refreshed)
}

/// Sets how many times each of `entries` (in id order, held by `member`) has been delivered:
/// XAUTOCLAIM and a re-read of one's own pending entries do not say. Left as they are when
/// Redis cannot tell.
///
/// The member may hold other entries between them (its own batch still running when it
/// claimed a dead consumer's), so its pending list is read a page at a time over their range
/// until each of them is found, not one page of as many rows as there are entries.
pub async fn fill_delivery_counts(redis: &Client, member: Member<'_>, entries: &mut [RawEntry]) {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return;
    };
    let (mut from, last) = (first.id.clone(), last.id.clone());
    let page = entries.len().max(16) as u64;
    let mut missing = entries.len();
    for _ in 0..MAX_PENDING_PAGES {
        let reply: Result<Value, Error> = redis
            .xpending(
                member.stream,
                member.group,
                (from.as_str(), last.as_str(), page, member.consumer),
            )
            .await;
        let Ok(Value::Array(rows)) = reply else {
            return;
        };
        let read = rows.len() as u64;
        let mut last_read = None;
        for row in rows {
            let Value::Array(cols) = row else { continue };
            let (Some(id), Some(count)) = (cols.first().and_then(as_string), cols.get(3)) else {
                continue;
            };
            let count = match count {
                Value::Integer(n) => *n as u64,
                other => as_string(other).and_then(|s| s.parse().ok()).unwrap_or(1),
            };
            if let Ok(at) = entries.binary_search_by(|e| compare_ids(&e.id, &id)) {
                entries[at].deliveries = count;
                missing = missing.saturating_sub(1);
            }
            last_read = Some(id);
        }
        match last_read {
            Some(id) if read == page && missing > 0 => from = format!("({id}"),
            _ => return,
        }
    }
}

/// Pages of a consumer's pending list [`fill_delivery_counts`] reads at most.
const MAX_PENDING_PAGES: usize = 64;

/// Stream entry ids (`<ms>-<seq>`) in the stream's order.
fn compare_ids(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |id: &str| -> (u64, u64) {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
    };
    parts(a).cmp(&parts(b))
}

/// Acknowledges `ids` for `member`'s group.
pub async fn ack(redis: &Client, member: Member<'_>, ids: &[&str]) -> Result<(), Error> {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let _: i64 = redis.xack(member.stream, member.group, ids).await?;
    Ok(())
}

/// An entry on its way to the dead-letter stream.
pub struct DeadLetter<'a> {
    pub entry: &'a RawEntry,
    pub reason: String,
    /// A low-cardinality class of the reason.
    pub class: &'static str,
}

/// Appends `letters` to `dead_stream` (capped at about `max_len` entries) and acknowledges
/// `ids` for `member`'s group, in one script: Redis applies all of it or none. Each letter
/// carries its reason, where it came from, its size and its original fields verbatim.
///
/// A letter is appended only by the call whose XACK took its entry off the group's pending
/// list, so it is written once, however often the call is made: a call retried because its
/// reply was lost (a broken connection, a timeout) after Redis had run it, or a call for an
/// entry another consumer has finished meanwhile, writes none. Returns, for each letter in
/// order, whether this call wrote it.
pub async fn dead_letter_and_ack(
    redis: &Client,
    member: Member<'_>,
    dead_stream: &str,
    max_len: i64,
    letters: &[DeadLetter<'_>],
    ids: &[&str],
) -> Result<Vec<bool>, Error> {
    if letters.is_empty() {
        if !ids.is_empty() {
            ack(redis, member, ids).await?;
        }
        return Ok(Vec::new());
    }
    let mut args: Vec<Value> = vec![
        member.group.into(),
        max_len.into(),
        (letters.len() as i64).into(),
    ];
    for letter in letters {
        let fields = letter_fields(member, letter);
        args.push(letter.entry.id.as_str().into());
        args.push((2 * fields.len() as i64).into());
        for (name, value) in fields {
            args.push(name.into());
            args.push(value);
        }
    }
    let lettered: std::collections::HashSet<&str> =
        letters.iter().map(|l| l.entry.id.as_str()).collect();
    args.extend(
        ids.iter()
            .filter(|id| !lettered.contains(**id))
            .map(|id| Value::from(*id)),
    );
    let written: Vec<i64> = redis
        .eval(DEAD_LETTER_SCRIPT, vec![member.stream, dead_stream], args)
        .await?;
    Ok(written.into_iter().map(|w| w == 1).collect())
}

/// The script of [`dead_letter_and_ack`]: `KEYS[1]` the stream, `KEYS[2]` the dead-letter
/// stream; `ARGV[1]` the group, `ARGV[2]` the dead-letter stream's cap, `ARGV[3]` the number
/// of letters, then each letter as its entry's id, the number of its field arguments and those
/// arguments, then the other ids to acknowledge. Returns 1 for each letter written, 0 for each
/// whose entry was no longer pending. (A letter's arguments are unpacked onto Lua's stack,
/// which holds [`crate::config::LUA_STACK_VALUES`]: an entry past `ingest.max_entry_fields` arrives cut to a
/// few fields, so a letter holds that many at most, and the setting may be no more than
/// [`crate::config::MAX_ENTRY_FIELDS_CEILING`].)
const DEAD_LETTER_SCRIPT: &str = r#"
local group, cap = ARGV[1], ARGV[2]
local at = 4
local written = {}
for letter = 1, tonumber(ARGV[3]) do
  local id, n = ARGV[at], tonumber(ARGV[at + 1])
  local first, last = at + 2, at + 1 + n
  at = last + 1
  if redis.call('XACK', KEYS[1], group, id) == 1 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', cap, '*', unpack(ARGV, first, last))
    written[letter] = 1
  else
    written[letter] = 0
  end
end
while at <= #ARGV do
  local last = math.min(at + 999, #ARGV)
  redis.call('XACK', KEYS[1], group, unpack(ARGV, at, last))
  at = last + 1
end
return written
"#;

/// A letter's fields: its reason, where it came from, its size, then the entry's own fields.
fn letter_fields(member: Member<'_>, letter: &DeadLetter<'_>) -> Vec<(String, Value)> {
    let entry = letter.entry;
    let (size, count) = entry.cut.map_or_else(
        || (entry_bytes(entry) as i64, entry.fields.len() as i64),
        |cut| (cut.bytes as i64, cut.fields as i64),
    );
    let mut fields: Vec<(String, Value)> = vec![
        ("dead_reason".into(), letter.reason.clone().into()),
        ("dead_reason_class".into(), letter.class.into()),
        ("dead_entry_id".into(), entry.id.clone().into()),
        ("dead_stream".into(), member.stream.to_string().into()),
        ("dead_deliveries".into(), (entry.deliveries as i64).into()),
        ("dead_consumer".into(), member.consumer.to_string().into()),
        ("dead_entry_bytes".into(), size.into()),
        ("dead_entry_fields".into(), count.into()),
    ];
    for (name, value) in &entry.fields {
        fields.push((name.clone(), Value::Bytes(value.clone().into())));
    }
    fields
}

/// Counts one more lone trial of the entry `id` (remembered for `ttl_secs`); returns the
/// count.
pub async fn count_trial(
    redis: &Client,
    stream: &str,
    id: &str,
    ttl_secs: i64,
) -> Result<i64, Error> {
    let key = trial_key(stream, id);
    let trials: i64 = redis.incr(&key).await?;
    let _: Result<bool, Error> = redis.expire(&key, ttl_secs, None).await;
    Ok(trials)
}

/// Forgets the trials of the entry `id` (it was committed).
pub async fn forget_trials(redis: &Client, stream: &str, id: &str) {
    let _: Result<i64, Error> = redis.del(trial_key(stream, id)).await;
}

fn trial_key(stream: &str, id: &str) -> String {
    format!("{stream}:trial:{id}")
}

/// Consumer-group figures for readiness and metrics.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct GroupStats {
    /// Entries not yet delivered to the group (None if Redis cannot tell).
    pub lag: Option<i64>,
    /// Entries delivered and not yet acknowledged.
    pub pending: i64,
    /// Consumers known to the group.
    pub consumers: i64,
    /// Length of the stream.
    pub length: i64,
    /// Length of the dead-letter stream.
    pub dead_letters: i64,
    /// The last entry id delivered to the group.
    #[serde(skip)]
    pub last_delivered_id: Option<String>,
    /// Entries the group has read since it was created (Redis 7's `entries-read`; None where
    /// Redis cannot tell): its rate less the change in `pending` is what the group drains.
    #[serde(skip)]
    pub entries_read: Option<i64>,
    /// Seconds since the oldest entry the group has not acknowledged (read or not) was
    /// appended, by Redis's clock (for an id ahead of that clock, since this process first
    /// saw it); 0 when there is none, None when Redis cannot tell.
    pub oldest_age_secs: Option<f64>,
    /// Bytes the stream holds in Redis, its group's pending list included (`MEMORY USAGE`;
    /// None where Redis does not answer it).
    pub stream_bytes: Option<i64>,
    /// Consumers that read within [`LIVE_WITHIN_MS`]: the processes there are now. A
    /// process that stopped leaves its consumer listed until the monitor removes it an hour
    /// later; counted, every share divided between the processes shrank after each restart.
    /// None where not asked.
    pub live_consumers: Option<i64>,
}

impl GroupStats {
    /// Entries the group still has to read or acknowledge (the whole stream when Redis cannot
    /// tell the lag).
    pub fn backlog(&self) -> i64 {
        self.lag.unwrap_or(self.length) + self.pending
    }

    /// The stream's bytes in the share of its entries that are backlog: the stream keeps
    /// acknowledged entries until they are trimmed (for good where `redis.trim_acknowledged`
    /// is off, and behind an entry still pending where it is on), and those are not the
    /// pipeline's to drain.
    pub fn backlog_bytes(&self) -> Option<i64> {
        let bytes = self.stream_bytes?;
        if self.length <= 0 {
            return Some(0);
        }
        let share = (self.backlog() as f64 / self.length as f64).clamp(0.0, 1.0);
        Some((bytes as f64 * share) as i64)
    }
}

/// Entries of a stream whose memory is counted node by node.
const EXACT_UP_TO_ENTRIES: i64 = 200_000;
/// Nodes a longer stream's memory is estimated from.
const LONG_STREAM_SAMPLES: u32 = 1_000;

/// Reads the group's lag and pending count from XINFO GROUPS.
pub async fn group_stats(redis: &Client, settings: &Settings) -> Result<GroupStats, Error> {
    let stream = settings.redis.stream.as_str();
    let length: i64 = redis.xlen(stream).await?;
    let dead_letters: i64 = redis.xlen(settings.dead_letter_stream()).await?;
    let mut stats = GroupStats {
        length,
        dead_letters,
        ..Default::default()
    };
    let groups: Value = match redis.xinfo_groups(stream).await {
        Ok(v) => v,
        Err(e) if e.details().contains("no such key") => return Ok(stats),
        Err(e) => return Err(e),
    };
    let Value::Array(groups) = groups else {
        return Ok(stats);
    };
    for group in groups {
        let pairs: Vec<(String, Value)> = match group {
            Value::Array(flat) => {
                let mut it = flat.into_iter();
                let mut pairs = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((as_string(&k).unwrap_or_default(), v));
                }
                pairs
            }
            Value::Map(map) => map
                .inner()
                .into_iter()
                .map(|(k, v)| (k.as_str().map(|s| s.to_string()).unwrap_or_default(), v))
                .collect(),
            _ => continue,
        };
        let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if field("name").and_then(as_string).as_deref() != Some(settings.redis.group.as_str()) {
            continue;
        }
        let int = |v: Option<&Value>| match v {
            Some(Value::Integer(i)) => Some(*i),
            Some(other) => as_string(other).and_then(|s| s.parse().ok()),
            None => None,
        };
        stats.pending = int(field("pending")).unwrap_or(0);
        stats.consumers = int(field("consumers")).unwrap_or(0);
        stats.lag = int(field("lag"));
        stats.last_delivered_id = field("last-delivered-id").and_then(as_string);
        stats.entries_read = int(field("entries-read"));
    }
    stats.oldest_age_secs = oldest_age_secs(redis, settings, &stats).await?;
    Ok(stats)
}

/// [`group_stats`] with the stream's bytes (`stream_bytes`) and the consumers alive
/// (`live_consumers`): what the producers' limits and the operators' figures need, two more
/// commands that the drain checks do without.
pub async fn detailed_group_stats(
    redis: &Client,
    settings: &Settings,
) -> Result<GroupStats, Error> {
    let mut stats = group_stats(redis, settings).await?;
    let stream = settings.redis.stream.as_str();
    stats.stream_bytes = stream_bytes(redis, stream, stats.length).await;
    if stats.consumers > 0 {
        let group = settings.redis.group.as_str();
        stats.live_consumers = consumers(redis, stream, group)
            .await
            .ok()
            .map(|all| all.iter().filter(|c| c.idle_ms < LIVE_WITHIN_MS).count() as i64);
    }
    Ok(stats)
}

/// One consumer of a group as `XINFO CONSUMERS` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub name: String,
    pub pending: i64,
    /// Milliseconds since it last read (or tried to).
    pub idle_ms: i64,
}

/// The consumers of `group` on `stream`.
pub async fn consumers(redis: &Client, stream: &str, group: &str) -> Result<Vec<Consumer>, Error> {
    let listed: Value = redis.xinfo_consumers(stream, group).await?;
    let Value::Array(listed) = listed else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for consumer in listed {
        let fields: Vec<Value> = match consumer {
            Value::Array(fields) => fields,
            Value::Map(map) => map
                .inner()
                .into_iter()
                .flat_map(|(k, v)| [Value::from(k), v])
                .collect(),
            _ => continue,
        };
        let value = |name: &str| {
            fields
                .chunks(2)
                .find(|kv| kv[0].as_string().as_deref() == Some(name))
                .and_then(|kv| kv.get(1))
        };
        let number = |name: &str| {
            value(name).and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_string().and_then(|s| s.parse().ok()))
            })
        };
        let name = value("name").and_then(|v| v.as_string());
        if let (Some(name), Some(pending), Some(idle_ms)) =
            (name, number("pending"), number("idle"))
        {
            found.push(Consumer {
                name,
                pending,
                idle_ms,
            });
        }
    }
    Ok(found)
}

/// How lately a consumer read to count as a process that is there: a live one reads at
/// least every `ingest.idle_poll_ms` (20 ms by default), or is busy committing what it read.
pub const LIVE_WITHIN_MS: i64 = 30_000;

/// The stream's memory by `MEMORY USAGE`, every node counted (`SAMPLES 0`) up to
/// [`EXACT_UP_TO_ENTRIES`]: the default estimate from the oldest five nodes would miss large
/// entries appended after small ones. Redis reads each node's size from its header, so a
/// thousand nodes cost it microseconds; a longer stream (history kept) is estimated from
/// [`LONG_STREAM_SAMPLES`] nodes.
async fn stream_bytes(redis: &Client, stream: &str, length: i64) -> Option<i64> {
    let samples = if length <= EXACT_UP_TO_ENTRIES {
        0
    } else {
        LONG_STREAM_SAMPLES
    };
    match redis
        .memory_usage::<Option<i64>, _>(stream, Some(samples))
        .await
    {
        Ok(bytes) => Some(bytes.unwrap_or(0)),
        Err(e) => {
            tracing::debug!(error = %e, "MEMORY USAGE of the stream was not answered");
            None
        }
    }
}

/// The age of the oldest entry the group has not acknowledged: the first pending one, or
/// else the first not yet delivered, read off its id against Redis's `TIME`. Entry ids carry
/// Redis's own clock, so a skewed clock here cannot make the backlog look older or younger.
///
/// Unless the id is ahead of that clock (a producer set an id of its own, and Redis gives
/// every later entry one past it): such an entry's age is how long this process has seen the
/// stream hold it ([`super::future_ids`]), which grows while it waits, where its id would
/// read 0 s for ever.
async fn oldest_age_secs(
    redis: &Client,
    settings: &Settings,
    stats: &GroupStats,
) -> Result<Option<f64>, Error> {
    let stream = settings.redis.stream.as_str();
    if stats.length == 0 {
        return Ok(Some(0.0));
    }
    let pipeline = redis.pipeline();
    let _: () = pipeline
        .xpending(stream, settings.redis.group.as_str(), ())
        .await?;
    let after = match stats.last_delivered_id.as_deref() {
        Some(id) if id != "0-0" => format!("({id}"),
        _ => "-".to_string(),
    };
    let _: () = pipeline.xrange(stream, after, "+", Some(1)).await?;
    let _: () = pipeline.xrevrange(stream, "+", "-", Some(1)).await?;
    let time =
        fred::types::CustomCommand::new_static("TIME", fred::types::ClusterHash::Random, false);
    let _: () = pipeline.custom(time, Vec::<Value>::new()).await?;
    let replies: Vec<Value> = match pipeline.all().await {
        Ok(replies) => replies,
        Err(e) if e.details().contains("NOGROUP") => return Ok(None),
        Err(e) => return Err(e),
    };
    let [pending, unread, newest, time] = <[Value; 4]>::try_from(replies)
        .map_err(|_| Error::new(ErrorKind::Protocol, "unexpected reply to the backlog's age"))?;
    let pending_first = match pending {
        Value::Array(summary) => summary.get(1).and_then(as_string),
        _ => None,
    };
    let now_ms = match time {
        Value::Array(parts) => {
            let part = |i: usize| {
                parts
                    .get(i)
                    .and_then(as_string)
                    .and_then(|s| s.parse::<i64>().ok())
            };
            match (part(0), part(1)) {
                (Some(secs), Some(micros)) => secs * 1000 + micros / 1000,
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    future_ids::redis_clock(now_ms);
    match first_id(newest) {
        Some(newest) if future_ids::is_ahead(&newest, now_ms) => future_ids::sight(stream, &newest),
        _ => future_ids::forget(stream),
    }
    let oldest = [pending_first, first_id(unread)]
        .into_iter()
        .flatten()
        .min_by(|a, b| compare_ids(a, b));
    let Some(oldest) = oldest else {
        return Ok(Some(0.0));
    };
    if future_ids::is_ahead(&oldest, now_ms) {
        future_ids::warn(stream, &oldest, now_ms);
        return Ok(Some(future_ids::held_for(stream, &oldest).as_secs_f64()));
    }
    Ok(Some(
        future_ids::id_ms(&oldest).map_or(0.0, |ms| (now_ms - ms).max(0) as f64 / 1000.0),
    ))
}

/// The id of the first entry of an XRANGE or XREVRANGE reply.
fn first_id(reply: Value) -> Option<String> {
    match reply {
        Value::Array(entries) => entries.into_iter().next().and_then(|entry| match entry {
            Value::Array(parts) => parts.first().and_then(as_string),
            _ => None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LUA_STACK_VALUES, MAX_ENTRY_FIELDS_CEILING};

    /// The letter of the largest entry read whole, unpacked by the dead-letter script beside
    /// `redis.call` and the XADD's six words, takes no more than half of Lua's stack.
    #[test]
    fn the_letter_of_the_largest_entry_read_whole_fits_on_luas_stack() {
        let entry = RawEntry {
            id: "1-0".into(),
            fields: (0..MAX_ENTRY_FIELDS_CEILING)
                .map(|i| (format!("f{i}"), vec![b'x']))
                .collect(),
            deliveries: 1,
            cut: None,
            seen_at_ms: None,
        };
        let letter = DeadLetter {
            entry: &entry,
            reason: "malformed".into(),
            class: "malformed",
        };
        let member = Member {
            stream: "s",
            group: "g",
            consumer: "c",
        };
        let values = 2 * letter_fields(member, &letter).len() + 7;
        assert!(values <= LUA_STACK_VALUES / 2, "{values}");
    }
}

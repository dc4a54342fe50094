//! Appending events to the stream, as every producer does: `{"event": <json>}` entries,
//! pipelined.

use fred::prelude::*;

/// Most events sent in one pipelined round trip.
pub const MAX_PIPELINE: usize = 500;
/// Appends encoded events to `stream` as `{"event": json}` entries in one pipelined round
/// trip, the format every producer uses; returns the entry ids in order.
pub async fn xadd_events<S: AsRef<str>>(
    redis: &Client,
    stream: &str,
    events: &[S],
) -> Result<Vec<String>, Error> {
    xadd_events_with(redis, stream, events, &[]).await
}

/// [`xadd_events`], with `fields` (such as a `traceparent`) added to every entry after its
/// `event`.
pub async fn xadd_events_with<S: AsRef<str>>(
    redis: &Client,
    stream: &str,
    events: &[S],
    fields: &[(&str, String)],
) -> Result<Vec<String>, Error> {
    let pipeline = redis.pipeline();
    queue_xadds(&pipeline, stream, events, fields).await?;
    pipeline.all().await
}

/// [`xadd_events_with`] as one transaction (`MULTI` ... `EXEC`): every event is appended or
/// none is. A Redis that refuses writes part way (at `maxmemory` with `noeviction`) refuses
/// the whole transaction, so a producer retrying what it was told failed never appends any
/// event twice (an engagement without an id would otherwise count twice).
pub async fn xadd_events_atomically<S: AsRef<str>>(
    redis: &Client,
    stream: &str,
    events: &[S],
    fields: &[(&str, String)],
) -> Result<Vec<String>, Error> {
    let transaction = redis.multi();
    queue_xadds(&transaction, stream, events, fields).await?;
    transaction.exec(true).await
}

/// Queues one `{"event": json, ...fields}` XADD per event on `queue` (a pipeline, or a
/// transaction), to be sent together.
async fn queue_xadds<Q: StreamsInterface + Sync, S: AsRef<str>>(
    queue: &Q,
    stream: &str,
    events: &[S],
    fields: &[(&str, String)],
) -> Result<(), Error> {
    for json in events {
        let mut entry = Vec::with_capacity(1 + fields.len());
        entry.push(("event", json.as_ref()));
        entry.extend(fields.iter().map(|(name, value)| (*name, value.as_str())));
        let _: () = queue.xadd(stream, false, None::<()>, "*", entry).await?;
    }
    Ok(())
}

/// Appends encoded events to `stream` (pipelined) and, once Redis has taken every one, stores
/// `cursor` under `cursor_key`: the stored position never passes an event that was not
/// appended. (Sent in the same pipeline, the position was stored even when Redis refused an
/// append before it, at `maxmemory` with `noeviction`.) A failure part way leaves the old
/// position, and the events after it are appended again on resume (their ids make that
/// harmless). `fields` (the producer's name) go with every entry, as in [`xadd_events_with`].
pub async fn append_with_cursor<S: AsRef<str>>(
    redis: &Client,
    stream: &str,
    events: &[S],
    fields: &[(&str, String)],
    cursor_key: &str,
    cursor: Option<&str>,
) -> Result<(), Error> {
    if !events.is_empty() {
        xadd_events_with(redis, stream, events, fields).await?;
    }
    if let Some(cursor) = cursor {
        let _: () = redis.set(cursor_key, cursor, None, None, false).await?;
    }
    Ok(())
}

/// The position a source stored under `key`, if any.
pub async fn read_cursor(redis: &Client, key: &str) -> Result<Option<String>, Error> {
    redis.get(key).await
}

/// Puts `ids` at the head of the list `key` (the last of them first), keeping its first
/// `capacity`, in one round trip.
pub async fn remember_ids(
    redis: &Client,
    key: &str,
    ids: &[String],
    capacity: usize,
) -> Result<(), Error> {
    if ids.is_empty() || capacity == 0 {
        return Ok(());
    }
    let pipeline = redis.pipeline();
    let _: () = pipeline.lpush(key, ids.to_vec()).await?;
    let last = i64::try_from(capacity).unwrap_or(i64::MAX) - 1;
    let _: () = pipeline.ltrim(key, 0, last).await?;
    let _: Vec<Value> = pipeline.all().await?;
    Ok(())
}

/// The first `capacity` ids of the list `key`, the last remembered first.
pub async fn remembered_ids(
    redis: &Client,
    key: &str,
    capacity: usize,
) -> Result<Vec<String>, Error> {
    if capacity == 0 {
        return Ok(Vec::new());
    }
    let last = i64::try_from(capacity).unwrap_or(i64::MAX) - 1;
    redis.lrange(key, 0, last).await
}

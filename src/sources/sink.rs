//! Where a source puts what it read: events are checked as the ingester will check them,
//! gathered into batches, and appended to the stream together with the source's position.
//! The position is stored only after the events up to it, in the same round trip, so a
//! restart resumes without a gap; what it reads twice is stored once, because every event a
//! source makes carries the platform's own id.

use std::time::{Duration, Instant};

use fred::prelude::Client;

use super::SourceContext;
use crate::models::backoff::Backoff;
use crate::models::event::MAX_EVENT_BYTES;
use crate::models::producer;
use crate::models::{Event, EventError};
use crate::streams::admission::Gate;
use crate::streams::producer::{
    append_with_cursor, read_cursor, remember_ids, remembered_ids, MAX_PIPELINE,
};
use crate::telemetry::causes::causes;
use crate::telemetry::names;

/// Longest an event waits in the batch before it is appended.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

pub struct Sink {
    /// Limits appends wait within (none in benchmarks of the source alone).
    gate: Option<Gate>,
    redis: Client,
    stream: String,
    source: String,
    cursor_key: String,
    encoded: Vec<String>,
    kinds: Vec<&'static str>,
    cursor: Option<String>,
    oldest: Option<Instant>,
    /// Where the ids of the posts appended are remembered, when they are.
    kept: Option<Kept>,
}

/// The ids of the last posts a source appended, kept in Redis so that a restarted source
/// still knows which posts passed its filters (see [`Sink::remembering`]).
struct Kept {
    key: String,
    capacity: usize,
    /// Posts pushed since the last flush.
    new: Vec<String>,
}

impl Sink {
    pub fn new(redis: Client, stream: &str, source: &str) -> Sink {
        Sink {
            gate: None,
            cursor_key: format!("{stream}:source:{source}:cursor"),
            redis,
            stream: stream.to_string(),
            source: source.to_string(),
            encoded: Vec::new(),
            kinds: Vec::new(),
            cursor: None,
            oldest: None,
            kept: None,
        }
    }

    /// The same sink, remembering the ids of the last `capacity` posts it appends in Redis
    /// (`<stream>:source:<name>:kept`), written before the posts themselves; 0 remembers
    /// none. A source whose filters keep the engagements and deletions of the posts they
    /// kept reads them back at start ([`Sink::remembered_retrying`]), so a restart does not
    /// lose those of posts kept before it.
    pub fn remembering(mut self, capacity: usize) -> Sink {
        self.kept = (capacity > 0).then(|| Kept {
            key: format!("{}:source:{}:kept", self.stream, self.source),
            capacity,
            new: Vec::new(),
        });
        self
    }

    /// The ids of the posts remembered by earlier runs ([`Sink::remembering`]), oldest
    /// first, retried with backoff while Redis does not answer (each failure logged and
    /// counted against `ctx`); none when the sink remembers none.
    pub async fn remembered_retrying(&self, ctx: &SourceContext) -> Vec<String> {
        let Some(kept) = &self.kept else {
            return Vec::new();
        };
        let mut backoff = Backoff::new(Duration::from_secs(1), ctx.max_backoff);
        loop {
            match remembered_ids(&self.redis, &kept.key, kept.capacity).await {
                Ok(mut ids) => {
                    ids.reverse();
                    return ids;
                }
                Err(e) => {
                    let e = anyhow::Error::new(e).context("reading the posts remembered");
                    ctx.error("cursor", &e);
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        }
    }

    /// The sink of the source `ctx` runs, pausing while the group is behind when `ctx` says.
    pub fn for_source(ctx: &SourceContext) -> Sink {
        Sink {
            gate: ctx.gate.clone(),
            ..Sink::new(ctx.redis.clone(), &ctx.stream, &ctx.name)
        }
    }

    /// The Redis key holding the position.
    pub fn cursor_key(&self) -> &str {
        &self.cursor_key
    }

    /// The position stored by the last run, if any.
    pub async fn stored_cursor(&self) -> anyhow::Result<Option<String>> {
        Ok(read_cursor(&self.redis, &self.cursor_key).await?)
    }

    /// [`Sink::stored_cursor`], retried with backoff while Redis does not answer (each
    /// failure logged and counted against `ctx`).
    pub async fn stored_cursor_retrying(&self, ctx: &SourceContext) -> Option<String> {
        let mut backoff = Backoff::new(Duration::from_secs(1), ctx.max_backoff);
        loop {
            match self.stored_cursor().await {
                Ok(cursor) => return cursor,
                Err(e) => {
                    ctx.error("cursor", &e);
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        }
    }

    /// [`Sink::flush`], retried with backoff while Redis is away: the source reads nothing
    /// meanwhile, and the platform (or its own position) holds what follows.
    pub async fn flush_retrying(&mut self, ctx: &SourceContext) {
        let mut backoff = Backoff::new(Duration::from_millis(200), ctx.max_backoff);
        while let Err(e) = self.flush().await {
            ctx.error("append", &e);
            tokio::time::sleep(backoff.next_wait()).await;
        }
    }

    /// Adds an event read at position `cursor`, [fitted](super::fit) to what the ingester
    /// takes; one it would still refuse is left out and counted, so the stream holds only
    /// what Pulse can store.
    pub fn push(&mut self, mut event: Event, cursor: Option<String>) {
        // As the source's filter saw it, before fitting.
        let post_id = match (&self.kept, &event) {
            (Some(_), Event::Post(post)) => Some(post.id.clone()),
            _ => None,
        };
        super::fit::fit(&mut event);
        match encode(&event) {
            Ok(json) => {
                self.encoded.push(json);
                self.kinds.push(kind_of(&event));
                if let (Some(kept), Some(id)) = (self.kept.as_mut(), post_id) {
                    kept.new.push(id);
                }
            }
            Err(e) => {
                tracing::debug!(source = %self.source, error = %causes(&e), "platform record refused");
                self.skipped("invalid");
            }
        }
        self.advance(cursor);
    }

    /// Moves the position past a record that produced no event.
    pub fn advance(&mut self, cursor: Option<String>) {
        if cursor.is_some() {
            self.cursor = cursor;
        }
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// Counts a record left out.
    pub fn skipped(&self, reason: &'static str) {
        metrics::counter!(names::SOURCE_SKIPPED, "source" => self.source.clone(), "reason" => reason)
            .increment(1);
    }

    /// Whether the batch is due: full, or its oldest record waited [`FLUSH_EVERY`].
    pub fn due(&self) -> bool {
        self.encoded.len() >= MAX_PIPELINE
            || self.oldest.is_some_and(|t| t.elapsed() >= FLUSH_EVERY)
    }

    /// The position of the last record handled (stored, or to be with the batch).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Events waiting to be appended.
    pub fn pending(&self) -> usize {
        self.encoded.len()
    }

    /// Appends the batch and stores the position; on failure what was not appended stays
    /// for the next attempt.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        if self.oldest.is_none() {
            return Ok(());
        }
        if let Some(gate) = &self.gate {
            gate.wait(&self.redis, &producer::source(&self.source))
                .await?;
        }
        // Before the posts: a failure here appends none of them, and the batch is tried
        // again; remembered and then not appended, a post is read again after a restart.
        if let Some(kept) = self.kept.as_mut() {
            remember_ids(&self.redis, &kept.key, &kept.new, kept.capacity).await?;
            kept.new.clear();
        }
        loop {
            let n = self.encoded.len().min(MAX_PIPELINE);
            // The position goes with the last part only: an earlier one does not reach it.
            let cursor = (n == self.encoded.len())
                .then_some(self.cursor.as_deref())
                .flatten();
            append_with_cursor(
                &self.redis,
                &self.stream,
                &self.encoded[..n],
                &[(producer::PRODUCER_FIELD, producer::source(&self.source))],
                &self.cursor_key,
                cursor,
            )
            .await?;
            // One increment per kind and batch: sources append up to 100k events a second.
            let mut per_kind: Vec<(&'static str, u64)> = Vec::new();
            for kind in self.kinds.drain(..n) {
                match per_kind.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, count)) => *count += 1,
                    None => per_kind.push((kind, 1)),
                }
            }
            for (kind, count) in per_kind {
                metrics::counter!(names::SOURCE_EVENTS, "source" => self.source.clone(), "event" => kind)
                    .increment(count);
            }
            self.encoded.drain(..n);
            if self.encoded.is_empty() {
                break;
            }
        }
        self.oldest = None;
        Ok(())
    }
}

/// The stream entry of an event, or why the ingester would refuse it: checked as it checks
/// fields, and then as it checks size, since JSON can write a text several times longer
/// than its bytes (a control character as a six-byte escape).
fn encode(event: &Event) -> Result<String, EventError> {
    event.validate()?;
    let json = serde_json::to_string(event).map_err(|e| EventError::Malformed(e.to_string()))?;
    if json.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge(json.len()));
    }
    Ok(json)
}

fn kind_of(event: &Event) -> &'static str {
    match event {
        Event::Post(_) => "post",
        Event::Engagement(e) => e.kind.as_str(),
        Event::Delete(_) => "delete",
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::models::event::MAX_TEXT_BYTES;
    use crate::models::fixtures;

    fn post(text: String) -> Event {
        Event::Post(fixtures::post("p1", text, Utc::now()))
    }

    #[test]
    fn an_event_whose_json_outgrows_the_ingesters_limit_is_refused_not_appended() {
        let controls = post("\u{1}".repeat(MAX_TEXT_BYTES - 1) + "x");
        controls.validate().expect("its fields alone pass");
        let e = encode(&controls).expect_err("six bytes a character");
        assert_eq!(e.class(), "too_large", "{e}");
        let json = encode(&post("x".repeat(MAX_TEXT_BYTES))).expect("fits");
        assert!(json.len() <= MAX_EVENT_BYTES);
        assert_eq!(
            encode(&post(" ".into())).unwrap_err().class(),
            "invalid_field"
        );
        // What a source pushes is fitted first: the same text then fits.
        let mut fitted = controls;
        crate::sources::fit::fit(&mut fitted);
        encode(&fitted).expect("fitted");
    }
}

//! Topics in a running process: the watcher keeps the matcher the analyzer pool uses in step
//! with the topics table, and the re-tagger works through re-taggings of stored posts.
//!
//! - The watcher reads the topics' revision ([`db::revision`]) every `topics.refresh_ms` and,
//!   when it moved, rebuilds the matcher from the active topics on a blocking thread and swaps
//!   it in whole ([`LiveTopics`]): a batch is matched against one set from start to end.
//! - The re-tagger takes the oldest open re-tagging no other process works and does one chunk
//!   of it per transaction ([`crate::db::retags`]). While the pipeline has entries in flight
//!   it works in smaller chunks (`topics.retag_busy_chunk`) and at most
//!   `topics.retag_busy_share` of the time, resting in proportion after each chunk, so the
//!   pipeline's batches wait behind little and come first; with nothing in flight it works in
//!   chunks of `topics.retag_chunk` without rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, ContextFutureSpawner};
use deadpool_postgres::Pool;

use super::ingester::IngestContext;
use crate::config::TopicSettings;
use crate::db::topics::StoredText;
use crate::db::{labels, relevance, retags, topics as db};
use crate::telemetry::names;
use crate::topics::relevance::{counts as relevance_counts, Features, Filter, Filters, Post};
use crate::topics::{LiveTopics, TopicDef, TopicSet};

/// Loads the active topics into `live` when their revision differs from the one it holds.
/// Whether it changed.
pub async fn refresh(pool: &Pool, live: &LiveTopics) -> anyhow::Result<bool> {
    let client = pool.get().await?;
    let revision = db::revision(&**client).await?;
    // A process starts with no topics at revision 0, the revision of a table with none.
    if revision as u64 == live.revision() {
        return Ok(false);
    }
    let active = db::active(&**client).await?;
    let adopted = crate::db::relevance::adopted(&**client).await?;
    drop(client);
    let defs: Vec<TopicDef> = active
        .into_iter()
        .map(|(id, version, query)| TopicDef { id, version, query })
        .collect();
    let (set, refused) = tokio::task::spawn_blocking(move || TopicSet::build(defs)).await?;
    for (id, error) in refused {
        tracing::error!(topic = id, %error, "a stored topic's query no longer parses; it is not matched");
    }
    let filters = Filters::new(adopted.into_iter().filter_map(
        |(topic, model_id, threshold, bias, weights)| {
            let Some(filter) = Filter::from_stored(model_id, threshold, bias, &weights) else {
                tracing::error!(
                    topic,
                    model_id,
                    "a stored relevance model does not read back; the topic is not filtered"
                );
                return None;
            };
            Some((topic, filter))
        },
    ));
    metrics::gauge!(names::TOPICS_ACTIVE).set(set.len() as f64);
    metrics::gauge!(names::TOPICS_FILTERED).set(filters.len() as f64);
    live.replace_with(revision as u64, set, filters);
    Ok(true)
}

/// Keeps a process's matcher in step with the topics table.
pub struct TopicWatcher {
    pool: Pool,
    live: Arc<LiveTopics>,
    every: Duration,
    busy: bool,
}

impl TopicWatcher {
    pub fn new(pool: Pool, live: Arc<LiveTopics>, settings: &TopicSettings) -> Self {
        Self {
            pool,
            live,
            every: Duration::from_millis(settings.refresh_ms.max(1)),
            busy: false,
        }
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let (pool, live) = (self.pool.clone(), self.live.clone());
        wrap_future::<_, Self>(async move {
            match refresh(&pool, &live).await {
                Ok(true) => {
                    metrics::counter!(names::TOPIC_RELOADS, "outcome" => "reloaded").increment(1);
                    tracing::info!(
                        revision = live.revision(),
                        topics = live.get().len(),
                        "topics reloaded"
                    );
                }
                Ok(false) => {}
                Err(e) => {
                    metrics::counter!(names::TOPIC_RELOADS, "outcome" => "failed").increment(1);
                    tracing::debug!(error = %format_args!("{e:#}"), "looking for changed topics failed");
                }
            }
        })
        .map(|_, actor: &mut Self, _| actor.busy = false)
        .spawn(ctx);
    }
}

impl Actor for TopicWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.every, |actor, ctx| actor.check(ctx));
    }
}

/// How long the re-tagger waits when there is nothing to re-tag, or after a failure.
const IDLE: Duration = Duration::from_secs(2);

/// Works through re-taggings of stored posts, one chunk per transaction.
pub struct Retagger {
    pool: Pool,
    settings: TopicSettings,
    high_churn: f32,
    ingest: Option<Arc<IngestContext>>,
}

impl Retagger {
    pub fn new(
        pool: Pool,
        settings: &TopicSettings,
        high_churn: f32,
        ingest: Option<Arc<IngestContext>>,
    ) -> Self {
        Self {
            pool,
            settings: settings.clone(),
            high_churn,
            ingest,
        }
    }

    /// Does one chunk, then schedules the next: at once when the pipeline is idle, after a
    /// rest in proportion to the chunk's time while it is busy, later when idle or failed.
    fn step(&mut self, ctx: &mut Context<Self>) {
        // While the pipeline is busy, small chunks: its batches wait behind less at a time.
        let chunk = if self.pipeline_busy() {
            self.settings.retag_busy_chunk
        } else {
            self.settings.retag_chunk
        };
        let (pool, chunk, high_churn) = (self.pool.clone(), chunk.max(1) as i64, self.high_churn);
        wrap_future::<_, Self>(async move {
            let started = Instant::now();
            let worked = chunk_once(&pool, chunk, high_churn).await;
            (worked, started.elapsed())
        })
        .map(|(worked, took), actor: &mut Self, ctx| {
            let pause = match worked {
                Ok(true) => {
                    let share = actor.settings.retag_busy_share;
                    IngestContext::rest_after(actor.ingest.as_ref(), took, share)
                }
                Ok(false) => IDLE,
                Err(e) => {
                    pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "re-tagging a chunk failed; trying again");
                    IDLE
                }
            };
            ctx.run_later(pause, |actor, ctx| actor.step(ctx));
        })
        .spawn(ctx);
    }
}

impl Retagger {
    /// Whether the pipeline has entries in flight.
    fn pipeline_busy(&self) -> bool {
        IngestContext::busy(self.ingest.as_ref())
    }
}

impl Actor for Retagger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_later(IDLE, |actor, ctx| actor.step(ctx));
    }
}

/// Works one chunk of the oldest open re-tagging; whether there was one. A chunk that fails
/// is rolled back and counted against its job, which fails after a few in a row.
pub async fn chunk_once(pool: &Pool, chunk: i64, high_churn: f32) -> anyhow::Result<bool> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // A chunk lost in a crash is done again from the job's cursor, which commits with it: its
    // commit need not wait for the disk, and so leaves the disk to the pipeline's commits.
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    let Some((job, topic)) = retags::claim(&tx).await? else {
        return Ok(false);
    };
    let id = job.id;
    let ended = match topic {
        None => Some(("cancelled", "the topic was deleted".to_string())),
        Some((version, _)) if version != job.version => Some((
            "cancelled",
            "the topic's query was edited since".to_string(),
        )),
        Some((_, ref query)) => match crate::topics::parse(query) {
            Ok(expr) => {
                let worked = work_chunk(&tx, job, expr, chunk, high_churn).await;
                return match worked {
                    Ok((scanned, changes)) => {
                        tx.commit().await?;
                        for (change, n) in [
                            ("scanned", scanned),
                            ("added", changes.added),
                            ("removed", changes.removed),
                        ] {
                            metrics::counter!(names::TOPIC_RETAGGED, "change" => change)
                                .increment(n as u64);
                        }
                        Ok(true)
                    }
                    Err(e) => {
                        drop(tx);
                        retags::record_failure(&**client, id, &format!("{e:#}")).await?;
                        Err(e)
                    }
                };
            }
            Err(e) => Some(("failed", format!("the query does not parse: {e}"))),
        },
    };
    if let Some((status, reason)) = ended {
        retags::stop(&tx, id, status, &reason).await?;
        tx.commit().await?;
    }
    Ok(true)
}

/// Reads, matches and writes one chunk of `job` in `tx`, and moves its cursor; the posts read
/// and what changed.
async fn work_chunk(
    tx: &deadpool_postgres::Transaction<'_>,
    job: retags::RetagJob,
    expr: crate::topics::Expr,
    chunk: i64,
    high_churn: f32,
) -> anyhow::Result<(i64, retags::ChunkChanges)> {
    let after = job.cursor.as_ref().map(|(at, id)| (*at, id.as_str()));
    let posts = db::texts_before(&**tx, job.from, job.to, after, chunk).await?;
    let (topic_id, version) = (job.topic_id, job.version);
    // A matched post goes where analysis would put it: the topic's adopted filter, or the
    // post's own relevance label, decides whether it counts.
    let filter = relevance::adopted_of(&**tx, topic_id).await?.and_then(
        |(model_id, threshold, bias, weights)| {
            Filter::from_stored(model_id, threshold, bias, &weights)
        },
    );
    let ids: Vec<&str> = posts.iter().map(|p| p.id.as_str()).collect();
    let labelled: HashMap<String, bool> = labels::relevance_of_posts(&**tx, topic_id, &ids)
        .await?
        .into_iter()
        .collect();
    // Matching and scoring a chunk take milliseconds: not on the event loop the pipeline
    // shares. Only the posts whose place changes are written.
    let (posts, matched, [counted, filtered, unmatched]) = tokio::task::spawn_blocking(move || {
        let set = TopicSet::of(topic_id, version, &expr);
        let (mut matched, mut lists) = (0, [Vec::new(), Vec::new(), Vec::new()]);
        for p in &posts {
            let matches = !set.matches(&p.fields()).is_empty();
            matched += usize::from(matches);
            if let Some(list) = place(p, matches, topic_id, version, &labelled, filter.as_ref()) {
                lists[list as usize].push(p.id.clone());
            }
        }
        (posts, matched, lists)
    })
    .await?;
    fn refs(ids: &[String]) -> Vec<&str> {
        ids.iter().map(String::as_str).collect()
    }
    let (counted, filtered, unmatched) = (refs(&counted), refs(&filtered), refs(&unmatched));
    let changes = retags::write_chunk(
        tx,
        &retags::ChunkWrite {
            topic_id,
            version,
            counted: &counted,
            filtered: &filtered,
            unmatched: &unmatched,
            high_churn,
        },
    )
    .await?;
    let last = posts.last();
    retags::advance(
        tx,
        job.id,
        &retags::Progress {
            cursor: last.map(|p| (p.created_at, p.id.as_str())),
            scanned: posts.len() as i64,
            matched: matched as i64,
            changes,
            done: (posts.len() as i64) < chunk,
        },
    )
    .await?;
    Ok((posts.len() as i64, changes))
}

/// Where a re-tagged post belongs, in the order of [`retags::ChunkWrite`]'s lists.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Counted,
    Filtered,
    Unmatched,
}

/// Where post `p` goes under version `version` of topic `topic`, when that is not where it is.
fn place(
    p: &StoredText,
    matches: bool,
    topic: i64,
    version: i32,
    labels: &HashMap<String, bool>,
    filter: Option<&Filter>,
) -> Option<Place> {
    let goes = if !matches {
        Place::Unmatched
    } else if relevance_counts(labels.get(&p.id).copied(), filter, || {
        Features::of(&Post {
            text: &p.text,
            author: Some(&p.author),
            lang: p.lang.as_deref(),
            matched: true,
        })
    }) {
        Place::Counted
    } else {
        Place::Filtered
    };
    let there = match goes {
        Place::Counted => p.version_of(topic) == Some(version),
        Place::Filtered => p.filtered_by(topic),
        Place::Unmatched => p.version_of(topic).is_none() && !p.filtered_by(topic),
    };
    (!there).then_some(goes)
}

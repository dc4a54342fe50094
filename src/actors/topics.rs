//! Topics in a running process: the watcher keeps the matcher the analyzer pool uses in step
//! with the topics table, and the re-tagger works through re-taggings of stored posts.
//!
//! - The watcher reads the topics' revision ([`db::revision`]) every `topics.refresh_ms` and,
//!   when it moved, reads what changed ([`refresh`]), rebuilds the matcher on a blocking thread
//!   when the active topics' queries changed, and swaps it in whole with the relevance filters
//!   ([`LiveTopics`]): a batch is matched against one set from start to end.
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
use crate::topics::relevance::{
    counts as relevance_counts, Features, Filter, Filters, Model, Post,
};
use crate::topics::{Expr, LiveTopics, Loaded, ParsedTopics, TopicSet};

/// What one load read and built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reload {
    /// Whether the matcher was built again: an active topic came, went or changed its query.
    pub rebuilt: bool,
    /// Queries read and parsed: those of the topics the process did not hold at their version.
    pub queries: usize,
    /// Relevance models read and decoded: those the process did not hold.
    pub models: usize,
}

/// Loads the active topics into `live` when their revision differs from the one it holds;
/// what it read, when it did.
///
/// Only what changed is read. The active topics' versions are compared with those held: the
/// matcher is kept when they are the same, and otherwise built again from the queries held,
/// parsed, and those of the topics new or edited, read and parsed. The adopted models are
/// compared by id: only the weights of a model not held are read and decoded. Every process
/// read every query, compiled it and decoded every adopted model (up to 2 MiB each) again at
/// any change, an adoption or a threshold of one topic included.
pub async fn refresh(pool: &Pool, live: &LiveTopics) -> anyhow::Result<Option<Reload>> {
    let client = pool.get().await?;
    let revision = db::revision(&**client).await?;
    // A process starts with no topics at revision 0, the revision of a table with none.
    if revision as u64 == live.revision() {
        return Ok(None);
    }
    let held = live.loaded();
    let mut reload = Reload::default();
    let listed = db::active_versions(&**client).await?;
    let held_parsed = held.parsed.clone().unwrap_or_default();
    let (mut kept, mut wanted) = (Vec::new(), Vec::new());
    for &(id, version) in &listed {
        match held_parsed.get(&id) {
            Some((at, expr)) if *at == version => kept.push((id, version, expr.clone())),
            _ => wanted.push(id),
        }
    }
    let (set, parsed) =
        if held.parsed.is_some() && wanted.is_empty() && kept.len() == held_parsed.len() {
            (held.set.clone(), held_parsed)
        } else {
            let read = db::active_queries(&**client, &wanted).await?;
            reload.rebuilt = true;
            reload.queries = read.len();
            tokio::task::spawn_blocking(move || build(kept, read)).await?
        };
    let (filters, models) = load_filters(&**client, &held.filters).await?;
    reload.models = models;
    drop(client);
    metrics::gauge!(names::TOPICS_ACTIVE).set(set.len() as f64);
    metrics::gauge!(names::TOPICS_FILTERED).set(filters.len() as f64);
    live.install(
        revision as u64,
        Loaded {
            set,
            filters,
            parsed: Some(parsed),
        },
    );
    Ok(Some(reload))
}

/// The relevance filters of the live topics with an adopted model, and how many models were
/// read: the models of `held` are kept, and `held` itself when no topic's model or threshold
/// changed.
async fn load_filters(
    client: &impl tokio_postgres::GenericClient,
    held: &Arc<Filters>,
) -> anyhow::Result<(Arc<Filters>, usize)> {
    let adopted = relevance::adopted(client).await?;
    let unchanged = held.len() == adopted.len()
        && adopted.iter().all(|&(topic, model_id, threshold)| {
            held.get(topic)
                .is_some_and(|f| f.model_id == model_id && f.threshold == threshold)
        });
    if unchanged {
        return Ok((held.clone(), 0));
    }
    let mut models: HashMap<i64, Arc<Model>> = held
        .iter()
        .map(|(_, f)| (f.model_id, f.model.clone()))
        .collect();
    let mut missing: Vec<i64> = adopted
        .iter()
        .map(|&(_, model_id, _)| model_id)
        .filter(|id| !models.contains_key(id))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    let stored = if missing.is_empty() {
        Vec::new()
    } else {
        relevance::weights_of(client, &missing).await?
    };
    let read = stored.len();
    for (model_id, bias, weights) in stored {
        match Model::from_stored(bias, &weights) {
            Some(model) => {
                models.insert(model_id, Arc::new(model));
            }
            None => tracing::error!(
                model_id,
                "a stored relevance model does not read back; its topic is not filtered"
            ),
        }
    }
    let filters = Filters::new(
        adopted
            .into_iter()
            .filter_map(|(topic, model_id, threshold)| {
                let model = models.get(&model_id)?.clone();
                Some((
                    topic,
                    Filter {
                        model_id,
                        model,
                        threshold,
                    },
                ))
            }),
    );
    Ok((Arc::new(filters), read))
}

/// The matcher of the topics `kept` (parsed, held already) and `read` (just read), by id.
fn build(
    kept: Vec<(i64, i32, Option<Arc<Expr>>)>,
    read: Vec<(i64, i32, String)>,
) -> (Arc<TopicSet>, Arc<ParsedTopics>) {
    let mut parsed = ParsedTopics::default();
    for (id, version, expr) in kept {
        parsed.insert(id, (version, expr));
    }
    for (id, version, query) in read {
        let expr = match crate::topics::parse(&query) {
            Ok(expr) => Some(Arc::new(expr)),
            Err(error) => {
                tracing::error!(topic = id, %error, "a stored topic's query no longer parses; it is not matched");
                None
            }
        };
        parsed.insert(id, (version, expr));
    }
    let mut topics: Vec<(i64, i32, &Expr)> = parsed
        .iter()
        .filter_map(|(&id, (version, expr))| Some((id, *version, expr.as_deref()?)))
        .collect();
    topics.sort_unstable_by_key(|t| t.0);
    let set = TopicSet::from_parsed(topics);
    (Arc::new(set), Arc::new(parsed))
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
                Ok(Some(reload)) => {
                    metrics::counter!(names::TOPIC_RELOADS, "outcome" => "reloaded").increment(1);
                    tracing::info!(
                        revision = live.revision(),
                        topics = live.get().len(),
                        rebuilt = reload.rebuilt,
                        queries_read = reload.queries,
                        models_read = reload.models,
                        "topics reloaded"
                    );
                }
                Ok(None) => {}
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

//! Learning each topic's relevance from its labels, in every process of the group.
//!
//! Every `topics.relevance_every_ms` the learner takes the next topic whose labels changed
//! (given or undone) since it was trained, and not trained in the last
//! `topics.relevance_train_gap_ms` (labels given meanwhile wait for the next round), one
//! process at a time (an advisory lock, so labelling never waits on a training), trains a model
//! on its newest `topics.relevance_training_labels` labels and compares it, out of fold, with
//! the adopted one ([`assess`]): it is adopted only when it gets more right. The newest models trained are kept with their figures. An adopted
//! model (or a new threshold) re-scores the topic's stored posts, newest first, a chunk per
//! transaction with the cursor committed beside it, so another process resumes where one
//! stopped; posts with a relevance label of their own follow their label, not the model. While
//! the pipeline has entries in flight the learner gives way to it as re-tagging does: after each
//! step it rests so as to work at most `topics.retag_busy_share` of the time. New
//! posts are scored at analysis once the topic watcher loads the model (the adoption moves the
//! topics' revision); those stored before every process had loaded it are read once more by a
//! last pass, `topics.refresh_ms` plus `topics.relevance_settle_ms` after the adoption.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, ContextFutureSpawner};
use deadpool_postgres::Pool;

use super::ingester::IngestContext;
use crate::db::relevance::{self as db, Trained};
use crate::telemetry::names;
use crate::topics::relevance::{
    assess, counts, key_of, not_ready, Features, Filter, Labelled, Model, Post,
};

/// Trains and re-scores topics' relevance.
pub struct RelevanceLearner {
    pool: Pool,
    every: Duration,
    chunk: i64,
    /// How long after its start a re-scoring reads the posts stored since once more.
    settle: Duration,
    labels: i64,
    /// Shortest time between two trainings of one topic.
    gap: Duration,
    high_churn: f32,
    /// The pipeline it gives way to, as re-tagging does (`topics.retag_busy_share`).
    ingest: Option<Arc<IngestContext>>,
    busy_share: f64,
}

impl RelevanceLearner {
    pub fn new(
        pool: Pool,
        settings: &crate::config::TopicSettings,
        high_churn: f32,
        ingest: Option<Arc<IngestContext>>,
    ) -> Self {
        Self {
            pool,
            every: Duration::from_millis(settings.relevance_every_ms),
            chunk: settings.relevance_rescore_chunk as i64,
            settle: Duration::from_millis(
                settings
                    .refresh_ms
                    .saturating_add(settings.relevance_settle_ms),
            ),
            labels: settings.relevance_training_labels as i64,
            gap: Duration::from_millis(settings.relevance_train_gap_ms),
            high_churn,
            ingest,
            busy_share: settings.retag_busy_share,
        }
    }

    fn step(&mut self, ctx: &mut Context<Self>) {
        let (pool, chunk, labels, high_churn) =
            (self.pool.clone(), self.chunk, self.labels, self.high_churn);
        let (settle, gap) = (self.settle, self.gap);
        wrap_future::<_, Self>(async move {
            let started = Instant::now();
            let trained = train_once(&pool, labels, gap).await;
            let rescored = rescore_once(&pool, chunk, settle, high_churn).await;
            (trained, rescored, started.elapsed())
        })
        .map(|(trained, rescored, took), actor: &mut Self, ctx| {
            for e in [trained.as_ref().err(), rescored.as_ref().err()].into_iter().flatten() {
                pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "learning a topic's relevance failed; trying again");
            }
            let busy = IngestContext::busy(actor.ingest.as_ref());
            let more = matches!(rescored, Ok(true));
            let pause = pause_after(more, busy, took, actor.busy_share, actor.every);
            ctx.run_later(pause, |actor, ctx| actor.step(ctx));
        })
        .spawn(ctx);
    }
}

/// The wait before the learner's next step, after one that took `took`: with more of a
/// re-scoring to do, at once while the pipeline is idle, and while it is `busy` a rest that
/// leaves the step `share` of the time, as re-tagging rests (a re-scoring moves every stored
/// post of a topic, and a new threshold or model begins one); otherwise the interval, or that
/// rest when longer (a training is work for the same cores).
fn pause_after(more: bool, busy: bool, took: Duration, share: f64, every: Duration) -> Duration {
    let rest = if busy {
        IngestContext::rest_while_busy(took, share)
    } else {
        Duration::ZERO
    };
    if more {
        rest
    } else {
        every.max(rest)
    }
}

impl Actor for RelevanceLearner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_later(self.every, |actor, ctx| actor.step(ctx));
    }
}

/// Trains the next topic with new labels and no training in the last `gap`, if one has, on its
/// `labels` newest labelled posts; whether one had.
pub async fn train_once(pool: &Pool, labels: i64, gap: Duration) -> anyhow::Result<bool> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // The training runs between two statements of this transaction and grows with the topic's
    // labels: past the pipeline's idle-in-transaction timeout PostgreSQL would end the session,
    // the training would be lost, and the topic, claimed first again, would never be trained.
    // Meanwhile the transaction holds no row, only the topic's advisory lock.
    tx.batch_execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        .await?;
    let Some((topic, changes, newest)) = db::claim_training(&tx, gap).await? else {
        return Ok(false);
    };
    let trained = train_claimed(tx, topic, changes, newest, labels).await;
    if trained.is_err() {
        // Behind the topics waiting after it, which a training failing over and over would
        // otherwise hold up for good.
        if let Ok(client) = pool.get().await {
            if let Err(e) = db::postpone_training(&**client, topic).await {
                tracing::debug!(topic, error = %e, "could not put a topic behind the others");
            }
        }
    }
    trained.map(|()| true)
}

/// Trains `topic`, claimed in `tx`, on its `limit` newest labels, and records the model in
/// `tx`.
async fn train_claimed(
    tx: deadpool_postgres::Transaction<'_>,
    topic: i64,
    changes: i64,
    newest: i64,
    limit: i64,
) -> anyhow::Result<()> {
    let state = db::state(&*tx, topic).await?;
    let posts = db::labelled_posts(&*tx, topic, limit).await?;
    let (outcome, trained) = tokio::task::spawn_blocking(move || {
        let labels: Vec<Labelled> = posts
            .iter()
            .map(|p| Labelled {
                features: Features::of(&Post {
                    text: &p.text,
                    author: Some(&p.author),
                    lang: p.lang.as_deref(),
                    matched: true,
                }),
                related: p.related,
                label_id: p.label_id,
                key: key_of(&p.post_id),
            })
            .collect();
        let related = labels.iter().filter(|l| l.related).count() as i32;
        if let Some(why) = not_ready(&labels) {
            return (None, (labels.len() as i32, related, why, None));
        }
        let a = assess(&labels, state.adopted_through);
        let pairs: Vec<(&Features, bool)> =
            labels.iter().map(|l| (&l.features, l.related)).collect();
        let model = Model::train(&pairs);
        let why = if a.adopt {
            format!(
                "adopted: {:.3} right out of fold against {:.3}",
                a.accuracy, a.incumbent
            )
        } else {
            format!(
                "kept the previous: {:.3} right out of fold, not above {:.3}",
                a.accuracy, a.incumbent
            )
        };
        (
            Some(a),
            (labels.len() as i32, related, why, model.to_stored()),
        )
    })
    .await?;
    let (labels, related, reason, weights) = trained;
    let adopted = outcome.as_ref().is_some_and(|a| a.adopt) && weights.is_some();
    db::record(
        &tx,
        &Trained {
            topic_id: topic,
            changes,
            labels,
            related,
            through_label: newest,
            accuracy: outcome.as_ref().map_or(0.0, |a| a.accuracy),
            incumbent: outcome.as_ref().map_or(0.0, |a| a.incumbent),
            adopted,
            reason: &reason,
            weights: outcome.is_some().then_some(weights).flatten(),
        },
    )
    .await?;
    tx.commit().await?;
    if outcome.is_some() {
        let label = if adopted { "adopted" } else { "kept_previous" };
        metrics::counter!(names::RELEVANCE_TRAINED, "outcome" => label).increment(1);
        tracing::info!(topic, labels, related, %reason, "trained a topic's relevance");
    }
    Ok(())
}

/// Re-scores one chunk of the next topic whose stored posts are not all scored under its
/// adopted model and threshold (its last pass once `settle` has passed since it began,
/// [`db::claim_rescore`]); whether its pass goes on.
pub async fn rescore_once(
    pool: &Pool,
    chunk: i64,
    settle: Duration,
    high_churn: f32,
) -> anyhow::Result<bool> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // A chunk lost in a crash is done again from the cursor, which commits with it.
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    let Some(work) = db::claim_rescore(&tx, chunk, settle).await? else {
        return Ok(false);
    };
    let filter = db::adopted_of(&*tx, work.topic_id).await?.and_then(
        |(model_id, threshold, bias, weights)| {
            Filter::from_stored(model_id, threshold, bias, &weights)
        },
    );
    let topic = work.topic_id;
    let last = work.posts.last().map(|p| (p.created_at, p.id.clone()));
    let done = (work.posts.len() as i64) < chunk;
    let (filter_ids, restore_ids) = tokio::task::spawn_blocking(move || {
        let (mut out, mut back) = (Vec::new(), Vec::new());
        for p in work.posts {
            // The chunk holds no post with a label of its own.
            let keeps = counts(None, filter.as_ref(), || {
                Features::of(&Post {
                    text: &p.text,
                    author: Some(&p.author),
                    lang: p.lang.as_deref(),
                    matched: true,
                })
            });
            match (keeps, p.kept) {
                (false, true) => out.push(p.id),
                (true, false) => back.push(p.id),
                _ => {}
            }
        }
        (out, back)
    })
    .await?;
    let filter_refs: Vec<&str> = filter_ids.iter().map(String::as_str).collect();
    let restore_refs: Vec<&str> = restore_ids.iter().map(String::as_str).collect();
    let (filtered, restored) = db::move_posts(
        &tx,
        topic,
        work.version,
        &filter_refs,
        &restore_refs,
        high_churn,
    )
    .await?;
    db::advance_rescore(
        &tx,
        topic,
        last.as_ref().map(|(at, id)| (*at, id.as_str())),
        done,
    )
    .await?;
    tx.commit().await?;
    for (change, n) in [("filtered", filtered), ("restored", restored)] {
        if n > 0 {
            metrics::counter!(names::RELEVANCE_MOVED, "change" => change).increment(n as u64);
        }
    }
    Ok(!done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescoring_rests_while_the_pipeline_is_busy_as_retagging_does() {
        let (took, share, every) = (Duration::from_millis(300), 0.3, Duration::from_secs(1));
        let rest = IngestContext::rest_while_busy(took, share);
        assert_eq!(rest, Duration::from_millis(700));
        // More to re-score: the share's rest while entries are in flight, none while idle.
        assert_eq!(pause_after(true, true, took, share, every), rest);
        assert_eq!(pause_after(true, false, took, share, every), Duration::ZERO);
        // Nothing more: the interval, or a busy step's rest when longer.
        assert_eq!(pause_after(false, false, took, share, every), every);
        assert_eq!(pause_after(false, true, took, share, every), every);
        let long = Duration::from_secs(3);
        assert_eq!(
            pause_after(false, true, long, share, every),
            Duration::from_secs(7)
        );
    }
}

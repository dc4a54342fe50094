//! Calibrating sentiment to a deployment's own labels, in every process of the group.
//!
//! Every `analyzer.calibration_every_ms` the calibrator loads the calibration in use when the
//! state's revision moved (the analyzer workers read it from [`LiveCalibration`]), and, when
//! sentiment labels were given or undone since the last training and none began in the last
//! `analyzer.calibration_train_gap_ms`, takes the training lease (one
//! process trains at a time; extended while it trains), has the analyzer pool read the labelled
//! posts again within the share `POST /api/v1/analyze` has (the shipped models' own outputs are
//! not stored), trains an adapter for each model with enough labels and records it with its
//! out-of-fold figures ([`calibration::assess`]). One that beats the shipped models is put in
//! use while the state is automatic; stored posts keep the analysis they were stored with.

use std::sync::Arc;
use std::time::Duration;

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, ContextFutureSpawner};
use deadpool_postgres::Pool;

use super::analyzer::share::ShareError;
use super::ingester::IngestContext;
use crate::analysis::calibration::{self, Calibration, Example, LiveCalibration};
use crate::db::calibration::{self as db, Trained};
use crate::models::SentimentLabel;
use crate::telemetry::names;

/// The caller the calibrator's analyses are counted as in the analyzer's share.
const CALLER: &str = "sentiment calibration";

/// Trains sentiment calibrations and keeps the one in use loaded.
pub struct Calibrator {
    pool: Pool,
    ingest: Arc<IngestContext>,
    live: Arc<LiveCalibration>,
    every: Duration,
    limit: i64,
    /// Shortest time between the starts of two trainings.
    gap: Duration,
}

impl Calibrator {
    pub fn new(pool: Pool, ingest: Arc<IngestContext>, live: Arc<LiveCalibration>) -> Self {
        let settings = &ingest.settings.analyzer;
        Self {
            every: Duration::from_millis(settings.calibration_every_ms.max(1)),
            limit: settings.calibration_labels.max(1) as i64,
            gap: Duration::from_millis(settings.calibration_train_gap_ms),
            pool,
            ingest,
            live,
        }
    }

    fn step(&mut self, ctx: &mut Context<Self>) {
        let (pool, ingest, live, limit, gap) = (
            self.pool.clone(),
            self.ingest.clone(),
            self.live.clone(),
            self.limit,
            self.gap,
        );
        wrap_future::<_, Self>(async move {
            let trained = train_once(&pool, &ingest, limit, gap).await;
            let loaded = refresh(&pool, &live).await;
            (trained, loaded)
        })
        .map(|(trained, loaded), actor: &mut Self, ctx| {
            for e in [trained.err(), loaded.err()].into_iter().flatten() {
                pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "calibrating sentiment failed; trying again");
            }
            ctx.run_later(actor.every, |actor, ctx| actor.step(ctx));
        })
        .spawn(ctx);
    }
}

impl Actor for Calibrator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_later(self.every, |actor, ctx| actor.step(ctx));
    }
}

/// Loads the calibration in use into `live` when the state's revision moved; whether it did.
pub async fn refresh(pool: &Pool, live: &LiveCalibration) -> anyhow::Result<bool> {
    let client = pool.get().await?;
    if db::revision(&**client).await? == live.revision() {
        return Ok(false);
    }
    let (revision, active) = db::active(&**client).await?;
    let calibration = active.and_then(|(id, bytes)| {
        let c = Calibration::from_stored(id, &bytes);
        if c.is_none() {
            tracing::error!(
                id,
                "a stored sentiment calibration does not read back; the shipped models are used"
            );
        }
        c
    });
    tracing::info!(
        revision,
        calibration = calibration.as_ref().map(|c| c.id),
        "sentiment calibration loaded"
    );
    live.replace(revision, calibration);
    Ok(true)
}

/// Trains a calibration when sentiment labels changed since the last and none began in the
/// last `gap`; whether one was recorded.
pub async fn train_once(
    pool: &Pool,
    ingest: &IngestContext,
    limit: i64,
    gap: Duration,
) -> anyhow::Result<bool> {
    let mut client = pool.get().await?;
    let Some((changes, newest)) = db::claim_training(&**client, gap).await? else {
        return Ok(false);
    };
    let outcome = tokio::select! {
        outcome = train(&mut client, ingest, limit, changes, newest) => outcome,
        never = keep_lease(pool) => match never {},
    };
    if outcome.is_err() {
        db::release_training(&**client).await?;
    }
    outcome
}

/// Extends the training lease four times a lease, for as long as it is polled: the labels read
/// again and the trainings of thousands of them can take longer than one lease.
async fn keep_lease(pool: &Pool) -> std::convert::Infallible {
    let every = Duration::from_secs_f64(db::LEASE_SECS / 4.0);
    loop {
        tokio::time::sleep(every).await;
        let extended = match pool.get().await {
            Ok(client) => db::extend_training(&**client)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        match extended {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "the sentiment training's lease lapsed before it could be extended; another \
                 process may train the same labels, and only one records it"
            ),
            Err(e) => pulse_core::warn_repeated!(
                error = %format_args!("{e:#}"),
                "could not extend the sentiment training's lease; trying again"
            ),
        }
    }
}

async fn train(
    client: &mut deadpool_postgres::Object,
    ingest: &IngestContext,
    limit: i64,
    changes: i64,
    newest: i64,
) -> anyhow::Result<bool> {
    let posts = db::labelled_posts(&***client, limit).await?;
    let texts: Vec<(String, Option<String>)> = posts
        .iter()
        .map(|p| (p.text.clone(), p.lang.clone()))
        .collect();
    let analysed = if texts.is_empty() {
        Vec::new()
    } else {
        read_again(ingest, texts).await?
    };
    let assessments = tokio::task::spawn_blocking(move || {
        let examples: Vec<Example> = posts
            .iter()
            .zip(&analysed)
            .filter_map(|(p, a)| {
                Example::read(&p.post_id, &p.text, a, SentimentLabel::parse(&p.value)?)
            })
            .collect();
        calibration::assess(&examples)
    })
    .await?;
    let adapters: Vec<_> = assessments
        .iter()
        .filter_map(|a| a.adapter.clone())
        .collect();
    // Overall figures: every labelled post a model read, adapted where an adapter beat it.
    let labels: usize = assessments.iter().map(|a| a.labels).sum();
    let weighted = |f: &dyn Fn(&calibration::Assessment) -> f32| {
        assessments
            .iter()
            .map(|a| f(a) * a.labels as f32)
            .sum::<f32>()
            / labels.max(1) as f32
    };
    let macro_recall = weighted(&|a| {
        if a.adapter.is_some() {
            a.macro_recall
        } else {
            a.shipped
        }
    });
    let shipped = weighted(&|a| a.shipped);
    let reason = if assessments.is_empty() {
        "no labelled post was read by a model (the lexicon's analyses are not calibrated)".into()
    } else {
        assessments
            .iter()
            .map(|a| format!("{}: {}", a.model, a.reason))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let better = !adapters.is_empty();
    let tx = client.transaction().await?;
    let recorded = db::record(
        &tx,
        &Trained {
            changes,
            labels: labels as i32,
            through_label: newest,
            macro_recall,
            shipped,
            better,
            reason: &reason,
            models: adapters.iter().map(|a| a.model.clone()).collect(),
            adapters: Calibration::to_stored(&adapters),
        },
    )
    .await?;
    tx.commit().await?;
    let Some((id, used)) = recorded else {
        return Ok(false);
    };
    let outcome = match (better, used) {
        (true, true) => "in_use",
        (true, false) => "better_not_used",
        _ => "not_better",
    };
    metrics::counter!(names::CALIBRATIONS_TRAINED, "outcome" => outcome).increment(1);
    tracing::info!(id, labels, macro_recall, shipped, outcome, %reason, "trained a sentiment calibration");
    Ok(true)
}

/// The labelled posts read again by the analyzer pool, within the API's share of it.
async fn read_again(
    ingest: &IngestContext,
    texts: Vec<(String, Option<String>)>,
) -> anyhow::Result<Vec<crate::models::Analysis>> {
    match ingest
        .api_share
        .analyze_tagged(&ingest.analyzer, &ingest.route, CALLER, texts)
        .await
    {
        Ok(reply) => Ok(reply.analyses),
        Err(ShareError::Failed(e)) => Err(anyhow::anyhow!("the analyzer failed: {}", e.0)),
        Err(e) => Err(anyhow::anyhow!("the analyzer had no time for it: {e:?}")),
    }
}

//! What the tracker reads while it tracks: committed engagements by transaction id, the
//! metadata of posts it has not seen committed here, and the thresholds learned from
//! finished cascades.

use std::time::Duration;

use deadpool_postgres::Pool;

use actix::{fut::wrap_future, ActorFutureExt, AsyncContext, Context};

use super::cascades::rebuild_bounds;
use super::ViralityTracker;
use crate::db::forecast::{
    finished_posts, platforms_to_refit, record_finished_cascades, record_growing_cascades,
    save_refit, RefitScope, RECORD_BATCH,
};
use crate::db::virality::{
    engagements_before, finished_cascades, learned_thresholds, load_meta, read_feed, FeedRead,
    FeedRow, RebuildBounds, StoredCascade,
};
use crate::models::producer::Trust;
use crate::telemetry::names;
use crate::virality::forecast::ForecastModel;
use crate::virality::{forecast_fit, PostMeta};

/// Posts whose metadata is looked up in PostgreSQL per tick.
const META_LOOKUPS_PER_TICK: usize = 500;

impl ViralityTracker {
    /// Reads the engagements committed since the position and applies them.
    pub(super) fn poll(&mut self, ctx: &mut Context<Self>) {
        if !self.ready || self.polling.is_some() {
            return;
        }
        let (Some(session), Some(cursor)) = (&self.leader, self.cursor) else {
            return;
        };
        let conn = session.client.clone();
        let epoch = self.epoch;
        self.polling = Some(epoch);
        ctx.spawn(
            wrap_future::<_, Self>(async move { read_feed(&conn, cursor).await }).map(
                move |result, this, ctx| {
                    if this.epoch != epoch {
                        return;
                    }
                    match result {
                        Ok(read) => this.feed_read(read, ctx),
                        Err(e) => {
                            this.polling = None;
                            this.on_leader_error("feed", &e);
                        }
                    }
                },
            ),
        );
    }

    /// Applies one read of the feed, looking up the posts it names that are not known yet
    /// first, then moves the position past it.
    fn feed_read(&mut self, read: FeedRead, ctx: &mut Context<Self>) {
        metrics::counter!(names::VIRALITY_FEED_ROWS).increment(read.rows.len() as u64);
        let unknown = self.cascades.unknown_posts(&read.rows);
        let epoch = self.epoch;
        if unknown.is_empty() {
            self.feed_applied(read, Vec::new(), ctx);
            return;
        }
        let pool = self.pool.clone();
        let (window, cursor) = (self.cfg().revive_window_secs, self.cursor);
        let bounds = rebuild_bounds(self.cfg());
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let metas = load_meta(&pool, &unknown).await;
                let revived = match cursor {
                    Some(cursor) if window > 0 => {
                        revivable(&pool, &unknown, window, cursor, bounds).await
                    }
                    _ => Ok(Revived::default()),
                };
                (metas, revived)
            })
            .map(move |(metas, revived), this, ctx| {
                if this.epoch != epoch {
                    return;
                }
                let metas = metas.unwrap_or_else(|e| {
                    metrics::counter!(names::VIRALITY_ERRORS, "operation" => "lookup").increment(1);
                    tracing::debug!(error = %format_args!("{e:#}"), "post lookup failed; retried per cascade");
                    Vec::new()
                });
                match revived {
                    Ok(r) => this.cascades.revive(r.cascades, &r.engagements),
                    Err(e) => {
                        // The engagement starts a new cascade, as it would without the window.
                        metrics::counter!(names::VIRALITY_ERRORS, "operation" => "revive")
                            .increment(1);
                        tracing::debug!(error = %format_args!("{e:#}"), "looking up finished cascades failed");
                    }
                }
                this.feed_applied(read, metas, ctx);
            }),
        );
    }

    fn feed_applied(
        &mut self,
        read: FeedRead,
        metas: Vec<(String, PostMeta)>,
        ctx: &mut Context<Self>,
    ) {
        for (id, meta) in metas {
            self.cascades.remember_post(&id, meta);
        }
        self.cascades.apply(&read.rows);
        self.cursor = Some(read.upper);
        self.polling = None;
        if read.more {
            ctx.run_later(Duration::ZERO, |this, ctx| this.poll(ctx));
        }
    }

    /// Looks up the metadata of cascades whose post was not committed here (or not yet).
    pub(super) fn look_up_meta(&mut self, ctx: &mut Context<Self>) {
        if self.looking_up {
            return;
        }
        let ids = self.cascades.posts_to_look_up(META_LOOKUPS_PER_TICK);
        if ids.is_empty() {
            return;
        }
        self.looking_up = true;
        let pool = self.pool.clone();
        ctx.spawn(
            wrap_future::<_, Self>(async move { load_meta(&pool, &ids).await }).map(
                |result, this, _| {
                    this.looking_up = false;
                    match result {
                        Ok(found) => this.cascades.found_meta(found),
                        Err(e) => {
                            metrics::counter!(names::VIRALITY_ERRORS, "operation" => "lookup")
                                .increment(1);
                            tracing::debug!(error = %format_args!("{e:#}"), "post lookup failed");
                        }
                    }
                },
            ),
        );
    }

    /// Records the shares so far of the cascades still growing, then the cascades finished
    /// since the last pass, in their authors' track records, which reach forecasts read. The
    /// finished pass comes second, so a cascade that finishes meanwhile ends at its final size.
    pub(super) fn record_authors(&mut self, ctx: &mut Context<Self>) {
        // A slow pass is not joined by the next one; writes it may have missed get theirs.
        if self.recording_authors {
            return;
        }
        self.recording_authors = true;
        self.records_behind = false;
        let pool = self.pool.clone();
        let trust = Trust::new(&self.settings.ingest.producer_trust);
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let mut client = pool.get().await?;
                let growing = record_growing_cascades(&client, trust.pairs()).await?;
                let mut finished = 0;
                // A backlog (a first start on a large store) is read in bounded passes.
                for _ in 0..10 {
                    let n = record_finished_cascades(&mut client, trust.pairs()).await?;
                    finished += n;
                    if n < RECORD_BATCH {
                        break;
                    }
                }
                anyhow::Ok((growing, finished))
            })
            .map(|result, this, ctx| {
                this.recording_authors = false;
                if this.records_behind {
                    this.record_authors_soon(ctx);
                }
                match result {
                    Ok((growing, finished)) => {
                        metrics::counter!(names::FORECAST_RECORDED_CASCADES, "status" => "growing")
                            .increment(growing as u64);
                        metrics::counter!(names::FORECAST_RECORDED_CASCADES, "status" => "finished")
                            .increment(finished as u64);
                    }
                    Err(e) => {
                        metrics::counter!(names::VIRALITY_ERRORS, "operation" => "author_records")
                            .increment(1);
                        pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "recording authors' cascades failed");
                    }
                }
            }),
        );
    }

    /// Runs a track-record pass `author_records_settle_ms` from now, unless one is due
    /// already: while writes go on, one pass every `author_records_settle_ms` (not one per
    /// write), and one after the last.
    pub(super) fn record_authors_soon(&mut self, ctx: &mut Context<Self>) {
        let settle = self.cfg().author_records_settle_ms;
        if settle == 0 || self.records_due {
            return;
        }
        self.records_due = true;
        ctx.run_later(std::time::Duration::from_millis(settle), |this, ctx| {
            this.records_due = false;
            if this.ready && this.records_behind {
                this.record_authors(ctx);
            }
        });
    }

    /// Refits the reach forecast on the finished cascades of every platform with enough of
    /// them (`every`), or only of those never refitted and not found without a model since the
    /// last pass over every platform; a refit that ranks them better than the shipped model is
    /// what forecasts there use next. Returns whether the pass started (not while another runs).
    pub(super) fn refit_forecasts(&mut self, ctx: &mut Context<Self>, every: bool) -> bool {
        if self.refitting_forecasts {
            return false;
        }
        self.refitting_forecasts = true;
        let pool = self.pool.clone();
        let min = self.cfg().forecast_refit_min_cascades;
        let scope = if every {
            RefitScope::Every
        } else {
            RefitScope::NeverFitted {
                except: self.without_model.clone(),
            }
        };
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let mut client = pool.get().await?;
                refit_platforms(&mut client, min, &scope).await
            })
            .map(move |result, this, _| {
                this.refitting_forecasts = false;
                match result {
                    Ok(pass) if every => this.without_model = pass.without_model,
                    Ok(pass) => this.without_model.extend(pass.without_model),
                    Err(e) => {
                        metrics::counter!(names::VIRALITY_ERRORS, "operation" => "forecast_refit")
                            .increment(1);
                        pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "refitting the reach forecast failed");
                    }
                }
            }),
        );
        true
    }

    pub(super) fn refresh_thresholds(&mut self, ctx: &mut Context<Self>) {
        let pool = self.pool.clone();
        let (quantile, min_history) = (
            self.cfg().threshold_quantile,
            self.cfg().threshold_min_history,
        );
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let client = pool.get().await?;
                learned_thresholds(&client, quantile, min_history).await
            })
            .map(move |result: anyhow::Result<_>, this, _| match result {
                Ok(thresholds) => {
                    if this.cascades.set_thresholds(thresholds) {
                        tracing::info!(
                            thresholds = ?this.cascades.thresholds(),
                            "virality thresholds learned from history"
                        );
                    }
                }
                Err(e) => tracing::debug!(error = %format_args!("{e:#}"), "learning virality thresholds failed"),
            }),
        );
    }
}

/// Finished cascades to take up again, with their engagements before the feed position.
#[derive(Default)]
struct Revived {
    cascades: Vec<StoredCascade>,
    engagements: Vec<FeedRow>,
}

/// The finished cascades among `ids` engaged again within `window_secs` of their last
/// engagement, and what they held.
async fn revivable(
    pool: &Pool,
    ids: &[String],
    window_secs: u64,
    cursor: u64,
    bounds: RebuildBounds,
) -> anyhow::Result<Revived> {
    let client = pool.get().await?;
    let cascades = finished_cascades(&client, ids, window_secs as f64).await?;
    if cascades.is_empty() {
        return Ok(Revived::default());
    }
    let found: Vec<String> = cascades.iter().map(|c| c.post_id.clone()).collect();
    let engagements = engagements_before(&client, &found, cursor, bounds).await?;
    Ok(Revived {
        cascades,
        engagements,
    })
}

/// What a refit pass did.
#[derive(Debug, Default)]
pub struct RefitPass {
    /// Platforms whose refit ranks their cascades better than the shipped model.
    pub adopted: usize,
    /// Platforms whose cascades gave no model (all of one size).
    pub without_model: Vec<String>,
}

/// One refit pass: every platform in `scope` with at least `min` finished cascades (50 at the
/// least) is refitted on a blocking thread and the outcome stored, adopted or not.
pub async fn refit_platforms(
    client: &mut tokio_postgres::Client,
    min: u64,
    scope: &RefitScope,
) -> anyhow::Result<RefitPass> {
    let started = std::time::Instant::now();
    let min = i64::try_from(min.max(50)).unwrap_or(i64::MAX);
    let platforms = platforms_to_refit(client, min, scope).await?;
    let mut pass = RefitPass::default();
    // The check between periodic passes usually finds nothing: it is no pass to time.
    if platforms.is_empty() && *scope != RefitScope::Every {
        return Ok(pass);
    }
    for platform in platforms {
        let posts = finished_posts(client, &platform).await?;
        let name = platform.clone();
        let refit = tokio::task::spawn_blocking(move || {
            forecast_fit::refit(&name, &posts, ForecastModel::built_in())
        })
        .await?;
        let Some(refit) = refit else {
            pass.without_model.push(platform);
            continue;
        };
        let outcome = if refit.better() { "adopted" } else { "kept" };
        pass.adopted += usize::from(refit.better());
        metrics::counter!(names::FORECAST_REFITS, "outcome" => outcome).increment(1);
        tracing::info!(
            platform = %platform,
            cascades = refit.cascades,
            spearman = refit.spearman,
            shipped_spearman = refit.replaced_spearman,
            producers = ?refit.producers,
            outcome,
            "reach forecast refitted"
        );
        save_refit(client, &platform, &refit).await?;
    }
    metrics::histogram!(names::FORECAST_REFIT_SECONDS).record(started.elapsed().as_secs_f64());
    Ok(pass)
}

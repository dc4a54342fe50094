//! Taking the tracker lock, rebuilding the cascades from PostgreSQL when this process takes
//! over, and giving the tracker up when its connection is lost or the process shuts down.

use std::time::Duration;

use actix::{fut::wrap_future, ActorFutureExt, AsyncContext, Context};

use super::cascades::rebuild_bounds;
use super::ViralityTracker;
use crate::config::Settings;
use crate::db::lock::{try_advisory_lock, Conn, PgSession};
use crate::db::virality::{
    active_cascades, engagements_before, finish_quiet_cascades, forget_foreign_tx, horizon,
    learned_thresholds, stored_feed_position, FeedRow, StoredCascade,
};
use crate::telemetry::names;

/// The advisory lock (per database) whose holder runs the tracker.
pub const TRACKER_LOCK: i64 = 0x7075_6c73_6576_6972;
/// Posts of the batch engagements are loaded for at once during a rebuild.
const REBUILD_CHUNK: usize = 500;

impl ViralityTracker {
    /// Counts a failed operation on the tracking connection; gives the tracker up when the
    /// connection is gone (the lock went with it, another process may hold it already).
    pub(super) fn on_leader_error(&mut self, operation: &'static str, e: &anyhow::Error) {
        metrics::counter!(names::VIRALITY_ERRORS, "operation" => operation).increment(1);
        if self.leader.as_ref().is_some_and(PgSession::is_closed) {
            self.step_down("its PostgreSQL connection was lost");
        } else {
            pulse_core::warn_repeated!(error = %format_args!("{e:#}"), operation, "virality tracker operation failed; retrying");
        }
    }

    /// Tries to take the tracker lock (standing by when another process holds it).
    pub(super) fn try_take_over(&mut self, ctx: &mut Context<Self>) {
        if self.retired || self.leader.is_some() || self.acquiring {
            return;
        }
        self.acquiring = true;
        let standby = self.standby.take().filter(|s| !s.is_closed());
        let url = self.settings.database.url.clone();
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let session = match standby {
                    Some(s) => s,
                    None => PgSession::open(&url).await?,
                };
                let locked = try_advisory_lock(&session.client, TRACKER_LOCK).await?;
                anyhow::Ok((session, locked))
            })
            .map(|result, this, ctx| {
                this.acquiring = false;
                match result {
                    Ok((session, true)) if !this.retired => this.lead(session, ctx),
                    // Shutting down meanwhile: dropping the session releases the lock.
                    Ok((_, true)) => {}
                    Ok((session, false)) => this.standby = Some(session),
                    Err(e) => {
                        tracing::debug!(error = %format_args!("{e:#}"), "cannot try the virality tracker lock now")
                    }
                }
            }),
        );
    }

    /// Becomes the tracking process: rebuilds the active cascades, then reads the feed.
    fn lead(&mut self, session: PgSession, ctx: &mut Context<Self>) {
        self.epoch += 1;
        self.leader = Some(session);
        self.standby = None;
        metrics::gauge!(names::VIRALITY_LEADER).set(1.0);
        metrics::counter!(names::VIRALITY_TAKEOVERS).increment(1);
        tracing::info!("this process now runs the virality tracker; rebuilding its cascades");
        self.rebuild(ctx);
    }

    /// Stops tracking and forgets every cascade; dropping the connection releases the lock,
    /// and the process that takes over rebuilds from what was committed.
    pub(super) fn step_down(&mut self, why: &str) {
        if self.leader.take().is_some() {
            if self.retired {
                tracing::info!(why, "virality tracker handed over");
            } else {
                tracing::warn!(
                    why,
                    "virality tracker given up; another process takes it over"
                );
            }
        }
        metrics::gauge!(names::VIRALITY_LEADER).set(0.0);
        self.epoch += 1;
        self.ready = false;
        self.cursor = None;
        self.persisted_cursor = None;
        self.polling = None;
        self.cascades.clear();
        metrics::gauge!(names::VIRALITY_CASCADES).set(0.0);
    }

    fn rebuild(&mut self, ctx: &mut Context<Self>) {
        let Some(session) = &self.leader else {
            return;
        };
        let conn = session.client.clone();
        let settings = self.settings.clone();
        let epoch = self.epoch;
        ctx.spawn(
            wrap_future::<_, Self>(async move { load_state(&conn, &settings).await }).map(
                move |result, this, ctx| {
                    if this.epoch != epoch {
                        return;
                    }
                    match result {
                        Ok(rebuilt) => {
                            this.cascades.restore(rebuilt.active, &rebuilt.engagements);
                            this.cascades.set_thresholds(rebuilt.thresholds);
                            let n = this.cascades.len();
                            this.cursor = Some(rebuilt.cursor);
                            this.persisted_cursor = rebuilt.stored_cursor;
                            this.ready = true;
                            tracing::info!(
                                cascades = n,
                                position = rebuilt.cursor,
                                "virality state rebuilt from PostgreSQL; reading committed engagements from there"
                            );
                            this.poll(ctx);
                        }
                        Err(e) => {
                            metrics::counter!(names::VIRALITY_ERRORS, "operation" => "rebuild")
                                .increment(1);
                            if this.leader.as_ref().is_some_and(PgSession::is_closed) {
                                this.step_down("its PostgreSQL connection was lost");
                                return;
                            }
                            pulse_core::warn_repeated!(error = %format_args!("{e:#}"), "rebuilding virality state failed; retrying");
                            ctx.run_later(Duration::from_secs(1), move |this, ctx| {
                                if this.epoch == epoch {
                                    this.rebuild(ctx);
                                }
                            });
                        }
                    }
                },
            ),
        );
    }
}

/// What a takeover starts from.
struct Rebuilt {
    active: Vec<StoredCascade>,
    /// The engagements of the active cascades before the position.
    engagements: Vec<FeedRow>,
    thresholds: crate::virality::thresholds::Learned,
    /// Where the feed resumes: the stored position, or the present on a first start.
    cursor: u64,
    /// The stored position, if any.
    stored_cursor: Option<u64>,
}

/// Finishes cascades that went quiet while no process tracked them, then rebuilds the
/// active ones from their engagements before the stored feed position (the ones after it
/// come through the feed).
async fn load_state(conn: &Conn, settings: &Settings) -> anyhow::Result<Rebuilt> {
    let v = &settings.virality;
    let client = conn.lock().await;
    let now_horizon = horizon(&client).await?;
    let stored = stored_feed_position(&client).await?;
    let cursor = match stored {
        Some(position) if position <= now_horizon => position,
        Some(position) => {
            // Transaction ids went back (the database was restored elsewhere): ids stored
            // with old rows mean nothing here. Those rows count for rebuilds only; the feed
            // starts from now.
            tracing::warn!(
                position,
                horizon = now_horizon,
                "stored virality feed position is ahead of this database's transactions; restarting the feed from now"
            );
            forget_foreign_tx(&client, now_horizon).await?;
            now_horizon
        }
        None => now_horizon,
    };
    finish_quiet_cascades(&client, v.inactive_expiry_secs as f64).await?;
    let limit = i64::try_from(v.max_cascades).unwrap_or(i64::MAX);
    let active = active_cascades(&client, limit).await?;
    let ids: Vec<String> = active.iter().map(|c| c.post_id.clone()).collect();
    let mut engagements = Vec::new();
    for chunk in ids.chunks(REBUILD_CHUNK) {
        engagements.extend(engagements_before(&client, chunk, cursor, rebuild_bounds(v)).await?);
    }
    let thresholds =
        learned_thresholds(&client, v.threshold_quantile, v.threshold_min_history).await?;
    Ok(Rebuilt {
        active,
        engagements,
        thresholds,
        cursor,
        stored_cursor: stored.filter(|p| *p == cursor),
    })
}

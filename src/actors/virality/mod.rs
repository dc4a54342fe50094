//! The virality tracker: follows every post's cascade from committed engagements, rescores
//! the cascades that changed every `virality.score_interval_ms`, writes their latest
//! prediction (and, when it moved, a history row) to PostgreSQL, and publishes
//! `virality:update` when a score moved by `virality.publish_step` or more.
//!
//! **One tracker per database.** A cascade must see every engagement of its post, whichever
//! process of the group committed it, and its rows must be written once. So one process at a
//! time runs the tracker: the one holding a PostgreSQL advisory lock, taken on a connection
//! of its own. The others stand by and try to take the lock every
//! `virality.takeover_interval_ms`; when the tracking process dies its connection closes, the
//! lock goes with it and a standing-by process takes over.
//!
//! **Fed from PostgreSQL.** The tracker reads committed engagements from the `engagements`
//! table by transaction id (`tx`, the inserting transaction's id): every
//! `virality.feed_interval_ms` it reads the rows of transactions between its position and the
//! oldest transaction still running (`pg_snapshot_xmin`), all of which have ended, so a row is
//! read exactly once, whichever process committed it and however commits interleave. Its
//! position is written in the same transaction as the cascades it accounts for, on the
//! connection that holds the lock: a process that lost the lock cannot write, and a process
//! that takes over rebuilds the active cascades from the engagements before that position and
//! reads the feed from it, so no engagement is lost or counted twice across a takeover.
//!
//! Memory is bounded: at most `virality.max_cascades` cascades and
//! `virality.max_total_shares` shares kept in all their trees (past either, the least recently
//! active are finished first), at most `virality.max_tracked_shares` shares per tree, and a
//! cascade without engagement for `virality.inactive_expiry_secs` is finished (its final
//! counts stay in `virality_cascades` as history for the thresholds).
//!
//! Predictions are made at each cascade's latest event time, so they are a function of the
//! events alone. Every input is checked; nothing a producer sends can make this actor panic.
//!
//! The state itself (cascades, scoring, what waits to be written) is in `cascades`; taking
//! and giving up the lock in `leadership`; reading the feed and post metadata in `feed`.

mod cascades;
mod feed;
mod leadership;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient};
use deadpool_postgres::Pool;

use self::cascades::Cascades;
pub use self::cascades::PostVirality;
pub use self::feed::{refit_platforms, RefitPass};
pub use self::leadership::TRACKER_LOCK;
use super::messages::{Committed, Publish};
use crate::config::{Settings, ViralitySettings};
use crate::db::lock::PgSession;
use crate::db::virality::{WriteJob, WriteResult};
use crate::telemetry::names;

/// How often the thresholds are relearned from finished cascades.
const THRESHOLD_REFRESH: Duration = Duration::from_secs(60);

/// The virality tracker actor. Started in every process where `virality.enabled`; it tracks
/// only while it holds the tracker lock, and stands by otherwise.
pub struct ViralityTracker {
    settings: Arc<Settings>,
    pool: Pool,
    publisher: Option<Recipient<Publish>>,
    cascades: Cascades,
    /// The lock-holding connection while this process tracks.
    leader: Option<PgSession>,
    /// A connection kept while standing by, to try the lock on.
    standby: Option<PgSession>,
    /// A takeover attempt is under way.
    acquiring: bool,
    /// Shutting down: never take the tracker (again).
    retired: bool,
    /// Bumped at every takeover and step-down, so results of work started under an earlier
    /// leadership are ignored.
    epoch: u64,
    /// Rebuilt and reading the feed.
    ready: bool,
    /// Every committed engagement of a transaction below this id has been applied.
    cursor: Option<u64>,
    /// The position last written with the cascades.
    persisted_cursor: Option<u64>,
    /// The epoch of the feed read under way.
    polling: Option<u64>,
    /// Held by the write under way: writes never overlap, so rows and position are written
    /// in the order their state was taken.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    looking_up: bool,
    /// Whether a pass recording finished cascades in authors' track records is running.
    recording_authors: bool,
    /// Whether cascades were written since the last track-record pass started.
    records_behind: bool,
    /// Whether a pass is due `author_records_settle_ms` after a write.
    records_due: bool,
    /// Whether a pass refitting the reach forecast per platform is running.
    refitting_forecasts: bool,
    /// When this process last started a refit pass over every platform.
    last_refit: Option<std::time::Instant>,
    /// Platforms whose cascades gave no model in a refit since the last pass over every
    /// platform: not tried again before the next.
    without_model: Vec<String>,
    /// Names this process in `virality_feed.holder`.
    holder: String,
}

impl ViralityTracker {
    /// A tracker writing through `pool`, publishing updates to `publisher`.
    pub fn new(settings: Arc<Settings>, pool: Pool, publisher: Option<Recipient<Publish>>) -> Self {
        let holder = format!(
            "{}-{}",
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            std::process::id()
        );
        let cascades = Cascades::new(&settings.virality);
        ViralityTracker {
            settings,
            pool,
            publisher,
            cascades,
            leader: None,
            standby: None,
            acquiring: false,
            retired: false,
            epoch: 0,
            ready: false,
            cursor: None,
            persisted_cursor: None,
            polling: None,
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
            looking_up: false,
            recording_authors: false,
            records_behind: false,
            records_due: false,
            refitting_forecasts: false,
            last_refit: None,
            without_model: Vec::new(),
            holder,
        }
    }

    fn cfg(&self) -> &ViralitySettings {
        &self.settings.virality
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.leader.as_ref().is_some_and(PgSession::is_closed) {
            self.step_down("its PostgreSQL connection was lost");
        }
        if !self.ready {
            return;
        }
        self.cascades.expire();
        self.look_up_meta(ctx);
        self.score();
        self.write(ctx);
    }

    /// Rescores the changed cascades and sends their live updates.
    fn score(&mut self) {
        let updates = self.cascades.score_changed();
        let Some(publisher) = &self.publisher else {
            return;
        };
        metrics::counter!(names::VIRALITY_UPDATES).increment(updates.len() as u64);
        for update in updates {
            publisher.do_send(update);
        }
    }

    /// Takes what is to be written (rows, history, momentum) together with the feed position
    /// they account for; `None` when there is nothing new.
    fn take_write(&mut self) -> Option<WriteJob> {
        let conn = self.leader.as_ref()?.client.clone();
        if !self.cascades.has_pending() && self.cursor == self.persisted_cursor {
            return None;
        }
        let pending = self.cascades.take_pending();
        Some(WriteJob {
            conn,
            rows: pending.rows,
            history: pending.history,
            momentum: pending.momentum,
            cursor: self.cursor,
            holder: self.holder.clone(),
            epoch: self.epoch,
        })
    }

    /// What a write's outcome changes: the persisted position, or the rows queued again.
    fn written(
        &mut self,
        ctx: &mut Context<Self>,
        job_epoch: u64,
        cursor: Option<u64>,
        changed: bool,
        result: WriteResult,
    ) {
        if job_epoch != self.epoch {
            // Written under a leadership this process has since given up: whoever tracks
            // now rebuilt from what was committed.
            return;
        }
        match result {
            Ok(()) => {
                self.persisted_cursor = cursor;
                if changed {
                    self.records_behind = true;
                    self.record_authors_soon(ctx);
                }
            }
            Err((e, rows, history)) => {
                self.cascades.requeue(rows, history);
                self.on_leader_error("write", &e);
            }
        }
    }

    fn write(&mut self, ctx: &mut Context<Self>) {
        // One write at a time; the gate is taken here, before the state is, so writes reach
        // the database in the order their state was taken.
        let Ok(guard) = self.write_gate.clone().try_lock_owned() else {
            return;
        };
        let Some(job) = self.take_write() else {
            return;
        };
        let (epoch, cursor, changed) = (job.epoch, job.cursor, !job.rows.is_empty());
        let started = Instant::now();
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let result = job.run().await;
                drop(guard);
                result
            })
            .map(move |result, this, ctx| {
                metrics::histogram!(names::VIRALITY_TICK_SECONDS).record(started.elapsed());
                this.written(ctx, epoch, cursor, changed, result);
            }),
        );
    }
}

impl Actor for ViralityTracker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics::gauge!(names::VIRALITY_LEADER).set(0.0);
        self.try_take_over(ctx);
        let takeover = Duration::from_millis(self.cfg().takeover_interval_ms.max(10));
        ctx.run_interval(takeover, |this, ctx| this.try_take_over(ctx));
        let every = Duration::from_millis(self.cfg().score_interval_ms.max(10));
        ctx.run_interval(every, |this, ctx| this.tick(ctx));
        let feed = Duration::from_millis(self.cfg().feed_interval_ms.max(10));
        ctx.run_interval(feed, |this, ctx| this.poll(ctx));
        let records = Duration::from_millis(self.cfg().author_records_interval_ms.max(100));
        ctx.run_interval(records, |this, ctx| {
            if this.ready {
                this.record_authors(ctx);
            }
        });
        // Every platform is refitted within a minute of leading, then every interval; between,
        // as often as track records are recorded, a platform that has just come to enough
        // finished cascades gets its first refit instead of waiting for the next interval.
        let refit = Duration::from_secs(self.cfg().forecast_refit_interval_secs);
        if !refit.is_zero() {
            let check = refit.min(records).min(Duration::from_secs(60));
            ctx.run_interval(check, move |this, ctx| {
                if !this.ready {
                    return;
                }
                let due = this.last_refit.is_none_or(|at| at.elapsed() >= refit);
                if this.refit_forecasts(ctx, due) && due {
                    this.last_refit = Some(std::time::Instant::now());
                }
            });
        }
        ctx.run_interval(THRESHOLD_REFRESH, |this, ctx| {
            if this.ready {
                this.refresh_thresholds(ctx);
            }
        });
    }
}

impl Handler<Committed> for ViralityTracker {
    type Result = ();

    /// Engagements come from the feed; a local batch only tells the metadata of its posts.
    fn handle(&mut self, msg: Committed, _: &mut Self::Context) {
        if self.leader.is_some() {
            self.cascades.remember_posts(&msg);
            self.cascades.finish_deleted(&msg.outcome.deleted_posts);
        }
    }
}

/// Rescores and writes everything now, then hands the tracker over: the lock is released so
/// another process takes over without waiting (shutdown). A standing-by process only stops
/// trying.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct FlushVirality;

impl Handler<FlushVirality> for ViralityTracker {
    type Result = actix::ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FlushVirality, _: &mut Self::Context) -> Self::Result {
        self.retired = true;
        self.standby = None;
        let gate = self.write_gate.clone();
        Box::pin(
            // After the write under way, if any, so that this one is the last.
            wrap_future::<_, Self>(gate.lock_owned())
                .then(|guard, this, _| {
                    if this.ready {
                        this.score();
                    }
                    let job = this.take_write();
                    wrap_future::<_, Self>(async move {
                        let outcome = match job {
                            Some(job) => Some((job.epoch, job.cursor, job.run().await)),
                            None => None,
                        };
                        drop(guard);
                        outcome
                    })
                })
                .map(|outcome, this, ctx| {
                    if let Some((epoch, cursor, result)) = outcome {
                        if let Err((e, _, _)) = &result {
                            tracing::warn!(error = %format_args!("{e:#}"), "writing virality state at shutdown failed");
                        }
                        // Shutting down: the next leader's passes record what this wrote.
                        this.written(ctx, epoch, cursor, false, result);
                    }
                    this.step_down("shutting down");
                }),
        )
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<super::messages::InjectFault> for ViralityTracker {
    type Result = ();

    fn handle(&mut self, _: super::messages::InjectFault, _: &mut Self::Context) {
        panic!("injected virality fault");
    }
}

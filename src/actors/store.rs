//! The store: writes each analysed batch with [`crate::db::batch`], counting what it wrote
//! and refused. The commit calls it directly (see [`Store`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use super::messages::{AnalyzedBatch, StoreError, StoreOutcome};
use crate::db::batch::{Batch, WriteOptions};
use crate::db::rollup_keys::KeyAdmission;
use crate::models::producer::Trust;
use crate::telemetry::names;

/// The store: holds nothing between batches, so it is a call on the commit path rather than
/// an actor behind a mailbox. A panic inside a write (a bug) is caught: the write is tried
/// once more, and a batch that fails twice is refused, which the commit then splits, so a
/// panic never takes the commit or the process down.
pub struct Store {
    pool: Pool,
    stream: String,
    high_churn: f32,
    admission: Arc<KeyAdmission>,
    trust: Arc<Trust>,
    /// Writes failing for want of the database since a write last succeeded.
    failing: Mutex<Option<Failing>>,
    /// Batches committed since the start: a batch that keeps failing while this grows fails
    /// for its own data, not for the database's.
    commits: AtomicU64,
    /// Makes the next write panic, to prove the panic is contained.
    #[cfg(feature = "fault-injection")]
    fault: std::sync::atomic::AtomicBool,
}

/// Writes that failed since the last one that succeeded.
#[derive(Debug)]
struct Failing {
    since: Instant,
    last: Instant,
    why: String,
}

/// How long writes must have kept failing before the store reports it: a deadlock or a
/// serialization failure passes on the retry, a full disk does not.
const FAILING_AFTER: Duration = Duration::from_secs(5);
/// How long the last failure is reported while nothing is written: entries that failed are
/// retried within it, so a database still refusing writes keeps the report fresh, and the
/// failures of a store that went idle do not last.
const FAILING_FOR: Duration = Duration::from_secs(60);

impl Store {
    /// A store writing through `pool`; `stream` qualifies engagement keys derived from entry
    /// ids; posts with churn risk at or above `high_churn` count as high-churn in rollups;
    /// `admission` decides which keys get rollups of their own; `trust` which producers may
    /// act for others' posts.
    pub fn new(
        pool: Pool,
        stream: String,
        high_churn: f32,
        admission: Arc<KeyAdmission>,
        trust: Arc<Trust>,
    ) -> Self {
        Self {
            pool,
            stream,
            high_churn,
            admission,
            trust,
            failing: Mutex::new(None),
            commits: AtomicU64::new(0),
            #[cfg(feature = "fault-injection")]
            fault: Default::default(),
        }
    }

    /// Why writes fail, when they have failed for want of the database for
    /// [`FAILING_AFTER`] without one succeeding, the last within [`FAILING_FOR`]: PostgreSQL
    /// may answer a ping and still refuse every write (a full disk, a read-only standby, no
    /// memory), which is what readiness must tell.
    pub fn write_failure(&self) -> Option<String> {
        let failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing
            .as_ref()
            .filter(|f| {
                f.last.duration_since(f.since) >= FAILING_AFTER && f.last.elapsed() < FAILING_FOR
            })
            .map(|f| f.why.clone())
    }

    /// Writes `batch` in one transaction and counts what it wrote and refused.
    pub async fn store(&self, batch: &AnalyzedBatch) -> Result<StoreOutcome, StoreError> {
        use futures::FutureExt;
        let started = Instant::now();
        let options = WriteOptions {
            stream: &self.stream,
            high_churn: self.high_churn,
            admission: &self.admission,
            trust: &self.trust,
        };
        // A transient fault passes on a second try; a batch that fails twice is refused, and
        // the commit splits it to isolate the entry at fault.
        let mut result = None;
        for _ in 0..2 {
            let written = std::panic::AssertUnwindSafe(async {
                #[cfg(feature = "fault-injection")]
                if self.fault.swap(false, Ordering::AcqRel) {
                    panic!("injected store fault");
                }
                write(&self.pool, &options, batch).await
            })
            .catch_unwind()
            .await;
            match written {
                Ok(written) => {
                    result = Some(written);
                    break;
                }
                Err(_) => {
                    tracing::error!(
                        posts = batch.posts.len(),
                        "the store panicked writing a batch"
                    );
                    metrics::counter!(names::STORE_ERRORS, "error_type" => "panicked").increment(1);
                }
            }
        }
        let result = result.unwrap_or_else(|| {
            Err(StoreError::Refused(
                "the store failed on this batch twice".into(),
            ))
        });
        match &result {
            Ok(outcome) => {
                *self.failing.lock().unwrap_or_else(PoisonError::into_inner) = None;
                self.commits.fetch_add(1, Ordering::AcqRel);
                metrics::histogram!(names::STORE_BATCH_SECONDS).record(started.elapsed());
                metrics::counter!(names::STORED_ROWS, "table" => "posts").increment(
                    (outcome.inserted_posts.len() + outcome.inserted_deleted_posts.len()) as u64,
                );
                metrics::counter!(names::STORED_ROWS, "table" => "engagements")
                    .increment(outcome.inserted_engagements);
                metrics::counter!(names::POSTS_DELETED)
                    .increment(outcome.deleted_posts.len() as u64);
                outcome.refused.count();
                if outcome.held_engagements > 0 {
                    metrics::counter!(names::ENGAGEMENTS_HELD).increment(outcome.held_engagements);
                }
            }
            Err(e) => {
                let kind = match e {
                    StoreError::Unavailable(why) | StoreError::Suspect(why) => {
                        let now = Instant::now();
                        let mut failing =
                            self.failing.lock().unwrap_or_else(PoisonError::into_inner);
                        let since = failing.as_ref().map_or(now, |f| f.since);
                        *failing = Some(Failing {
                            since,
                            last: now,
                            why: why.clone(),
                        });
                        if matches!(e, StoreError::Suspect(_)) {
                            "failed"
                        } else {
                            "unavailable"
                        }
                    }
                    StoreError::Refused(_) => "refused",
                };
                metrics::counter!(names::STORE_ERRORS, "error_type" => kind).increment(1);
            }
        }
        result
    }

    /// Batches committed since the start.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// Makes the next write panic.
    #[cfg(feature = "fault-injection")]
    pub fn inject_fault(&self) {
        self.fault.store(true, Ordering::Release);
    }
}

/// Writes `batch` on a connection of `pool`; the benchmark's batch-write figure runs the same.
pub async fn write(
    pool: &Pool,
    options: &WriteOptions<'_>,
    batch: &AnalyzedBatch,
) -> Result<StoreOutcome, StoreError> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let rows = Batch {
        posts: &batch.posts,
        engagements: &batch.engagements,
        deletions: &batch.deletions,
    };
    crate::db::batch::write(&mut client, options, &rows).await
}

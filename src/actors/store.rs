//! The store: writes each analysed batch with [`crate::db::batch`], counting what it wrote
//! and refused.

use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, Context, Handler, ResponseFuture};
use deadpool_postgres::Pool;

use super::messages::{StoreBatch, StoreError, StoreOutcome};
use crate::db::batch::{Batch, WriteOptions};
use crate::db::rollup_keys::KeyAdmission;
use crate::models::producer::Trust;
use crate::telemetry::names;

/// The PostgreSQL writer actor.
pub struct Store {
    pool: Pool,
    stream: String,
    high_churn: f32,
    admission: Arc<KeyAdmission>,
    trust: Arc<Trust>,
}

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
        }
    }
}

impl Actor for Store {
    type Context = Context<Self>;
}

impl Handler<StoreBatch> for Store {
    type Result = ResponseFuture<Result<StoreOutcome, StoreError>>;

    fn handle(&mut self, msg: StoreBatch, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        let stream = self.stream.clone();
        let high_churn = self.high_churn;
        let admission = self.admission.clone();
        let trust = self.trust.clone();
        Box::pin(async move {
            let started = Instant::now();
            let options = WriteOptions {
                stream: &stream,
                high_churn,
                admission: &admission,
                trust: &trust,
            };
            let result = write(&pool, &options, &msg.0).await;
            match &result {
                Ok(outcome) => {
                    metrics::histogram!(names::STORE_BATCH_SECONDS).record(started.elapsed());
                    metrics::counter!(names::STORED_ROWS, "table" => "posts").increment(
                        (outcome.inserted_posts.len() + outcome.inserted_deleted_posts.len())
                            as u64,
                    );
                    metrics::counter!(names::STORED_ROWS, "table" => "engagements")
                        .increment(outcome.inserted_engagements);
                    metrics::counter!(names::POSTS_DELETED)
                        .increment(outcome.deleted_posts.len() as u64);
                    outcome.refused.count();
                    if outcome.held_engagements > 0 {
                        metrics::counter!(names::ENGAGEMENTS_HELD)
                            .increment(outcome.held_engagements);
                    }
                }
                Err(e) => {
                    let kind = match e {
                        StoreError::Unavailable(_) => "unavailable",
                        StoreError::Refused(_) => "refused",
                    };
                    metrics::counter!(names::STORE_ERRORS, "error_type" => kind).increment(1);
                }
            }
            result
        })
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<super::messages::InjectFault> for Store {
    type Result = ();

    fn handle(&mut self, _: super::messages::InjectFault, _: &mut Self::Context) {
        panic!("injected store fault");
    }
}

/// Writes `batch` on a connection of `pool`; the benchmark's batch-write figure runs the same.
pub async fn write(
    pool: &Pool,
    options: &WriteOptions<'_>,
    batch: &super::messages::AnalyzedBatch,
) -> Result<StoreOutcome, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let rows = Batch {
        posts: &batch.posts,
        engagements: &batch.engagements,
        deletions: &batch.deletions,
    };
    crate::db::batch::write(&client, options, &rows).await
}

//! Sentiment calibrations as stored: the newest trained and the one in use (each with what it was
//! measured against), and the one row of state: which is in use, whether a better one is put in
//! use as it is trained, and the count of sentiment label changes that says when to train again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::{GenericClient, Transaction};
use utoipa::ToSchema;

/// Counts a sentiment label given or undone, in the label's transaction.
pub async fn count_change(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE sentiment_calibration_state SET changes = changes + 1",
        &[],
    )
    .await?;
    Ok(())
}

/// How long a training's lease lasts, from its taking or its last extension, before another
/// process may take it over: the trainer extends it while it trains ([`extend_training`]), so
/// it lapses only when the trainer stopped.
pub const LEASE_SECS: f64 = 120.0;

/// Whether sentiment labels changed since the last training and none began in the last `gap`;
/// if so, takes the training lease (one process trains at a time) and returns the count of
/// changes and the newest sentiment label. Labels given within the gap wait for the next
/// training, whether the last one recorded or failed.
pub async fn claim_training(
    client: &impl GenericClient,
    gap: std::time::Duration,
) -> Result<Option<(i64, i64)>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "UPDATE sentiment_calibration_state \
             SET training_until = now() + make_interval(secs => $1), training_started = now() \
             WHERE changes > trained_changes AND (training_until IS NULL OR training_until < now()) \
               AND (training_started IS NULL \
                    OR training_started <= now() - make_interval(secs => $2)) \
             RETURNING changes, \
                 COALESCE((SELECT max(id) FROM post_labels WHERE kind = 'sentiment'), 0)",
            &[&LEASE_SECS, &gap.as_secs_f64()],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Extends the training lease, while one is held, to [`LEASE_SECS`] from now; whether one was.
/// A training of thousands of labelled posts can outlast one lease, and another process taking
/// it over would start the same training.
pub async fn extend_training(client: &impl GenericClient) -> Result<bool, tokio_postgres::Error> {
    let extended = client
        .execute(
            "UPDATE sentiment_calibration_state \
             SET training_until = now() + make_interval(secs => $1) \
             WHERE training_until > now()",
            &[&LEASE_SECS],
        )
        .await?;
    Ok(extended > 0)
}

/// Gives the training lease back without recording (the training failed).
pub async fn release_training(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE sentiment_calibration_state SET training_until = NULL",
            &[],
        )
        .await?;
    Ok(())
}

/// A post with a sentiment label as training reads it.
pub struct LabelledPost {
    pub post_id: String,
    pub value: String,
    /// Whole: the shipped models read it again as they read it when it was stored; the
    /// adaptation's features read only its opening.
    pub text: String,
    pub lang: Option<String>,
}

/// The latest sentiment label (not undone) of each live post, the newest `limit` labels.
pub async fn labelled_posts(
    client: &impl GenericClient,
    limit: i64,
) -> Result<Vec<LabelledPost>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT l.post_id, l.value, p.text, p.lang \
         FROM (SELECT DISTINCT ON (post_id) post_id, id, value FROM post_labels \
               WHERE kind = 'sentiment' AND undone_at IS NULL ORDER BY post_id, id DESC) l \
         JOIN posts p ON p.id = l.post_id AND p.deleted_at IS NULL \
         ORDER BY l.id DESC LIMIT $1",
        &[&limit],
        |r| LabelledPost {
            post_id: r.get(0),
            value: r.get(1),
            text: r.get(2),
            lang: r.get(3),
        },
    )
    .await
}

/// What a training produced.
pub struct Trained<'a> {
    /// The count of label changes it saw.
    pub changes: i64,
    pub labels: i32,
    pub through_label: i64,
    pub macro_recall: f32,
    pub shipped: f32,
    pub better: bool,
    pub reason: &'a str,
    pub models: Vec<String>,
    pub adapters: Vec<u8>,
}

/// Calibrations kept: the newest, as many as the state lists, and the one in use however old.
/// Every training stored one with its adapters, and each sentiment label given or undone can be
/// followed by a training.
pub const KEPT_CALIBRATIONS: i64 = 20;

/// Records a training in `tx` and gives the lease back; a better one is put in use when the
/// state is automatic. The calibrations past the newest [`KEPT_CALIBRATIONS`], other than the
/// one in use, are deleted. Its id and whether it was put in use; `None` when another process
/// recorded a training of as many changes meanwhile (its lease had expired).
pub async fn record(
    tx: &Transaction<'_>,
    t: &Trained<'_>,
) -> Result<Option<(i64, bool)>, tokio_postgres::Error> {
    let trained: i64 = tx
        .query_one(
            "SELECT trained_changes FROM sentiment_calibration_state FOR UPDATE",
            &[],
        )
        .await?
        .get(0);
    if trained >= t.changes {
        return Ok(None);
    }
    let id: i64 = tx
        .query_one(
            "INSERT INTO sentiment_calibrations (labels, through_label, macro_recall, shipped, \
             better, reason, models, adapters) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &t.labels,
                &t.through_label,
                &t.macro_recall,
                &t.shipped,
                &t.better,
                &t.reason,
                &t.models,
                &t.adapters,
            ],
        )
        .await?
        .get(0);
    let used = tx
        .execute(
            "UPDATE sentiment_calibration_state SET active_id = $1, revision = revision + 1, \
             updated_at = now(), updated_by = 'training' WHERE automatic AND $2",
            &[&id, &t.better],
        )
        .await?
        > 0;
    tx.execute(
        "UPDATE sentiment_calibration_state SET trained_changes = $1, training_until = NULL",
        &[&t.changes],
    )
    .await?;
    // The state's row is held since the first statement: no choice of a calibration can name
    // one of these between the check and the delete (`choose` takes the row first too).
    tx.execute(
        "DELETE FROM sentiment_calibrations c \
         WHERE c.id < (SELECT min(k.id) FROM (SELECT id FROM sentiment_calibrations \
                       ORDER BY id DESC LIMIT $1) k) \
           AND NOT EXISTS (SELECT 1 FROM sentiment_calibration_state s WHERE s.active_id = c.id)",
        &[&KEPT_CALIBRATIONS],
    )
    .await?;
    Ok(Some((id, used)))
}

/// The calibration in use and the state's revision: (revision, id and adapters in use).
pub async fn active(
    client: &impl GenericClient,
) -> Result<(i64, Option<(i64, Vec<u8>)>), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT s.revision, c.id, c.adapters FROM sentiment_calibration_state s \
             LEFT JOIN sentiment_calibrations c ON c.id = s.active_id",
            &[],
        )
        .await?;
    let id: Option<i64> = row.get(1);
    Ok((row.get(0), id.map(|id| (id, row.get(2)))))
}

/// The revision of the calibration state alone, read every few seconds.
pub async fn revision(client: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT revision FROM sentiment_calibration_state", &[])
        .await?
        .get(0))
}

/// A calibration as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CalibrationRecord {
    pub id: i64,
    /// Sentiment labels it was trained and measured on.
    pub labels: i32,
    /// The newest label it saw.
    pub through_label: i64,
    /// Out-of-fold macro-recall on those labels.
    pub macro_recall: f32,
    /// The shipped models' macro-recall on the same labels.
    pub shipped: f32,
    /// Whether it beat the shipped models out of fold; only such a calibration can be put in use.
    pub better: bool,
    pub reason: String,
    /// The shipped models it adapts.
    pub models: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// The calibration state as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CalibrationState {
    /// The calibration in use; null: the shipped models as they are.
    pub active_id: Option<i64>,
    /// Whether each calibration that beats the shipped models is put in use as it is trained.
    pub automatic: bool,
    /// Sentiment label changes not trained on yet.
    pub pending_changes: i64,
    pub updated_at: DateTime<Utc>,
    /// Who last changed what is in use: `training`, or the key that chose.
    pub updated_by: Option<String>,
    /// The newest calibrations first (at most 20, all that are kept besides the one in use).
    pub calibrations: Vec<CalibrationRecord>,
}

/// The state with the newest calibrations.
pub async fn state(client: &impl GenericClient) -> Result<CalibrationState, tokio_postgres::Error> {
    let s = client
        .query_one(
            "SELECT active_id, automatic, changes - trained_changes, updated_at, updated_by \
             FROM sentiment_calibration_state",
            &[],
        )
        .await?;
    let calibrations = client
        .query(
            "SELECT id, labels, through_label, macro_recall, shipped, better, reason, models, \
             created_at FROM sentiment_calibrations ORDER BY id DESC LIMIT $1",
            &[&KEPT_CALIBRATIONS],
        )
        .await?
        .iter()
        .map(|r| CalibrationRecord {
            id: r.get(0),
            labels: r.get(1),
            through_label: r.get(2),
            macro_recall: r.get(3),
            shipped: r.get(4),
            better: r.get(5),
            reason: r.get(6),
            models: r.get(7),
            created_at: r.get(8),
        })
        .collect();
    Ok(CalibrationState {
        active_id: s.get(0),
        automatic: s.get(1),
        pending_changes: s.get(2),
        updated_at: s.get(3),
        updated_by: s.get(4),
        calibrations,
    })
}

/// Why a calibration cannot be put in use.
#[derive(Debug)]
pub enum Refused {
    Unknown,
    NotBetter,
}

/// Puts calibration `id` in use (none: the shipped models), by `who`; `automatic` says whether
/// training may replace it.
pub async fn choose(
    tx: &Transaction<'_>,
    id: Option<i64>,
    automatic: bool,
    who: &str,
) -> Result<Result<(), Refused>, tokio_postgres::Error> {
    // Held before the calibration is looked up, as a training's record holds it before
    // deleting old calibrations: the one chosen is not deleted between the two.
    tx.execute("SELECT 1 FROM sentiment_calibration_state FOR UPDATE", &[])
        .await?;
    if let Some(id) = id {
        let better: Option<bool> = tx
            .query_opt(
                "SELECT better FROM sentiment_calibrations WHERE id = $1",
                &[&id],
            )
            .await?
            .map(|r| r.get(0));
        match better {
            None => return Ok(Err(Refused::Unknown)),
            Some(false) => return Ok(Err(Refused::NotBetter)),
            Some(true) => {}
        }
    }
    tx.execute(
        "UPDATE sentiment_calibration_state SET active_id = $1, automatic = $2, \
         revision = revision + 1, updated_at = now(), updated_by = $3",
        &[&id, &automatic, &who],
    )
    .await?;
    Ok(Ok(()))
}

//! What the API reads of the virality tracker's tables (cascades, their prediction history,
//! momentum) and the feedback it records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, Row};
use utoipa::ToSchema;

use super::query::Conditions;
use crate::models::{Platform, SentimentLabel};
use crate::virality::cascade::Structure;
use crate::virality::dynamics::Dynamics;
use crate::virality::momentum::Rates;
use crate::virality::{viral_classification, Counts, Interval, Lineage, Virality};

const CASCADE_COLUMNS: &str = "post_id, platform, product, channel, city, country, sentiment, \
    hashtags, status, observed_at, created_at, shares, likes, comments, views, reach, depth, \
    breadth, structural_virality, velocity, acceleration, virality_score, virality_probability, \
    viral, predicted_final_shares, ci_lower, ci_upper, ci_level, threshold, dynamics, \
    model_name, model_version, params_hash, branching, updated_at";

/// A read that failed in the database or found a row this version cannot read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Corrupt(String),
}

/// Where a post's cascade stands: `active` and `finished` are tracked cascades, `scored` is
/// the answer of `POST /api/v1/score` (nothing tracked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CascadeStatus {
    Active,
    Finished,
    Scored,
}

/// A post's virality: what it is, where it was seen, and the model's reading of its cascade.
/// The same shape as the data of the live `virality:update` message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViralityView {
    pub post_id: String,
    #[schema(value_type = Option<Platform>)]
    pub platform: Option<String>,
    pub product: Option<String>,
    pub channel: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    #[schema(value_type = Option<SentimentLabel>)]
    pub sentiment: Option<String>,
    /// Lowercase hashtags of the post, with their `#`.
    pub hashtags: Vec<String>,
    #[schema(value_type = CascadeStatus)]
    pub status: String,
    #[serde(flatten)]
    pub virality: Virality,
    /// When the stored cascade last changed (absent from scoring answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The API's virality object of a stored cascade (the shape of `virality:update`'s data).
fn cascade_view(row: &Row) -> Result<ViralityView, ReadError> {
    let observed: DateTime<Utc> = row.get("observed_at");
    let created: DateTime<Utc> = row.get("created_at");
    let age = (observed - created).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let dynamics: String = row.get("dynamics");
    let virality_dynamics = Dynamics::parse(&dynamics)
        .ok_or_else(|| ReadError::Corrupt(format!("stored dynamics `{dynamics}` is unknown")))?;
    Ok(ViralityView {
        post_id: row.get("post_id"),
        platform: row.get("platform"),
        product: row.get("product"),
        channel: row.get("channel"),
        city: row.get("city"),
        country: row.get("country"),
        sentiment: row.get("sentiment"),
        hashtags: row.get("hashtags"),
        status: row.get("status"),
        virality: Virality {
            observed_at: observed,
            age_secs: age,
            counts: Counts {
                shares: unsigned(row.get("shares")),
                likes: unsigned(row.get("likes")),
                comments: unsigned(row.get("comments")),
                views: unsigned(row.get("views")),
            },
            reach: unsigned(row.get("reach")),
            structure: Structure {
                nodes: 0,
                depth: u32::try_from(row.get::<_, i32>("depth")).unwrap_or(0),
                breadth: unsigned(row.get("breadth")),
                structural_virality: row.get("structural_virality"),
            },
            momentum: Rates {
                velocity: row.get("velocity"),
                acceleration: row.get("acceleration"),
            },
            virality_score: row.get("virality_score"),
            virality_probability: row.get("virality_probability"),
            viral_classification: viral_classification(row.get("viral")),
            confidence_interval: Interval {
                lower: row.get("ci_lower"),
                upper: row.get("ci_upper"),
                level: row.get("ci_level"),
            },
            predicted_final_shares: row.get("predicted_final_shares"),
            threshold: row.get("threshold"),
            virality_dynamics,
            model_lineage: Lineage {
                name: row.get("model_name"),
                version: row.get("model_version"),
                params_hash: row.get("params_hash"),
            },
            branching: row.get("branching"),
        },
        updated_at: Some(row.get("updated_at")),
    })
}

/// The lower and upper bounds of a past prediction's interval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bounds {
    pub lower: f64,
    pub upper: f64,
}

/// One recorded prediction of a post's virality.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Prediction {
    pub recorded_at: DateTime<Utc>,
    pub observed_at: DateTime<Utc>,
    pub age_secs: f64,
    pub shares: i64,
    pub virality_score: f64,
    pub virality_probability: f64,
    /// `yes` or `no`.
    #[schema(pattern = "^(yes|no)$")]
    pub viral_classification: String,
    pub predicted_final_shares: f64,
    pub confidence_interval: Bounds,
    #[schema(value_type = Dynamics)]
    pub virality_dynamics: String,
    pub structural_virality: f64,
    pub momentum: Rates,
    pub params_hash: String,
}

/// The momentum of one product or hashtag.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MomentumItem {
    pub key: String,
    /// Engagements per minute over the momentum window.
    pub velocity: f64,
    /// Change of velocity from the window before, per minute.
    pub acceleration: f64,
    pub updated_at: DateTime<Utc>,
}

/// Cascades are shown only for posts that are stored and not deleted: engagements of a post
/// never stored (held, then dropped) or of a deleted one make no trending post.
const LIVE_POST: &str = "EXISTS (SELECT 1 FROM posts p \
    WHERE p.id = virality_cascades.post_id AND p.deleted_at IS NULL)";

/// The cascades matching `filter`, highest virality score first, at most `limit`.
pub async fn trending(
    client: &Client,
    mut filter: Conditions,
    limit: i64,
) -> Result<Vec<ViralityView>, ReadError> {
    filter.clause(LIVE_POST.to_string());
    let limit_param = filter.bind(limit);
    let sql = format!(
        "SELECT {CASCADE_COLUMNS} FROM virality_cascades {} \
         ORDER BY virality_score DESC, velocity DESC, post_id LIMIT {limit_param}",
        filter.where_sql()
    );
    let rows = client.query(&sql, &filter.params()).await?;
    rows.iter().map(cascade_view).collect()
}

/// The cascade of post `id`, if tracked.
pub async fn current(client: &Client, id: &str) -> Result<Option<ViralityView>, ReadError> {
    client
        .query_opt(
            &format!(
                "SELECT {CASCADE_COLUMNS} FROM virality_cascades WHERE post_id = $1 AND {LIVE_POST}"
            ),
            &[&id],
        )
        .await?
        .as_ref()
        .map(cascade_view)
        .transpose()
}

/// The `limit` newest recorded predictions of post `id`, oldest first.
pub async fn history(
    client: &Client,
    id: &str,
    limit: i64,
) -> Result<Vec<Prediction>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT * FROM (
             SELECT id, recorded_at, observed_at, age_secs, shares, virality_score,
                    virality_probability, viral, predicted_final_shares, ci_lower, ci_upper,
                    dynamics, structural_virality, velocity, acceleration, params_hash
             FROM virality_predictions WHERE post_id = $1 ORDER BY id DESC LIMIT $2) h
         ORDER BY id",
        &[&id, &limit],
        |r| Prediction {
            recorded_at: r.get("recorded_at"),
            observed_at: r.get("observed_at"),
            age_secs: r.get("age_secs"),
            shares: r.get("shares"),
            virality_score: r.get("virality_score"),
            virality_probability: r.get("virality_probability"),
            viral_classification: viral_classification(r.get("viral")).into(),
            predicted_final_shares: r.get("predicted_final_shares"),
            confidence_interval: Bounds {
                lower: r.get("ci_lower"),
                upper: r.get("ci_upper"),
            },
            virality_dynamics: r.get("dynamics"),
            structural_virality: r.get("structural_virality"),
            momentum: Rates {
                velocity: r.get("velocity"),
                acceleration: r.get("acceleration"),
            },
            params_hash: r.get("params_hash"),
        },
    )
    .await
}

/// The `limit` fastest keys of `dimension` (`product` or `hashtag`) among those updated in
/// the last `window_secs`. A row is written when its key moves, and once more at zero when the
/// tracker lets the key go; a row older than the window is of a key that has not moved in it,
/// whatever rates it last stored (the tracker that would have zeroed it may have stopped, or
/// handed over to one that never knew the key).
pub async fn momentum(
    client: &Client,
    dimension: &str,
    limit: i64,
    window_secs: f64,
) -> Result<Vec<MomentumItem>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT key, velocity, acceleration, updated_at FROM virality_momentum
         WHERE dimension = $1 AND updated_at > now() - make_interval(secs => $3)
         ORDER BY velocity DESC, key LIMIT $2",
        &[&dimension, &limit, &window_secs],
        |r| MomentumItem {
            key: r.get(0),
            velocity: r.get(1),
            acceleration: r.get(2),
            updated_at: r.get(3),
        },
    )
    .await
}

/// An outcome or corrected label reported for a post.
pub struct NewFeedback<'a> {
    pub post_id: &'a str,
    pub final_shares: Option<i64>,
    pub final_likes: Option<i64>,
    pub final_comments: Option<i64>,
    pub final_views: Option<i64>,
    pub sentiment_label: Option<&'a str>,
    pub note: Option<&'a str>,
}

/// A post's feedback as stored: one record per post, holding the latest value reported of
/// each field.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = FeedbackRecord)]
pub struct StoredFeedback {
    pub id: i64,
    pub post_id: String,
    pub final_shares: Option<i64>,
    pub final_likes: Option<i64>,
    pub final_comments: Option<i64>,
    pub final_views: Option<i64>,
    #[schema(value_type = Option<SentimentLabel>)]
    pub sentiment_label: Option<String>,
    pub note: Option<String>,
    /// When the post's first feedback came.
    pub created_at: DateTime<Utc>,
    /// When its latest came.
    pub updated_at: DateTime<Utc>,
}

/// Records feedback on a stored, live post, and answers the post's feedback as stored; `None`
/// when there is no such post. A post has one feedback row: a later report replaces each value
/// it gives and keeps those it leaves out (a corrected label does not drop the final shares
/// reported before), so reporting again and again on one post grows nothing.
pub async fn record_feedback(
    client: &Client,
    f: &NewFeedback<'_>,
) -> Result<Option<StoredFeedback>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "INSERT INTO virality_feedback AS v (post_id, final_shares, final_likes,
                 final_comments, final_views, sentiment_label, note)
             SELECT $1, $2, $3, $4, $5, $6, $7
             WHERE EXISTS (SELECT 1 FROM posts WHERE id = $1 AND deleted_at IS NULL)
             ON CONFLICT (post_id) DO UPDATE SET
                 final_shares = COALESCE(EXCLUDED.final_shares, v.final_shares),
                 final_likes = COALESCE(EXCLUDED.final_likes, v.final_likes),
                 final_comments = COALESCE(EXCLUDED.final_comments, v.final_comments),
                 final_views = COALESCE(EXCLUDED.final_views, v.final_views),
                 sentiment_label = COALESCE(EXCLUDED.sentiment_label, v.sentiment_label),
                 note = COALESCE(EXCLUDED.note, v.note),
                 updated_at = now()
             RETURNING id, post_id, final_shares, final_likes, final_comments, final_views,
                 sentiment_label, note, created_at, updated_at",
            &[
                &f.post_id,
                &f.final_shares,
                &f.final_likes,
                &f.final_comments,
                &f.final_views,
                &f.sentiment_label,
                &f.note,
            ],
        )
        .await?;
    Ok(row.map(|r| StoredFeedback {
        id: r.get(0),
        post_id: r.get(1),
        final_shares: r.get(2),
        final_likes: r.get(3),
        final_comments: r.get(4),
        final_views: r.get(5),
        sentiment_label: r.get(6),
        note: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
    }))
}

//! What a reach forecast reads from the store: authors' track records and the final shares of a
//! platform's recent finished cascades.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::db::virality::THRESHOLD_PRODUCERS;
use crate::models::{EmotionScores, Platform};
use crate::virality::forecast::{AuthorRecord, ForecastModel, RECENT_HALF_LIFE_S, RECORD_HISTORY};
use crate::virality::forecast_fit::{FinishedPost, Refit, HORIZON_S};

/// Finished cascades a percentile is taken among, the most recent first.
pub const PERCENTILE_HISTORY: i64 = 10_000;
/// Rows written this recently are left for the next pass: a row's `updated_at` is its
/// transaction's start, so one committing late could otherwise land behind a position already
/// passed and never be read.
pub const SETTLE_SECS: f64 = 5.0;
/// Finished cascades recorded in one pass (the next pass goes on from there).
pub const RECORD_BATCH: i64 = 10_000;

/// Merges the cascades of a statement's `done` CTE (post_id, shares, platform, author_id, at,
/// producer) into their authors' track records, keeping each author's most recent posts
/// (`$history` of them): the one computation both recording passes share. A cascade is keyed by
/// its post, so recording it again replaces its size instead of adding it. A record belongs to
/// the producer of the first post recorded in it (of a new author, the earliest posted); another
/// producer's cascades join it only where the `actor=owner` pairs of `$trust` let that producer
/// act for the owner, so a producer posting under someone else's author id cannot move their
/// record. A record with no producer (kept from before producers were recorded, its posts
/// gone) goes to the next one recorded in it. Ends with `admitted`, the cascades merged.
fn merge_into_records(history: &str, trust: &str) -> String {
    format!(
        "owners AS (
             SELECT DISTINCT ON (d.platform, d.author_id) d.platform, d.author_id,
                    coalesce(r.producer, d.producer) AS owner
             FROM done d
             LEFT JOIN author_records r
                 ON r.platform = d.platform AND r.author_id = d.author_id
             ORDER BY d.platform, d.author_id, d.at, d.post_id),
         admitted AS (
             SELECT d.post_id, d.shares, d.platform, d.author_id, d.at, o.owner
             FROM done d JOIN owners o USING (platform, author_id)
             WHERE may_act(d.producer, o.owner, {trust})),
         grouped AS (
             SELECT platform, author_id, min(owner) AS owner,
                    jsonb_object_agg(post_id, jsonb_build_array(shares, at)) AS finals
             FROM (SELECT *, row_number() OVER (PARTITION BY platform, author_id
                                                ORDER BY at DESC, post_id DESC) AS k
                   FROM admitted) d
             WHERE k <= {history}
             GROUP BY platform, author_id),
         written AS (
             INSERT INTO author_records AS r (platform, author_id, producer, finals, updated_at)
             SELECT platform, author_id, owner, finals, now() FROM grouped
             ON CONFLICT (platform, author_id) DO UPDATE SET
                 finals = (SELECT jsonb_object_agg(key, value) FROM (
                               SELECT key, value FROM jsonb_each(r.finals || EXCLUDED.finals)
                               ORDER BY (value->>1)::float8 DESC, key DESC
                               LIMIT {history}) kept),
                 producer = coalesce(r.producer, EXCLUDED.producer),
                 updated_at = now()
             RETURNING 1)"
    )
}

/// Records the finished cascades not recorded yet in their authors' track records, at most
/// [`RECORD_BATCH`] of them, keeping each author's [`RECORD_HISTORY`] most recent posts; returns
/// how many it read. Safe to repeat: recording a cascade again (or after it finished a second
/// time) replaces its size. `trust` holds the `actor=owner` pairs of `ingest.producer_trust`.
/// The virality tracker's leader runs it, so one process at a time.
pub async fn record_finished_cascades(
    client: &mut tokio_postgres::Client,
    trust: &[String],
) -> Result<i64, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let position = tx
        .query_opt(
            "SELECT updated_at, post_id FROM author_records_position FOR UPDATE",
            &[],
        )
        .await?;
    let (after, after_id): (DateTime<Utc>, String) = match position {
        Some(row) => (row.get(0), row.get(1)),
        None => (DateTime::<Utc>::UNIX_EPOCH, String::new()),
    };
    let sql = format!(
        "WITH done AS (
             SELECT c.post_id, c.updated_at, c.shares, p.platform, p.author_id,
                    extract(epoch FROM p.created_at)::float8 AS at, p.producer
             FROM virality_cascades c
             JOIN posts p ON p.id = c.post_id
             WHERE c.status = 'finished' AND (c.updated_at, c.post_id) > ($1, $2)
               AND c.updated_at < now() - make_interval(secs => $5)
             ORDER BY c.updated_at, c.post_id
             LIMIT $3),
         {},
         last AS (SELECT updated_at, post_id FROM done
                  ORDER BY updated_at DESC, post_id DESC LIMIT 1)
         SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM written),
                (SELECT updated_at FROM last), (SELECT post_id FROM last)",
        merge_into_records("$4", "$6")
    );
    let row = tx
        .query_one(
            sql.as_str(),
            &[
                &after,
                &after_id,
                &RECORD_BATCH,
                &RECORD_HISTORY,
                &SETTLE_SECS,
                &trust,
            ],
        )
        .await?;
    let read: i64 = row.get(0);
    let last_at: Option<DateTime<Utc>> = row.get(2);
    let last_id: Option<String> = row.get(3);
    if let (Some(at), Some(id)) = (last_at, last_id) {
        tx.execute(
            "INSERT INTO author_records_position (singleton, updated_at, post_id)
             VALUES (true, $1, $2)
             ON CONFLICT (singleton) DO UPDATE SET updated_at = $1, post_id = $2",
            &[&at, &id],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(read)
}

/// Records the shares so far of the [`RECORD_BATCH`] most recently active cascades still
/// growing, where their authors' track records hold another figure for them (and may take
/// them, as [`record_finished_cascades`] says); returns how many it wrote. An author who posted
/// an hour ago is judged on what that post has gathered since,
/// not only on cascades finished days before: on Twitter15 the record ranks final sizes at
/// Spearman 0.27 with growing cascades in, 0.18 without. The finished pass later replaces each
/// with its final size. Reads go through the index of active cascades by last activity, so the
/// pass costs the same on a store of any size; under more than [`RECORD_BATCH`] cascades active
/// between passes, the quieter ones wait for a pass in which they are among the most recent.
pub async fn record_growing_cascades(
    client: &tokio_postgres::Client,
    trust: &[String],
) -> Result<i64, tokio_postgres::Error> {
    let sql = format!(
        "WITH done AS (
             SELECT c.post_id, c.shares, p.platform, p.author_id,
                    extract(epoch FROM p.created_at)::float8 AS at, p.producer
             FROM (SELECT post_id, shares FROM virality_cascades
                   WHERE status = 'active'
                   ORDER BY last_activity_at DESC LIMIT $1) c
             JOIN posts p ON p.id = c.post_id
             WHERE NOT EXISTS (
                 SELECT 1 FROM author_records r
                 WHERE r.platform = p.platform AND r.author_id = p.author_id
                   AND (r.finals -> c.post_id ->> 0)::float8 = c.shares)),
         {}
         SELECT count(*) FROM admitted",
        merge_into_records("$2", "$3")
    );
    let row = client
        .query_one(sql.as_str(), &[&RECORD_BATCH, &RECORD_HISTORY, &trust])
        .await?;
    Ok(row.get(0))
}

/// Each of `authors`' recorded posts on `platform`: (shares, Unix seconds it was posted), so a
/// forecast counts only those posted before its draft (a post already out, forecast as of its
/// own time, does not read itself).
pub async fn author_entries(
    client: &tokio_postgres::Client,
    platform: &str,
    authors: &[String],
) -> Result<HashMap<String, Vec<(u64, f64)>>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT r.author_id, f.value->>0, f.value->>1
             FROM author_records r, jsonb_each(r.finals) f
             WHERE r.platform = $1 AND r.author_id = ANY($2)",
            &[&platform, &authors],
        )
        .await?;
    let mut out: HashMap<String, Vec<(u64, f64)>> = HashMap::new();
    let number = |s: Option<String>| s.and_then(|s| s.parse::<f64>().ok());
    for row in rows {
        let shares = number(row.get(1)).unwrap_or(0.0).max(0.0);
        let posted = number(row.get(2)).unwrap_or(f64::NEG_INFINITY);
        out.entry(row.get(0))
            .or_default()
            .push((shares as u64, posted));
    }
    Ok(out)
}

/// `columns` of a platform's (the parameter `$platform`) `limit` most recently finished
/// cascades, newest first, through the index of recent finished cascades: the one definition
/// the percentiles and the check for one read.
fn recent_finished(columns: &str, platform: &str, limit: &str) -> String {
    format!(
        "SELECT {columns} FROM virality_cascades
         WHERE status = 'finished' AND platform = {platform}
         ORDER BY last_activity_at DESC LIMIT {limit}"
    )
}

/// What the store knows of the final sizes of a platform's finished cascades.
#[derive(Debug, Clone, Default)]
pub struct ShareHistory {
    /// Percentiles 1 to 99 of the final shares (empty with none).
    pub percentiles: Vec<f64>,
    /// How many cascades they are taken among.
    pub cascades: i64,
    /// Their mean ln(1 + final shares), the level forecasts on the platform are set to.
    pub mean_log: Option<f64>,
}

/// The final shares of `platform`'s [`PERCENTILE_HISTORY`] most recently finished cascades
/// (those of `product` among them, when given). The product filters after the limit, so a rare
/// or unknown product costs no more than the platform does.
pub async fn share_history(
    client: &tokio_postgres::Client,
    platform: &str,
    product: Option<&str>,
) -> Result<ShareHistory, tokio_postgres::Error> {
    let levels: Vec<f64> = (1..100).map(|p| f64::from(p) / 100.0).collect();
    let sql = format!(
        "SELECT count(*), percentile_disc($4::float8[]) WITHIN GROUP (ORDER BY h.shares),
             avg(ln(1 + greatest(h.shares, 0)::float8))
         FROM ({}) h
         WHERE $2::text IS NULL OR h.product = $2",
        recent_finished("shares, product", "$1", "$3")
    );
    let row = client
        .query_one(
            sql.as_str(),
            &[&platform, &product, &PERCENTILE_HISTORY, &levels],
        )
        .await?;
    let values: Option<Vec<i64>> = row.get(1);
    Ok(ShareHistory {
        percentiles: values
            .unwrap_or_default()
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        cascades: row.get(0),
        mean_log: row.get(2),
    })
}

/// Where `shares` falls among percentiles 1 to 99: the share of stored cascades below it, in
/// percent (0 to 100).
pub fn percentile_of(percentiles: &[f64], shares: f64) -> f64 {
    let below = percentiles.iter().filter(|&&p| p < shares).count();
    let equal = percentiles.iter().filter(|&&p| p == shares).count();
    (below as f64 + equal as f64 / 2.0) * 100.0 / (percentiles.len() as f64 + 1.0)
}

/// `post_id, shares, producer` of a platform's (`$platform`) `limit` most recently finished
/// cascades, shared out max-min fair between its producers (at most `producers` of them, the
/// first in name order, and the cascades whose post was not known when they were written, as
/// one more): each producer's most recent first, the k-th most recent of every producer before
/// any one's (k+1)-th, so one producer's flood of cascades takes only the room the others
/// leave. Each producer's are read through the index of its recent finished cascades, at most
/// `limit` of them.
fn fair_recent_finished(platform: &str, limit: &str, producers: &str) -> String {
    format!(
        "WITH RECURSIVE producers(producer, n) AS (
             (SELECT producer, 1::int8 FROM virality_cascades
              WHERE status = 'finished' AND platform = {platform} AND producer IS NOT NULL
              ORDER BY producer LIMIT 1)
             UNION ALL
             SELECT next.producer, pr.n + 1
             FROM producers pr CROSS JOIN LATERAL (
                 SELECT producer FROM virality_cascades
                 WHERE status = 'finished' AND platform = {platform} AND producer > pr.producer
                 ORDER BY producer LIMIT 1) next
             WHERE pr.n < {producers}),
         candidates AS (
             SELECT h.* FROM producers pr CROSS JOIN LATERAL (
                 SELECT post_id, shares, producer, last_activity_at,
                        row_number() OVER (ORDER BY last_activity_at DESC) AS k
                 FROM virality_cascades
                 WHERE status = 'finished' AND platform = {platform} AND producer = pr.producer
                 ORDER BY last_activity_at DESC LIMIT {limit}) h
             UNION ALL
             SELECT *, row_number() OVER (ORDER BY last_activity_at DESC)
             FROM (SELECT post_id, shares, producer, last_activity_at FROM virality_cascades
                   WHERE status = 'finished' AND platform = {platform} AND producer IS NULL
                   ORDER BY last_activity_at DESC LIMIT {limit}) unknown)
         SELECT post_id, shares, producer FROM candidates
         ORDER BY k, last_activity_at DESC, post_id LIMIT {limit}"
    )
}

/// Characters of a post a refit reads: enough for its length, links, hashtags and mentions as
/// a post of ordinary length has them, and a bound on what 10,000 posts hold in memory.
pub const REFIT_TEXT_CHARS: i32 = 2_000;

/// The posts of `platform`'s [`PERCENTILE_HISTORY`] most recently finished cascades, shared
/// out fairly between their producers ([`THRESHOLD_PRODUCERS`] at most), with what was known
/// of each when it went out: its analysis, its author's followers and the author's
/// recorded cascades posted before it, as the store had them then (summed in the database, so
/// the answer is one row per post however long the records): those posted at least
/// [`HORIZON_S`] before at their recorded size, those still growing at the shares of their
/// last prediction by then, as the live record holds them.
pub async fn finished_posts(
    client: &mut tokio_postgres::Client,
    platform: &str,
) -> Result<Vec<FinishedPost>, tokio_postgres::Error> {
    let tx = client.build_transaction().read_only(true).start().await?;
    // Its estimated cost sets off PostgreSQL's JIT compilation, which took longer (0.4 s)
    // than the statement without it on 10,000 posts.
    tx.batch_execute("SET LOCAL jit = off").await?;
    let sql = format!(
        "SELECT p.author_id, left(p.text, $3), p.author_followers,
             extract(epoch FROM p.created_at)::float8, p.sentiment_score, p.toxicity,
             p.emotions, c.shares, r.n, r.sum_log, r.max_log, r.recent_sum, r.recent_weight,
             coalesce(c.producer, p.producer)
         FROM ({}) c
         JOIN posts p ON p.id = c.post_id
         LEFT JOIN LATERAL (
             SELECT count(*) AS n, sum(f.y) AS sum_log, max(f.y) AS max_log,
                    sum(f.w * f.y) AS recent_sum, sum(f.w) AS recent_weight
             FROM author_records a,
                  LATERAL (SELECT e.key AS post_id,
                                  greatest((e.value->>0)::float8, 0) AS shares,
                                  (e.value->>1)::float8 AS posted
                           FROM jsonb_each(a.finals) e) g,
                  LATERAL (SELECT ln(1 + CASE
                               WHEN g.posted + $4 <= extract(epoch FROM p.created_at)
                                   THEN g.shares
                               ELSE coalesce((SELECT greatest(h.shares, 0)::float8
                                              FROM virality_predictions h
                                              WHERE h.post_id = g.post_id
                                                AND h.observed_at <= p.created_at
                                              ORDER BY h.id DESC LIMIT 1), 0)
                           END) AS y,
                           power(0.5::float8, greatest(extract(epoch FROM p.created_at)::float8 - g.posted, 0)
                                             / $5::float8) AS w
                           OFFSET 0) f
             WHERE a.platform = $1 AND a.author_id = p.author_id
               AND g.posted < extract(epoch FROM p.created_at)
               AND g.post_id <> p.id) r ON true",
        fair_recent_finished("$1", "$2", "$6")
    );
    let rows = tx
        .query(
            sql.as_str(),
            &[
                &platform,
                &PERCENTILE_HISTORY,
                &REFIT_TEXT_CHARS,
                &HORIZON_S,
                &RECENT_HALF_LIFE_S,
                &THRESHOLD_PRODUCERS,
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(rows
        .iter()
        .map(|row| {
            let emotions: EmotionScores = serde_json::from_value(row.get(6)).unwrap_or_default();
            let followers: i64 = row.get(2);
            let cascades: i64 = row.get::<_, Option<i64>>(8).unwrap_or(0);
            FinishedPost {
                author: row.get(0),
                text: row.get(1),
                followers: u64::try_from(followers).ok().filter(|f| *f > 0),
                at: row.get(3),
                record: AuthorRecord {
                    cascades: u64::try_from(cascades).unwrap_or(0),
                    sum_log: row.get::<_, Option<f64>>(9).unwrap_or(0.0),
                    max_log: row.get::<_, Option<f64>>(10).unwrap_or(0.0),
                    recent_sum: row.get::<_, Option<f64>>(11).unwrap_or(0.0),
                    recent_weight: row.get::<_, Option<f64>>(12).unwrap_or(0.0),
                },
                sentiment: f64::from(row.get::<_, f32>(4)),
                toxicity: f64::from(row.get::<_, f32>(5)),
                anger: f64::from(emotions.anger.get()),
                joy: f64::from(emotions.joy.get()),
                sadness: f64::from(emotions.sadness.get()),
                final_shares: u64::try_from(row.get::<_, Option<i64>>(7).unwrap_or(0)).unwrap_or(0),
                producer: row.get(13),
            }
        })
        .collect())
}

/// Which platforms a refit pass takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefitScope {
    /// Every platform with enough finished cascades (the periodic pass).
    Every,
    /// Only those never refitted, less the ones named (their cascades gave no model since the
    /// last periodic pass): a platform that has just come to enough cascades gets its model
    /// without waiting for the next periodic pass.
    NeverFitted { except: Vec<String> },
}

/// Platforms in `scope` with at least `min` finished cascades, each counted through its index
/// of recent finished cascades up to `min` only, so the check costs the same on a store of any
/// size.
pub async fn platforms_to_refit(
    client: &tokio_postgres::Client,
    min: i64,
    scope: &RefitScope,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let passed_over: Vec<String> = match scope {
        RefitScope::Every => Vec::new(),
        RefitScope::NeverFitted { except } => {
            let mut fitted: Vec<String> = client
                .query("SELECT platform FROM forecast_models", &[])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            fitted.extend(except.iter().cloned());
            fitted
        }
    };
    let mut out = Vec::new();
    let sql = format!(
        "SELECT count(*) FROM ({}) c",
        recent_finished("1", "$1", "$2")
    );
    for platform in Platform::ALL {
        if passed_over.iter().any(|f| f == platform.as_str()) {
            continue;
        }
        let row = client
            .query_one(sql.as_str(), &[&platform.as_str(), &min])
            .await?;
        if row.get::<_, i64>(0) >= min {
            out.push(platform.as_str().to_string());
        }
    }
    Ok(out)
}

/// Stores a platform's refit (replacing the one before), adopted or not.
pub async fn save_refit(
    client: &tokio_postgres::Client,
    platform: &str,
    refit: &Refit,
) -> Result<(), tokio_postgres::Error> {
    let model = serde_json::to_value(&refit.model).unwrap_or_default();
    let finite = |v: f64| v.is_finite().then_some(v);
    client
        .execute(
            "INSERT INTO forecast_models
                 (platform, model, adopted, cascades, spearman, replaced_spearman)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (platform) DO UPDATE SET model = EXCLUDED.model,
                 adopted = EXCLUDED.adopted, cascades = EXCLUDED.cascades,
                 spearman = EXCLUDED.spearman, replaced_spearman = EXCLUDED.replaced_spearman,
                 fitted_at = now()",
            &[
                &platform,
                &model,
                &refit.better(),
                &(refit.cascades as i64),
                &finite(refit.spearman),
                &finite(refit.replaced_spearman),
            ],
        )
        .await?;
    Ok(())
}

/// The adopted refitted models of `platforms`.
pub async fn platform_models(
    client: &tokio_postgres::Client,
    platforms: &[String],
) -> Result<HashMap<String, ForecastModel>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT platform, model FROM forecast_models WHERE adopted AND platform = ANY($1)",
            &[&platforms],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let model: ForecastModel = serde_json::from_value(r.get(1)).ok()?;
            // A model refitted before this version's features changed reads other inputs:
            // the shipped one serves until the next refit.
            model.reads_these_features().then(|| (r.get(0), model))
        })
        .collect())
}

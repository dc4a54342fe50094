//! Stories in PostgreSQL: what the story tracker found (written after each commit), and the
//! story views the API reads, with their mixes computed from the stories' posts.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, Transaction};
use utoipa::ToSchema;

use super::query::Conditions;
use crate::models::views::PostView;

/// A story as the tracker sees it after its latest placement.
#[derive(Debug, Clone)]
pub struct StoryRow {
    pub id: i64,
    pub label: String,
    pub terms: Vec<String>,
    /// The terms' weights in the story's centre, relative to the heaviest: announced to the
    /// group with the story, and read back by a process that starts.
    pub weights: Vec<f32>,
    pub born_at: DateTime<Utc>,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// Posts stored new in it since the last write (founders stored before it was born are
    /// counted by the write, as it moves them).
    pub added: i64,
    pub representatives: Vec<String>,
}

/// A post as the story tracker placed it: its id and the producer whose copy it was. Two
/// producers may send the same id; only the copy its owner stored is the stored post, so what
/// the tracker found of the other copy (refused by the store) must never move the stored one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlacedPost {
    pub id: String,
    pub producer: String,
}

/// What the placements and the stores changed in the stories since the last write.
#[derive(Debug, Clone, Default)]
pub struct StoryWrite {
    pub rows: Vec<StoryRow>,
    /// Posts stored before their story was born: `(story, posts)`.
    pub founders: Vec<(i64, Vec<PlacedPost>)>,
    /// Stories that founders had joined loosely and left for the story they founded.
    pub left: Vec<i64>,
    /// `(from, into)`: `from`'s posts are `into`'s now.
    pub merges: Vec<(i64, i64)>,
    pub faded: Vec<i64>,
    /// `(story, posts)`: posts stored new in a story this write carries no row of (its row
    /// went out before they were stored, or it is no longer live).
    pub grown: Vec<(i64, i64)>,
}

impl StoryWrite {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.founders.is_empty()
            && self.merges.is_empty()
            && self.faded.is_empty()
            && self.grown.is_empty()
    }

    /// Adds `later`'s changes after its own, so that applying the one write does what applying
    /// both in turn would: a story's later row replaces its earlier one and adds its count to
    /// it, and a story that faded and was seen again later is live.
    pub fn append(&mut self, later: StoryWrite) {
        // Only a row of the later write brings a faded story back: the earlier write's own
        // rows came before its fades.
        let seen_again: Vec<i64> = later.rows.iter().map(|r| r.id).collect();
        self.faded.retain(|id| !seen_again.contains(id));
        let mut rows: HashMap<i64, StoryRow> = self.rows.drain(..).map(|r| (r.id, r)).collect();
        for mut row in later.rows {
            if let Some(earlier) = rows.remove(&row.id) {
                row.added += earlier.added;
            }
            rows.insert(row.id, row);
        }
        self.rows = rows.into_values().collect();
        self.rows.sort_by_key(|r| r.id);
        self.grown.extend(later.grown);
        self.founders.extend(later.founders);
        self.left.extend(later.left);
        self.merges.extend(later.merges);
        self.faded.extend(later.faded);
    }

    /// Every story the write updates: those of its rows, the stories its founders join and
    /// leave, those it merges, fades or grows.
    fn stories(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.rows.iter().map(|r| r.id).collect();
        ids.extend(self.grown.iter().map(|&(id, _)| id));
        ids.extend(self.founders.iter().map(|&(id, _)| id));
        ids.extend(&self.left);
        ids.extend(self.merges.iter().flat_map(|&(from, into)| [from, into]));
        ids.extend(&self.faded);
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// A live story as stored: what a starting process needs to take it in.
#[derive(Debug, Clone)]
pub struct StoredCentre {
    pub id: i64,
    pub terms: Vec<String>,
    pub weights: Vec<f32>,
    pub born_at: DateTime<Utc>,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
}

/// The `limit` live stories with the latest posts, latest first.
pub async fn live_centres(
    client: &Client,
    limit: i64,
) -> Result<Vec<StoredCentre>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT id, terms, weights, born_at, first_at, last_at FROM stories
         WHERE status = 'live' ORDER BY last_at DESC, id LIMIT $1",
        &[&limit],
        |r| StoredCentre {
            id: r.get("id"),
            terms: r.get("terms"),
            weights: r.get("weights"),
            born_at: r.get("born_at"),
            first_at: r.get("first_at"),
            last_at: r.get("last_at"),
        },
    )
    .await
}

/// Applies story changes in one transaction; answers how many founders each story gained. A
/// story seen again after it faded (the same words) is live again and keeps its birth.
///
/// A story's size is what the rows add (posts stored new), plus the founders this write moves
/// into it, less those it moves out: founders and merges move only posts that are where the
/// write expects them, so applying them again changes nothing.
pub async fn apply(
    client: &mut Client,
    write: &StoryWrite,
) -> Result<HashMap<i64, i64>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // Every stored story the write updates is locked first, in id order, so two processes'
    // writes wait for each other instead of each holding a story the other needs next.
    tx.execute(
        "SELECT id FROM stories WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&write.stories()],
    )
    .await?;
    for row in &write.rows {
        tx.execute(
            "INSERT INTO stories AS s (id, label, terms, born_at, first_at, last_at, size, status, representatives, weights)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'live', $8, $9)
             ON CONFLICT (id) DO UPDATE SET
                label = EXCLUDED.label, terms = EXCLUDED.terms, weights = EXCLUDED.weights,
                first_at = LEAST(s.first_at, EXCLUDED.first_at),
                last_at = GREATEST(s.last_at, EXCLUDED.last_at),
                size = s.size + EXCLUDED.size,
                status = 'live', merged_into = NULL,
                representatives = EXCLUDED.representatives, updated_at = now()",
            &[
                &row.id,
                &row.label,
                &row.terms,
                &row.born_at,
                &row.first_at,
                &row.last_at,
                &row.added,
                &row.representatives,
                &row.weights,
            ],
        )
        .await?;
    }
    for (story, n) in &write.grown {
        tx.execute(ADD_TO_SIZE, &[story, n]).await?;
    }
    let mut joined: HashMap<i64, i64> = HashMap::new();
    for (story, posts) in &write.founders {
        let n = move_founders(&tx, *story, posts, &write.left).await?;
        if n > 0 {
            *joined.entry(*story).or_default() += n;
        }
    }
    for (from, into) in &write.merges {
        tx.execute(
            "UPDATE posts SET story_id = $2 WHERE story_id = $1",
            &[from, into],
        )
        .await?;
        tx.execute(
            "UPDATE stories SET size = size + COALESCE((SELECT size FROM stories WHERE id = $1), 0),
                first_at = LEAST(first_at, COALESCE((SELECT first_at FROM stories WHERE id = $1), first_at)),
                updated_at = now()
             WHERE id = $2",
            &[from, into],
        )
        .await?;
        tx.execute(
            "UPDATE stories SET status = 'merged', merged_into = $2, size = 0, updated_at = now() WHERE id = $1",
            &[from, into],
        )
        .await?;
    }
    if !write.faded.is_empty() {
        tx.execute(
            "UPDATE stories SET status = 'faded', updated_at = now() WHERE id = ANY($1) AND status = 'live'",
            &[&write.faded],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(joined)
}

/// Takes the posts `$1`, marked deleted earlier in the same transaction, out of their stories'
/// sizes, never below zero. Only posts the transaction marked are named (a post deleted before
/// is not marked again), and one stored in no story is in no size.
pub const TAKE_OUT_DELETED: &str = "
UPDATE stories AS s SET size = GREATEST(s.size - g.n, 0), updated_at = now()
FROM (SELECT story_id, count(*) AS n FROM posts
      WHERE id = ANY($1::text[]) AND story_id IS NOT NULL GROUP BY 1) AS g
WHERE s.id = g.story_id";

/// Adds `$2` posts to story `$1`'s size (takes them away when negative).
const ADD_TO_SIZE: &str =
    "UPDATE stories SET size = GREATEST(size + $2, 0), updated_at = now() WHERE id = $1";

/// Gives `story` to its founders stored before it was born that are in no story or in one
/// they `left`, and moves their counts with them; answers how many joined. A founder already in
/// the story (the write applied again), deleted, not stored (yet), or stored by another
/// producer than the one whose copy was placed joins nothing, so the sizes follow the posts'
/// rows and one producer's posts never follow another's text.
async fn move_founders(
    tx: &Transaction<'_>,
    story: i64,
    posts: &[PlacedPost],
    left: &[i64],
) -> Result<i64, tokio_postgres::Error> {
    let ids: Vec<&str> = posts.iter().map(|p| p.id.as_str()).collect();
    let producers: Vec<&str> = posts.iter().map(|p| p.producer.as_str()).collect();
    // Locked rows are read again as they are now, so a founder another process moved in the
    // meantime is not counted twice.
    let moved = tx
        .query(
            "WITH moved AS (
                SELECT s.id, s.story_id AS before FROM posts s
                WHERE s.id = ANY($2::text[]) AND s.deleted_at IS NULL
                  AND (s.id, s.producer) IN (
                      SELECT f.id, f.producer FROM UNNEST($2::text[], $4::text[]) AS f (id, producer))
                  AND (s.story_id IS NULL OR s.story_id = ANY($3))
                  AND s.story_id IS DISTINCT FROM $1
                FOR UPDATE OF s
             )
             UPDATE posts p SET story_id = $1 FROM moved WHERE p.id = moved.id
             RETURNING moved.before",
            &[&story, &ids, &left, &producers],
        )
        .await?;
    let mut departures: BTreeMap<i64, i64> = BTreeMap::new();
    for row in &moved {
        let before: Option<i64> = row.get(0);
        if let Some(before) = before {
            *departures.entry(before).or_default() += 1;
        }
    }
    let joined = moved.len() as i64;
    if joined > 0 {
        tx.execute(ADD_TO_SIZE, &[&story, &joined]).await?;
    }
    for (before, n) in departures {
        let gone = -n;
        tx.execute(ADD_TO_SIZE, &[&before, &gone]).await?;
    }
    Ok(joined)
}

/// A story in a listing.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StorySummary {
    pub id: i64,
    /// A few words that name it.
    pub label: String,
    /// Its heaviest terms, heaviest first.
    pub terms: Vec<String>,
    /// `live`, `faded` or `merged`.
    pub status: String,
    /// The story that holds this one's posts, when it was merged.
    pub merged_into: Option<i64>,
    /// When Pulse found it (event time of the post that gave birth to it).
    pub born_at: DateTime<Utc>,
    /// Its first and latest post.
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// Posts in it.
    pub size: i64,
    /// Posts in it written in the `window_secs` before its latest post.
    pub recent: i64,
}

/// Sort order of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoryOrder {
    /// Born most recently first.
    Newest,
    /// Most posts in the window before its latest post first.
    Growing,
}

/// A page of the story listing.
pub struct StorySelection {
    /// Equality filters on the stories' posts (`product`, `platform`, ...).
    pub filters: Vec<(&'static str, String)>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub status: Option<String>,
    pub order: StoryOrder,
    pub window_secs: i64,
    pub limit: i64,
}

const SUMMARY_COLUMNS: &str =
    "s.id, s.label, s.terms, s.status, s.merged_into, s.born_at, s.first_at, s.last_at, s.size";

fn summary(row: &tokio_postgres::Row) -> StorySummary {
    StorySummary {
        id: row.get("id"),
        label: row.get("label"),
        terms: row.get("terms"),
        status: row.get("status"),
        merged_into: row.get("merged_into"),
        born_at: row.get("born_at"),
        first_at: row.get("first_at"),
        last_at: row.get("last_at"),
        size: row.get("size"),
        recent: row.get("recent"),
    }
}

/// Stories of `selection`: those with a post in the time range (and matching the filters).
pub async fn list(
    client: &Client,
    selection: StorySelection,
) -> Result<Vec<StorySummary>, tokio_postgres::Error> {
    let mut conditions = Conditions::default();
    match &selection.status {
        Some(status) => conditions.push("s.status =", status.clone()),
        None => conditions.clause("s.status <> 'merged'".to_string()),
    }
    if let Some(from) = selection.from {
        conditions.push("s.last_at >=", from);
    }
    if let Some(to) = selection.to {
        conditions.push("s.first_at <", to);
    }
    if !selection.filters.is_empty() {
        let mut inner = Vec::new();
        for (column, value) in selection.filters {
            let at = conditions.bind(value);
            inner.push(super::query::holds("p", column, &at));
        }
        conditions.clause(format!(
            "EXISTS (SELECT 1 FROM posts p WHERE p.story_id = s.id AND p.deleted_at IS NULL \
             AND {})",
            inner.join(" AND ")
        ));
    }
    let window = conditions.bind(selection.window_secs as f64);
    let limit = conditions.bind(selection.limit);
    let order = match selection.order {
        StoryOrder::Newest => "s.born_at DESC, s.id",
        StoryOrder::Growing => "recent DESC, s.last_at DESC, s.id",
    };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS},
            (SELECT count(*) FROM posts p WHERE p.story_id = s.id AND p.deleted_at IS NULL
               AND p.created_at > s.last_at - make_interval(secs => {window})) AS recent
         FROM stories s {} ORDER BY {order} LIMIT {limit}",
        conditions.where_sql()
    );
    super::read_rows(client, &sql, &conditions.params(), summary).await
}

/// A share of a story's posts with one value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Share {
    pub value: String,
    pub posts: i64,
}

/// Posts of a story per time bucket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrowthBucket {
    pub at: DateTime<Utc>,
    pub posts: i64,
}

/// One story with what its posts say.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoryDetail {
    #[serde(flatten)]
    pub story: StorySummary,
    /// Posts by sentiment label, emotion, language, product and place (city or country),
    /// most first (at most ten values each).
    pub sentiment: Vec<Share>,
    pub emotions: Vec<Share>,
    pub languages: Vec<Share>,
    pub products: Vec<Share>,
    pub places: Vec<Share>,
    /// Posts per hour over its life (the latest 72 hours with posts).
    pub growth: Vec<GrowthBucket>,
    /// Up to three of its posts closest to its centre, never a deleted one.
    pub representatives: Vec<PostView>,
}

/// A story by id, with its mixes; `None` when there is no such story.
pub async fn detail(
    client: &Client,
    id: i64,
    window_secs: i64,
) -> Result<Option<StoryDetail>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, s.representatives,
            (SELECT count(*) FROM posts p WHERE p.story_id = s.id AND p.deleted_at IS NULL
               AND p.created_at > s.last_at - make_interval(secs => $2)) AS recent
         FROM stories s WHERE s.id = $1"
    );
    let Some(row) = client
        .query_opt(&sql, &[&id, &(window_secs as f64)])
        .await?
    else {
        return Ok(None);
    };
    let story = summary(&row);
    let wanted: Vec<String> = row.get("representatives");
    let shares = |column: &'static str| async move {
        let sql = format!(
            "SELECT {column} AS value, count(*) AS posts FROM posts
             WHERE story_id = $1 AND deleted_at IS NULL AND {column} IS NOT NULL
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
        );
        client.query(&sql, &[&id]).await.map(|rows| {
            rows.iter()
                .map(|r| Share {
                    value: r.get("value"),
                    posts: r.get("posts"),
                })
                .collect::<Vec<_>>()
        })
    };
    let sentiment = shares("sentiment_label").await?;
    let emotions = shares("emotion").await?;
    let languages = shares("lang").await?;
    let products = shares("product").await?;
    let places = shares("COALESCE(city, country)").await?;
    let growth = client
        .query(
            "SELECT date_trunc('hour', created_at, 'UTC') AS at, count(*) AS posts FROM posts
             WHERE story_id = $1 AND deleted_at IS NULL GROUP BY 1 ORDER BY 1 DESC LIMIT 72",
            &[&id],
        )
        .await?
        .iter()
        .rev()
        .map(|r| GrowthBucket {
            at: r.get("at"),
            posts: r.get("posts"),
        })
        .collect();
    let representatives = representatives(client, id, &wanted).await?;
    Ok(Some(StoryDetail {
        story,
        sentiment,
        emotions,
        languages,
        products,
        places,
        growth,
        representatives,
    }))
}

/// The tracker's closest posts that are still there, topped up with the story's earliest.
async fn representatives(
    client: &Client,
    id: i64,
    wanted: &[String],
) -> Result<Vec<PostView>, tokio_postgres::Error> {
    use super::posts::POSTS;
    let mut found = POSTS
        .rows(
            client,
            "WHERE id = ANY($1) AND story_id = $2 AND deleted_at IS NULL",
            &[&wanted, &id],
        )
        .await?;
    found.sort_by_key(|p| wanted.iter().position(|w| *w == p.id));
    found.truncate(3);
    if found.len() < 3 {
        let have: Vec<String> = found.iter().map(|p| p.id.clone()).collect();
        let more = POSTS
            .rows(
                client,
                "WHERE story_id = $1 AND deleted_at IS NULL AND NOT (id = ANY($2)) \
                 ORDER BY created_at, id LIMIT $3",
                &[&id, &have, &(3 - found.len() as i64)],
            )
            .await?;
        found.extend(more);
    }
    Ok(found)
}

/// A story a `new_story` or `story_surge` rule calls for, with its evidence.
pub struct StoryCandidate {
    /// The story's id, the alert's key.
    pub key: String,
    pub value: f64,
    pub threshold: f64,
    pub story: serde_json::Value,
    pub posts: serde_json::Value,
    pub terms: serde_json::Value,
}

/// The keys of the open alerts of `rule`, a `new_story` rule, whose story is still born in the
/// window from `from` with `min_volume` posts: no longer candidates (see
/// [`alert_candidates`]), their alerts hold while their story is new.
pub async fn still_new(
    client: &Client,
    rule: &crate::models::alerts::AlertRule,
    from: DateTime<Utc>,
) -> Result<Vec<String>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT a.key FROM alerts a JOIN stories s ON s.id::text = a.key
         WHERE a.rule_id = $1 AND a.status <> 'resolved' AND s.status <> 'merged'
           AND s.born_at >= $2 AND s.size >= $3",
        &[&rule.id, &from, &rule.min_volume],
        |r| r.get(0),
    )
    .await
}

/// Stories a story rule fires for at this evaluation: born in the window with `min_volume`
/// posts and never alerted on by the rule, the 50 largest (`new_story`), or with `threshold`
/// (and `min_volume`) posts written between `from` and `now` (`story_surge`). A rule with a
/// dimension and a key watches the stories with a post of it.
///
/// Posts dated ahead of the clock count in the window only once their time has come, as in
/// the rollup rules. A story's birth is not bounded so: the tracker dates it by the newest
/// post it has seen, so one post dated ahead would hold back the alert of every story born
/// after it until the clock caught up.
pub async fn alert_candidates(
    client: &Client,
    rule: &crate::models::alerts::AlertRule,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<StoryCandidate>, tokio_postgres::Error> {
    use crate::models::alerts::RuleKind;
    use crate::models::metrics::Dimension;
    let mut conditions = Conditions::default();
    conditions.clause("s.status <> 'merged'".to_string());
    let scoped = match (&rule.key, rule.dimension) {
        (Some(key), d) if d != Dimension::Overall => {
            let at = conditions.bind(key.clone());
            format!("AND {}", super::query::holds("p", d.post_column(), &at))
        }
        _ => String::new(),
    };
    let from_at = conditions.bind(from);
    let now_at = conditions.bind(now);
    let min_volume = conditions.bind(rule.min_volume);
    let sql = match rule.kind {
        RuleKind::NewStory => {
            // A story the rule alerted on, open or resolved, is never a candidate again, and
            // the largest come first: a producer that keeps founding stories cannot fill the
            // list ahead of one that many write about, neither with stories already alerted
            // on nor with stories barely at `min_volume`, however recently born.
            let rule_id = conditions.bind(rule.id);
            format!(
                "SELECT {SUMMARY_COLUMNS}, s.size::float8 AS value,
                    (SELECT count(*) FROM posts p WHERE p.story_id = s.id AND p.created_at >= {from_at}
                        AND p.created_at <= {now_at} AND p.deleted_at IS NULL) AS recent
                 FROM stories s {} AND s.born_at >= {from_at} AND s.size >= {min_volume}
                   AND EXISTS (SELECT 1 FROM posts p WHERE p.story_id = s.id
                       AND p.deleted_at IS NULL {scoped})
                   AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.rule_id = {rule_id}
                       AND a.key = s.id::text)
                 ORDER BY s.size DESC, s.born_at DESC, s.id LIMIT 50",
                conditions.where_sql()
            )
        }
        RuleKind::StorySurge => {
            let threshold = conditions.bind(rule.threshold);
            format!(
                "SELECT {SUMMARY_COLUMNS}, w.n::float8 AS value, w.n AS recent
                 FROM stories s JOIN (
                    SELECT p.story_id, count(*) AS n FROM posts p
                    WHERE p.story_id IS NOT NULL AND p.created_at >= {from_at} AND p.created_at <= {now_at}
                      AND p.deleted_at IS NULL {scoped}
                    GROUP BY 1
                 ) w ON w.story_id = s.id
                 {} AND w.n >= {min_volume} AND w.n::float8 >= {threshold}
                 ORDER BY w.n DESC LIMIT 50",
                conditions.where_sql()
            )
        }
        _ => return Ok(Vec::new()),
    };
    let rows = client.query(&sql, &conditions.params()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let story = summary(row);
        let posts = representatives(client, story.id, &[]).await?;
        let threshold = match rule.kind {
            RuleKind::NewStory => rule.min_volume as f64,
            _ => rule.threshold,
        };
        out.push(StoryCandidate {
            key: story.id.to_string(),
            value: row.get("value"),
            threshold,
            terms: serde_json::json!(story
                .terms
                .iter()
                .map(|t| serde_json::json!({"term": t, "posts": null}))
                .collect::<Vec<_>>()),
            posts: serde_json::json!(posts
                .iter()
                .map(|p| serde_json::json!({
                    "id": p.id, "platform": p.platform,
                    "text": crate::models::alerts::quoted_text(&p.text),
                    "sentiment": p.analysis.sentiment.label,
                    "sentiment_score": p.analysis.sentiment.score,
                    "churn_risk": p.analysis.churn_risk, "toxicity": p.analysis.toxicity,
                    "created_at": p.created_at,
                }))
                .collect::<Vec<_>>()),
            story: serde_json::to_value(&story).unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{StoryRow, StoryWrite};
    use chrono::Utc;

    fn row(id: i64) -> StoryRow {
        StoryRow {
            id,
            label: String::new(),
            terms: Vec::new(),
            weights: Vec::new(),
            born_at: Utc::now(),
            first_at: Utc::now(),
            last_at: Utc::now(),
            added: 1,
            representatives: Vec::new(),
        }
    }

    // A waiting write holding story 7's row and then its fade lost the fade when any other
    // write was folded in after it: the story stayed live with no tracker to fade it again.
    #[test]
    fn a_fade_stays_unless_a_later_write_sees_the_story_again() {
        let mut waiting = StoryWrite {
            rows: vec![row(7)],
            faded: vec![7],
            ..StoryWrite::default()
        };
        waiting.append(StoryWrite {
            rows: vec![row(8)],
            ..StoryWrite::default()
        });
        assert_eq!(waiting.faded, [7]);
        waiting.append(StoryWrite {
            rows: vec![row(7)],
            ..StoryWrite::default()
        });
        assert!(waiting.faded.is_empty(), "seen again later: live");
    }
}

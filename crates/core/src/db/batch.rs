//! The batch write: a batch's posts, engagements and deletions, their rollups and what they
//! change for the live stages, in one statement and one round trip. Everything commits
//! together or not at all, and every write is idempotent on its natural key, so a batch
//! delivered twice changes nothing the second time and rollups count each post once.
//!
//! The statement is written with named inputs (`{posts.id}`, `{trust}`): [`INPUTS`] gives each
//! its SQL type and its place among the parameters, and [`Columns::value`] the values, by the
//! same names.

use std::sync::LazyLock;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::rollup_keys::{KeyAdmission, PostKeys};
use super::rollups::{
    engagement_deltas, post_deltas, qualified as of, ADD_DELTAS, ENGAGEMENT_POST_COLUMNS,
    POST_DELTA_COLUMNS,
};
use crate::models::deletion::DeletedPost;
use crate::models::event::{StreamedDeletion, StreamedEngagement, MAX_ENGAGEMENT_COUNT};
use crate::models::producer::{engagement_key, Trust};
use crate::models::views::saturating_i64;
use crate::models::AnalyzedPost;
use crate::telemetry::causes::causes;

/// The array inputs of the statement by relation: each column's name and SQL element type.
/// A relation's columns are the table's own where it has them (`posts`, `engagements`,
/// `post_deletions`), so `{posts.*}` names the insert's columns too.
const RELATIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "posts",
        &[
            ("id", "text"),
            ("platform", "text"),
            ("author_id", "text"),
            ("author_followers", "int8"),
            ("text", "text"),
            ("created_at", "timestamptz"),
            ("lang", "text"),
            ("city", "text"),
            ("country", "text"),
            ("product", "text"),
            ("channel", "text"),
            ("parent_id", "text"),
            ("url", "text"),
            ("likes", "int8"),
            ("shares", "int8"),
            ("comments", "int8"),
            ("views", "int8"),
            ("sentiment_label", "text"),
            ("sentiment_score", "float4"),
            ("emotions", "jsonb"),
            ("emotion", "text"),
            ("toxicity", "float4"),
            ("churn_risk", "float4"),
            ("model", "text"),
            ("stream_id", "text"),
            ("hate", "float4"),
            ("lang_source", "text"),
            ("language_support", "text"),
            ("rollup_other", "int2"),
            ("producer", "text"),
            ("story_id", "int8"),
            ("search", "tsvector"),
        ],
    ),
    (
        "engagements",
        &[
            ("key", "text"),
            ("post_id", "text"),
            ("kind", "text"),
            ("at", "timestamptz"),
            ("actor_followers", "int8"),
            ("via", "text"),
            ("count", "int4"),
            ("stream_id", "text"),
            ("producer", "text"),
        ],
    ),
    (
        "deletions",
        &[
            ("post_id", "text"),
            ("at", "timestamptz"),
            ("stream_id", "text"),
            ("producer", "text"),
        ],
    ),
    // The topics each post matched, one row per post and topic (an array of arrays would
    // have to be rectangular); gathered into the post's `topics` and `topic_versions`, or,
    // for those the topic's relevance left out (`kept` false), its `filtered_topics`.
    (
        "post_topics",
        &[
            ("post_id", "text"),
            ("topic_id", "int8"),
            ("version", "int4"),
            ("kept", "bool"),
        ],
    ),
];

/// The scalar inputs: posts with churn risk at or above `high_churn` count as high-churn in
/// the rollups; `trust` holds the producer pairs of [`Trust::pairs`].
const SCALARS: &[(&str, &str)] = &[("high_churn", "float4"), ("trust", "text[]")];

/// Every input in parameter order, as `(relation, column, SQL type)`; scalars have no
/// relation.
static INPUTS: LazyLock<Vec<(&str, &str, String)>> = LazyLock::new(|| {
    let arrays = RELATIONS.iter().flat_map(|(relation, columns)| {
        columns
            .iter()
            .map(move |(column, ty)| (*relation, *column, format!("{ty}[]")))
    });
    let scalars = SCALARS.iter().map(|(name, ty)| ("", *name, ty.to_string()));
    arrays.chain(scalars).collect()
});

/// `template` with each named input replaced by its parameter: `{relation.column}` and
/// `{scalar}` by `$n::type`, `{relation}` by all of the relation's arrays (for `UNNEST`) and
/// `{relation.*}` by its column names. Panics on a name [`INPUTS`] does not have: the
/// statement is built once, and a test builds it.
fn with_inputs(template: &str) -> String {
    let param = |relation: &str, column: &str| -> String {
        let at = INPUTS
            .iter()
            .position(|(r, c, _)| *r == relation && *c == column)
            .unwrap_or_else(|| panic!("the batch statement has no input {relation}.{column}"));
        format!("${}::{}", at + 1, INPUTS[at].2)
    };
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .expect("an input name is closed by '}'");
        let name = &rest[open + 1..close];
        let replaced = match name.split_once('.') {
            Some((relation, "*")) => columns_of(relation).join(", "),
            Some((relation, column)) => param(relation, column),
            None if SCALARS.iter().any(|(s, _)| *s == name) => param("", name),
            None => columns_of(name)
                .iter()
                .map(|c| param(name, c))
                .collect::<Vec<_>>()
                .join(", "),
        };
        out.push_str(&replaced);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

fn columns_of(relation: &str) -> Vec<&'static str> {
    RELATIONS
        .iter()
        .find(|(r, _)| *r == relation)
        .map(|(_, columns)| columns.iter().map(|(c, _)| *c).collect())
        .unwrap_or_else(|| panic!("the batch statement has no relation {relation}"))
}

/// The writes of a batch, before its rollup deltas: posts, engagements and deletions, each
/// idempotent on its natural key, with ownership applied (see [`crate::models::producer`]):
///
/// - a post whose id another producer stored first is not stored (`t`);
/// - a deletion or engagement of a post another producer owns is refused (`d`, `r`) unless
///   `{trust}` allows it; a deletion of a post not stored yet is kept, and applies to the
///   post when it arrives only if its producer may act for the post's;
/// - an engagement whose post is not stored yet is kept `held` (`h`), uncounted, and released
///   (or refused) when its post arrives in a later batch.
///
/// Every change to the rollups goes through `post_rollup_deltas` and
/// `engagement_rollup_deltas`: new live posts and the engagements that count with them, and
/// deleted posts taken back out with the engagements that had counted.
const WRITES: &str = "
WITH dl AS MATERIALIZED (
    -- Deletions that may apply to this batch's posts: stored earlier or in this batch. Read
    -- once: as a subquery of each post, a generic plan would look the batch's ids up again
    -- for every post.
    SELECT post_id, at, producer, true AS stored FROM post_deletions
    WHERE post_id = ANY({posts.id})
    UNION ALL
    SELECT u.*, false FROM UNNEST({deletions.post_id}, {deletions.at}, {deletions.producer})
        AS u (post_id, at, producer)
), pt AS (
    SELECT post_id, array_agg(topic_id ORDER BY topic_id) FILTER (WHERE kept) AS topics,
           array_agg(version ORDER BY topic_id) FILTER (WHERE kept) AS versions,
           array_agg(topic_id ORDER BY topic_id) FILTER (WHERE NOT kept) AS filtered
    FROM (SELECT DISTINCT ON (post_id, topic_id) *
          FROM UNNEST({post_topics}) AS u ({post_topics.*})) AS u
    GROUP BY post_id
), p AS (
    INSERT INTO posts AS t ({posts.*}, topics, topic_versions, filtered_topics, deleted_at)
    SELECT u.*, pt.topics, pt.versions, pt.filtered,
           (SELECT min(dl.at) FROM dl
            WHERE dl.post_id = u.id AND may_act(dl.producer, u.producer, {trust}))
    FROM UNNEST({posts}) AS u ({posts.*})
    LEFT JOIN pt ON pt.post_id = u.id
    ON CONFLICT (id) DO NOTHING
    RETURNING id, producer, deleted_at, [POST_COLUMNS]
), taken AS (
    -- Posts of this batch whose id belongs to another producer (stored before, or by an
    -- earlier post of this batch). Only the posts not stored now are looked up.
    SELECT u.id FROM UNNEST({posts.id}, {posts.producer}) AS u (id, producer)
    WHERE NOT EXISTS (SELECT 1 FROM p WHERE p.id = u.id AND p.producer = u.producer)
      AND NOT EXISTS (SELECT 1 FROM posts s WHERE s.id = u.id AND s.producer = u.producer)
), ev AS MATERIALIZED (
    -- The batch's engagements, each with the producer that owns its post, if stored.
    SELECT u.*, COALESCE(s.producer, p.producer) AS owner
    FROM UNNEST({engagements}) AS u ({engagements.*})
    LEFT JOIN posts s ON s.id = u.post_id
    LEFT JOIN p ON p.id = u.post_id
), e AS (
    INSERT INTO engagements AS t ({engagements.*}, held)
    SELECT {engagements.*}, owner IS NULL
    FROM ev WHERE owner IS NULL OR may_act(producer, owner, {trust})
    ON CONFLICT (key) DO NOTHING
    RETURNING key, post_id, kind, at, count, held
), dv AS MATERIALIZED (
    -- The batch's deletions, each with the producer that owns its post, if stored.
    SELECT u.*, COALESCE(s.producer, p.producer) AS owner
    FROM UNNEST({deletions}) AS u ({deletions.*})
    LEFT JOIN posts s ON s.id = u.post_id
    LEFT JOIN p ON p.id = u.post_id
), del AS (
    INSERT INTO post_deletions ({deletions.*})
    SELECT {deletions.*} FROM dv
    WHERE owner IS NULL OR may_act(producer, owner, {trust})
    ON CONFLICT (post_id, producer) DO NOTHING
    RETURNING post_id
), refused_deletions AS (
    SELECT post_id FROM dv WHERE owner IS NOT NULL AND NOT may_act(producer, owner, {trust})
    UNION ALL
    -- Deletions kept for a post that has now arrived from a producer they may not act for.
    SELECT dl.post_id FROM p JOIN dl ON dl.post_id = p.id
    WHERE dl.stored AND NOT may_act(dl.producer, p.producer, {trust})
), gone AS (
    -- Posts stored before this batch that it deletes (once: a replayed deletion finds them
    -- marked already). Posts this batch inserts are not visible here; `p` marks them.
    UPDATE posts AS t SET deleted_at = d.at
    FROM (SELECT post_id, min(at) AS at FROM dv
          WHERE owner IS NOT NULL AND may_act(producer, owner, {trust})
          GROUP BY post_id) AS d
    WHERE t.id = d.post_id AND t.deleted_at IS NULL
    RETURNING t.id, deleted_post(t) AS summary, [POST_COLUMNS_OF_T]
), released AS (
    -- Held engagements of the posts this batch stores, from producers that may act for them;
    -- they reach the virality tracker's feed as of this transaction.
    UPDATE engagements AS eg SET held = false, tx = pg_current_xact_id()
    FROM p
    WHERE eg.held AND eg.post_id = p.id
      AND may_act(eg.producer, p.producer, {trust})
    RETURNING eg.key, eg.at, eg.kind, eg.count, p.deleted_at, [ENGAGEMENT_POST_COLUMNS_OF_P]
), refused_held AS (
    DELETE FROM engagements AS eg USING p
    WHERE eg.held AND eg.post_id = p.id
      AND NOT may_act(eg.producer, p.producer, {trust})
    RETURNING eg.key
), live AS (
    -- The posts of this batch's engagements, as they stand once it commits.
    SELECT id, deleted_at, [ENGAGEMENT_POST_COLUMNS] FROM p
    UNION ALL
    SELECT s.id, s.deleted_at, [ENGAGEMENT_POST_COLUMNS_OF_S] FROM posts s
    WHERE s.id IN (SELECT post_id FROM e WHERE NOT held)
      AND NOT EXISTS (SELECT 1 FROM gone WHERE gone.id = s.id)
), deltas AS (
    SELECT d.* FROM p CROSS JOIN LATERAL [NEW_POSTS] d WHERE p.deleted_at IS NULL
    UNION ALL
    SELECT d.* FROM gone CROSS JOIN LATERAL [GONE_POSTS] d
    UNION ALL
    SELECT d.* FROM gone JOIN engagements x ON x.post_id = gone.id AND NOT x.held
    CROSS JOIN LATERAL [GONE_ENGAGEMENTS] d
    UNION ALL
    SELECT d.* FROM released r CROSS JOIN LATERAL [RELEASED] d WHERE r.deleted_at IS NULL
    UNION ALL
    SELECT d.* FROM e JOIN live q ON q.id = e.post_id
    CROSS JOIN LATERAL [BATCH_ENGAGEMENTS] d
    WHERE NOT e.held AND q.deleted_at IS NULL
), r AS (";

/// What the batch statement returns: one row per change, its kind, key and, for a deleted
/// post, what the live stages need of it.
const RESULT: &str = "
)
SELECT 'p'::text AS kind, id, NULL::jsonb FROM p WHERE deleted_at IS NULL
UNION ALL
SELECT 'x', id, NULL FROM p WHERE deleted_at IS NOT NULL
UNION ALL
SELECT 'e', key, NULL FROM e WHERE NOT held
UNION ALL
SELECT 'h', key, NULL FROM e WHERE held
UNION ALL
SELECT 'l', key, NULL FROM released
UNION ALL
SELECT 'g', id, summary FROM gone
UNION ALL
SELECT 't', id, NULL FROM taken
UNION ALL
SELECT 'r', key, NULL FROM ev WHERE owner IS NOT NULL AND NOT may_act(producer, owner, {trust})
UNION ALL
SELECT 'r', key, NULL FROM refused_held
UNION ALL
SELECT 'd', post_id, NULL FROM refused_deletions";

/// [`WRITES`], the rollups ([`ADD_DELTAS`]), then [`RESULT`], with the rollup contributions
/// (`[NAME]`) and the named inputs filled in.
static STATEMENT: LazyLock<String> = LazyLock::new(|| {
    let template = format!("{WRITES}{ADD_DELTAS}{RESULT}")
        .replace("[POST_COLUMNS_OF_T]", &of("t", &POST_DELTA_COLUMNS))
        .replace("[POST_COLUMNS]", &POST_DELTA_COLUMNS.join(", "))
        .replace(
            "[ENGAGEMENT_POST_COLUMNS_OF_P]",
            &of("p", &ENGAGEMENT_POST_COLUMNS),
        )
        .replace(
            "[ENGAGEMENT_POST_COLUMNS_OF_S]",
            &of("s", &ENGAGEMENT_POST_COLUMNS),
        )
        .replace(
            "[ENGAGEMENT_POST_COLUMNS]",
            &ENGAGEMENT_POST_COLUMNS.join(", "),
        )
        .replace("[NEW_POSTS]", &post_deltas("1", "p", "{high_churn}"))
        .replace("[GONE_POSTS]", &post_deltas("-1", "gone", "{high_churn}"))
        .replace("[GONE_ENGAGEMENTS]", &engagement_deltas("-1", "x", "gone"))
        .replace("[RELEASED]", &engagement_deltas("1", "r", "r"))
        .replace("[BATCH_ENGAGEMENTS]", &engagement_deltas("1", "e", "q"));
    with_inputs(&template)
});

/// What a committed batch changed: ids of posts that were new (replays are not counted).
#[derive(Debug, Default, Clone)]
pub struct StoreOutcome {
    pub inserted_posts: Vec<String>,
    pub inserted_engagements: u64,
    /// Keys of the engagements that were new (see `producer::engagement_key`).
    pub inserted_engagement_keys: Vec<String>,
    /// Stored posts this batch marked deleted.
    pub deleted_posts: Vec<String>,
    /// The same posts, as the live stages need them.
    pub deleted: Vec<DeletedPost>,
    /// Posts new to the database but stored deleted (their deletion came first): never shown
    /// or counted.
    pub inserted_deleted_posts: Vec<String>,
    /// Engagements stored `held`, waiting for their post.
    pub held_engagements: u64,
    /// What ownership refused.
    pub refused: Refusals,
}

/// Events refused because another producer owns the post they name (see
/// [`crate::models::producer`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refusals {
    /// Posts whose id another producer stored first.
    pub id_taken: u64,
    /// Engagements of another producer's post.
    pub not_owner_engagement: u64,
    /// Deletions of another producer's post.
    pub not_owner_deletion: u64,
}

impl Refusals {
    /// Adds them to `pulse_events_refused_total{reason}`.
    pub fn count(&self) {
        for (reason, n) in [
            ("id_taken", self.id_taken),
            ("not_owner_engagement", self.not_owner_engagement),
            ("not_owner_deletion", self.not_owner_deletion),
        ] {
            if n > 0 {
                metrics::counter!(crate::telemetry::names::EVENTS_NOT_OWNED, "reason" => reason)
                    .increment(n);
            }
        }
    }
}

/// Why a batch was not committed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable or busy; retry the same batch later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refused the data itself; retrying the whole batch cannot succeed.
    #[error("database refused the batch: {0}")]
    Refused(String),
}

/// What a batch writes.
pub struct Batch<'a> {
    pub posts: &'a [AnalyzedPost],
    pub engagements: &'a [StreamedEngagement],
    pub deletions: &'a [StreamedDeletion],
}

/// What a batch's write depends on besides its rows.
pub struct WriteOptions<'a> {
    /// Qualifies engagement keys derived from stream entry ids.
    pub stream: &'a str,
    /// Posts with churn risk at or above it count as high-churn in the rollups.
    pub high_churn: f32,
    /// Decides which keys get rollups of their own.
    pub admission: &'a KeyAdmission,
    /// Which producers may act for others' posts.
    pub trust: &'a Trust,
}

type Texts<'a> = Vec<&'a str>;
type MaybeTexts<'a> = Vec<Option<&'a str>>;
type Times = Vec<chrono::DateTime<chrono::Utc>>;

/// The statement's input values, one array per column, found by the names of [`INPUTS`].
struct Columns<'a> {
    ids: Texts<'a>,
    platforms: Texts<'a>,
    authors: Texts<'a>,
    followers: Vec<i64>,
    texts: Texts<'a>,
    created: Times,
    stories: Vec<Option<i64>>,
    langs: MaybeTexts<'a>,
    cities: MaybeTexts<'a>,
    countries: MaybeTexts<'a>,
    products: MaybeTexts<'a>,
    channels: MaybeTexts<'a>,
    parents: MaybeTexts<'a>,
    urls: MaybeTexts<'a>,
    likes: Vec<Option<i64>>,
    shares: Vec<Option<i64>>,
    comments: Vec<Option<i64>>,
    views: Vec<Option<i64>>,
    labels: Texts<'a>,
    scores: Vec<f32>,
    emotions: Vec<serde_json::Value>,
    dominant: MaybeTexts<'static>,
    toxicity: Vec<f32>,
    churn: Vec<f32>,
    models: Texts<'a>,
    post_entries: Texts<'a>,
    hate: Vec<f32>,
    lang_sources: Texts<'a>,
    supports: Texts<'a>,
    rollup_other: Vec<i16>,
    post_producers: Texts<'a>,
    keys: Vec<String>,
    engaged: Texts<'a>,
    kinds: Texts<'a>,
    engaged_at: Times,
    actor_followers: Vec<Option<i64>>,
    vias: MaybeTexts<'a>,
    counts: Vec<i32>,
    engagement_entries: Texts<'a>,
    engagement_producers: Texts<'a>,
    deleted: Texts<'a>,
    deleted_at: Times,
    deletion_entries: Texts<'a>,
    deletion_producers: Texts<'a>,
    search: Vec<Option<super::search::TsVector<'a>>>,
    topic_posts: Texts<'a>,
    topic_ids: Vec<i64>,
    topic_versions: Vec<i32>,
    topic_kept: Vec<bool>,
    high_churn: f32,
    trust: &'a [String],
}

/// Every topic `p`'s query matched, with whether the topic keeps it.
fn matched(p: &AnalyzedPost) -> impl Iterator<Item = (&crate::models::topic::TopicMatch, bool)> {
    let kept = p.topics.iter().map(|t| (t, true));
    kept.chain(p.filtered_topics.iter().map(|t| (t, false)))
}

impl<'a> Columns<'a> {
    fn new(batch: &Batch<'a>, options: &WriteOptions<'a>, rollup_other: Vec<i16>) -> Self {
        let posts = batch.posts;
        let engagements = batch.engagements;
        let deletions = batch.deletions;
        let texts = |f: fn(&'a AnalyzedPost) -> &'a str| posts.iter().map(f).collect();
        let maybe = |f: fn(&'a AnalyzedPost) -> Option<&'a str>| posts.iter().map(f).collect();
        let metric = |f: fn(&crate::models::PostMetrics) -> u64| -> Vec<Option<i64>> {
            posts
                .iter()
                .map(|p| p.post.metrics.as_ref().map(|m| saturating_i64(f(m))))
                .collect()
        };
        let scores = |f: fn(&AnalyzedPost) -> f32| posts.iter().map(f).collect();
        Columns {
            ids: texts(|p| &p.post.id),
            platforms: texts(|p| p.post.platform.as_str()),
            authors: texts(|p| &p.post.author.id),
            followers: posts
                .iter()
                .map(|p| saturating_i64(p.post.author.followers))
                .collect(),
            texts: texts(|p| &p.post.text),
            created: posts.iter().map(|p| p.post.created_at).collect(),
            stories: posts.iter().map(|p| p.story_id).collect(),
            langs: maybe(|p| p.analysis.lang.as_deref()),
            cities: maybe(|p| p.post.city()),
            countries: maybe(|p| p.post.country()),
            products: maybe(|p| p.post.product.as_deref()),
            channels: maybe(|p| p.post.channel.as_deref()),
            parents: maybe(|p| p.post.parent_id.as_deref()),
            urls: maybe(|p| p.post.url.as_deref()),
            likes: metric(|m| m.likes),
            shares: metric(|m| m.shares),
            comments: metric(|m| m.comments),
            views: metric(|m| m.views),
            labels: texts(|p| p.analysis.sentiment_label.as_str()),
            scores: scores(|p| p.analysis.sentiment_score.get()),
            emotions: posts
                .iter()
                .map(|p| serde_json::to_value(p.analysis.emotions).unwrap_or_default())
                .collect(),
            dominant: posts
                .iter()
                .map(|p| p.analysis.emotions.dominant().map(|e| e.as_str()))
                .collect(),
            toxicity: scores(|p| p.analysis.toxicity.get()),
            churn: scores(|p| p.analysis.churn_risk.get()),
            models: texts(|p| &p.analysis.model),
            post_entries: texts(|p| &p.entry_id),
            hate: scores(|p| p.analysis.hate.get()),
            lang_sources: texts(|p| p.analysis.lang_source.as_str()),
            supports: texts(|p| p.analysis.language_support.as_str()),
            rollup_other,
            post_producers: texts(|p| &p.producer),
            keys: engagements
                .iter()
                .map(|e| {
                    engagement_key(
                        options.stream,
                        &e.producer,
                        e.engagement.id.as_deref(),
                        &e.entry_id,
                    )
                })
                .collect(),
            engaged: engagements
                .iter()
                .map(|e| e.engagement.post_id.as_str())
                .collect(),
            kinds: engagements
                .iter()
                .map(|e| e.engagement.kind.as_str())
                .collect(),
            engaged_at: engagements.iter().map(|e| e.engagement.at).collect(),
            actor_followers: engagements
                .iter()
                .map(|e| e.engagement.actor_followers.map(saturating_i64))
                .collect(),
            vias: engagements
                .iter()
                .map(|e| e.engagement.via.as_deref())
                .collect(),
            counts: engagements
                .iter()
                .map(|e| {
                    let count = e.engagement.count.unwrap_or(1).min(MAX_ENGAGEMENT_COUNT);
                    i32::try_from(count).unwrap_or(i32::MAX)
                })
                .collect(),
            engagement_entries: engagements.iter().map(|e| e.entry_id.as_str()).collect(),
            engagement_producers: engagements.iter().map(|e| e.producer.as_str()).collect(),
            deleted: deletions
                .iter()
                .map(|d| d.deletion.post_id.as_str())
                .collect(),
            deleted_at: deletions.iter().map(|d| d.deletion.at).collect(),
            deletion_entries: deletions.iter().map(|d| d.entry_id.as_str()).collect(),
            deletion_producers: deletions.iter().map(|d| d.producer.as_str()).collect(),
            search: posts
                .iter()
                .map(|p| (!p.search.is_empty()).then(|| super::search::TsVector(&p.search)))
                .collect(),
            topic_posts: posts
                .iter()
                .flat_map(|p| matched(p).map(move |_| p.post.id.as_str()))
                .collect(),
            topic_ids: posts
                .iter()
                .flat_map(|p| matched(p).map(|t| t.0.id))
                .collect(),
            topic_versions: posts
                .iter()
                .flat_map(|p| matched(p).map(|t| t.0.version))
                .collect(),
            topic_kept: posts.iter().flat_map(|p| matched(p).map(|t| t.1)).collect(),
            high_churn: options.high_churn,
            trust: options.trust.pairs(),
        }
    }

    /// The value of input `column` of `relation` (`""` for a scalar).
    fn value(&self, relation: &str, column: &str) -> Option<&(dyn ToSql + Sync)> {
        Some(match (relation, column) {
            ("posts", "id") => &self.ids,
            ("posts", "platform") => &self.platforms,
            ("posts", "author_id") => &self.authors,
            ("posts", "author_followers") => &self.followers,
            ("posts", "text") => &self.texts,
            ("posts", "created_at") => &self.created,
            ("posts", "story_id") => &self.stories,
            ("posts", "search") => &self.search,
            ("posts", "lang") => &self.langs,
            ("posts", "city") => &self.cities,
            ("posts", "country") => &self.countries,
            ("posts", "product") => &self.products,
            ("posts", "channel") => &self.channels,
            ("posts", "parent_id") => &self.parents,
            ("posts", "url") => &self.urls,
            ("posts", "likes") => &self.likes,
            ("posts", "shares") => &self.shares,
            ("posts", "comments") => &self.comments,
            ("posts", "views") => &self.views,
            ("posts", "sentiment_label") => &self.labels,
            ("posts", "sentiment_score") => &self.scores,
            ("posts", "emotions") => &self.emotions,
            ("posts", "emotion") => &self.dominant,
            ("posts", "toxicity") => &self.toxicity,
            ("posts", "churn_risk") => &self.churn,
            ("posts", "model") => &self.models,
            ("posts", "stream_id") => &self.post_entries,
            ("posts", "hate") => &self.hate,
            ("posts", "lang_source") => &self.lang_sources,
            ("posts", "language_support") => &self.supports,
            ("posts", "rollup_other") => &self.rollup_other,
            ("posts", "producer") => &self.post_producers,
            ("engagements", "key") => &self.keys,
            ("engagements", "post_id") => &self.engaged,
            ("engagements", "kind") => &self.kinds,
            ("engagements", "at") => &self.engaged_at,
            ("engagements", "actor_followers") => &self.actor_followers,
            ("engagements", "via") => &self.vias,
            ("engagements", "count") => &self.counts,
            ("engagements", "stream_id") => &self.engagement_entries,
            ("engagements", "producer") => &self.engagement_producers,
            ("deletions", "post_id") => &self.deleted,
            ("deletions", "at") => &self.deleted_at,
            ("deletions", "stream_id") => &self.deletion_entries,
            ("deletions", "producer") => &self.deletion_producers,
            ("post_topics", "post_id") => &self.topic_posts,
            ("post_topics", "topic_id") => &self.topic_ids,
            ("post_topics", "version") => &self.topic_versions,
            ("post_topics", "kept") => &self.topic_kept,
            ("", "high_churn") => &self.high_churn,
            ("", "trust") => &self.trust,
            _ => return None,
        })
    }

    /// The values in parameter order.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        INPUTS
            .iter()
            .map(|(relation, column, _)| {
                self.value(relation, column).unwrap_or_else(|| {
                    panic!("the batch write has no value for {relation}.{column}")
                })
            })
            .collect()
    }
}

/// Writes `batch` in one statement on `client`. A batch with nothing in it writes nothing.
pub async fn write<'a>(
    client: &mut deadpool_postgres::ClientWrapper,
    options: &WriteOptions<'a>,
    batch: &Batch<'a>,
) -> Result<StoreOutcome, StoreError> {
    if batch.posts.is_empty() && batch.engagements.is_empty() && batch.deletions.is_empty() {
        return Ok(StoreOutcome::default());
    }
    let statement = client.prepare_cached(&STATEMENT).await.map_err(classify)?;
    let keys_of: Vec<PostKeys<'_>> = batch
        .posts
        .iter()
        .map(|p| PostKeys {
            created_at: p.post.created_at,
            keys: [
                p.post.city(),
                p.post.country(),
                p.post.product.as_deref(),
                p.post.channel.as_deref(),
                Some(p.analysis.lang.as_deref().unwrap_or("und")),
            ],
        })
        .collect();
    let rollup_other = options
        .admission
        .other_bits(&**client, &keys_of)
        .await
        .map_err(classify)?;
    let columns = Columns::new(batch, options, rollup_other);
    let rows = if batch.engagements.is_empty() && batch.deletions.is_empty() {
        client
            .query(&statement, &columns.params())
            .await
            .map_err(classify)?
    } else {
        let (ids, exclusive) = post_locks(batch);
        let tx = client.transaction().await.map_err(classify)?;
        tx.execute(LOCK_POSTS, &[&ids, &exclusive])
            .await
            .map_err(classify)?;
        let rows = tx
            .query(&statement, &columns.params())
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        rows
    };

    let mut outcome = StoreOutcome::default();
    for row in rows {
        let kind: &str = row.get(0);
        match kind {
            "p" => outcome.inserted_posts.push(row.get(1)),
            "x" => outcome.inserted_deleted_posts.push(row.get(1)),
            "e" | "l" => {
                outcome.inserted_engagements += 1;
                outcome.inserted_engagement_keys.push(row.get(1));
            }
            "h" => outcome.held_engagements += 1,
            "g" => {
                outcome.deleted_posts.push(row.get(1));
                let json: serde_json::Value = row.get(2);
                match serde_json::from_value::<DeletedPost>(json) {
                    Ok(post) => outcome.deleted.push(post),
                    Err(e) => {
                        tracing::warn!(error = %causes(&e), "a deleted post's summary did not parse")
                    }
                }
            }
            "t" => outcome.refused.id_taken += 1,
            "r" => outcome.refused.not_owner_engagement += 1,
            "d" => outcome.refused.not_owner_deletion += 1,
            _ => {}
        }
    }
    Ok(outcome)
}

/// Takes, before the batch statement and in its transaction, a lock per bucket of the posts the
/// batch engages with (shared) or deletes (exclusive), in bucket order so two batches never
/// wait for each other crosswise.
///
/// Why: a statement sees what was committed when it started. An engagement batch that
/// started before a deletion committed would count its engagement in the rollups of a post
/// the deletion had just taken out; a deletion that started before an engagement batch
/// committed would take out the post's engagements without that one. Either way the rollups
/// would keep it for good. With the locks, whichever comes second starts its statement after
/// the first committed, and sees it. Engagement batches share their locks, so they never wait
/// for each other; advisory locks live in shared memory, so they write nothing to the posts;
/// 64 buckets bound the locks one batch takes.
pub const LOCK_POSTS: &str = "
SELECT CASE WHEN s.exclusive THEN pg_advisory_xact_lock(1347, s.bucket)
            ELSE pg_advisory_xact_lock_shared(1347, s.bucket) END
FROM (SELECT hashtext(u.id) & 63 AS bucket, bool_or(u.exclusive) AS exclusive
      FROM UNNEST($1::text[], $2::bool[]) AS u (id, exclusive)
      GROUP BY 1 ORDER BY 1) AS s";

/// The posts of [`LOCK_POSTS`]: each engaged post, shared, and each deleted post, exclusive.
fn post_locks<'a>(batch: &'a Batch<'a>) -> (Vec<&'a str>, Vec<bool>) {
    let engaged = batch
        .engagements
        .iter()
        .map(|e| (e.engagement.post_id.as_str(), false));
    let deleted = batch
        .deletions
        .iter()
        .map(|d| (d.deletion.post_id.as_str(), true));
    engaged.chain(deleted).unzip()
}

/// Data errors (classes 22 and 23) mean the batch itself is bad and must be split; anything
/// else (connection loss, shutdown, serialization) is worth retrying as is.
fn classify(e: tokio_postgres::Error) -> StoreError {
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => format!("{e:#}"),
    };
    match e.code() {
        Some(code)
            if code.code().starts_with("22")
                || code.code().starts_with("23")
                || *code == SqlState::PROGRAM_LIMIT_EXCEEDED =>
        {
            StoreError::Refused(detail)
        }
        _ => StoreError::Unavailable(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::producer::default_trust;

    #[test]
    fn every_input_is_used_once_named_and_given_a_value() {
        let statement = STATEMENT.as_str();
        assert!(!statement.contains('{') && !statement.contains("[POST"));
        for at in 1..=INPUTS.len() {
            assert!(
                statement.contains(&format!("${at}::")),
                "input {at} ({}.{}) is never used",
                INPUTS[at - 1].0,
                INPUTS[at - 1].1
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (relation, column, _) in INPUTS.iter() {
            assert!(seen.insert((relation, column)), "{relation}.{column} twice");
        }
        let trust = Trust::new(&default_trust());
        let admission = KeyAdmission::new(1);
        let options = WriteOptions {
            stream: "s",
            high_churn: 0.5,
            admission: &admission,
            trust: &trust,
        };
        let batch = Batch {
            posts: &[],
            engagements: &[],
            deletions: &[],
        };
        let columns = Columns::new(&batch, &options, Vec::new());
        assert_eq!(columns.params().len(), INPUTS.len());
    }

    #[test]
    fn a_relation_expands_to_its_arrays_and_its_column_names() {
        let at = |column: &str| {
            1 + INPUTS
                .iter()
                .position(|(r, c, _)| *r == "deletions" && *c == column)
                .expect("an input")
        };
        assert_eq!(
            with_inputs("UNNEST({deletions}) AS u ({deletions.*}) {trust}"),
            format!(
                "UNNEST(${}::text[], ${}::timestamptz[], ${}::text[], ${}::text[]) AS u \
                 (post_id, at, stream_id, producer) ${}::text[]",
                at("post_id"),
                at("at"),
                at("stream_id"),
                at("producer"),
                INPUTS.len()
            )
        );
    }
}

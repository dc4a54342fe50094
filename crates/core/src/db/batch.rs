//! The batch write: a batch's posts, engagements and deletions, their rollups and what they
//! change for the live stages, in one statement and one round trip. Everything commits
//! together or not at all, and every write is idempotent on its natural key, so a batch
//! delivered twice changes nothing the second time and rollups count each post once.
//!
//! The statement is written with named inputs (`{posts.id}`, `{trust}`): [`INPUTS`] gives each
//! its SQL type, its place among the parameters and its values, in one row per input.

use std::sync::LazyLock;

use tokio_postgres::types::ToSql;

use super::rollup_keys::{KeyAdmission, PostKeys};
use super::rollups::{
    engagement_deltas, post_deltas, qualified as of, ADD_DELTAS, ENGAGEMENT_POST_COLUMNS,
    POST_DELTA_COLUMNS,
};
use crate::models::deletion::DeletedPost;
use crate::models::event::{StreamedDeletion, StreamedEngagement, MAX_ENGAGEMENT_COUNT};
use crate::models::producer::{engagement_key, Trust};
use crate::models::topic::TopicMatch;
use crate::models::views::saturating_i64;
use crate::models::{AnalyzedPost, PostMetrics};
use crate::telemetry::causes::causes;

/// A statement parameter: one array per input column, or a scalar.
type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// What the inputs' values are read from.
struct Source<'a> {
    batch: &'a Batch<'a>,
    options: &'a WriteOptions<'a>,
    /// The posts' `rollup_other` bits (see [`KeyAdmission::other_bits`]).
    rollup_other: &'a [i16],
}

impl<'a> Source<'a> {
    fn posts<T: ToSql + Sync + Send + 'a>(
        &self,
        value: impl Fn(&'a AnalyzedPost) -> T,
    ) -> Param<'a> {
        Box::new(self.batch.posts.iter().map(value).collect::<Vec<T>>())
    }

    fn engagements<T: ToSql + Sync + Send + 'a>(
        &self,
        value: impl Fn(&'a StreamedEngagement) -> T,
    ) -> Param<'a> {
        Box::new(self.batch.engagements.iter().map(value).collect::<Vec<T>>())
    }

    fn deletions<T: ToSql + Sync + Send + 'a>(
        &self,
        value: impl Fn(&'a StreamedDeletion) -> T,
    ) -> Param<'a> {
        Box::new(self.batch.deletions.iter().map(value).collect::<Vec<T>>())
    }

    /// One value per topic each post matched (see the `post_topics` inputs).
    fn topics<T: ToSql + Sync + Send + 'a>(
        &self,
        value: impl Fn(&'a AnalyzedPost, &'a TopicMatch, bool) -> T,
    ) -> Param<'a> {
        let rows = self.batch.posts.iter().flat_map(|p| {
            let kept = p.topics.iter().map(|t| (t, true));
            let filtered = p.filtered_topics.iter().map(|t| (t, false));
            kept.chain(filtered).map(move |(t, kept)| (p, t, kept))
        });
        Box::new(
            rows.map(|(p, t, kept)| value(p, t, kept))
                .collect::<Vec<T>>(),
        )
    }

    fn metric(&self, value: fn(&PostMetrics) -> u64) -> Param<'a> {
        self.posts(move |p| p.post.metrics.as_ref().map(|m| saturating_i64(value(m))))
    }
}

/// One named input of the statement: `{relation.column}`, or `{name}` for a scalar (no
/// relation), with its SQL type (a column's is an array of it) and its values. Each input is
/// named here only: the statement's column lists, parameter numbers and values all come from
/// [`INPUTS`].
struct Input {
    relation: &'static str,
    column: &'static str,
    sql_type: &'static str,
    values: for<'a, 'b> fn(&'b Source<'a>) -> Param<'a>,
}

const fn input(
    relation: &'static str,
    column: &'static str,
    sql_type: &'static str,
    values: for<'a, 'b> fn(&'b Source<'a>) -> Param<'a>,
) -> Input {
    Input {
        relation,
        column,
        sql_type,
        values,
    }
}

/// Every input, in parameter order. A relation's columns are the table's own where it has
/// them (`posts`, `engagements`, `post_deletions`), so `{posts.*}` names the insert's columns
/// too. `post_topics` has one row per post and topic it matched (an array of arrays would have
/// to be rectangular), gathered into the post's `topics` and `topic_versions`, or, for those the
/// topic's relevance left out (`kept` false), its `filtered_topics`. Posts with churn risk at
/// or above `high_churn` count as high-churn in the rollups; `trust` holds the producer pairs
/// of [`Trust::pairs`].
const INPUTS: &[Input] = &[
    input("posts", "id", "text", |s| s.posts(|p| p.post.id.as_str())),
    input("posts", "platform", "text", |s| {
        s.posts(|p| p.post.platform.as_str())
    }),
    input("posts", "author_id", "text", |s| {
        s.posts(|p| p.post.author.id.as_str())
    }),
    input("posts", "author_followers", "int8", |s| {
        s.posts(|p| saturating_i64(p.post.author.followers))
    }),
    input("posts", "text", "text", |s| {
        s.posts(|p| p.post.text.as_str())
    }),
    input("posts", "created_at", "timestamptz", |s| {
        s.posts(|p| p.post.created_at)
    }),
    input("posts", "lang", "text", |s| {
        s.posts(|p| p.analysis.lang.as_deref())
    }),
    input("posts", "city", "text", |s| s.posts(|p| p.post.city())),
    input("posts", "country", "text", |s| {
        s.posts(|p| p.post.country())
    }),
    input("posts", "product", "text", |s| {
        s.posts(|p| p.post.product.as_deref())
    }),
    input("posts", "channel", "text", |s| {
        s.posts(|p| p.post.channel.as_deref())
    }),
    input("posts", "parent_id", "text", |s| {
        s.posts(|p| p.post.parent_id.as_deref())
    }),
    input("posts", "url", "text", |s| {
        s.posts(|p| p.post.url.as_deref())
    }),
    input("posts", "likes", "int8", |s| s.metric(|m| m.likes)),
    input("posts", "shares", "int8", |s| s.metric(|m| m.shares)),
    input("posts", "comments", "int8", |s| s.metric(|m| m.comments)),
    input("posts", "views", "int8", |s| s.metric(|m| m.views)),
    input("posts", "sentiment_label", "text", |s| {
        s.posts(|p| p.analysis.sentiment_label.as_str())
    }),
    input("posts", "sentiment_score", "float4", |s| {
        s.posts(|p| p.analysis.sentiment_score.get())
    }),
    input("posts", "emotions", "jsonb", |s| {
        s.posts(|p| serde_json::to_value(p.analysis.emotions).unwrap_or_default())
    }),
    input("posts", "emotion", "text", |s| {
        s.posts(|p| p.analysis.emotions.dominant().map(|e| e.as_str()))
    }),
    input("posts", "toxicity", "float4", |s| {
        s.posts(|p| p.analysis.toxicity.get())
    }),
    input("posts", "churn_risk", "float4", |s| {
        s.posts(|p| p.analysis.churn_risk.get())
    }),
    input("posts", "model", "text", |s| {
        s.posts(|p| p.analysis.model.as_str())
    }),
    input("posts", "stream_id", "text", |s| {
        s.posts(|p| p.entry_id.as_str())
    }),
    input("posts", "hate", "float4", |s| {
        s.posts(|p| p.analysis.hate.get())
    }),
    input("posts", "lang_source", "text", |s| {
        s.posts(|p| p.analysis.lang_source.as_str())
    }),
    input("posts", "language_support", "text", |s| {
        s.posts(|p| p.analysis.language_support.as_str())
    }),
    input("posts", "rollup_other", "int2", |s| {
        Box::new(s.rollup_other)
    }),
    input("posts", "producer", "text", |s| {
        s.posts(|p| p.producer.as_str())
    }),
    input("posts", "story_id", "int8", |s| s.posts(|p| p.story_id)),
    input("posts", "search", "tsvector", |s| {
        s.posts(|p| (!p.search.is_empty()).then(|| super::search::TsVector(&p.search)))
    }),
    input("engagements", "key", "text", |s| {
        let stream = s.options.stream;
        s.engagements(move |e| {
            engagement_key(stream, &e.producer, e.engagement.id.as_deref(), &e.entry_id)
        })
    }),
    input("engagements", "post_id", "text", |s| {
        s.engagements(|e| e.engagement.post_id.as_str())
    }),
    input("engagements", "kind", "text", |s| {
        s.engagements(|e| e.engagement.kind.as_str())
    }),
    input("engagements", "at", "timestamptz", |s| {
        s.engagements(|e| e.engagement.at)
    }),
    input("engagements", "actor_followers", "int8", |s| {
        s.engagements(|e| e.engagement.actor_followers.map(saturating_i64))
    }),
    input("engagements", "via", "text", |s| {
        s.engagements(|e| e.engagement.via.as_deref())
    }),
    input("engagements", "count", "int4", |s| {
        s.engagements(|e| {
            let count = e.engagement.count.unwrap_or(1).min(MAX_ENGAGEMENT_COUNT);
            i32::try_from(count).unwrap_or(i32::MAX)
        })
    }),
    input("engagements", "stream_id", "text", |s| {
        s.engagements(|e| e.entry_id.as_str())
    }),
    input("engagements", "producer", "text", |s| {
        s.engagements(|e| e.producer.as_str())
    }),
    input("deletions", "post_id", "text", |s| {
        s.deletions(|d| d.deletion.post_id.as_str())
    }),
    input("deletions", "at", "timestamptz", |s| {
        s.deletions(|d| d.deletion.at)
    }),
    input("deletions", "stream_id", "text", |s| {
        s.deletions(|d| d.entry_id.as_str())
    }),
    input("deletions", "producer", "text", |s| {
        s.deletions(|d| d.producer.as_str())
    }),
    input("post_topics", "post_id", "text", |s| {
        s.topics(|p, _, _| p.post.id.as_str())
    }),
    input("post_topics", "stream_id", "text", |s| {
        s.topics(|p, _, _| p.entry_id.as_str())
    }),
    input("post_topics", "topic_id", "int8", |s| {
        s.topics(|_, t, _| t.id)
    }),
    input("post_topics", "version", "int4", |s| {
        s.topics(|_, t, _| t.version)
    }),
    input("post_topics", "kept", "bool", |s| {
        s.topics(|_, _, kept| kept)
    }),
    input("", "high_churn", "float4", |s| {
        Box::new(s.options.high_churn)
    }),
    input("", "trust", "text[]", |s| Box::new(s.options.trust.pairs())),
];

/// `template` with each named input replaced by its parameter: `{relation.column}` and
/// `{scalar}` by `$n::type`, `{relation}` by all of the relation's arrays (for `UNNEST`) and
/// `{relation.*}` by its column names. Panics on a name [`INPUTS`] does not have: the
/// statement is built once, and a test builds it.
fn with_inputs(template: &str) -> String {
    let param = |relation: &str, column: &str| -> String {
        let at = INPUTS
            .iter()
            .position(|i| i.relation == relation && i.column == column)
            .unwrap_or_else(|| panic!("the batch statement has no input {relation}.{column}"));
        let array = if relation.is_empty() { "" } else { "[]" };
        format!("${}::{}{array}", at + 1, INPUTS[at].sql_type)
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
            None if INPUTS
                .iter()
                .any(|i| i.relation.is_empty() && i.column == name) =>
            {
                param("", name)
            }
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
    let columns: Vec<&'static str> = INPUTS
        .iter()
        .filter(|i| i.relation == relation)
        .map(|i| i.column)
        .collect();
    assert!(
        !columns.is_empty(),
        "the batch statement has no relation {relation}"
    );
    columns
}

/// Held engagements a batch releases or refuses with the posts they waited for.
pub const SETTLED_WITH_THEIR_POST: usize = 1_000;

/// The writes of a batch, before its rollup deltas: posts, engagements and deletions, each
/// idempotent on its natural key, with ownership applied (see [`crate::models::producer`]):
///
/// - a post whose id another producer stored first is not stored (`t`);
/// - a deletion or engagement of a post another producer owns is refused (`d`, `r`) unless
///   `{trust}` allows it; a deletion of a post not stored yet is kept, and applies to the
///   post when it arrives only if its producer may act for the post's;
/// - an engagement whose post is not stored yet is kept `held` (`h`), uncounted, and released
///   (or refused) when its post arrives in a later batch: [`SETTLED_WITH_THEIR_POST`] of them
///   by that batch, any more by the next settling pass (`db::deletions::settle_held`).
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
    -- Each copy's own topics, by its stream entry: of copies of one id in one batch, the row
    -- stored holds the topics of the copy stored, not every copy's.
    SELECT post_id, stream_id,
           array_agg(topic_id ORDER BY topic_id) FILTER (WHERE kept) AS topics,
           array_agg(version ORDER BY topic_id) FILTER (WHERE kept) AS versions,
           array_agg(topic_id ORDER BY topic_id) FILTER (WHERE NOT kept) AS filtered
    FROM (SELECT DISTINCT ON (post_id, stream_id, topic_id) *
          FROM UNNEST({post_topics}) AS u ({post_topics.*})) AS u
    GROUP BY post_id, stream_id
), p AS (
    INSERT INTO posts AS t ({posts.*}, topics, topic_versions, filtered_topics, deleted_at)
    SELECT u.*, pt.topics, pt.versions, pt.filtered,
           (SELECT min(dl.at) FROM dl
            WHERE dl.post_id = u.id AND may_act(dl.producer, u.producer, {trust}))
    FROM UNNEST({posts}) AS u ({posts.*})
    LEFT JOIN pt ON pt.post_id = u.id AND pt.stream_id = u.stream_id
    ON CONFLICT (id) DO NOTHING
    RETURNING id, producer, deleted_at, stream_id, [POST_COLUMNS]
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
), waiting AS MATERIALIZED (
    -- Held engagements of the posts this batch stores, a bounded number of them: the rest
    -- are settled by the next pass over held engagements, so a post that millions waited for
    -- never makes one statement return them all. Read once, by the held engagements' post
    -- index; each is then written by its key.
    SELECT h.key, h.post_id FROM engagements h JOIN p ON h.post_id = p.id WHERE h.held
    LIMIT [SETTLED_WITH_THEIR_POST]
), released AS (
    -- Those from producers that may act for their post; they reach the virality tracker's
    -- feed as of this transaction.
    UPDATE engagements AS eg SET held = false, tx = pg_current_xact_id()
    FROM waiting w JOIN p ON p.id = w.post_id
    WHERE eg.key = w.key AND eg.held AND may_act(eg.producer, p.producer, {trust})
    RETURNING eg.key, eg.at, eg.kind, eg.count, p.deleted_at, [ENGAGEMENT_POST_COLUMNS_OF_P]
), refused_held AS (
    DELETE FROM engagements AS eg USING waiting w JOIN p ON p.id = w.post_id
    WHERE eg.key = w.key AND eg.held AND NOT may_act(eg.producer, p.producer, {trust})
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
/// post, what the live stages need of it; for a new post, the stream entry of the copy it
/// wrote (a batch may hold an id more than once, and only one copy is the post).
const RESULT: &str = "
)
SELECT 'p'::text AS kind, id, to_jsonb(stream_id) FROM p WHERE deleted_at IS NULL
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
        .replace("[BATCH_ENGAGEMENTS]", &engagement_deltas("1", "e", "q"))
        .replace(
            "[SETTLED_WITH_THEIR_POST]",
            &SETTLED_WITH_THEIR_POST.to_string(),
        );
    with_inputs(&template)
});

/// What a committed batch changed: ids of posts that were new (replays are not counted).
#[derive(Debug, Default, Clone)]
pub struct StoreOutcome {
    pub inserted_posts: Vec<String>,
    /// The stream entries of the copies stored as `inserted_posts`. A batch may hold a post
    /// id several times (a producer sending it twice, two producers sending the same id): the
    /// store writes one of them, and only that copy's text, author and keys are the post's.
    pub inserted_entries: Vec<String>,
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
    /// The database answered with an error that may be the data's or its own (an internal
    /// error a datum's own check raised, a table missing): only other writes succeeding
    /// while this one keeps failing can tell which.
    #[error("database failed the batch: {0}")]
    Suspect(String),
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

/// The statement's parameters, in [`INPUTS`]' order.
fn params<'a>(source: &Source<'a>) -> Vec<Param<'a>> {
    INPUTS.iter().map(|i| (i.values)(source)).collect()
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
    let source = Source {
        batch,
        options,
        rollup_other: &rollup_other,
    };
    let owned = params(&source);
    let params: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|p| &**p as _).collect();
    let rows = if batch.engagements.is_empty() && batch.deletions.is_empty() {
        client.query(&statement, &params).await.map_err(classify)?
    } else {
        let (ids, exclusive) = post_locks(batch);
        let tx = client.transaction().await.map_err(classify)?;
        tx.execute(LOCK_POSTS, &[&ids, &exclusive])
            .await
            .map_err(classify)?;
        let rows = tx.query(&statement, &params).await.map_err(classify)?;
        let gone: Vec<&str> = rows
            .iter()
            .filter(|r| r.get::<_, &str>(0) == "g")
            .map(|r| r.get(1))
            .collect();
        if !gone.is_empty() {
            tx.execute(super::stories::TAKE_OUT_DELETED, &[&gone])
                .await
                .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        rows
    };

    let mut outcome = StoreOutcome::default();
    for row in rows {
        let kind: &str = row.get(0);
        match kind {
            "p" => {
                outcome.inserted_posts.push(row.get(1));
                let entry: Option<serde_json::Value> = row.get(2);
                if let Some(serde_json::Value::String(entry)) = entry {
                    outcome.inserted_entries.push(entry);
                }
            }
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
/// 64 buckets bound the locks one batch takes. The pass that releases held engagements takes
/// all of them shared ([`super::deletions::LOCK_EVERY_POST`], the same lock space and buckets).
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

/// Data errors (classes 22 and 23, and the limits of class 54 that data reaches) mean the
/// batch itself is bad and must be split; a connection lost, a transaction rolled back, a
/// server short of resources, shutting down, read-only or holding a lock is worth retrying as
/// is; any other error PostgreSQL answers is [`StoreError::Suspect`].
fn classify(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        return StoreError::Unavailable(format!("{e:#}"));
    };
    let code = db.code().code();
    let detail = format!("{code}: {}", db.message());
    match code.get(..2).unwrap_or_default() {
        "22" | "23" | "54" => StoreError::Refused(detail),
        "08" | "25" | "40" | "53" | "55" | "57" | "58" => StoreError::Unavailable(detail),
        _ => StoreError::Suspect(detail),
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
                INPUTS[at - 1].relation,
                INPUTS[at - 1].column
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for Input {
            relation, column, ..
        } in INPUTS
        {
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
        let source = Source {
            batch: &batch,
            options: &options,
            rollup_other: &[],
        };
        assert_eq!(params(&source).len(), INPUTS.len());
    }

    #[test]
    fn a_relation_expands_to_its_arrays_and_its_column_names() {
        let at = |column: &str| {
            1 + INPUTS
                .iter()
                .position(|i| i.relation == "deletions" && i.column == column)
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

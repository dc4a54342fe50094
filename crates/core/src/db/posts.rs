//! Stored posts as the API reads them.

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, GenericClient, Row};

use super::query::Conditions;
use super::table::Table;
use crate::models::views::{
    analysis_view, author_view, geo_view, metrics_view, topics_view, AnalysisColumns, PostView,
};
use crate::models::{Emotion, LanguageSource, LanguageSupport, Platform, SentimentLabel};

/// Columns of `posts` that [`post_view`] reads.
pub const POST_COLUMNS: &str =
    "id, platform, author_id, author_followers, text, created_at, lang, \
    city, country, product, channel, parent_id, url, likes, shares, comments, views, \
    sentiment_label, sentiment_score, emotions, emotion, toxicity, hate, churn_risk, model, \
    lang_source, language_support, story_id, topics, topic_versions, filtered_topics, ingested_at, \
    deleted_at";

/// Stored posts as [`post_view`] reads them.
pub(crate) const POSTS: Table<PostView> = Table {
    name: "posts",
    columns: POST_COLUMNS,
    read: post_view,
};

/// A page of the post listing: equality filters on columns, a time range and a keyset cursor.
pub struct PostSelection {
    pub filters: Vec<(&'static str, String)>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// `(created_at, id)` of the last post of the previous page.
    pub after: Option<(DateTime<Utc>, String)>,
    /// Rows read: one more than the page, to tell whether another page follows.
    pub rows: i64,
}

/// Posts of `selection`, newest first.
pub async fn list(
    client: &Client,
    selection: PostSelection,
) -> Result<Vec<PostView>, tokio_postgres::Error> {
    let mut conditions = Conditions::default();
    conditions.clause("deleted_at IS NULL".to_string());
    for (column, value) in selection.filters {
        let value = conditions.bind(value);
        conditions.clause(super::query::holds("", column, &value));
    }
    if let Some(from) = selection.from {
        conditions.push("created_at >=", from);
    }
    if let Some(to) = selection.to {
        conditions.push("created_at <", to);
    }
    newest_after(client, conditions, selection.after, selection.rows).await
}

/// Up to `rows` posts that meet `conditions`, newest first, from the one after the keyset
/// cursor `after` (`created_at`, id) on.
pub(crate) async fn newest_after(
    client: &impl GenericClient,
    mut conditions: Conditions,
    after: Option<(DateTime<Utc>, String)>,
    rows: i64,
) -> Result<Vec<PostView>, tokio_postgres::Error> {
    if let Some((created, id)) = after {
        let (created, id) = (conditions.bind(created), conditions.bind(id));
        conditions.clause(format!("(created_at, id) < ({created}, {id})"));
    }
    let limit = conditions.bind(rows);
    let rest = format!(
        "{} ORDER BY created_at DESC, id DESC LIMIT {limit}",
        conditions.where_sql()
    );
    POSTS.rows(client, &rest, &conditions.params()).await
}

/// One post by id.
pub async fn get(client: &Client, id: &str) -> Result<Option<PostView>, tokio_postgres::Error> {
    POSTS.row(client, "WHERE id = $1", &[&id]).await
}

/// The live posts of `ids`, newest first.
pub async fn by_ids(
    client: &Client,
    ids: &[String],
) -> Result<Vec<PostView>, tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    POSTS
        .rows(
            client,
            "WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY created_at DESC, id DESC",
            &[&ids],
        )
        .await
}

/// A post row selected with [`POST_COLUMNS`].
pub fn post_view(row: &Row) -> PostView {
    let likes: Option<i64> = row.get("likes");
    let metrics = likes.map(|likes| {
        metrics_view(
            likes,
            row.get::<_, Option<i64>>("shares"),
            row.get::<_, Option<i64>>("comments"),
            row.get::<_, Option<i64>>("views"),
        )
    });
    let (topics, topic_versions) = topics_view(row.get("topics"), row.get("topic_versions"));
    PostView {
        id: row.get("id"),
        platform: Platform::parse(row.get("platform")).unwrap_or(Platform::Other),
        author: author_view(row.get("author_id"), row.get("author_followers")),
        text: row.get("text"),
        created_at: row.get("created_at"),
        lang: row.get("lang"),
        geo: geo_view(row.get("city"), row.get("country")),
        product: row.get("product"),
        channel: row.get("channel"),
        parent_id: row.get("parent_id"),
        url: row.get("url"),
        metrics,
        analysis: analysis_view(AnalysisColumns {
            label: SentimentLabel::parse(row.get("sentiment_label"))
                .unwrap_or(SentimentLabel::Neutral),
            score: row.get("sentiment_score"),
            emotions: serde_json::from_value(row.get("emotions")).unwrap_or_default(),
            emotion: row
                .get::<_, Option<&str>>("emotion")
                .and_then(Emotion::parse),
            toxicity: row.get("toxicity"),
            hate: row.get("hate"),
            churn_risk: row.get("churn_risk"),
            model: row.get("model"),
            lang_source: LanguageSource::parse(row.get("lang_source"))
                .unwrap_or(LanguageSource::Unknown),
            language_support: LanguageSupport::parse(row.get("language_support"))
                .unwrap_or_default(),
        }),
        story_id: row.get("story_id"),
        topics,
        topic_versions,
        filtered_topics: sorted(row.get("filtered_topics")),
        ingested_at: row.get("ingested_at"),
        deleted_at: row.try_get("deleted_at").ok().flatten(),
    }
}

fn sorted(ids: Option<Vec<i64>>) -> Vec<i64> {
    let mut ids = ids.unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// Posts per model (the lexicon counts as one) created since `from`, most used first.
pub async fn by_model_since(
    client: &Client,
    from: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(String, i64)>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT model, count(*)::int8 FROM posts WHERE created_at >= $1 \
         GROUP BY model ORDER BY 2 DESC, model",
        &[&from],
        |r| (r.get(0), r.get(1)),
    )
    .await
}

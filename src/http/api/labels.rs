//! Labels: `POST`, `GET /api/v1/labels`, `DELETE /api/v1/labels/{id}` (undo). A reviewer says
//! whether a post is about a topic, what its sentiment is, whether it is spam or a bot's, tags
//! it or notes something on it. Every label is kept with who gave it and when, and is written in
//! the audit log; the newest label of a kind (for relevance, of a topic) that is not undone
//! counts, so two reviewers who disagree both stay on record and the later one decides.
//!
//! A relevance label moves the post at once, in the same transaction: `unrelated` takes it out
//! of the topic's figures (it stays listed as filtered), `related` puts a filtered post back. An
//! undo leaves the post where the labels left standing say, or, with none, where the topic's
//! learned relevance puts it.

use std::sync::Arc;

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::config::TopicSettings;
use crate::db::labels::{self, NewLabel, Target};
use crate::db::relevance;
use crate::http::answer::Answer;
use crate::http::documented::BadFilter;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::middleware::rate_limit::Buckets;
use crate::http::state::State;
use crate::models::errors::ErrorCode;
use crate::models::event::MAX_ID_BYTES;
use crate::models::label::{Label, LabelKind};
use crate::telemetry::names;
use crate::topics::relevance::{counts, Features, Post};
use crate::topics::LiveTopics;

/// Labels one post may hold, undone ones included: past it, a post is being fought over, not
/// reviewed.
pub const MAX_LABELS_PER_POST: i64 = 200;
/// Labels one reviewer may give one post, undone ones included, so that no one caller fills
/// a post's [`MAX_LABELS_PER_POST`] and leaves the others unable to label it.
pub const MAX_LABELS_PER_REVIEWER: i64 = 20;
/// Most labels a listing returns at once.
pub const MAX_PAGE: i64 = 1_000;

/// What labelling needs beside the database: each reviewer's budget, and the topics' learned
/// relevance (an undo with no label left puts a post where the model would).
pub struct Review {
    budget: Buckets,
    topics: Option<Arc<LiveTopics>>,
}

impl Review {
    pub fn new(settings: &TopicSettings, topics: Option<Arc<LiveTopics>>) -> Review {
        Review {
            budget: Buckets::new(settings.label_rate_per_sec, f64::from(settings.label_burst)),
            topics,
        }
    }

    /// The topics' live set and filters, where this process runs a pipeline.
    pub fn topics(&self) -> Option<&Arc<LiveTopics>> {
        self.topics.as_ref()
    }

    /// Whether `target` counts in `topic`: as its relevance label that counts (`label`) says,
    /// or, with none, as the topic's learned relevance does (it counts with no model).
    fn counts(&self, topic: i64, label: Option<bool>, target: &Target) -> bool {
        let filters = self.topics.as_ref().map(|live| live.with_filters().1);
        let filter = filters.as_ref().and_then(|f| f.get(topic));
        counts(label, filter, || {
            Features::of(&Post {
                text: &target.text,
                author: Some(&target.author),
                lang: target.lang.as_deref(),
                matched: true,
            })
        })
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidLabel, message)
}

/// `POST /api/v1/labels`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelInput {
    /// A stored post's id.
    pub post_id: String,
    /// The topic a `relevance` label is about (its query must have matched the post); only
    /// with `relevance`.
    pub topic_id: Option<i64>,
    pub kind: LabelKind,
    /// relevance: `related` | `unrelated`; sentiment: `negative` | `neutral` | `positive`;
    /// spam: `spam` | `bot` | `not_spam`; tag: 1 to 100 bytes; note: 1 to 2,000 bytes.
    pub value: String,
}

/// Labels a post, as the caller.
#[utoipa::path(
    tag = "review", operation_id = "create_label", summary = "Label a post",
    request_body = LabelInput,
    responses(
        (status = 201, description = "The label as stored", body = Label),
        (status = 400, description = "A value that is not one of the kind's, a relevance label \
            without a topic, a topic that is not live or did not match the post \
            (`invalid_label`), or a body that is not a label (`invalid_json`)", body = ErrorBody),
        (status = 404, description = "No stored post with this id (or it was deleted)", body = ErrorBody),
        (status = 409, description = "The post holds 200 labels already, or 20 from this caller \
            (`limit_reached`, undone labels counted)", body = ErrorBody),
        (status = 429, description = "The caller gave more labels than `topics.label_rate_per_sec` \
            allows (`rate_limited`, `Retry-After`)", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[post("/api/v1/labels")]
pub async fn create(state: State, input: web::Json<LabelInput>) -> Answer {
    let input = input.into_inner();
    if input.post_id.is_empty()
        || input.post_id.len() > MAX_ID_BYTES
        || input.post_id.contains('\0')
    {
        return Err(invalid(format!(
            "post_id must be 1 to {MAX_ID_BYTES} bytes"
        )));
    }
    if let Some(why) = input.kind.value_problem(&input.value) {
        return Err(invalid(why));
    }
    let topic = match (input.kind, input.topic_id) {
        (LabelKind::Relevance, Some(t)) => Some(t),
        (LabelKind::Relevance, None) => return Err(invalid("a relevance label needs topic_id")),
        (_, Some(_)) => return Err(invalid("topic_id goes only with a relevance label")),
        (_, None) => None,
    };
    let reviewer = state.owner();
    if let Err(wait) = state.review.budget.take(&reviewer) {
        return Err(ApiError::rate_limited(
            "labels",
            "this caller gives labels faster than topics.label_rate_per_sec allows",
            wait,
        ));
    }
    let mut client = state.db().await?;
    let tx = client.transaction().await?;
    let Some(target) = labels::target(&tx, &input.post_id).await? else {
        return Err(ApiError::not_found(format!(
            "no stored post {}: labels are for posts Pulse has stored (and not deleted)",
            input.post_id
        )));
    };
    if let Some(topic) = topic {
        if crate::db::topics::get(&*tx, topic).await?.is_none() {
            return Err(invalid(format!("no live topic with id {topic}")));
        }
        if !target.matched(topic) {
            return Err(invalid(format!(
                "topic {topic}'s query did not match post {}: relevance is for the posts a \
                 topic matched",
                input.post_id
            )));
        }
    }
    let (on_post, by_reviewer) = labels::count_on_post(&tx, &input.post_id, &reviewer).await?;
    if by_reviewer >= MAX_LABELS_PER_REVIEWER {
        return Err(ApiError::new(
            ErrorCode::LimitReached,
            format!(
                "this caller gave post {} {MAX_LABELS_PER_REVIEWER} labels, undone ones included",
                input.post_id
            ),
        ));
    }
    if on_post >= MAX_LABELS_PER_POST {
        return Err(ApiError::new(
            ErrorCode::LimitReached,
            format!("post {} holds {MAX_LABELS_PER_POST} labels", input.post_id),
        ));
    }
    let label = labels::insert(
        &tx,
        &NewLabel {
            post_id: &input.post_id,
            topic_id: topic,
            kind: input.kind,
            value: &input.value,
            reviewer: &reviewer,
        },
    )
    .await?;
    if let Some(topic) = topic {
        settle(&state, &tx, &input.post_id, topic, &target).await?;
        relevance::count_change(&tx, topic).await?;
    }
    if input.kind == LabelKind::Sentiment {
        crate::db::calibration::count_change(&tx).await?;
    }
    tx.commit().await?;
    metrics::counter!(names::LABELS, "kind" => input.kind.as_str()).increment(1);
    Ok(HttpResponse::Created().json(label))
}

/// Puts a post in or out of `topic` as its labels say (the newest that is not undone), or, with
/// none, as the topic's learned relevance says.
async fn settle(
    state: &State,
    tx: &tokio_postgres::Transaction<'_>,
    post_id: &str,
    topic: i64,
    target: &Target,
) -> Result<(), ApiError> {
    let label = labels::relevance_of(tx, post_id, topic).await?;
    let keep = state.review.counts(topic, label, target);
    let Some(version) = crate::db::topics::get(tx, topic).await?.map(|t| t.version) else {
        return Ok(());
    };
    let ids = [post_id];
    let (filter, restore): (&[&str], &[&str]) = if keep { (&[], &ids) } else { (&ids, &[]) };
    let high_churn = state.settings.metrics.high_churn_threshold;
    let (filtered, restored) =
        relevance::move_posts(tx, topic, version, filter, restore, high_churn).await?;
    for (change, n) in [("filtered", filtered), ("restored", restored)] {
        if n > 0 {
            metrics::counter!(names::RELEVANCE_MOVED, "change" => change).increment(n as u64);
        }
    }
    Ok(())
}

/// Undoes a label: it is kept, marked undone by the caller, and no longer counts.
#[utoipa::path(
    tag = "review", operation_id = "undo_label", summary = "Undo a label",
    params(("id" = i64, Path, description = "The label's id")),
    responses(
        (status = 200, description = "The label, undone", body = Label),
        (status = 400, description = "The id is not an integer (`invalid_path`), or the label \
            is undone already (`invalid_label`)", body = ErrorBody),
        (status = 403, description = "Another reviewer's label; only its reviewer or an \
            administrator undoes it (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No label with this id", body = ErrorBody),
        PostgresUnavailable,
    )
)]
#[delete("/api/v1/labels/{id}")]
pub async fn undo(state: State, id: web::Path<i64>) -> Answer {
    let id = id.into_inner();
    let who = state.owner();
    let mut client = state.db().await?;
    let Some(existing) = labels::get(&**client, id).await? else {
        return Err(ApiError::not_found(format!("no label {id}")));
    };
    if existing.reviewer != who && !state.is_admin() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "label {id} is {}'s; only they or an administrator undo it",
                existing.reviewer
            ),
        ));
    }
    let tx = client.transaction().await?;
    // The post first, as labelling locks it, so an undo and a label of one post queue up.
    let target = labels::target(&tx, &existing.post_id).await?;
    let Some(label) = labels::undo(&tx, id, &who).await? else {
        return Err(invalid(format!("label {id} is undone already")));
    };
    if let (Some(topic), Some(target)) = (label.topic_id, &target) {
        settle(&state, &tx, &label.post_id, topic, target).await?;
    }
    if let Some(topic) = label.topic_id {
        relevance::count_change(&tx, topic).await?;
    }
    if label.kind == LabelKind::Sentiment {
        crate::db::calibration::count_change(&tx).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(label))
}

/// Filters of the label listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LabelQuery {
    pub post_id: Option<String>,
    pub topic_id: Option<i64>,
    /// Who gave them, as labels name their reviewer (`key:<id>`).
    pub reviewer: Option<String>,
    pub kind: Option<LabelKind>,
    /// Labels given at or after this time.
    #[serde(default, deserialize_with = "crate::models::time::bounded")]
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<DateTime<Utc>>,
    /// Undone labels too (default false).
    #[serde(default)]
    pub include_undone: bool,
    /// Labels after this id: the previous page's `next_after`.
    pub after: Option<i64>,
    /// 1 to 1,000 (default 100).
    pub limit: Option<i64>,
}

/// A page of labels.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LabelPage {
    /// In the order they were given.
    pub items: Vec<Label>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<i64>,
}

/// Lists labels in the order they were given: the whole record, for review and export.
#[utoipa::path(
    tag = "review", operation_id = "list_labels", summary = "List labels", params(LabelQuery),
    responses(
        (status = 200, description = "Labels in the order they were given", body = LabelPage),
        BadFilter, PostgresUnavailable,
    )
)]
#[get("/api/v1/labels")]
pub async fn list(state: State, q: web::Query<LabelQuery>) -> Answer {
    let limit = crate::http::filters::page_limit(q.limit, 100, MAX_PAGE)?;
    for (name, value) in [("post_id", &q.post_id), ("reviewer", &q.reviewer)] {
        if value
            .as_ref()
            .is_some_and(|v| v.is_empty() || v.len() > MAX_ID_BYTES || v.contains('\0'))
        {
            return Err(ApiError::invalid_query(format!(
                "{name} must be 1 to {MAX_ID_BYTES} bytes"
            )));
        }
    }
    let client = state.db().await?;
    let items = labels::list(
        &**client,
        &labels::Query {
            post_id: q.post_id.as_deref(),
            topic_id: q.topic_id,
            reviewer: q.reviewer.as_deref(),
            kind: q.kind,
            since: q.since,
            undone: q.include_undone,
            after: q.after.unwrap_or(0),
            limit,
        },
    )
    .await?;
    let next_after = crate::http::cursor::after_full_page(&items, limit, |l| l.id);
    Ok(HttpResponse::Ok().json(LabelPage { items, next_after }))
}

//! Digests: how a period went, for the people who read a report instead of the dashboard.
//! [`content`] reads every figure through the API's own code, [`chart`] draws the period,
//! [`render`] writes the e-mail, Slack and Teams forms, and `POST /api/v1/digests/preview`
//! answers all of it for any period and scope, sending nothing.

pub mod chart;
pub mod content;
pub mod render;
pub mod runner;
pub mod schedules;

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::content::{equal_periods_before, Digest, DigestInput, DigestScope, HISTORY};
use self::render::Rendered;
use crate::http::answer::Answer;
use crate::http::documented::CostlyReadBusy;
use crate::http::error::{ApiError, ErrorBody, PostgresUnavailable};
use crate::http::state::State;
use crate::models::metrics::Period;

/// The name of the whole stream's scope.
const ALL_POSTS: &str = "All posts";

/// Longest period one digest covers, in days.
pub const MAX_DIGEST_DAYS: i64 = 31;

/// What a digest is about: `"all"` (every post) or `{"topic": <id>}`.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ScopeInput {
    /// `"all"`: the whole stream.
    All(AllPosts),
    /// One live topic.
    Topic { topic: i64 },
}

/// The whole stream.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AllPosts {
    All,
}

/// `POST /api/v1/digests/preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestPreviewRequest {
    pub scope: ScopeInput,
    /// Start of the period (inclusive, taken back to its minute).
    #[serde(deserialize_with = "crate::models::time::bounded_required")]
    pub from: DateTime<Utc>,
    /// End of the period (exclusive, taken back to its minute).
    #[serde(deserialize_with = "crate::models::time::bounded_required")]
    pub to: DateTime<Utc>,
}

/// A digest and its rendered forms.
#[derive(Debug, Serialize, ToSchema)]
pub struct DigestPreview {
    #[serde(flatten)]
    pub digest: Digest,
    /// Whether it would be marked late (a preview never is).
    pub late: bool,
    pub rendered: Rendered,
}

/// The scope's name, checking that its topic is live.
pub async fn scope_of(
    client: &tokio_postgres::Client,
    scope: &ScopeInput,
) -> Result<DigestScope, ApiError> {
    match scope {
        ScopeInput::All(_) => Ok(DigestScope {
            topic: None,
            name: ALL_POSTS.into(),
        }),
        ScopeInput::Topic { topic } => match crate::db::topics::get(client, *topic).await? {
            Some(t) => Ok(DigestScope {
                topic: Some(t.id),
                name: t.name,
            }),
            None => Err(ApiError::invalid_query(format!(
                "no live topic with id {topic}"
            ))),
        },
    }
}

/// The scope of a schedule's digests: a topic deleted after scheduling is still reported on
/// (its posts keep their tags), under the name `Topic <id> (deleted)`.
pub async fn schedule_scope(
    client: &tokio_postgres::Client,
    topic: Option<i64>,
) -> Result<DigestScope, tokio_postgres::Error> {
    Ok(match topic {
        None => DigestScope {
            topic: None,
            name: ALL_POSTS.into(),
        },
        Some(id) => DigestScope {
            topic: Some(id),
            name: crate::db::topics::get(client, id)
                .await?
                .map_or_else(|| format!("Topic {id} (deleted)"), |t| t.name),
        },
    })
}

/// `[from, to)` as a digest's period, or a 400 saying why not.
pub fn digest_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Period, ApiError> {
    let period = Period::between(from, to);
    let end = period.to.unwrap_or(period.from);
    if period.from >= end {
        return Err(ApiError::invalid_query(
            "from must be at least a minute before to",
        ));
    }
    if end - period.from > TimeDelta::days(MAX_DIGEST_DAYS) {
        return Err(ApiError::invalid_query(format!(
            "a digest covers at most {MAX_DIGEST_DAYS} days"
        )));
    }
    Ok(period)
}

/// The digest of `scope` over `period`, weighed against the eight periods as long before it
/// (a preview's, or a digest sent now).
pub async fn compute_against_equal_periods(
    client: &tokio_postgres::Client,
    settings: &crate::config::Settings,
    scope: DigestScope,
    period: Period,
    view: Option<i64>,
) -> Result<Digest, ApiError> {
    content::compute(
        client,
        DigestInput {
            scope,
            period,
            history: equal_periods_before(period, HISTORY),
            high_churn: settings.metrics.high_churn_threshold,
            dashboard_url: &settings.webhooks.dashboard_url,
            view,
        },
    )
    .await
}

/// Draws the chart and renders every form, off the HTTP workers.
pub async fn rendered(digest: Digest, late: bool) -> Result<(Digest, Rendered), ApiError> {
    web::block(move || {
        let png = chart::png(&digest.series, digest.from, digest.to)?;
        let rendered = render::render(&digest, &png, late);
        Ok::<_, String>((digest, rendered))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// The digest of a period, as it would be sent, sending nothing.
#[utoipa::path(
    tag = "digests", operation_id = "preview_digest", summary = "Preview a digest",
    description = "Every figure a digest of this scope and period holds, each read as the \
            API's own endpoint answers it, with the e-mail, Slack and Teams forms and the chart. \
            The period's history is the eight periods as long before it.",
    request_body = DigestPreviewRequest,
    responses(
        (status = 200, description = "The digest and its forms", body = DigestPreview),
        (status = 400, description = "A bad scope or period (`invalid_query`, `invalid_body`)", body = ErrorBody),
        CostlyReadBusy, PostgresUnavailable,
    )
)]
#[post("/api/v1/digests/preview")]
pub async fn preview(state: State, input: web::Json<DigestPreviewRequest>) -> Answer {
    let input = input.into_inner();
    let period = digest_period(input.from, input.to)?;
    let _costly = state.costly_read().await?;
    let client = state.db().await?;
    let scope = scope_of(&client, &input.scope).await?;
    let digest =
        compute_against_equal_periods(&client, &state.settings, scope, period, None).await?;
    drop(client);
    let (digest, rendered) = rendered(digest, false).await?;
    Ok(HttpResponse::Ok().json(DigestPreview {
        digest,
        late: false,
        rendered,
    }))
}

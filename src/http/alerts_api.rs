//! Alert rules (`/api/v1/alert-rules`: create, list, read, update, delete, enable, disable)
//! and alerts (`/api/v1/alerts`: list with filters and pagination, acknowledge, resolve).

use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::filters;
use super::sql::{self, Conditions};
use super::state::State;
use super::AppState;
use crate::actors::alerter::{AlertRule, KINDS, RULE_COLUMNS};

/// Dimensions a rule may watch.
const DIMENSIONS: [&str; 6] = [
    "overall", "platform", "city", "country", "product", "channel",
];
/// Severities a rule may carry.
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];
/// Alert statuses.
const STATUSES: [&str; 3] = ["firing", "acknowledged", "resolved"];
/// Page size of the alert list when the caller does not ask for one.
const DEFAULT_PAGE: i64 = 50;
/// Largest page of the alert list.
const MAX_PAGE: i64 = 500;

/// A rule as clients write it; on update every field is optional. On create `name` and
/// `kind` are required.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    /// 1 to 200 bytes, not blank.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Option<String>,
    #[schema(value_type = Option<RuleKind>)]
    pub kind: Option<String>,
    /// Default `overall`.
    #[schema(value_type = Option<RuleDimension>)]
    pub dimension: Option<String>,
    /// The key watched within the dimension; null watches every key.
    pub key: Option<Option<String>>,
    /// 1 to 1440 (default 5).
    #[schema(minimum = 1, maximum = 1440)]
    pub window_minutes: Option<i32>,
    /// A finite number (default 0.5).
    pub threshold: Option<f64>,
    /// At least 0 (default 20).
    #[schema(minimum = 0)]
    pub min_volume: Option<i64>,
    /// 1 to 10080 (default 60).
    #[schema(minimum = 1, maximum = 10080)]
    pub baseline_minutes: Option<i32>,
    /// A finite number, at least 0 (default 3).
    #[schema(minimum = 0.0)]
    pub k: Option<f64>,
    /// At least 1 (default 6).
    #[schema(minimum = 1)]
    pub min_baseline_points: Option<i32>,
    /// Default `warning`.
    #[schema(value_type = Option<Severity>)]
    pub severity: Option<String>,
    /// At least 0 (default 900).
    #[schema(minimum = 0)]
    pub cooldown_secs: Option<i32>,
    pub enabled: Option<bool>,
}

/// The body of `POST /api/v1/alert-rules`: a [`RuleInput`] whose `name` and `kind` are
/// required (the handler answers 400 without them). Only a schema: the handler reads a
/// [`RuleInput`].
pub struct NewRule;

impl utoipa::PartialSchema for NewRule {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        use utoipa::openapi::{Ref, RefOr};
        let RefOr::T(Schema::Object(mut object)) = <RuleInput as utoipa::PartialSchema>::schema()
        else {
            panic!("the schema of RuleInput is not an object");
        };
        object.required = vec!["name".into(), "kind".into()];
        object.properties.insert(
            "name".into(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(200))
                .pattern(Some("\\S"))
                .description(Some("1 to 200 bytes, not blank."))
                .into(),
        );
        object.properties.insert(
            "kind".into(),
            Ref::from_schema_name(<RuleKind as ToSchema>::name()).into(),
        );
        object.description = Some(
            "A new rule: `name` and `kind` are required, every other field has a default.".into(),
        );
        object.into()
    }
}

impl ToSchema for NewRule {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <RuleInput as ToSchema>::schemas(schemas);
    }
}

/// What a rule watches for (the stored `kind`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Negativity,
    Churn,
    VolumeSpike,
    SentimentDip,
    Toxicity,
}

/// The dimension a rule watches.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleDimension {
    Overall,
    Platform,
    City,
    Country,
    Product,
    Channel,
}

/// How urgent a rule's alerts are.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Acknowledged,
    Resolved,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_rule", message)
}

impl RuleInput {
    /// Checks every given field; the database checks them again.
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(name) = &self.name {
            if name.trim().is_empty() || name.len() > 200 {
                return Err(invalid("name must be 1 to 200 bytes"));
            }
        }
        if let Some(field) = sql::unstorable([
            ("name", self.name.as_deref()),
            ("key", self.key.as_ref().and_then(|k| k.as_deref())),
        ]) {
            return Err(invalid(format!("{field} must not contain NUL characters")));
        }
        if let Some(kind) = &self.kind {
            if !KINDS.contains(&kind.as_str()) {
                return Err(invalid(format!("kind must be one of {KINDS:?}")));
            }
        }
        if let Some(d) = &self.dimension {
            if !DIMENSIONS.contains(&d.as_str()) {
                return Err(invalid(format!("dimension must be one of {DIMENSIONS:?}")));
            }
        }
        if let Some(s) = &self.severity {
            if !SEVERITIES.contains(&s.as_str()) {
                return Err(invalid(format!("severity must be one of {SEVERITIES:?}")));
            }
        }
        if self
            .window_minutes
            .is_some_and(|w| !(1..=1440).contains(&w))
        {
            return Err(invalid("window_minutes must be between 1 and 1440"));
        }
        if self
            .baseline_minutes
            .is_some_and(|w| !(1..=10080).contains(&w))
        {
            return Err(invalid("baseline_minutes must be between 1 and 10080"));
        }
        if self.min_volume.is_some_and(|v| v < 0)
            || self.cooldown_secs.is_some_and(|v| v < 0)
            || self.min_baseline_points.is_some_and(|v| v < 1)
        {
            return Err(invalid(
                "min_volume and cooldown_secs must be ≥ 0, min_baseline_points ≥ 1",
            ));
        }
        if self.threshold.is_some_and(|t| !t.is_finite())
            || self.k.is_some_and(|k| !k.is_finite() || k < 0.0)
        {
            return Err(invalid(
                "threshold must be finite and k a non-negative number",
            ));
        }
        Ok(())
    }
}

async fn fetch_rule(client: &tokio_postgres::Client, id: i64) -> Result<AlertRule, ApiError> {
    let row = client
        .query_opt(
            &format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = $1"),
            &[&id],
        )
        .await?;
    row.map(|r| AlertRule::from_row(&r))
        .ok_or_else(|| ApiError::not_found(format!("no alert rule {id}")))
}

/// Every alert rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    /// Oldest first.
    pub items: Vec<AlertRule>,
}

/// Every rule, oldest first.
#[utoipa::path(
    tag = "alerts",
    summary = "List alert rules",
    responses(
        (status = 200, description = "Every rule, oldest first", body = RuleList),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/alert-rules")]
pub async fn list_rules(state: State) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let rules: Vec<AlertRule> = client
        .query(
            &format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY id"),
            &[],
        )
        .await?
        .iter()
        .map(AlertRule::from_row)
        .collect();
    Ok(HttpResponse::Ok().json(RuleList { items: rules }))
}

/// Creates a rule; `name` and `kind` are required, the rest have defaults.
#[utoipa::path(
    tag = "alerts",
    summary = "Create an alert rule",
    request_body = NewRule,
    responses(
        (status = 201, description = "The rule as stored", body = AlertRule),
        (status = 400, description = "A missing or invalid field (`invalid_rule`) or a body \
            that is not a rule (`invalid_json`)", body = ErrorBody),
        (status = 413, description = "Body larger than the JSON limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[post("/api/v1/alert-rules")]
pub async fn create_rule(
    state: State,
    input: web::Json<RuleInput>,
) -> Result<HttpResponse, ApiError> {
    let input = input.into_inner();
    input.validate()?;
    let (Some(name), Some(kind)) = (&input.name, &input.kind) else {
        return Err(invalid("name and kind are required"));
    };
    let client = state.pool.get().await?;
    let id: i64 = client
        .query_one(
            "INSERT INTO alert_rules (name, kind) VALUES ($1, $2) RETURNING id",
            &[name, kind],
        )
        .await?
        .get(0);
    let rule = apply(&client, id, &input).await?;
    Ok(HttpResponse::Created().json(rule))
}

/// Writes the given fields of `input` to rule `id`.
async fn apply(
    client: &tokio_postgres::Client,
    id: i64,
    input: &RuleInput,
) -> Result<AlertRule, ApiError> {
    let mut sets: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = &input.$field {
                params.push(Box::new(v.clone()));
                sets.push(format!("{} = ${}", stringify!($field), params.len()));
            }
        };
    }
    set!(name);
    set!(kind);
    set!(dimension);
    set!(key);
    set!(window_minutes);
    set!(threshold);
    set!(min_volume);
    set!(baseline_minutes);
    set!(k);
    set!(min_baseline_points);
    set!(severity);
    set!(cooldown_secs);
    set!(enabled);
    if !sets.is_empty() {
        params.push(Box::new(id));
        let sql = format!(
            "UPDATE alert_rules SET {}, updated_at = now() WHERE id = ${}",
            sets.join(", "),
            params.len()
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let n = client.execute(&sql, &refs).await?;
        if n == 0 {
            return Err(ApiError::not_found(format!("no alert rule {id}")));
        }
    }
    fetch_rule(client, id).await
}

/// One rule.
#[utoipa::path(
    tag = "alerts",
    summary = "One alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule", body = AlertRule),
        (status = 400, description = "The id is not an integer (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No rule with this id", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/alert-rules/{id}")]
pub async fn get_rule(state: State, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(fetch_rule(&client, *id).await?))
}

/// Updates the given fields of a rule.
#[utoipa::path(
    tag = "alerts",
    summary = "Update an alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    request_body(content = RuleInput, description = "The fields to change; absent fields keep their value"),
    responses(
        (status = 200, description = "The rule as stored", body = AlertRule),
        (status = 400, description = "The id is not an integer (`invalid_path`), an invalid \
            field (`invalid_rule`) or a body that is not a rule (`invalid_json`)", body = ErrorBody),
        (status = 404, description = "No rule with this id", body = ErrorBody),
        (status = 413, description = "Body larger than the JSON limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[patch("/api/v1/alert-rules/{id}")]
pub async fn update_rule(
    state: State,
    id: web::Path<i64>,
    input: web::Json<RuleInput>,
) -> Result<HttpResponse, ApiError> {
    input.validate()?;
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(apply(&client, *id, &input).await?))
}

/// Deletes a rule; its alerts stay, without a rule.
#[utoipa::path(
    tag = "alerts",
    summary = "Delete an alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not an integer (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No rule with this id", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[delete("/api/v1/alert-rules/{id}")]
pub async fn delete_rule(state: State, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let n = client
        .execute("DELETE FROM alert_rules WHERE id = $1", &[&*id])
        .await?;
    if n == 0 {
        return Err(ApiError::not_found(format!("no alert rule {id}")));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Enables a rule.
#[utoipa::path(
    tag = "alerts",
    summary = "Enable an alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule as stored", body = AlertRule),
        (status = 400, description = "The id is not an integer (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No rule with this id", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[post("/api/v1/alert-rules/{id}/enable")]
pub async fn enable_rule(state: State, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    set_enabled(&state, *id, true).await
}

/// Disables a rule.
#[utoipa::path(
    tag = "alerts",
    summary = "Disable an alert rule",
    params(("id" = i64, Path, description = "The rule's id")),
    responses(
        (status = 200, description = "The rule as stored", body = AlertRule),
        (status = 400, description = "The id is not an integer (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No rule with this id", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[post("/api/v1/alert-rules/{id}/disable")]
pub async fn disable_rule(state: State, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    set_enabled(&state, *id, false).await
}

async fn set_enabled(state: &AppState, id: i64, enabled: bool) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let input = RuleInput {
        enabled: Some(enabled),
        ..Default::default()
    };
    Ok(HttpResponse::Ok().json(apply(&client, id, &input).await?))
}

/// Filters of the alert list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    #[param(value_type = Option<AlertStatus>, inline)]
    pub status: Option<String>,
    /// The rule kind (an unknown kind matches nothing).
    pub kind: Option<String>,
    /// The severity (an unknown severity matches nothing).
    pub severity: Option<String>,
    /// The dimension (an unknown dimension matches nothing).
    pub dimension: Option<String>,
    pub key: Option<String>,
    pub rule_id: Option<i64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Only alerts with an id below this (the previous page's `next_before`).
    pub before: Option<i64>,
}

/// An alert a rule raised.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    pub id: i64,
    /// The rule that raised it; null once the rule is deleted.
    pub rule_id: Option<i64>,
    pub rule_name: String,
    #[schema(value_type = RuleKind)]
    pub kind: String,
    #[schema(value_type = Severity)]
    pub severity: String,
    #[schema(value_type = RuleDimension)]
    pub dimension: String,
    /// The key within the dimension (empty for `overall`).
    pub key: String,
    #[schema(value_type = AlertStatus)]
    pub status: String,
    /// The figure that crossed the threshold.
    pub value: f64,
    pub threshold: f64,
    /// What the rule saw when it fired (figures depend on the kind).
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    pub fired_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A page of alerts, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertPage {
    pub items: Vec<AlertView>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

const ALERT_COLUMNS: &str =
    "id, rule_id, rule_name, kind, severity, dimension, key, status, value, \
    threshold, evidence, fired_at, acknowledged_at, resolved_at";

fn alert_json(r: &tokio_postgres::Row) -> AlertView {
    AlertView {
        id: r.get(0),
        rule_id: r.get(1),
        rule_name: r.get(2),
        kind: r.get(3),
        severity: r.get(4),
        dimension: r.get(5),
        key: r.get(6),
        status: r.get(7),
        value: r.get(8),
        threshold: r.get(9),
        evidence: r.get(10),
        fired_at: r.get(11),
        acknowledged_at: r.get(12),
        resolved_at: r.get(13),
    }
}

/// Alerts, newest first.
#[utoipa::path(
    tag = "alerts",
    summary = "List alerts",
    params(AlertQuery),
    responses(
        (status = 200, description = "A page of alerts, newest first", body = AlertPage),
        (status = 400, description = "A bad filter or limit (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[get("/api/v1/alerts")]
pub async fn list_alerts(
    state: State,
    query: web::Query<AlertQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    if let Some(name) = sql::unstorable([
        ("kind", q.kind.as_deref()),
        ("severity", q.severity.as_deref()),
        ("dimension", q.dimension.as_deref()),
        ("key", q.key.as_deref()),
    ]) {
        return Err(filters::nul_in_query(name));
    }
    if q.status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("status must be one of {STATUSES:?}"),
        ));
    }
    let mut conditions = Conditions::default();
    for (column, value) in [
        ("status", q.status),
        ("kind", q.kind),
        ("severity", q.severity),
        ("dimension", q.dimension),
        ("key", q.key),
    ] {
        if let Some(v) = value {
            conditions.push(&format!("{column} ="), v);
        }
    }
    if let Some(rule) = q.rule_id {
        conditions.push("rule_id =", rule);
    }
    if let Some(before) = q.before {
        conditions.push("id <", before);
    }
    let limit_param = conditions.bind(limit + 1);
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts {} ORDER BY id DESC LIMIT {limit_param}",
        conditions.where_sql()
    );
    let client = state.pool.get().await?;
    let refs = conditions.params();
    let rows = client.query(&sql, &refs).await?;
    let has_more = rows.len() as i64 > limit;
    let items: Vec<AlertView> = rows.iter().take(limit as usize).map(alert_json).collect();
    let next_before = if has_more {
        items.last().map(|a| a.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(AlertPage { items, next_before }))
}

/// Acknowledges a firing alert (someone is on it).
#[utoipa::path(
    tag = "alerts",
    operation_id = "acknowledge_alert",
    summary = "Acknowledge an alert",
    params(("id" = i64, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "The alert, now acknowledged", body = AlertView),
        (status = 400, description = "The id is not an integer (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No alert with this id", body = ErrorBody),
        (status = 409, description = "The alert is not firing (`invalid_transition`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[post("/api/v1/alerts/{id}/ack")]
pub async fn acknowledge(state: State, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    transition(
        &state,
        *id,
        "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now() WHERE id = $1 AND status = 'firing'",
    )
    .await
}

/// Resolves an alert by hand.
#[utoipa::path(
    tag = "alerts",
    operation_id = "resolve_alert",
    summary = "Resolve an alert",
    params(("id" = i64, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "The alert, now resolved", body = AlertView),
        (status = 400, description = "The id is not an integer (`invalid_path`)", body = ErrorBody),
        (status = 404, description = "No alert with this id", body = ErrorBody),
        (status = 409, description = "The alert is already resolved (`invalid_transition`)", body = ErrorBody),
        (status = 500, description = "Unexpected failure", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody),
    )
)]
#[post("/api/v1/alerts/{id}/resolve")]
pub async fn resolve(state: State, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    transition(
        &state,
        *id,
        "UPDATE alerts SET status = 'resolved', resolved_at = now() WHERE id = $1 AND status <> 'resolved'",
    )
    .await
}

async fn transition(state: &AppState, id: i64, sql: &str) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let changed = client.execute(sql, &[&id]).await?;
    let row = client
        .query_opt(
            &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    if changed == 0 {
        return Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "invalid_transition",
            format!("alert {id} is {}", row.get::<_, String>(7)),
        ));
    }
    Ok(HttpResponse::Ok().json(alert_json(&row)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names an enum serialises to, in declaration order.
    fn names<T: Serialize>(values: &[T]) -> Vec<String> {
        values
            .iter()
            .map(|v| {
                serde_json::to_value(v)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn documented_enums_are_the_validated_values() {
        use RuleDimension as D;
        use RuleKind as K;
        assert_eq!(
            names(&[
                K::Negativity,
                K::Churn,
                K::VolumeSpike,
                K::SentimentDip,
                K::Toxicity
            ]),
            KINDS
        );
        assert_eq!(
            names(&[
                D::Overall,
                D::Platform,
                D::City,
                D::Country,
                D::Product,
                D::Channel
            ]),
            DIMENSIONS
        );
        assert_eq!(
            names(&[Severity::Info, Severity::Warning, Severity::Critical]),
            SEVERITIES
        );
        assert_eq!(
            names(&[
                AlertStatus::Firing,
                AlertStatus::Acknowledged,
                AlertStatus::Resolved
            ]),
            STATUSES
        );
    }

    #[test]
    fn a_new_rule_requires_name_and_kind() {
        let schema = serde_json::to_value(<NewRule as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["name", "kind"]));
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["kind"]["$ref"],
            "#/components/schemas/RuleKind"
        );
    }
}

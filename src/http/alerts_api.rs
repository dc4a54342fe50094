//! Alert rules (`/api/v1/alert-rules`: create, list, read, update, delete, enable, disable)
//! and alerts (`/api/v1/alerts`: list with filters and pagination, acknowledge, resolve).

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use tokio_postgres::types::ToSql;

use super::error::ApiError;
use super::sql::Conditions;
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

/// A rule as clients write it; on update every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub dimension: Option<String>,
    pub key: Option<Option<String>>,
    pub window_minutes: Option<i32>,
    pub threshold: Option<f64>,
    pub min_volume: Option<i64>,
    pub baseline_minutes: Option<i32>,
    pub k: Option<f64>,
    pub min_baseline_points: Option<i32>,
    pub severity: Option<String>,
    pub cooldown_secs: Option<i32>,
    pub enabled: Option<bool>,
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

/// Every rule, oldest first.
#[get("/api/v1/alert-rules")]
pub async fn list_rules(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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
    Ok(HttpResponse::Ok().json(json!({"items": rules})))
}

/// Creates a rule; `name` and `kind` are required, the rest have defaults.
#[post("/api/v1/alert-rules")]
pub async fn create_rule(
    state: web::Data<AppState>,
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
#[get("/api/v1/alert-rules/{id}")]
pub async fn get_rule(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(fetch_rule(&client, *id).await?))
}

/// Updates the given fields of a rule.
#[patch("/api/v1/alert-rules/{id}")]
pub async fn update_rule(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    input: web::Json<RuleInput>,
) -> Result<HttpResponse, ApiError> {
    input.validate()?;
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(apply(&client, *id, &input).await?))
}

/// Deletes a rule; its alerts stay, without a rule.
#[delete("/api/v1/alert-rules/{id}")]
pub async fn delete_rule(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
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
#[post("/api/v1/alert-rules/{id}/enable")]
pub async fn enable_rule(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    set_enabled(&state, *id, true).await
}

/// Disables a rule.
#[post("/api/v1/alert-rules/{id}/disable")]
pub async fn disable_rule(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub severity: Option<String>,
    pub dimension: Option<String>,
    pub key: Option<String>,
    pub rule_id: Option<i64>,
    pub limit: Option<i64>,
    /// Only alerts with an id below this (the previous page's `next_before`).
    pub before: Option<i64>,
}

const ALERT_COLUMNS: &str =
    "id, rule_id, rule_name, kind, severity, dimension, key, status, value, \
    threshold, evidence, fired_at, acknowledged_at, resolved_at";

fn alert_json(r: &tokio_postgres::Row) -> serde_json::Value {
    json!({
        "id": r.get::<_, i64>(0), "rule_id": r.get::<_, Option<i64>>(1), "rule_name": r.get::<_, String>(2),
        "kind": r.get::<_, String>(3), "severity": r.get::<_, String>(4),
        "dimension": r.get::<_, String>(5), "key": r.get::<_, String>(6),
        "status": r.get::<_, String>(7), "value": r.get::<_, f64>(8), "threshold": r.get::<_, f64>(9),
        "evidence": r.get::<_, serde_json::Value>(10),
        "fired_at": r.get::<_, chrono::DateTime<chrono::Utc>>(11),
        "acknowledged_at": r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(12),
        "resolved_at": r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(13),
    })
}

/// Alerts, newest first.
#[get("/api/v1/alerts")]
pub async fn list_alerts(
    state: web::Data<AppState>,
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
    let items: Vec<serde_json::Value> = rows.iter().take(limit as usize).map(alert_json).collect();
    let next_before = if has_more {
        items.last().and_then(|a| a["id"].as_i64())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(json!({"items": items, "next_before": next_before})))
}

/// Acknowledges a firing alert (someone is on it).
#[post("/api/v1/alerts/{id}/ack")]
pub async fn acknowledge(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    transition(
        &state,
        *id,
        "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now() WHERE id = $1 AND status = 'firing'",
    )
    .await
}

/// Resolves an alert by hand.
#[post("/api/v1/alerts/{id}/resolve")]
pub async fn resolve(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
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

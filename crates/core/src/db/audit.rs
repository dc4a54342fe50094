//! The audit log: every admin change (keys, alert rules, webhooks) and every refused attempt
//! at one, with who, when, from where and what was asked, in PostgreSQL.
//!
//! An HTTP change is recorded before it runs (`attempted`) and completed after
//! (`succeeded`/`failed` with the status); when the record cannot be written the change is
//! refused, so no admin change happens unrecorded. Secrets in payloads are redacted.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::telemetry::names;

/// Fields holding URLs, kept without their user information and query values.
const URL_FIELDS: [&str; 2] = ["url", "webhook_url"];
/// Payload fields whose values are never stored. Not `key`: an alert rule's key is the
/// product, channel or place it watches, and an API key is redacted wherever it appears.
const SECRET_FIELDS: [&str; 5] = ["secret", "password", "api_key", "token", "jwt_secret"];
/// Largest payload kept, in bytes of JSON; larger ones are replaced by a note.
const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// One record to write.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// `key:<id>`, `cli:<user>` or the open server's anonymous caller.
    pub actor: String,
    pub actor_role: Option<String>,
    /// What was done, e.g. `rule.create`, `key.revoke`.
    pub action: String,
    /// What it was done to, e.g. `/api/v1/alert-rules/3` or a key id.
    pub target: Option<String>,
    pub payload: Value,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Attempted,
    Succeeded,
    Failed,
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Attempted => "attempted",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }
}

/// A stored record, as `GET /api/v1/admin/audit` returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Record {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_role: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub status: Option<i16>,
    /// The request body (any JSON), secrets redacted; null when there was none.
    pub payload: Value,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

/// The action name of an audited HTTP request, from its method and path.
pub fn action_for(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let resource = match segments.get(2).copied() {
        Some("alert-rules") => "rule",
        Some("webhooks") => "webhook",
        Some("labels") => "label",
        Some("review") => "review",
        Some("calibration") => "calibration",
        Some("saved-searches") => "saved_search",
        Some("digests") => "digest_schedule",
        Some("topics") => match segments.get(4).copied() {
            Some("retags") => "topic_retag",
            Some("relevance") => "topic_relevance",
            _ => "topic",
        },
        Some("admin") => match segments.get(3).copied() {
            Some("keys") => "key",
            _ => "admin",
        },
        _ => "api",
    };
    let verb = match (method, segments.last().copied()) {
        (
            _,
            Some(last @ ("enable" | "disable" | "cancel" | "rotate" | "test" | "send" | "next")),
        ) => last,
        ("POST", _) => "create",
        ("PATCH" | "PUT", _) => "update",
        ("DELETE", _) if resource == "key" => "revoke",
        ("DELETE", _) if resource == "label" => "undo",
        ("DELETE", _) => "delete",
        _ => "change",
    };
    format!("{resource}.{verb}")
}

/// `value` with every secret field's value and every API key replaced, and bounded in size.
pub fn redact(value: Value) -> Value {
    fn storable(s: &str) -> String {
        // PostgreSQL's jsonb cannot hold U+0000.
        s.replace('\0', "\u{FFFD}")
    }
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                // Slack's and Teams' incoming-webhook URLs carry their secret in the path.
                let path_is_secret = matches!(
                    map.get("kind").and_then(Value::as_str),
                    Some("slack" | "teams")
                );
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    if SECRET_FIELDS.contains(&k.to_ascii_lowercase().as_str()) {
                        v = Value::String("[redacted]".into());
                    } else if let (true, Value::String(url)) =
                        (URL_FIELDS.contains(&k.to_ascii_lowercase().as_str()), &v)
                    {
                        // Receivers' URLs often carry credentials or a token.
                        v = Value::String(if path_is_secret {
                            crate::egress::origin_only(url)
                        } else {
                            crate::egress::redact_url(url)
                        });
                    } else {
                        walk(&mut v);
                    }
                    map.insert(storable(&k), v);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::String(s) if crate::models::key_text::parse(s.trim()).is_some() => {
                *s = "[redacted]".into()
            }
            Value::String(s) if s.contains('\0') => *s = storable(s),
            _ => {}
        }
    }
    let mut value = value;
    walk(&mut value);
    if value.to_string().len() > MAX_PAYLOAD_BYTES {
        return serde_json::json!({"note": format!("payload over {MAX_PAYLOAD_BYTES} bytes, not kept")});
    }
    value
}

/// What a record keeps of a body past its caller's allowance
/// (`limits.audit_payload_bytes_per_day`): its size and SHA-256, enough to tell whether a body
/// someone holds is the one that was sent.
pub fn withheld(body: &[u8]) -> Value {
    use sha2::{Digest, Sha256};
    metrics::counter!(names::AUDIT_PAYLOADS_WITHHELD).increment(1);
    serde_json::json!({
        "note": "payload not kept: the caller's audit allowance for the day is spent",
        "bytes": body.len(),
        "sha256": crate::models::hex::hex(&Sha256::digest(body)),
    })
}

/// Writes `entry` with `outcome` and returns its id.
pub async fn record(
    client: &impl GenericClient,
    entry: &Entry,
    outcome: Outcome,
    status: Option<i16>,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "INSERT INTO audit_log (actor, actor_role, action, target, outcome, status, payload, request_id, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &entry.actor,
                &entry.actor_role,
                &entry.action,
                &entry.target,
                &outcome.as_str(),
                &status,
                &redact(entry.payload.clone()),
                &entry.request_id,
                &entry.ip,
            ],
        )
        .await;
    match &row {
        Ok(_) => {
            metrics::counter!(names::AUDIT_RECORDS, "outcome" => outcome.as_str()).increment(1)
        }
        Err(_) => metrics::counter!(names::AUDIT_FAILURES).increment(1),
    }
    Ok(row?.get(0))
}

/// Completes an `attempted` record with how the change ended.
pub async fn finish(
    client: &impl GenericClient,
    id: i64,
    outcome: Outcome,
    status: i16,
    target: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    let done = client
        .execute(
            "UPDATE audit_log SET outcome = $2, status = $3, target = COALESCE($4, target) WHERE id = $1",
            &[&id, &outcome.as_str(), &status, &target],
        )
        .await;
    match &done {
        Ok(_) => {
            metrics::counter!(names::AUDIT_RECORDS, "outcome" => outcome.as_str()).increment(1)
        }
        Err(_) => metrics::counter!(names::AUDIT_FAILURES).increment(1),
    }
    done.map(|_| ())
}

/// A stored payload as JSON. Read as text: PostgreSQL keeps numbers exactly, and one at the
/// edge of `f64` (as a client may send) would fail a typed read; such a payload comes back
/// as its text rather than failing the listing.
fn readable(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// Filters of a listing.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only records with an id below this (keyset pagination).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Records matching `query`, newest first.
pub async fn list(
    client: &impl GenericClient,
    query: &Query,
) -> Result<Vec<Record>, tokio_postgres::Error> {
    super::read_rows(
        client,
        "SELECT id, at, actor, actor_role, action, target, outcome, status, payload::text, request_id, ip \
         FROM audit_log \
         WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR actor = $2) \
           AND ($3::text IS NULL OR outcome = $3) AND ($4::timestamptz IS NULL OR at >= $4) \
           AND ($5::bigint IS NULL OR id < $5) \
         ORDER BY id DESC LIMIT $6",
        &[
            &query.action,
            &query.actor,
            &query.outcome,
            &query.since,
            &query.before,
            &query.limit,
        ],
        |r| Record {
            id: r.get(0),
            at: r.get(1),
            actor: r.get(2),
            actor_role: r.get(3),
            action: r.get(4),
            target: r.get(5),
            outcome: r.get(6),
            status: r.get(7),
            payload: readable(r.get(8)),
            request_id: r.get(9),
            ip: r.get(10),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_are_named_by_resource_and_verb() {
        assert_eq!(action_for("POST", "/api/v1/alert-rules"), "rule.create");
        assert_eq!(action_for("PATCH", "/api/v1/alert-rules/4"), "rule.update");
        assert_eq!(
            action_for("POST", "/api/v1/alert-rules/4/disable"),
            "rule.disable"
        );
        assert_eq!(action_for("DELETE", "/api/v1/alert-rules/4"), "rule.delete");
        assert_eq!(action_for("POST", "/api/v1/webhooks"), "webhook.create");
        assert_eq!(action_for("DELETE", "/api/v1/webhooks/2"), "webhook.delete");
        assert_eq!(action_for("POST", "/api/v1/admin/keys"), "key.create");
        assert_eq!(action_for("DELETE", "/api/v1/admin/keys/abc"), "key.revoke");
        assert_eq!(
            action_for("POST", "/api/v1/admin/keys/abc/rotate"),
            "key.rotate"
        );
        // Each subject by its name, and an action that creates nothing by its own.
        for (method, path, action) in [
            ("POST", "/api/v1/webhooks/2/test", "webhook.test"),
            ("POST", "/api/v1/saved-searches", "saved_search.create"),
            ("DELETE", "/api/v1/saved-searches/3", "saved_search.delete"),
            (
                "POST",
                "/api/v1/digests/schedules",
                "digest_schedule.create",
            ),
            (
                "PATCH",
                "/api/v1/digests/schedules/1",
                "digest_schedule.update",
            ),
            (
                "POST",
                "/api/v1/digests/schedules/1/send",
                "digest_schedule.send",
            ),
            ("POST", "/api/v1/review/next", "review.next"),
        ] {
            assert_eq!(action_for(method, path), action, "{method} {path}");
        }
    }

    // Failed while every field named `key` was taken for a secret: the rule's key was lost.
    #[test]
    fn an_alert_rules_key_is_kept() {
        let rule = json!({"name": "phone", "kind": "negativity", "dimension": "product",
            "key": "pulse-phone", "k": 3.0});
        assert_eq!(redact(rule.clone()), rule);
    }

    #[test]
    fn secrets_never_reach_the_log() {
        let v = redact(
            json!({"url": "https://u:p@x/hook?token=t0k", "secret": "s3cr3t", "nested": [{"Token": "t"}]}),
        );
        assert_eq!(
            v,
            json!({"url": "https://***@x/hook?token=***", "secret": "[redacted]", "nested": [{"Token": "[redacted]"}]})
        );
        assert_eq!(
            redact(json!({"kind": "slack", "url": "https://hooks.slack.com/services/T/B/s3cret"})),
            json!({"kind": "slack", "url": "https://hooks.slack.com/***"})
        );
        let api_key = format!("pulse_{}_{}", "1a".repeat(6), "2b".repeat(32));
        assert_eq!(
            redact(json!({"key": api_key, "note": [format!(" {api_key}")]})),
            json!({"key": "[redacted]", "note": ["[redacted]"]})
        );
        let nul = redact(json!({"a\u{0}": ["b\u{0}"]}));
        assert_eq!(
            nul,
            json!({"a\u{FFFD}": ["b\u{FFFD}"]}),
            "jsonb holds no NUL"
        );
        let big = redact(json!({"text": "x".repeat(MAX_PAYLOAD_BYTES)}));
        assert!(big.get("note").is_some());
    }
}

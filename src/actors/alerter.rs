//! The alerter: evaluates the enabled alert rules as windows advance (on a timer, never on the
//! ingest path), fires an alert with its evidence when a condition holds, and resolves it once
//! the condition has stayed clear for `alerts.resolve_after_secs`.
//!
//! Rules read the per-minute rollups, so every process of a group sees the same figures. The
//! database allows one open alert per rule and scope, so when several processes evaluate at
//! once exactly one of them fires it and publishes it.
//!
//! Kinds:
//! - `negativity`: negative share of the window at or above `threshold`, with `min_volume` posts;
//! - `churn`: share of high-churn posts at or above `threshold`, with `min_volume` posts;
//! - `toxicity`: mean toxicity at or above `threshold`, with `min_volume` posts;
//! - `volume_spike`: posts in the window above the baseline mean + `k` standard deviations,
//!   the baseline being the windows of the same length in the `baseline_minutes` before it
//!   (at least `min_baseline_points` of them);
//! - `sentiment_dip`: mean sentiment below the baseline mean - `k` standard deviations.

use std::sync::Arc;
use std::time::Duration;

use actix::{fut::wrap_future, Actor, ActorFutureExt, AsyncContext, Context, Recipient};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::Row;

use crate::config::Settings;
use crate::http::metrics_api::Stats;
use crate::models::Platform;
use crate::ws::{FilterKeys, Publish, Topic};

/// A stored alert rule.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertRule {
    pub id: i64,
    pub name: String,
    #[schema(value_type = crate::http::alerts_api::RuleKind)]
    pub kind: String,
    #[schema(value_type = crate::http::alerts_api::RuleDimension)]
    pub dimension: String,
    /// The key watched; null watches every key of the dimension.
    pub key: Option<String>,
    pub window_minutes: i32,
    pub threshold: f64,
    pub min_volume: i64,
    pub baseline_minutes: i32,
    pub k: f64,
    pub min_baseline_points: i32,
    #[schema(value_type = crate::http::alerts_api::Severity)]
    pub severity: String,
    pub cooldown_secs: i32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Columns of `alert_rules` in [`AlertRule`] order.
pub const RULE_COLUMNS: &str = "id, name, kind, dimension, key, window_minutes, threshold, \
    min_volume, baseline_minutes, k, min_baseline_points, severity, cooldown_secs, enabled, \
    created_at, updated_at";

impl AlertRule {
    /// Reads a row selected with [`RULE_COLUMNS`].
    pub fn from_row(row: &Row) -> AlertRule {
        AlertRule {
            id: row.get(0),
            name: row.get(1),
            kind: row.get(2),
            dimension: row.get(3),
            key: row.get(4),
            window_minutes: row.get(5),
            threshold: row.get(6),
            min_volume: row.get(7),
            baseline_minutes: row.get(8),
            k: row.get(9),
            min_baseline_points: row.get(10),
            severity: row.get(11),
            cooldown_secs: row.get(12),
            enabled: row.get(13),
            created_at: row.get(14),
            updated_at: row.get(15),
        }
    }

    /// The WebSocket message type of this rule's alerts.
    pub fn event_type(&self) -> String {
        let suffix = match self.kind.as_str() {
            "volume_spike" => "spike",
            other => other,
        };
        format!("alert:{suffix}")
    }
}

/// The rule kinds, as stored.
pub const KINDS: [&str; 5] = [
    "negativity",
    "churn",
    "volume_spike",
    "sentiment_dip",
    "toxicity",
];

/// The alerter actor.
pub struct Alerter {
    settings: Arc<Settings>,
    pool: Pool,
    publish: Option<Recipient<Publish>>,
    busy: bool,
}

impl Alerter {
    /// An alerter reading rules and rollups through `pool`, publishing to `publish`.
    pub fn new(settings: Arc<Settings>, pool: Pool, publish: Option<Recipient<Publish>>) -> Self {
        Self {
            settings,
            pool,
            publish,
            busy: false,
        }
    }
}

impl Actor for Alerter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if !self.settings.alerts.enabled {
            return;
        }
        let every = Duration::from_secs_f64(self.settings.alerts.evaluate_every_secs.max(0.1));
        ctx.run_interval(every, |this, ctx| {
            if this.busy {
                return;
            }
            this.busy = true;
            let (pool, settings) = (this.pool.clone(), this.settings.clone());
            ctx.spawn(
                wrap_future::<_, Self>(async move { evaluate(&pool, &settings).await }).map(
                    |result, this, _| {
                        this.busy = false;
                        match result {
                            Ok(fired) => {
                                for alert in fired {
                                    this.announce(alert);
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "alert evaluation failed"),
                        }
                    },
                ),
            );
        });
    }
}

impl Alerter {
    fn announce(&self, alert: Fired) {
        tracing::warn!(rule = %alert.rule.name, kind = %alert.rule.kind, key = %alert.key, value = alert.value, "alert fired");
        metrics::counter!(crate::telemetry::names::ALERTS_FIRED, "kind" => alert.rule.kind.clone())
            .increment(1);
        if let Some(publish) = &self.publish {
            publish.do_send(Publish {
                topic: Topic::Alerts,
                event_type: alert.rule.event_type(),
                data: Arc::from(alert.body.to_string()),
                keys: scope_keys(&alert.rule.dimension, &alert.key),
            });
        }
    }
}

/// What an alert is about, for WebSocket filters.
fn scope_keys(dimension: &str, key: &str) -> FilterKeys {
    let mut keys = FilterKeys::default();
    match dimension {
        "platform" => keys.platform = Platform::parse(key),
        "product" => keys.product = Some(key.to_string()),
        "city" => keys.city = Some(key.to_string()),
        "country" => keys.country = Some(key.to_string()),
        "channel" => keys.channel = Some(key.to_string()),
        _ => {}
    }
    keys
}

/// An alert this process fired.
struct Fired {
    rule: AlertRule,
    key: String,
    value: f64,
    body: serde_json::Value,
}

/// The figures of one scope at one evaluation.
struct Observation {
    key: String,
    stats: Stats,
    /// Posts and mean sentiment of each earlier window of the baseline, oldest first.
    baseline: Vec<(i64, f64)>,
}

const SUMS: &str = "sum(posts)::int8, sum(sentiment_sum)::float8, sum(negative)::int8, \
    sum(neutral)::int8, sum(positive)::int8, sum(toxicity_sum)::float8, sum(churn_sum)::float8, \
    sum(high_churn)::int8, sum(anger)::int8, sum(joy)::int8, sum(optimism)::int8, \
    sum(sadness)::int8, sum(likes)::int8, sum(shares)::int8, sum(comments)::int8, sum(views)::int8";

async fn observe(
    client: &tokio_postgres::Client,
    rule: &AlertRule,
    now: DateTime<Utc>,
) -> Result<Vec<Observation>, tokio_postgres::Error> {
    let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let window = i64::from(rule.window_minutes.max(1));
    let from = minute - TimeDelta::minutes(window - 1);
    let key_filter = if rule.key.is_some() {
        "AND key = $3"
    } else {
        "AND $3::text IS NULL"
    };
    let sql = format!(
        "SELECT key, {SUMS} FROM metric_rollups WHERE dimension = $1 AND minute >= $2 {key_filter} \
         GROUP BY key"
    );
    let rows = client
        .query(&sql, &[&rule.dimension, &from, &rule.key])
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    let baseline_from = from - TimeDelta::minutes(i64::from(rule.baseline_minutes.max(1)));
    for row in rows {
        let key: String = row.get(0);
        let stats = Stats::from_row(&row, 1);
        let baseline = if matches!(rule.kind.as_str(), "volume_spike" | "sentiment_dip") {
            let windows = client
                .query(
                    "SELECT floor(extract(epoch FROM ($3::timestamptz - minute))::float8 / 60 / $4::float8)::int8 AS w, \
                     sum(posts)::int8, (sum(sentiment_sum) / NULLIF(sum(posts), 0))::float8 \
                     FROM metric_rollups WHERE dimension = $1 AND key = $2 \
                     AND minute >= $5 AND minute < $3 GROUP BY 1 ORDER BY 1 DESC",
                    &[&rule.dimension, &key, &from, &(window as f64), &baseline_from],
                )
                .await?;
            // Quiet windows count as zero volume (and carry no sentiment), but windows from
            // before the first post of the scope are not history: they are skipped, so a new
            // installation warms up instead of calling its first posts a spike.
            let n = (i64::from(rule.baseline_minutes.max(1)) / window).max(1);
            let all: Vec<(i64, f64)> = (0..n)
                .rev()
                .map(|w| {
                    windows
                        .iter()
                        .find(|r| r.get::<_, i64>(0) == w)
                        .map_or((0, f64::NAN), |r| {
                            (
                                r.get::<_, i64>(1),
                                r.get::<_, Option<f64>>(2).unwrap_or(f64::NAN),
                            )
                        })
                })
                .collect();
            let first = all
                .iter()
                .position(|(posts, _)| *posts > 0)
                .unwrap_or(all.len());
            all[first..].to_vec()
        } else {
            Vec::new()
        };
        out.push(Observation {
            key,
            stats,
            baseline,
        });
    }
    Ok(out)
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Whether the rule's condition holds, with the observed value, the effective threshold and
/// the baseline used.
fn check(rule: &AlertRule, o: &Observation) -> (bool, f64, f64, serde_json::Value) {
    let s = &o.stats;
    let enough = s.posts >= rule.min_volume;
    match rule.kind.as_str() {
        "negativity" => (
            enough && s.sentiment.negative_share >= rule.threshold,
            s.sentiment.negative_share,
            rule.threshold,
            json!(null),
        ),
        "churn" => (
            enough && s.churn.high_share >= rule.threshold,
            s.churn.high_share,
            rule.threshold,
            json!(null),
        ),
        "toxicity" => (
            enough && s.toxicity_mean >= rule.threshold,
            s.toxicity_mean,
            rule.threshold,
            json!(null),
        ),
        "volume_spike" => {
            let points: Vec<f64> = o.baseline.iter().map(|(n, _)| *n as f64).collect();
            if points.len() < rule.min_baseline_points as usize {
                return (
                    false,
                    s.posts as f64,
                    f64::NAN,
                    json!({"points": points.len(), "warming_up": true}),
                );
            }
            let (mean, std) = mean_std(&points);
            let limit = mean + rule.k * std.max(1.0);
            (
                enough && s.posts as f64 > limit,
                s.posts as f64,
                limit,
                json!({"mean": mean, "std": std, "points": points.len(), "window_minutes": rule.window_minutes}),
            )
        }
        "sentiment_dip" => {
            let points: Vec<f64> = o
                .baseline
                .iter()
                .map(|(_, m)| *m)
                .filter(|m| m.is_finite())
                .collect();
            if points.len() < rule.min_baseline_points as usize {
                return (
                    false,
                    s.sentiment.mean,
                    f64::NAN,
                    json!({"points": points.len(), "warming_up": true}),
                );
            }
            let (mean, std) = mean_std(&points);
            let limit = mean - rule.k * std.max(0.05);
            (
                enough && s.sentiment.mean < limit,
                s.sentiment.mean,
                limit,
                json!({"mean": mean, "std": std, "points": points.len(), "window_minutes": rule.window_minutes}),
            )
        }
        _ => (false, 0.0, 0.0, json!(null)),
    }
}

/// The posts and terms that drove an alert: the most negative (or most at-risk, or most
/// toxic) posts of the window in the scope, and the terms most frequent among them.
async fn examples(
    client: &tokio_postgres::Client,
    rule: &AlertRule,
    key: &str,
    from: DateTime<Utc>,
) -> Result<(serde_json::Value, serde_json::Value), tokio_postgres::Error> {
    let order = match rule.kind.as_str() {
        "churn" => "churn_risk DESC",
        "toxicity" => "toxicity DESC",
        "volume_spike" => "created_at DESC",
        _ => "sentiment_score ASC",
    };
    let scope = match rule.dimension.as_str() {
        "overall" => "$2::text IS NOT NULL".to_string(),
        d => format!("{d} = $2"),
    };
    let sql = format!(
        "SELECT id, platform, text, sentiment_label, sentiment_score, churn_risk, toxicity, created_at \
         FROM posts WHERE created_at >= $1 AND {scope} ORDER BY {order} LIMIT 200"
    );
    let rows = client.query(&sql, &[&from, &key]).await?;
    let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
    for row in &rows {
        for term in crate::actors::aggregator::extract_terms(row.get::<_, &str>(2)) {
            *counts.entry(term).or_default() += 1;
        }
    }
    let mut terms: Vec<(String, i64)> = counts.into_iter().collect();
    terms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let terms: Vec<serde_json::Value> = terms
        .into_iter()
        .take(10)
        .map(|(term, posts)| json!({"term": term, "posts": posts}))
        .collect();
    let posts: Vec<serde_json::Value> = rows
        .iter()
        .take(5)
        .map(|r| {
            json!({"id": r.get::<_, String>(0), "platform": r.get::<_, String>(1),
                   "text": r.get::<_, String>(2), "sentiment": r.get::<_, String>(3),
                   "sentiment_score": r.get::<_, f32>(4), "churn_risk": r.get::<_, f32>(5),
                   "toxicity": r.get::<_, f32>(6), "created_at": r.get::<_, DateTime<Utc>>(7)})
        })
        .collect();
    Ok((json!(posts), json!(terms)))
}

/// One evaluation of every enabled rule; returns the alerts this call fired.
async fn evaluate(pool: &Pool, settings: &Settings) -> anyhow::Result<Vec<Fired>> {
    let client = pool.get().await?;
    let now = Utc::now();
    let rules: Vec<AlertRule> = client
        .query(
            &format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE enabled"),
            &[],
        )
        .await?
        .iter()
        .map(AlertRule::from_row)
        .collect();
    let resolve_after = settings.alerts.resolve_after_secs as f64;
    let mut fired = Vec::new();
    for rule in rules {
        let observations = observe(&client, &rule, now).await?;
        let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
        let from = minute - TimeDelta::minutes(i64::from(rule.window_minutes.max(1)) - 1);
        let mut holding = Vec::new();
        for o in &observations {
            let (holds, value, threshold, baseline) = check(&rule, o);
            if !holds {
                continue;
            }
            holding.push(o.key.clone());
            // Already open: the condition still holds, so it is not clearing.
            let open = client
                .execute(
                    "UPDATE alerts SET cleared_since = NULL WHERE rule_id = $1 AND dimension = $2 \
                     AND key = $3 AND status <> 'resolved'",
                    &[&rule.id, &rule.dimension, &o.key],
                )
                .await?;
            if open > 0 {
                continue;
            }
            let cooling: bool = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM alerts WHERE rule_id = $1 AND dimension = $2 AND key = $3 \
                     AND fired_at > now() - make_interval(secs => $4))",
                    &[&rule.id, &rule.dimension, &o.key, &f64::from(rule.cooldown_secs)],
                )
                .await?
                .get(0);
            if cooling {
                continue;
            }
            let (posts, terms) = examples(&client, &rule, &o.key, from).await?;
            let evidence = json!({
                "window": {"minutes": rule.window_minutes, "from": from, "to": now, "stats": o.stats},
                "value": value, "threshold": if threshold.is_finite() { json!(threshold) } else { json!(null) },
                "baseline": baseline, "min_volume": rule.min_volume,
                "top_posts": posts, "top_terms": terms,
            });
            let threshold = if threshold.is_finite() {
                threshold
            } else {
                rule.threshold
            };
            // The alert and its webhook deliveries are written by one statement, so a crash
            // can never leave an alert that no subscriber will hear about.
            let partial = json!({
                "rule_id": rule.id, "rule_name": rule.name, "kind": rule.kind,
                "severity": rule.severity, "dimension": rule.dimension, "key": o.key,
                "status": "firing", "value": value, "threshold": threshold, "evidence": evidence,
            });
            let inserted = client
                .query_opt(
                    "WITH a AS ( \
                         INSERT INTO alerts (rule_id, rule_name, kind, severity, dimension, key, value, threshold, evidence) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (rule_id, dimension, key) WHERE status <> 'resolved' DO NOTHING \
                         RETURNING id, fired_at), \
                     d AS ( \
                         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) \
                         SELECT w.id, a.id, $10::jsonb || jsonb_build_object('id', a.id, 'fired_at', a.fired_at) \
                         FROM a CROSS JOIN webhooks w \
                         WHERE w.enabled AND (w.kinds IS NULL OR $3 = ANY(w.kinds))) \
                     SELECT id, fired_at FROM a",
                    &[&rule.id, &rule.name, &rule.kind, &rule.severity, &rule.dimension, &o.key, &value, &threshold, &evidence, &partial],
                )
                .await?;
            if let Some(row) = inserted {
                let id: i64 = row.get(0);
                let fired_at: DateTime<Utc> = row.get(1);
                let body = json!({
                    "id": id, "rule_id": rule.id, "rule_name": rule.name, "kind": rule.kind,
                    "severity": rule.severity, "dimension": rule.dimension, "key": o.key,
                    "status": "firing", "value": value, "threshold": threshold,
                    "fired_at": fired_at, "evidence": evidence,
                });
                fired.push(Fired {
                    rule: rule.clone(),
                    key: o.key.clone(),
                    value,
                    body,
                });
            }
        }
        // Open alerts whose condition no longer holds start (or continue) clearing, and
        // resolve once clear for long enough.
        client
            .execute(
                "UPDATE alerts SET cleared_since = COALESCE(cleared_since, now()) \
                 WHERE rule_id = $1 AND status <> 'resolved' AND NOT (key = ANY($2))",
                &[&rule.id, &holding],
            )
            .await?;
        client
            .execute(
                "UPDATE alerts SET status = 'resolved', resolved_at = now() \
                 WHERE rule_id = $1 AND status <> 'resolved' AND cleared_since IS NOT NULL \
                 AND cleared_since <= now() - make_interval(secs => $2)",
                &[&rule.id, &resolve_after],
            )
            .await?;
    }
    Ok(fired)
}

//! Alerts against a real Pulse: a scripted stream with a known negativity spike and volume
//! spike fires exactly the expected alerts, once, with their evidence, over REST and WebSocket;
//! rules are managed over REST.

use crate::common;
use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn post_at(id: &str, text: &str, minutes_ago: i64) -> String {
    PostEvent::new(id, text)
        .author("a", 10)
        .minutes_ago(minutes_ago)
        .without(&["geo", "channel"])
        .to_string()
}

/// `n` posts `{prefix}-{i}` created now by as many authors (`u{i}`, 10 followers), with no
/// place or channel; each text `text #{i}`, so none repeats another.
fn complaints(prefix: &str, n: usize, text: &str) -> impl Iterator<Item = PostEvent> {
    let (prefix, text) = (prefix.to_string(), text.to_string());
    (0..n).map(move |i| {
        PostEvent::new(&format!("{prefix}-{i}"), &format!("{text} #{i}"))
            .author(&format!("u{i}"), 10)
            .without(&["geo", "channel"])
    })
}

/// Sends `n` posts `{prefix}-{i}` saying `text`, created now.
async fn send_posts(app: &TestApp, prefix: &str, n: usize, text: &str) {
    let posts: Vec<String> = (0..n)
        .map(|i| post_at(&format!("{prefix}-{i}"), text, 0))
        .collect();
    app.send_events(&posts).await;
}

/// Alerts as [`quick_alerts`] fires them at 30% negative, and webhooks polled every 50 ms that
/// try a delivery three times at most, 50 ms apart at first.
fn quick_retries(s: &mut pulse::config::Settings) {
    quick_alerts(s, 0.3);
    s.webhooks.base_delay_ms = 50;
    s.webhooks.max_attempts = 3;
    s.webhooks.poll_ms = 50;
}

/// The `fields` of each item of `list`, joined by spaces (an absent one empty), sorted: what a
/// listing holds whatever its order.
fn sorted_summaries(list: &Value, fields: &[&str]) -> Vec<String> {
    let mut summaries: Vec<String> = items(list)
        .iter()
        .map(|item| {
            let values: Vec<&str> = fields
                .iter()
                .map(|f| item[*f].as_str().unwrap_or_default())
                .collect();
            values.join(" ")
        })
        .collect();
    summaries.sort();
    summaries
}

/// Replaces every alert rule with one named `name`, of `severity`, on the negativity of the
/// product pulse-phone (half its posts negative, five posts at least); the stored rule.
async fn only_phone_negativity(app: &TestApp, name: &str, severity: &str) -> Value {
    app.only_rule(
        &json!({"name": name, "kind": "negativity", "dimension": "product",
                "key": "pulse-phone", "threshold": 0.5, "min_volume": 5, "severity": severity}),
    )
    .await
}

#[actix_rt::test]
async fn a_scripted_spike_fires_exactly_the_expected_alerts_once_with_evidence() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    // An hour of calm: a few positive and neutral posts every minute before the window.
    let calm = [
        "I love the new phone, great camera",
        "The phone arrived on Tuesday",
        "Really happy with the battery, awesome",
        "Ordered the blue one",
    ];
    let mut events = Vec::new();
    for minute in 5..65 {
        for i in 0..2 {
            events.push(post_at(
                &format!("calm-{minute}-{i}"),
                calm[(minute as usize + i) % 4],
                minute,
            ));
        }
    }
    pulse::streams::producer::xadd_events(&redis, &env.stream, &events)
        .await
        .unwrap();

    let app = env
        .serve(|s| {
            quick_alerts(s, 0.3);
        })
        .await;
    let env = &app.env;
    assert!(env.stored_exactly(120, Duration::from_secs(30)).await);

    let stream = tokio::net::TcpStream::connect(app.address()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", app.address()), stream)
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"subscribe","topics":["alerts"]}"#))
        .await
        .unwrap();

    // Calm evaluations fire nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.get("/api/v1/alerts").await.1["items"], json!([]));

    // The spike: sixty angry posts now.
    let spike: Vec<String> = (0..60)
        .map(|i| {
            post_at(
                &format!("angry-{i}"),
                "This is terrible, I hate it, worst phone ever, awful",
                0,
            )
        })
        .collect();
    // In one transaction, so the ingester reads them at once and the alert that fires counts
    // them all.
    pulse::streams::producer::xadd_events_atomically(&app.redis().await, &env.stream, &spike, &[])
        .await
        .unwrap();
    assert!(env.stored_exactly(180, Duration::from_secs(30)).await);

    // The stock rules: overall negativity, spike and dip, and the spike and dip on each product
    // (every post here is about one product).
    let expected = [
        "negativity overall ",
        "sentiment_dip overall ",
        "sentiment_dip product pulse-phone",
        "volume_spike overall ",
        "volume_spike product pulse-phone",
    ];
    assert!(
        wait_until(Duration::from_secs(30), || async {
            app.get("/api/v1/alerts").await.1["items"]
                .as_array()
                .unwrap()
                .len()
                >= expected.len()
        })
        .await
    );
    // Several more evaluations must not fire anything again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts = app.get("/api/v1/alerts").await.1;
    let kinds = sorted_summaries(&alerts["items"], &["kind", "dimension", "key"]);
    assert_eq!(kinds, expected, "{alerts}");

    let negativity = item_where(&alerts["items"], |a| a["kind"] == "negativity");
    let evidence = &negativity["evidence"];
    assert_eq!(negativity["status"], "firing");
    assert!(negativity["value"].as_f64().unwrap() >= 0.5);
    assert_eq!(evidence["window"]["stats"]["posts"], 60, "{evidence}");
    assert!(evidence["top_posts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["sentiment"] == "negative"));
    let terms: Vec<&str> = strings(&evidence["top_terms"], "term");
    assert!(terms.contains(&"terrible"), "{terms:?}");
    let spike_alert = item_where(&alerts["items"], |a| {
        a["kind"] == "volume_spike" && a["dimension"] == "overall"
    });
    assert!(
        spike_alert["evidence"]["baseline"]["points"]
            .as_i64()
            .unwrap()
            >= 6
    );
    assert!(spike_alert["value"].as_f64().unwrap() > spike_alert["threshold"].as_f64().unwrap());

    // The same five reached the WebSocket subscriber as alert:<kind>.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < expected.len() {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            let t = v["type"].as_str().unwrap().to_string();
            if t.starts_with("alert:") {
                seen.push(t);
            }
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "alert:negativity",
            "alert:sentiment_dip",
            "alert:sentiment_dip",
            "alert:spike",
            "alert:spike"
        ]
    );

    // Acknowledge, then resolve; a second acknowledge is a conflict.
    let id = negativity["id"].as_i64().unwrap();
    let (_, acked) = app.post_empty(&format!("/api/v1/alerts/{id}/ack")).await;
    assert_eq!(acked["status"], "acknowledged");
    let (again, _) = app.post_empty(&format!("/api/v1/alerts/{id}/ack")).await;
    assert_eq!(again, 409);
    let (_, resolved) = app
        .post_empty(&format!("/api/v1/alerts/{id}/resolve"))
        .await;
    assert_eq!(resolved["status"], "resolved");
    let firing = app.get("/api/v1/alerts?status=firing").await.1;
    assert_eq!(
        firing["items"].as_array().unwrap().len(),
        expected.len() - 1
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn alert_rules_are_managed_over_rest() {
    let app = spawn_app().await;

    let defaults = app.get("/api/v1/alert-rules").await.1;
    let stock = sorted_summaries(&defaults["items"], &["kind", "dimension"]);
    assert_eq!(
        stock,
        [
            "churn overall",
            "negativity overall",
            "sentiment_dip overall",
            "sentiment_dip product",
            "toxicity overall",
            "volume_spike overall",
            "volume_spike product"
        ],
        "the stock rules exist"
    );

    let rule = app
        .create_rule(
            &json!({"name": "Reddit negativity", "kind": "negativity", "dimension": "platform",
                      "key": "reddit", "threshold": 0.6, "severity": "critical"}),
        )
        .await;
    let id = rule["id"].as_i64().unwrap();
    assert_eq!(rule["key"], "reddit");
    assert_eq!(rule["window_minutes"], 5);

    let (_, patched) = app
        .patch(
            &format!("/api/v1/alert-rules/{id}"),
            &json!({"window_minutes": 15, "cooldown_secs": 60}),
        )
        .await;
    assert_eq!(
        (
            patched["window_minutes"].as_i64(),
            patched["threshold"].as_f64()
        ),
        (Some(15), Some(0.6))
    );
    let (_, disabled) = app
        .post_empty(&format!("/api/v1/alert-rules/{id}/disable"))
        .await;
    assert_eq!(disabled["enabled"], false);
    let (_, enabled) = app
        .post_empty(&format!("/api/v1/alert-rules/{id}/enable"))
        .await;
    assert_eq!(enabled["enabled"], true);

    for bad in [
        json!({"name": "x", "kind": "vibes"}),
        json!({"name": "x", "kind": "churn", "dimension": "galaxy"}),
        json!({"name": "x", "kind": "churn", "window_minutes": 0}),
        json!({"kind": "churn"}),
        json!({"name": "x", "kind": "churn", "surprise": true}),
    ] {
        let (status, body) = app.post("/api/v1/alert-rules", &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    assert_eq!(app.delete(&format!("/api/v1/alert-rules/{id}")).await, 204);
    let (missing, _) = app.get(&format!("/api/v1/alert-rules/{id}")).await;
    assert_eq!(missing, 404);
    app.shutdown().await;
}

/// What a local webhook receiver saw: (headers, body) per request.
type Seen =
    std::sync::Arc<std::sync::Mutex<Vec<(std::collections::HashMap<String, String>, String)>>>;

/// Starts a webhook receiver on a free port that fails its first `failures` requests with 500.
fn receiver(failures: usize) -> (std::net::SocketAddr, Seen, actix_web::dev::ServerHandle) {
    use actix_web::{HttpRequest, HttpResponse};
    let seen: Seen = Default::default();
    let state = seen.clone();
    let (addr, handle) = http_standin::receiver(move |req: HttpRequest, body: String| {
        let state = state.clone();
        async move {
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            let mut seen = state.lock().unwrap();
            seen.push((headers, body));
            if seen.len() <= failures {
                HttpResponse::InternalServerError().finish()
            } else {
                HttpResponse::Ok().finish()
            }
        }
    });
    (addr, seen, handle)
}

#[actix_rt::test]
async fn alerts_reach_webhooks_signed_retried_and_dead_lettered() {
    let app = spawn_app_tuned(quick_retries).await;

    let (flaky_addr, seen, receiver_handle) = receiver(2);
    let flaky = app
        .create_channel(
            &json!({"url": format!("http://{flaky_addr}/hook"), "kinds": ["negativity"]}),
        )
        .await;
    let secret = flaky["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    let closed = format!("http://127.0.0.1:{}/nobody-home", free_port());
    let dead = app
        .create_channel(
            &json!({"url": closed, "secret": "a-shared-secret-of-some-length", "kinds": ["negativity"]}),
        )
        .await;
    let (bad, _) = app
        .post("/api/v1/webhooks", &json!({"url": "ftp://x"}))
        .await;
    assert_eq!(bad, 400);

    send_posts(
        &app,
        "hook",
        30,
        "This is terrible, I hate it, worst phone ever",
    )
    .await;

    // The flaky receiver fails twice, then takes the delivery on the third attempt.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            seen.lock().unwrap().len() >= 3
        })
        .await
    );
    let (delivered, delivery) = app
        .await_delivery(&flaky, "delivered", Duration::from_secs(30))
        .await;
    assert!(delivered);
    assert_eq!(delivery["attempts"], 3, "{delivery}");

    let requests = seen.lock().unwrap().clone();
    for (headers, body) in &requests {
        let timestamp: i64 = headers["x-pulse-timestamp"].parse().unwrap();
        assert_eq!(
            headers["x-pulse-signature"],
            pulse::actors::webhooks::signature(&secret, timestamp, body)
        );
        assert_eq!(headers["x-pulse-event"], "alert:negativity");
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["kind"], "negativity");
        assert!(payload["id"].as_i64().is_some() && payload["evidence"]["top_posts"].is_array());
    }
    assert_eq!(
        requests.len(),
        3,
        "delivered once, no duplicate after success"
    );

    // The unreachable one is given up after max_attempts.
    let (given_up, gave_up) = app
        .await_delivery(&dead, "dead", Duration::from_secs(30))
        .await;
    assert!(given_up);
    assert_eq!(gave_up["attempts"], 3);
    assert!(gave_up["last_error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));

    // A new installation has no history: the spike and dip rules are still warming up, so
    // only the negativity rule fired.
    let kinds: Vec<String> = app.get("/api/v1/alerts").await.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["negativity"]);
    assert_eq!(
        app.env.post_count().await,
        30,
        "the pipeline went on regardless"
    );

    receiver_handle.stop(false).await;
    app.shutdown().await;
}

/// A receiver answering `429` with `Retry-After: 2` was asked again after the ordinary
/// backoff (50 ms here, a second by default): a rate-limited Slack or Teams channel spent every
/// attempt inside its window and the alert was dead-lettered. The wait it asks for is kept.
#[actix_rt::test]
async fn a_receiver_that_asks_for_a_wait_is_not_asked_again_sooner() {
    use actix_web::{HttpRequest, HttpResponse};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    let app = spawn_app_tuned(quick_retries).await;
    let arrivals: Arc<Mutex<Vec<Instant>>> = Default::default();
    let seen = arrivals.clone();
    let (addr, handle) = http_standin::receiver(move |_: HttpRequest, _: String| {
        let seen = seen.clone();
        async move {
            let mut seen = seen.lock().unwrap();
            seen.push(Instant::now());
            if seen.len() == 1 {
                HttpResponse::TooManyRequests()
                    .insert_header(("retry-after", "2"))
                    .finish()
            } else {
                HttpResponse::Ok().finish()
            }
        }
    });
    let channel = app
        .create_channel(&json!({"url": format!("http://{addr}/hook"), "kinds": ["negativity"]}))
        .await;
    send_posts(&app, "limited", 30, "This is terrible, I hate it").await;

    let (delivered, delivery) = app
        .await_delivery(&channel, "delivered", Duration::from_secs(30))
        .await;
    assert!(delivered, "{delivery}");
    assert_eq!(delivery["attempts"], 2, "{delivery}");
    let at = arrivals.lock().unwrap().clone();
    assert_eq!(at.len(), 2);
    let gap = at[1] - at[0];
    assert!(gap >= Duration::from_secs(2), "asked again after {gap:?}");
    handle.stop(false).await;
    app.shutdown().await;
}

/// A migrated database (kept while the environment lives) and a client of it, holding
/// `channels` webhooks (ids 1 to `channels`), `alerts` alerts (ids 1 to `alerts`), and the
/// deliveries the SQL `deliveries` queues between them.
async fn with_deliveries(
    channels: u32,
    alerts: u32,
    deliveries: &str,
) -> (TestEnv, tokio_postgres::Client) {
    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    pg.batch_execute(&format!(
        "INSERT INTO webhooks (url, secret) SELECT 'http://192.0.2.1/' || i, 's' \
         FROM generate_series(1, {channels}) AS i; \
         INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence) \
         SELECT 'r', 'negativity', 'warning', 'all', 'all', 1, 1, '{{}}' \
         FROM generate_series(1, {alerts}); \
         {deliveries}"
    ))
    .await
    .unwrap();
    (env, pg)
}

/// The deliveries a claim takes now, beside those `sending` holds: 32 at most, leased for a
/// minute, `per_channel` of a channel at once.
async fn claim_now(
    pg: &mut tokio_postgres::Client,
    per_channel: usize,
    sending: &pulse::db::webhooks::Sending,
) -> Vec<pulse::db::webhooks::Due> {
    pulse::db::webhooks::claim_due(pg, 32, 60.0, per_channel, sending)
        .await
        .unwrap()
}

/// Deliveries queued for a channel after its receiver asked for a wait were sent inside it,
/// each refused again and spending an attempt. The channel's deliveries now wait with it, those
/// queued during the wait as well, and a shorter wait asked meanwhile does not cut it.
#[actix_rt::test]
async fn a_channel_asked_to_wait_gets_no_delivery_until_then() {
    use pulse::db::webhooks::{hold_channel, Sending};
    let (_env, mut pg) = with_deliveries(
        2,
        3,
        "INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) VALUES (2, 3, '{}');",
    )
    .await;
    async fn claim(pg: &mut tokio_postgres::Client) -> Vec<i64> {
        let due = claim_now(pg, 4, &Sending::default()).await;
        due.iter().map(|d| d.webhook_id).collect()
    }
    // Channel 1 asked for an hour; then its refused delivery (due again by its own backoff)
    // and a new one are queued.
    hold_channel(&pg, 1, 3600.0).await.unwrap();
    pg.batch_execute(
        "INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, attempts, last_status) \
         VALUES (1, 1, '{}', 1, 429); \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) VALUES (1, 2, '{}');",
    )
    .await
    .unwrap();
    assert_eq!(
        claim(&mut pg).await,
        [2],
        "the waiting channel's deliveries wait"
    );

    // A channel told to wait now: its queued deliveries wait with it.
    pg.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE webhook_id = 2",
        &[],
    )
    .await
    .unwrap();
    hold_channel(&pg, 2, 3600.0).await.unwrap();
    hold_channel(&pg, 2, 0.0).await.unwrap();
    assert!(claim(&mut pg).await.is_empty());
}

/// A channel's hold was nowhere to be seen: the listing did not show it, and a delivery queued
/// during it showed a `next_attempt_at` in the past yet did not go. The listing shows the hold
/// now, and the delivery log the time a pending delivery goes, no sooner than the hold ends.
#[actix_rt::test]
async fn a_held_channel_shows_its_hold_and_its_pending_deliveries_wait_for_it() {
    use chrono::{DateTime, Utc};
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    let held = app
        .create_channel(&json!({"kind": "slack", "url": "http://127.0.0.1:9/services/held"}))
        .await;
    let free = app
        .create_channel(&json!({"kind": "slack", "url": "http://127.0.0.1:9/services/free"}))
        .await;
    let channel_of = |list: &Value, channel: &Value| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == channel["id"])
            .unwrap()
            .clone()
    };
    let (_, listed) = app.get("/api/v1/webhooks").await;
    assert_eq!(
        channel_of(&listed, &held)["held_until"],
        Value::Null,
        "{listed}"
    );

    let (held_id, free_id) = (held["id"].as_i64().unwrap(), free["id"].as_i64().unwrap());
    pulse::db::webhooks::hold_channel(&pg, held_id, 3600.0)
        .await
        .unwrap();
    // A delivery queued during the hold, due now by its own schedule; another to a channel
    // not held, due an hour ago (never claimed: its receiver does not listen, and it is read
    // before any attempt could change it).
    pg.batch_execute(&format!(
        "INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence) \
         VALUES ('r', 'negativity', 'warning', 'all', 'all', 1, 1, '{{}}'); \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, next_attempt_at) \
         SELECT {held_id}, max(id), '{{}}', now() FROM alerts; \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, next_attempt_at, status) \
         SELECT {free_id}, max(id), '{{}}', now() - interval '1 hour', 'dead' FROM alerts;"
    ))
    .await
    .unwrap();

    let (status, listed) = app.get("/api/v1/webhooks").await;
    assert_eq!(status, 200, "{listed}");
    let time = |v: &Value| serde_json::from_value::<DateTime<Utc>>(v.clone()).unwrap();
    let until = time(&channel_of(&listed, &held)["held_until"]);
    let ahead = (until - Utc::now()).num_seconds();
    assert!(
        (3000..=3600).contains(&ahead),
        "held for {ahead} s more: {listed}"
    );
    assert_eq!(
        channel_of(&listed, &free)["held_until"],
        Value::Null,
        "{listed}"
    );

    let pending = app.deliveries(&held).await["items"][0].clone();
    assert_eq!(pending["status"], "pending", "{pending}");
    assert!(
        time(&pending["next_attempt_at"]) >= until,
        "due no sooner than the hold ends ({until}): {pending}"
    );
    // A delivery that is not pending, or of a channel not held, keeps its own time.
    let dead = app.deliveries(&free).await["items"][0].clone();
    assert!(time(&dead["next_attempt_at"]) < Utc::now(), "{dead}");
    app.shutdown().await;
}

/// A channel's wait was kept as its refused delivery's next attempt, and the channel sent
/// nothing while that delivery was not due: the wait lasted the refused delivery's backoff
/// (here a minute or more), not the seconds its receiver asked for, and an alert fired during
/// it waited as long. The hold is the channel's now: a delivery queued during the wait goes
/// once the wait is over, before the refused one is due again.
#[actix_rt::test]
async fn a_wait_holds_what_is_queued_during_it_and_ends_when_the_receiver_asked() {
    use actix_web::{HttpRequest, HttpResponse};
    use pulse::db::alerts::{create_rule, fire, rule, NewAlert};
    use std::sync::{Arc, Mutex};
    let app = spawn_app_tuned(|s| {
        quick_webhooks(s);
        // A refused delivery is due again one to three minutes later.
        s.webhooks.base_delay_ms = 120_000;
    })
    .await;
    let pg = app.env.pg().await;
    // The deliveries the receiver was asked to take, in the order they came.
    let arrivals: Arc<Mutex<Vec<i64>>> = Default::default();
    let seen = arrivals.clone();
    let (addr, handle) = http_standin::receiver(move |req: HttpRequest, _: String| {
        let seen = seen.clone();
        async move {
            let delivery = req
                .headers()
                .get("x-pulse-delivery")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let mut seen = seen.lock().unwrap();
            seen.push(delivery.unwrap_or(-1));
            if seen.len() == 1 {
                HttpResponse::TooManyRequests()
                    .insert_header(("retry-after", "5"))
                    .finish()
            } else {
                HttpResponse::Ok().finish()
            }
        }
    });
    let channel = app
        .create_channel(&json!({"url": format!("http://{addr}/hook")}))
        .await;
    let channel_id = channel["id"].as_i64().unwrap();
    let rule_id = create_rule(
        &pg,
        "Held channel",
        pulse::models::alerts::RuleKind::Negativity,
    )
    .await
    .unwrap();
    let rule = rule(&pg, rule_id).await.unwrap().unwrap();
    let fire_on = |key: &'static str| {
        let (pg, rule) = (&pg, &rule);
        async move {
            let (alert, _) = fire(
                pg,
                NewAlert {
                    rule,
                    key,
                    value: 0.9,
                    threshold: 0.5,
                    evidence: &json!({}),
                    payload: &json!({"kind": "negativity", "key": key}),
                },
            )
            .await
            .unwrap()
            .expect("the alert fires");
            let row = pg
                .query_one(
                    "SELECT id FROM webhook_deliveries WHERE alert_id = $1 AND webhook_id = $2",
                    &[&alert, &channel_id],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0)
        }
    };

    let refused = fire_on("first").await;
    // The refusal is read from the database as soon as it is recorded, so the next alert
    // fires inside the five seconds the receiver asked for.
    let mut recorded = false;
    for _ in 0..3_000 {
        let row = pg
            .query_one(
                "SELECT last_status FROM webhook_deliveries WHERE id = $1",
                &[&refused],
            )
            .await
            .unwrap();
        if row.get::<_, Option<i32>>(0) == Some(429) {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(recorded, "the receiver got {:?}", arrivals.lock().unwrap());
    let queued = fire_on("second").await;
    let during: bool = pg
        .query_one(
            "SELECT d.created_at < w.held_until FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1",
            &[&queued],
        )
        .await
        .unwrap()
        .get(0);
    assert!(during, "the second alert was queued during the wait");

    let (delivered, delivery) = app
        .await_delivery(&channel, "delivered", Duration::from_secs(30))
        .await;
    assert!(delivered, "{delivery}");
    assert_eq!(delivery["id"], queued, "{delivery}");
    assert_eq!(
        delivery["attempts"], 1,
        "sent once, after the wait: {delivery}"
    );
    assert_eq!(
        *arrivals.lock().unwrap(),
        [refused, queued],
        "nothing was sent inside the wait"
    );
    // Sent once the hold was over, and before the refused delivery is due again.
    let row = pg
        .query_one(
            "SELECT q.delivered_at >= w.held_until, r.status, r.attempts, \
                    r.next_attempt_at > q.delivered_at \
             FROM webhook_deliveries q JOIN webhooks w ON w.id = q.webhook_id, \
                  webhook_deliveries r WHERE q.id = $1 AND r.id = $2",
            &[&queued, &refused],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the queued delivery went inside the wait"
    );
    assert_eq!(
        (row.get::<_, String>(1).as_str(), row.get::<_, i32>(2)),
        ("pending", 1)
    );
    assert!(
        row.get::<_, bool>(3),
        "the refused delivery's own backoff ends later"
    );
    handle.stop(false).await;
    app.shutdown().await;
}

/// A receiver that takes the connection and never answers held every other channel's
/// deliveries: they were sent beside it but recorded only once its request ended (the
/// receiver's timeout), and the next ones waited for the whole round. Each delivery is now
/// recorded when its own receiver answers.
#[actix_rt::test]
async fn a_receiver_that_never_answers_does_not_hold_back_the_other_channels() {
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.3);
        s.webhooks.poll_ms = 50;
        s.webhooks.timeout_secs = 600;
    })
    .await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for stream in silent.incoming().flatten() {
                held.lock().unwrap().push(stream);
            }
        });
    }
    let (answering_addr, seen, receiver_handle) = receiver(0);
    let hanging = app
        .create_channel(
            &json!({"url": format!("http://{silent_addr}/hook"), "kinds": ["negativity"]}),
        )
        .await;
    let answering = app
        .create_channel(
            &json!({"url": format!("http://{answering_addr}/hook"), "kinds": ["negativity"]}),
        )
        .await;

    send_posts(
        &app,
        "held",
        30,
        "This is terrible, I hate it, worst phone ever",
    )
    .await;

    assert!(
        wait_until(Duration::from_secs(60), || async {
            !held.lock().unwrap().is_empty()
        })
        .await
    );
    let (delivered, delivery) = app
        .await_delivery(&answering, "delivered", Duration::from_secs(60))
        .await;
    assert!(
        delivered,
        "recorded while the other receiver holds its request: {delivery}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    let (_, stuck) = app
        .await_delivery(&hanging, "pending", Duration::from_secs(1))
        .await;
    assert_eq!(stuck["status"], "pending", "{stuck}");
    assert_eq!(stuck["attempts"], 0, "{stuck}");

    receiver_handle.stop(false).await;
    app.shutdown().await;
}

/// A channel with a backlog older than every other channel's hid them: a claim read the oldest
/// due rows, all that channel's, and kept the four it may send at once. A claim now reads each
/// channel's first rows, and never one the process is still sending.
#[actix_rt::test]
async fn a_claim_reaches_every_channel_whatever_one_channels_backlog() {
    use pulse::db::webhooks::Sending;
    let (_env, mut pg) = with_deliveries(
        3,
        200,
        "INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, next_attempt_at) \
         SELECT 1, id, '{}', now() - interval '1 hour' + id * interval '1 ms' FROM alerts; \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) \
         SELECT w, 1, '{}' FROM generate_series(2, 3) AS w;",
    )
    .await;
    let per_channel = pulse::actors::webhooks::PER_CHANNEL;

    let first = claim_now(&mut pg, per_channel, &Sending::default()).await;
    let channels = |due: &[pulse::db::webhooks::Due]| {
        let mut by = std::collections::BTreeMap::<i64, usize>::new();
        due.iter()
            .for_each(|d| *by.entry(d.webhook_id).or_default() += 1);
        by
    };
    assert_eq!(
        channels(&first),
        [(1, per_channel), (2, 1), (3, 1)].into(),
        "the backlog's first {per_channel} and the others' one each"
    );

    // The leases run out while the process still sends them: the same rows are due again.
    pg.execute("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 hour' + alert_id * interval '1 ms'", &[])
        .await
        .unwrap();
    let mut sending = Sending(first.iter().map(|d| (d.id, d.webhook_id)).collect());
    let again = claim_now(&mut pg, per_channel, &sending).await;
    assert!(
        again.is_empty(),
        "claimed beside themselves: {:?}",
        channels(&again)
    );

    // All but one of the backlog's sends end: as many of its next rows take their places.
    let ended: Vec<i64> = first
        .iter()
        .filter(|d| d.webhook_id == 1)
        .skip(1)
        .map(|d| d.id)
        .collect();
    pg.execute(
        "UPDATE webhook_deliveries SET status = 'delivered' WHERE id = ANY($1)",
        &[&ended],
    )
    .await
    .unwrap();
    for id in &ended {
        sending.0.remove(id);
    }
    let more = claim_now(&mut pg, per_channel, &sending).await;
    assert_eq!(channels(&more), [(1, per_channel - 1)].into());
    assert!(more.iter().all(|d| first.iter().all(|f| f.id != d.id)));

    // A failing channel (a delivery due again after a failed attempt) gets one place: a
    // receiver that times out holds one, not four.
    pg.batch_execute(
        "UPDATE webhook_deliveries SET status = 'delivered' WHERE status = 'pending'; \
         INSERT INTO webhooks (url, secret) VALUES ('http://192.0.2.1/failing', 's'); \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, attempts) \
         SELECT (SELECT max(id) FROM webhooks), id, '{}', CASE WHEN id = 1 THEN 2 ELSE 0 END \
         FROM alerts WHERE id <= 10;",
    )
    .await
    .unwrap();
    let failing = claim_now(&mut pg, per_channel, &Sending::default()).await;
    assert_eq!(failing.len(), 1, "{:?}", channels(&failing));
    let sending = Sending(failing.iter().map(|d| (d.id, d.webhook_id)).collect());
    pg.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'",
        &[],
    )
    .await
    .unwrap();
    let beside = claim_now(&mut pg, per_channel, &sending).await;
    assert!(beside.is_empty(), "{:?}", channels(&beside));
}

/// A post may hold 20,000 bytes and an alert quotes five: quoted whole, a page of 500 alerts
/// held 2,500 such texts (300 MB of JSON when they are control characters). Evidence quotes
/// each cut to its first `EVIDENCE_TEXT_CHARS` characters, the last an ellipsis, as stored and
/// as listed.
#[actix_rt::test]
async fn evidence_quotes_long_posts_cut_to_a_bound() {
    use pulse::models::alerts::EVIDENCE_TEXT_CHARS;
    let app = spawn_app_tuned(|s| quick_alerts(s, 0.2)).await;
    only_phone_negativity(&app, "Long complaints", "warning").await;
    let long = "This is terrible, I hate it. \u{1}".repeat(666);
    assert!((19_000..=pulse::models::event::MAX_TEXT_BYTES).contains(&long.len()));
    send_posts(&app, "long", 6, &long).await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            !items(&app.get("/api/v1/alerts").await.1).is_empty()
        })
        .await
    );
    let list = app.get("/api/v1/alerts").await.1;
    let alert = &items(&list)[0];
    let quoted = alert["evidence"]["top_posts"].as_array().unwrap();
    assert!(!quoted.is_empty(), "{alert}");
    for post in quoted {
        let text = post["text"].as_str().unwrap();
        assert_eq!(text.chars().count(), EVIDENCE_TEXT_CHARS, "{text:?}");
        assert!(text.ends_with('…'), "{text:?}");
        assert!(long.starts_with(text.trim_end_matches('…')), "{text:?}");
    }
    // The terms are still read from the whole texts.
    assert!(strings(&alert["evidence"]["top_terms"], "term").contains(&"terrible"));
    let longest: Option<i32> = app
        .env
        .pg()
        .await
        .query_one(
            "SELECT max(length(p.post->>'text')) FROM alerts a, \
             jsonb_array_elements(a.evidence->'top_posts') AS p (post)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(longest, Some(EVIDENCE_TEXT_CHARS as i32));
    app.shutdown().await;
}

#[actix_rt::test]
async fn an_alert_resolves_itself_once_its_condition_stays_clear() {
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.2);
        s.alerts.resolve_after_secs = 1;
    })
    .await;
    let rule = app
        .create_rule(
            &json!({"name": "Phone negativity", "kind": "negativity", "dimension": "product",
                      "key": "pulse-phone", "threshold": 0.5, "min_volume": 5}),
        )
        .await;
    let rule_id = rule["id"].as_i64().unwrap();
    send_posts(&app, "r", 10, "This is terrible, I hate it").await;
    let status = || async {
        app.get(&format!("/api/v1/alerts?rule_id={rule_id}"))
            .await
            .1["items"][0]["status"]
            .clone()
    };
    assert!(
        wait_until(Duration::from_secs(30), || async {
            status().await == "firing"
        })
        .await
    );

    // Raise the bar above what the window shows: the condition clears, and stays clear.
    app.clear_rule(&rule).await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            status().await == "resolved"
        })
        .await
    );
    let alert = &app
        .get(&format!("/api/v1/alerts?rule_id={rule_id}"))
        .await
        .1["items"][0];
    assert!(alert["resolved_at"].is_string());
    app.shutdown().await;
}

/// A rule on every product fired one alert per product the stream named, each into every
/// channel: a producer naming a thousand new products fired a thousand alerts at once. The
/// rule keeps `alerts.max_open_per_rule` open, the furthest past its threshold first, and a
/// product held back fires once one of them resolves.
#[actix_rt::test]
async fn a_rule_on_every_key_keeps_a_bounded_number_of_alerts_open_the_worst_first() {
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.2);
        s.alerts.max_open_per_rule = 3;
    })
    .await;
    app.remove_rules().await;
    // Ten invented products, two in three of their posts angry, and the phone, all angry.
    let mut events = Vec::new();
    for i in 0..10 {
        let product = format!("storm-{i}");
        for (j, text) in [
            "This is terrible, I hate it",
            "The update bricked it again, terrible",
            "I love the new phone, great camera",
        ]
        .iter()
        .enumerate()
        {
            events.push(
                PostEvent::new(&format!("{product}-{j}"), &format!("{text} #{i}"))
                    .product(&product)
                    .author(&format!("u{i}-{j}"), 10)
                    .without(&["geo", "channel"])
                    .to_string(),
            );
        }
    }
    events.extend(
        complaints("phone", 3, "The update bricked it again, terrible").map(|p| p.to_string()),
    );
    app.send_events(&events).await;
    assert!(app.env.stored_exactly(33, Duration::from_secs(30)).await);

    // The rule comes once every post is stored, so its first evaluation sees them all.
    let rule = app
        .create_rule(
            &json!({"name": "Any product negativity", "kind": "negativity", "dimension": "product",
                    "threshold": 0.5, "min_volume": 3}),
        )
        .await;
    let open = || async {
        let (_, list) = app
            .get(&format!("/api/v1/alerts?rule_id={}&limit=100", rule["id"]))
            .await;
        let all = items(&list["items"]).to_vec();
        let open: Vec<String> = all
            .iter()
            .filter(|a| a["status"] != "resolved")
            .map(|a| a["key"].as_str().unwrap().to_string())
            .collect();
        (all.len(), open)
    };
    assert!(
        wait_until(Duration::from_secs(30), || async { open().await.0 >= 3 }).await,
        "the rule fired nothing"
    );
    // Further evaluations fire no more while three are open.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (fired, keys) = open().await;
    assert_eq!((fired, keys.len()), (3, 3), "{keys:?}");
    assert!(keys.contains(&"pulse-phone".to_string()), "{keys:?}");

    // One resolved by hand makes room for one product held back.
    let (_, list) = app
        .get(&format!("/api/v1/alerts?rule_id={}", rule["id"]))
        .await;
    let phone = item_where(&list["items"], |a| a["key"] == "pulse-phone")["id"].clone();
    let (status, _) = app
        .post_empty(&format!("/api/v1/alerts/{phone}/resolve"))
        .await;
    assert_eq!(status, 200);
    assert!(
        wait_until(Duration::from_secs(30), || async { open().await.0 == 4 }).await,
        "no product held back fired"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let (fired, keys) = open().await;
    assert_eq!((fired, keys.len()), (4, 3), "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("storm-")), "{keys:?}");
    app.shutdown().await;
}

/// Posts may be dated up to five minutes ahead of the clock. A window read every minute from
/// its start onwards, with no end, so such posts counted in every window from the moment they
/// were stored until their minute left it: for the window's length and five minutes more. The
/// window ends now; a product whose posts are all dated ahead has nothing in it yet.
#[actix_rt::test]
async fn posts_dated_ahead_of_the_clock_are_not_in_the_window_before_their_time() {
    let app = spawn_app_tuned(|s| quick_alerts(s, 0.2)).await;
    app.remove_rules().await;
    let ahead = chrono::Utc::now() + chrono::TimeDelta::seconds(270);
    // Every post of the product dated ahead is angry, so had they counted its alert would be
    // the worst and fire first; three in four of the other's, dated now, are.
    let mut events: Vec<String> = complaints("ahead", 8, "This is terrible, I hate it")
        .map(|p| p.product("pulse-ahead").at(ahead).to_string())
        .collect();
    events.extend(
        complaints("now", 6, "The update bricked it again, terrible")
            .map(|p| p.product("pulse-now").to_string()),
    );
    events.extend(
        complaints("now-glad", 2, "I love the new phone, great camera")
            .map(|p| p.product("pulse-now").to_string()),
    );
    app.send_events(&events).await;
    assert!(app.env.stored_exactly(16, Duration::from_secs(30)).await);

    let rule = app
        .create_rule(
            &json!({"name": "Any product negativity", "kind": "negativity", "dimension": "product",
                    "threshold": 0.5, "min_volume": 5}),
        )
        .await;
    let keys = || async {
        let (_, list) = app
            .get(&format!("/api/v1/alerts?rule_id={}", rule["id"]))
            .await;
        let mut keys: Vec<String> = items(&list["items"])
            .iter()
            .map(|a| a["key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    };
    assert!(
        wait_until(Duration::from_secs(30), || async {
            keys().await.contains(&"pulse-now".to_string())
        })
        .await,
        "the product dated now fired nothing"
    );
    assert_eq!(keys().await, ["pulse-now"]);
    app.shutdown().await;
}

pub mod channels;
mod email;
mod rules;

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

/// The rule "Any product negativity": more than half of a product's posts negative, of
/// `min_volume` posts at least, on every product.
async fn any_product_negativity(app: &TestApp, min_volume: i64) -> Value {
    app.create_rule(&json!({
        "name": "Any product negativity", "kind": "negativity", "dimension": "product",
        "threshold": 0.5, "min_volume": min_volume,
    }))
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
            !items(&app.get("/api/v1/alerts").await.1["items"]).is_empty()
        })
        .await
    );
    let list = app.get("/api/v1/alerts").await.1;
    let alert = &items(&list["items"])[0];
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
    let rule = any_product_negativity(&app, 3).await;
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

    let rule = any_product_negativity(&app, 5).await;
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
mod deliveries;
mod email;
mod rules;

/// Each key of a dimension is judged against its own history, read for every key at once:
/// the same burst is a spike for a quiet product and not for a busy one, and the many keys
/// with a post or two are not judged at all. The baseline's windows are the window's length,
/// the latest ending the minute before the window begins.
#[actix_rt::test]
async fn a_volume_spike_is_judged_against_each_key_s_own_history() {
    let app = spawn_app_tuned(|s| quick_alerts(s, 0.3)).await;
    app.remove_rules().await;
    let mut events = Vec::new();
    let mut post = |id: String, product: &str, minutes_ago: i64| {
        events.push(
            PostEvent::new(&id, &format!("Ordered one today, update {id}"))
                .author(&format!("u-{id}"), 10)
                .product(product)
                .minutes_ago(minutes_ago)
                .without(&["geo", "channel"])
                .to_string(),
        );
    };
    // Seventy minutes of history: one post a minute about the quiet product, twelve about the
    // busy one (more than the baseline's hour, so a minute passing while the posts are stored
    // changes no window).
    for minute in 1..=70 {
        post(format!("quiet-{minute}"), "quiet-phone", minute);
        for i in 0..12 {
            post(format!("busy-{minute}-{i}"), "busy-phone", minute);
        }
    }
    // Now: twenty posts about each, and one about each of thirty other products.
    for i in 0..20 {
        post(format!("quiet-now-{i}"), "quiet-phone", 0);
        post(format!("busy-now-{i}"), "busy-phone", 0);
    }
    for i in 0..30 {
        post(format!("rare-{i}"), &format!("rare-{i}"), 0);
    }
    let total = events.len() as i64;
    app.send_events(&events).await;
    assert!(app.env.stored_exactly(total, Duration::from_secs(90)).await);
    app.create_rule(&json!({
        "name": "Product spikes", "kind": "volume_spike", "dimension": "product",
        "window_minutes": 5, "baseline_minutes": 60, "min_baseline_points": 6, "k": 3.0,
        "min_volume": 2,
    }))
    .await;

    assert!(
        wait_until(Duration::from_secs(30), || async {
            !items(&app.get("/api/v1/alerts").await.1["items"]).is_empty()
        })
        .await
    );
    // Several more evaluations fire nothing else.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts = app.get("/api/v1/alerts").await.1;
    let fired = sorted_summaries(&alerts["items"], &["kind", "dimension", "key"]);
    assert_eq!(fired, ["volume_spike product quiet-phone"], "{alerts}");
    let baseline = &items(&alerts["items"])[0]["evidence"]["baseline"];
    // Its own history, five posts in each of twelve windows of five minutes: not the busy
    // product's sixty, nor a first window a minute short.
    assert_eq!(baseline["points"], 12, "{baseline}");
    assert_eq!(baseline["median"], 5.0, "{baseline}");
    assert_eq!(baseline["mean"], 5.0, "{baseline}");
    app.shutdown().await;
}

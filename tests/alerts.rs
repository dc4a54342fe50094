//! Alerts against a real Pulse: a scripted stream with a known negativity spike and volume
//! spike fires exactly the expected alerts, once, with their evidence, over REST and WebSocket;
//! rules are managed over REST.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use pulse::app::{Application, ServeOptions};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn post_at(id: &str, text: &str, minutes_ago: i64) -> String {
    json!({
        "type": "post", "id": id, "platform": "twitter",
        "author": {"id": "a", "followers": 10}, "text": text,
        "created_at": (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)).to_rfc3339(),
        "product": "pulse-phone"
    })
    .to_string()
}

async fn get(app: &Application, path: &str) -> Value {
    reqwest::get(format!("http://{}{path}", app.address()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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
    pulse::producer::xadd_events(&redis, &env.stream, &events)
        .await
        .unwrap();

    let mut settings = env.settings();
    settings.alerts.enabled = true;
    settings.alerts.evaluate_every_secs = 0.3;
    let app = Application::build(settings, ServeOptions::default())
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            env.post_count().await == 120
        })
        .await
    );

    let stream = tokio::net::TcpStream::connect(app.address()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", app.address()), stream)
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"subscribe","topics":["alerts"]}"#))
        .await
        .unwrap();

    // Calm evaluations fire nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(get(&app, "/api/v1/alerts").await["items"], json!([]));

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
    pulse::producer::xadd_events(&redis, &env.stream, &spike)
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            env.post_count().await == 180
        })
        .await
    );

    let expected = ["negativity", "sentiment_dip", "volume_spike"];
    assert!(
        wait_until(Duration::from_secs(30), || async {
            get(&app, "/api/v1/alerts").await["items"]
                .as_array()
                .unwrap()
                .len()
                >= expected.len()
        })
        .await
    );
    // Several more evaluations must not fire anything again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts = get(&app, "/api/v1/alerts").await;
    let mut kinds: Vec<String> = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, expected, "{alerts}");

    let negativity = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "negativity")
        .unwrap();
    let evidence = &negativity["evidence"];
    assert_eq!(negativity["status"], "firing");
    assert!(negativity["value"].as_f64().unwrap() >= 0.5);
    assert_eq!(evidence["window"]["stats"]["posts"], 60, "{evidence}");
    assert!(evidence["top_posts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["sentiment"] == "negative"));
    let terms: Vec<&str> = evidence["top_terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["term"].as_str().unwrap())
        .collect();
    assert!(terms.contains(&"terrible"), "{terms:?}");
    let spike_alert = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "volume_spike")
        .unwrap();
    assert!(
        spike_alert["evidence"]["baseline"]["points"]
            .as_i64()
            .unwrap()
            >= 6
    );
    assert!(spike_alert["value"].as_f64().unwrap() > spike_alert["threshold"].as_f64().unwrap());

    // The same three reached the WebSocket subscriber as alert:<kind>.
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
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
        ["alert:negativity", "alert:sentiment_dip", "alert:spike"]
    );

    // Acknowledge, then resolve; a second acknowledge is a conflict.
    let id = negativity["id"].as_i64().unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", app.address());
    let acked: Value = http
        .post(url(&format!("/api/v1/alerts/{id}/ack")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(acked["status"], "acknowledged");
    let again = http
        .post(url(&format!("/api/v1/alerts/{id}/ack")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let resolved: Value = http
        .post(url(&format!("/api/v1/alerts/{id}/resolve")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["status"], "resolved");
    let firing = get(&app, "/api/v1/alerts?status=firing").await;
    assert_eq!(firing["items"].as_array().unwrap().len(), 2);
    app.shutdown().await;
}

#[actix_rt::test]
async fn alert_rules_are_managed_over_rest() {
    let env = TestEnv::new().await;
    let app = Application::build(env.settings(), ServeOptions::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", app.address());

    let defaults = get(&app, "/api/v1/alert-rules").await;
    assert_eq!(
        defaults["items"].as_array().unwrap().len(),
        5,
        "default rules exist"
    );

    let created = http
        .post(url("/api/v1/alert-rules"))
        .json(
            &json!({"name": "Reddit negativity", "kind": "negativity", "dimension": "platform",
                      "key": "reddit", "threshold": 0.6, "severity": "critical"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let rule: Value = created.json().await.unwrap();
    let id = rule["id"].as_i64().unwrap();
    assert_eq!(rule["key"], "reddit");
    assert_eq!(rule["window_minutes"], 5);

    let patched: Value = http
        .patch(url(&format!("/api/v1/alert-rules/{id}")))
        .json(&json!({"window_minutes": 15, "cooldown_secs": 60}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            patched["window_minutes"].as_i64(),
            patched["threshold"].as_f64()
        ),
        (Some(15), Some(0.6))
    );
    let disabled: Value = http
        .post(url(&format!("/api/v1/alert-rules/{id}/disable")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["enabled"], false);
    let enabled: Value = http
        .post(url(&format!("/api/v1/alert-rules/{id}/enable")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(enabled["enabled"], true);

    for bad in [
        json!({"name": "x", "kind": "vibes"}),
        json!({"name": "x", "kind": "churn", "dimension": "galaxy"}),
        json!({"name": "x", "kind": "churn", "window_minutes": 0}),
        json!({"kind": "churn"}),
        json!({"name": "x", "kind": "churn", "surprise": true}),
    ] {
        let res = http
            .post(url("/api/v1/alert-rules"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    let deleted = http
        .delete(url(&format!("/api/v1/alert-rules/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let missing = http
        .get(url(&format!("/api/v1/alert-rules/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    app.shutdown().await;
}

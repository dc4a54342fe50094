//! Alerts against a real Pulse: a scripted stream with a known negativity spike and volume
//! spike fires exactly the expected alerts, once, with their evidence, over REST and WebSocket;
//! rules are managed over REST.

use crate::common;
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
    http_get(app, path).await.1
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
    pulse::streams::producer::xadd_events(&redis, &env.stream, &spike)
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            env.post_count().await == 180
        })
        .await
    );

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
        .map(|a| {
            format!(
                "{} {} {}",
                a["kind"].as_str().unwrap(),
                a["dimension"].as_str().unwrap(),
                a["key"].as_str().unwrap_or_default()
            )
        })
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
        .find(|a| a["kind"] == "volume_spike" && a["dimension"] == "overall")
        .unwrap();
    assert!(
        spike_alert["evidence"]["baseline"]["points"]
            .as_i64()
            .unwrap()
            >= 6
    );
    assert!(spike_alert["value"].as_f64().unwrap() > spike_alert["threshold"].as_f64().unwrap());

    // The same five reached the WebSocket subscriber as alert:<kind>.
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
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
    assert_eq!(
        firing["items"].as_array().unwrap().len(),
        expected.len() - 1
    );
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
    let mut stock: Vec<String> = defaults["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["kind"].as_str().unwrap(),
                r["dimension"].as_str().unwrap()
            )
        })
        .collect();
    stock.sort();
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

/// What a local webhook receiver saw: (headers, body) per request.
type Seen =
    std::sync::Arc<std::sync::Mutex<Vec<(std::collections::HashMap<String, String>, String)>>>;

/// Starts a webhook receiver on a free port that fails its first `failures` requests with 500.
fn receiver(failures: usize) -> (std::net::SocketAddr, Seen, actix_web::dev::ServerHandle) {
    use actix_web::{web, HttpRequest, HttpResponse, HttpServer};
    let seen: Seen = Default::default();
    let state = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new().default_service(web::to(move |req: HttpRequest, body: String| {
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
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (addr, seen, handle)
}

#[actix_rt::test]
async fn alerts_reach_webhooks_signed_retried_and_dead_lettered() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let mut settings = env.settings();
    settings.alerts.enabled = true;
    settings.alerts.evaluate_every_secs = 0.3;
    settings.webhooks.base_delay_ms = 50;
    settings.webhooks.max_attempts = 3;
    settings.webhooks.poll_ms = 50;
    let app = Application::build(settings, ServeOptions::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", app.address());

    let (flaky_addr, seen, receiver_handle) = receiver(2);
    let flaky: Value = http
        .post(url("/api/v1/webhooks"))
        .json(&json!({"url": format!("http://{flaky_addr}/hook"), "kinds": ["negativity"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = flaky["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    let closed = format!("http://127.0.0.1:{}/nobody-home", free_port());
    let dead: Value = http
        .post(url("/api/v1/webhooks"))
        .json(&json!({"url": closed, "secret": "a-shared-secret-of-some-length", "kinds": ["negativity"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bad = http
        .post(url("/api/v1/webhooks"))
        .json(&json!({"url": "ftp://x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let angry: Vec<String> = (0..30)
        .map(|i| {
            post_at(
                &format!("hook-{i}"),
                "This is terrible, I hate it, worst phone ever",
                0,
            )
        })
        .collect();
    pulse::streams::producer::xadd_events(&redis, &env.stream, &angry)
        .await
        .unwrap();

    // The flaky receiver fails twice, then takes the delivery on the third attempt.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            seen.lock().unwrap().len() >= 3
        })
        .await
    );
    let log = |id: i64| {
        let http = http.clone();
        let u = url(&format!("/api/v1/webhooks/{id}/deliveries"));
        async move {
            http.get(u)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let flaky_id = flaky["id"].as_i64().unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            log(flaky_id).await["items"][0]["status"] == "delivered"
        })
        .await
    );
    let delivery = log(flaky_id).await["items"][0].clone();
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
    let dead_id = dead["id"].as_i64().unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            log(dead_id).await["items"][0]["status"] == "dead"
        })
        .await
    );
    let gave_up = log(dead_id).await["items"][0].clone();
    assert_eq!(gave_up["attempts"], 3);
    assert!(gave_up["last_error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));

    // A new installation has no history: the spike and dip rules are still warming up, so
    // only the negativity rule fired.
    let kinds: Vec<String> = get(&app, "/api/v1/alerts").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["negativity"]);
    assert_eq!(
        env.post_count().await,
        30,
        "the pipeline went on regardless"
    );

    receiver_handle.stop(false).await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn an_alert_resolves_itself_once_its_condition_stays_clear() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let mut settings = env.settings();
    settings.alerts.enabled = true;
    settings.alerts.evaluate_every_secs = 0.2;
    settings.alerts.resolve_after_secs = 1;
    let app = Application::build(settings, ServeOptions::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", app.address());
    let rule: Value = http
        .post(url("/api/v1/alert-rules"))
        .json(
            &json!({"name": "Phone negativity", "kind": "negativity", "dimension": "product",
                      "key": "pulse-phone", "threshold": 0.5, "min_volume": 5}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rule_id = rule["id"].as_i64().unwrap();
    let angry: Vec<String> = (0..10)
        .map(|i| post_at(&format!("r-{i}"), "This is terrible, I hate it", 0))
        .collect();
    pulse::streams::producer::xadd_events(&redis, &env.stream, &angry)
        .await
        .unwrap();
    let status = || async {
        get(&app, &format!("/api/v1/alerts?rule_id={rule_id}")).await["items"][0]["status"].clone()
    };
    assert!(
        wait_until(Duration::from_secs(30), || async {
            status().await == "firing"
        })
        .await
    );

    // Raise the bar above what the window shows: the condition clears, and stays clear.
    http.patch(url(&format!("/api/v1/alert-rules/{rule_id}")))
        .json(&json!({"threshold": 1.1}))
        .send()
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            status().await == "resolved"
        })
        .await
    );
    let alert = &get(&app, &format!("/api/v1/alerts?rule_id={rule_id}")).await["items"][0];
    assert!(alert["resolved_at"].is_string());
    app.shutdown().await;
}

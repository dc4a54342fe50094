//! One test per finding of the outside probe of alert messages and the events intake, each
//! against a real server: a web page's `text/plain` POST appending events to an open server,
//! control characters in a rule name, and a manual resolution announced as if the condition had
//! cleared.

use crate::common;

use common::*;
use fred::prelude::*;
use pulse::app::{Application, ServeOptions};
use serde_json::{json, Value};

/// A web page can make a browser POST `text/plain` (or a form) anywhere without a preflight;
/// on an open server `/api/v1/events` took it and appended its events, where every other
/// route that takes JSON answers 415.
#[actix_rt::test]
async fn a_cross_site_text_plain_post_appends_no_events() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let app = Application::build(env.settings(), ServeOptions::default())
        .await
        .unwrap();
    assert!(env.settings().auth.open, "the finding is about an open server");
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/v1/events", app.address());
    let event = json!({"type": "post", "id": "xsite-1", "platform": "other",
                       "author": {"id": "a", "followers": 0}, "text": "forged",
                       "created_at": chrono::Utc::now().to_rfc3339()})
    .to_string();

    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut req = http
            .post(&url)
            .header("origin", "https://evil.example")
            .body(event.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 415, "{content_type:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": "unsupported_media_type",
                             "message": "expected Content-Type: application/json",
                             "details": {}}}),
            "{content_type:?}"
        );
    }
    let appended: i64 = redis.xlen(&env.stream).await.unwrap_or(0);
    assert_eq!(appended, 0, "a refused request appended events");

    // The same body declared as JSON is taken.
    let res = http
        .post(&url)
        .header("content-type", "application/json")
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let appended: i64 = redis.xlen(&env.stream).await.unwrap();
    assert_eq!(appended, 1);
    app.shutdown().await;
}

/// A rule name with a line break wrote a second, forged line into the `alert fired` log. Names
/// and keys with control characters are refused on create and on update; what a name that is
/// already stored logs is tested with the alerter (`src/actors/alerter.rs`).
#[actix_rt::test]
async fn rule_names_and_keys_with_control_characters_are_refused() {
    let env = TestEnv::new().await;
    let app = Application::build(env.settings(), ServeOptions::default())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", app.address());
    let rules = || async {
        http.get(url("/api/v1/alert-rules"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["items"]
            .clone()
    };
    let before = rules().await;
    let forged = "Churn\n2026-11-24T10:00:00.000000Z  INFO pulse::actors::alerter: all clear";

    let invalid_rule = |res: Value| {
        assert_eq!(res["error"]["code"], "invalid_rule", "{res}");
        assert_eq!(res["error"]["details"], json!({}), "{res}");
        res["error"]["message"].as_str().unwrap().to_string()
    };
    for body in [
        json!({"name": forged, "kind": "churn"}),
        json!({"name": "bell\u{7}", "kind": "churn"}),
        json!({"name": "\u{1b}[2Jwiped", "kind": "churn"}),
        json!({"name": "Phone", "kind": "churn", "dimension": "product", "key": "pulse\r\nphone"}),
    ] {
        let res = http
            .post(url("/api/v1/alert-rules"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let message = invalid_rule(res.json().await.unwrap());
        assert!(message.contains("control characters"), "{message}");
    }
    assert_eq!(rules().await, before, "a refused rule was stored");

    let id = before[0]["id"].as_i64().unwrap();
    let res = http
        .patch(url(&format!("/api/v1/alert-rules/{id}")))
        .json(&json!({"name": forged}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    invalid_rule(res.json().await.unwrap());
    assert_eq!(rules().await, before, "a refused update was applied");

    // Names in any script, with spaces and punctuation, are still names.
    let res = http
        .post(url("/api/v1/alert-rules"))
        .json(&json!({"name": "Négativité ≥ 50 % — « Pulse »", "kind": "churn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    app.shutdown().await;
}

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

//! A Pulse application in the test process, with the requests every test makes: `spawn_app()`
//! gives a [`TestApp`] on a private database and stream, open (no credentials needed);
//! `spawn_app_with` takes settings, for tests of authentication or limits.

use std::time::Duration;

use fred::prelude::Client;
use pulse::app::{Application, ServeOptions};
use pulse::config::Settings;
use serde_json::Value;

use super::{wait_until, TestEnv};

/// A running application and its private environment.
pub struct TestApp {
    pub app: Application,
    pub env: TestEnv,
    pub http: reqwest::Client,
}

/// A Pulse on a fresh database and stream, with the test settings of [`TestEnv::settings`].
pub async fn spawn_app() -> TestApp {
    let env = TestEnv::new().await;
    let settings = env.settings();
    spawn_app_with(env, settings).await
}

/// A Pulse on `env` with `settings` (usually `env.settings()` changed).
pub async fn spawn_app_with(env: TestEnv, settings: Settings) -> TestApp {
    let app = Application::build(settings, ServeOptions::default())
        .await
        .expect("the application starts");
    TestApp {
        app,
        env,
        http: reqwest::Client::new(),
    }
}

impl TestApp {
    /// The URL of `path` on this application.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.app.address())
    }

    /// Sends `method path` with an optional JSON body and bearer credential; the status and
    /// the JSON body (null when there is none).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` without credentials.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None, None).await
    }

    /// `POST path` with a JSON body, without credentials.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body), None)
            .await
    }

    /// A client of the test's Redis.
    pub async fn redis(&self) -> Client {
        self.env.redis().await
    }

    /// Appends one encoded event to the test's stream; its entry id.
    pub async fn xadd(&self, json: &str) -> String {
        super::xadd_event(&self.redis().await, &self.env.stream, json).await
    }

    /// Waits up to `timeout` until `posts` posts are stored.
    pub async fn wait_for_posts(&self, posts: i64, timeout: Duration) -> bool {
        wait_until(timeout, || async { self.env.post_count().await >= posts }).await
    }
}

/// `GET path` on `app` without credentials: the status and the JSON body (null when none).
pub async fn http_get(app: &Application, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("http://{}{path}", app.address()))
        .await
        .expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST path` on `app` with a JSON body given as text: the status and the JSON body.
pub async fn http_post(app: &Application, path: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", app.address()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The Prometheus text of `app`'s `GET /metrics`.
pub async fn metrics_text(app: &Application) -> String {
    reqwest::get(format!("http://{}/metrics", app.address()))
        .await
        .expect("the metrics are answered")
        .text()
        .await
        .expect("the metrics are text")
}

/// The ids `GET /api/v1/posts` (with `query`) lists on its first page, newest first.
pub async fn listed_post_ids(app: &Application, query: &str) -> Vec<String> {
    let (status, listed) = http_get(app, &format!("/api/v1/posts{query}")).await;
    assert_eq!(status, 200, "{listed}");
    listed["items"]
        .as_array()
        .expect("a page of posts")
        .iter()
        .map(|p| p["id"].as_str().expect("an id").to_string())
        .collect()
}

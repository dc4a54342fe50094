//! A Pulse application in the test process, with the requests every test makes: `spawn_app()`
//! gives a [`TestApp`] on a private database and stream, open (no credentials needed);
//! `spawn_app_with` takes settings, for tests of authentication or limits.

use std::ops::Deref;
use std::time::Duration;

use fred::prelude::Client;
use pulse::app::{Application, ServeOptions};
use pulse::auth::{keys, Role};
use pulse::config::Settings;
use serde_json::Value;

use super::TestEnv;

/// A WebSocket session with an application, on a plain TCP connection.
pub type WsSession =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running application and its private environment.
pub struct TestApp {
    pub app: Application,
    pub env: TestEnv,
    pub http: reqwest::Client,
}

/// A Pulse on a fresh database and stream, with the test settings of [`TestEnv::settings`].
pub async fn spawn_app() -> TestApp {
    spawn_app_tuned(|_| {}).await
}

/// A Pulse on a fresh database and stream, with the test settings changed by `tweak`.
pub async fn spawn_app_tuned(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    TestEnv::new().await.serve(tweak).await
}

impl TestEnv {
    /// A Pulse on this environment, with its test settings changed by `tweak`: for a test that
    /// prepares the database or stream before Pulse starts.
    pub async fn serve(self, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.settings();
        tweak(&mut settings);
        spawn_app_with(self, settings).await
    }
}

/// A Pulse on `env` with `settings` (usually `env.settings()` changed).
pub async fn spawn_app_with(env: TestEnv, settings: Settings) -> TestApp {
    spawn_app_with_options(env, settings, ServeOptions::default()).await
}

/// A Pulse on `env` with `settings` and serve options (the in-process demo producer).
pub async fn spawn_app_with_options(
    env: TestEnv,
    settings: Settings,
    options: ServeOptions,
) -> TestApp {
    let app = Application::build(settings, options)
        .await
        .expect("the application starts");
    TestApp {
        app,
        env,
        // Idle connections are dropped well before the server's keep-alive (5 s) closes them,
        // so a request never goes out on a connection the server is closing at that moment.
        http: reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("an HTTP client"),
    }
}

/// The application's own accessors (address, pipeline, sessions) read through the harness.
impl Deref for TestApp {
    type Target = Application;

    fn deref(&self) -> &Application {
        &self.app
    }
}

impl TestApp {
    /// Drains and stops the application; the environment comes back so a test can start
    /// another Pulse on the same database and stream, or read what this one left.
    pub async fn shutdown(self) -> TestEnv {
        self.app.shutdown().await;
        self.env
    }

    /// A second Pulse on this one's database and stream (another consumer of the group), as a
    /// scaled-out deployment runs; the caller shuts it down.
    pub async fn spawn_replica(&self) -> Application {
        self.spawn_replica_with(|_| {}).await
    }

    /// [`TestApp::spawn_replica`] with its settings changed by `tweak`.
    pub async fn spawn_replica_with(&self, tweak: impl FnOnce(&mut Settings)) -> Application {
        let mut settings = self.env.settings();
        tweak(&mut settings);
        Application::build(settings, ServeOptions::default())
            .await
            .expect("the replica starts")
    }

    /// A WebSocket session on this application that has asked for `topics` (the
    /// acknowledgement is still to be read).
    pub async fn subscribe_ws(&self, topics: &[&str]) -> WsSession {
        use futures::SinkExt;
        let url = format!("ws://{}/ws", self.app.address());
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        let request = serde_json::json!({"type": "subscribe", "topics": topics});
        ws.send(tokio_tungstenite::tungstenite::Message::text(
            request.to_string(),
        ))
        .await
        .unwrap();
        ws
    }

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

    /// The body of `GET path`, which must answer 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// `POST path` with a JSON body, without credentials.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body), None)
            .await
    }

    /// `POST path` without a body, as the actions on a resource (ack, resolve, enable) are
    /// sent.
    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, None, None).await
    }

    /// `PATCH path` with a JSON body, without credentials.
    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(reqwest::Method::PATCH, path, Some(body), None)
            .await
    }

    /// `DELETE path` without credentials; the status.
    pub async fn delete(&self, path: &str) -> u16 {
        self.request(reqwest::Method::DELETE, path, None, None)
            .await
            .0
    }

    /// Asserts `DELETE path` removes what is there (204), after which a second one finds
    /// nothing (404) and neither does `GET path`.
    pub async fn assert_deleted(&self, path: &str) {
        assert_eq!(self.delete(path).await, 204);
        assert_eq!(self.delete(path).await, 404);
        assert_eq!(self.get(path).await.0, 404);
    }

    /// A new API key of `role` written straight to the database, as `pulse keys create`
    /// does, since the HTTP route to make one needs a key already.
    pub async fn create_key(&self, role: Role, name: &str) -> keys::NewKey {
        keys::create(&self.env.pg().await, role, name, None, "test")
            .await
            .expect("the key is created")
    }

    /// Creates an alert rule on an open server; the stored rule.
    pub async fn create_rule(&self, rule: &Value) -> Value {
        let (status, created) = self.post("/api/v1/alert-rules", rule).await;
        assert_eq!(status, 201, "{rule}: {created}");
        created
    }

    /// Deletes every alert rule, the stock ones included, so only the rules a test creates
    /// fire.
    pub async fn remove_rules(&self) {
        let (_, rules) = self.get("/api/v1/alert-rules").await;
        for rule in rules["items"].as_array().expect("a list of rules") {
            let path = format!("/api/v1/alert-rules/{}", rule["id"]);
            assert_eq!(self.delete(&path).await, 204, "{rule}");
        }
    }

    /// Creates a topic on an open server; its id.
    pub async fn create_topic(&self, name: &str, query: &str) -> i64 {
        let topic = serde_json::json!({"name": name, "query": query});
        let (status, created) = self.post("/api/v1/topics", &topic).await;
        assert_eq!(status, 201, "{topic}: {created}");
        created["id"].as_i64().expect("a topic id")
    }

    /// Raises `rule`'s threshold above any share a window can show, so its condition clears.
    pub async fn clear_rule(&self, rule: &Value) {
        let path = format!("/api/v1/alert-rules/{}", rule["id"]);
        self.patch(&path, &serde_json::json!({"threshold": 1.1}))
            .await;
    }

    /// Replaces every alert rule, the stock ones included, with `rule` alone; the stored rule.
    pub async fn only_rule(&self, rule: &Value) -> Value {
        self.remove_rules().await;
        self.create_rule(rule).await
    }

    /// Creates a notification channel (a webhook of any kind) on an open server; the stored
    /// channel, with its secret.
    pub async fn create_channel(&self, channel: &Value) -> Value {
        let (status, created) = self.post("/api/v1/webhooks", channel).await;
        assert_eq!(status, 201, "{channel}: {created}");
        created
    }

    /// The deliveries to `channel` (a stored channel), newest first.
    pub async fn deliveries(&self, channel: &Value) -> Value {
        let path = format!("/api/v1/webhooks/{}/deliveries", channel["id"]);
        self.get(&path).await.1
    }

    /// Waits up to `timeout` until the newest delivery to `channel` has `status`: whether it
    /// came to, and that delivery as it stands after the wait.
    pub async fn await_delivery(
        &self,
        channel: &Value,
        status: &str,
        timeout: Duration,
    ) -> (bool, Value) {
        let newest = || async { self.deliveries(channel).await["items"][0].clone() };
        let reached =
            super::wait_until(timeout, || async { newest().await["status"] == status }).await;
        (reached, newest().await)
    }

    /// Sends `channel` (a stored channel) a test message; the report of how it went.
    pub async fn test_channel(&self, channel: &Value) -> Value {
        let path = format!("/api/v1/webhooks/{}/test", channel["id"]);
        self.post_empty(&path).await.1
    }

    /// Appends encoded events to the test's stream as a producer does, pipelined in chunks
    /// so a large batch is not one reply of thousands of ids.
    pub async fn send_events(&self, events: &[String]) {
        let redis = self.redis().await;
        for chunk in events.chunks(500) {
            pulse::streams::producer::xadd_events(&redis, &self.env.stream, chunk)
                .await
                .expect("the events are appended");
        }
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
        self.env.stored(posts, timeout).await
    }

    /// Waits up to `timeout` until `GET path` answers 200 with a body `ready` accepts; that
    /// body. Panics with the last answer when none came, so a failure shows what was served.
    pub async fn wait_for(
        &self,
        path: &str,
        timeout: Duration,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for_answer(reqwest::Method::GET, path, None, timeout, ready)
            .await
    }

    /// As [`TestApp::wait_for`], for `POST path` with `body`.
    pub async fn wait_for_post_body(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for_answer(reqwest::Method::POST, path, Some(body), timeout, ready)
            .await
    }

    async fn wait_for_answer(
        &self,
        method: reqwest::Method,
        path: &str,
        request: Option<&Value>,
        timeout: Duration,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let (status, body) = self.request(method.clone(), path, request, None).await;
            if status == 200 && ready(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{method} {path} did not become ready: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

/// The sum of the samples in `metrics` (a metrics text) whose line starts with `prefix` (a
/// metric's name, with the start of its labels to narrow it): a counter over its labels.
pub fn summed(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Asserts the text of `app`'s `GET /metrics` holds each of `series` (a series as the text
/// shows it, with its value where that matters); the whole text is the failure's message.
pub async fn assert_metrics_hold(app: &Application, series: &[impl AsRef<str>]) {
    let metrics = metrics_text(app).await;
    for series in series.iter().map(AsRef::as_ref) {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
}

/// Asserts some line of `app`'s `GET /metrics` that starts with `series` does not end in 0.
pub async fn assert_metric_counted(app: &Application, series: &str) {
    let metrics = metrics_text(app).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(series) && !l.ends_with(" 0")),
        "{series} not counted:\n{metrics}"
    );
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

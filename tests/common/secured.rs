//! A Pulse with authentication on and a key of each role, for the tests that attack it as
//! outsiders and callers of each role would.

use pulse::auth::{keys, Role};
use pulse::config::Settings;
use serde_json::Value;

use super::app::{spawn_app_with, TestApp};
use super::{raw_request, RawResponse, SqlValues, TestEnv};

const SECRET: &str = "a4c8e2f6b0d9a3c7e1f5b9d2a6c0e4f8b3d7a1c5e9f2b6d0";

/// See the module documentation. It reads as its [`TestApp`] (`s.env`, `s.address()`).
pub struct SecuredServer {
    pub app: TestApp,
    pub keys: Vec<(Role, keys::NewKey)>,
}

impl std::ops::Deref for SecuredServer {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl SecuredServer {
    /// A server on a fresh environment, its settings changed by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut Settings)) -> SecuredServer {
        let env = TestEnv::new().await;
        Self::start_in(env, tweak).await
    }

    /// A server on `env`, its settings changed by `tweak`.
    pub async fn start_in(env: TestEnv, tweak: impl FnOnce(&mut Settings)) -> SecuredServer {
        let mut settings = env.settings();
        super::authenticated(&mut settings, SECRET);
        tweak(&mut settings);
        let app = spawn_app_with(env, settings).await;
        let pg = app.env.pg().await;
        let mut made = Vec::new();
        for role in Role::ALL {
            made.push((
                role,
                keys::create(&pg, role, "k", None, "test").await.unwrap(),
            ));
        }
        SecuredServer { app, keys: made }
    }

    /// The key of `role`.
    pub fn key(&self, role: Role) -> &keys::NewKey {
        &self.keys.iter().find(|k| k.0 == role).unwrap().1
    }

    /// `call` with an analyst's key.
    pub async fn analyst(&self, method: &str, path: &str, body: Option<Value>) -> RawResponse {
        self.call(method, path, Some(Role::Analyst), body).await
    }

    /// Sends `method path` with `role`'s key and an optional JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        role: Option<Role>,
        body: Option<Value>,
    ) -> RawResponse {
        let key = role.map(|r| self.key(r).key.clone());
        let mut headers = Vec::new();
        if let Some(k) = &key {
            headers.push(("x-api-key", k.as_str()));
        }
        let body = body.map(|b| b.to_string());
        raw_request(self.app.address(), method, path, &headers, body.as_deref()).await
    }

    /// `method path` with the key `key` (its secret) presented directly: the status and the
    /// body as JSON (`Null` when it is not).
    pub async fn with_key(
        &self,
        method: reqwest::Method,
        path: String,
        key: String,
    ) -> (u16, Value) {
        let response = self
            .http
            .request(method, self.url(&path))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    }

    /// `GET path` with the key `key` (its secret) presented directly, not exchanged.
    pub async fn get_with_key(&self, path: &str, key: &str) -> RawResponse {
        raw_request(self.app.address(), "GET", path, &[("x-api-key", key)], None).await
    }

    /// `POST /api/v1/webhooks` of a channel to `url`, as the admin.
    pub async fn create_webhook(&self, url: &str) -> RawResponse {
        let body = serde_json::json!({ "url": url });
        self.call("POST", "/api/v1/webhooks", Some(Role::Admin), Some(body))
            .await
    }

    /// `POST /api/v1/events` with `body` (JSON) and the ingest key `key` (its secret).
    pub async fn post_events_as(&self, key: &str, body: &str) -> RawResponse {
        raw_request(
            self.app.address(),
            "POST",
            "/api/v1/events",
            &[("x-api-key", key), ("content-type", "application/json")],
            Some(body),
        )
        .await
    }

    /// The first column of the first row of `sql` (a count).
    pub async fn count(&self, sql: &str) -> i64 {
        self.app.env.value_of(sql).await
    }

    /// Waits up to `timeout` until the count `sql` reads is `n`; whether it came to be.
    pub async fn count_reaches(&self, sql: &str, n: i64, timeout: std::time::Duration) -> bool {
        super::wait_until(timeout, || async { self.count(sql).await == n }).await
    }

    /// An access token for `role`'s key.
    pub async fn token(&self, role: Role) -> String {
        let res = self
            .call(
                "POST",
                "/api/v1/auth/token",
                None,
                Some(serde_json::json!({"api_key": self.key(role).key})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        res.json()["access_token"].as_str().unwrap().to_string()
    }
}

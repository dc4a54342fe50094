//! Security against a real Pulse with authentication on: what each role may and may not do,
//! refused credentials (missing, wrong, expired, forged, revoked), rate limits that trigger
//! and recover, oversize and deeply nested inputs, the audit log, browser protections, and
//! the refusal to start open by accident. Every attack here is one a client could send.
//! This module holds the server every test attacks; the tests are grouped by concern below.

use crate::common;
use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use pulse::auth::token::TokenCodec;
use pulse::auth::Role;
use pulse::config::Settings;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

const SECRET: &str = "5f0c9a1e7b3d42c8a6e1f09b7d3c5a2e8f41b6d09c7e3a5f";

/// A Pulse with authentication on and one key per role.
struct Secure {
    app: TestApp,
    /// Keys by role: ingest, analyst, admin.
    keys: Vec<(Role, String, String)>,
}

impl Secure {
    async fn start(tweak: impl FnOnce(&mut Settings)) -> Secure {
        let env = TestEnv::new().await;
        let mut settings = env.settings();
        authenticated(&mut settings, SECRET);
        tweak(&mut settings);
        let app = spawn_app_with(env, settings).await;
        let mut made = Vec::new();
        for role in Role::ALL {
            let key = app.create_key(role, &format!("{role} key")).await;
            made.push((role, key.info.id, key.key));
        }
        Secure { app, keys: made }
    }

    fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    fn key(&self, role: Role) -> &str {
        &self.keys.iter().find(|k| k.0 == role).unwrap().2
    }

    fn key_id(&self, role: Role) -> &str {
        &self.keys.iter().find(|k| k.0 == role).unwrap().1
    }

    /// Exchanges `key` for a token; the status and body.
    async fn exchange(&self, key: &str) -> (u16, Value) {
        let res = self
            .app
            .http
            .post(self.url("/api/v1/auth/token"))
            .json(&json!({"api_key": key}))
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn token(&self, role: Role) -> String {
        let (status, body) = self.exchange(self.key(role)).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Sends `method path` with an optional bearer credential and JSON body.
    async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .app
            .http
            .request(method.parse().unwrap(), self.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// `GET path` with an optional bearer credential and more headers; the whole response,
    /// for the tests of headers and encodings.
    async fn get_with(
        &self,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.app.http.get(self.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.unwrap()
    }

    /// The status of `GET path` with `key` presented directly, not exchanged for a token.
    async fn status_with_key(&self, path: &str, key: &str) -> u16 {
        let res = self.get_with(path, None, &[("x-api-key", key)]).await;
        res.status().as_u16()
    }

    /// POSTs `body` verbatim as JSON (for bodies `call` cannot express: oversize, malformed,
    /// deeply nested); the status and the error body.
    async fn post_raw(
        &self,
        path: &str,
        bearer: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        self.post_raw_with(path, bearer, &[], body).await
    }

    /// [`Secure::post_raw`] with more headers.
    async fn post_raw_with(
        &self,
        path: &str,
        bearer: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut req = self
            .app
            .http
            .post(self.url(path))
            .bearer_auth(bearer)
            .header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.body(body).send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends `request` on a live session; the reply, as text, within 5 s.
    async fn ask(
        ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        request: &str,
    ) -> String {
        ws.send(Message::text(request))
            .await
            .expect("the request is sent");
        let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a reply within 5 s")
            .expect("the session stays open")
            .expect("a frame");
        reply.to_text().expect("a text reply").to_string()
    }

    /// Opens `/ws` with an optional token and Origin; the handshake status (101 on success)
    /// and the socket.
    async fn ws(
        &self,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> (
        u16,
        Option<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>>,
    ) {
        let addr = self.app.address();
        let url = match token {
            Some(t) => format!("ws://{addr}/ws?access_token={t}"),
            None => format!("ws://{addr}/ws"),
        };
        let mut request = url.into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        match tokio_tungstenite::client_async(request, stream).await {
            Ok((ws, res)) => (res.status().as_u16(), Some(ws)),
            Err(tungstenite::Error::Http(res)) => (res.status().as_u16(), None),
            Err(e) => panic!("websocket handshake failed: {e}"),
        }
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

mod attack_surface;
mod audit;
mod browser;
mod budgets;
mod limits;
mod paths;
mod ranges;
mod roles;
mod rollup_keys;
mod sessions;
mod startup;
mod webhooks;

//! Security against a real Pulse with authentication on: what each role may and may not do,
//! refused credentials (missing, wrong, expired, forged, revoked), rate limits that trigger
//! and recover, oversize and deeply nested inputs, the audit log, browser protections, and
//! the refusal to start open by accident. Every attack here is one a client could send.

use crate::common;
use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use pulse::app::{Application, ServeOptions};
use pulse::auth::token::TokenCodec;
use pulse::auth::{keys, Role};
use pulse::config::{Secret, Settings};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

const SECRET: &str = "5f0c9a1e7b3d42c8a6e1f09b7d3c5a2e8f41b6d09c7e3a5f";

/// A Pulse with authentication on and one key per role.
struct Secure {
    app: Application,
    env: TestEnv,
    http: reqwest::Client,
    /// Keys by role: ingest, analyst, admin.
    keys: Vec<(Role, String, String)>,
}

impl Secure {
    async fn start(tweak: impl FnOnce(&mut Settings)) -> Secure {
        let env = TestEnv::new().await;
        let mut settings = env.settings();
        settings.auth.open = false;
        settings.auth.jwt_secret = Secret(SECRET.into());
        settings.limits.rate_limits = false;
        tweak(&mut settings);
        let app = Application::build(settings, ServeOptions::default())
            .await
            .expect("pulse starts with authentication");
        let pg = env.pg().await;
        let mut made = Vec::new();
        for role in Role::ALL {
            let key = keys::create(&pg, role, &format!("{role} key"), "test")
                .await
                .unwrap();
            made.push((role, key.info.id, key.key));
        }
        Secure {
            app,
            env,
            http: reqwest::Client::new(),
            keys: made,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.app.address())
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
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
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

/// One request of the role matrix and the least role that may send it.
struct Case {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    needs: Role,
}

fn cases() -> Vec<Case> {
    let case = |method, path, body, needs| Case {
        method,
        path,
        body,
        needs,
    };
    let event: Value = serde_json::from_str(&post_json("sec-1", "I love this")).unwrap();
    vec![
        case("POST", "/api/v1/events", Some(event), Role::Ingest),
        case("GET", "/api/v1/posts", None, Role::Analyst),
        case("GET", "/api/v1/metrics/overall", None, Role::Analyst),
        case("GET", "/api/v1/trending/posts", None, Role::Analyst),
        case("GET", "/api/v1/pipeline", None, Role::Analyst),
        case("GET", "/api/v1/alerts", None, Role::Analyst),
        case("GET", "/api/v1/alert-rules", None, Role::Analyst),
        case(
            "POST",
            "/api/v1/analyze",
            Some(json!({"texts": ["fine"]})),
            Role::Analyst,
        ),
        case(
            "POST",
            "/api/v1/alert-rules",
            Some(json!({"name": "neg", "kind": "negativity"})),
            Role::Admin,
        ),
        case(
            "POST",
            "/api/v1/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/hook"})),
            Role::Admin,
        ),
        case("GET", "/api/v1/webhooks", None, Role::Admin),
        case("GET", "/api/v1/admin/keys", None, Role::Admin),
        case("GET", "/api/v1/admin/audit", None, Role::Admin),
        case(
            "POST",
            "/api/v1/admin/keys",
            Some(json!({"role": "ingest", "name": "made by matrix"})),
            Role::Admin,
        ),
    ]
}

#[actix_rt::test]
async fn each_role_can_do_exactly_what_it_may() {
    let s = Secure::start(|_| {}).await;
    let (_, _, status) = s.call("GET", "/api/v1/auth/status", None, None).await;
    assert_eq!(status["mode"], "token");
    for public in ["/health", "/ready", "/metrics", "/api/v1/auth/status"] {
        let (code, _, _) = s.call("GET", public, None, None).await;
        assert!(code == 200 || code == 503, "{public} is public: {code}");
    }

    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, s.token(role).await));
    }
    for case in cases() {
        let (code, headers, body) = s
            .call(case.method, case.path, None, case.body.as_ref())
            .await;
        assert_eq!(
            code, 401,
            "{} {} without credentials: {body}",
            case.method, case.path
        );
        assert_eq!(error_code(&body), "unauthorized");
        assert!(headers.contains_key("www-authenticate"));
        for (role, token) in &tokens {
            let (code, _, body) = s
                .call(case.method, case.path, Some(token), case.body.as_ref())
                .await;
            if role.allows(case.needs) {
                assert!(
                    code != 401 && code != 403 && code < 500,
                    "{role} may {} {}: got {code} {body}",
                    case.method,
                    case.path
                );
            } else {
                assert_eq!(
                    code, 403,
                    "{role} may not {} {}: {body}",
                    case.method, case.path
                );
                assert_eq!(error_code(&body), "forbidden");
            }
        }
    }

    // The same rules hold for a key presented directly.
    let ingest_key = s.key(Role::Ingest).to_string();
    let res = s
        .http
        .get(s.url("/api/v1/posts"))
        .header("x-api-key", &ingest_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let res = s
        .http
        .get(s.url("/api/v1/posts"))
        .header("x-api-key", s.key(Role::Analyst))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // The WebSocket: analysts and admins in, ingest keys and strangers out.
    let token_of = |role| tokens.iter().find(|t| t.0 == role).unwrap().1.clone();
    assert_eq!(s.ws(None, None).await.0, 401);
    assert_eq!(s.ws(Some(&token_of(Role::Ingest)), None).await.0, 403);
    assert_eq!(s.ws(Some("not-a-token"), None).await.0, 401);
    for role in [Role::Analyst, Role::Admin] {
        let (code, ws) = s.ws(Some(&token_of(role)), None).await;
        assert_eq!(code, 101, "{role} opens a live session");
        let mut ws = ws.unwrap();
        ws.send(Message::text(r#"{"type":"subscribe","topics":["posts"]}"#))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(reply.to_text().unwrap().contains("subscribed"), "{reply}");
    }
}

#[actix_rt::test]
async fn wrong_expired_forged_and_revoked_credentials_are_refused() {
    let s = Secure::start(|s| s.auth.token_ttl_secs = 2).await;

    // Keys that are not keys, or not ours.
    for bad in [
        "",
        "pulse_",
        "nonsense",
        &format!("pulse_{}_{}", "0".repeat(12), "0".repeat(64)),
        // The admin key with its last digit changed (to another digit, never to itself).
        &{
            let key = s.key(Role::Admin);
            let last = if key.ends_with('0') { '1' } else { '0' };
            format!("{}{last}", &key[..key.len() - 1])
        },
    ] {
        let (code, body) = s.exchange(bad).await;
        assert_eq!(code, 401, "key {bad:?}: {body}");
        assert_eq!(error_code(&body), "invalid_api_key");
    }

    let admin = s.token(Role::Admin).await;
    let (code, _, _) = s
        .call("GET", "/api/v1/admin/keys", Some(&admin), None)
        .await;
    assert_eq!(code, 200);

    // Signed with another secret; from another issuer; unsigned; tampered; garbage.
    let other = TokenCodec::new("0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170", "pulse", 600).unwrap();
    let forged = other
        .issue(s.key_id(Role::Admin), Role::Admin, chrono::Utc::now())
        .unwrap()
        .access_token;
    let foreign = TokenCodec::new(SECRET, "someone-else", 600)
        .unwrap()
        .issue(s.key_id(Role::Admin), Role::Admin, chrono::Utc::now())
        .unwrap()
        .access_token;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let analyst = s.token(Role::Analyst).await;
    let parts: Vec<&str> = analyst.split('.').collect();
    let claims = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap();
    let raised = b64.encode(claims.replace("\"analyst\"", "\"admin\""));
    let tampered = format!("{}.{raised}.{}", parts[0], parts[2]);
    let unsigned = format!("{}.{raised}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#));
    // A genuine signature over claims naming a key that does not exist.
    let ghost = TokenCodec::new(SECRET, "pulse", 600)
        .unwrap()
        .issue("000000000000", Role::Admin, chrono::Utc::now())
        .unwrap()
        .access_token;
    // A genuine signature claiming a role the key does not have.
    let promoted = TokenCodec::new(SECRET, "pulse", 600)
        .unwrap()
        .issue(s.key_id(Role::Analyst), Role::Admin, chrono::Utc::now())
        .unwrap()
        .access_token;
    for (what, token) in [
        ("forged", forged.as_str()),
        ("foreign issuer", foreign.as_str()),
        ("tampered", tampered.as_str()),
        ("alg none", unsigned.as_str()),
        ("unknown key", ghost.as_str()),
        ("role not the key's", promoted.as_str()),
        ("garbage", "a.b.c"),
    ] {
        let (code, _, body) = s.call("GET", "/api/v1/admin/keys", Some(token), None).await;
        assert_eq!(code, 401, "{what} token: {body}");
        assert_eq!(error_code(&body), "invalid_token", "{what}");
    }
    let res = s
        .http
        .get(s.url("/api/v1/posts"))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);

    // A live session is closed when its token expires.
    let (code, ws) = s.ws(Some(&analyst), None).await;
    assert_eq!(code, 101);
    let mut ws = ws.unwrap();
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = ws.next().await {
            if let Ok(Message::Close(frame)) = frame {
                return frame;
            }
        }
        None
    })
    .await
    .expect("the session closes when its token expires")
    .expect("with a close frame");
    assert_eq!(close.code, CloseCode::Library(4001));

    // Expired tokens are refused (`exp` is in whole seconds: wait past the next one).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (code, _, body) = s
        .call("GET", "/api/v1/admin/keys", Some(&admin), None)
        .await;
    assert_eq!(code, 401, "{body}");
    assert_eq!(error_code(&body), "token_expired");

    // A revoked key stops working, by token and directly.
    let analyst = s.token(Role::Analyst).await;
    let admin = s.token(Role::Admin).await;
    let (code, _, _) = s.call("GET", "/api/v1/posts", Some(&analyst), None).await;
    assert_eq!(code, 200);
    let path = format!("/api/v1/admin/keys/{}", s.key_id(Role::Analyst));
    let (code, _, body) = s.call("DELETE", &path, Some(&admin), None).await;
    assert_eq!(code, 204, "{body}");
    let (code, _, body) = s.call("GET", "/api/v1/posts", Some(&analyst), None).await;
    assert_eq!((code, error_code(&body)), (401, "revoked_api_key"));
    let (code, body) = s.exchange(s.key(Role::Analyst)).await;
    assert_eq!((code, error_code(&body)), (401, "revoked_api_key"));
    let res = s
        .http
        .get(s.url("/api/v1/posts"))
        .header("x-api-key", s.key(Role::Analyst))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let (code, _, _) = s.call("DELETE", &path, Some(&admin), None).await;
    assert_eq!(code, 404, "a key is revoked once");
}

#[actix_rt::test]
async fn rate_limits_trigger_and_recover() {
    let s = Secure::start(|s| {
        s.limits.rate_limits = true;
        s.limits.per_key_per_sec = 2.0;
        s.limits.per_key_burst = 4.0;
        s.limits.per_ip_per_sec = 1.0;
        s.limits.per_ip_burst = 6.0;
    })
    .await;
    let token = s.token(Role::Analyst).await;

    // A key's burst passes, then 429 with Retry-After.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let (code, headers, body) = s.call("GET", "/api/v1/posts", Some(&token), None).await;
        statuses.push(code);
        if code == 429 {
            assert_eq!(error_code(&body), "rate_limited");
            retry_after = headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
    }
    assert!(statuses.iter().take(4).all(|&c| c == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let wait = retry_after.expect("429 carries Retry-After");
    assert!(wait >= 1);

    // Another key is not affected.
    let admin = s.token(Role::Admin).await;
    let (code, _, _) = s.call("GET", "/api/v1/posts", Some(&admin), None).await;
    assert_eq!(code, 200);

    // After waiting what it said, the key is served again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (code, _, body) = s.call("GET", "/api/v1/posts", Some(&token), None).await;
    assert_eq!(code, 200, "{body}");

    // Guessing keys spends the address's budget: soon every guess is 429, unverified.
    let mut guesses = Vec::new();
    for i in 0..12 {
        let (code, _) = s
            .exchange(&format!("pulse_{:012x}_{}", i, "a".repeat(64)))
            .await;
        guesses.push(code);
    }
    assert!(
        guesses.contains(&401) && guesses.ends_with(&[429]),
        "{guesses:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (code, _) = s.exchange(s.key(Role::Ingest)).await;
    assert_eq!(code, 200, "the address's budget refills");
}

/// POSTs `mib` MiB of `[` with chunked encoding (no length) as fast as the server takes
/// them; the response status if one came before the server closed the connection.
async fn stream_chunked(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    mib: usize,
) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'['; 1024 * 1024];
    for _ in 0..mib {
        let framed = [
            format!("{:x}\r\n", chunk.len()).as_bytes(),
            &chunk[..],
            b"\r\n",
        ]
        .concat();
        if socket.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut response = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut response))
        .await
        .ok()?
        .ok()?;
    let line = String::from_utf8_lossy(&response[..n]).to_string();
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

/// Peak resident memory of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap()
}

#[actix_rt::test]
async fn oversize_and_deeply_nested_inputs_are_refused() {
    let s = Secure::start(|s| {
        s.limits.max_body_bytes = 64 * 1024;
        s.limits.max_events_body_bytes = 256 * 1024;
        s.limits.max_json_depth = 16;
        s.ws.max_frame_bytes = 4 * 1024;
        s.ws.max_topics_per_session = 2;
    })
    .await;
    let admin = s.token(Role::Admin).await;
    let before = peak_rss_mib();

    // Declared too large: refused from the header.
    let big = vec![b' '; 65 * 1024];
    let (code, body) = s.post_raw("/api/v1/analyze", &admin, big).await;
    assert_eq!((code, error_code(&body)), (413, "payload_too_large"));

    // Streamed without a length, 256 MiB of it: refused once past the limit, never held.
    let status = stream_chunked(s.app.address(), "/api/v1/events", &admin, 256).await;
    assert!(
        status.is_none() || status == Some(413),
        "an endless body is refused: {status:?}"
    );
    let grown = peak_rss_mib() - before;
    assert!(
        grown < 64.0,
        "peak memory grew by {grown:.0} MiB on a refused body"
    );

    // Deep nesting.
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let (code, body) = s.post_raw("/api/v1/analyze", &admin, deep).await;
    assert_eq!((code, error_code(&body)), (400, "json_too_deep"));

    // Too many items, too long a text.
    let (code, _, body) = s
        .call(
            "POST",
            "/api/v1/analyze",
            Some(&admin),
            Some(&json!({"texts": vec!["a"; 300]})),
        )
        .await;
    assert!((400..500).contains(&code), "{body}");
    let (code, _, body) = s
        .call(
            "POST",
            "/api/v1/analyze",
            Some(&admin),
            Some(&json!({"texts": ["x".repeat(30_000)]})),
        )
        .await;
    assert!((400..500).contains(&code), "{body}");
    assert!(body["error"]["code"].is_string());
    let events: Vec<Value> = (0..1_001)
        .map(|i| serde_json::from_str(&post_json(&format!("n{i}"), "hi")).unwrap())
        .collect();
    let (code, _, body) = s
        .call("POST", "/api/v1/events", Some(&admin), Some(&json!(events)))
        .await;
    assert!((400..500).contains(&code), "{body}");
    let long_query = format!("/api/v1/posts?product={}", "p".repeat(10_000));
    let (code, _, body) = s.call("GET", &long_query, Some(&admin), None).await;
    assert_eq!((code, error_code(&body)), (414, "query_too_long"));
    let long_filter = format!("/api/v1/metrics/overall?product={}", "p".repeat(1_000));
    let (code, _, body) = s.call("GET", &long_filter, Some(&admin), None).await;
    assert_eq!((code, error_code(&body)), (400, "invalid_query"));

    // WebSocket: an oversize frame closes the session with 1009; too many topics is refused.
    let analyst = s.token(Role::Analyst).await;
    let (_, ws) = s.ws(Some(&analyst), None).await;
    let mut ws = ws.unwrap();
    ws.send(Message::text(
        r#"{"type":"subscribe","topics":["posts","metrics","alerts"]}"#,
    ))
    .await
    .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(reply.to_text().unwrap().contains("error"), "{reply}");
    let _ = ws.send(Message::text("x".repeat(8 * 1024))).await;
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Close(frame)) => return frame,
                Err(_) => return None,
                _ => {}
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Size));

    // The server is still well.
    let (code, _, _) = s.call("GET", "/api/v1/posts", Some(&admin), None).await;
    assert_eq!(code, 200);
}

#[actix_rt::test]
async fn admin_changes_are_audited_with_actor_and_payload() {
    let s = Secure::start(|_| {}).await;
    let admin = s.token(Role::Admin).await;
    let analyst = s.token(Role::Analyst).await;

    let (code, _, rule) = s
        .call(
            "POST",
            "/api/v1/alert-rules",
            Some(&admin),
            Some(&json!({"name": "neg", "kind": "negativity", "threshold": 0.5})),
        )
        .await;
    assert_eq!(code, 201, "{rule}");
    let rule_path = format!("/api/v1/alert-rules/{}", rule["id"]);
    let (code, _, _) = s
        .call(
            "PATCH",
            &rule_path,
            Some(&admin),
            Some(&json!({"threshold": 0.6})),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _, _) = s
        .call(
            "POST",
            "/api/v1/webhooks",
            Some(&admin),
            Some(&json!({"url": "http://127.0.0.1:9/hook", "secret": "super-secret-signing-key"})),
        )
        .await;
    assert_eq!(code, 201);
    let (code, _, created) = s
        .call(
            "POST",
            "/api/v1/admin/keys",
            Some(&admin),
            Some(&json!({"role": "ingest", "name": "producer"})),
        )
        .await;
    assert_eq!(code, 201);
    let new_key = created["key"].as_str().unwrap().to_string();
    let (code, _, _) = s
        .call(
            "DELETE",
            &format!("/api/v1/admin/keys/{}", created["id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(code, 204);
    let (code, _, _) = s.call("DELETE", &rule_path, Some(&admin), None).await;
    assert_eq!(code, 204);
    // An analyst's attempt is refused and recorded as denied.
    let (code, _, _) = s
        .call(
            "POST",
            "/api/v1/alert-rules",
            Some(&analyst),
            Some(&json!({"name": "x", "kind": "negativity"})),
        )
        .await;
    assert_eq!(code, 403);

    let (code, _, _) = s
        .call("GET", "/api/v1/admin/audit", Some(&analyst), None)
        .await;
    assert_eq!(code, 403, "only admins read the audit log");
    let (code, _, log) = s
        .call("GET", "/api/v1/admin/audit", Some(&admin), None)
        .await;
    assert_eq!(code, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = items
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("rule.create", "denied"),
            ("rule.delete", "succeeded"),
            ("key.revoke", "succeeded"),
            ("key.create", "succeeded"),
            ("webhook.create", "succeeded"),
            ("rule.update", "succeeded"),
            ("rule.create", "succeeded"),
        ]
    );
    let admin_actor = format!("key:{}", s.key_id(Role::Admin));
    assert!(items[1..]
        .iter()
        .all(|r| r["actor"] == admin_actor.as_str()));
    assert_eq!(
        items[0]["actor"],
        format!("key:{}", s.key_id(Role::Analyst))
    );
    let created_rule = &items[6];
    assert_eq!(created_rule["target"], rule_path.as_str());
    assert_eq!(created_rule["payload"]["threshold"], 0.5);
    assert_eq!(created_rule["status"], 201);
    assert!(created_rule["at"].is_string() && created_rule["ip"].is_string());
    let webhook = &items[4];
    assert_eq!(webhook["payload"]["secret"], "[redacted]");
    let everything = log.to_string();
    assert!(!everything.contains("super-secret-signing-key"));
    assert!(
        !everything.contains(&new_key),
        "a created key is never logged"
    );

    // Filters and paging.
    let (_, _, only) = s
        .call(
            "GET",
            "/api/v1/admin/audit?action=rule.create&limit=1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1);
    let before = only["next_before"].as_i64().unwrap();
    let (_, _, next) = s
        .call(
            "GET",
            &format!("/api/v1/admin/audit?action=rule.create&before={before}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(next["items"][0]["outcome"], "succeeded");

    // Bodies at the edges of what JSON can say are recorded and read back.
    let edgy =
        r#"{"name": "e\u0000dge", "kind": "negativity", "threshold": -1.7976931348623157e308}"#;
    let (code, body) = s.post_raw("/api/v1/alert-rules", &admin, edgy).await;
    assert!((200..500).contains(&code), "{code} {body}");
    let (code, _, log) = s
        .call("GET", "/api/v1/admin/audit?limit=1", Some(&admin), None)
        .await;
    assert_eq!(code, 200, "{log}");
    assert_eq!(log["items"][0]["action"], "rule.create");
}

/// POSTs `body` with `Content-Encoding: encoding`.
async fn post_encoded(
    s: &Secure,
    path: &str,
    token: &str,
    encoding: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    s.post_raw_with(path, token, &[("content-encoding", encoding)], body)
        .await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_repeated(data, 1)
}

/// `data` repeated `times`, gzipped, without holding the repetition.
fn gzip_repeated(data: &[u8], times: usize) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..times {
        e.write_all(data).unwrap();
    }
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    brotli_repeated(data, 1)
}

/// `data` repeated `times`, brotli-compressed, without holding the repetition.
fn brotli_repeated(data: &[u8], times: usize) -> Vec<u8> {
    use std::io::Write;
    let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
    for _ in 0..times {
        w.write_all(data).unwrap();
    }
    w.into_inner()
}

#[actix_rt::test]
async fn compressed_bodies_are_decoded_and_held_to_the_same_limits() {
    // Made before any connection: they take seconds of this thread, which would keep the
    // client from seeing the server close an idle connection it then reuses.
    let mib = vec![b' '; 1 << 20];
    let bombs = [
        ("br", brotli_repeated(&mib, 200)),
        ("gzip", gzip_repeated(&mib, 200)),
    ];
    let s = Secure::start(|s| {
        s.limits.max_body_bytes = 256 * 1024;
        s.limits.max_json_depth = 16;
    })
    .await;
    let admin = s.token(Role::Admin).await;

    // A compressed batch of events is taken like a plain one.
    let events: Vec<Value> = (0..3)
        .map(|i| serde_json::from_str(&post_json(&format!("gz-{i}"), "shipping was fast")).unwrap())
        .collect();
    let batch = serde_json::to_vec(&events).unwrap();
    let (code, body) = post_encoded(&s, "/api/v1/events", &admin, "gzip", gzip(&batch)).await;
    assert_eq!((code, body["accepted"].clone()), (202, json!(3)), "{body}");
    let (code, body) = post_encoded(&s, "/api/v1/events", &admin, "br", brotli(&batch)).await;
    assert_eq!((code, body["accepted"].clone()), (202, json!(3)), "{body}");

    // An admin change sent compressed is audited with its JSON.
    let rule = json!({"name": "compressed", "kind": "negativity", "threshold": 0.61});
    let (code, body) = post_encoded(
        &s,
        "/api/v1/alert-rules",
        &admin,
        "gzip",
        gzip(rule.to_string().as_bytes()),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (_, _, log) = s
        .call("GET", "/api/v1/admin/audit?limit=1", Some(&admin), None)
        .await;
    assert_eq!(log["items"][0]["payload"]["threshold"], 0.61, "{log}");

    // Nesting hidden by compression is still measured.
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let (code, body) =
        post_encoded(&s, "/api/v1/analyze", &admin, "gzip", gzip(deep.as_bytes())).await;
    assert_eq!((code, error_code(&body)), (400, "json_too_deep"));

    // Bombs: a few hundred kilobytes at most that stand for 200 MiB are refused once the
    // decoded limit is passed, without the memory of what they stand for.
    let before = peak_rss_mib();
    for (encoding, bomb) in bombs {
        assert!(bomb.len() < 256 * 1024, "{encoding}: {} bytes", bomb.len());
        let (code, body) = post_encoded(&s, "/api/v1/analyze", &admin, encoding, bomb).await;
        assert_eq!(
            (code, error_code(&body)),
            (413, "payload_too_large"),
            "{encoding}"
        );
    }
    let grown = peak_rss_mib() - before;
    assert!(grown < 64.0, "peak memory grew by {grown:.0} MiB");

    // Not an encoding Pulse reads, or not what it claims to be.
    let (code, body) = post_encoded(&s, "/api/v1/analyze", &admin, "zstd", b"{}".to_vec()).await;
    assert_eq!((code, error_code(&body)), (415, "unsupported_media_type"));
    let (code, body) = post_encoded(&s, "/api/v1/analyze", &admin, "gzip", b"{}".to_vec()).await;
    assert_eq!((code, error_code(&body)), (400, "invalid_body"));
}

#[actix_rt::test]
async fn browser_protections_cors_and_websocket_origins() {
    let s = Secure::start(|s| s.http.cors_origins = vec!["https://brand.example".into()]).await;
    let analyst = s.token(Role::Analyst).await;
    for path in ["/", "/api/v1/posts", "/health"] {
        let res = s
            .http
            .get(s.url(path))
            .bearer_auth(&analyst)
            .send()
            .await
            .unwrap();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }

    // CORS: the configured origin is allowed, others get no grant.
    let res = s
        .http
        .get(s.url("/api/v1/posts"))
        .bearer_auth(&analyst)
        .header("origin", "https://brand.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://brand.example"
    );
    let res = s
        .http
        .get(s.url("/api/v1/posts"))
        .bearer_auth(&analyst)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, s.url("/api/v1/posts"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight("https://brand.example").await.unwrap();
    assert_eq!(ok.status().as_u16(), 204);
    assert!(ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    assert_eq!(
        preflight("https://evil.example")
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );

    // WebSocket origins: same origin and configured ones, not others.
    let own = format!("http://{}", s.app.address());
    assert_eq!(s.ws(Some(&analyst), Some(&own)).await.0, 101);
    assert_eq!(
        s.ws(Some(&analyst), Some("https://brand.example")).await.0,
        101
    );
    assert_eq!(
        s.ws(Some(&analyst), Some("https://evil.example")).await.0,
        403
    );
}

/// Whatever stops `serve` from starting, it says why in one error and exits 1, without the
/// panics of actors torn down before they ran.
#[test]
fn serve_that_cannot_start_says_why_and_exits_cleanly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(TestEnv::new());
    let base = env.env();
    let with = |changes: &[(&str, &str)]| {
        let mut vars: Vec<(String, String)> = base
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .cloned()
            .collect();
        vars.extend(changes.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        vars
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_at = taken.local_addr().unwrap().to_string();
    let cases = [
        (
            with(&[("PULSE_AUTH__OPEN", "false")]),
            "auth.jwt_secret is not set",
        ),
        (
            with(&[
                ("PULSE_AUTH__OPEN", "false"),
                (
                    "PULSE_AUTH__JWT_SECRET",
                    "replace-me-with-32-random-bytes-please",
                ),
            ]),
            "looks like a placeholder",
        ),
        (
            with(&[("PULSE_LISTEN", &taken_at)]),
            "binding the HTTP listener",
        ),
        (
            with(&[
                ("PULSE_ANALYZER__BACKEND", "onnx"),
                ("PULSE_ANALYZER__BUNDLES", r#"["/nonexistent/bundle"]"#),
            ]),
            "/nonexistent/bundle",
        ),
    ];
    for (vars, reason) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pulse"))
            .arg("serve")
            .env_remove("PULSE_MODEL_DIR")
            .envs(vars.iter().cloned())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{reason}: {said}");
        assert!(said.contains(reason), "{reason}: {said}");
        assert!(!said.contains("panicked"), "{reason}: {said}");
    }
    drop(taken);
}

#[test]
fn serve_refuses_to_start_open_unless_told_and_never_logs_secrets() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(TestEnv::new());
    let mut vars = env.env();
    vars.retain(|(k, _)| k != "PULSE_AUTH__OPEN");

    // Neither a secret nor an explicit open: refused, with the fix.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pulse"))
        .arg("serve")
        .envs(vars.iter().cloned())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("PULSE_AUTH__JWT_SECRET") && said.contains("PULSE_AUTH__OPEN"),
        "{said}"
    );

    // Told explicitly: it runs open and says so loudly, and the dashboard is told.
    let mut open = vars.clone();
    open.push(("PULSE_AUTH__OPEN".into(), "true".into()));
    let server = PulseProcess::start(&open);
    assert!(server.log_text().contains("AUTHENTICATION IS OFF"));
    let status: Value = rt.block_on(async {
        reqwest::get(format!("http://{}/api/v1/auth/status", server.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(status["mode"], "open");
    drop(server);

    // With a secret: keys from the command line, used over HTTP; nothing secret is logged.
    let mut secure = vars.clone();
    secure.push(("PULSE_AUTH__JWT_SECRET".into(), SECRET.into()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args([
            "keys", "create", "--role", "analyst", "--name", "cli", "--json",
        ])
        .envs(secure.iter().cloned())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let server = PulseProcess::start(&secure);
    let token = rt.block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://{}", server.address);
        let issued: Value = http
            .post(format!("{base}/api/v1/auth/token"))
            .json(&json!({"api_key": key}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = issued["access_token"].as_str().unwrap().to_string();
        let res = http
            .get(format!("{base}/api/v1/posts"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let res = http
            .get(format!("{base}/api/v1/posts"))
            .bearer_auth(format!("{token}x"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
        token
    });
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(["keys", "list", "--json"])
        .envs(secure.iter().cloned())
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(listed[0]["last_used_at"].is_string());
    assert!(!listed.to_string().contains(&key));
    let log = server.log_text();
    assert!(log.contains("access token issued"), "{log}");
    for secret in [SECRET, key.as_str(), token.as_str()] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}

/// Sends one raw HTTP/1.1 request line (clients normalise paths; attackers do not) and
/// returns the status and body.
async fn raw_get(addr: std::net::SocketAddr, target: &str, extra: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[actix_rt::test]
async fn injection_and_traversal_attempts_reach_nothing() {
    let s = Secure::start(|_| {}).await;
    let analyst = s.token(Role::Analyst).await;
    let ingest_key = s.key(Role::Ingest).to_string();
    let (code, _, _) = s
        .call(
            "POST",
            "/api/v1/events",
            Some(&ingest_key),
            Some(&serde_json::from_str(&post_json("inj-1", "fine phone")).unwrap()),
        )
        .await;
    assert_eq!(code, 202);

    // SQL in filter values is data, never code.
    for attempt in [
        "x' OR '1'='1",
        "x'; DROP TABLE posts; --",
        "pulse-phone' UNION SELECT hash FROM api_keys --",
    ] {
        let url = reqwest::Url::parse_with_params(&s.url("/api/v1/posts"), &[("product", attempt)])
            .unwrap();
        let res = s.http.get(url).bearer_auth(&analyst).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["items"].as_array().unwrap().len(), 0, "{attempt}");
    }
    let stored = s.env.pg().await;
    let keys: i64 = stored
        .query_one("SELECT count(*) FROM api_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 3, "the tables are intact");

    // Paths that try to leave the dashboard's directory get nothing from outside it.
    for target in [
        "/../Cargo.toml",
        "/..%2fCargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/assets/../../Cargo.toml",
        "//etc/passwd",
    ] {
        let (status, text) = raw_get(s.app.address(), target, "Accept: text/html\r\n").await;
        assert!(
            !text.contains("[package]") && !text.contains("root:x:0:0"),
            "{target} leaked a file ({status})"
        );
    }

    // A forged request id cannot inject headers.
    let (_, text) = raw_get(
        s.app.address(),
        "/health",
        "X-Request-Id: abc\r\nSet-Cookie: pwned=1\r\n",
    )
    .await;
    assert!(!text.to_ascii_lowercase().contains("set-cookie"));

    // Credentials in odd places do not count.
    let url = format!("/api/v1/posts?access_token={analyst}");
    let (status, _) = raw_get(s.app.address(), &url, "").await;
    assert_eq!(
        status, 401,
        "tokens in query strings are for the WebSocket only"
    );
}

/// Compressed beside text an attacker can have reflected, a secret's length leaks it (BREACH):
/// a token or a new key is never compressed, while other API answers are.
#[actix_rt::test]
async fn responses_that_carry_credentials_are_never_compressed() {
    let s = Secure::start(|_| {}).await;
    let encoding = |res: &reqwest::Response| {
        res.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let res = s
        .http
        .post(s.url("/api/v1/auth/token"))
        .header("accept-encoding", "gzip, br")
        .json(&json!({"api_key": s.key(Role::Admin)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(!["gzip", "br"].contains(&encoding(&res).as_str()));
    let body: Value = res.json().await.unwrap();
    let token = body["access_token"].as_str().expect("a token").to_string();

    let res = s
        .http
        .post(s.url("/api/v1/admin/keys"))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip, br")
        .json(&json!({"role": "analyst", "name": "compression"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    assert!(!["gzip", "br"].contains(&encoding(&res).as_str()));
    let body: Value = res.json().await.unwrap();
    assert!(
        body["key"].as_str().is_some_and(|k| !k.is_empty()),
        "{body}"
    );

    let res = s
        .http
        .get(s.url("/api/v1/admin/keys"))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(encoding(&res), "gzip", "other answers are compressed");
    s.app.shutdown().await;
}

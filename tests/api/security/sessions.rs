//! Credentials over time: live sessions end when their key is revoked or their token expires,
//! and an unknown key id costs the same check as a known one.

use super::*;
use common::secured::SecuredServer as Server;

pub(super) type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens a WebSocket with `request` (a URL or a request with headers).
pub(super) async fn ws_connect(
    addr: std::net::SocketAddr,
    request: impl IntoClientRequest + Unpin,
) -> Socket {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap()
        .0
}

/// The code of the close frame `ws` gets within 20 s; `None` when it gets none.
async fn close_code(ws: &mut Socket) -> Option<CloseCode> {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(Some(frame))) => return Some(frame.code),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await;
    found.ok().flatten()
}

/// A WebSocket opened with `key` presented directly.
async fn connect_with_key(addr: std::net::SocketAddr, key: &str) -> Socket {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-api-key", key.parse().unwrap());
    ws_connect(addr, request).await
}

/// Revoking a key left its live sessions streaming, and key sessions never ended.
#[actix_rt::test]
async fn live_sessions_end_when_their_key_is_revoked_or_outlives_a_token() {
    let s = Server::start(|s| s.auth.token_ttl_secs = 3).await;
    let connect = |key: String| {
        let addr = s.app.address();
        async move { connect_with_key(addr, &key).await }
    };
    let analyst = s.key(Role::Analyst);
    let mut revoked = connect(analyst.key.clone()).await;
    let res = s
        .call(
            "DELETE",
            &format!("/api/v1/admin/keys/{}", analyst.info.id),
            Some(Role::Admin),
            None,
        )
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(close_code(&mut revoked).await, Some(CloseCode::from(4003)));

    let mut expiring = connect(s.key(Role::Admin).key.clone()).await;
    assert_eq!(close_code(&mut expiring).await, Some(CloseCode::from(4001)));
    s.app.shutdown().await;
}

/// A revocation that lands between an upgrade's credential check and its session's
/// registration: the broadcaster closed the key's sessions it knew, then registered this one as
/// if nothing had happened, and it streamed until its credential expired (an hour).
#[actix_rt::test]
async fn a_session_that_registers_after_its_key_was_revoked_is_closed_at_once() {
    let s = Server::start(|_| {}).await;
    let analyst = s.key(Role::Analyst);
    // The broadcaster hears of the revocation first, while the authenticator still admits the
    // key: the order such a race gives.
    let revoked = pulse::ws::messages::KeyRevoked(analyst.info.id.as_str().into());
    let closed = s.app.broadcaster().send(revoked).await.unwrap();
    assert_eq!(closed, 0, "the key had no session yet");

    let mut late = connect_with_key(s.app.address(), &analyst.key).await;
    assert_eq!(close_code(&mut late).await, Some(CloseCode::from(4003)));
    assert!(
        wait_until(Duration::from_secs(20), || async {
            s.app.ws_sessions() == 0
        })
        .await
    );

    // Another key's sessions are not touched.
    let mut other = connect_with_key(s.app.address(), &s.key(Role::Editor).key).await;
    other
        .send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(msg)) = other.next().await {
            if let Message::Text(text) = msg {
                return Some(text.as_str().to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    assert_eq!(pong.as_deref(), Some(r#"{"type":"pong"}"#));
    s.app.shutdown().await;
}

// Passes with or without the trim: after it (one token lifetime) the key's credential check
// alone must keep it out.
#[actix_rt::test]
async fn a_revoked_key_opens_no_session_after_the_broadcaster_forgets_its_revocation() {
    let s = Server::start(|s| s.auth.token_ttl_secs = 2).await;
    let analyst = s.key(Role::Analyst);
    let path = format!("/api/v1/admin/keys/{}", analyst.info.id);
    let res = s.call("DELETE", &path, Some(Role::Admin), None).await;
    assert_eq!(res.status, 204);
    // A session's lifetime and the broadcaster's next check (every second) later.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let addr = s.app.address();
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-api-key", analyst.key.parse().unwrap());
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Err(tungstenite::Error::Http(res)) => assert_eq!(res.status().as_u16(), 401),
        Ok(_) => panic!("a revoked key opened a live session"),
        Err(e) => panic!("websocket handshake failed: {e}"),
    }
    s.app.shutdown().await;
}

/// An unknown key id answered at once and a known one after Argon2.
#[actix_rt::test]
async fn an_unknown_key_id_costs_the_same_argon2_check_as_a_known_one() {
    let s = Server::start(|_| {}).await;
    let before = mismatches(&s).await;
    let known_id = s.key(Role::Analyst).info.id.clone();
    let unknown = format!("pulse_{}_{}", "0".repeat(known_id.len()), "ab".repeat(32));
    let wrong_secret = format!("pulse_{known_id}_{}", "cd".repeat(32));
    for key in [&unknown, &wrong_secret] {
        let res = s.get_with_key("/api/v1/posts", key).await;
        assert_eq!(res.status, 401, "{key}");
    }
    assert_eq!(mismatches(&s).await - before, 2.0);
    s.app.shutdown().await;
}

async fn mismatches(s: &Server) -> f64 {
    summed(
        &metrics_text(&s.app).await,
        "pulse_auth_key_verifications_total{result=\"mismatch\"}",
    )
}

/// Each token exchange paid an Argon2 check of its own, so workers exchanging one key at once
/// queued one check each and past a network's share of the queue were answered 503.
#[actix_rt::test]
async fn exchanging_one_key_again_and_again_pays_one_check() {
    let s = Server::start(|_| {}).await;
    let made = s.app.create_key(Role::Editor, "workers").await;
    let (key, key_id) = (made.key, made.info.id);
    let verifications = || async {
        summed(
            &metrics_text(&s.app).await,
            "pulse_auth_key_verifications_total",
        )
    };
    let before = verifications().await;
    let exchange = || {
        s.call(
            "POST",
            "/api/v1/auth/token",
            None,
            Some(serde_json::json!({"api_key": key})),
        )
    };
    // A network sends a few bodies without a key at once: rounds of four.
    for _ in 0..3 {
        for res in futures::future::join_all((0..4).map(|_| exchange())).await {
            assert_eq!(res.status, 200, "{}", res.body);
            assert_eq!(res.json()["role"], "editor", "{}", res.body);
        }
    }
    assert_eq!(verifications().await - before, 1.0);

    // Remembered, the key is still refused at once when revoked.
    let path = format!("/api/v1/admin/keys/{key_id}");
    let res = s.call("DELETE", &path, Some(Role::Admin), None).await;
    assert_eq!(res.status, 204);
    let res = exchange().await;
    assert_eq!(res.status, 401, "{}", res.body);
    s.app.shutdown().await;
}

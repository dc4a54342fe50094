//! Roles and credentials: what each role may do, every way a credential is refused, and
//! answers that carry credentials kept out of compression.

use super::*;

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
    let get = |path, needs| case("GET", path, None, needs);
    let post = |path, body, needs| case("POST", path, Some(body), needs);
    let event: Value = serde_json::from_str(&post_json("sec-1", "I love this")).unwrap();
    vec![
        post("/api/v1/events", event, Role::Ingest),
        get("/api/v1/posts", Role::Analyst),
        get("/api/v1/metrics/overall", Role::Analyst),
        get("/api/v1/trending/posts", Role::Analyst),
        get("/api/v1/stories", Role::Analyst),
        get("/api/v1/pipeline", Role::Analyst),
        get("/api/v1/alerts", Role::Analyst),
        get("/api/v1/alert-rules", Role::Analyst),
        post("/api/v1/analyze", json!({"texts": ["fine"]}), Role::Analyst),
        post(
            "/api/v1/alert-rules",
            json!({"name": "neg", "kind": "negativity"}),
            Role::Admin,
        ),
        post(
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook"}),
            Role::Admin,
        ),
        get("/api/v1/webhooks", Role::Admin),
        get("/api/v1/admin/keys", Role::Admin),
        get("/api/v1/admin/audit", Role::Admin),
        post(
            "/api/v1/admin/keys",
            json!({"role": "ingest", "name": "made by matrix"}),
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
    assert_eq!(s.status_with_key("/api/v1/posts", &ingest_key).await, 403);
    assert_eq!(
        s.status_with_key("/api/v1/posts", s.key(Role::Analyst))
            .await,
        200
    );

    // The WebSocket: analysts and admins in, ingest keys and strangers out.
    let token_of = |role| tokens.iter().find(|t| t.0 == role).unwrap().1.clone();
    assert_eq!(s.ws(None, None).await.0, 401);
    assert_eq!(s.ws(Some(&token_of(Role::Ingest)), None).await.0, 403);
    assert_eq!(s.ws(Some("not-a-token"), None).await.0, 401);
    for role in [Role::Analyst, Role::Admin] {
        let (code, ws) = s.ws(Some(&token_of(role)), None).await;
        assert_eq!(code, 101, "{role} opens a live session");
        let mut ws = ws.unwrap();
        let reply = Secure::ask(&mut ws, r#"{"type":"subscribe","topics":["posts"]}"#).await;
        assert!(reply.contains("subscribed"), "{reply}");
    }
}

// Failed while HEAD had no rule of its own: every HEAD to a route needed an admin.
#[actix_rt::test]
async fn head_may_go_where_get_may() {
    let s = Secure::start(|_| {}).await;
    let head = |path: &str, key: Option<&str>| {
        let mut req = s.app.http.head(s.url(path));
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.bytes().await.unwrap().len())
        }
    };
    for public in ["/health", "/api/docs", "/api/openapi.json", "/"] {
        assert_eq!(
            head(public, None).await,
            (200, 0),
            "HEAD {public} without a key"
        );
    }
    let analyst = s.key(Role::Analyst).to_string();
    assert_eq!(head("/api/v1/posts", Some(&analyst)).await, (200, 0));
    assert_eq!(head("/api/v1/posts", None).await.0, 401);
    assert_eq!(head("/api/v1/admin/audit", Some(&analyst)).await.0, 403);
    assert_eq!(head("/api/v1/admin/audit", None).await.0, 401);
    let admin = s.key(Role::Admin).to_string();
    assert_eq!(head("/api/v1/admin/audit", Some(&admin)).await, (200, 0));
    s.app.shutdown().await;
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
    let other = "0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170";
    let forged = signed_token(other, "pulse", s.key_id(Role::Admin), Role::Admin);
    let foreign = signed_token(SECRET, "someone-else", s.key_id(Role::Admin), Role::Admin);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let analyst = s.token(Role::Analyst).await;
    let parts: Vec<&str> = analyst.split('.').collect();
    let claims = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap();
    let raised = b64.encode(claims.replace("\"analyst\"", "\"admin\""));
    let tampered = format!("{}.{raised}.{}", parts[0], parts[2]);
    let unsigned = format!("{}.{raised}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#));
    // A genuine signature over claims naming a key that does not exist.
    let ghost = signed_token(SECRET, "pulse", "000000000000", Role::Admin);
    // A genuine signature claiming a role the key does not have.
    let promoted = signed_token(SECRET, "pulse", s.key_id(Role::Analyst), Role::Admin);
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
        .get_with(
            "/api/v1/posts",
            None,
            &[("authorization", "Basic YWRtaW46YWRtaW4=")],
        )
        .await;
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
    assert_eq!(
        s.status_with_key("/api/v1/posts", s.key(Role::Analyst))
            .await,
        401
    );
    let (code, _, _) = s.call("DELETE", &path, Some(&admin), None).await;
    assert_eq!(code, 404, "a key is revoked once");
}

/// An access token for the key `key_id` claiming `role`, signed with `secret` by `issuer` now,
/// as Pulse signs its own.
fn signed_token(secret: &str, issuer: &str, key_id: &str, role: Role) -> String {
    TokenCodec::new(secret, issuer, 600)
        .unwrap()
        .issue(key_id, role, chrono::Utc::now())
        .unwrap()
        .access_token
}

/// The `content-encoding` of `res` ("" when it has none).
fn encoding(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// `POST path` of `body` (with `bearer` when given) from a client that takes gzip and br: the
/// answer's JSON, once checked to be of `status` and not compressed.
async fn post_uncompressed(
    s: &Secure,
    path: &str,
    bearer: Option<&str>,
    body: &Value,
    status: u16,
) -> Value {
    let mut request = s
        .app
        .http
        .post(s.url(path))
        .header("accept-encoding", "gzip, br")
        .json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let res = request.send().await.unwrap();
    assert_eq!(res.status().as_u16(), status);
    assert!(!["gzip", "br"].contains(&encoding(&res).as_str()));
    res.json().await.unwrap()
}

/// Compressed beside text an attacker can have reflected, a secret's length leaks it (BREACH):
/// a token or a new key is never compressed, while other API answers are.
#[actix_rt::test]
async fn responses_that_carry_credentials_are_never_compressed() {
    let s = Secure::start(|_| {}).await;
    let token_request = json!({"api_key": s.key(Role::Admin)});
    let body = post_uncompressed(&s, "/api/v1/auth/token", None, &token_request, 200).await;
    let token = body["access_token"].as_str().expect("a token").to_string();

    let key_request = json!({"role": "analyst", "name": "compression"});
    let body = post_uncompressed(&s, "/api/v1/admin/keys", Some(&token), &key_request, 201).await;
    assert!(
        body["key"].as_str().is_some_and(|k| !k.is_empty()),
        "{body}"
    );

    let res = s
        .get_with(
            "/api/v1/admin/keys",
            Some(&token),
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(encoding(&res), "gzip", "other answers are compressed");
    s.app.shutdown().await;
}

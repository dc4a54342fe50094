//! Browser protections (CORS, WebSocket origins, no cross-site form posts to an open server)
//! and injection and traversal attempts.

use super::*;
use fred::prelude::*;
use serde_json::Value;

#[actix_rt::test]
async fn browser_protections_cors_and_websocket_origins() {
    let s = Secure::start(|s| s.http.cors_origins = vec!["https://brand.example".into()]).await;
    let analyst = s.token(Role::Analyst).await;
    for path in ["/", "/api/v1/posts", "/health"] {
        let res = s.get_with(path, Some(&analyst), &[]).await;
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }

    // CORS: the configured origin is allowed, others get no grant.
    let from_origin = |origin: &'static str| {
        let (s, analyst) = (&s, analyst.as_str());
        async move {
            s.get_with("/api/v1/posts", Some(analyst), &[("origin", origin)])
                .await
        }
    };
    let res = from_origin("https://brand.example").await;
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://brand.example"
    );
    let res = from_origin("https://evil.example").await;
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let preflight = |origin: &'static str| {
        s.app
            .http
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
    // Every method an operation of the API uses is one a browser may send cross-origin.
    let allowed = ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    let document: serde_json::Value = s
        .app
        .http
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods: std::collections::BTreeSet<String> = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|p| p.as_object().expect("a path item").keys())
        .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
        .map(|m| m.to_uppercase())
        .collect();
    assert!(methods.contains("PUT"), "{methods:?}");
    for method in &methods {
        assert!(
            allowed.split(", ").any(|a| a == method),
            "{method} is used by the API but not allowed cross-origin: {allowed}"
        );
    }
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
        let res = s
            .app
            .http
            .get(url)
            .bearer_auth(&analyst)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["items"].as_array().unwrap().len(), 0, "{attempt}");
    }
    let stored = s.app.env.pg().await;
    let keys: i64 = stored.scalar("SELECT count(*) FROM api_keys", &[]).await;
    assert_eq!(keys, Role::ALL.len() as i64, "the tables are intact");

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

/// A web page can make a browser POST `text/plain` (or a form) anywhere without a preflight;
/// on an open server `/api/v1/events` took it and appended its events, where every other
/// route that takes JSON answers 415.
#[actix_rt::test]
async fn a_cross_site_text_plain_post_appends_no_events() {
    let app = spawn_app().await;
    let (env, redis) = (&app.env, app.redis().await);
    assert!(env.settings().auth.open, "the attack is on an open server");
    let http = &app.http;
    let url = app.url("/api/v1/events");
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
        // From another site's page (the browser names it), refused for its origin; without
        // one (a client that is no browser), for its type.
        for origin in [Some("https://evil.example"), None] {
            let mut req = http.post(&url).body(event.clone());
            if let Some(origin) = origin {
                req = req.header("origin", origin);
            }
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let res = req.send().await.unwrap();
            let body: Value = res.json().await.unwrap();
            let code = if origin.is_some() {
                "origin_not_allowed"
            } else {
                "unsupported_media_type"
            };
            assert_eq!(body["error"]["code"], code, "{content_type:?} {origin:?}");
            if origin.is_none() {
                assert_eq!(
                    body,
                    json!({"error": {"code": "unsupported_media_type",
                                     "message": "expected Content-Type: application/json",
                                     "details": {}}}),
                    "{content_type:?}"
                );
            }
        }
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

/// A change that takes no JSON body needs no preflight: a page elsewhere could make the
/// browser of anyone on an open server's network disable an alert rule with a form.
#[actix_rt::test]
async fn another_sites_page_cannot_change_anything_on_an_open_server() {
    let app = spawn_app().await;
    assert!(
        app.env.settings().auth.open,
        "the attack is on an open server"
    );
    let rule = app
        .create_rule(
            &json!({"name": "negativity", "kind": "negativity", "dimension": "overall",
                             "threshold": 0.5, "min_volume": 5, "window_minutes": 60}),
        )
        .await;
    let path = format!("/api/v1/alert-rules/{}/disable", rule["id"]);
    let forged = app
        .http
        .post(app.url(&path))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed", "{body}");
    let (_, rules) = app.get("/api/v1/alert-rules").await;
    let stored = item_where(&rules["items"], |r| r["id"] == rule["id"]).clone();
    assert_eq!(stored["enabled"], true, "{stored}");
    // The dashboard's own page (its origin is the server's) still may.
    let own = format!("http://{}", app.address());
    let res = app
        .http
        .post(app.url(&path))
        .header("origin", own)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.shutdown().await;
}

//! A path or a host named a second way reaches nothing: encoded letters, dot segments and
//! doubled slashes before an admin path, and Host names the server does not answer to, CORS
//! preflights included.

use super::*;
use common::secured::SecuredServer as Server;

/// The gate read the raw path, the router the decoded one.
#[actix_rt::test]
async fn a_second_spelling_of_a_path_reaches_nothing() {
    let s = Server::start(|_| {}).await;
    let keys_before = s.count("SELECT count(*) FROM api_keys").await;
    let created = s
        .call(
            "POST",
            "/%61pi/v1/admin/keys",
            None,
            Some(json!({"role": "admin"})),
        )
        .await;
    created.assert_error(400, "non_canonical_path", "");
    let audit = s.analyst("GET", "/api/v1/%61dmin/audit", None).await;
    assert_eq!(audit.status, 400);
    for path in [
        "/api/v1/posts/%2e%2e/admin/keys",
        "/api/v1//admin/keys",
        "/api/./v1/admin/keys",
    ] {
        let res = s.analyst("GET", path, None).await;
        res.assert_error(400, "non_canonical_path", path);
    }
    let upgrade = raw_request(
        s.app.address(),
        "GET",
        "/%77s",
        &[&WS_UPGRADE[..], &[("Origin", "http://evil.example")]].concat(),
        None,
    )
    .await;
    assert_eq!(upgrade.status, 400);
    assert_eq!(s.count("SELECT count(*) FROM api_keys").await, keys_before);
    s.app.shutdown().await;
}

/// `GET /api/v1/posts` with `key`, naming `host` in its Host header.
async fn posts_on_host(s: &Server, host: &str, key: &str) -> RawResponse {
    let headers = [("Host", host), ("x-api-key", key)];
    raw_request(s.app.address(), "GET", "/api/v1/posts", &headers, None).await
}

/// A spoofed Host with a matching Origin passed as the dashboard's own origin.
#[actix_rt::test]
async fn foreign_host_names_are_refused() {
    let s = Server::start(|_| {}).await;
    let key = s.key(Role::Analyst).key.clone();
    let port = s.app.address().port();
    let evil = format!("evil.example:{port}");
    let res = posts_on_host(&s, &evil, &key).await;
    res.assert_error(400, "host_not_allowed", "");
    let origin = format!("http://evil.example:{port}");
    let upgrade = raw_request(
        s.app.address(),
        "GET",
        "/ws",
        &[
            &WS_UPGRADE[..],
            &[
                ("Host", evil.as_str()),
                ("Origin", origin.as_str()),
                ("x-api-key", key.as_str()),
            ],
        ]
        .concat(),
        None,
    )
    .await;
    assert_eq!(upgrade.status, 400);
    // The server's own names pass.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let res = posts_on_host(&s, &host, &key).await;
        assert_eq!(res.status, 200, "{host}");
    }
    s.app.shutdown().await;
}

/// A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) from `origin`, for
/// `target` and naming `host`.
async fn preflight(s: &Server, target: &str, host: &str, origin: &str) -> RawResponse {
    let headers = [
        ("Host", host),
        ("Origin", origin),
        ("Access-Control-Request-Method", "GET"),
    ];
    raw_request(s.app.address(), "OPTIONS", target, &headers, None).await
}

/// Preflights were answered in front of the gate: no path spelling, Host or budget was
/// checked, so a loop of them from one address was answered for ever. A granted preflight,
/// though, is free: a browser sends one for each URL a page using a key calls, and an office
/// behind one address whose budget was spent saw 429s, which browsers report as opaque CORS
/// failures.
#[actix_rt::test]
async fn refused_preflights_spend_the_addresses_budget_and_granted_ones_do_not() {
    const APP: &str = "https://app.example";
    let s = Server::start(|s| {
        address_budget(s, 20.0, 0.01);
        s.http.cors_origins = vec![APP.into()];
    })
    .await;
    let key = s.key(Role::Analyst).key.clone();
    let port = s.app.address().port();
    let evil = format!("evil.example:{port}");
    let own = format!("127.0.0.1:{port}");

    // Refused as a GET naming that Host is, even from an allowed origin.
    let get = posts_on_host(&s, &evil, &key).await;
    get.assert_error(400, "host_not_allowed", "a GET");
    let asked = preflight(&s, "/api/v1/posts", &evil, APP).await;
    asked.assert_error(400, "host_not_allowed", "a preflight");
    let asked = preflight(&s, "/api/v1/%61dmin/keys", &own, APP).await;
    asked.assert_error(400, "non_canonical_path", "a preflight");

    // Every refusal spends the address's budget, and an empty budget answers 429.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(
            preflight(&s, "/api/v1/posts", &own, "https://x.example")
                .await
                .status,
        );
    }
    let refused = statuses.iter().take_while(|s| **s == 403).count();
    assert!(refused > 0 && refused < 20, "{statuses:?}");
    assert!(
        statuses[refused..].iter().all(|s| *s == 429),
        "refused until the budget is spent, then 429: {statuses:?}"
    );

    // The same address, its budget spent, is still granted every preflight from the origin
    // listed in `http.cors_origins`, for as many URLs as a page calls.
    for i in 0..30 {
        let target = format!("/api/v1/posts/{i}");
        let granted = preflight(&s, &target, &own, APP).await;
        assert_eq!(granted.status, 204, "{target}: {}", granted.body);
        assert_eq!(
            granted
                .headers
                .get("access-control-allow-origin")
                .map(String::as_str),
            Some(APP),
            "{target}"
        );
    }
    s.app.shutdown().await;
}

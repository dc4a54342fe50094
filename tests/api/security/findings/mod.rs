//! One test per finding of the last outside probe, each against a real server as an attacker
//! or a careless producer would meet it: a second spelling of an admin path, webhook targets
//! inside the network, an API that could starve the pipeline, timestamps from the far future
//! and past, floods of forbidden requests, sessions outliving their key, entries of
//! megabytes, and the smaller findings (foreign Hosts, forwarded addresses, secrets in URLs,
//! key-id timing, out-of-range queries, unbounded history, feedback that moves thresholds),
//! which are in `smaller`.

use crate::common;
use std::time::Duration;

use common::*;
use fred::prelude::*;
use futures::StreamExt;
use pulse::auth::Role;
use pulse::config::Settings;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use common::secured::SecuredServer as Server;

mod smaller;

/// Finding 1: the gate read the raw path, the router the decoded one.
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
    assert_eq!(
        (created.status, created.code().as_str()),
        (400, "non_canonical_path")
    );
    let audit = s
        .call("GET", "/api/v1/%61dmin/audit", Some(Role::Analyst), None)
        .await;
    assert_eq!(audit.status, 400);
    for path in [
        "/api/v1/posts/%2e%2e/admin/keys",
        "/api/v1//admin/keys",
        "/api/./v1/admin/keys",
    ] {
        let res = s.call("GET", path, Some(Role::Analyst), None).await;
        assert_eq!(
            (res.status, res.code().as_str()),
            (400, "non_canonical_path"),
            "{path}"
        );
    }
    let upgrade = raw_request(
        s.app.address(),
        "GET",
        "/%77s",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Origin", "http://evil.example"),
        ],
        None,
    )
    .await;
    assert_eq!(upgrade.status, 400);
    assert_eq!(s.count("SELECT count(*) FROM api_keys").await, keys_before);
    s.app.shutdown().await;
}

type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A local HTTP receiver answering every request with `status` and, when given, `Location`.
fn receiver(
    status: u16,
    location: Option<String>,
) -> (std::net::SocketAddr, Seen, actix_web::dev::ServerHandle) {
    use actix_web::{web, HttpRequest, HttpResponse, HttpServer};
    let seen: Seen = Default::default();
    let state = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        let (state, location) = (state.clone(), location.clone());
        actix_web::App::new().default_service(web::to(move |req: HttpRequest, body: String| {
            let (state, location) = (state.clone(), location.clone());
            async move {
                state
                    .lock()
                    .unwrap()
                    .push(format!("{} {} {body}", req.method(), req.path()));
                let mut res =
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
                if let Some(l) = location {
                    res.insert_header(("location", l));
                }
                res.finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (addr, seen, handle)
}

/// A delivery of a made-up alert to webhook `webhook_id`, due now.
async fn queue_delivery(pg: &tokio_postgres::Client, webhook_id: i64) -> i64 {
    let alert: i64 = pg
        .query_one(
            "INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence) \
             VALUES ('r', 'negativity', 'warning', 'overall', '', 0.9, 0.5, '{}') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    pg.query_one(
        "INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) \
         VALUES ($1, $2, '{\"kind\":\"negativity\"}') RETURNING id",
        &[&webhook_id, &alert],
    )
    .await
    .unwrap()
    .get(0)
}

/// The delivery's (attempts, last_status, last_error) once it was attempted.
async fn attempted(pg: &tokio_postgres::Client, id: i64) -> (i32, Option<i32>, Option<String>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let row = pg
            .query_one(
                "SELECT attempts, last_status, last_error FROM webhook_deliveries WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        let attempts: i32 = row.get(0);
        if attempts > 0 || std::time::Instant::now() > deadline {
            return (attempts, row.get(1), row.get(2));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens a WebSocket with `request` (a URL or a request with headers).
async fn ws_connect(addr: std::net::SocketAddr, request: impl IntoClientRequest + Unpin) -> Socket {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap()
        .0
}

/// Finding 2: webhooks could target the inside of the network and follow redirects there.
#[actix_rt::test]
async fn webhooks_reach_no_internal_address_and_follow_no_redirect() {
    let (inside, inside_seen, inside_server) = receiver(200, None);
    // By default every internal target is refused when the subscription is made.
    let strict = Server::start(|s| s.webhooks.allow_private_targets = false).await;
    for url in [
        format!("http://127.0.0.1:{}/hook", inside.port()),
        format!("http://localhost:{}/hook", inside.port()),
        format!("http://[::1]:{}/hook", inside.port()),
        "http://10.0.0.8/hook".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://2130706433/".to_string(),
        "http://0.0.0.0:6379/".to_string(),
    ] {
        let res = strict
            .call(
                "POST",
                "/api/v1/webhooks",
                Some(Role::Admin),
                Some(json!({"url": url})),
            )
            .await;
        assert_eq!(
            (res.status, res.code().as_str()),
            (400, "invalid_webhook"),
            "{url}"
        );
    }
    // A subscription made while internal targets were allowed (or a name that resolved
    // elsewhere then) is refused at delivery, on the address actually connected to.
    let pg = strict.env.pg().await;
    let webhook: i64 = pg
        .query_one(
            "INSERT INTO webhooks (url, secret) VALUES ($1, 'sixteen-bytes-at-least') RETURNING id",
            &[&format!("http://localhost:{}/hook", inside.port())],
        )
        .await
        .unwrap()
        .get(0);
    let delivery = queue_delivery(&pg, webhook).await;
    let (_, status, error) = attempted(&pg, delivery).await;
    assert_eq!(
        (status, error.as_deref()),
        (None, Some("target not allowed"))
    );
    assert!(inside_seen.lock().unwrap().is_empty());
    strict.app.shutdown().await;

    // On-premises receivers: allowed when configured, but a redirect is never followed.
    let (redirecting, redirect_seen, redirect_server) = receiver(
        307,
        Some(format!("http://127.0.0.1:{}/stolen", inside.port())),
    );
    let open = Server::start(|s| s.webhooks.allow_private_targets = true).await;
    let created = open
        .call(
            "POST",
            "/api/v1/webhooks",
            Some(Role::Admin),
            Some(json!({"url": format!("http://127.0.0.1:{}/hook", redirecting.port())})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let pg = open.env.pg().await;
    let delivery = queue_delivery(&pg, created.json()["id"].as_i64().unwrap()).await;
    let (_, status, error) = attempted(&pg, delivery).await;
    assert_eq!(status, Some(307));
    assert!(error.unwrap().contains("not followed"));
    assert_eq!(redirect_seen.lock().unwrap().len(), 1);
    assert!(
        inside_seen.lock().unwrap().is_empty(),
        "the redirect was followed"
    );

    // Nothing listens here: the answer says so in generic words, naming no address or port.
    let closed = free_port();
    let created = open
        .call(
            "POST",
            "/api/v1/webhooks",
            Some(Role::Admin),
            Some(json!({"url": format!("http://127.0.0.1:{closed}/x")})),
        )
        .await;
    let delivery = queue_delivery(&pg, created.json()["id"].as_i64().unwrap()).await;
    let (_, _, error) = attempted(&pg, delivery).await;
    assert_eq!(error.as_deref(), Some("could not connect"));
    open.app.shutdown().await;
    redirect_server.stop(false).await;
    inside_server.stop(false).await;
}

/// Finding 3: the API shared the pipeline's pool with no statement timeout.
#[actix_rt::test]
async fn the_api_answers_busy_or_timed_out_and_never_takes_the_pipelines_connections() {
    let s = Server::start(|s| {
        s.database.api_pool_size = 1;
        s.database.api_statement_timeout_ms = 1;
        s.database.api_wait_ms = 1;
    })
    .await;
    // Enough posts that a day-long filtered aggregate takes more than a millisecond.
    s.env
        .pg()
        .await
        .batch_execute(
            "INSERT INTO posts (id, platform, author_id, author_followers, text, created_at, \
                 city, sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model, \
                 stream_id) \
             SELECT 'seed-' || g, 'twitter', 'a', 1, 'text', now() - make_interval(secs => g), \
                 'Lyon', 'negative', -0.5, '{}', 0, 0, 'seed', '0-0' \
             FROM generate_series(1, 50000) g",
        )
        .await
        .unwrap();
    let res = s
        .call(
            "GET",
            "/api/v1/metrics/geo?window=24h&sentiment=negative",
            Some(Role::Analyst),
            None,
        )
        .await;
    assert_eq!(
        (res.status, res.code().as_str()),
        (504, "query_timeout"),
        "{}",
        res.body
    );
    // Meanwhile the pipeline commits through its own connections.
    let redis = s.env.redis().await;
    xadd_event(
        &redis,
        &s.env.stream,
        &post_json("during-api-load", "still flowing"),
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            s.count("SELECT count(*) FROM posts WHERE id = 'during-api-load'")
                .await
                == 1
        })
        .await
    );
    s.app.shutdown().await;

    // One connection that rests 99 times as long as it was held: the next request finds it
    // resting and is told to come back, in the error shape, with Retry-After.
    let s = Server::start(|s| {
        s.database.api_pool_size = 1;
        s.database.api_busy_share = 0.01;
        s.database.api_wait_ms = 1;
    })
    .await;
    let first = s
        .call("GET", "/api/v1/alert-rules", Some(Role::Analyst), None)
        .await;
    assert_eq!(first.status, 200);
    let second = s
        .call("GET", "/api/v1/alert-rules", Some(Role::Analyst), None)
        .await;
    assert_eq!((second.status, second.code().as_str()), (503, "busy"));
    assert_eq!(
        second.headers.get("retry-after").map(String::as_str),
        Some("1")
    );
    s.app.shutdown().await;
}

/// Finding 4: timestamps were unbounded at both entry points.
#[actix_rt::test]
async fn timestamps_far_ahead_or_before_1970_are_refused_and_backfill_is_never_live() {
    let s = Server::start(|_| {}).await;
    let event = |id: &str, at: &str| {
        let mut e: Value = serde_json::from_str(&post_json(id, "a post")).unwrap();
        e["created_at"] = json!(at);
        e
    };
    for at in [
        "2099-01-01T00:00:00Z",
        "-5000-01-01T00:00:00Z",
        "1969-07-20T20:17:00Z",
    ] {
        let res = s
            .call(
                "POST",
                "/api/v1/events",
                Some(Role::Ingest),
                Some(event("t", at)),
            )
            .await;
        assert_eq!(
            (res.status, res.code().as_str()),
            (400, "invalid_event"),
            "{at}"
        );
    }
    // The stream refuses the same events, with the reason in the dead letters.
    let redis = s.env.redis().await;
    xadd_event(
        &redis,
        &s.env.stream,
        &event("future", "2099-01-01T00:00:00Z").to_string(),
    )
    .await;
    // Backfill is stored, but never pushed to live subscribers as a new post.
    let token = {
        let res = raw_request(
            s.app.address(),
            "POST",
            "/api/v1/auth/token",
            &[],
            Some(&json!({"api_key": s.key(Role::Analyst).key}).to_string()),
        )
        .await;
        res.json()["access_token"].as_str().unwrap().to_string()
    };
    let mut ws = ws_connect(
        s.app.address(),
        format!("ws://{}/ws?access_token={token}", s.app.address()),
    )
    .await;
    futures::SinkExt::send(
        &mut ws,
        Message::text(json!({"type": "subscribe", "topics": ["posts"]}).to_string()),
    )
    .await
    .unwrap();
    let old = (chrono::Utc::now() - chrono::Duration::days(400)).to_rfc3339();
    xadd_event(&redis, &s.env.stream, &event("backfill", &old).to_string()).await;
    xadd_event(&redis, &s.env.stream, &post_json("live", "a live post")).await;
    let mut live_ids = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            let m: Value = serde_json::from_str(&text).unwrap();
            if m["type"] == pulse::ws::protocol::MESSAGE_NEW {
                live_ids.push(m["data"]["id"].as_str().unwrap_or("").to_string());
                if live_ids.contains(&"live".to_string()) {
                    break;
                }
            }
        }
    })
    .await;
    // The backfill may be in a later batch than the live post, committed after it: wait until
    // both are stored and acknowledged, then give its message (were it sent) time to arrive.
    let stored = wait_until(Duration::from_secs(30), || async {
        s.count("SELECT count(*) FROM posts WHERE id IN ('backfill', 'live')")
            .await
            == 2
            && s.env.pending(&redis).await == 0
    })
    .await;
    assert!(stored, "both posts are stored");
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            let m: Value = serde_json::from_str(&text).unwrap();
            if m["type"] == pulse::ws::protocol::MESSAGE_NEW {
                live_ids.push(m["data"]["id"].as_str().unwrap_or("").to_string());
            }
        }
    })
    .await;
    assert_eq!(live_ids, vec!["live".to_string()]);
    let dead: fred::types::Value = redis
        .xrange(format!("{}:dead", s.env.stream), "-", "+", None)
        .await
        .unwrap();
    let dead = format!("{dead:?}");
    assert!(
        dead.contains("future") && dead.contains("in the future"),
        "{dead}"
    );
    s.app.shutdown().await;
}

/// Finding 5: refusals for a role that may not were free and each wrote an audit row.
#[actix_rt::test]
async fn forbidden_floods_hit_the_rate_limit_and_write_a_bounded_audit() {
    let s = Server::start(|s| {
        s.limits.rate_limits = true;
        s.limits.per_ip_burst = 20.0;
        s.limits.per_ip_per_sec = 0.5;
    })
    .await;
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..150 {
        let res = s
            .call(
                "POST",
                "/api/v1/alert-rules",
                Some(Role::Analyst),
                Some(json!({"name": "x", "kind": "negativity"})),
            )
            .await;
        *statuses.entry(res.status).or_insert(0) += 1;
    }
    assert!(
        statuses.get(&429).copied().unwrap_or(0) >= 100,
        "{statuses:?}"
    );
    let denied = s
        .count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'")
        .await;
    assert!(denied <= 30, "{denied} audit rows for a flood of 150");
    s.app.shutdown().await;
}

/// Finding 6: revoking a key left its live sessions streaming, and key sessions never ended.
#[actix_rt::test]
async fn live_sessions_end_when_their_key_is_revoked_or_outlives_a_token() {
    let s = Server::start(|s| s.auth.token_ttl_secs = 3).await;
    let connect = |key: String| {
        let addr = s.app.address();
        async move {
            let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
            request
                .headers_mut()
                .insert("x-api-key", key.parse().unwrap());
            ws_connect(addr, request).await
        }
    };
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

/// Finding 7: stream entries were read whole, and dead letters were capped by count only.
#[actix_rt::test]
async fn oversize_entries_are_read_truncated_dead_lettered_with_their_size_and_capped() {
    let s = Server::start(|s| {
        s.ingest.max_entry_bytes = 64 * 1024;
        s.redis.dead_letter_max_bytes = 256 * 1024;
    })
    .await;
    let redis = s.env.redis().await;
    let junk = "j".repeat(2 * 1024 * 1024);
    xadd_event(&redis, &s.env.stream, &post_json("before", "fine")).await;
    for _ in 0..3 {
        let _: String = redis
            .xadd(
                &s.env.stream,
                false,
                None::<()>,
                "*",
                vec![
                    ("event", post_json("big", "x").as_str()),
                    ("junk", junk.as_str()),
                ],
            )
            .await
            .unwrap();
    }
    xadd_event(&redis, &s.env.stream, &post_json("after", "fine")).await;
    let dead_key = format!("{}:dead", s.env.stream);
    assert!(
        wait_until(Duration::from_secs(20), || async {
            let n: i64 = redis.xlen(&dead_key).await.unwrap_or(0);
            n == 3
        })
        .await
    );
    let letters: Vec<(String, std::collections::HashMap<String, String>)> =
        redis.xrange(&dead_key, "-", "+", None).await.unwrap();
    for (_, fields) in &letters {
        assert_eq!(fields["dead_reason_class"], "entry_too_large");
        let size: usize = fields["dead_entry_bytes"].parse().unwrap();
        assert!(size > 2 * 1024 * 1024, "{size}");
        assert!(fields["junk"].len() <= pulse::streams::bounded::PREVIEW_BYTES);
    }
    assert!(
        wait_until(Duration::from_secs(10), || async {
            s.count("SELECT count(*) FROM posts WHERE id IN ('before', 'after')")
                .await
                == 2
        })
        .await
    );
    // Many letters: the monitor trims the oldest until the stream fits its byte cap.
    let small = "s".repeat(30 * 1024);
    for _ in 0..40 {
        let _: String = redis
            .xadd(
                &s.env.stream,
                false,
                None::<()>,
                "*",
                vec![("event", small.as_str())],
            )
            .await
            .unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(30), || async {
            let used: Option<i64> = redis.memory_usage(&dead_key, None).await.unwrap_or(None);
            let n: i64 = redis.xlen(&dead_key).await.unwrap_or(0);
            n > 0 && used.is_some_and(|u| u <= 256 * 1024)
        })
        .await,
        "the dead letters were not brought under their byte cap"
    );
    s.app.shutdown().await;
}

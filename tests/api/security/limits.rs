//! Limits: rate limits that trigger and recover; oversize, deeply nested or compressed bodies
//! held to the same bounds; and no caller starving the others or the pipeline: the API answers
//! busy or timed out rather than take the pipeline's connections, floods of refused requests
//! hit the rate limit and a bounded audit, clients behind a trusted proxy each have their
//! budget, entries of megabytes are dead-lettered truncated, and every history table is
//! bounded.

use super::*;
use common::secured::SecuredServer as Server;
use fred::prelude::*;
use serde_json::Value;

#[actix_rt::test]
async fn rate_limits_trigger_and_recover() {
    let s = Secure::start(|s| {
        address_budget(s, 6.0, 1.0);
        s.limits.per_key_per_sec = 2.0;
        s.limits.per_key_burst = 4.0;
    })
    .await;
    let token = s.token(Role::Analyst).await;

    // A key's burst passes, then 429 with Retry-After. The requests go at once, so the
    // bucket cannot refill between them however slow the machine.
    let calls = (0..8).map(|_| s.call("GET", "/api/v1/posts", Some(&token), None));
    let answers = futures::future::join_all(calls).await;
    let statuses: Vec<u16> = answers.iter().map(|(code, ..)| *code).collect();
    let mut retry_after = None;
    for (code, headers, body) in &answers {
        if *code == 429 {
            assert_eq!(error_code(body), "rate_limited");
            retry_after = headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
    }
    assert!(
        statuses.iter().filter(|&&c| c == 200).count() >= 4,
        "{statuses:?}"
    );
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

    // Guessing keys spends the address's budget: past its burst every guess is 429,
    // unverified. The guesses go at once, as an attacker's would.
    let keys: Vec<String> = (0..12)
        .map(|i| format!("pulse_{:012x}_{}", i, "a".repeat(64)))
        .collect();
    let guesses: Vec<u16> = futures::future::join_all(keys.iter().map(|k| s.exchange(k)))
        .await
        .into_iter()
        .map(|(code, _)| code)
        .collect();
    assert!(
        guesses.contains(&401) && guesses.contains(&429),
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
    let reply = Secure::ask(
        &mut ws,
        r#"{"type":"subscribe","topics":["posts","metrics","alerts"]}"#,
    )
    .await;
    assert!(reply.contains("error"), "{reply}");
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

/// The API shared the pipeline's pool with no statement timeout.
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
        .analyst(
            "GET",
            "/api/v1/metrics/geo?window=24h&sentiment=negative",
            None,
        )
        .await;
    res.assert_error(504, "query_timeout", "");
    // Meanwhile the pipeline commits through its own connections.
    let redis = s.env.redis().await;
    s.env
        .xadd_post(&redis, "during-api-load", "still flowing")
        .await;
    assert!(
        s.count_reaches(
            "SELECT count(*) FROM posts WHERE id = 'during-api-load'",
            1,
            Duration::from_secs(20)
        )
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
    let first = s.analyst("GET", "/api/v1/alert-rules", None).await;
    assert_eq!(first.status, 200);
    let second = s.analyst("GET", "/api/v1/alert-rules", None).await;
    second.assert_error(503, "busy", "");
    assert_eq!(
        second.headers.get("retry-after").map(String::as_str),
        Some("1")
    );
    // An administrator's change has a connection of its own: others' reads keeping the API's
    // connections resting do not keep it (or its audit record) from the database.
    let rule = serde_json::json!({"name": "while busy", "kind": "negativity", "enabled": false});
    let created = s
        .call("POST", "/api/v1/alert-rules", Some(Role::Admin), Some(rule))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let audited = s
        .count_reaches(
            "SELECT count(*) FROM audit_log WHERE action LIKE 'rule%' AND outcome = 'succeeded'",
            1,
            Duration::from_secs(20),
        )
        .await;
    assert!(audited, "the change is audited");
    s.app.shutdown().await;
}

/// Refusals for a role that may not were free and each wrote an audit row.
#[actix_rt::test]
async fn forbidden_floods_hit_the_rate_limit_and_write_a_bounded_audit() {
    let s = Server::start(|s| {
        address_budget(s, 20.0, 0.5);
    })
    .await;
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..150 {
        let res = s
            .analyst(
                "POST",
                "/api/v1/alert-rules",
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

/// Stream entries were read whole, and dead letters were capped by count only.
#[actix_rt::test]
async fn oversize_entries_are_read_truncated_dead_lettered_with_their_size_and_capped() {
    let s = Server::start(|s| {
        s.ingest.max_entry_bytes = 64 * 1024;
        s.redis.dead_letter_max_bytes = 256 * 1024;
    })
    .await;
    let redis = s.env.redis().await;
    let junk = "j".repeat(2 * 1024 * 1024);
    s.env.xadd_post(&redis, "before", "fine").await;
    for _ in 0..3 {
        let fields = vec![("event", post_json("big", "x")), ("junk", junk.clone())];
        xadd_fields(&redis, &s.env.stream, fields).await;
    }
    s.env.xadd_post(&redis, "after", "fine").await;
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
        s.count_reaches(
            "SELECT count(*) FROM posts WHERE id IN ('before', 'after')",
            2,
            Duration::from_secs(10)
        )
        .await
    );
    // Many letters: the monitor trims the oldest until the stream fits its byte cap.
    let small = "s".repeat(30 * 1024);
    for _ in 0..40 {
        xadd_event(&redis, &s.env.stream, &small).await;
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

/// The per-address limit ignored a trusted proxy's forwarded address.
#[actix_rt::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let s = Server::start(|s| {
        address_budget(s, 3.0, 0.001);
        s.http.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let status = |client: &'static str| {
        let addr = s.app.address();
        async move {
            raw_request(
                addr,
                "GET",
                "/api/v1/auth/status",
                &[("X-Forwarded-For", client)],
                None,
            )
            .await
            .status
        }
    };
    for _ in 0..3 {
        assert_eq!(status("203.0.113.7").await, 200);
    }
    assert_eq!(status("203.0.113.7").await, 429);
    assert_eq!(
        status("198.51.100.9").await,
        200,
        "another client behind the proxy"
    );
    // A client cannot pick a fresh address for itself: only the hop our proxy added counts.
    assert_eq!(status("198.51.100.10, 203.0.113.7").await, 429);
    s.app.shutdown().await;
}

/// History tables grew without bound.
#[actix_rt::test]
async fn retention_bounds_every_history_table() {
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    pg.batch_execute(
        "INSERT INTO audit_log (at, actor, action, outcome) VALUES \
             (now() - interval '400 days', 'old', 'x', 'succeeded'), (now(), 'new', 'x', 'succeeded'); \
         INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence, status, resolved_at) VALUES \
             ('old', 'negativity', 'warning', 'overall', '', 1, 1, '{}', 'resolved', now() - interval '100 days'), \
             ('new', 'negativity', 'warning', 'overall', '', 1, 1, '{}', 'resolved', now()); \
         INSERT INTO virality_cascades (post_id, created_at, observed_at, last_activity_at, status, model_name, model_version, params_hash) VALUES \
             ('old', now(), now(), now() - interval '100 days', 'finished', 'm', '1', 'h'), \
             ('new', now(), now(), now(), 'finished', 'm', '1', 'h'); \
         INSERT INTO virality_predictions (post_id, recorded_at, observed_at, age_secs, shares, virality_score, \
             virality_probability, viral, predicted_final_shares, ci_lower, ci_upper, dynamics, \
             structural_virality, velocity, acceleration, params_hash) VALUES \
             ('old', now() - interval '100 days', now(), 1, 1, 1, 0.1, false, 1, 1, 1, 'broad', 0, 0, 0, 'h'), \
             ('new', now(), now(), 1, 1, 1, 0.1, false, 1, 1, 1, 'broad', 0, 0, 0, 'h'); \
         INSERT INTO virality_feedback (post_id, final_shares, updated_at) VALUES \
             ('old', 1, now() - interval '100 days'), ('new', 1, now()); \
         INSERT INTO digest_schedules (id, name, cadence, weekday, at, timezone, channels, enabled) VALUES \
             (-1, 'daily', 'daily', NULL, '08:00', 'UTC', '{1}', false), \
             (-2, 'weekly', 'weekly', 1, '08:00', 'UTC', '{1}', false); \
         INSERT INTO digests (schedule_id, period_from, period_to, manual, content, created_at) VALUES \
             (-1, now() - interval '201 days', now() - interval '200 days', false, '\"old\"', now() - interval '200 days'), \
             (-1, now() - interval '101 days', now() - interval '100 days', true, '\"old\"', now() - interval '100 days'), \
             (-1, now() - interval '2 days', now() - interval '1 day', false, '\"new\"', now()), \
             (-2, now() - interval '207 days', now() - interval '200 days', false, '\"kept\"', now() - interval '200 days');",
    )
    .await
    .unwrap();
    let pool = pulse::db::pool(&app.env.database_url, 2).unwrap();
    let policy = pulse::actors::retention::RetentionPolicy::of(&Settings::default().store);
    pulse::actors::retention::sweep(&pool, &policy)
        .await
        .unwrap();
    for table in [
        "audit_log",
        "alerts",
        "virality_cascades",
        "virality_predictions",
        "virality_feedback",
    ] {
        let column = match table {
            "audit_log" => "actor",
            "alerts" => "rule_name",
            _ => "post_id",
        };
        let left: Vec<String> = pg
            .column(&format!("SELECT {column} FROM {table}"), &[])
            .await;
        assert_eq!(left, vec!["new".to_string()], "{table}");
    }
    // A weekly digest a process could still catch up on says its period was made.
    let digests: Vec<String> = pg
        .column("SELECT content #>> '{}' FROM digests ORDER BY 1", &[])
        .await;
    assert_eq!(digests, ["kept", "new"]);
    app.shutdown().await;
}

/// A fresh connection to `addr`, and the status of `/health` asked on it (0: no answer).
async fn served(addr: std::net::SocketAddr) -> (tokio::net::TcpStream, u16) {
    asked(addr, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await
}

/// Whether `/health` is answered 200 on a fresh connection to `addr` within 30 s.
async fn served_again(addr: std::net::SocketAddr) -> bool {
    wait_until(Duration::from_secs(30), || async {
        served(addr).await.1 == 200
    })
    .await
}

/// A fresh connection to `addr`, and the status of `request` sent on it (0: no answer).
async fn asked(addr: std::net::SocketAddr, request: &str) -> (tokio::net::TcpStream, u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request.as_bytes()).await;
    let mut head = [0u8; 12];
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut head)).await;
    let status = match read {
        Ok(Ok(_)) => std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    };
    (stream, status)
}

/// What `stream` holds until the server closes it; panics unless it does within 30 s.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, what: &str) -> String {
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::AsyncReadExt::read_to_end(stream, &mut rest),
    )
    .await;
    assert!(matches!(closed, Ok(Ok(_))), "{what} is not closed");
    String::from_utf8_lossy(&rest).into_owned()
}

/// A client could hold connections without end: actix times out only a connection's first
/// request head, so one byte of the next request now and then kept each open, and nothing
/// counted how many one client held. A network holds at most
/// `http.max_connections_per_network`; the next is answered 429 and closed, and a place given
/// back is taken again.
#[actix_rt::test]
async fn a_network_holds_at_most_its_connections_and_gets_them_back() {
    const CAP: usize = 4;
    let app = spawn_app_tuned(|s| s.http.max_connections_per_network = CAP).await;
    let addr = app.address();
    let mut held = Vec::new();
    let mut refused = None;
    // The harness may keep a connection of its own open; whatever it holds counts too.
    for _ in 0..CAP + 4 {
        let (stream, status) = served(addr).await;
        if status != 200 {
            refused = Some((stream, status));
            break;
        }
        held.push(stream);
    }
    let (mut refused, status) = refused.expect("a connection past the cap is refused");
    assert_eq!(status, 429, "answered, in the API's shape");
    assert!(
        held.len() <= CAP,
        "{} held past the cap of {CAP}",
        held.len()
    );
    let answer = read_until_closed(&mut refused, "the refused connection").await;
    assert!(answer.contains("\"scope\":\"connections\""), "{answer}");
    // A CORS preflight, which the guard answers too, is refused alike rather than kept open.
    let (mut preflight, status) = asked(
        addr,
        "OPTIONS /api/v1/posts HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://elsewhere.example\r\n\
         Access-Control-Request-Method: GET\r\n\r\n",
    )
    .await;
    assert_eq!(status, 429, "a preflight past the cap");
    read_until_closed(&mut preflight, "the preflight's connection").await;
    drop(held);
    assert!(
        served_again(addr).await,
        "places given back are taken again"
    );
    assert_metric_counted(&app.app, "pulse_http_connections_refused_total").await;
    app.shutdown().await;
}

/// Every connection past the cap waited seconds for its first request to be told 429, holding a
/// descriptor meanwhile: a client opening connections faster than that held thousands. Past as
/// many waiting at once as the cap, the rest are shut as they are accepted.
#[actix_rt::test]
async fn past_the_cap_twice_a_networks_connections_are_shut_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CAP: usize = 4;
    // As many again wait for their 429.
    const NOTICES: usize = CAP;
    const PAST: usize = 6;
    let app = spawn_app_tuned(|s| s.http.max_connections_per_network = CAP).await;
    let addr = app.address();
    // All open before any asks, so each holds its place, notice or nothing meanwhile.
    let mut streams = Vec::new();
    for _ in 0..CAP + NOTICES + PAST {
        streams.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut statuses = Vec::new();
    for stream in &mut streams {
        let _ = stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await;
        let mut head = [0u8; 12];
        let read =
            tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut head)).await;
        statuses.push(match read {
            Ok(Ok(_)) => std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap(),
            Ok(Err(_)) => 0u16,
            Err(_) => panic!("a connection neither answered nor shut: {statuses:?}"),
        });
    }
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    assert!(count(200) <= CAP, "{statuses:?}");
    assert_eq!(count(429), NOTICES, "{statuses:?}");
    assert!(count(0) >= PAST, "{statuses:?}");
    assert_eq!(
        count(200) + count(429) + count(0),
        statuses.len(),
        "{statuses:?}"
    );
    drop(streams);
    assert!(
        served_again(addr).await,
        "the network is served again once its connections are gone"
    );
    app.shutdown().await;
}

/// One caller's reads cannot take the API's few connections from everyone: each use of a
/// connection (and the rest after it) is charged to its caller, and a caller past its budget
/// is told to wait (429, scope `database`) while another caller is answered.
#[actix_rt::test]
async fn a_caller_past_its_share_of_the_database_waits_and_others_are_answered() {
    let s = Server::start(|s| database_share(s, 0.000_1, 0.05)).await;
    let mut refused = None;
    for _ in 0..2_000 {
        let res = s.analyst("GET", "/api/v1/alert-rules", None).await;
        if res.status == 429 {
            refused = Some(res);
            break;
        }
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let refused = refused.expect("the analyst's connection time runs out");
    refused.assert_error(429, "rate_limited", "past its share");
    assert_eq!(refused.json()["error"]["details"]["scope"], "database");
    assert!(refused.headers.contains_key("retry-after"));
    let other = s
        .call("GET", "/api/v1/alert-rules", Some(Role::Editor), None)
        .await;
    assert_eq!(other.status, 200, "{}", other.body);
    s.app.shutdown().await;
}

//! Budgets per caller: what one client, often without credentials, can make a running server
//! hold or do. Each test attacks a real server the way an outsider would (slow bodies, stream
//! entries of many fields, made-up keys, gzip members, direct analysis, sockets that stop
//! reading, floods of events, hostile import files, inputs that answered 500, many addresses
//! of one network, one key creating rows) and checks the budget holds. Made-up labels' rollup
//! keys are in [`super::rollup_keys`].

use crate::common;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::secured::SecuredServer;
use common::*;
use fred::prelude::*;
use pulse::auth::Role;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A connection to `server` from `source` with a small receive buffer (so a client that does
/// not read fills it soon).
async fn connect_from(source: &str, server: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// The status of the answer on `stream`, waiting up to a minute (0: closed unanswered).
async fn status_of(stream: &mut tokio::net::TcpStream) -> u16 {
    let mut buf = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await;
    match read {
        Ok(Ok(n)) if n > 0 => String::from_utf8_lossy(&buf[..n])
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// The bytes request bodies hold, as the metrics text shows the gauge.
const BODY_BYTES: &str = "pulse_http_body_bytes ";

/// The value of the sample `series` (its name and labels as the text shows them) in `metrics`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
}

/// `GET /metrics` sent from `source`.
async fn metrics_from(source: &str, server: SocketAddr) -> String {
    let mut stream = connect_from(source, server).await;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await;
    String::from_utf8_lossy(&raw).into_owned()
}

/// `POST /api/v1/events` of `n` posts (`prefix-0` on) with `s`'s ingest key.
async fn ingest(s: &SecuredServer, prefix: &str, n: usize) -> RawResponse {
    let events: Vec<Value> = (0..n)
        .map(|i| serde_json::from_str(&post_json(&format!("{prefix}-{i}"), "hi")).unwrap())
        .collect();
    s.call(
        "POST",
        "/api/v1/events",
        Some(Role::Ingest),
        Some(Value::Array(events)),
    )
    .await
}

/// The head of a token request whose body promises `length` bytes and sends only its opening.
fn unfinished_token_request(addr: impl std::fmt::Display, length: usize) -> String {
    format!(
        "POST /api/v1/auth/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n{{\"api_key\":"
    )
}

/// Bodies that never finish were held whole, from what `Content-Length` promised,
/// with no timeout, and a client could start as many as its request budget allowed.
#[actix_rt::test]
async fn slow_bodies_are_cut_off_and_few_per_client() {
    let s = SecuredServer::start(|s| {
        s.limits.body_timeout_secs = 1;
        s.limits.bodies_per_client = 2;
    })
    .await;
    let addr = s.app.address();
    // A body anyone may send is small: a megabyte is refused from its length alone.
    let huge = unfinished_token_request(addr, 1_048_576);
    let mut stream = connect_from("127.0.0.1", addr).await;
    stream.write_all(huge.as_bytes()).await.unwrap();
    assert_eq!(status_of(&mut stream).await, 413);
    let head = unfinished_token_request(addr, 10_000);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from("127.0.0.1", addr).await;
        stream.write_all(head.as_bytes()).await.unwrap();
        held.push(stream);
    }
    // Both bodies have started (their requests were read) before the third comes.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            sample(&metrics_text(&s.app).await, BODY_BYTES).is_some_and(|v| v != 0.0)
        })
        .await,
        "the two bodies were never charged"
    );
    let mut third = connect_from("127.0.0.1", addr).await;
    third.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(status_of(&mut third).await, 429, "a third body at once");
    for stream in &mut held {
        assert_eq!(status_of(stream).await, 408, "a body that never finishes");
    }
    // The connection of a timed-out body is closed: nothing of it is read as a request.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(30), held[0].read_to_end(&mut rest)).await;
    assert!(end.is_ok(), "the connection stays open");
}

/// The length a body declared was charged whole before a byte of it came: four keys
/// declaring the largest bodies and sending nothing held the process's whole budget until
/// the body timeout, and every other caller's body was refused 503 meanwhile.
#[actix_rt::test]
async fn promised_lengths_hold_no_memory_they_were_not_sent() {
    let s = SecuredServer::start(|s| {
        s.limits.body_timeout_secs = 30;
        s.limits.body_memory_per_client_bytes = 1024 * 1024;
        s.limits.body_memory_bytes = 2_000_000;
    })
    .await;
    let addr = s.app.address();
    let mut held = Vec::new();
    for i in 0..4 {
        let key = s
            .app
            .create_key(Role::Ingest, &format!("promiser-{i}"))
            .await;
        let head = format!(
            "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nx-api-key: {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n[",
            key.key
        );
        let mut stream = connect_from("127.0.0.1", addr).await;
        stream.write_all(head.as_bytes()).await.unwrap();
        held.push(stream);
    }
    // Every promised body has started before the honest caller comes.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            sample(&metrics_text(&s.app).await, BODY_BYTES).is_some_and(|v| v >= 4.0 * 16_000.0)
        })
        .await,
        "the four bodies were never charged"
    );
    let honest = ingest(&s, "honest", 3).await;
    assert_eq!(honest.status, 202, "{}", honest.body);
    let charged = sample(&metrics_text(&s.app).await, BODY_BYTES).unwrap_or(f64::MAX);
    assert!(
        charged < 1_000_000.0,
        "{charged} bytes held for bodies that sent one byte each"
    );
    drop(held);
}

/// Networks are cheap (an IPv6 allocation holds thousands): bodies sent slowly without a key
/// from enough of them held the whole of `limits.body_memory_bytes`, and every key holder's
/// body was refused 503 until they timed out.
#[actix_rt::test]
async fn keyless_bodies_from_many_networks_leave_room_for_key_holders() {
    let s = SecuredServer::start(|s| {
        s.limits.body_timeout_secs = 30;
        s.limits.body_memory_bytes = 200_000;
    })
    .await;
    let addr = s.app.address();
    let head = unfinished_token_request(addr, 10_000);
    // Twenty networks' bodies of 10,000 bytes would fill the 200,000 bytes.
    let mut held = Vec::new();
    for network in 1..=20 {
        let mut stream = connect_from(&format!("127.0.{network}.1"), addr).await;
        stream.write_all(head.as_bytes()).await.unwrap();
        held.push(stream);
    }
    let refused = "pulse_http_bodies_refused_total{reason=\"public_memory\"}";
    assert!(
        wait_until(Duration::from_secs(30), || async {
            sample(&metrics_text(&s.app).await, refused).is_some_and(|v| v >= 10.0)
        })
        .await,
        "bodies without a key were not held to their share: {}",
        metrics_text(&s.app).await
    );
    let charged = sample(&metrics_text(&s.app).await, BODY_BYTES).unwrap_or(f64::MAX);
    assert!(
        charged <= 50_000.0,
        "{charged} bytes held for bodies without a key"
    );
    let honest = ingest(&s, "honest", 3).await;
    assert_eq!(honest.status, 202, "{}", honest.body);
    // The refused bodies were answered at once; the charged ones are still waiting.
    let statuses = futures::future::join_all(held.iter_mut().map(|stream| async {
        tokio::time::timeout(Duration::from_secs(5), status_of(stream))
            .await
            .unwrap_or(0)
    }))
    .await;
    let busy = statuses.iter().filter(|&&status| status == 503).count();
    assert!(
        busy >= 10,
        "{busy} refused bodies answered 503: {statuses:?}"
    );
}

/// The size bound cut each value but kept every field, and an idle reader read its
/// first entry whole: 500,000 tiny fields cost Pulse 68 times their bytes.
#[actix_rt::test]
async fn stream_entries_with_many_fields_are_cut_where_they_are_read() {
    let app = spawn_app().await;
    let redis = app.redis().await;
    let stream = app.env.stream.clone();
    // Under the size limit (about 160 KB) but 20,001 fields, appended while the stream is idle.
    let mut fields: Vec<(String, String)> = vec![("event".into(), "{}".into())];
    fields.extend((0..20_000).map(|i| (format!("f{i}"), "x".to_string())));
    let _: String = redis.xadd(&stream, false, None, "*", fields).await.unwrap();
    app.xadd(&post_json(
        "after-many-fields",
        "A post after the wide entry",
    ))
    .await;
    assert!(app.wait_for_posts(1, Duration::from_secs(60)).await);
    let dead = format!("{stream}:dead");
    assert!(
        wait_until(Duration::from_secs(60), || async {
            redis.xlen::<i64, _>(&dead).await.unwrap_or(0) >= 1
        })
        .await
    );
    let letters: Vec<(String, Vec<(String, String)>)> =
        redis.xrange(&dead, "-", "+", None).await.unwrap();
    let (_, letter) = &letters[0];
    let field = |name: &str| {
        letter
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("dead_reason_class"), "entry_too_large");
    assert_eq!(field("dead_entry_fields"), "20001");
    let kept = letter
        .iter()
        .filter(|(k, _)| !k.starts_with("dead_"))
        .count();
    assert!(kept <= 4, "the letter keeps {kept} of the entry's fields");
}

/// Every made-up key cost an Argon2 check, even when the answer was 429.
#[actix_rt::test]
async fn made_up_keys_are_refused_before_any_hashing() {
    let s = SecuredServer::start(|s| {
        address_budget(s, 3.0, 0.01);
    })
    .await;
    // Read from another network than the guesses, so reading spends none of their budget.
    let verifications = || async {
        let metrics = metrics_from("127.0.7.1", s.app.address()).await;
        summed(&metrics, "pulse_auth_key_verifications_total")
    };
    let before = verifications().await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        let key = format!("pulse_{:012x}_{:064x}", i, i * 7919);
        statuses.push(s.get_with_key("/api/v1/posts", &key).await.status);
    }
    let checked = verifications().await - before;
    assert!(
        checked <= 3.0,
        "{checked} hashes for 20 guesses: {statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 17,
        "{statuses:?}"
    );

    // The same wrong key again is refused without another check.
    let t = SecuredServer::start(|_| {}).await;
    // The real key with its last character changed (to one it does not already end in).
    let real = t.key(Role::Analyst).key.clone();
    let last = if real.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &real[..real.len() - 1]);
    assert_ne!(wrong, real);
    for _ in 0..5 {
        let res = t.get_with_key("/api/v1/posts", &wrong).await;
        assert_eq!(res.status, 401);
    }
    let text = metrics_text(&t.app).await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("pulse_auth_remembered_failures_total") && l.ends_with(" 4")),
        "{text}"
    );
}

/// A megabyte of empty gzip members took half a second of an HTTP worker each.
#[actix_rt::test]
async fn gzip_bodies_of_many_members_are_refused_unread() {
    use std::io::Write;
    let s = SecuredServer::start(|_| {}).await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(b"").unwrap();
    let member = encoder.finish().unwrap();
    let body: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 100)
        .collect();
    let res = reqwest::Client::new()
        .post(s.url("/api/v1/auth/token"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_error_says(&body, "invalid_body", "gzip members");
}

/// Direct analysis shared the pipeline's analyzer without a budget.
#[actix_rt::test]
async fn direct_analysis_takes_only_its_share() {
    let s = SecuredServer::start(|s| {
        // A share this small makes each chunk's rest far longer than the wait.
        s.analyzer.api_share = 0.001;
        s.analyzer.api_wait_ms = 200;
    })
    .await;
    // One chunk: answered at once; the rest it owes is served by whoever comes next.
    let texts: Vec<String> = (0..16)
        .map(|i| format!("text {i} ") + &"the app keeps crashing ".repeat(200))
        .collect();
    let first = s
        .analyst("POST", "/api/v1/analyze", Some(json!({ "texts": texts })))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["analyses"].as_array().unwrap().len(), 16);
    let second = s
        .analyst("POST", "/api/v1/analyze", Some(json!({"texts": ["hello"]})))
        .await;
    second.assert_error(503, "busy", "");
    assert_eq!(second.json()["error"]["details"]["reason"], "analyzer");
    assert!(second.headers.contains_key("retry-after"));
}

/// A session whose client stopped reading held its queue (a megabyte) forever.
#[actix_rt::test]
async fn sockets_that_stop_reading_are_closed_and_capped_per_client() {
    let s = SecuredServer::start(|s| {
        stalled_sockets_shut(s, 1);
        s.ws.max_sessions_per_client = 2;
    })
    .await;
    let addr = s.app.address();
    let token = s.token(Role::Analyst).await;
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from("127.0.0.1", addr).await;
        stream.write_all(handshake.as_bytes()).await.unwrap();
        assert_eq!(status_of(&mut stream).await, 101);
        // A masked text frame subscribing to every post; then the client never reads again.
        let payload = br#"{"type":"subscribe","topics":["posts"]}"#;
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        stream.write_all(&frame).await.unwrap();
        sockets.push(stream);
    }
    let mut third = connect_from("127.0.0.1", addr).await;
    third.write_all(handshake.as_bytes()).await.unwrap();
    assert_eq!(
        status_of(&mut third).await,
        429,
        "a third session of one key"
    );
    assert!(
        wait_until(Duration::from_secs(30), || async {
            s.app.ws_sessions() == 2
        })
        .await
    );

    // Posts of 15 KB each until the sessions' sockets are full and the server gives up on them.
    let redis = s.env.redis().await;
    let text = "the new watch stopped charging overnight ".repeat(380);
    let mut sent = 0;
    let app = &s.app;
    let closed = wait_until(Duration::from_secs(120), || {
        let (redis, stream, text) = (&redis, &s.env.stream, &text);
        sent += 1;
        let batch = sent;
        async move {
            for i in 0..50 {
                xadd_event(redis, stream, &post_json(&format!("big-{batch}-{i}"), text)).await;
            }
            app.ws_sessions() == 0
        }
    })
    .await;
    assert!(
        closed,
        "sessions whose client stopped reading were never closed"
    );
    assert_metric_counted(&s.app, "pulse_ws_sessions_stalled_total").await;
}

/// Nothing held back `POST /api/v1/events`: two clients grew the backlog by 10,000
/// entries a second.
#[actix_rt::test]
async fn the_http_intake_holds_each_key_to_its_events_and_the_group_to_its_backlog() {
    let s = SecuredServer::start(|s| {
        key_event_budget(s, 20.0, 1.0);
        s.ingest.max_backlog = 100;
    })
    .await;
    let first = ingest(&s, "a", 15).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let over = ingest(&s, "b", 10).await;
    over.assert_error(429, "rate_limited", "");
    assert_eq!(over.json()["error"]["details"]["scope"], "events");
    assert!(over.headers.contains_key("retry-after"));

    // A backlog past the limit: the group has thousands of entries to read.
    let t = SecuredServer::start(|s| s.ingest.max_backlog = 100).await;
    let redis = t.env.redis().await;
    let refused = wait_until(Duration::from_secs(60), || async {
        xadd_posts(&redis, &t.env.stream, &unique("burst"), 0..5_000).await;
        let res = ingest(&t, "c", 1).await;
        res.status == 503 && res.json()["error"]["details"]["reason"] == "backlog"
    })
    .await;
    assert!(refused, "the intake never pushed back");
}

/// The backlog was bounded in entries alone, and an entry may be 64 KiB or a hundred bytes:
/// while PostgreSQL is away, 50,000 large entries held gigabytes of Redis's memory before the
/// intake said no. The bytes the stream holds bound it too.
#[actix_rt::test]
async fn the_intake_refuses_once_the_stream_holds_its_bytes() {
    let s = SecuredServer::start(|s| {
        backlog_limits(s, 0, 0.0, 0.0);
        s.ingest.max_backlog_bytes = 1024 * 1024;
    })
    .await;
    let redis = s.env.redis().await;
    let text = "a long complaint about the late train ".repeat(400);
    let prefix = unique("large");
    let appended = std::sync::atomic::AtomicUsize::new(0);
    let refused = wait_until(Duration::from_secs(60), || async {
        let pipeline = redis.pipeline();
        for _ in 0..50 {
            let n = appended.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let json = post_json(&format!("{prefix}-{n}"), &text);
            let _: () = pipeline
                .xadd(&s.env.stream, false, None::<()>, "*", vec![("event", json)])
                .await
                .unwrap();
        }
        let _: Vec<fred::types::Value> = pipeline.all().await.unwrap();
        let res = ingest(&s, &unique("small"), 1).await;
        res.status == 503 && res.json()["error"]["details"]["reason"] == "backlog_bytes"
    })
    .await;
    assert!(refused, "the intake never counted the stream's bytes");
    let pipeline = s
        .call("GET", "/api/v1/pipeline", Some(Role::Admin), None)
        .await
        .json();
    let bytes = pipeline["consumer_group"]["stream_bytes"].as_i64();
    assert!(bytes.is_some_and(|b| b > 0), "{pipeline}");
}

/// The stream keeps what the group acknowledged where `redis.trim_acknowledged` is off (other
/// groups read it): its whole memory counted as backlog, the intake would refuse for good
/// once history filled the bound, with nothing left to drain.
#[actix_rt::test]
async fn acknowledged_history_is_not_counted_as_backlog_bytes() {
    let s = SecuredServer::start(|s| {
        s.redis.trim_acknowledged = false;
        s.ingest.max_backlog_bytes = 1024 * 1024;
    })
    .await;
    let redis = s.env.redis().await;
    let text = "a long complaint about the late train ".repeat(400);
    let prefix = unique("history");
    let events: Vec<Value> = (0..100)
        .map(|i| serde_json::from_str(&post_json(&format!("{prefix}-{i}"), &text)).unwrap())
        .collect();
    crate::deletions::xadd_all(&redis, &s.env.stream, &events).await;
    let stored = format!("SELECT count(*) FROM posts WHERE id LIKE '{prefix}-%'");
    assert!(s.count_reaches(&stored, 100, Duration::from_secs(60)).await);
    let admitted = wait_until(Duration::from_secs(30), || async {
        ingest(&s, &unique("after"), 1).await.status == 202
    })
    .await;
    let last = ingest(&s, &unique("after"), 1).await;
    assert!(admitted, "{}", last.body);
    let length: i64 = redis.xlen(&s.env.stream).await.unwrap();
    assert!(length >= 100, "the history was trimmed: {length} entries");
}

/// A 16 MiB JSON line was read as two, and the event after its padding accepted;
/// one quoted CSV field of 300 MB was held whole.
#[actix_rt::test]
async fn import_refuses_an_overlong_record_whole() {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(unique("pulse-hostile-import"));
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("padded.jsonl");
    let padded = format!(
        "{}{}\n{}\n",
        " ".repeat(2 << 20),
        post_json("hidden", "after the padding"),
        post_json("seen", "a good line")
    );
    std::fs::write(&jsonl, padded).unwrap();
    let csv = dir.join("huge.csv");
    std::fs::write(
        &csv,
        format!(
            "id,text,created_at\nhidden,\"{}\",1700000000\nseen-csv,a good line,1700000000\n",
            "x".repeat(2 << 20)
        ),
    )
    .unwrap();
    for (file, seen) in [(jsonl, "seen"), (csv, "seen-csv")] {
        let summary = pulse::sources::import::run(
            &env.settings(),
            pulse::sources::import::ImportArgs {
                file: file.clone(),
                format: None,
                map: String::new(),
                platform: "other".into(),
                restart: true,
                complete: false,
                max_backlog: 0,
                max_backlog_secs: 0.0,
                quiet: true,
            },
        )
        .await
        .unwrap();
        assert_eq!(summary.accepted, 1, "{summary:?}");
        assert_eq!(summary.refused_by_reason.get("record_too_long"), Some(&1));
        let entries: Vec<(String, Vec<(String, String)>)> = env
            .redis()
            .await
            .xrange(&env.stream, "-", "+", None)
            .await
            .unwrap();
        let ids: Vec<String> = entries
            .iter()
            .filter_map(|(_, f)| f.iter().find(|(k, _)| k == "event"))
            .filter_map(|(_, e)| serde_json::from_str::<Value>(e).ok())
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect();
        assert!(ids.contains(&seen.to_string()), "{ids:?}");
        assert!(!ids.contains(&"hidden".to_string()), "{ids:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three inputs answered 500.
#[actix_rt::test]
async fn inputs_the_database_cannot_hold_are_bad_requests() {
    let s = SecuredServer::start(|_| {}).await;
    // A time a hundred thousand years ago: a time the server's clock can hold, PostgreSQL not.
    let cursor = pulse::models::hex::hex(b"-3000000000000000000|x");
    for (method, path, role) in [
        (
            "GET",
            format!("/api/v1/posts?cursor={cursor}"),
            Role::Analyst,
        ),
        ("DELETE", "/api/v1/admin/keys/%00".to_string(), Role::Admin),
        (
            "GET",
            "/api/v1/admin/audit?actor=%00".to_string(),
            Role::Admin,
        ),
        (
            "GET",
            "/api/v1/admin/audit?action=%00".to_string(),
            Role::Admin,
        ),
        (
            "GET",
            "/api/v1/admin/audit?outcome=%00".to_string(),
            Role::Admin,
        ),
    ] {
        let res = s.call(method, &path, Some(role), None).await;
        assert_eq!(res.status, 400, "{method} {path}: {}", res.body);
    }
}

/// An open server's callers had the key budget of their address: a host with a /64 had as many
/// budgets as addresses.
#[actix_rt::test]
async fn on_an_open_server_the_addresses_of_one_network_share_the_key_budget() {
    let app = spawn_app_tuned(|s| {
        s.limits.rate_limits = true;
        s.limits.per_key_burst = 5.0;
        s.limits.per_key_per_sec = 0.01;
    })
    .await;
    five_of_one_networks_twenty_addresses_are_served(app.address(), "/api/v1/topics").await;
    app.shutdown().await;
}

/// The budgets were per address, and a host has a whole /8 (or /64) of them.
#[actix_rt::test]
async fn the_addresses_of_one_network_share_its_budget() {
    let s = SecuredServer::start(|s| {
        network_budget(s, 5.0, 0.01);
        s.limits.per_ip_burst = 20.0;
    })
    .await;
    five_of_one_networks_twenty_addresses_are_served(s.app.address(), "/api/v1/auth/status").await;
}

/// `GET path` once from each of twenty addresses of 127.0.0.0/24, under a budget of five
/// requests a network: five are served and fifteen refused, and another network is served.
async fn five_of_one_networks_twenty_addresses_are_served(server: SocketAddr, path: &str) {
    let mut statuses = Vec::new();
    for i in 2..22 {
        statuses.push(get_from(&format!("127.0.0.{i}"), server, path).await);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(
        get_from("127.0.9.2", server, path).await,
        200,
        "another network has its own"
    );
}

/// The status of `GET path` sent to `server` from the address `source`.
async fn get_from(source: &str, server: SocketAddr, path: &str) -> u16 {
    let mut stream = connect_from(source, server).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    status_of(&mut stream).await
}

/// One editor's key could create every topic, saved search and digest schedule a deployment
/// holds, and no other editor could create one after it. Each key holds a share; an
/// administrator's rows count only towards the deployment's cap.
#[actix_rt::test]
async fn one_key_cannot_take_every_topic_saved_search_or_schedule() {
    let s = SecuredServer::start(|s| {
        s.topics.max_topics_per_key = 2;
        s.topics.max_topics = 4;
    })
    .await;
    let pg = s.env.pg().await;
    let other = pulse::auth::keys::create(&pg, Role::Editor, "other", None, "test")
        .await
        .unwrap();
    let editor = s.key(Role::Editor);
    let at = s.address();
    let refused_as = |answer: RawResponse, why: &str| {
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (409, "limit_reached"),
            "{}",
            answer.body
        );
        assert!(
            answer.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(why),
            "{}",
            answer.body
        );
    };
    let topic = |n: u32| json!({"name": format!("t{n}"), "query": "phone"});

    for n in 0..2 {
        assert_eq!(
            post_as(at, &editor.key, "/api/v1/topics", topic(n))
                .await
                .status,
            201
        );
    }
    refused_as(
        post_as(at, &editor.key, "/api/v1/topics", topic(2)).await,
        "your key holds 2 topics",
    );
    assert_eq!(
        post_as(at, &other.key, "/api/v1/topics", topic(3))
            .await
            .status,
        201
    );
    let admin = &s.key(Role::Admin).key;
    assert_eq!(
        post_as(at, admin, "/api/v1/topics", topic(4)).await.status,
        201,
        "an administrator is capped by the total only"
    );
    refused_as(
        post_as(at, &other.key, "/api/v1/topics", topic(5)).await,
        "4 topics exist",
    );

    // The fixed caps: rows the editor's key created fill its share, and the other key's stays.
    let mine = format!("key:{}", editor.info.id);
    let per_key = pulse::http::api::saved_searches::MAX_SAVED_SEARCHES_PER_KEY as i32;
    pg.execute(
        "INSERT INTO saved_searches (name, query, filters, created_by) \
         SELECT 'bulk ' || g, 'phone', '{}', $1 FROM generate_series(1, $2) g",
        &[&mine, &per_key],
    )
    .await
    .unwrap();
    let search = json!({"name": "mine", "query": "phone"});
    refused_as(
        post_as(at, &editor.key, "/api/v1/saved-searches", search.clone()).await,
        "your key holds",
    );
    assert_eq!(
        post_as(at, &other.key, "/api/v1/saved-searches", search)
            .await
            .status,
        201
    );

    let channel = s
        .call(
            "POST",
            "/api/v1/webhooks",
            Some(Role::Admin),
            Some(json!({"kind": "slack", "url": "http://127.0.0.1:9/x"})),
        )
        .await;
    assert_eq!(channel.status, 201, "{}", channel.body);
    let channel = channel.json()["id"].as_i64().unwrap();
    let per_key = pulse::http::api::digests::schedules::MAX_SCHEDULES_PER_KEY as i32;
    pg.execute(
        "INSERT INTO digest_schedules (name, cadence, at, timezone, channels, created_by) \
         SELECT 'bulk ' || g, 'daily', '08:00', 'UTC', ARRAY[$1::int8], $2 FROM generate_series(1, $3) g",
        &[&channel, &mine, &per_key],
    )
    .await
    .unwrap();
    let schedule = json!({"name": "Daily", "scope": "all", "cadence": "daily", "at": "08:00",
        "timezone": "UTC", "channels": [channel]});
    refused_as(
        post_as(
            at,
            &editor.key,
            "/api/v1/digests/schedules",
            schedule.clone(),
        )
        .await,
        "your key holds",
    );
    assert_eq!(
        post_as(at, &other.key, "/api/v1/digests/schedules", schedule)
            .await
            .status,
        201
    );
    s.app.shutdown().await;
}

/// `POST path` of `body` (JSON) with `key` presented directly.
async fn post_as(server: SocketAddr, key: &str, path: &str, body: Value) -> RawResponse {
    let headers = [("x-api-key", key), ("content-type", "application/json")];
    raw_request(server, "POST", path, &headers, Some(&body.to_string())).await
}

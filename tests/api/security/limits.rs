//! Limits: rate limits that trigger and recover, and oversize, deeply nested or
//! compressed bodies held to the same bounds.

use super::*;

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

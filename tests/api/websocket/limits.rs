//! What a WebSocket session may not do, and what the server does then: bad client messages,
//! frames over the limit by their declared length, text that is not UTF-8, sessions past the
//! cap, slow subscribers that stop reading, and clients that never answer pings.

use super::*;

#[actix_rt::test]
async fn bad_client_messages_get_errors_and_an_oversize_frame_closes_the_socket() {
    let app = spawn_app_tuned(|s| s.ws.max_topics_per_session = 2).await;
    let mut client = WsClient::connect(app.address()).await;

    let cases = [
        ("this is not json", "invalid_json"),
        (r#"{"no_type": true}"#, "invalid_message"),
        (r#"{"type": "dance"}"#, "unknown_type"),
        (
            r#"{"type": "subscribe", "topics": ["gossip"]}"#,
            "unknown_topic",
        ),
        (
            r#"{"type": "subscribe", "topics": ["posts"], "filter": {"platform": "myspace"}}"#,
            "invalid_filter",
        ),
        (
            r#"{"type": "subscribe", "topics": ["posts"], "filter": {"sentiment": "meh"}}"#,
            "invalid_filter",
        ),
        (
            r#"{"type": "subscribe", "topics": ["posts"], "filter": {"mood": "x"}}"#,
            "invalid_message",
        ),
        (
            r#"{"type": "subscribe", "topics": ["posts", "metrics", "alerts"]}"#,
            "too_many_topics",
        ),
    ];
    for (text, code) in cases {
        client.send_text(text).await;
        let reply = client.next().await;
        assert_eq!(reply["type"], "error", "{text} -> {reply}");
        assert_eq!(reply["error"]["code"], code, "{text} -> {reply}");
        assert!(reply["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    client
        .ws
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(client.next().await["error"]["code"], "unsupported_frame");

    // Still open and usable.
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await, json!({"type": "pong"}));
    let ack = client
        .subscribe(json!({"type": "subscribe", "topics": ["posts", "metrics"]}))
        .await;
    assert_eq!(ack["topics"], json!(["posts", "metrics"]));

    // A frame over the limit is abuse: the server closes with 1009.
    let oversize = "x".repeat(pulse::ws::DEFAULT_MAX_FRAME_BYTES + 1);
    client.send_text(&oversize).await;
    match client.next_frame().await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert!(wait_until(WAIT, || async { app.ws_sessions() == 0 }).await);

    app.shutdown().await;
}

#[actix_rt::test]
async fn upgrades_past_the_session_cap_get_503_in_the_api_error_shape() {
    let app = spawn_app_tuned(|s| s.ws.max_sessions = 2).await;
    let addr = app.address();
    let mut first = WsClient::connect(addr).await;
    let _second = WsClient::connect(addr).await;

    match WsClient::try_connect(addr, None).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "too_many_sessions");
        }
        Err(e) => panic!("expected a 503, got {e}"),
        Ok(_) => panic!("a third session was admitted"),
    }

    first.ws.close(None).await.unwrap();
    assert!(wait_until(WAIT, || async { app.ws_sessions() == 1 }).await);
    let mut third = WsClient::connect(addr).await;
    third.send(json!({"type": "ping"})).await;
    assert_eq!(third.next().await["type"], "pong");

    let plain = reqwest::get(format!("http://{addr}/ws")).await.unwrap();
    assert_eq!(plain.status().as_u16(), 400);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_handshake");

    app.shutdown().await;
}

/// What one reading subscriber saw.
#[derive(Debug, Default)]
struct Tally {
    missing: usize,
    unexpected: Vec<String>,
    duplicates: usize,
    lagged: u64,
}

/// Reads until the platform's end marker, sent after every load post was stored, and every
/// load post on `platform` before it were either received or reported lost in `lagged`.
async fn read_platform(mut client: WsClient, platform: &'static str, posts: usize) -> Tally {
    let platforms = Platform::ALL.map(Platform::as_str);
    let expected: Vec<bool> = (0..posts)
        .map(|i| platforms[i % platforms.len()] == platform)
        .collect();
    let want = expected.iter().filter(|e| **e).count();
    let mut seen = vec![false; posts];
    let mut tally = Tally::default();
    let (mut got, mut end) = (0, false);
    while !end || got + (tally.lagged as usize) < want {
        let m = client.next().await;
        if m["type"] == "lagged" {
            tally.lagged += m["dropped"].as_u64().unwrap_or(0);
            continue;
        }
        let id = m["data"]["id"].as_str().unwrap_or_default().to_string();
        match id
            .strip_prefix("load-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n < posts && expected[n] => {
                if seen[n] {
                    tally.duplicates += 1;
                } else {
                    seen[n] = true;
                    got += 1;
                }
            }
            _ if id == format!("end-{platform}") => end = true,
            _ => tally.unexpected.push(id),
        }
        if !tally.unexpected.is_empty() {
            break;
        }
    }
    tally.missing = want - got;
    tally
}

#[actix_rt::test]
async fn slow_subscribers_lose_their_oldest_posts_while_the_others_get_every_one() {
    const READERS: usize = 190;
    const SLOW: usize = 10;
    const POSTS: usize = 20_000;
    const READER_PLATFORMS: [&str; 4] = ["twitter", "reddit", "instagram", "tiktok"];
    /// A session's queue holds a reader's whole share (one platform of eight): a reader the
    /// test's own thread could not run for a while (a busy machine) still loses nothing, and
    /// "gets every one" depends on the broadcaster alone. A slow session, subscribed to every
    /// post, must still drop most of them.
    const QUEUE: usize = POSTS / 8 + 1_000;
    /// Generous: a slow session queues at most `QUEUE` messages, whose texts the sessions share.
    const MAX_RSS_GROWTH: u64 = 200 * 1024 * 1024;

    let env = TestEnv::new().await;
    // The slow clients stop reading for as long as the flow lasts; this test is about what
    // their queues keep meanwhile, not about the write timeout that would end them.
    let app = env
        .serve(|s| {
            s.ws.write_timeout_secs = 3_600;
            s.ws.queue_capacity = QUEUE;
            s.ws.max_queued_bytes = QUEUE * 2_048;
        })
        .await;
    let env = &app.env;
    let addr = app.address();
    let redis = env.redis().await;

    let mut readers = Vec::new();
    for i in 0..READERS {
        let platform = READER_PLATFORMS[i % READER_PLATFORMS.len()];
        let mut client = WsClient::connect(addr).await;
        client
            .subscribe(json!({"type": "subscribe", "topics": ["posts"],
                "filter": {"platform": platform}}))
            .await;
        readers.push((platform, client));
    }
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut client = WsClient::connect_with_small_window(addr).await;
        client
            .subscribe(json!({"type": "subscribe", "topics": ["posts"]}))
            .await;
        slow.push(client);
    }
    // From here on the slow clients are not polled until the flow is over.

    let baseline = rss_bytes();
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|(platform, client)| tokio::spawn(read_platform(client, platform, POSTS)))
        .collect();

    let platforms = Platform::ALL.map(Platform::as_str);
    xadd_all(
        &redis,
        &env.stream,
        (0..POSTS).map(|i| {
            let text = if i.is_multiple_of(2) {
                NEGATIVE
            } else {
                POSITIVE
            };
            post(
                &format!("load-{i}"),
                platforms[i % platforms.len()],
                "FR",
                text,
            )
        }),
    )
    .await;
    assert!(
        env.stored_exactly(POSTS as i64, Duration::from_secs(600))
            .await,
        "the pipeline stores every post"
    );
    xadd_all(
        &redis,
        &env.stream,
        READER_PLATFORMS.map(|p| post(&format!("end-{p}"), p, "FR", POSITIVE)),
    )
    .await;

    for task in tasks {
        let tally = task.await.expect("reader");
        assert_eq!(tally.missing, 0, "{tally:?}");
        assert!(tally.unexpected.is_empty(), "{tally:?}");
        assert_eq!(tally.duplicates, 0, "{tally:?}");
        assert_eq!(tally.lagged, 0, "{tally:?}");
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(
        growth < MAX_RSS_GROWTH,
        "resident memory grew by {} MB",
        growth / (1024 * 1024)
    );

    // The slow clients finally read: what their sockets held, then how much they lost, then
    // the newest posts, the end markers included.
    for mut client in slow {
        let mut dropped = 0;
        let mut ends = HashSet::new();
        while ends.len() < READER_PLATFORMS.len() {
            let m = client.next().await;
            if m["type"] == "lagged" {
                assert!(ends.is_empty(), "lagged comes before the newest posts");
                dropped += m["dropped"].as_u64().expect("dropped count");
            } else if let Some(end) = m["data"]["id"].as_str().filter(|id| id.starts_with("end-")) {
                ends.insert(end.to_string());
            }
        }
        assert!(dropped > 0, "a client that stopped reading lost posts");
    }

    app.shutdown().await;
}

#[actix_rt::test]
async fn a_client_that_never_answers_pings_is_disconnected() {
    let env = TestEnv::new().await;
    let app = env
        .serve(|s| {
            s.ws.heartbeat_secs = 1;
            s.ws.client_timeout_secs = 2;
        })
        .await;
    let mut client = WsClient::subscribed(app.address(), &["posts"]).await;

    // Not reading, the client answers no ping; the server gives up on it.
    assert!(wait_until(WAIT, || async { app.ws_sessions() == 0 }).await);
    match client.next_frame().await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Policy),
        other => panic!("expected a close frame, got {other:?}"),
    }

    app.shutdown().await;
}

/// A client that stops reading while its own messages fill the connection with answers (here
/// errors), subscribed to nothing: nothing waits in its queue, but its session stops running
/// all the same, and is shut as any client that stopped reading, its place given back.
#[actix_rt::test]
async fn a_client_that_stops_reading_the_answers_to_its_own_messages_is_shut() {
    let env = TestEnv::new().await;
    let app = env
        .serve(|s| {
            stalled_sockets_shut(s, 2);
            s.ws.heartbeat_secs = 1;
            s.ws.max_sessions_per_client = 1;
        })
        .await;
    let addr = app.address();
    let mut client = WsClient::connect_with_small_window(addr).await;
    // Each answered with an error of about 100 bytes: far more than the buffers between.
    for _ in 0..8_000 {
        client.send_text("x").await;
    }
    assert!(
        wait_until(WAIT, || async { app.ws_sessions() == 0 }).await,
        "the session of a client that reads nothing holds its place"
    );
    let mut again = WsClient::connect(addr).await;
    again.send(json!({"type": "ping"})).await;
    assert_eq!(again.next().await["type"], "pong");
    assert_metrics_hold(&app, &["pulse_ws_sessions_stalled_total 1"]).await;
    app.shutdown().await;
}

/// Opens `/ws` over a bare TCP connection (a client library will not send the frames below),
/// sends `frame`, and returns the close code the server answers with (0: none).
async fn close_code_after(addr: SocketAddr, frame: &[u8]) -> u16 {
    use tokio::io::AsyncWriteExt;
    let mut stream = upgraded(addr).await;
    // The client may be refused before it has written everything.
    let _ = stream.write_all(frame).await;
    // Server frames are unmasked; skip any before the close frame (opcode 8).
    while let Ok(Some((opcode, payload))) =
        tokio::time::timeout(WAIT, server_frame(&mut stream)).await
    {
        if opcode == 8 {
            return payload
                .get(..2)
                .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
        }
    }
    0
}

/// A raw connection to `/ws`, upgraded, the server's answer read.
async fn upgraded(addr: SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let headers: String = WS_UPGRADE
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    stream
        .write_all(format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"));
    stream
}

/// The next frame the server sends: its opcode and payload (`None` once the connection ends).
async fn server_frame(stream: &mut tokio::net::TcpStream) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut h = [0u8; 2];
    stream.read_exact(&mut h).await.ok()?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        stream.read_exact(&mut b).await.ok()?;
        len = u64::from(u16::from_be_bytes(b));
    }
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).await.ok()?;
    Some((h[0] & 0x0f, payload))
}

/// A masked client frame: `first` (FIN and opcode), `payload` declared as `declared` bytes.
fn client_frame(first: u8, declared: u64, payload: &[u8]) -> Vec<u8> {
    let mask = [7u8, 1, 9, 3];
    let mut frame = vec![first];
    match declared {
        0..=125 => frame.push(0x80 | declared as u8),
        126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend((declared as u16).to_be_bytes());
        }
        _ => {
            frame.push(0x80 | 127);
            frame.extend(declared.to_be_bytes());
        }
    }
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// A frame is refused by the length its header declares: the server closed only after a whole
/// oversized frame, so a header promising terabytes had it keep whatever followed until the
/// idle timeout (1008). Text that is not UTF-8 closes with 1007, as the protocol says.
#[actix_rt::test]
async fn a_frame_is_refused_by_its_declared_length_and_text_that_is_not_utf8_by_1007() {
    let app = spawn_app_tuned(|_| {}).await;
    let addr = app.address();

    let promise = client_frame(0x81, 9_000_000_000_000, &[b'x'; 4096]);
    assert_eq!(close_code_after(addr, &promise).await, 1009);
    let just_over = client_frame(
        0x81,
        pulse::ws::DEFAULT_MAX_FRAME_BYTES as u64 + 1,
        &[b'x'; 16],
    );
    assert_eq!(close_code_after(addr, &just_over).await, 1009);

    let not_utf8 = br#"{"type":"ping","x":"#.iter().chain(&[0xff, 0xfe, b'"', b'}']);
    let not_utf8: Vec<u8> = not_utf8.copied().collect();
    let frame = client_frame(0x81, not_utf8.len() as u64, &not_utf8);
    assert_eq!(close_code_after(addr, &frame).await, 1007);

    assert!(wait_until(WAIT, || async { app.ws_sessions() == 0 }).await);
    app.shutdown().await;
}

/// A client sending tiny frames faster than its session handles them (the server's reader took
/// every ready byte while the session handled sixteen frames a poll) had the server hold what
/// it sent: 96 MiB of pongs, six bytes each, grew the process by 93 MiB. The client is
/// now held back by TCP once 64 frames wait; the server stays small and keeps serving others.
#[actix_rt::test]
async fn a_client_flooding_tiny_frames_is_held_back_not_buffered() {
    use tokio::io::AsyncWriteExt;
    const FLOOD: usize = 64 << 20;
    let app = spawn_app_tuned(|_| {}).await;
    let addr = app.address();
    let pongs: Vec<u8> = (0..10_000)
        .flat_map(|_| client_frame(0x8A, 0, &[]))
        .collect();
    let mut flooder = upgraded(addr).await;

    let baseline = rss_bytes();
    let mut peak = baseline;
    let mut sent = 0;
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while sent < FLOOD && std::time::Instant::now() < until {
        match tokio::time::timeout(Duration::from_secs(2), flooder.write_all(&pongs)).await {
            Ok(Ok(())) => sent += pongs.len(),
            _ => break,
        }
        peak = peak.max(rss_bytes());
    }
    let grown = peak.saturating_sub(baseline);
    eprintln!(
        "sent {} MiB, the process grew {} MiB",
        sent >> 20,
        grown >> 20
    );
    assert!(
        grown < 24 << 20,
        "the server kept what the client sent: {} MiB sent, {} MiB grown",
        sent >> 20,
        grown >> 20
    );

    let other = WsClient::subscribed(addr, &["alerts"]).await;
    drop((flooder, other));
    assert!(wait_until(WAIT, || async { app.ws_sessions() == 0 }).await);
    app.shutdown().await;
}

//! Live subscribers over `GET /ws` on the real pipeline, PostgreSQL and Redis: filters,
//! unsubscribe, published alerts and virality, metrics snapshots and live numbers. What a
//! session may not do (bad messages, oversized frames, slow readers, silence) is in `limits`.

mod limits;

use crate::common;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use fred::prelude::*;
use futures::{SinkExt, StreamExt};
use pulse::models::Platform;
use pulse::ws::{FilterKeys, MetricsUpdate, Publish, Topic};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// Longest wait for any one expected message; generous, the machine may be busy.
const WAIT: Duration = Duration::from_secs(120);
/// A receive buffer small enough that a client which stops reading stalls its session soon.
const SMALL_RECEIVE_BUFFER: u32 = 4096;

const NEGATIVE: &str = "This is terrible, I hate it, the worst and most awful phone ever";
const POSITIVE: &str = "I love it, wonderful and great, the best phone ever";
const NEUTRAL: &str = "The phone arrived on Tuesday in a box";

/// A post event on `platform` from `country`.
fn post(id: &str, platform: &str, country: &str, text: &str) -> String {
    PostEvent::new(id, text)
        .platform(platform)
        .followers(10)
        .lang("en")
        .country(country)
        .to_string()
}

/// XADDs events in pipelined chunks.
async fn xadd_all(redis: &Client, stream: &str, events: impl IntoIterator<Item = String>) {
    let events: Vec<String> = events.into_iter().collect();
    // Small pipelines, retried: on a loaded 2-core machine a 500-entry pipeline can run past the
    // client's timeout. A retry may append an entry twice; Pulse stores and publishes a post
    // once by its id, which is what this test relies on anyway.
    for chunk in events.chunks(100) {
        let mut attempts = 0;
        loop {
            let pipeline = redis.pipeline();
            for json in chunk {
                let _: Result<(), _> = pipeline
                    .xadd(
                        stream,
                        false,
                        None::<()>,
                        "*",
                        vec![("event", json.as_str())],
                    )
                    .await;
            }
            let sent: Result<Vec<fred::types::Value>, _> = pipeline.all().await;
            attempts += 1;
            match sent {
                Ok(_) => break,
                Err(e) if attempts < 5 => {
                    eprintln!("xadd pipeline failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("xadd: {e}"),
            }
        }
    }
}

/// Resident memory of this process (the app runs in it), in bytes.
fn rss_bytes() -> u64 {
    common::rss_of(std::process::id())
}

/// A WebSocket client speaking the protocol.
struct WsClient {
    ws: WebSocketStream<TcpStream>,
}

impl WsClient {
    async fn connect(addr: SocketAddr) -> WsClient {
        Self::try_connect(addr, None)
            .await
            .expect("websocket connects")
    }

    /// A client subscribed to `topics`, unfiltered, its ack read.
    async fn subscribed(addr: SocketAddr, topics: &[&str]) -> WsClient {
        let mut client = Self::connect(addr).await;
        client
            .subscribe(json!({"type": "subscribe", "topics": topics}))
            .await;
        client
    }

    /// A client whose socket takes little before the server has to stop writing to it.
    async fn connect_with_small_window(addr: SocketAddr) -> WsClient {
        Self::try_connect(addr, Some(SMALL_RECEIVE_BUFFER))
            .await
            .expect("websocket connects")
    }

    async fn try_connect(
        addr: SocketAddr,
        receive_buffer: Option<u32>,
    ) -> Result<WsClient, tungstenite::Error> {
        let socket = TcpSocket::new_v4()?;
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        let stream = socket.connect(addr).await?;
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream).await?;
        Ok(WsClient { ws })
    }

    async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_string()))
            .await
            .expect("send");
    }

    async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    /// The next frame other than a ping or pong; `None` once the connection is over. The wait
    /// counts from the call, not from the last ping: the server pings every few seconds, so a
    /// message that never comes would otherwise be waited for forever.
    async fn next_frame(&mut self) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame within the wait");
            match frame {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(m)) => return Some(m),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next protocol message.
    async fn next(&mut self) -> Value {
        match self.next_frame().await {
            Some(Message::Text(text)) => serde_json::from_str(text.as_str()).expect("JSON"),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Sends `subscribe` (or `unsubscribe`) and returns the `subscribed` ack.
    async fn subscribe(&mut self, message: Value) -> Value {
        self.send(message).await;
        let ack = self.next().await;
        assert_eq!(ack["type"], "subscribed", "{ack}");
        ack
    }

    /// The `data` of every `message:new` up to and including the post `last`.
    async fn posts_until(&mut self, last: &str) -> Vec<Value> {
        let mut posts = Vec::new();
        loop {
            let m = self.next().await;
            assert_eq!(m["type"], "message:new", "{m}");
            let done = m["data"]["id"] == last;
            posts.push(m["data"].clone());
            if done {
                return posts;
            }
        }
    }
}

fn ids(posts: &[Value]) -> Vec<String> {
    posts
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect()
}

/// A Pulse with one entry in flight at a time, so batches commit in stream order.
async fn in_stream_order() -> TestApp {
    spawn_app_tuned(|s| s.ingest.max_in_flight = 1).await
}

#[actix_rt::test]
async fn a_filtered_subscriber_gets_exactly_the_matching_new_posts_in_stream_order() {
    let app = in_stream_order().await;
    let env = &app.env;
    let redis = env.redis().await;

    // The sentiment the analyzer gives the neutral text, whatever backend is configured.
    let mut probe = WsClient::subscribed(app.address(), &["posts"]).await;
    xadd_event(
        &redis,
        &env.stream,
        &post("a-probe", "twitter", "DE", NEUTRAL),
    )
    .await;
    let label = probe.posts_until("a-probe").await[0]["analysis"]["sentiment"]["label"]
        .as_str()
        .expect("a sentiment label")
        .to_string();

    let mut client = WsClient::connect(app.address()).await;
    let filter = json!({"platform": "reddit", "country": "FR", "sentiment": label});
    let ack = client
        .subscribe(json!({"type": "subscribe", "topics": ["posts"], "filter": filter}))
        .await;
    assert_eq!(ack["topics"], json!(["posts"]));
    assert_eq!(ack["filter"], filter);

    let texts = [NEGATIVE, POSITIVE, NEUTRAL];
    let event = |i: usize| {
        let platform = if i.is_multiple_of(2) {
            "reddit"
        } else {
            "twitter"
        };
        let country = if i % 4 < 2 { "FR" } else { "DE" };
        post(&format!("a-{i}"), platform, country, texts[i % texts.len()])
    };
    let mut sent = Vec::new();
    for i in 0..60 {
        xadd_event(&redis, &env.stream, &event(i)).await;
        sent.push(format!("a-{i}"));
    }
    // The same posts again under new entries (a producer retry): stored once, sent once.
    for i in 0..12 {
        xadd_event(&redis, &env.stream, &event(i)).await;
    }
    xadd_event(&redis, &env.stream, &post("a-end", "reddit", "FR", NEUTRAL)).await;
    sent.push("a-end".into());

    let received = client.posts_until("a-end").await;

    let pg = env.pg().await;
    let matching: HashSet<String> = pg
        .column(
            "SELECT id FROM posts WHERE platform = 'reddit' AND country = 'FR' \
             AND sentiment_label = $1",
            &[&label],
        )
        .await
        .into_iter()
        .collect();
    let expected: Vec<String> = sent
        .iter()
        .filter(|id| matching.contains(*id))
        .cloned()
        .collect();
    assert!(expected.len() >= 5, "the data set has matching posts");
    assert_eq!(ids(&received), expected);
    for p in &received {
        assert_eq!(p["platform"], "reddit");
        assert_eq!(p["geo"]["country"], "FR");
        assert_eq!(p["analysis"]["sentiment"]["label"], label.as_str());
    }

    // The live message carries the post exactly as the API serves it.
    let first = &received[0];
    let mut api: Value = reqwest::get(format!(
        "http://{}/api/v1/posts/{}",
        app.address(),
        first["id"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut live = first.clone();
    live.as_object_mut().unwrap().remove("ingested_at");
    api.as_object_mut().unwrap().remove("ingested_at");
    assert_eq!(live, api);

    app.shutdown().await;
}

#[actix_rt::test]
async fn a_post_made_now_is_pushed_live_after_an_entry_whose_id_is_far_ahead() {
    // A producer that sets entry ids itself (from its own clock, or microseconds taken for
    // milliseconds) appended one far ahead: Redis gives every later entry an id past it,
    // those of Pulse's own intake included, so no later id tells when its post arrived.
    let app = spawn_app_tuned(|_| {}).await;
    let env = &app.env;
    let redis = env.redis().await;
    let mut client = WsClient::subscribed(app.address(), &["posts"]).await;
    let ahead: String = redis
        .xadd(
            env.stream.as_str(),
            false,
            None::<()>,
            "99999999999999-0",
            vec![("event", post("ahead-set", "reddit", "FR", NEUTRAL))],
        )
        .await
        .unwrap();
    assert_eq!(ahead, "99999999999999-0");

    let now = PostEvent::new("ahead-now", POSITIVE).json();
    let (status, body) = app.post("/api/v1/events", &now).await;
    assert_eq!(status, 202, "{body}");
    let id = body["ids"][0].as_str().unwrap_or_default();
    assert!(id.starts_with("99999999999999-"), "{body}");

    // Both posts were created now: live, not backfill received thousands of years later.
    let received = client.posts_until("ahead-now").await;
    assert!(ids(&received).contains(&"ahead-now".to_string()));
    assert_metric_counted(&app.app, "pulse_ingest_future_id_entries_total").await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn unsubscribing_stops_delivery() {
    let app = spawn_app_tuned(|_| {}).await;
    let posts = json!({"type": "subscribe", "topics": ["posts"]});
    let mut client = WsClient::connect(app.address()).await;
    client.subscribe(posts.clone()).await;
    let mut witness = WsClient::connect(app.address()).await;
    witness.subscribe(posts).await;

    app.xadd(&post("b-1", "twitter", "FR", POSITIVE)).await;
    assert_eq!(ids(&client.posts_until("b-1").await), ["b-1"]);
    assert_eq!(ids(&witness.posts_until("b-1").await), ["b-1"]);

    let ack = client
        .subscribe(json!({"type": "unsubscribe", "topics": ["posts"]}))
        .await;
    assert_eq!(ack["topics"], json!([]));
    app.xadd(&post("b-2", "twitter", "FR", POSITIVE)).await;
    app.xadd(&post("b-3", "twitter", "FR", POSITIVE)).await;
    let mut seen = HashSet::new();
    while !(seen.contains("b-2") && seen.contains("b-3")) {
        let m = witness.next().await;
        seen.insert(m["data"]["id"].as_str().unwrap().to_string());
    }
    // Nothing reached the unsubscribed client: its next message answers its ping.
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await, json!({"type": "pong"}));

    // Subscribed again, the next post is the first thing the client receives. The new
    // subscription takes German posts only, so a French one the broadcaster offers late
    // (it serves sessions one after another) cannot slip in after the ack.
    client
        .subscribe(json!({"type": "subscribe", "topics": ["posts"], "filter": {"country": "DE"}}))
        .await;
    app.xadd(&post("b-4", "twitter", "DE", POSITIVE)).await;
    assert_eq!(ids(&client.posts_until("b-4").await), ["b-4"]);

    app.shutdown().await;
}

#[actix_rt::test]
async fn metrics_snapshot_on_subscribe_and_coalesced_updates_for_a_slow_session() {
    /// Enough padded snapshots that a small-window client cannot hold them all.
    const UPDATES: u64 = 300;
    const PADDING_BYTES: usize = 64 * 1024;

    // The test publishes its own snapshots; the aggregator's would interleave with them.
    let app = spawn_app_tuned(|s| s.metrics.updates_per_sec = 0.0).await;
    let addr = app.address();
    let broadcaster = app.broadcaster();
    let metrics = json!({"type": "subscribe", "topics": ["metrics"]});

    let mut early = WsClient::connect(addr).await;
    early.subscribe(metrics.clone()).await;
    broadcaster
        .send(MetricsUpdate {
            json: json!({"seq": 0}).to_string().into(),
        })
        .await
        .unwrap();
    let update = early.next().await;
    assert_eq!(
        update,
        json!({"type": "metrics:update", "data": {"seq": 0}})
    );

    let mut late = WsClient::connect(addr).await;
    late.subscribe(metrics.clone()).await;
    assert_eq!(
        late.next().await,
        json!({"type": "metrics:initial", "data": {"seq": 0}})
    );
    // Subscribing again at once is acknowledged without the whole snapshot again.
    for _ in 0..3 {
        late.subscribe(metrics.clone()).await;
    }
    late.send(json!({"type": "ping"})).await;
    assert_eq!(late.next().await, json!({"type": "pong"}));

    let mut slow = WsClient::connect_with_small_window(addr).await;
    slow.subscribe(metrics).await;
    assert_eq!(slow.next().await["type"], "metrics:initial");
    let padding = "x".repeat(PADDING_BYTES);
    for seq in 1..=UPDATES {
        broadcaster
            .send(MetricsUpdate {
                json: json!({"seq": seq, "padding": padding}).to_string().into(),
            })
            .await
            .unwrap();
    }

    let mut seqs = Vec::new();
    while seqs.last() != Some(&UPDATES) {
        let m = slow.next().await;
        assert_eq!(m["type"], "metrics:update", "only metrics were subscribed");
        seqs.push(m["data"]["seq"].as_u64().unwrap());
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "updates arrive in order, never twice: {seqs:?}"
    );
    assert!(
        (seqs.len() as u64) < UPDATES,
        "a session that could not keep up got fewer, coalesced updates"
    );

    // A client that reads late still ends on the latest snapshot.
    let mut last = 0;
    while last != UPDATES {
        let m = early.next().await;
        assert_eq!(m["type"], "metrics:update");
        let seq = m["data"]["seq"].as_u64().unwrap();
        assert!(seq > last);
        last = seq;
    }

    app.shutdown().await;
}

#[actix_rt::test]
async fn published_alerts_and_virality_reach_the_subscribers_whose_filter_matches() {
    let app = spawn_app_tuned(|_| {}).await;
    let addr = app.address();
    let broadcaster = app.broadcaster();
    let mut phone = WsClient::connect(addr).await;
    phone
        .subscribe(json!({"type": "subscribe", "topics": ["alerts"],
            "filter": {"product": "pulse-phone"}}))
        .await;
    let mut everything = WsClient::subscribed(addr, &["alerts", "virality"]).await;
    let mut posts_only = WsClient::subscribed(addr, &["posts"]).await;

    let alert = |product: &str| Publish {
        topic: Topic::Alerts,
        event_type: "alert:negative_spike".into(),
        data: json!({"product": product}).to_string().into(),
        keys: FilterKeys {
            product: Some(product.into()),
            ..FilterKeys::default()
        },
    };
    broadcaster.send(alert("pulse-watch")).await.unwrap();
    broadcaster.send(alert("pulse-phone")).await.unwrap();
    broadcaster
        .send(Publish {
            topic: Topic::Virality,
            event_type: "virality:update".into(),
            data: json!({"post_id": "p-1"}).to_string().into(),
            keys: FilterKeys::default(),
        })
        .await
        .unwrap();

    assert_eq!(
        phone.next().await,
        json!({"type": "alert:negative_spike", "data": {"product": "pulse-phone"}})
    );
    assert_eq!(everything.next().await["data"]["product"], "pulse-watch");
    assert_eq!(everything.next().await["data"]["product"], "pulse-phone");
    assert_eq!(
        everything.next().await,
        json!({"type": "virality:update", "data": {"post_id": "p-1"}})
    );
    posts_only.send(json!({"type": "ping"})).await;
    assert_eq!(posts_only.next().await["type"], "pong");

    app.shutdown().await;
}

#[actix_rt::test]
async fn live_metrics_updates_carry_the_numbers_in_the_database() {
    let app = spawn_app_tuned(|s| s.metrics.updates_per_sec = 10.0).await;
    let env = &app.env;
    let redis = env.redis().await;
    let mut client = WsClient::subscribed(app.address(), &["metrics"]).await;

    let texts = [NEGATIVE, POSITIVE, NEUTRAL];
    xadd_all(
        &redis,
        &env.stream,
        (0..30).map(|i| post(&format!("live-{i}"), "reddit", "FR", texts[i % 3])),
    )
    .await;

    // Snapshots keep coming; wait for one that has seen all 30 posts.
    let snapshot = loop {
        let message = client.next().await;
        let kind = message["type"].as_str().unwrap_or_default().to_string();
        assert!(kind.starts_with("metrics:"), "{message}");
        if message["data"]["overall"]["5m"]["posts"] == 30 {
            break message["data"].clone();
        }
    };
    let rest: Value = reqwest::get(format!(
        "http://{}/api/v1/metrics/overall?window=5m",
        app.address()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        snapshot["overall"]["5m"], rest["stats"],
        "the live figures are the REST figures"
    );
    let platforms = snapshot["by_dimension"]["items"]["platform"]
        .as_array()
        .unwrap();
    assert_eq!(platforms[0]["key"], "reddit");
    assert_eq!(platforms[0]["posts"], 30);
    assert_eq!(snapshot["overall"]["5m"]["sentiment"]["negative"], 10);
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_subscriber_filtered_by_topic_gets_the_posts_of_that_topic_only() {
    let app = in_stream_order().await;
    let id = app.create_topic("Battery", "battery").await;
    let live = app.pipeline().topics().clone();
    assert!(wait_until(WAIT, || async { live.get().len() == 1 }).await);

    let mut client = WsClient::connect(app.address()).await;
    let ack = client
        .subscribe(json!({"type": "subscribe", "topics": ["posts"], "filter": {"topic": id}}))
        .await;
    assert_eq!(ack["filter"], json!({"topics": [id]}));
    let texts = [
        "the battery died",
        "nice screen",
        "battery life is great",
        "lunch",
    ];
    for (i, text) in texts.iter().enumerate() {
        app.xadd(&post(&format!("t-{i}"), "twitter", "FR", text))
            .await;
    }
    // The last post of the topic comes last of what this subscriber gets; nothing else comes.
    app.xadd(&post("t-end", "twitter", "FR", "battery again"))
        .await;
    let got = client.posts_until("t-end").await;
    let mut ids = ids(&got);
    ids.sort();
    assert_eq!(ids, ["t-0", "t-2", "t-end"]);
    assert!(got.iter().all(|p| p["topics"] == json!([id])), "{got:?}");

    // A topic is named by its id.
    client
        .send(json!({"type": "subscribe", "topics": [], "filter": {"topic": "battery"}}))
        .await;
    let refused = client.next().await;
    assert_eq!(refused["error"]["code"], "invalid_message", "{refused}");
    app.shutdown().await;
}

//! A Jetstream stand-in on loopback: each connection gets the given messages from its
//! `cursor` query parameter on (all of them without one), `pace` apart. The first connection
//! can be cut, without a close frame, after some messages; later ones stay open. The first
//! upgrades can be refused with a status and headers (a 429 with `Retry-After`), and the time
//! of every upgrade request is kept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::SinkExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// The replay of tests/fixtures/jetstream (see its README for where the shapes come from).
pub const REPLAY: &str = include_str!("../fixtures/jetstream/replay.jsonl");

/// The messages of [`REPLAY`], one a line.
pub fn replay_lines() -> Vec<String> {
    REPLAY.lines().map(str::to_string).collect()
}

pub struct JetstreamStandIn {
    /// The subscribe URL.
    pub endpoint: String,
    /// The request URIs, one per connection.
    pub uris: Arc<Mutex<Vec<String>>>,
    /// When each upgrade request arrived (refused ones included), in order, with the
    /// headers of its refusal (none when it was accepted).
    pub attempts: Arc<Mutex<Vec<Attempt>>>,
}

/// Headers of a refusal, made when the upgrade request arrives (so a date is relative to it).
pub type Headers = fn(SystemTime) -> Vec<(&'static str, String)>;

/// An answer refusing an upgrade: its status and headers.
pub type Refusal = (u16, Headers);

/// An upgrade request: when it arrived, and the headers of its refusal.
pub type Attempt = (SystemTime, Vec<(&'static str, String)>);

/// The `time_us` of a message (a line without one is always sent).
fn time_us(line: &str) -> i64 {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["time_us"].as_i64())
        .unwrap_or(i64::MAX)
}

/// A post message of the replay's shape, `n` seconds after a fixed start.
pub fn post_message(n: usize) -> String {
    let time_us = 1_783_175_888_000_000i64 + n as i64 * 1_000_000;
    serde_json::json!({
        "did": format!("did:plc:author{n:020}"), "time_us": time_us, "kind": "commit",
        "commit": {"rev": "3mptbypcq372f", "operation": "create",
            "collection": "app.bsky.feed.post", "rkey": format!("3mp{n}"), "cid": "bafyrei",
            "record": {"$type": "app.bsky.feed.post", "createdAt": "2026-07-04T14:38:06.240Z",
                "langs": ["en"], "text": format!("Post number {n} about the Pulse Buds")}}
    })
    .to_string()
}

impl JetstreamStandIn {
    /// A stand-in that replays `posts` posts ([`post_message`] `0..posts`) whole, one every
    /// `pace`.
    pub async fn replaying(posts: usize, pace: Duration) -> Self {
        Self::start((0..posts).map(post_message).collect(), None, pace).await
    }

    pub async fn start(lines: Vec<String>, cut_after: Option<usize>, pace: Duration) -> Self {
        Self::start_refusing(lines, cut_after, pace, Vec::new()).await
    }

    /// [`Self::start`], the first upgrades answered with `refusals`, one each, in order.
    pub async fn start_refusing(
        lines: Vec<String>,
        cut_after: Option<usize>,
        pace: Duration,
        refusals: Vec<Refusal>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let uris = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let seen = uris.clone();
        let tried = attempts.clone();
        let lines = Arc::new(lines);
        let mut refusals = std::collections::VecDeque::from(refusals);
        tokio::spawn(async move {
            let mut connection = 0;
            while let Ok((tcp, _)) = listener.accept().await {
                let refusal = refusals.pop_front();
                let mut uri = String::new();
                let tried = tried.clone();
                #[allow(clippy::result_large_err)] // the handshake's callback type
                let callback = |req: &Request, res: Response| {
                    let at = SystemTime::now();
                    uri = req.uri().to_string();
                    match refusal {
                        None => {
                            tried.lock().unwrap().push((at, Vec::new()));
                            Ok(res)
                        }
                        Some((status, headers)) => {
                            let headers = headers(at);
                            let mut refused =
                                tokio_tungstenite::tungstenite::http::Response::builder()
                                    .status(status);
                            for (name, value) in &headers {
                                refused = refused.header(*name, value);
                            }
                            tried.lock().unwrap().push((at, headers));
                            Err(refused.body(None).unwrap())
                        }
                    }
                };
                let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(tcp, callback).await
                else {
                    continue;
                };
                connection += 1;
                seen.lock().unwrap().push(uri.clone());
                let cursor: i64 = url::Url::parse(&format!("ws://x{uri}"))
                    .unwrap()
                    .query_pairs()
                    .find(|(k, _)| k == "cursor")
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                let limit = match (connection, cut_after) {
                    (1, Some(n)) => n,
                    _ => usize::MAX,
                };
                let lines = lines.clone();
                tokio::spawn(async move {
                    let from_cursor = lines.iter().filter(|l| time_us(l) >= cursor);
                    for line in from_cursor.take(limit) {
                        if socket.send(Message::text(line.clone())).await.is_err() {
                            return;
                        }
                        if !pace.is_zero() {
                            tokio::time::sleep(pace).await;
                        }
                    }
                    if limit == usize::MAX {
                        tokio::time::sleep(Duration::from_secs(300)).await;
                    }
                    // Otherwise cut: the connection goes away without a close frame.
                });
            }
        });
        JetstreamStandIn {
            endpoint: format!("ws://{address}/subscribe"),
            uris,
            attempts,
        }
    }
}

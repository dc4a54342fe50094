//! The attacks of the hostile benchmark, each as an outside client would make it against a
//! running server: from loopback addresses of its own, for a bounded time, counting what the
//! server answered. Each returns a one-line summary of what the attacker got.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::prelude::*;
use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::raw::{self, connect_from, head, read_status};
use super::Target;

/// What an attacker was answered, by outcome.
#[derive(Debug, Default)]
pub struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    pub fn add(&self, outcome: impl Into<String>) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(outcome.into())
            .or_default() += 1;
    }

    fn status(&self, status: u16) {
        self.add(if status == 0 {
            "closed".to_string()
        } else {
            status.to_string()
        });
    }

    /// `outcome ×n` pairs, most frequent first.
    pub fn summary(&self) -> String {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut items: Vec<(&String, &u64)> = map.iter().collect();
        items.sort_by(|a, b| b.1.cmp(a.1));
        let total: u64 = map.values().sum();
        let parts: Vec<String> = items.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        format!("{total}: {}", parts.join(", "))
    }
}

/// How long a client that floods requests waits after a refusal before the next: ten a second
/// each (a flood of requests as such is the network layer's to stop).
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long a client that holds bodies waits after an answer before it opens another.
const HOLD_RETRY: Duration = Duration::from_secs(1);

/// Runs `clients` clients at once, client `i` being `client(i, tally)`, until each has ended;
/// what they were answered, summed up.
async fn tallied<C, F>(clients: usize, client: C) -> String
where
    C: Fn(usize, Arc<Tally>) -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let tally = Arc::new(Tally::default());
    let tasks: Vec<_> = (0..clients)
        .map(|i| tokio::spawn(client(i, tally.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    tally.summary()
}

/// Zeros sent as body bytes.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Bodies that declare `declared` bytes and send one fewer, never finishing: `connections`
/// at once from `sources`, each started again once the server answers or closes, until
/// `deadline`. Like an attacker set on holding bodies (not on flooding the port), each sends
/// its head, sends the body only when no answer came at once, and after an answer waits
/// [`HOLD_RETRY`] before it tries again. A body still held at the deadline counts as `held`.
#[allow(clippy::too_many_arguments)]
pub async fn slow_bodies(
    server: SocketAddr,
    sources: Vec<IpAddr>,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    declared: usize,
    connections: usize,
    deadline: Instant,
) -> String {
    tallied(connections, |i, tally| {
        let headers = headers.clone();
        let source = sources[i % sources.len()];
        async move {
            while Instant::now() < deadline {
                let Ok(mut stream) = connect_from(source, server).await else {
                    tally.add("connect failed");
                    tokio::time::sleep(HOLD_RETRY).await;
                    continue;
                };
                let pairs: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let head = head("POST", path, server, &pairs, Some(declared));
                let mut answer = None;
                if stream.write_all(&head).await.is_ok() {
                    answer = read_status(&mut stream, Duration::from_millis(50)).await;
                }
                if answer.is_none() {
                    let mut left = declared.saturating_sub(1);
                    let mut sent = true;
                    while sent && left > 0 && Instant::now() < deadline {
                        let n = left.min(ZEROS.len());
                        sent = stream.write_all(&ZEROS[..n]).await.is_ok();
                        left -= n;
                    }
                    let wait = deadline.saturating_duration_since(Instant::now());
                    answer = read_status(&mut stream, wait).await;
                }
                match answer {
                    Some(status) => tally.status(status),
                    None => tally.add("held"),
                }
                tokio::time::sleep(HOLD_RETRY).await;
            }
        }
    })
    .await
}

/// `entries` stream entries of `fields` one-byte fields each (plus an `event`), XADDed
/// directly, as a producer with stream access could.
pub async fn many_fields(t: &Target, entries: usize, fields: usize) -> anyhow::Result<String> {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(fields + 1);
    pairs.push(("event".into(), "{}".into()));
    pairs.extend((0..fields).map(|i| (format!("f{i}"), "x".to_string())));
    let bytes: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
    for _ in 0..entries {
        let _: String = t
            .redis
            .xadd(&t.stream, false, None, "*", pairs.clone())
            .await?;
    }
    Ok(format!(
        "{entries} entries of {fields} fields ({:.1} MB each) appended",
        bytes as f64 / 1e6
    ))
}

/// `loops` clients guessing API keys (well-formed, random) from `sources` until `deadline`.
pub async fn key_guessing(
    server: SocketAddr,
    sources: Vec<IpAddr>,
    loops: usize,
    deadline: Instant,
) -> String {
    tallied(loops, |i, tally| {
        let sources = sources.clone();
        async move {
            let mut n = i;
            while Instant::now() < deadline {
                let key = {
                    let mut rng = rand::rng();
                    let hex = |len: usize, rng: &mut rand::rngs::ThreadRng| -> String {
                        (0..len)
                            .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
                            .collect()
                    };
                    format!("pulse_{}_{}", hex(12, &mut rng), hex(64, &mut rng))
                };
                let source = sources[n % sources.len()];
                n += loops;
                let status = raw::request(
                    source,
                    server,
                    "GET",
                    "/api/v1/posts",
                    &[("X-API-Key", &key)],
                    b"",
                    Duration::from_secs(30),
                )
                .await;
                tally.status(status);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    })
    .await
}

/// A body of `size` bytes made of empty gzip members.
pub fn empty_gzip_members(size: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(b"");
    let member = encoder.finish().unwrap_or_default();
    member.iter().copied().cycle().take(size).collect()
}

/// `loops` clients posting `body` to `path` with `headers` from `sources` until `deadline`.
#[allow(clippy::too_many_arguments)]
pub async fn repeated_posts(
    server: SocketAddr,
    sources: Vec<IpAddr>,
    loops: usize,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Arc<Vec<u8>>,
    deadline: Instant,
) -> String {
    tallied(loops, |i, tally| {
        let (sources, headers, body) = (sources.clone(), headers.clone(), body.clone());
        async move {
            let mut n = i;
            while Instant::now() < deadline {
                let source = sources[n % sources.len()];
                n += loops;
                let pairs: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let status = raw::request(
                    source,
                    server,
                    "POST",
                    path,
                    &pairs,
                    &body,
                    Duration::from_secs(60),
                )
                .await;
                tally.status(status);
                if status != 202 && status != 200 {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    })
    .await
}

/// `sessions` WebSocket sessions subscribed to every post, whose client never reads, held
/// until `deadline`.
pub async fn stalled_sockets(
    server: SocketAddr,
    sources: Vec<IpAddr>,
    token: &str,
    sessions: usize,
    deadline: Instant,
) -> String {
    let tally = Tally::default();
    let mut held = Vec::with_capacity(sessions);
    let bearer = format!("Bearer {token}");
    for i in 0..sessions {
        let Ok(mut stream) = connect_from(sources[i % sources.len()], server).await else {
            tally.add("connect failed");
            continue;
        };
        let request = head(
            "GET",
            "/ws",
            server,
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
                ("Authorization", &bearer),
            ],
            None,
        );
        if stream.write_all(&request).await.is_err() {
            tally.add("closed");
            continue;
        }
        let status = read_status(&mut stream, Duration::from_secs(10))
            .await
            .unwrap_or(0);
        tally.status(status);
        if status != 101 {
            continue;
        }
        let subscribe = br#"{"type":"subscribe","topics":["posts","metrics"]}"#;
        let _ = stream.write_all(&masked_text_frame(subscribe)).await;
        held.push(stream);
    }
    let summary = tally.summary();
    tokio::time::sleep_until(deadline).await;
    drop(held);
    summary
}

/// A client's text frame (masked, as RFC 6455 requires of clients), for payloads under 126
/// bytes.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// `posts` posts, each naming a product, city, country and channel no other post names,
/// XADDed at about `rate` per second.
pub async fn unique_labels(t: &Target, posts: usize, rate: f64) -> anyhow::Result<String> {
    let now = chrono::Utc::now().to_rfc3339();
    let started = Instant::now();
    let chunk = 500;
    for start in (0..posts).step_by(chunk) {
        let events: Vec<String> = (start..(start + chunk).min(posts))
            .map(|i| {
                serde_json::json!({
                    "type": "post", "id": format!("label-{}-{i}", t.run_id),
                    "platform": "twitter", "author": {"id": format!("a{i}"), "followers": 1},
                    "text": format!("nothing to see {i}"), "created_at": now,
                    "geo": {"city": format!("city-{i}"), "country": format!("country-{i}")},
                    "product": format!("product-{i}"), "channel": format!("channel-{i}"),
                })
                .to_string()
            })
            .collect();
        crate::bench::raw_xadd(&t.redis, &t.stream, &events).await?;
        let due = started + Duration::from_secs_f64((start + chunk) as f64 / rate);
        tokio::time::sleep_until(due).await;
    }
    Ok(format!(
        "{posts} posts with unique product, city, country and channel"
    ))
}

/// The three inputs that once answered 500; their statuses now.
pub async fn bad_inputs(t: &Target) -> Vec<(String, u16)> {
    // A time a hundred thousand years ago: one the server's clock holds, PostgreSQL not.
    let cursor = pulse_core::models::hex::hex(b"-3000000000000000000|x");
    let admin = t.admin_key.as_str();
    let cases = [
        (
            "GET".to_string(),
            format!("/api/v1/posts?cursor={cursor}"),
            t.analyst_key.as_str(),
        ),
        (
            "DELETE".to_string(),
            "/api/v1/admin/keys/%00".to_string(),
            admin,
        ),
        (
            "GET".to_string(),
            "/api/v1/admin/audit?actor=%00".to_string(),
            admin,
        ),
    ];
    let mut out = Vec::new();
    for (method, path, key) in cases {
        let status = raw::request(
            "127.0.0.1".parse().expect("an address"),
            t.address,
            &method,
            &path,
            &[("X-API-Key", key)],
            b"",
            Duration::from_secs(30),
        )
        .await;
        out.push((format!("{method} {path}"), status));
    }
    out
}

//! Cross-process fan-out of live events over Redis pub/sub, so that a WebSocket client of
//! any Pulse process sees every post, alert and virality update of the group, whichever
//! process produced it.
//!
//! Each process delivers what it produced to its own sessions at once (no round trip) and
//! offers the same serialized messages to a bounded queue; a publisher task PUBLISHes them
//! on one channel (`<stream>:fanout` by default), several per payload. A subscriber task on
//! a dedicated connection receives every payload, skips its own (each payload names its
//! origin, a random id per process start) and hands the others to the local broadcaster,
//! which filters them per session exactly like local ones. So each subscriber gets each
//! message once: from its own process, or from the one remote copy pub/sub delivers.
//!
//! Why pub/sub rather than a stream: live delivery is already at most once (messages are not
//! kept for clients that are not connected, slow clients lose their oldest posts), so a
//! durable log would buy little and cost Redis memory in proportion to the post rate times
//! the retention. Pub/sub keeps nothing in Redis, never duplicates, and keeps the order of
//! one publisher. What it loses — payloads published while a subscriber is disconnected or
//! while Redis restarts, and payloads a subscriber that falls behind its client output
//! buffer limit is cut off from — is counted: every payload carries the running number of
//! its origin's messages, so a receiver counts exactly how many of each origin's messages it
//! missed (`pulse_fanout_messages_dropped_total{reason="missed"}`).
//!
//! Nothing here can hold up the pipeline: the queue is bounded and offering never waits
//! (a full queue drops and counts), publishing has a timeout, both tasks reconnect by
//! themselves, and a payload that does not parse is counted and skipped.
//!
//! A process alone on its channel publishes nothing: the publisher asks Redis how many
//! subscribers the channel has (`PUBSUB NUMSUB`) every [`PEER_PROBE`] and from every PUBLISH
//! reply, and messages are only built and queued while another process listens. A process
//! that just subscribed hears from the others within that interval.
//!
//! The payload format (numbered messages of one origin, their text byte for byte) is in
//! `wire`.

mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Message, Recipient};
use fred::prelude::*;
use tokio::sync::{mpsc, watch};

pub use self::wire::FanoutItem;
use self::wire::{own_prefix, parse, payloads};
use crate::config::Settings;
use crate::models::backoff;
use crate::telemetry::names;

/// Payloads the subscriber's client buffers before it counts the subscriber as behind.
const SUBSCRIBER_BUFFER: usize = 256;
/// Origins not heard from for this long are forgotten (processes that stopped).
const ORIGIN_TTL: Duration = Duration::from_secs(600);
/// How long shutdown waits for queued messages to be published.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// Pause after the first failed attempt to connect the fan-out's clients.
const FIRST_CONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between attempts to connect the fan-out's clients.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(5);
/// Least time between two warnings about the same kind of loss.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// How often the publisher counts the other processes subscribed to the channel.
pub const PEER_PROBE: Duration = Duration::from_millis(500);

/// Messages produced by another process, for this process's sessions only (never
/// published again).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Remote(pub Vec<FanoutItem>);

/// The broadcaster's side of the fan-out: offers what this process produced to the
/// publisher without ever waiting.
#[derive(Clone)]
pub struct FanoutSender {
    tx: mpsc::Sender<Vec<FanoutItem>>,
    last_warning: Arc<std::sync::Mutex<Option<Instant>>>,
    peers: Peers,
}

/// What the publisher and the subscriber know of the channel: how many other processes
/// listen, and whether this one is subscribed (its own subscription counts in Redis's figure).
#[derive(Clone)]
struct Peers {
    others: Arc<AtomicUsize>,
    subscribed: Arc<AtomicBool>,
}

impl Peers {
    /// Records that the channel has `subscribers` in all, this process included when it is
    /// subscribed.
    fn set_subscribers(&self, subscribers: usize) {
        let own = usize::from(self.subscribed.load(Ordering::Acquire));
        let others = subscribers.saturating_sub(own);
        if self.others.swap(others, Ordering::AcqRel) != others {
            metrics::gauge!(names::FANOUT_PEERS).set(others as f64);
            tracing::info!(others, "processes listening to this one's live messages");
        }
    }
}

impl FanoutSender {
    /// Whether another process listens, i.e. whether messages are worth building and offering.
    pub fn wanted(&self) -> bool {
        self.peers.others.load(Ordering::Acquire) > 0
    }

    /// Queues `items` for publication; when the queue is full (Redis slow or away) they are
    /// dropped, counted and logged (at most every few seconds), and the caller goes on.
    pub fn offer(&self, items: Vec<FanoutItem>) {
        if items.is_empty() || !self.wanted() {
            return;
        }
        match self.tx.try_send(items) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(items)) => {
                metrics::counter!(names::FANOUT_DROPPED, "reason" => "queue_full")
                    .increment(items.len() as u64);
                let mut last = self
                    .last_warning
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    *last = Some(Instant::now());
                    tracing::warn!(
                        dropped = items.len(),
                        "fan-out queue full: live messages are not reaching other processes"
                    );
                }
            }
            // The publisher stopped (shutdown): other processes no longer hear from us.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// The publisher's side of the queue, handed to [`Fanout::start`].
pub struct FanoutQueue {
    rx: mpsc::Receiver<Vec<FanoutItem>>,
    peers: Peers,
}

#[cfg(test)]
impl FanoutQueue {
    /// The next batch offered, if one waits.
    pub(crate) fn try_recv(&mut self) -> Option<Vec<FanoutItem>> {
        self.rx.try_recv().ok()
    }
}

/// A bounded queue of at most `capacity` batches between the broadcaster and the publisher.
pub fn queue(capacity: usize) -> (FanoutSender, FanoutQueue) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    // Until the first count (unknown: the largest value), assume someone listens rather than
    // lose messages.
    let peers = Peers {
        others: Arc::new(AtomicUsize::new(usize::MAX)),
        subscribed: Arc::new(AtomicBool::new(false)),
    };
    (
        FanoutSender {
            tx,
            last_warning: Arc::new(std::sync::Mutex::new(None)),
            peers: peers.clone(),
        },
        FanoutQueue { rx, peers },
    )
}

/// The running fan-out of one process: its publisher and subscriber tasks, on a thread of
/// their own so that building, publishing and reading payloads never takes time from the
/// pipeline's actors.
pub struct Fanout {
    origin: String,
    stop: watch::Sender<bool>,
    published_all: tokio::sync::oneshot::Receiver<()>,
    arbiter: actix::ArbiterHandle,
}

impl Fanout {
    /// Starts publishing what `queue` receives on the configured channel and forwarding what
    /// other processes publish there to `broadcaster`. Never fails: connections are made
    /// (and remade) in the background.
    pub fn start(
        settings: &Settings,
        queue: FanoutQueue,
        broadcaster: Recipient<Remote>,
    ) -> Fanout {
        let origin = uuid::Uuid::new_v4().simple().to_string();
        let channel = settings.fanout_channel();
        let (stop, stopped) = watch::channel(false);
        let timeout = Duration::from_millis(settings.fanout.publish_timeout_ms.max(1));
        tracing::info!(%channel, %origin, "cross-process fan-out on");
        let arbiter = actix::Arbiter::new().handle();
        let (done, published_all) = tokio::sync::oneshot::channel();
        let url = settings.redis.url.clone();
        let (publish_channel, publish_origin, publish_stop) =
            (channel.clone(), origin.clone(), stopped.clone());
        let peers = queue.peers.clone();
        arbiter.spawn(async move {
            publish_loop(
                url,
                publish_channel,
                publish_origin,
                timeout,
                queue,
                publish_stop,
            )
            .await;
            let _ = done.send(());
        });
        arbiter.spawn(subscribe_loop(
            settings.redis.url.clone(),
            channel,
            origin.clone(),
            broadcaster,
            peers,
            stopped,
        ));
        Fanout {
            origin,
            stop,
            published_all,
            arbiter,
        }
    }

    /// This process's origin id in payloads.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Publishes what is still queued (for a short while at most), then stops both tasks
    /// and their thread.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_FLUSH, self.published_all).await;
        self.arbiter.stop();
    }
}

/// A client for the fan-out's own connection (the shared one must never wait behind a
/// large payload, and a subscribed connection can do nothing else).
fn client(url: &str, buffer: usize) -> anyhow::Result<Client> {
    let config = Config::from_url(url)?;
    Ok(Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = crate::streams::connect::CONNECT_TIMEOUT;
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| {
            p.default_command_timeout = crate::streams::connect::COMMAND_TIMEOUT;
            p.broadcast_channel_capacity = buffer;
        })
        .set_policy(ReconnectPolicy::new_exponential(
            0,
            50,
            crate::streams::connect::MAX_RECONNECT_DELAY_MS,
            2,
        ))
        .build()?)
}

/// Connects `client`, retrying with backoff until it answers or `stop` is set.
async fn connect(
    url: &str,
    buffer: usize,
    what: &str,
    stop: &mut watch::Receiver<bool>,
) -> Option<Client> {
    let mut failures = 0;
    loop {
        let attempt = async {
            let c = client(url, buffer)?;
            c.init().await?;
            anyhow::Ok(c)
        };
        match attempt.await {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::warn!(error = %format_args!("{e:#}"), what, "fan-out cannot reach Redis; retrying");
                let wait = backoff::ceiling(FIRST_CONNECT_BACKOFF, MAX_CONNECT_BACKOFF, failures);
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return None,
                }
            }
        }
    }
}

/// Publishes queued batches until stopped, then what is left in the queue.
async fn publish_loop(
    url: String,
    channel: String,
    origin: String,
    timeout: Duration,
    queue: FanoutQueue,
    mut stop: watch::Receiver<bool>,
) {
    let FanoutQueue { mut rx, peers } = queue;
    let Some(client) = connect(&url, 16, "publisher", &mut stop).await else {
        return;
    };
    let mut next = 0u64;
    let mut failing_since: Option<(Instant, u64)> = None;
    let mut probe = tokio::time::interval(PEER_PROBE);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut batches = Vec::new();
        let stopping = tokio::select! {
            batch = rx.recv() => match batch {
                Some(b) => { batches.push(b); false }
                None => true,
            },
            _ = probe.tick() => {
                let counted = tokio::time::timeout(
                    timeout,
                    client.pubsub_numsub::<Vec<Value>, _>(channel.as_str()),
                )
                .await;
                if let Ok(Ok(reply)) = counted {
                    if let Some(n) = reply.get(1).and_then(Value::as_u64) {
                        peers.set_subscribers(usize::try_from(n).unwrap_or(usize::MAX));
                    }
                }
                continue;
            }
            _ = stop.changed() => true,
        };
        // Whatever else is queued goes in the same payloads.
        while let Ok(b) = rx.try_recv() {
            batches.push(b);
        }
        for (payload, n) in payloads(&origin, &batches, &mut next) {
            let sent = tokio::time::timeout(
                timeout,
                client.publish::<i64, _, _>(channel.as_str(), payload),
            )
            .await;
            match sent {
                Ok(Ok(receivers)) => {
                    peers.set_subscribers(usize::try_from(receivers).unwrap_or(0));
                    metrics::counter!(names::FANOUT_PUBLISHED).increment(n);
                    if let Some((since, dropped)) = failing_since.take() {
                        tracing::info!(
                            dropped,
                            outage_secs = since.elapsed().as_secs_f64(),
                            "fan-out publishing again"
                        );
                    }
                }
                failed => {
                    metrics::counter!(names::FANOUT_DROPPED, "reason" => "publish_failed")
                        .increment(n);
                    match &mut failing_since {
                        Some((_, dropped)) => *dropped += n,
                        None => {
                            let error = match failed {
                                Ok(Err(e)) => e.to_string(),
                                _ => format!("no answer within {timeout:?}"),
                            };
                            tracing::warn!(
                                %error,
                                "fan-out publish failed: live messages are not reaching other \
                                 processes until Redis answers"
                            );
                            failing_since = Some((Instant::now(), n));
                        }
                    }
                }
            }
        }
        if stopping {
            let _ = client.quit().await;
            return;
        }
    }
}

/// What a receiver knows of each origin: the number of its next message, and when it was
/// last heard from.
#[derive(Default)]
struct Origins {
    next: HashMap<String, (u64, Instant)>,
    last_prune: Option<Instant>,
}

impl Origins {
    /// Records a payload of `n` messages numbered from `first`; returns how many of that
    /// origin's messages were missed just before it.
    fn see(&mut self, origin: &str, first: u64, n: u64) -> u64 {
        let now = Instant::now();
        if self.last_prune.is_none_or(|at| at.elapsed() >= ORIGIN_TTL) {
            self.next.retain(|_, (_, seen)| seen.elapsed() < ORIGIN_TTL);
            self.last_prune = Some(now);
        }
        match self.next.get_mut(origin) {
            Some((next, seen)) => {
                let missed = first.saturating_sub(*next);
                *next = (*next).max(first + n);
                *seen = now;
                missed
            }
            None => {
                self.next.insert(origin.to_string(), (first + n, now));
                0
            }
        }
    }
}

/// Receives every payload of the channel and forwards other processes' messages to the
/// broadcaster, until stopped.
async fn subscribe_loop(
    url: String,
    channel: String,
    origin: String,
    broadcaster: Recipient<Remote>,
    peers: Peers,
    mut stop: watch::Receiver<bool>,
) {
    let Some(client) = connect(&url, SUBSCRIBER_BUFFER, "subscriber", &mut stop).await else {
        return;
    };
    let own = own_prefix(&origin);
    let mut messages = client.message_rx();
    let mut reconnects = client.reconnect_rx();
    let mut errors = client.error_rx();
    let mut subscribed = false;
    let mut failed_attempts = 0u32;
    let mut origins = Origins::default();
    let mut last_missed_warning: Option<Instant> = None;
    let mut retry = tokio::time::interval(Duration::from_secs(1));
    loop {
        if !subscribed {
            let attempt =
                tokio::time::timeout(Duration::from_secs(2), client.subscribe(channel.as_str()))
                    .await;
            match attempt {
                Ok(Ok(())) => {
                    subscribed = true;
                    failed_attempts = 0;
                    peers.subscribed.store(true, Ordering::Release);
                    metrics::gauge!(names::FANOUT_SUBSCRIBED).set(1.0);
                    tracing::info!(%channel, "fan-out subscribed");
                }
                failed => {
                    failed_attempts += 1;
                    if failed_attempts == 1 {
                        let error = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "no answer".into(),
                        };
                        tracing::warn!(%error, "fan-out cannot subscribe yet; retrying every second");
                    }
                }
            }
        }
        tokio::select! {
            message = messages.recv() => match message {
                Ok(message) => {
                    let Some(bytes) = message.value.as_bytes() else { continue };
                    if bytes.starts_with(&own) {
                        continue;
                    }
                    let Some((from, first, items)) = parse(bytes) else {
                        metrics::counter!(names::FANOUT_DROPPED, "reason" => "invalid").increment(1);
                        tracing::debug!("fan-out payload not understood; skipped");
                        continue;
                    };
                    if from == origin {
                        continue;
                    }
                    let missed = origins.see(&from, first, items.len() as u64);
                    if missed > 0 {
                        metrics::counter!(names::FANOUT_DROPPED, "reason" => "missed").increment(missed);
                        if last_missed_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                            last_missed_warning = Some(Instant::now());
                            tracing::warn!(missed, origin = %from, "fan-out messages of another process were lost on the way");
                        }
                    }
                    metrics::counter!(names::FANOUT_RECEIVED).increment(items.len() as u64);
                    // Waiting here is what bounds memory: while the broadcaster is busy,
                    // payloads wait in the client's bounded buffer, then count as missed.
                    if broadcaster.send(Remote(items)).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(payloads)) => {
                    tracing::warn!(payloads, "fan-out subscriber fell behind; payloads skipped");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            reconnect = reconnects.recv() => {
                if reconnect.is_ok() {
                    // A new connection has no subscriptions; what was published while
                    // disconnected is gone (and shows up as missed).
                    tracing::info!("fan-out reconnected to Redis; subscribing again");
                    subscribed = false;
                    peers.subscribed.store(false, Ordering::Release);
                }
            }
            error = errors.recv() => {
                if let (Ok((error, _)), true) = (error, subscribed) {
                    // Once per outage: the client keeps reconnecting by itself.
                    subscribed = false;
                    peers.subscribed.store(false, Ordering::Release);
                    metrics::gauge!(names::FANOUT_SUBSCRIBED).set(0.0);
                    tracing::warn!(%error, "fan-out subscriber lost Redis; messages of other processes are missed until it is back");
                }
            }
            _ = retry.tick(), if !subscribed => {}
            _ = stop.changed() => {
                metrics::gauge!(names::FANOUT_SUBSCRIBED).set(0.0);
                let _ = client.quit().await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_count_exactly_the_messages_they_missed() {
        let mut origins = Origins::default();
        assert_eq!(origins.see("a", 100, 5), 0, "first sight counts nothing");
        assert_eq!(origins.see("a", 105, 3), 0);
        assert_eq!(origins.see("a", 120, 1), 12);
        assert_eq!(origins.see("b", 0, 1), 0);
        // A late payload is delivered and not counted twice.
        assert_eq!(origins.see("a", 110, 2), 0);
        assert_eq!(origins.see("a", 121, 1), 0);
    }
}

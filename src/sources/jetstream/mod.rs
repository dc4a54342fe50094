//! Bluesky through Jetstream: one WebSocket to a Jetstream service, subscribed to the
//! configured collections (and accounts), read into events batch by batch.
//!
//! The position is the service's `time_us` of the last message handled, stored with the
//! events it covers. A connection resumes from it, minus `rewind_secs` (positions are each
//! service's clock, and the services are not in step), so a restart or a switch of service
//! reads a few seconds twice and loses nothing. A lost or refused connection moves to the next
//! endpoint after a backoff with jitter. A service that answers the upgrade with 429 or 503
//! is not asked again before the wait it named ([`asked_wait`]: `Retry-After` in seconds or as
//! a date, or a rate-limit window's reset); the other endpoints are not held up by it (the
//! rotation passes over it while it waits). The connection is pinged every 30 s; one that
//! brings nothing for 100 s is opened again.
//!
//! Messages over 1 MiB are refused: the URL asks the service not to send them
//! (`maxMessageSizeBytes`), and a service that sends one anyway ends the connection on it.
//! Resuming from the position would read the same message again for ever, so the next
//! connection starts past it: a second after the position, two if it ends there again, then
//! four... (the message's own time is not known), and no later rewind goes back before that.
//! Each skip is counted as `too_large`.
//!
//! A message's `time_us` becomes the position only when it is plausible (see
//! `Position::take`): a message dated at the epoch would make the next connection replay
//! the service's whole retention, and one dated years ahead would skip to the live tail.

pub mod profiles;
pub mod records;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;
use url::Url;

use self::profiles::ProfileCache;
use self::records::{Filter, Outcome};
use super::asked_wait::{asked_wait, unsuccessful, Unsuccessful};
use super::sink::{Sink, FLUSH_EVERY};
use super::SourceContext;
use crate::config::JetstreamSettings;
use crate::egress::redact_url;
use crate::models::backoff::{self, Backoff};
use crate::models::Event;
use crate::telemetry::names;

/// Largest message accepted from the service; records are small, so anything bigger is
/// refused rather than buffered.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// How often the connection is pinged, so a quiet subscription still hears something.
const PING_EVERY: Duration = Duration::from_secs(30);

/// A connection that brought nothing this long (no message, no answer to three pings) is
/// taken as lost and opened again: a half-open connection or a service that went quiet would
/// otherwise hold the source, shown connected, for ever.
const SILENCE: Duration = Duration::from_secs(100);

/// How far ahead of this machine's clock a message's `time_us` may be and still become the
/// position: the services' clocks and this one's differ by seconds, not minutes.
const MAX_AHEAD_US: i64 = 5 * 60 * 1_000_000;

/// Reads Jetstream until the task is stopped; never returns on its own.
pub async fn run(ctx: SourceContext, settings: JetstreamSettings) -> anyhow::Result<()> {
    if settings.endpoints.is_empty() {
        anyhow::bail!("source {}: no Jetstream endpoint configured", ctx.name);
    }
    let mut filter = Filter::new(
        &settings,
        ctx.listening()?,
        ctx.product.clone(),
        ctx.channel.clone(),
    );
    let sink = Sink::for_source(&ctx).remembering(filter.remembers());
    filter.remember_kept(sink.remembered_retrying(&ctx).await);
    let mut out = Output {
        sink,
        pending: Vec::new(),
        since: None,
        profiles: settings
            .fetch_followers
            .then(|| -> anyhow::Result<ProfileCache> {
                let policy = ctx.egress_policy(&settings.allowed_private_networks)?;
                ProfileCache::new(&settings, policy)
            })
            .transpose()?,
    };
    let mut backoff = Backoff::new(Duration::from_secs(1), ctx.max_backoff);
    let connector = Connector::Rustls(Arc::new(tls_config()));
    let mut cursor: Option<i64> = out
        .sink
        .stored_cursor_retrying(&ctx)
        .await
        .and_then(|c| c.parse().ok());
    let mut endpoint = 0usize;
    let mut connections = 0u64;
    // Per endpoint, the instant before which it asked not to be asked again.
    let mut not_before: Vec<Option<tokio::time::Instant>> = vec![None; settings.endpoints.len()];
    let mut too_large = TooLarge::default();
    let rewind_us = i64::try_from(settings.rewind_secs)
        .unwrap_or(0)
        .saturating_mul(1_000_000);
    let mut position = Position {
        at: cursor,
        rewind_us,
        refused: 0,
    };
    loop {
        endpoint = next_free(&mut not_before, endpoint).await;
        let from = too_large.start(cursor, rewind_us);
        let url = subscribe_url(&settings, &settings.endpoints[endpoint], from)?;
        let mut ended_too_large = false;
        tracing::info!(source = %ctx.name, endpoint = %redact_url(&settings.endpoints[endpoint]), cursor = ?cursor, "connecting to Jetstream");
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            Some(config),
            false,
            Some(connector.clone()),
        );
        match tokio::time::timeout(Duration::from_secs(30), connect).await {
            Ok(Ok((mut socket, _))) => {
                if connections > 0 {
                    metrics::counter!(names::SOURCE_RECONNECTS, "source" => ctx.name.clone())
                        .increment(1);
                }
                connections += 1;
                ctx.set_connected(true);
                let ended = read(
                    &ctx,
                    &mut socket,
                    &mut out,
                    &mut filter,
                    &mut backoff,
                    &mut position,
                )
                .await;
                ctx.set_connected(false);
                match ended {
                    Ok(()) => tracing::warn!(source = %ctx.name, "Jetstream closed the connection"),
                    Err(e) if is_too_large(&e) => {
                        ctx.error("read", &e);
                        ended_too_large = true;
                    }
                    Err(e) => ctx.error("read", &e),
                }
            }
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                let status = response.status();
                let error = anyhow::anyhow!(
                    "Jetstream {} answered the upgrade with {status}",
                    redact_url(&settings.endpoints[endpoint])
                );
                let code = status.as_u16();
                match unsuccessful(code, asked_wait(code, response.headers(), Utc::now())) {
                    Unsuccessful::Wait(asked) => {
                        ctx.rate_limited(asked, &error);
                        not_before[endpoint] = Some(tokio::time::Instant::now() + asked.wait);
                    }
                    Unsuccessful::Refused => ctx.error("refused", &error),
                    Unsuccessful::Failed => ctx.error("connect", &error),
                }
            }
            Ok(Err(e)) => ctx.error("connect", &anyhow::Error::new(e)),
            Err(_) => ctx.error("connect", &anyhow::anyhow!("connecting timed out")),
        }
        // What was read is appended before reconnecting, so the position moves past it.
        out.flush(&ctx).await;
        position.report(&ctx);
        let handled = sink_cursor(&out.sink);
        if ended_too_large && too_large.ended_at(handled.or(cursor)) {
            out.sink.skipped("too_large");
        }
        if handled.is_some() {
            cursor = handled;
        }
        endpoint = (endpoint + 1) % settings.endpoints.len();
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

/// The first endpoint from `from` on (in rotation) that did not ask to be left alone for
/// longer; when every one did, the one free soonest, once it is.
async fn next_free(not_before: &mut [Option<tokio::time::Instant>], from: usize) -> usize {
    let now = tokio::time::Instant::now();
    let n = not_before.len();
    let free = (0..n)
        .map(|i| (from + i) % n)
        .find(|i| not_before[*i].is_none_or(|at| at <= now));
    let chosen = match free {
        Some(i) => i,
        None => {
            let (i, at) = (0..n)
                .filter_map(|i| not_before[i].map(|at| (i, at)))
                .min_by_key(|(_, at)| *at)
                .expect("every endpoint has a time");
            tokio::time::sleep_until(at).await;
            i
        }
    };
    not_before[chosen] = None;
    chosen
}

/// Whether a read ended on a message over [`MAX_MESSAGE_BYTES`].
fn is_too_large(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<tokio_tungstenite::tungstenite::Error>(),
        Some(tokio_tungstenite::tungstenite::Error::Capacity(_))
    )
}

/// Connections ended by a message too large to read, and the time reading may not start
/// before once one was passed over.
#[derive(Debug, Default)]
struct TooLarge {
    /// The position the last such end left, and how many ended there in a row.
    at: Option<(i64, u32)>,
    /// Past the last message passed over: a rewound resume stops here, or it would be read
    /// again.
    floor: Option<i64>,
}

impl TooLarge {
    /// Notes a connection ended by a too-large message with the position at `cursor`: the
    /// next one starts a second past it, two if it ended there before, then four... Without a
    /// position nothing is skipped (a connection without one reads the live tail).
    fn ended_at(&mut self, cursor: Option<i64>) -> bool {
        let Some(cursor) = cursor else { return false };
        let times = match self.at {
            Some((at, times)) if at == cursor => times + 1,
            _ => 1,
        };
        self.at = Some((cursor, times));
        let skip = backoff::ceiling(Duration::from_secs(1), Duration::MAX, times - 1);
        let floor = cursor.saturating_add(skip.as_micros() as i64);
        self.floor = Some(self.floor.map_or(floor, |f| f.max(floor)));
        true
    }

    /// Where a connection starts: the position rewound by `rewind_us`, not before the floor.
    fn start(&self, cursor: Option<i64>, rewind_us: i64) -> Option<i64> {
        let rewound = cursor?.saturating_sub(rewind_us);
        Some(self.floor.map_or(rewound, |f| rewound.max(f)).max(0))
    }
}

/// Where the messages read have moved the source, and how far a message's own time may
/// stray from it and still move it.
struct Position {
    /// The `time_us` of the last message taken as the position (stored, or to be with its
    /// batch).
    at: Option<i64>,
    /// How far before the position a connection resumes: messages that far back come again.
    rewind_us: i64,
    /// Messages since the last report whose time was not taken.
    refused: u64,
}

impl Position {
    /// The position a message at `time_us` leaves, as the sink stores it; `None`, and
    /// counted, when the time is not plausible at `now_us`, so the position stays where it
    /// was. The message itself is read all the same.
    fn take(&mut self, time_us: Option<i64>, now_us: i64) -> Option<String> {
        let us = time_us?;
        if !plausible(us, self.at, self.rewind_us, now_us) {
            self.refused += 1;
            return None;
        }
        self.at = Some(us);
        Some(us.to_string())
    }

    /// Logs the messages whose time was not taken since the last report, once a
    /// connection: a service with a wrong clock would send them by the thousand.
    fn report(&mut self, ctx: &SourceContext) {
        if self.refused > 0 {
            tracing::warn!(source = %ctx.name, messages = self.refused, position = ?self.at, "Jetstream messages with an implausible time_us did not move the position");
            self.refused = 0;
        }
    }
}

/// Whether a message's `time_us` may become the position `at`: not before what a resume
/// from `at` reads again anyway (`rewind_us` before it), nor more than [`MAX_AHEAD_US`] past
/// `now_us`, nor before the epoch. A position itself further ahead (stored before times
/// were checked) bounds nothing, or nothing would ever move it again.
fn plausible(time_us: i64, at: Option<i64>, rewind_us: i64, now_us: i64) -> bool {
    let latest = now_us.saturating_add(MAX_AHEAD_US);
    let earliest = at
        .filter(|at| *at <= latest)
        .map_or(0, |at| at.saturating_sub(rewind_us).max(0));
    (earliest..=latest).contains(&time_us)
}

/// The position of the last message handled (stored or about to be).
fn sink_cursor(sink: &Sink) -> Option<i64> {
    sink.cursor().and_then(|c| c.parse().ok())
}

/// Reads messages until the connection ends, appending them as batches fall due.
async fn read<S>(
    ctx: &SourceContext,
    socket: &mut S,
    out: &mut Output,
    filter: &mut Filter,
    backoff: &mut Backoff,
    position: &mut Position,
) -> anyhow::Result<()>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let mut heard = tokio::time::Instant::now();
    let mut pinged = heard;
    loop {
        tokio::select! {
            // What arrived is read before the clock is looked at.
            biased;
            message = socket.next() => {
                let Some(message) = message else { return Ok(()) };
                heard = tokio::time::Instant::now();
                let text = match message? {
                    Message::Text(text) => text,
                    Message::Binary(_) => {
                        out.sink.skipped("unsupported");
                        continue;
                    }
                    Message::Close(_) => return Ok(()),
                    _ => continue,
                };
                backoff.reset();
                let now = Utc::now();
                let read = records::read(text.as_str(), filter, now);
                let at = position.take(read.time_us, now.timestamp_micros());
                match read.outcome {
                    Outcome::Event(event) => out.event(*event, at),
                    Outcome::Skipped(reason) => out.skip(reason, at),
                }
                if out.due() {
                    out.flush(ctx).await;
                    // Time spent appending (Redis away, the group behind) is not the
                    // service's silence.
                    heard = tokio::time::Instant::now();
                }
            }
            _ = tick.tick() => {
                if heard.elapsed() > SILENCE {
                    anyhow::bail!(
                        "nothing came for {} s, pings unanswered: the connection is taken as lost",
                        SILENCE.as_secs()
                    );
                }
                if pinged.elapsed() >= PING_EVERY {
                    socket.send(Message::Ping(Default::default())).await?;
                    pinged = tokio::time::Instant::now();
                }
                if out.due() {
                    out.flush(ctx).await;
                    heard = tokio::time::Instant::now();
                }
            }
        }
    }
}

/// Where read events go: straight into the sink, or, when follower counts are looked up,
/// held until the batch is due, filled in, then handed to the sink in order.
struct Output {
    sink: Sink,
    /// Events (or skipped records' positions) waiting for their follower counts.
    pending: Vec<(Option<Event>, Option<String>)>,
    since: Option<std::time::Instant>,
    profiles: Option<ProfileCache>,
}

impl Output {
    fn event(&mut self, event: Event, position: Option<String>) {
        if self.profiles.is_some() {
            self.since.get_or_insert_with(std::time::Instant::now);
            self.pending.push((Some(event), position));
        } else {
            self.sink.push(event, position);
        }
    }

    fn skip(&mut self, reason: &'static str, position: Option<String>) {
        self.sink.skipped(reason);
        if self.pending.is_empty() {
            self.sink.advance(position);
        } else {
            self.pending.push((None, position));
        }
    }

    fn due(&self) -> bool {
        self.sink.due()
            || self.pending.len() >= crate::streams::producer::MAX_PIPELINE
            || self.since.is_some_and(|t| t.elapsed() >= FLUSH_EVERY)
    }

    /// Fills in follower counts, then appends the batch, retrying with backoff while Redis is
    /// away: reading stops meanwhile, and the service holds what follows.
    async fn flush(&mut self, ctx: &SourceContext) {
        if let Some(profiles) = self.profiles.as_mut() {
            let mut events: Vec<&mut Event> = self
                .pending
                .iter_mut()
                .filter_map(|(e, _)| e.as_mut())
                .collect();
            if let Err(e) = profiles.fill(&mut events).await {
                match e.asked {
                    Some(asked) => {
                        ctx.error(
                            "profiles",
                            &e.error.context(format!(
                                "lookups pause for {:.0} s as the API asked ({})",
                                asked.wait.as_secs_f64().ceil(),
                                asked.by
                            )),
                        );
                        ctx.count_wait(asked);
                    }
                    None => ctx.error("profiles", &e.error),
                }
            }
        }
        for (event, position) in self.pending.drain(..) {
            match event {
                Some(event) => self.sink.push(event, position),
                None => self.sink.advance(position),
            }
        }
        self.since = None;
        self.sink.flush_retrying(ctx).await;
        // Measured once a batch, from the position just stored.
        if let Some(us) = sink_cursor(&self.sink) {
            ctx.set_lag(Utc::now().timestamp_micros().saturating_sub(us));
        }
    }
}

/// The subscribe URL with the collections, accounts and the time to start from.
fn subscribe_url(
    settings: &JetstreamSettings,
    endpoint: &str,
    from: Option<i64>,
) -> anyhow::Result<Url> {
    let mut url = Url::parse(endpoint).map_err(|e| {
        anyhow::anyhow!(
            "Jetstream endpoint {} is not a URL: {e}",
            redact_url(endpoint)
        )
    })?;
    {
        let mut query = url.query_pairs_mut();
        for c in &settings.collections {
            query.append_pair("wantedCollections", c);
        }
        for did in &settings.accounts {
            query.append_pair("wantedDids", did);
        }
        query.append_pair("maxMessageSizeBytes", &MAX_MESSAGE_BYTES.to_string());
        if let Some(from) = from {
            query.append_pair("cursor", &from.to_string());
        }
    }
    Ok(url)
}

/// TLS with the web's root certificates compiled in (nothing is read from the machine or
/// fetched), on the ring provider the HTTP client uses too.
fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rotation_passes_over_an_endpoint_that_asked_to_wait() {
        let now = tokio::time::Instant::now();
        let hour = Duration::from_secs(3600);
        let mut not_before = vec![Some(now + hour), None, Some(now + hour)];
        assert_eq!(next_free(&mut not_before, 0).await, 1);
        assert_eq!(
            next_free(&mut not_before, 2).await,
            1,
            "past the end, round"
        );
        assert_eq!(not_before[0], Some(now + hour), "its wait still stands");
        let mut all_waiting = vec![Some(now + hour), Some(now + Duration::from_millis(20))];
        assert_eq!(
            next_free(&mut all_waiting, 0).await,
            1,
            "the one free soonest"
        );
        assert_eq!(all_waiting[1], None);
    }

    #[test]
    fn the_url_carries_collections_accounts_a_size_limit_and_the_start() {
        let s = JetstreamSettings {
            accounts: vec!["did:plc:a".into()],
            ..JetstreamSettings::default()
        };
        let url = subscribe_url(&s, "wss://js.example/subscribe", Some(5_000_000)).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs
                .iter()
                .filter(|(k, _)| k == "wantedCollections")
                .count(),
            3
        );
        assert!(pairs.contains(&("wantedDids".into(), "did:plc:a".into())));
        assert!(pairs.contains(&("cursor".into(), "5000000".into())));
        assert!(pairs.contains(&("maxMessageSizeBytes".into(), "1048576".into())));
        assert!(subscribe_url(&s, "not a url", None).is_err());
    }

    #[test]
    fn a_message_too_large_at_one_position_is_passed_over_by_a_growing_skip() {
        let second = 1_000_000;
        // Where a resume at `at` seconds starts, in whole seconds, rewinding 5 s.
        let start = |t: &TooLarge, at: i64| {
            t.start(Some(at * second), 5 * second).map(|s| {
                assert_eq!(s % second, 0, "{s} is a whole second");
                s / second
            })
        };
        let mut t = TooLarge::default();
        assert_eq!(start(&t, 10), Some(5));
        assert_eq!(
            t.start(None, 5 * second),
            None,
            "no position: the live tail"
        );
        assert!(t.ended_at(Some(10 * second)));
        assert_eq!(start(&t, 10), Some(11));
        assert!(t.ended_at(Some(10 * second)));
        assert_eq!(start(&t, 10), Some(12), "no progress: further");
        assert_eq!(
            start(&t, 14),
            Some(12),
            "progress: a rewind stops past what was passed over"
        );
        assert_eq!(start(&t, 30), Some(25));
        assert!(t.ended_at(Some(30 * second)));
        assert_eq!(start(&t, 30), Some(31), "a new position: one second again");
        assert!(!t.ended_at(None));
        for _ in 0..40 {
            t.ended_at(Some(40 * second));
        }
        assert_eq!(
            t.floor,
            Some(40 * second + (second << 20)),
            "the skip stops growing"
        );
    }

    #[test]
    fn only_a_plausible_time_moves_the_position() {
        let second = 1_000_000;
        let now = 1_783_175_888 * second;
        let rewind = 5 * second;
        let at = Some(now - 60 * second);
        assert!(
            plausible(now - 30 * second, at, rewind, now),
            "on from the position"
        );
        assert!(
            plausible(now - 63 * second, at, rewind, now),
            "within the rewind"
        );
        assert!(!plausible(now - 66 * second, at, rewind, now), "before it");
        assert!(!plausible(1, at, rewind, now), "the whole retention again");
        assert!(
            plausible(now + 60 * second, at, rewind, now),
            "a clock a minute ahead"
        );
        assert!(
            !plausible(now + 6 * 60 * second, at, rewind, now),
            "the live tail"
        );
        assert!(!plausible(i64::MAX, at, rewind, now));
        assert!(!plausible(-1, None, rewind, now));
        assert!(
            plausible(1, None, rewind, now),
            "no position: anything not ahead"
        );
        assert!(
            plausible(now, Some(i64::MAX), rewind, now),
            "a position stored far ahead bounds nothing"
        );
        assert!(!plausible(i64::MIN, Some(i64::MIN), i64::MAX, i64::MAX));

        let mut position = Position {
            at,
            rewind_us: rewind,
            refused: 0,
        };
        assert_eq!(position.take(Some(1), now), None);
        assert_eq!(position.take(Some(i64::MAX), now), None);
        assert_eq!(position.take(None, now), None);
        assert_eq!(
            (position.at, position.refused),
            (at, 2),
            "kept, and counted"
        );
        let next = now - 10 * second;
        assert_eq!(position.take(Some(next), now), Some(next.to_string()));
        assert_eq!(position.at, Some(next));
    }

    #[test]
    fn the_tls_configuration_builds_without_the_network() {
        let config = tls_config();
        assert!(!config.alpn_protocols.iter().any(|p| p.is_empty()));
    }
}

//! Mastodon through an instance's streaming API: one server-sent-events connection to a
//! timeline (federated, local, a hashtag or a list), read into events batch by batch.
//!
//! The stream has no position of its own, so the source keeps the newest status id it
//! handled and, on every (re)connection, first reads the REST timeline from that id on
//! (`min_id`, up to `backfill_pages` pages of 40) to fill what the stream missed while away;
//! what it reads twice is stored once. The backfill is a best effort beside the stream, which
//! is what the source is for: when the timeline cannot be read (an instance that refuses it,
//! fails, or asks for fewer requests) or holds more than `backfill_pages` pages, the stream
//! goes on and the statuses missed are reported as a gap (logged, counted, and shown in
//! `GET /api/v1/pipeline`), never made worse by dropping the stream.
//!
//! A refused token (401/403) on the stream is logged as such; a 429 or 503 waits for what the
//! instance asked ([`asked_wait`]: `Retry-After`, `X-RateLimit-Reset`), and the timeline is
//! not asked again before that either; other failures back off with jitter.
//!
//! The instance chooses where its redirects and its declared streaming host point, so every
//! request goes under the egress policy ([`crate::egress`]): only public addresses (and the
//! networks `allowed_private_networks` names), checked on the address connected to and on
//! every redirect hop, which the source follows itself. A refused target is counted as
//! `not_allowed` and told without anything being asked of it, so the pipeline status cannot
//! serve to probe the inside.

pub mod statuses;

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

use self::statuses::{Mapped, Status, Tags};
use super::asked_wait::{asked_wait, unsuccessful, AskedWait, Unsuccessful};
use super::filter::TextFilter;
use super::sink::{Sink, FLUSH_EVERY};
use super::sse::SseParser;
use super::SourceContext;
use crate::config::MastodonSettings;
use crate::egress::{redact_url, FetchError, TargetPolicy};
use crate::models::backoff::Backoff;
use crate::models::bounded::First;

/// Statuses per page of the REST timeline (the API's maximum).
const PAGE: usize = 40;
/// A stream silent this long is taken for dead (instances send a heartbeat every ~15 s).
const IDLE: Duration = Duration::from_secs(90);

/// Where the streaming API lives on an instance and on its streaming host.
const STREAMING_PATH: &str = "/api/v1/streaming";

/// A page of the REST timeline: each status kept as written and read on its own, so one odd
/// status does not lose the page, and a page's worth at most (an answer of 10,000 small
/// objects was built into a tree of values a hundred times its size).
type Page = First<Box<RawValue>, PAGE>;

/// What Pulse reads of `/api/v2/instance`: its streaming URL, and nothing else is built.
#[derive(Deserialize)]
struct InstanceV2 {
    #[serde(default)]
    configuration: Option<ConfigurationV2>,
}

#[derive(Deserialize)]
struct ConfigurationV2 {
    #[serde(default)]
    urls: Option<UrlsV2>,
}

#[derive(Deserialize)]
struct UrlsV2 {
    #[serde(default)]
    streaming: Option<String>,
}

/// What Pulse reads of `/api/v1/instance`.
#[derive(Deserialize)]
struct InstanceV1 {
    #[serde(default)]
    urls: Option<UrlsV1>,
}

#[derive(Deserialize)]
struct UrlsV1 {
    #[serde(default)]
    streaming_api: Option<String>,
}

/// The host and port a declared streaming URL names, the port its scheme's where it names
/// none.
fn streaming_host(declared: &str) -> Option<(String, u16)> {
    let declared = Url::parse(declared).ok()?;
    let port = declared.port().or(match declared.scheme() {
        "wss" | "https" => Some(443),
        "ws" | "http" => Some(80),
        _ => None,
    })?;
    Some((declared.host_str()?.to_string(), port))
}

/// Where a timeline streams from and is read back from.
struct Timeline {
    stream: Url,
    rest: Url,
}

fn timeline(s: &MastodonSettings) -> anyhow::Result<Timeline> {
    let base = Url::parse(&s.instance).map_err(|e| {
        anyhow::anyhow!(
            "Mastodon instance {} is not a URL: {e}",
            redact_url(&s.instance)
        )
    })?;
    let join = |path: &str| {
        base.join(path)
            .map_err(|e| anyhow::anyhow!("Mastodon instance {}: {e}", redact_url(&s.instance)))
    };
    let (mut stream, mut rest) = match s.timeline.as_str() {
        "public" => (
            join("api/v1/streaming/public")?,
            join("api/v1/timelines/public")?,
        ),
        "local" => (
            join("api/v1/streaming/public/local")?,
            join("api/v1/timelines/public")?,
        ),
        "hashtag" if !s.tag.is_empty() => (
            join("api/v1/streaming/hashtag")?,
            join(&format!("api/v1/timelines/tag/{}", urlencode(&s.tag)))?,
        ),
        "list" if !s.list.is_empty() => (
            join("api/v1/streaming/list")?,
            join(&format!("api/v1/timelines/list/{}", urlencode(&s.list)))?,
        ),
        other => anyhow::bail!(
            "Mastodon timeline {other:?}: use public, local, hashtag (with tag) or list (with list)"
        ),
    };
    match s.timeline.as_str() {
        "local" => {
            rest.query_pairs_mut().append_pair("local", "true");
        }
        "hashtag" => {
            stream.query_pairs_mut().append_pair("tag", &s.tag);
        }
        "list" => {
            stream.query_pairs_mut().append_pair("list", &s.list);
        }
        _ => {}
    }
    Ok(Timeline { stream, rest })
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// How a request failed.
enum Failure {
    Refused(anyhow::Error),
    RetryAfter(AskedWait, anyhow::Error),
    /// A target the egress policy refused (the instance, a redirect, its streaming host).
    NotAllowed(anyhow::Error),
    Other(anyhow::Error),
}

/// The failure of an answer that is not a success, as every source decides it
/// ([`unsuccessful`]): a wait the instance asked for first, whatever the status.
fn failure_of(status: StatusCode, headers: &HeaderMap, what: &str) -> Failure {
    let error = anyhow::anyhow!("{what} answered {status}");
    let code = status.as_u16();
    match unsuccessful(code, asked_wait(code, headers, Utc::now())) {
        Unsuccessful::Wait(asked) => Failure::RetryAfter(asked, error),
        Unsuccessful::Refused => Failure::Refused(error),
        Unsuccessful::Failed => Failure::Other(error),
    }
}

/// A request to `what` that got no answer: a target the policy refused, or another failure.
fn unanswered(error: FetchError, what: &str) -> Failure {
    let refused = matches!(error, FetchError::NotAllowed { .. });
    let error = super::fetch_error(error, what);
    if refused {
        Failure::NotAllowed(error)
    } else {
        Failure::Other(error)
    }
}

/// The `Location` of a redirect of the stream at `url`, when it stays on the streaming API
/// with the same scheme.
fn streaming_location(url: &Url, response: &reqwest::Response) -> Option<Url> {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url.join(l).ok())
        .filter(|t| t.scheme() == url.scheme() && t.path().starts_with(STREAMING_PATH))
}

struct Reader {
    ctx: SourceContext,
    settings: MastodonSettings,
    /// Where the instance's answers may send the source.
    policy: TargetPolicy,
    /// A client of `policy`: it follows no redirect and reaches no refused address.
    client: reqwest::Client,
    sink: Sink,
    filter: TextFilter,
    tags: Tags,
    /// The newest status id handled.
    cursor: Option<String>,
    /// Before this the instance asked for no request to the timeline.
    rest_not_before: Option<tokio::time::Instant>,
}

/// How a backfill ended without failing.
enum Backfilled {
    /// Everything newer than the cursor was read.
    Complete,
    /// It stopped with statuses left unread, for this reason.
    Cut(String),
}

/// Reads the instance until the task is stopped; returns only on a configuration error.
pub async fn run(ctx: SourceContext, settings: MastodonSettings) -> anyhow::Result<()> {
    let timeline = timeline(&settings)?;
    let host = timeline.stream.host_str().unwrap_or("mastodon").to_string();
    let policy = ctx.egress_policy(&settings.allowed_private_networks)?;
    // No deadline for a whole request: the stream stays open; the other requests have their
    // own timeouts.
    let client = policy
        .stream_client_builder(Duration::from_secs(10))
        .user_agent(concat!("pulse/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut backoff = Backoff::new(Duration::from_secs(1), ctx.max_backoff);
    let mut filter = TextFilter::new(
        ctx.listening()?,
        &settings.languages,
        settings.remembered_posts,
    );
    let sink = Sink::for_source(&ctx).remembering(filter.remembers());
    filter.remember_kept(sink.remembered_retrying(&ctx).await);
    let cursor = sink.stored_cursor_retrying(&ctx).await;
    let mut reader = Reader {
        filter,
        tags: Tags {
            host,
            product: ctx.product.clone(),
            channel: ctx.channel.clone(),
        },
        ctx,
        settings,
        policy,
        client,
        sink,
        cursor,
        rest_not_before: None,
    };
    let mut connections = 0u64;
    loop {
        let outcome = reader
            .connect_and_read(&timeline, &mut backoff, &mut connections)
            .await;
        reader.ctx.set_connected(false);
        let wait = match outcome {
            Ok(()) => backoff.next_wait(),
            Err(Failure::Refused(e)) => {
                reader.ctx.error("refused", &e);
                backoff.next_wait().max(Duration::from_secs(60))
            }
            Err(Failure::RetryAfter(asked, e)) => {
                reader.ctx.rate_limited(asked, &e);
                backoff.next_wait_at_least(asked.wait)
            }
            Err(Failure::NotAllowed(e)) => {
                reader.ctx.error("not_allowed", &e);
                backoff.next_wait()
            }
            Err(Failure::Other(e)) => {
                reader.ctx.error("read", &e);
                backoff.next_wait()
            }
        };
        reader.sink.flush_retrying(&reader.ctx).await;
        tokio::time::sleep(wait).await;
    }
}

impl Reader {
    /// Opens the stream at `url`, following one redirect to the instance's streaming host
    /// (Mastodon answers its own `/api/v1/streaming` with a 301 there when the two differ)
    /// with the token: only to the host the instance declares as its streaming host, on the
    /// streaming API and the same scheme, and only where the policy lets the source go (the
    /// hop is checked as every request is).
    async fn open_stream(&self, url: &Url) -> Result<reqwest::Response, Failure> {
        let mut url = url.clone();
        for hop in 0..2 {
            let request = self
                .authorized(self.client.get(url.clone()))
                .header("accept", "text/event-stream");
            let response = self
                .policy
                .send(request, hop > 0)
                .await
                .map_err(|e| unanswered(e, "the stream"))?;
            if hop == 0 && response.status().is_redirection() {
                let location = streaming_location(&url, &response);
                if let Some(target) = self.on_declared_host(&url, location).await {
                    tracing::info!(source = %self.ctx.name, url = %redact_url(target.as_str()), "the instance streams from another host");
                    url = target;
                    continue;
                }
            }
            if !response.status().is_success() {
                return Err(failure_of(
                    response.status(),
                    response.headers(),
                    "the stream",
                ));
            }
            return Ok(response);
        }
        Err(Failure::Other(anyhow::anyhow!(
            "the streaming host redirected the stream again"
        )))
    }

    /// `target`, when it is on the streaming host the instance of `stream` declares.
    async fn on_declared_host(&self, stream: &Url, target: Option<Url>) -> Option<Url> {
        let target = target?;
        let (host, port) = self.declared_streaming_host(stream).await?;
        (target.host_str() == Some(host.as_str()) && target.port_or_known_default() == Some(port))
            .then_some(target)
    }

    /// The streaming host and port the instance of `stream` declares
    /// (`configuration.urls.streaming` of `/api/v2/instance`, else `urls.streaming_api` of
    /// `/api/v1/instance`), as the stream's scheme reaches it. Asked under the policy like
    /// every request, without the token.
    async fn declared_streaming_host(&self, stream: &Url) -> Option<(String, u16)> {
        let v2 = self
            .instance_document::<InstanceV2>(stream, "/api/v2/instance")
            .await
            .and_then(|i| i.configuration?.urls?.streaming);
        if let Some(found) = v2.as_deref().and_then(streaming_host) {
            return Some(found);
        }
        self.instance_document::<InstanceV1>(stream, "/api/v1/instance")
            .await
            .and_then(|i| i.urls?.streaming_api)
            .as_deref()
            .and_then(streaming_host)
    }

    /// What Pulse reads of the instance document at `path`, or `None` when it cannot be had.
    async fn instance_document<T: DeserializeOwned>(&self, stream: &Url, path: &str) -> Option<T> {
        let url = stream.join(path).ok()?;
        let asked = self
            .policy
            .get_following_redirects(&self.client, &url, |r| r);
        let response = tokio::time::timeout(Duration::from_secs(30), asked)
            .await
            .ok()?
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        crate::sources::body::json(response).await.ok()
    }

    /// `request` with the access token, when there is one.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.settings.access_token.is_empty() {
            request
        } else {
            request.header(
                AUTHORIZATION,
                format!("Bearer {}", self.settings.access_token),
            )
        }
    }

    /// GETs `url` with the token under the policy, following redirects only through
    /// [`TargetPolicy::get_following_redirects`] (the token stays on the instance's origin);
    /// an answer other than success is a [`Failure`] naming `what`.
    async fn fetch(
        &self,
        url: &Url,
        timeout: Duration,
        what: &str,
    ) -> Result<reqwest::Response, Failure> {
        let response = self
            .policy
            .get_following_redirects(&self.client, url, |r| self.authorized(r).timeout(timeout))
            .await
            .map_err(|e| unanswered(e, what))?;
        if !response.status().is_success() {
            return Err(failure_of(response.status(), response.headers(), what));
        }
        Ok(response)
    }

    async fn connect_and_read(
        &mut self,
        timeline: &Timeline,
        backoff: &mut Backoff,
        connections: &mut u64,
    ) -> Result<(), Failure> {
        tracing::info!(source = %self.ctx.name, url = %redact_url(timeline.stream.as_str()), "connecting to Mastodon");
        // The idle limit holds from the request on: an instance that accepts the connection
        // and never answers is left like one that went silent.
        let response = tokio::time::timeout(IDLE, self.open_stream(&timeline.stream))
            .await
            .map_err(|_| {
                Failure::Other(anyhow::anyhow!(
                    "the stream did not answer within {} s",
                    IDLE.as_secs()
                ))
            })??;
        let opened = tokio::time::Instant::now();
        if *connections > 0 {
            metrics::counter!(crate::telemetry::names::SOURCE_RECONNECTS, "source" => self.ctx.name.clone())
                .increment(1);
        }
        *connections += 1;
        self.ctx.set_connected(true);
        // The stream is open (what arrives now waits in it): fill the gap since the last
        // status handled, then read on, whether the gap could be filled or not.
        if self.cursor.is_some() {
            self.backfill_or_report(&timeline.rest).await;
            self.sink.flush_retrying(&self.ctx).await;
        }
        let mut body = response.bytes_stream();
        let mut parser = SseParser::default();
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        let mut last_bytes = tokio::time::Instant::now();
        loop {
            tokio::select! {
                chunk = body.next() => {
                    let Some(chunk) = chunk else { return Ok(()) };
                    let chunk = chunk.map_err(|e| Failure::Other(e.without_url().into()))?;
                    last_bytes = tokio::time::Instant::now();
                    let (events, dropped) = parser.feed(&chunk);
                    // A stream that answers and closes at once (a proxy's page, one heartbeat)
                    // keeps backing off; one that brought statuses or stayed open does not.
                    if !events.is_empty() || opened.elapsed() >= IDLE {
                        backoff.reset();
                    }
                    for _ in 0..dropped {
                        self.sink.skipped("malformed");
                    }
                    for event in events {
                        self.handle(&event.event, &event.data);
                    }
                    if self.sink.due() {
                        self.sink.flush_retrying(&self.ctx).await;
                    }
                }
                _ = tick.tick() => {
                    if last_bytes.elapsed() > IDLE {
                        return Err(Failure::Other(anyhow::anyhow!("the stream went silent")));
                    }
                    if self.sink.due() {
                        self.sink.flush_retrying(&self.ctx).await;
                    }
                }
            }
        }
    }

    /// Reads what the stream missed from the REST timeline; what cannot be read is reported
    /// as a gap, and the caller reads the stream on either way.
    async fn backfill_or_report(&mut self, rest: &Url) {
        let now = tokio::time::Instant::now();
        if self.settings.backfill_pages == 0 {
            self.ctx.gap(
                "backfill_pages is 0: statuses posted while the stream was away were not read"
                    .into(),
                self.cursor.clone(),
            );
            return;
        }
        if let Some(until) = self.rest_not_before.filter(|t| *t > now) {
            self.ctx.backfill_failed(
                format!(
                    "the timeline was not read: the instance asked for no request to it for {:.0} s more",
                    (until - now).as_secs_f64().ceil()
                ),
                self.cursor.clone(),
            );
            return;
        }
        let reason = match self.backfill(rest).await {
            Ok(Backfilled::Complete) => return,
            Ok(Backfilled::Cut(reason)) => reason,
            Err(Failure::Refused(e)) => {
                format!("{e:#}: the instance refused the token (or its absence) for the timeline")
            }
            Err(Failure::RetryAfter(asked, e)) => {
                self.not_before(asked);
                format!(
                    "{e:#}; the timeline is not asked again for {:.0} s ({})",
                    asked.wait.as_secs_f64().ceil(),
                    asked.by
                )
            }
            Err(Failure::NotAllowed(e) | Failure::Other(e)) => format!("{e:#}"),
        };
        self.ctx.backfill_failed(reason, self.cursor.clone());
    }

    /// Remembers a wait the instance asked for before the next timeline request.
    fn not_before(&mut self, asked: AskedWait) {
        self.ctx.count_wait(asked);
        self.rest_not_before = Some(tokio::time::Instant::now() + asked.wait);
    }

    /// Reads the REST timeline from the cursor on, oldest first.
    async fn backfill(&mut self, rest: &Url) -> Result<Backfilled, Failure> {
        for pages in 1..=self.settings.backfill_pages {
            let Some(cursor) = self.cursor.clone() else {
                return Ok(Backfilled::Complete);
            };
            let mut url = rest.clone();
            url.query_pairs_mut()
                .append_pair("min_id", &cursor)
                .append_pair("limit", &PAGE.to_string());
            let response = self
                .fetch(&url, Duration::from_secs(30), "the timeline")
                .await?;
            let budget = asked_wait(response.status().as_u16(), response.headers(), Utc::now());
            let page: Page = crate::sources::body::json(response)
                .await
                .map_err(|e| Failure::Other(anyhow::Error::new(e).context("the timeline")))?;
            let n = page.len();
            let mut statuses: Vec<Status> = page
                .into_inner()
                .into_iter()
                .filter_map(|raw| {
                    serde_json::from_str(raw.get())
                        .map_err(|_| self.sink.skipped("malformed"))
                        .ok()
                })
                .collect();
            statuses::oldest_first(&mut statuses);
            for status in statuses {
                self.status(status);
            }
            if n < PAGE || self.cursor.as_deref() == Some(cursor.as_str()) {
                return Ok(Backfilled::Complete);
            }
            if let Some(asked) = budget {
                self.not_before(asked);
                return Ok(Backfilled::Cut(format!(
                    "the instance's request budget is nearly spent: the backfill stopped after {pages} pages, with more statuses left ({:.0} s to its reset)",
                    asked.wait.as_secs_f64().ceil()
                )));
            }
        }
        Ok(Backfilled::Cut(format!(
            "more statuses were missed than the {} pages of {PAGE} read back (backfill_pages)",
            self.settings.backfill_pages
        )))
    }

    fn handle(&mut self, event: &str, data: &str) {
        match event {
            "update" => match serde_json::from_str::<Status>(data) {
                Ok(status) => self.status(status),
                Err(_) => self.sink.skipped("malformed"),
            },
            "delete" => match statuses::deletion(data, &self.filter, &self.tags, Utc::now()) {
                Mapped::Events(events) => {
                    for event in events {
                        self.sink.push(event, None);
                    }
                }
                Mapped::Skipped(reason) => self.sink.skipped(reason),
            },
            "status.update" => self.sink.skipped("edited"),
            _ => self.sink.skipped("unsupported"),
        }
    }

    fn status(&mut self, status: Status) {
        let id = status.id.clone();
        let position = match &self.cursor {
            Some(c) if !statuses::newer(&id, c) => None,
            _ => Some(id),
        };
        if let Some(p) = &position {
            self.cursor = Some(p.clone());
        }
        match statuses::map(status, &mut self.filter, &self.tags, Utc::now()) {
            Mapped::Events(events) => {
                let last = events.len().saturating_sub(1);
                for (i, event) in events.into_iter().enumerate() {
                    // The position goes with the last event of the status.
                    let at = if i == last { position.clone() } else { None };
                    self.sink.push(event, at);
                }
            }
            Mapped::Skipped(reason) => {
                self.sink.skipped(reason);
                self.sink.advance(position);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timeline page is read a page's worth at most: 10,000 small objects were each built
    /// into a tree of values.
    #[test]
    fn a_timeline_page_keeps_a_pages_worth_of_statuses() {
        let long = format!("[{}]", vec![r#"{"":0}"#; 10_000].join(","));
        let page: Page = serde_json::from_str(&long).unwrap();
        assert_eq!(page.len(), PAGE);
        let status = r#"{"id":"1","content":"<p>Pulse</p>","account":{"acct":"a"}}"#;
        let page: Page = serde_json::from_str(&format!("[{status}, 7]")).unwrap();
        let read: Vec<serde_json::Result<Status>> = page
            .into_inner()
            .iter()
            .map(|raw| serde_json::from_str(raw.get()))
            .collect();
        assert_eq!(read[0].as_ref().unwrap().id, "1");
        assert!(read[1].is_err(), "one odd status, not the page");
    }

    /// What the instance documents declare is read from the members Pulse reads alone.
    #[test]
    fn the_declared_streaming_host_is_read_from_either_instance_document() {
        let v2: InstanceV2 = serde_json::from_str(
            r#"{"domain":"m.example","configuration":{"urls":{"streaming":"wss://s.m.example"},"statuses":{}},"rules":[{"id":"1"}]}"#,
        )
        .unwrap();
        let declared = v2.configuration.and_then(|c| c.urls?.streaming);
        assert_eq!(
            declared.as_deref().and_then(streaming_host),
            Some(("s.m.example".to_string(), 443))
        );
        let v1: InstanceV1 =
            serde_json::from_str(r#"{"urls":{"streaming_api":"ws://m.example:4000"},"stats":{}}"#)
                .unwrap();
        let declared = v1.urls.and_then(|u| u.streaming_api);
        assert_eq!(
            declared.as_deref().and_then(streaming_host),
            Some(("m.example".to_string(), 4000))
        );
        assert!(streaming_host("ftp://m.example").is_none());
        let none: InstanceV2 = serde_json::from_str(r#"{"configuration":null}"#).unwrap();
        assert!(none.configuration.is_none());
    }

    #[test]
    fn a_403_whose_window_is_spent_waits_for_the_reset() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", "600".parse().unwrap());
        match failure_of(StatusCode::FORBIDDEN, &headers, "the stream") {
            Failure::RetryAfter(asked, _) => assert!(asked.wait >= Duration::from_secs(600)),
            _ => panic!("a spent window's 403 taken for a refusal"),
        }
        let refused = failure_of(StatusCode::FORBIDDEN, &HeaderMap::new(), "the stream");
        assert!(matches!(refused, Failure::Refused(_)));
    }

    #[test]
    fn timelines_map_to_stream_and_rest_urls() {
        let mut s = MastodonSettings {
            instance: "https://m.example/".into(),
            ..MastodonSettings::default()
        };
        let t = timeline(&s).unwrap();
        assert_eq!(
            t.stream.as_str(),
            "https://m.example/api/v1/streaming/public"
        );
        s.timeline = "hashtag".into();
        s.tag = "pulse buds".into();
        let t = timeline(&s).unwrap();
        assert_eq!(
            t.stream.as_str(),
            "https://m.example/api/v1/streaming/hashtag?tag=pulse+buds"
        );
        assert_eq!(
            t.rest.as_str(),
            "https://m.example/api/v1/timelines/tag/pulse+buds"
        );
        s.timeline = "list".into();
        assert!(timeline(&s).is_err(), "a list needs its id");
        s.timeline = "local".into();
        assert!(timeline(&s)
            .unwrap()
            .rest
            .as_str()
            .ends_with("public?local=true"));
    }
}

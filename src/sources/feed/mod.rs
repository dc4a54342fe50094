//! RSS and Atom feeds, polled: each feed every `poll_secs` (or its own `ttl`, if longer),
//! with conditional requests (`If-None-Match`, `If-Modified-Since`), so an unchanged feed
//! costs one 304. The position is, per feed, the newest entry time handled, stored with the
//! events; entries up to it are not sent again, and those sent twice are stored once (ids
//! are the entries' own).

pub mod entries;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use self::entries::Tags;
use super::backoff::{retry_after, Backoff};
use super::filter::TextFilter;
use super::sink::Sink;
use super::SourceContext;
use crate::config::FeedSettings;

/// Largest feed document read.
const MAX_FEED_BYTES: usize = 10 << 20;

/// What is kept per feed between polls (and, for `newest`, across restarts).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct FeedState {
    newest: Option<DateTime<Utc>>,
    #[serde(skip)]
    etag: Option<String>,
    #[serde(skip)]
    last_modified: Option<String>,
}

struct Polled {
    url: String,
    state: FeedState,
    due: Instant,
    backoff: Backoff,
}

/// Polls the feeds until the task is stopped.
pub async fn run(ctx: SourceContext, settings: FeedSettings) -> anyhow::Result<()> {
    if settings.urls.is_empty() {
        anyhow::bail!("source {}: no feed URL configured (urls = [...])", ctx.name);
    }
    for url in &settings.urls {
        url::Url::parse(url).map_err(|e| anyhow::anyhow!("feed URL {url:?}: {e}"))?;
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("pulse/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut sink = Sink::new(ctx.redis.clone(), &ctx.stream, &ctx.name);
    let stored: BTreeMap<String, FeedState> = sink
        .stored_cursor_retrying(&ctx)
        .await
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let mut feeds: Vec<Polled> = settings
        .urls
        .iter()
        .map(|url| Polled {
            url: url.clone(),
            state: stored.get(url).cloned().unwrap_or_default(),
            due: Instant::now(),
            backoff: Backoff::new(Duration::from_secs(5), ctx.max_backoff),
        })
        .collect();
    let mut filter = TextFilter::new(&settings.keywords, &settings.languages, 0);
    let tags = Tags {
        product: ctx.product.clone(),
        channel: ctx.channel.clone(),
        max_text_chars: settings.max_text_chars.max(1),
    };
    let every = Duration::from_secs(settings.poll_secs.max(1));
    loop {
        let next = feeds
            .iter()
            .map(|f| f.due)
            .min()
            .unwrap_or_else(Instant::now);
        tokio::time::sleep_until(next).await;
        let mut failed = 0;
        for feed in feeds.iter_mut().filter(|f| f.due <= Instant::now()) {
            match poll(&client, feed).await {
                Ok(Some((parsed, ttl))) => {
                    let (events, skipped, newest) = entries::events(
                        parsed,
                        &feed.url,
                        feed.state.newest,
                        &mut filter,
                        &tags,
                        Utc::now(),
                    );
                    for reason in skipped {
                        sink.skipped(reason);
                    }
                    feed.state.newest = newest;
                    if let Some(at) = newest {
                        ctx.set_lag((Utc::now() - at).num_microseconds().unwrap_or(i64::MAX));
                    }
                    for event in events {
                        sink.push(event, None);
                    }
                    feed.due = Instant::now() + every.max(ttl);
                    feed.backoff.reset();
                }
                Ok(None) => {
                    feed.due = Instant::now() + every;
                    feed.backoff.reset();
                }
                Err((reason, e, at_least)) => {
                    failed += 1;
                    ctx.error(reason, &e);
                    feed.due = Instant::now() + feed.backoff.next_wait_at_least(at_least);
                }
            }
        }
        ctx.set_connected(failed == 0);
        let states: BTreeMap<&str, &FeedState> =
            feeds.iter().map(|f| (f.url.as_str(), &f.state)).collect();
        sink.advance(Some(serde_json::to_string(&states)?));
        sink.flush_retrying(&ctx).await;
    }
}

type PollError = (&'static str, anyhow::Error, Duration);

/// Fetches one feed: `None` when it did not change, else the parsed feed and its `ttl`.
async fn poll(
    client: &reqwest::Client,
    feed: &mut Polled,
) -> Result<Option<(feed_rs::model::Feed, Duration)>, PollError> {
    let mut request = client.get(&feed.url);
    if let Some(etag) = &feed.state.etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    if let Some(modified) = &feed.state.last_modified {
        request = request.header(IF_MODIFIED_SINCE, modified);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| ("connect", e.into(), Duration::ZERO))?;
    let status = response.status();
    if status.as_u16() == 304 {
        return Ok(None);
    }
    if !status.is_success() {
        let error = anyhow::anyhow!("feed {} answered {status}", feed.url);
        return Err(match status.as_u16() {
            401 | 403 => ("refused", error, Duration::ZERO),
            429 => ("rate_limited", error, retry_after(response.headers())),
            _ => ("http", error, Duration::ZERO),
        });
    }
    let header = |h: &HeaderMap, name| {
        h.get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, modified) = (
        header(response.headers(), ETAG),
        header(response.headers(), LAST_MODIFIED),
    );
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ("read", e.into(), Duration::ZERO))?
    {
        if body.len() + chunk.len() > MAX_FEED_BYTES {
            return Err((
                "too_large",
                anyhow::anyhow!("feed {} is larger than {MAX_FEED_BYTES} bytes", feed.url),
                Duration::ZERO,
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let parsed = feed_rs::parser::parse(body.as_slice()).map_err(|e| {
        (
            "malformed",
            anyhow::anyhow!("feed {} is not RSS or Atom: {e}", feed.url),
            Duration::ZERO,
        )
    })?;
    feed.state.etag = etag;
    feed.state.last_modified = modified;
    let ttl = Duration::from_secs(u64::from(parsed.ttl.unwrap_or(0)) * 60);
    Ok(Some((parsed, ttl)))
}

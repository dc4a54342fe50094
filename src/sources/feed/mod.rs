//! RSS and Atom feeds, polled: each feed every `poll_secs` (or its own `ttl`, if longer),
//! with conditional requests (`If-None-Match`, `If-Modified-Since`), so an unchanged feed
//! costs one 304. The position is, per feed, the entries of the last document read and the
//! newest entry time handled (see [`entries`]), stored with the events; entries handled are
//! not sent again, and those sent twice are stored once (ids are the entries' own where they
//! name the feed's own site, else the feed's; see [`entries`]).
//!
//! Feed URLs come from configuration but their servers choose where a redirect goes, so
//! feeds are fetched under the egress policy every source uses ([`crate::egress`]): only
//! public addresses (and the networks the source's `allowed_private_networks` names), checked
//! on every redirect hop and on the address actually connected to. A feed URL can carry
//! credentials (user information, a token in the query): it is shown and logged only
//! through [`redact_url`].

pub mod charset;
pub mod entries;
pub mod shape;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use chrono::Utc;
use reqwest::header::{
    HeaderMap, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use self::entries::Tags;
use super::asked_wait::{asked_wait, unsuccessful, AskedWait, Unsuccessful};
use super::body::BodyError;
use super::filter::TextFilter;
use super::sink::Sink;
use super::SourceContext;
use crate::config::FeedSettings;
use crate::egress::{redact_url, FetchError, TargetPolicy};
use crate::models::backoff::Backoff;

/// Largest feed document read.
const MAX_FEED_BYTES: usize = 10 << 20;

/// Longest wait a feed's own `ttl` asks for that is kept, as for any wait a server asks for
/// ([`asked_wait`]): `<ttl>4294967295</ttl>` does not stop a feed for millennia.
const MAX_TTL: Duration = Duration::from_secs(3600);

/// What is kept per feed between polls (and, for the position, across restarts).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct FeedState {
    #[serde(flatten)]
    position: entries::Position,
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
    /// Its last poll failed.
    failing: bool,
}

/// Polls the feeds until the task is stopped.
pub async fn run(ctx: SourceContext, settings: FeedSettings) -> anyhow::Result<()> {
    if settings.urls.is_empty() {
        anyhow::bail!("source {}: no feed URL configured (urls = [...])", ctx.name);
    }
    for url in &settings.urls {
        url::Url::parse(url).map_err(|e| anyhow::anyhow!("feed URL {}: {e}", redact_url(url)))?;
    }
    let policy = ctx.egress_policy(&settings.allowed_private_networks)?;
    let client = policy
        .client_builder(Duration::from_secs(60))
        .user_agent(concat!("pulse/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let mut sink = Sink::for_source(&ctx);
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
            failing: false,
        })
        .collect();
    let mut filter = TextFilter::new(ctx.listening()?, &settings.languages, 0);
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
        for index in 0..feeds.len() {
            if feeds[index].due > Instant::now() {
                continue;
            }
            let feed = &mut feeds[index];
            let read = match poll(&client, &policy, feed).await {
                Ok(Some((parsed, ttl, asked))) => {
                    let (events, skipped, position) = entries::events(
                        parsed,
                        &feed.url,
                        &feed.state.position,
                        &mut filter,
                        &tags,
                        Utc::now(),
                    );
                    for reason in skipped {
                        sink.skipped(reason);
                    }
                    if let Some(at) = position.newest {
                        ctx.set_lag((Utc::now() - at).num_microseconds().unwrap_or(i64::MAX));
                    }
                    feed.state.position = position;
                    for event in events {
                        sink.push(event, None);
                    }
                    feed.due = Instant::now() + every.max(ttl).max(budget(&ctx, feed, asked));
                    feed.backoff.reset();
                    feed.failing = false;
                    true
                }
                Ok(None) => {
                    feed.due = Instant::now() + every;
                    feed.backoff.reset();
                    feed.failing = false;
                    false
                }
                Err(failure) => {
                    feed.failing = true;
                    let at_least = match failure.asked {
                        Some(asked) => {
                            ctx.rate_limited(asked, &failure.error);
                            asked.wait
                        }
                        None => {
                            ctx.error(failure.reason, &failure.error);
                            Duration::ZERO
                        }
                    };
                    feed.due = Instant::now() + feed.backoff.next_wait_at_least(at_least);
                    false
                }
            };
            // A feed's posts are stored as soon as it is read, not after the round: a
            // feed later in the round that is slow or stops the task does not hold back
            // (or lose) those read before it.
            if read {
                store(&ctx, &mut sink, &feeds).await?;
            }
        }
        // Connected while every feed's last poll succeeded: one feed's success does not hide
        // (or clear the last error of) another that keeps failing.
        ctx.set_connected(feeds.iter().all(|f| !f.failing));
    }
}

/// Appends the events pushed so far with every feed's position: a feed that was not
/// modified or failed keeps the position stored before.
async fn store(ctx: &SourceContext, sink: &mut Sink, feeds: &[Polled]) -> anyhow::Result<()> {
    let cursor = {
        let states: BTreeMap<&str, &FeedState> =
            feeds.iter().map(|f| (f.url.as_str(), &f.state)).collect();
        serde_json::to_string(&states)?
    };
    sink.advance(Some(cursor));
    sink.flush_retrying(ctx).await;
    Ok(())
}

/// The wait a feed's answer asked for although it succeeded (a rate-limit window nearly
/// spent), logged and counted.
fn budget(ctx: &SourceContext, feed: &Polled, asked: Option<AskedWait>) -> Duration {
    match asked {
        Some(asked) => {
            ctx.budget_wait(asked, &format!("feed {}", redact_url(&feed.url)));
            asked.wait
        }
        None => Duration::ZERO,
    }
}

/// Why a poll failed: the class counted, the error (URLs redacted), and the wait the feed's
/// server asked for, if any.
struct PollError {
    reason: &'static str,
    error: anyhow::Error,
    asked: Option<AskedWait>,
}

fn failed(reason: &'static str, error: anyhow::Error) -> PollError {
    PollError {
        reason,
        error,
        asked: None,
    }
}

/// The failure of an answer with `status` and `headers` that is not a success, as every
/// source decides it ([`unsuccessful`]): a wait the server asked for first, whatever the
/// status.
fn poll_error(status: u16, headers: &HeaderMap, error: anyhow::Error) -> PollError {
    match unsuccessful(status, asked_wait(status, headers, Utc::now())) {
        Unsuccessful::Wait(asked) => PollError {
            reason: "rate_limited",
            error,
            asked: Some(asked),
        },
        Unsuccessful::Refused => failed("refused", error),
        Unsuccessful::Failed => failed("http", error),
    }
}

/// A parsed feed, its `ttl`, and a wait its server asked for.
type Fetched = (feed_rs::model::Feed, Duration, Option<AskedWait>);

/// Fetches one feed: `None` when it did not change, else the parsed feed, its `ttl` and any
/// wait its answer asked for.
async fn poll(
    client: &reqwest::Client,
    policy: &TargetPolicy,
    feed: &mut Polled,
) -> Result<Option<Fetched>, PollError> {
    let shown = redact_url(&feed.url);
    let url = url::Url::parse(&feed.url)
        .map_err(|e| failed("malformed", anyhow::anyhow!("feed URL {shown}: {e}")))?;
    let (etag, modified) = (feed.state.etag.clone(), feed.state.last_modified.clone());
    let response = policy
        .get_following_redirects(client, &url, |mut request| {
            if let Some(etag) = &etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &modified {
                request = request.header(IF_MODIFIED_SINCE, modified);
            }
            request
        })
        .await
        .map_err(|e| match e {
            FetchError::NotAllowed { .. } => failed(
                "not_allowed",
                anyhow::anyhow!(
                    "feed {shown}: {e}; a feed reaches internal addresses only in the networks its source's allowed_private_networks names"
                ),
            ),
            FetchError::BadRedirect(_) => failed("redirect", anyhow::anyhow!("feed {shown}: {e}")),
            FetchError::Request(e) => failed(
                "connect",
                anyhow::Error::new(e).context(format!("feed {shown}")),
            ),
        })?;
    let status = response.status();
    if status.as_u16() == 304 {
        return Ok(None);
    }
    if !status.is_success() {
        let error = anyhow::anyhow!("feed {shown} answered {status}");
        return Err(poll_error(status.as_u16(), response.headers(), error));
    }
    let asked = asked_wait(status.as_u16(), response.headers(), Utc::now());
    let header = |h: &HeaderMap, name| {
        h.get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, modified) = (
        header(response.headers(), ETAG),
        header(response.headers(), LAST_MODIFIED),
    );
    let content_type = header(response.headers(), CONTENT_TYPE);
    let base = link_base(response.url());
    let body = super::body::bytes(response, MAX_FEED_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(_) => failed(
                "too_large",
                anyhow::anyhow!("feed {shown} is larger than {MAX_FEED_BYTES} bytes"),
            ),
            e => failed(
                "read",
                anyhow::Error::new(e).context(format!("feed {shown}")),
            ),
        })?;
    let http_charset = content_type
        .as_deref()
        .and_then(charset::http_charset)
        .map(str::to_string);
    // Off the task's thread: a document of 10 MiB takes its time to read, and the task shares
    // its thread with the other sources and the actors started beside them.
    let parsed = tokio::task::spawn_blocking(move || parse(&body, http_charset.as_deref(), &base))
        .await
        .unwrap_or_else(|e| Err(format!("could not be read: {e}")))
        .map_err(|e| failed("malformed", anyhow::anyhow!("feed {shown} {e}")))?;
    feed.state.etag = etag;
    feed.state.last_modified = modified;
    let ttl = Duration::from_secs(u64::from(parsed.ttl.unwrap_or(0)) * 60).min(MAX_TTL);
    Ok(Some((parsed, ttl, asked)))
}

/// The URL a feed's relative links are read against: the one its document came from (after
/// redirects), without the user information and query that may hold its credentials (a
/// `#comments` link would carry them into the post) or a fragment.
fn link_base(url: &url::Url) -> url::Url {
    let mut base = url.clone();
    let _ = base.set_username("");
    let _ = base.set_password(None);
    base.set_query(None);
    base.set_fragment(None);
    base
}

/// Reads a feed document (decoded by [`charset::to_utf8`], bounded by [`shape::bounded`], its
/// entries' links made absolute against `base`), or says why it cannot be read. `feed-rs`
/// panics on some values it does not expect (an `itunes:duration` past `u64`, or in digits of
/// another script; media RSS `start`, `end` and `time` alike): such a document is malformed
/// like any other, and must not stop the task, which would fetch it again once restarted and
/// stop again.
fn parse(
    body: &[u8],
    http_charset: Option<&str>,
    base: &url::Url,
) -> Result<feed_rs::model::Feed, String> {
    let text = charset::to_utf8(body, http_charset);
    let text = shape::bounded(&text)?;
    if matches!(text, std::borrow::Cow::Owned(_)) {
        // A feed listed oldest first loses its newest entries here: said, so it can be seen.
        tracing::warn!(
            feed = %base,
            max_entries = shape::MAX_ENTRIES,
            "feed document cut to its first entries or shorter lists"
        );
    }
    let parser = entries::parser(Some(base.as_str()));
    match catch_unwind(AssertUnwindSafe(|| parser.parse(text.as_bytes()))) {
        Ok(Ok(mut feed)) => {
            absolute_links(&mut feed, base);
            Ok(feed)
        }
        Ok(Err(e)) => Err(format!("is not RSS or Atom: {e}")),
        Err(panic) => Err(format!(
            "holds a value the feed parser fails on: {}",
            crate::actors::analyzer::panic_message(&panic)
        )),
    }
}

/// Resolves against `base` the entry links the parser left relative: it resolves those of
/// RSS and Atom, not a JSON Feed's.
fn absolute_links(feed: &mut feed_rs::model::Feed, base: &url::Url) {
    let links = feed.entries.iter_mut().flat_map(|e| e.links.iter_mut());
    for link in links {
        if let Err(url::ParseError::RelativeUrlWithoutBase) = url::Url::parse(&link.href) {
            if let Ok(absolute) = base.join(&link.href) {
                link.href = absolute.into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_whose_window_is_spent_waits_for_the_reset() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", "600".parse().unwrap());
        let spent = poll_error(403, &headers, anyhow::anyhow!("403"));
        assert_eq!(spent.reason, "rate_limited");
        assert!(spent
            .asked
            .is_some_and(|a| a.wait >= Duration::from_secs(600)));
        let refused = poll_error(403, &HeaderMap::new(), anyhow::anyhow!("403"));
        assert_eq!((refused.reason, refused.asked), ("refused", None));
    }

    fn podcast(duration: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>Cast</title>
<item><guid>https://cast.example/1</guid><title>Episode one</title><itunes:duration>{duration}</itunes:duration></item>
</channel></rss>"#
        )
    }

    fn read(body: &[u8]) -> Result<feed_rs::model::Feed, String> {
        parse(body, None, &"https://news.example/rss".parse().unwrap())
    }

    #[test]
    fn a_value_the_feed_parser_panics_on_makes_the_feed_malformed() {
        for duration in ["99999999999999999999", "\u{661}\u{662}"] {
            let error = read(podcast(duration).as_bytes()).expect_err(duration);
            assert!(error.starts_with("holds a value"), "{error}");
        }
        let feed = read(podcast("1:02:03").as_bytes()).expect("an ordinary duration");
        assert_eq!(feed.entries.len(), 1);
        let error = read(b"not a feed").expect_err("not XML");
        assert!(error.starts_with("is not RSS or Atom"), "{error}");
    }

    /// The parser is handed a document only once [`shape::bounded`] has walked it: nested
    /// `xml:base` values it kept resolved against each other, and a JSON Feed's authors it
    /// copied into every item, ran the process out of memory.
    #[test]
    fn a_document_built_to_exhaust_memory_is_refused_or_cut() {
        let nested = format!(
            r#"<rss version="2.0"><channel><title>t</title>{}<item><title>i</title></item></channel></rss>"#,
            r#"<x xml:base="a/">"#.repeat(5_000)
        );
        let error = read(nested.as_bytes()).expect_err("nested 5,000 deep");
        assert!(error.starts_with("nests elements deeper"), "{error}");
        let authors: Vec<String> = (0..500).map(|i| format!(r#"{{"name":"a{i}"}}"#)).collect();
        let json = format!(
            r#"{{"version":"https://jsonfeed.org/version/1.1","title":"t","authors":[{}],"items":[{}]}}"#,
            authors.join(","),
            vec!["{}"; 500].join(",")
        );
        let feed = read(json.as_bytes()).expect("read with fewer authors");
        let records: usize = feed.entries.iter().map(|e| e.authors.len()).sum();
        assert!(
            records <= 500 * shape::MAX_PEOPLE,
            "{records} author records"
        );
    }

    /// One Windows-1252 quote (`\x92`) in a feed that says UTF-8 made the whole document
    /// unreadable: its other entries were lost with it.
    #[test]
    fn a_byte_outside_the_encoding_costs_one_character_not_the_feed() {
        let doc = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Desk</title>
<item><guid>https://news.example/1</guid><title>Pulse Buds</title><description>It\x92s recalled</description></item>
<item><guid>https://news.example/2</guid><title>Pulse Phone</title><description>Caf\xC3\xA9 review</description></item>
</channel></rss>";
        let feed = read(doc).expect("read despite the stray byte");
        let summaries: Vec<&str> = feed
            .entries
            .iter()
            .map(|e| e.summary.as_ref().unwrap().content.as_str())
            .collect();
        assert_eq!(summaries, ["It\u{fffd}s recalled", "Caf\u{e9} review"]);
    }

    /// A feed in Latin-1 that said so only in its HTTP answer was read as UTF-8 and refused.
    #[test]
    fn the_http_charset_decodes_a_feed_that_declares_none() {
        let doc = b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Desk</title>
<item><guid>https://news.example/1</guid><title>Caf\xE9</title></item></channel></rss>";
        let base = "https://news.example/rss".parse().unwrap();
        let feed = parse(doc, Some("ISO-8859-1"), &base).expect("read as Latin-1");
        assert_eq!(feed.entries[0].title.as_ref().unwrap().content, "Caf\u{e9}");
    }

    /// A relative link was kept as written, and stored as the post's URL.
    #[test]
    fn relative_links_resolve_against_the_feed_url() {
        let base = link_base(
            &"https://user:secret@news.example/feeds/rss?token=t#top"
                .parse()
                .unwrap(),
        );
        assert_eq!(base.as_str(), "https://news.example/feeds/rss");
        let rss = br#"<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title>
<item><title>Recall</title><link>/2026/11/recall</link></item>
<item><title>Review</title><link>review</link></item>
<item><title>Comments</title><link>#comments</link></item>
<item><title>Elsewhere</title><link>https://other.example/x</link></item>
</channel></rss>"#;
        let json = br#"{"version": "https://jsonfeed.org/version/1.1", "title": "Desk",
"items": [{"id": "1", "url": "/2026/11/recall", "content_text": "Recall"}]}"#;
        let links = |body: &[u8]| -> Vec<String> {
            parse(body, None, &base)
                .unwrap()
                .entries
                .iter()
                .map(|e| e.links[0].href.clone())
                .collect()
        };
        assert_eq!(
            links(rss),
            [
                "https://news.example/2026/11/recall",
                "https://news.example/feeds/review",
                "https://news.example/feeds/rss#comments",
                "https://other.example/x",
            ]
        );
        assert_eq!(links(json), ["https://news.example/2026/11/recall"]);
        // The post's URL, and the id of an entry named by its link, are the absolute link.
        let tags = entries::Tags {
            product: None,
            channel: None,
            max_text_chars: 100,
        };
        let mut filter = TextFilter::new(Default::default(), &[], 10);
        let (events, _, _) = entries::events(
            parse(rss, None, &base).unwrap(),
            "https://news.example/feeds/rss",
            &entries::Position::default(),
            &mut filter,
            &tags,
            Utc::now(),
        );
        let crate::models::Event::Post(post) = &events[0] else {
            panic!("not a post")
        };
        assert_eq!(
            post.url.as_deref(),
            Some("https://news.example/2026/11/recall")
        );
        assert_eq!(post.id, "feed:https://news.example/2026/11/recall");
    }
}

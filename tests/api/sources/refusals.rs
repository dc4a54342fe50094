//! Platforms that refuse: every connector waits out the `Retry-After` (seconds or HTTP date)
//! of a 429 or 503, and the reset of a spent rate-limit window, before its next request (the
//! time between the refusal and the next request is measured at a local stand-in for the
//! platform); and a Mastodon instance refusing the REST timeline leaves the stream alone, the
//! statuses missed reported as a gap in `GET /api/v1/pipeline`.

use crate::common;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::net::TcpStream;

use common::http_standin::{pairs, respond, respond_streaming, serve};
use common::jetstream::{post_message, JetstreamStandIn};
use common::*;
use pulse::config::{MastodonSettings, SourceKind, SourceSettings};
use serde_json::json;

use crate::sources::{
    assert_stores, feeds, loopback, named, reddit_posts, serve_source, serve_with, source,
    store_position,
};

use common::jetstream::Headers;

/// A request a stand-in saw: its route, when it arrived, and the headers it was answered with.
#[derive(Debug, Clone)]
struct Seen {
    route: String,
    at: SystemTime,
    answered: Vec<(&'static str, String)>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn seen(log: &Log, route: &str) -> Vec<Seen> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|s| s.route == route)
        .cloned()
        .collect()
}

/// A site on loopback that hands each request, with when it arrived, to `answer` (which
/// writes the reply and returns the waiting headers it sent) and logs it. Returns the site's
/// base URL and its log.
async fn logged_site<F, Fut>(mut answer: F) -> (String, Log)
where
    F: FnMut(String, TcpStream, SystemTime) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Vec<(&'static str, String)>> + Send,
{
    let log: Log = Default::default();
    let seen = log.clone();
    let address = serve(move |req, tcp| {
        let (route, at) = (req.route().to_string(), SystemTime::now());
        let answered = answer(route.clone(), tcp, at);
        let seen = seen.clone();
        async move {
            let answered = answered.await;
            seen.lock().unwrap().push(Seen {
                route,
                at,
                answered,
            });
        }
    })
    .await;
    (format!("http://{address}"), log)
}

/// Until when an answer with `headers`, sent at `at`, asked the client to wait: its
/// `Retry-After` (seconds or an HTTP date) or its `X-RateLimit-Reset` (seconds or an RFC 3339
/// timestamp), the later of the two.
fn asked_until(at: SystemTime, headers: &[(&'static str, String)]) -> SystemTime {
    let mut until = at;
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let asked = if name == "retry-after" {
            value
                .parse::<u64>()
                .map(|s| at + Duration::from_secs(s))
                .or_else(|_| httpdate::parse_http_date(value))
                .ok()
        } else if name == "x-ratelimit-reset" {
            value
                .parse::<u64>()
                .map(|s| at + Duration::from_secs(s))
                .ok()
                .or_else(|| {
                    chrono::DateTime::parse_from_rfc3339(value)
                        .ok()
                        .map(SystemTime::from)
                })
        } else {
            None
        };
        if let Some(asked) = asked {
            until = until.max(asked);
        }
    }
    assert!(until > at, "the answer asked for no wait: {headers:?}");
    until
}

/// Asserts that each refused request of `requests` (those answered with headers) was followed
/// by the next one no sooner than it asked; returns how many refusals were checked.
fn assert_waited_out(requests: &[Seen]) -> usize {
    let mut checked = 0;
    for pair in requests.windows(2) {
        let (refused, next) = (&pair[0], &pair[1]);
        if refused.answered.is_empty() {
            continue;
        }
        let until = asked_until(refused.at, &refused.answered);
        let waited = next.at.duration_since(refused.at).unwrap_or_default();
        assert!(
            next.at >= until,
            "asked to wait {:?} ({:?}), the next request came after {waited:?}",
            until.duration_since(refused.at).unwrap(),
            refused.answered
        );
        checked += 1;
    }
    checked
}

/// Asserts that `source` counted two refusals for its rate and the time it waited them out.
async fn assert_rate_limited_twice(app: &TestApp, source: &str) {
    assert_metrics_hold(
        app,
        &[
            format!(r#"pulse_source_errors_total{{source="{source}",reason="rate_limited"}} 2"#),
            format!(r#"pulse_source_rate_limit_wait_seconds_total{{source="{source}"}}"#),
        ],
    )
    .await;
}

/// Asserts `app` stored `posts` posts, its source having waited out the refusals of the first
/// two of the first three requests for `route`, and counted both.
async fn assert_waited_out_twice(app: &TestApp, log: &Log, posts: i64, route: &str, source: &str) {
    assert_stores(&app.env, posts, log).await;
    let asked = seen(log, route);
    assert_eq!(assert_waited_out(&asked[..3]), 2, "{asked:?}");
    assert_rate_limited_twice(app, source).await;
}

fn retry_after_2s(_: SystemTime) -> Vec<(&'static str, String)> {
    vec![("Retry-After", "2".into())]
}

fn retry_after_date_3s(now: SystemTime) -> Vec<(&'static str, String)> {
    vec![(
        "Retry-After",
        httpdate::fmt_http_date(now + Duration::from_secs(3)),
    )]
}

#[actix_rt::test]
async fn jetstream_waits_out_retry_after_on_a_refused_upgrade() {
    let refusals: Vec<(u16, Headers)> = vec![(429, retry_after_2s), (503, retry_after_date_3s)];
    let lines: Vec<String> = (0..3).map(post_message).collect();
    let standin = JetstreamStandIn::start_refusing(lines, None, Duration::ZERO, refusals).await;
    let env = TestEnv::new().await;
    let mut bsky = source(standin.endpoint.clone());
    bsky.name = "bsky-limited".into();
    let app = serve_with(env, bsky).await;
    let env = &app.env;
    assert_stores(env, 3, &standin.attempts).await;
    let attempts: Vec<Seen> = standin
        .attempts
        .lock()
        .unwrap()
        .iter()
        .map(|(at, answered)| Seen {
            route: "/subscribe".into(),
            at: *at,
            answered: answered.clone(),
        })
        .collect();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert_eq!(assert_waited_out(&attempts), 2, "{attempts:?}");
    assert_rate_limited_twice(&app, "bsky-limited").await;
    app.shutdown().await;
}

/// A Mastodon status of the streaming API's shape (see tests/fixtures/mastodon), id `id`.
fn status(id: u64) -> String {
    json!({
        "id": id.to_string(), "created_at": chrono::Utc::now().to_rfc3339(),
        "in_reply_to_id": null, "language": "en", "visibility": "public",
        "url": format!("https://mastodon.example/@ann/{id}"),
        "content": format!("<p>Status {id}: my Pulse Buds stopped charging</p>"),
        "spoiler_text": "", "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
        "reblog": null,
        "account": {"id": "1", "username": "ann", "acct": "ann", "followers_count": 12}
    })
    .to_string()
}

/// What a scripted Mastodon stand-in answers a stream request with.
#[derive(Clone, Copy)]
enum Stream {
    /// A refusal: the status line and its headers.
    Refuse(&'static str, Headers),
    /// `count` statuses from id `from` on; the connection then stays open, or closes.
    Statuses { from: u64, count: u64, close: bool },
}

/// What it answers a timeline request with.
#[derive(Clone, Copy)]
enum Timeline {
    Refuse(&'static str, Headers),
    Empty,
}

fn no_headers(_: SystemTime) -> Vec<(&'static str, String)> {
    Vec::new()
}

/// A Mastodon instance stand-in answering the public stream and timeline from scripts, one
/// answer a request (the last one repeated). Returns its base URL and what it saw.
async fn instance(streams: Vec<Stream>, timelines: Vec<Timeline>) -> (String, Log) {
    enum Script {
        Stream(Stream),
        Timeline(Timeline),
    }
    let (mut n_stream, mut n_timeline) = (0usize, 0usize);
    let (site, log) = logged_site(move |route, mut tcp, at| {
        let script = match route.as_str() {
            "/api/v1/streaming/public" => {
                n_stream += 1;
                Some(Script::Stream(
                    streams[(n_stream - 1).min(streams.len() - 1)],
                ))
            }
            "/api/v1/timelines/public" => {
                n_timeline += 1;
                Some(Script::Timeline(
                    timelines[(n_timeline - 1).min(timelines.len() - 1)],
                ))
            }
            _ => None,
        };
        async move {
            let mut answered = Vec::new();
            match script {
                Some(Script::Stream(Stream::Refuse(line, headers))) => {
                    answered = headers(at);
                    respond(&mut tcp, line, &pairs(&answered), "").await;
                }
                Some(Script::Stream(Stream::Statuses { from, count, close })) => {
                    tokio::spawn(async move {
                        respond_streaming(&mut tcp, "text/event-stream").await;
                        let body: String = (from..from + count)
                            .map(|id| format!("event: update\ndata: {}\n\n", status(id)))
                            .collect();
                        let _ =
                            tokio::io::AsyncWriteExt::write_all(&mut tcp, body.as_bytes()).await;
                        let open = if close { 200 } else { 120_000 };
                        tokio::time::sleep(Duration::from_millis(open)).await;
                    });
                }
                Some(Script::Timeline(Timeline::Refuse(line, headers))) => {
                    answered = headers(at);
                    respond(&mut tcp, line, &pairs(&answered), "{\"error\":\"no\"}").await;
                }
                Some(Script::Timeline(Timeline::Empty)) => {
                    let json = [("Content-Type", "application/json")];
                    respond(&mut tcp, "200 OK", &json, "[]").await;
                }
                None => respond(&mut tcp, "404 Not Found", &[], "").await,
            }
            answered
        }
    })
    .await;
    (format!("{site}/"), log)
}

/// A Pulse reading the Mastodon stand-in at `base` as source `name`, from the position an
/// earlier run left (110000000000000000): the connection backfills from it.
async fn serve_mastodon_resumed(name: &str, base: String) -> TestApp {
    let env = TestEnv::new().await;
    store_position(&env, name, "110000000000000000").await;
    serve_with(env, mastodon_source(name, base)).await
}

fn mastodon_source(name: &str, instance: String) -> SourceSettings {
    named(
        name,
        SourceKind::Mastodon(MastodonSettings {
            instance,
            allowed_private_networks: loopback(),
            ..Default::default()
        }),
    )
}

fn rate_limit_reset_2s(now: SystemTime) -> Vec<(&'static str, String)> {
    let reset = chrono::DateTime::<chrono::Utc>::from(now + Duration::from_secs(2));
    vec![
        ("X-RateLimit-Limit", "300".into()),
        ("X-RateLimit-Remaining", "0".into()),
        (
            "X-RateLimit-Reset",
            reset.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
    ]
}

#[actix_rt::test]
async fn mastodon_waits_out_retry_after_and_the_rate_limit_reset_on_the_stream() {
    let (base, log) = instance(
        vec![
            Stream::Refuse("503 Service Unavailable", retry_after_2s),
            Stream::Refuse("429 Too Many Requests", rate_limit_reset_2s),
            Stream::Statuses {
                from: 130_000_000_000_000_001,
                count: 3,
                close: false,
            },
        ],
        vec![Timeline::Empty],
    )
    .await;
    let app = serve_source(mastodon_source("masto-limited", base)).await;
    let env = &app.env;
    assert_stores(env, 3, &log).await;
    let streams = seen(&log, "/api/v1/streaming/public");
    assert_eq!(assert_waited_out(&streams), 2, "{streams:?}");
    assert_rate_limited_twice(&app, "masto-limited").await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_refused_mastodon_timeline_leaves_the_stream_open_and_reports_the_gap() {
    const N: u64 = 60;
    let (base, log) = instance(
        vec![Stream::Statuses {
            from: 120_000_000_000_000_001,
            count: N,
            close: false,
        }],
        vec![Timeline::Refuse("404 Not Found", no_headers)],
    )
    .await;
    let app = serve_mastodon_resumed("masto-gap", base).await;
    let env = &app.env;
    assert_stores(env, N as i64, &log).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.post_count().await, N as i64);
    assert_eq!(
        seen(&log, "/api/v1/streaming/public").len(),
        1,
        "the stream was opened once"
    );
    assert_eq!(seen(&log, "/api/v1/timelines/public").len(), 1);

    let (_, pipeline) = http_get(&app, "/api/v1/pipeline").await;
    let state = &pipeline["sources"][0];
    assert_eq!(state["connected"], true, "{pipeline}");
    assert_eq!(state["gaps"], 1, "{pipeline}");
    let gap = &state["last_gap"];
    assert!(
        gap["reason"].as_str().unwrap().contains("404"),
        "{pipeline}"
    );
    assert_eq!(gap["after"], "110000000000000000", "{pipeline}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(gap["at"].as_str().unwrap()).is_ok(),
        "{pipeline}"
    );
    assert_metrics_hold(
        &app,
        &[r#"pulse_source_backfill_failures_total{source="masto-gap"} 1"#],
    )
    .await;
    app.shutdown().await;
}

fn retry_after_3s(_: SystemTime) -> Vec<(&'static str, String)> {
    vec![("Retry-After", "3".into())]
}

#[actix_rt::test]
async fn a_rate_limited_mastodon_timeline_is_not_asked_again_before_its_retry_after() {
    // Each connection reads one status and is cut, so the source reconnects every second or
    // so; the timeline refuses the first backfill for three seconds.
    let (base, log) = instance(
        vec![Stream::Statuses {
            from: 140_000_000_000_000_001,
            count: 1,
            close: true,
        }],
        vec![
            Timeline::Refuse("429 Too Many Requests", retry_after_3s),
            Timeline::Empty,
        ],
    )
    .await;
    let app = serve_mastodon_resumed("masto-rest", base).await;
    let env = &app.env;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            seen(&log, "/api/v1/timelines/public").len() >= 2
        })
        .await,
        "{:?}",
        log.lock().unwrap()
    );
    let timelines = seen(&log, "/api/v1/timelines/public");
    assert_eq!(assert_waited_out(&timelines[..2]), 1, "{timelines:?}");
    // Connections went on meanwhile; their backfills were skipped and reported as gaps.
    let streams = seen(&log, "/api/v1/streaming/public");
    let between = streams
        .iter()
        .filter(|s| s.at > timelines[0].at && s.at < timelines[1].at)
        .count();
    assert!(between >= 1, "{streams:?}");
    let (_, pipeline) = http_get(&app, "/api/v1/pipeline").await;
    let gaps = pipeline["sources"][0]["gaps"].as_u64().unwrap();
    assert!(gaps >= 2, "{pipeline}");
    assert!(env.post_count().await >= 1);
    app.shutdown().await;
}

/// A Reddit stand-in: tokens always granted; `/r/pulsebuds/new` refused with a 503 and
/// `Retry-After: 2`, then with a 429 whose rate-limit window is spent and resets in two
/// seconds, then answered from tests/fixtures/reddit with budget to spare.
async fn reddit_limited() -> (String, Log) {
    let mut listings = 0;
    logged_site(move |route, mut tcp, at| {
        let listing = (route == "/r/pulsebuds/new").then(|| {
            listings += 1;
            listings
        });
        async move {
            let mut answered = Vec::new();
            match (route.as_str(), listing) {
                ("/api/v1/access_token", _) => {
                    let token =
                        r#"{"access_token":"tok","token_type":"bearer","expires_in":86400}"#;
                    let json = [("Content-Type", "application/json")];
                    respond(&mut tcp, "200 OK", &json, token).await;
                }
                (_, Some(listing)) => {
                    let (line, body) = match listing {
                        1 => {
                            answered = retry_after_2s(at);
                            ("503 Service Unavailable", "{}")
                        }
                        2 => {
                            answered = vec![
                                ("x-ratelimit-remaining", "0.0".into()),
                                ("x-ratelimit-used", "100".into()),
                                ("x-ratelimit-reset", "2".into()),
                            ];
                            ("429 Too Many Requests", "{}")
                        }
                        _ => ("200 OK", include_str!("../../fixtures/reddit/new.json")),
                    };
                    let mut headers = pairs(&answered);
                    if answered.is_empty() {
                        headers.extend([
                            ("x-ratelimit-remaining", "99.0"),
                            ("x-ratelimit-reset", "300"),
                        ]);
                    }
                    headers.push(("Content-Type", "application/json"));
                    respond(&mut tcp, line, &headers, body).await;
                }
                _ => respond(&mut tcp, "404 Not Found", &[], "{}").await,
            }
            answered
        }
    })
    .await
}

#[actix_rt::test]
async fn reddit_waits_out_retry_after_and_a_spent_rate_limit_window() {
    let (site, log) = reddit_limited().await;
    let app = serve_source(reddit_posts("reddit-limited", &site)).await;
    assert_waited_out_twice(&app, &log, 2, "/r/pulsebuds/new", "reddit-limited").await;
    app.shutdown().await;
}

/// A news site stand-in: `/news.rss` refused with a 503 and `Retry-After: 2`, then with a
/// 429 whose `Retry-After` is a date three seconds on, then answered from
/// tests/fixtures/feeds.
async fn news_limited() -> (String, Log) {
    let mut requests = 0;
    logged_site(move |_, mut tcp, at| {
        requests += 1;
        let request = requests;
        async move {
            let answered = match request {
                1 => retry_after_2s(at),
                2 => retry_after_date_3s(at),
                _ => Vec::new(),
            };
            let headers = pairs(&answered);
            match request {
                1 => respond(&mut tcp, "503 Service Unavailable", &headers, "").await,
                2 => respond(&mut tcp, "429 Too Many Requests", &headers, "").await,
                _ => {
                    let xml = [("Content-Type", "application/xml")];
                    let rss = include_str!("../../fixtures/feeds/news.rss");
                    respond(&mut tcp, "200 OK", &xml, rss).await
                }
            }
            answered
        }
    })
    .await
}

#[actix_rt::test]
async fn feeds_wait_out_retry_after_in_seconds_and_as_a_date() {
    let (site, log) = news_limited().await;
    let app = serve_source(feeds("news-limited", vec![format!("{site}/news.rss")])).await;
    assert_waited_out_twice(&app, &log, 2, "/news.rss", "news-limited").await;
    app.shutdown().await;
}

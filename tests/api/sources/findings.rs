//! One test per finding of the outside probe of the platform connectors, each against a local
//! stand-in for the platform:
//!
//! 1. every connector waits out the `Retry-After` (seconds or HTTP date) of a 429 or 503, and
//!    the reset of a spent rate-limit window, before its next request: the time between the
//!    refusal and the next request is measured at the stand-in;
//! 2. a Mastodon instance refusing the REST timeline leaves the stream alone, and the statuses
//!    missed are reported as a gap in `GET /api/v1/pipeline`;
//! 3. feeds reach no internal address, through a redirect either, unless allowed;
//! 4. credentials in a feed URL appear neither in the pipeline's `last_error` nor in the log.

use crate::common;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::http_standin::{listen, read_request, respond, respond_streaming};
use common::jetstream::{post_message, JetstreamStandIn};
use common::*;
use pulse::config::{MastodonSettings, RedditSettings, SourceKind, SourceSettings};
use serde_json::json;

use crate::sources::{assert_stores, feeds, named, reddit_source, serve_with, source};

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
    let metrics = metrics_text(app).await;
    for series in [
        format!(r#"pulse_source_errors_total{{source="{source}",reason="rate_limited"}} 2"#),
        format!(r#"pulse_source_rate_limit_wait_seconds_total{{source="{source}"}}"#),
    ] {
        assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    }
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

/// Headers as [`respond`] takes them.
fn pairs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn no_headers(_: SystemTime) -> Vec<(&'static str, String)> {
    Vec::new()
}

/// A Mastodon instance stand-in answering the public stream and timeline from scripts, one
/// answer a request (the last one repeated). Returns its base URL and what it saw.
async fn instance(streams: Vec<Stream>, timelines: Vec<Timeline>) -> (String, Log) {
    let (listener, address, _) = listen().await;
    let log: Log = Default::default();
    let seen = log.clone();
    tokio::spawn(async move {
        let (mut n_stream, mut n_timeline) = (0usize, 0usize);
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            let at = SystemTime::now();
            let route = req.route().to_string();
            let mut answered = Vec::new();
            match route.as_str() {
                "/api/v1/streaming/public" => {
                    let script = streams[n_stream.min(streams.len() - 1)];
                    n_stream += 1;
                    match script {
                        Stream::Refuse(line, headers) => {
                            answered = headers(at);
                            respond(&mut tcp, line, &pairs(&answered), "").await;
                        }
                        Stream::Statuses { from, count, close } => {
                            tokio::spawn(async move {
                                respond_streaming(&mut tcp, "text/event-stream").await;
                                let body: String = (from..from + count)
                                    .map(|id| format!("event: update\ndata: {}\n\n", status(id)))
                                    .collect();
                                let _ =
                                    tokio::io::AsyncWriteExt::write_all(&mut tcp, body.as_bytes())
                                        .await;
                                let open = if close { 200 } else { 120_000 };
                                tokio::time::sleep(Duration::from_millis(open)).await;
                            });
                        }
                    }
                }
                "/api/v1/timelines/public" => {
                    let script = timelines[n_timeline.min(timelines.len() - 1)];
                    n_timeline += 1;
                    match script {
                        Timeline::Refuse(line, headers) => {
                            answered = headers(at);
                            respond(&mut tcp, line, &pairs(&answered), "{\"error\":\"no\"}").await;
                        }
                        Timeline::Empty => {
                            let json = [("Content-Type", "application/json")];
                            respond(&mut tcp, "200 OK", &json, "[]").await;
                        }
                    }
                }
                _ => respond(&mut tcp, "404 Not Found", &[], "").await,
            }
            seen.lock().unwrap().push(Seen {
                route,
                at,
                answered,
            });
        }
    });
    (format!("http://{address}/"), log)
}

fn mastodon_source(name: &str, instance: String) -> SourceSettings {
    named(
        name,
        SourceKind::Mastodon(MastodonSettings {
            instance,
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
    let env = TestEnv::new().await;
    let app = serve_with(env, mastodon_source("masto-limited", base)).await;
    let env = &app.env;
    assert_stores(env, 3, &log).await;
    let streams = seen(&log, "/api/v1/streaming/public");
    assert_eq!(assert_waited_out(&streams), 2, "{streams:?}");
    assert_rate_limited_twice(&app, "masto-limited").await;
    app.shutdown().await;
}

/// Stores `cursor` as a source's position, as a run before this one would have.
async fn store_position(env: &TestEnv, source: &str, cursor: &str) {
    let redis = env.redis().await;
    let _: () = fred::prelude::KeysInterface::set(
        &redis,
        format!("{}:source:{source}:cursor", env.stream),
        cursor,
        None,
        None,
        false,
    )
    .await
    .unwrap();
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
    let env = TestEnv::new().await;
    // A position from an earlier run: the connection backfills from it.
    store_position(&env, "masto-gap", "110000000000000000").await;
    let app = serve_with(env, mastodon_source("masto-gap", base)).await;
    let env = &app.env;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            env.post_count().await >= N as i64
        })
        .await,
        "{} of {N} statuses stored: {:?}",
        env.post_count().await,
        log.lock().unwrap()
    );
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
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains(r#"pulse_source_backfill_failures_total{source="masto-gap"} 1"#),
        "{metrics}"
    );
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
    let env = TestEnv::new().await;
    store_position(&env, "masto-rest", "110000000000000000").await;
    let app = serve_with(env, mastodon_source("masto-rest", base)).await;
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
    let (listener, address, _) = listen().await;
    let log: Log = Default::default();
    let seen = log.clone();
    tokio::spawn(async move {
        let mut listings = 0;
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            let at = SystemTime::now();
            let mut answered = Vec::new();
            match req.route() {
                "/api/v1/access_token" => {
                    let token =
                        r#"{"access_token":"tok","token_type":"bearer","expires_in":86400}"#;
                    respond(
                        &mut tcp,
                        "200 OK",
                        &[("Content-Type", "application/json")],
                        token,
                    )
                    .await;
                }
                "/r/pulsebuds/new" => {
                    listings += 1;
                    let (line, body) = match listings {
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
            seen.lock().unwrap().push(Seen {
                route: req.route().to_string(),
                at,
                answered,
            });
        }
    });
    (format!("http://{address}"), log)
}

#[actix_rt::test]
async fn reddit_waits_out_retry_after_and_a_spent_rate_limit_window() {
    let (site, log) = reddit_limited().await;
    let env = TestEnv::new().await;
    let app = serve_with(
        env,
        reddit_source(
            "reddit-limited",
            &site,
            RedditSettings {
                comments: false,
                ..Default::default()
            },
        ),
    )
    .await;
    let env = &app.env;
    assert_stores(env, 2, &log).await;
    let listings = seen(&log, "/r/pulsebuds/new");
    assert_eq!(assert_waited_out(&listings[..3]), 2, "{listings:?}");
    assert_rate_limited_twice(&app, "reddit-limited").await;
    app.shutdown().await;
}

/// A news site stand-in: `/news.rss` refused with a 503 and `Retry-After: 2`, then with a
/// 429 whose `Retry-After` is a date three seconds on, then answered from
/// tests/fixtures/feeds.
async fn news_limited() -> (String, Log) {
    let (listener, address, _) = listen().await;
    let log: Log = Default::default();
    let seen = log.clone();
    tokio::spawn(async move {
        let mut requests = 0;
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            let at = SystemTime::now();
            requests += 1;
            let answered = match requests {
                1 => retry_after_2s(at),
                2 => retry_after_date_3s(at),
                _ => Vec::new(),
            };
            let headers = pairs(&answered);
            match requests {
                1 => respond(&mut tcp, "503 Service Unavailable", &headers, "").await,
                2 => respond(&mut tcp, "429 Too Many Requests", &headers, "").await,
                _ => {
                    let xml = [("Content-Type", "application/xml")];
                    respond(
                        &mut tcp,
                        "200 OK",
                        &xml,
                        include_str!("../../fixtures/feeds/news.rss"),
                    )
                    .await
                }
            }
            seen.lock().unwrap().push(Seen {
                route: req.route().to_string(),
                at,
                answered,
            });
        }
    });
    (format!("http://{address}"), log)
}

#[actix_rt::test]
async fn feeds_wait_out_retry_after_in_seconds_and_as_a_date() {
    let (site, log) = news_limited().await;
    let env = TestEnv::new().await;
    let app = serve_with(env, feeds("news-limited", vec![format!("{site}/news.rss")])).await;
    let env = &app.env;
    assert_stores(env, 2, &log).await;
    let polls = seen(&log, "/news.rss");
    assert_eq!(assert_waited_out(&polls[..3]), 2, "{polls:?}");
    assert_rate_limited_twice(&app, "news-limited").await;
    app.shutdown().await;
}

/// A feed server on loopback: `/news.rss` from tests/fixtures/feeds, `/moved.rss`
/// redirecting to it, and two feeds redirecting elsewhere (`/to-inside.rss` to `inside`,
/// `/to-metadata.rss` to the cloud metadata address). Returns its base URL and the paths it
/// was asked for.
async fn redirecting_site(inside: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let (listener, address, requests) = listen().await;
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            seen.lock().unwrap().push(req.path.clone());
            let to = |location: &str| vec![("Location", location.to_string())];
            let (line, location) = match req.route() {
                "/news.rss" => {
                    let xml = [("Content-Type", "application/xml")];
                    respond(
                        &mut tcp,
                        "200 OK",
                        &xml,
                        include_str!("../../fixtures/feeds/news.rss"),
                    )
                    .await;
                    continue;
                }
                "/moved.rss" => ("301 Moved Permanently", to("/news.rss")),
                "/to-inside.rss" => ("302 Found", to(&inside)),
                "/to-metadata.rss" => (
                    "307 Temporary Redirect",
                    to("http://169.254.169.254/latest/meta-data/"),
                ),
                _ => ("404 Not Found", Vec::new()),
            };
            respond(&mut tcp, line, &pairs(&location), "").await;
        }
    });
    (format!("http://{address}"), requests)
}

#[actix_rt::test]
async fn feeds_reach_no_internal_address_through_a_redirect_or_without_being_allowed() {
    // Something internal: another loopback address, which the source does not allow.
    let inside = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let inside_url = format!("http://{}/admin/feed.rss", inside.local_addr().unwrap());
    let inside_seen = Arc::new(Mutex::new(0usize));
    let counter = inside_seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = inside.accept().await {
            *counter.lock().unwrap() += 1;
            read_request(&mut tcp).await;
            respond(&mut tcp, "200 OK", &[], "").await;
        }
    });
    let (site, requests) = redirecting_site(inside_url).await;
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    let mut strict = feeds("news-strict", vec![format!("{site}/news.rss?from=strict")]);
    if let SourceKind::Feed(f) = &mut strict.kind {
        f.allowed_private_networks.clear();
    }
    settings.sources = vec![
        feeds(
            "news-redirects",
            vec![
                format!("{site}/moved.rss"),
                format!("{site}/to-inside.rss"),
                format!("{site}/to-metadata.rss"),
            ],
        ),
        strict,
    ];
    let app = spawn_app_with(env, settings).await;
    let env = &app.env;
    // A redirect within the allowed server is followed.
    assert_stores(env, 2, &requests).await;
    let refused = |source: &'static str| {
        let app = &app;
        async move {
            let text = metrics_text(app).await;
            let series =
                format!(r#"pulse_source_errors_total{{source="{source}",reason="not_allowed"}} "#);
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0)
        }
    };
    assert!(
        wait_until(Duration::from_secs(20), || async {
            refused("news-redirects").await >= 2.0 && refused("news-strict").await >= 1.0
        })
        .await,
        "{}",
        metrics_text(&app).await
    );
    assert_eq!(*inside_seen.lock().unwrap(), 0, "a redirect reached inside");
    // The strict source asked nothing of the loopback server.
    assert!(
        !requests
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.contains("from=strict")),
        "{:?}",
        requests.lock().unwrap()
    );
    let (_, pipeline) = http_get(&app, "/api/v1/pipeline").await;
    let errors: Vec<String> = pipeline["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["last_error"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        errors[0].starts_with("not_allowed: feed http://127.0.0.1:")
            && errors[0].contains("redirected to http://")
            && errors[0].contains("internal or reserved address")
            && errors[0].contains("allowed_private_networks"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("is an internal or reserved address, which is not allowed"),
        "{errors:?}"
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn credentials_in_a_feed_url_stay_out_of_the_pipeline_status_and_the_log() {
    // A feed server that checks the credentials and then fails, and a port nobody listens on.
    let (listener, address, _) = listen().await;
    let authorization = Arc::new(Mutex::new(Vec::new()));
    let seen = authorization.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            seen.lock().unwrap().push(req.header("authorization"));
            respond(&mut tcp, "500 Internal Server Error", &[], "").await;
        }
    });
    let closed = free_port();
    let secrets = [
        "hunter2pw",
        "t0kensecret",
        "k3ysecret",
        "acc3sssecret",
        "s1gsecret",
    ];
    let urls = [
        format!(
            "http://feeduser:hunter2pw@{address}/private.rss?token=t0kensecret&api_key=k3ysecret"
        ),
        format!("http://127.0.0.1:{closed}/feed.rss?access_token=acc3sssecret&sig=s1gsecret"),
    ];
    let env = TestEnv::new().await;
    let mut vars = env.env();
    vars.push((
        "PULSE_SOURCES".into(),
        format!(
            r#"[{{kind="feed", name="private-feeds", poll_secs=1, max_backoff_secs=1, allowed_private_networks=["127.0.0.1"], urls=["{}", "{}"]}}]"#,
            urls[0], urls[1]
        ),
    ));
    let server = PulseProcess::start(&vars);
    let errors = || async { metric(&server, "pulse_source_errors_total").await };
    assert!(
        wait_until(Duration::from_secs(30), || async { errors().await >= 4.0 }).await,
        "{}",
        server.log_text()
    );
    // The credentials were used: sent as basic authentication.
    assert!(
        authorization
            .lock()
            .unwrap()
            .iter()
            .any(|a| a == "Basic ZmVlZHVzZXI6aHVudGVyMnB3"),
        "{:?}",
        authorization.lock().unwrap()
    );
    let pipeline: serde_json::Value =
        reqwest::get(format!("http://{}/api/v1/pipeline", server.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let last_error = pipeline["sources"][0]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(last_error.contains("feed http://"), "{pipeline}");
    assert!(last_error.contains("=***"), "{pipeline}");
    let log = server.log_text();
    assert!(log.contains("private-feeds"), "{log}");
    for secret in secrets {
        assert!(!last_error.contains(secret), "{secret} in {last_error}");
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

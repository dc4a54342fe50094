//! Mastodon, RSS and Atom feeds, and Reddit, each against a stand-in replaying the platform's
//! own payloads.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A Mastodon instance stand-in on loopback. The first stream request is answered 429 with
/// `Retry-After: 1`; the second gets tests/fixtures/mastodon/stream-first.txt and is closed;
/// later ones get stream-second.txt and stay open. The public timeline answers the statuses
/// of timeline-missed.json newer than `min_id`. Returns the base URL and each request's
/// path and Authorization header.
async fn mastodon() -> (String, Arc<Mutex<Vec<String>>>) {
    let (listener, address, requests) = listen().await;
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut streams = 0;
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            let auth = req.header("authorization").to_lowercase();
            seen.lock()
                .unwrap()
                .push(format!("{} auth={auth}", req.path));
            match req.route() {
                "/api/v1/streaming/public" => {
                    streams += 1;
                    let n = streams;
                    tokio::spawn(async move {
                        if n == 1 {
                            respond(
                                &mut tcp,
                                "429 Too Many Requests",
                                &[("Retry-After", "1")],
                                "",
                            )
                            .await;
                            return;
                        }
                        respond_streaming(&mut tcp, "text/event-stream").await;
                        let body = if n == 2 {
                            include_str!("../../fixtures/mastodon/stream-first.txt")
                        } else {
                            include_str!("../../fixtures/mastodon/stream-second.txt")
                        };
                        let _ =
                            tokio::io::AsyncWriteExt::write_all(&mut tcp, body.as_bytes()).await;
                        if n > 2 {
                            tokio::time::sleep(Duration::from_secs(120)).await;
                        }
                    });
                }
                "/api/v1/timelines/public" => {
                    let min_id: u128 = req
                        .query("min_id")
                        .first()
                        .map(|v| v.parse().unwrap())
                        .unwrap_or(0);
                    let missed: Vec<serde_json::Value> = serde_json::from_str(include_str!(
                        "../../fixtures/mastodon/timeline-missed.json"
                    ))
                    .unwrap();
                    let newer: Vec<&serde_json::Value> = missed
                        .iter()
                        .filter(|s| s["id"].as_str().unwrap().parse::<u128>().unwrap() > min_id)
                        .collect();
                    let body = serde_json::to_string(&newer).unwrap();
                    respond(
                        &mut tcp,
                        "200 OK",
                        &[("Content-Type", "application/json")],
                        &body,
                    )
                    .await;
                }
                _ => respond(&mut tcp, "404 Not Found", &[], "").await,
            }
        }
    });
    (format!("http://{address}/"), requests)
}

#[actix_rt::test]
async fn a_mastodon_stream_backs_off_on_429_and_fills_the_gap_after_a_cut() {
    let (instance, requests) = mastodon().await;
    let app = serve_source(SourceSettings {
        channel: Some("social".into()),
        ..named(
            "masto",
            SourceKind::Mastodon(pulse::config::MastodonSettings {
                instance,
                access_token: "secret-token".into(),
                allowed_private_networks: loopback(),
                ..Default::default()
            }),
        )
    })
    .await;
    let env = &app.env;
    assert!(
        env.stored(4, Duration::from_secs(30)).await,
        "four statuses stored: {:?}",
        requests.lock().unwrap()
    );
    let pg = env.pg().await;
    let shares = || async {
        pg.scalar::<i64>("SELECT count(*) FROM engagements WHERE kind = 'share'", &[])
            .await
    };
    assert!(wait_until(Duration::from_secs(10), || async { shares().await >= 2 }).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.post_count().await, 4);
    assert_eq!(shares().await, 2);

    let reply = pg
        .row(
            "SELECT text, lang, parent_id, author_id, author_followers, channel FROM posts WHERE id = 'localhost:110000000000000002' OR id LIKE '%:110000000000000002'",
            &[],
        )
        .await;
    assert_eq!(
        reply.get::<_, String>(0),
        "@ann Meine auch, seit 14 Tagen kaputt. Furchtbar"
    );
    assert_eq!(reply.get::<_, Option<String>>(1).as_deref(), Some("de"));
    assert!(reply
        .get::<_, Option<String>>(2)
        .unwrap()
        .ends_with(":110000000000000001"));
    assert!(reply.get::<_, String>(3).starts_with("cid@"));
    assert_eq!(reply.get::<_, i64>(4), 7);
    assert_eq!(reply.get::<_, Option<String>>(5).as_deref(), Some("social"));

    let requests = requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .all(|r| r.ends_with("auth=bearer secret-token")),
        "{requests:?}"
    );
    let backfill = requests
        .iter()
        .find(|r| r.starts_with("/api/v1/timelines/public"))
        .expect("the gap was read back");
    assert!(
        backfill.contains("min_id=110000000000000003"),
        "{requests:?}"
    );

    assert_metrics_hold(
        &app,
        &[
            r#"pulse_source_errors_total{source="masto",reason="rate_limited"}"#,
            r#"pulse_source_events_total{source="masto",event="delete"} 1"#,
            r#"pulse_source_skipped_total{source="masto",reason="malformed"}"#,
        ],
    )
    .await;
    app.shutdown().await;
}

/// An instance whose streaming API is on another host: its `/api/v1/streaming` answers 301
/// there, as Mastodon does, and the stream is opened on that host with the token. A redirect
/// to a host the instance does not declare as its streaming host is not followed.
#[actix_rt::test]
async fn a_mastodon_stream_redirected_to_its_streaming_host_keeps_the_token() {
    let decoyed: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen_by_decoy = decoyed.clone();
    let decoy = serve(move |req, mut tcp| {
        seen_by_decoy
            .lock()
            .unwrap()
            .push(req.header("authorization").to_string());
        async move { respond(&mut tcp, "404 Not Found", &[], "").await }
    })
    .await;
    let tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = tokens.clone();
    let streaming = serve(move |req, mut tcp| {
        seen.lock()
            .unwrap()
            .push(format!("{} {}", req.route(), req.header("authorization")));
        async move {
            tokio::spawn(async move {
                respond_streaming(&mut tcp, "text/event-stream").await;
                let body = include_str!("../../fixtures/mastodon/stream-second.txt");
                let _ = tokio::io::AsyncWriteExt::write_all(&mut tcp, body.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(120)).await;
            });
        }
    })
    .await;
    let mut streams = 0;
    let instance = serve(move |req, mut tcp| {
        let json = "application/json".to_string();
        let (status, headers, body) = if req.route().starts_with("/api/v1/streaming") {
            streams += 1;
            let host = if streams == 1 { decoy } else { streaming };
            let location = format!("http://{host}{}", req.path);
            (
                "301 Moved Permanently",
                ("Location", location),
                String::new(),
            )
        } else if req.route() == "/api/v2/instance" {
            let declared =
                format!(r#"{{"configuration":{{"urls":{{"streaming":"ws://{streaming}"}}}}}}"#);
            ("200 OK", ("Content-Type", json), declared)
        } else {
            ("200 OK", ("Content-Type", json), "[]".to_string())
        };
        async move {
            respond(&mut tcp, status, &[(headers.0, &headers.1)], &body).await;
        }
    })
    .await;
    let app = serve_source(named(
        "masto",
        SourceKind::Mastodon(pulse::config::MastodonSettings {
            instance: format!("http://{instance}/"),
            access_token: "secret-token".into(),
            allowed_private_networks: loopback(),
            ..Default::default()
        }),
    ))
    .await;
    assert_stores(&app.env, 1, &tokens).await;
    assert_eq!(
        tokens.lock().unwrap()[0],
        "/api/v1/streaming/public Bearer secret-token"
    );
    assert!(
        decoyed.lock().unwrap().is_empty(),
        "the undeclared host was asked: {:?}",
        decoyed.lock().unwrap()
    );
    app.shutdown().await;
}

/// A news site stand-in: `/news.rss` and `/blog.atom` from tests/fixtures/feeds with an ETag
/// each (304 to a request that sends it back); the first request for the Atom feed fails
/// with a 500. Returns the base URL and each request's path and If-None-Match header.
async fn news_site() -> (String, Arc<Mutex<Vec<String>>>) {
    let (listener, address, requests) = listen().await;
    let seen = requests.clone();
    tokio::spawn(async move {
        let mut atom_requests = 0;
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            let etag_sent = req.header("if-none-match");
            seen.lock()
                .unwrap()
                .push(format!("{} if-none-match={etag_sent}", req.path));
            let (body, etag) = match req.route() {
                "/news.rss" => (include_str!("../../fixtures/feeds/news.rss"), "\"rss-1\""),
                "/blog.atom" => {
                    atom_requests += 1;
                    if atom_requests == 1 {
                        respond(&mut tcp, "500 Internal Server Error", &[], "").await;
                        continue;
                    }
                    (include_str!("../../fixtures/feeds/blog.atom"), "\"atom-1\"")
                }
                _ => {
                    respond(&mut tcp, "404 Not Found", &[], "").await;
                    continue;
                }
            };
            if etag_sent == etag {
                respond(&mut tcp, "304 Not Modified", &[("ETag", etag)], "").await;
            } else {
                let headers = [("Content-Type", "application/xml"), ("ETag", etag)];
                respond(&mut tcp, "200 OK", &headers, body).await;
            }
        }
    });
    (format!("http://{address}"), requests)
}

#[actix_rt::test]
async fn feeds_are_polled_conditionally_and_a_failing_feed_recovers() {
    let (site, requests) = news_site().await;
    let app = serve_source(feeds(
        "news",
        vec![format!("{site}/news.rss"), format!("{site}/blog.atom")],
    ))
    .await;
    let env = &app.env;
    assert_stores(env, 3, &requests).await;
    // Polled again, conditionally, and nothing stored twice.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            let r = requests.lock().unwrap();
            r.iter().any(|r| r == "/news.rss if-none-match=\"rss-1\"")
                && r.iter().any(|r| r == "/blog.atom if-none-match=\"atom-1\"")
        })
        .await,
        "{:?}",
        requests.lock().unwrap()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.post_count().await, 3);
    // Its id, a `urn:`, names no site: the post's id is the feed's own.
    let row = env
        .row(
            "SELECT text, lang, channel, author_id, url, id FROM posts WHERE url = 'https://blog.example/2026/11/pulse-buds'",
            &[],
        )
        .await;
    let id: String = row.get(5);
    assert!(id.starts_with("feed:127.0.0.1/"), "{id}");
    assert_eq!(
        row.get::<_, String>(0),
        "Pulse Buds Lite: seit 14 Tagen kaputt\nFurchtbar: der Akku hält keinen Tag."
    );
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("de"));
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("news"));
    assert_eq!(row.get::<_, String>(3), "Jana Beispiel");
    assert_eq!(
        row.get::<_, Option<String>>(4).as_deref(),
        Some("https://blog.example/2026/11/pulse-buds")
    );
    assert_source_errors(&app, "news", "http", 1).await;
    app.shutdown().await;
}

/// Two feeds of one source on two hosts (`localhost` and `127.0.0.1`): feed B lists, before
/// feed A has published it, an entry whose id is the URL of A's next entry, with B's text.
/// B's entry is stored as B's own post, and A's, read later, under its own id with its own
/// text.
#[actix_rt::test]
async fn a_feed_cannot_take_the_id_of_another_sites_entry() {
    let (listener, address, _) = listen().await;
    let a_entry = format!("http://localhost:{}/a/1235", address.port());
    let a_published = Arc::new(AtomicBool::new(false));
    let published = a_published.clone();
    let guid = a_entry.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            let item = |title: &str| {
                format!("<item><guid>{guid}</guid><link>{guid}</link><title>{title}</title></item>")
            };
            let items = match req.route() {
                "/b.rss" => item("Pulse Buds recall was a hoax"),
                "/a.rss" if published.load(Ordering::SeqCst) => item("Pulse Buds recalled"),
                _ => String::new(),
            };
            let doc = format!(
                r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Site</title>{items}</channel></rss>"#
            );
            let xml = [("Content-Type", "application/rss+xml")];
            respond(&mut tcp, "200 OK", &xml, &doc).await;
        }
    });
    let app = serve_source(feeds(
        "news",
        vec![
            format!("http://127.0.0.1:{}/b.rss", address.port()),
            format!("http://localhost:{}/a.rss", address.port()),
        ],
    ))
    .await;
    let env = &app.env;
    assert!(
        env.stored(1, Duration::from_secs(30)).await,
        "feed B's entry not stored"
    );
    a_published.store(true, Ordering::SeqCst);
    assert!(
        env.stored(2, Duration::from_secs(30)).await,
        "feed A's entry not stored beside B's: {} posts",
        env.post_count().await
    );
    let pg = env.pg().await;
    let a_id = format!("feed:{a_entry}");
    let a: String = pg
        .scalar("SELECT text FROM posts WHERE id = $1", &[&a_id])
        .await;
    assert_eq!(a, "Pulse Buds recalled");
    let b_id: String = pg
        .value_of("SELECT id FROM posts WHERE text = 'Pulse Buds recall was a hoax'")
        .await;
    assert!(b_id.starts_with("feed:127.0.0.1/"), "{b_id}");
    app.shutdown().await;
}

/// A feed that dates every item of a day alike, lists one dated seventy years ahead and one
/// with neither id, link nor date, then adds a third item of the same date: each is stored
/// once, and the item added after the one from the future is stored at all.
#[actix_rt::test]
async fn a_feed_of_items_that_share_a_date_or_come_from_the_future_is_read_whole_once() {
    let day = (chrono::Utc::now() - chrono::TimeDelta::hours(2)).to_rfc2822();
    let ahead = (chrono::Utc::now() + chrono::TimeDelta::days(365 * 70)).to_rfc2822();
    let item = |guid: &str, title: &str, date: &str| {
        format!("<item><guid isPermaLink=\"false\">{guid}</guid><title>{title}</title><pubDate>{date}</pubDate></item>")
    };
    let first = [
        item("a-1", "Pulse Buds recall announced", &day),
        item("a-2", "Pulse Buds firmware pulled", &day),
        item("a-9", "Dated in the future", &ahead),
        "<item><title>No id, no link, no date</title></item>".to_string(),
    ]
    .concat();
    let second = format!("{first}{}", item("a-3", "Refunds for Pulse Buds", &day));
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let site = serve(move |_req, mut tcp| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        let items = if n < 2 { first.clone() } else { second.clone() };
        async move {
            let doc = format!(
                r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Daily</title>{items}</channel></rss>"#
            );
            respond(&mut tcp, "200 OK", &[("Content-Type", "application/rss+xml")], &doc).await;
        }
    })
    .await;
    let app = serve_source(feeds("daily", vec![format!("http://{site}/daily.rss")])).await;
    let env = &app.env;
    assert!(
        env.stored(5, Duration::from_secs(30)).await,
        "{} of 5 posts stored after {} polls",
        env.post_count().await,
        polls.load(Ordering::SeqCst)
    );
    // Polled a few more times: nothing new, nothing twice.
    let after = polls.load(Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(20), || async {
            polls.load(Ordering::SeqCst) >= after + 2
        })
        .await
    );
    assert_eq!(env.post_count().await, 5);
    app.shutdown().await;
}

/// A podcast feed with an `itunes:duration` its parser panics on, read before a good feed of
/// the same source: it is counted malformed, and the good feed's posts still arrive.
#[actix_rt::test]
async fn a_feed_its_parser_panics_on_is_malformed_and_the_next_feed_is_still_read() {
    let cast = r#"<?xml version="1.0"?><rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>Cast</title>
<item><guid>https://cast.example/1</guid><title>Pulse Buds, episode one</title><itunes:duration>99999999999999999999</itunes:duration></item>
</channel></rss>"#;
    let site = serve(move |req, mut tcp| async move {
        let body = match req.route() {
            "/cast.rss" => cast,
            _ => include_str!("../../fixtures/feeds/news.rss"),
        };
        let xml = [("Content-Type", "application/rss+xml")];
        respond(&mut tcp, "200 OK", &xml, body).await;
    })
    .await;
    let app = serve_source(feeds(
        "podcasts",
        vec![
            format!("http://{site}/cast.rss"),
            format!("http://{site}/news.rss"),
        ],
    ))
    .await;
    let env = &app.env;
    env.assert_stored(2, Duration::from_secs(30), "posts of news.rss")
        .await;
    assert_metrics_hold(
        &app,
        &[r#"pulse_source_errors_total{source="podcasts",reason="malformed"}"#],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.post_count().await, 2, "nothing of the podcast stored");
    app.shutdown().await;
}

/// A feed in Latin-1 that names its encoding only in its HTTP answer
/// (`charset=ISO-8859-1`), its XML declaration naming none: it was read as UTF-8, its `é`
/// refused, and the whole feed lost with it.
#[actix_rt::test]
async fn a_feed_in_the_charset_its_answer_names_is_read_in_it() {
    let site = serve(move |_req, mut tcp| async move {
        let doc = b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Gadget Desk</title>
<item><guid isPermaLink=\"false\">cafe-1</guid><title>Caf\xE9</title><description>Pulse Buds at the caf\xE9</description></item>
</channel></rss>";
        let latin1 = [("Content-Type", "application/rss+xml; charset=ISO-8859-1")];
        respond_bytes(&mut tcp, "200 OK", &latin1, doc).await;
    })
    .await;
    let app = serve_source(feeds("latin", vec![format!("http://{site}/latin.rss")])).await;
    let env = &app.env;
    env.assert_stored(1, Duration::from_secs(30), "the Latin-1 feed's post")
        .await;
    let text: String = env.pg().await.value_of("SELECT text FROM posts").await;
    assert_eq!(text, "Caf\u{e9}\nPulse Buds at the caf\u{e9}");
    app.shutdown().await;
}

/// A Reddit stand-in: the token endpoint (checking the application's credentials) and the
/// two listings of r/pulsebuds from tests/fixtures/reddit. The first listing request is
/// refused 401 (an expired token); every listing answers that the request budget is spent
/// until a reset a second away. Returns the base URL and each request's method, path and
/// Authorization and User-Agent headers.
async fn reddit() -> (String, Arc<Mutex<Vec<String>>>) {
    let (listener, address, requests) = listen().await;
    let seen = requests.clone();
    tokio::spawn(async move {
        let (mut tokens, mut listings) = (0, 0);
        while let Ok((mut tcp, _)) = listener.accept().await {
            let req = read_request(&mut tcp).await;
            seen.lock().unwrap().push(format!(
                "{} {} auth={} ua={}",
                req.method,
                req.path,
                req.header("authorization"),
                req.header("user-agent")
            ));
            let json = [("Content-Type", "application/json")];
            match (req.method.as_str(), req.route()) {
                ("POST", "/api/v1/access_token") => {
                    // Basic base64("app-id:app-secret")
                    if req.header("authorization") != "Basic YXBwLWlkOmFwcC1zZWNyZXQ="
                        || !String::from_utf8_lossy(&req.body)
                            .contains("grant_type=client_credentials")
                    {
                        respond(&mut tcp, "401 Unauthorized", &json, "{}").await;
                    } else {
                        tokens += 1;
                        let token = format!(
                            r#"{{"access_token":"tok-{tokens}","token_type":"bearer","expires_in":86400,"scope":"*"}}"#
                        );
                        respond(&mut tcp, "200 OK", &json, &token).await;
                    }
                }
                ("GET", route @ ("/r/pulsebuds/new" | "/r/pulsebuds/comments")) => {
                    listings += 1;
                    if listings == 1 {
                        respond(&mut tcp, "401 Unauthorized", &json, "{}").await;
                        continue;
                    }
                    let body = if route.ends_with("new") {
                        include_str!("../../fixtures/reddit/new.json")
                    } else {
                        include_str!("../../fixtures/reddit/comments.json")
                    };
                    let headers = [
                        ("Content-Type", "application/json"),
                        ("x-ratelimit-remaining", "0.0"),
                        ("x-ratelimit-used", "100"),
                        ("x-ratelimit-reset", "1"),
                    ];
                    respond(&mut tcp, "200 OK", &headers, body).await;
                }
                _ => respond(&mut tcp, "404 Not Found", &json, "{}").await,
            }
        }
    });
    (format!("http://{address}"), requests)
}

/// A private subreddit (403) beside a public one: it is asked once and left alone for a
/// while, and the public one is polled at its own pace meanwhile.
#[actix_rt::test]
async fn a_private_subreddit_does_not_hold_up_the_others() {
    let (site, asked) = reddit_site(|route| {
        let json = vec![("Content-Type", "application/json")];
        match route {
            "/r/pulsebuds/new" => (
                "200 OK",
                json,
                include_str!("../../fixtures/reddit/new.json"),
            ),
            _ => (
                "403 Forbidden",
                json,
                r#"{"reason":"private","message":"Forbidden"}"#,
            ),
        }
    })
    .await;
    let app = serve_source(reddit_source(
        "reddit",
        &site,
        RedditSettings {
            subreddits: vec!["private".into(), "pulsebuds".into()],
            comments: false,
            ..Default::default()
        },
    ))
    .await;
    assert_stores(&app.env, 2, &asked).await;
    let count = |route: &str| asked.lock().unwrap().iter().filter(|r| *r == route).count();
    assert!(
        wait_until(Duration::from_secs(20), || async {
            count("/r/pulsebuds/new") >= 4
        })
        .await,
        "{:?}",
        asked.lock().unwrap()
    );
    assert_eq!(count("/r/private/new"), 1, "left alone after its 403");
    assert_source_errors(&app, "reddit", "unavailable", 1).await;
    app.shutdown().await;
}

/// A listing whose answer says the request budget is spent until a reset ten minutes away:
/// its posts were held in the batch through the wait and appended, with the position, only
/// after it, so a stop meanwhile lost them and the position both.
#[actix_rt::test]
async fn a_listing_read_before_a_budget_wait_is_appended_before_the_wait() {
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = asked.clone();
    let site = serve(move |req, mut tcp| {
        seen.lock().unwrap().push(req.route().to_string());
        async move {
            let json = ("Content-Type", "application/json");
            match req.route() {
                "/api/v1/access_token" => {
                    let token = r#"{"access_token":"t","token_type":"bearer","expires_in":86400}"#;
                    respond(&mut tcp, "200 OK", &[json], token).await
                }
                "/r/pulsebuds/new" => {
                    let spent = [
                        json,
                        ("x-ratelimit-remaining", "0.0"),
                        ("x-ratelimit-used", "100"),
                        ("x-ratelimit-reset", "600"),
                    ];
                    let body = include_str!("../../fixtures/reddit/new.json");
                    respond(&mut tcp, "200 OK", &spent, body).await
                }
                _ => respond(&mut tcp, "404 Not Found", &[json], "{}").await,
            }
        }
    })
    .await;
    let app = serve_source(reddit_source(
        "reddit-spent",
        &format!("http://{site}"),
        RedditSettings {
            comments: false,
            ..Default::default()
        },
    ))
    .await;
    let env = &app.env;
    assert_stores(env, 2, &asked).await;
    let key = format!("{}:source:reddit-spent:cursor", env.stream);
    let cursor: Option<String> = fred::prelude::KeysInterface::get(&env.redis().await, &key)
        .await
        .unwrap();
    assert!(
        cursor
            .as_deref()
            .is_some_and(|c| c.contains("/r/pulsebuds/new")),
        "{cursor:?}"
    );
    let listings = asked
        .lock()
        .unwrap()
        .iter()
        .filter(|r| *r == "/r/pulsebuds/new")
        .count();
    assert_eq!(listings, 1, "still waiting for the reset");
    app.shutdown().await;
}

#[actix_rt::test]
async fn reddit_posts_and_comments_arrive_within_the_request_budget() {
    let (site, requests) = reddit().await;
    let app = serve_source(reddit_source(
        "reddit",
        &site,
        RedditSettings {
            user_agent: "pulse-test/1 (by /u/pulse)".into(),
            ..Default::default()
        },
    ))
    .await;
    let env = &app.env;
    assert_stores(env, 3, &requests).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.post_count().await, 3, "the removed comment is left out");
    let comment = env
        .row(
            "SELECT text, parent_id, channel, likes, url FROM posts WHERE id = 'reddit:t1_c1'",
            &[],
        )
        .await;
    assert_eq!(
        comment.get::<_, String>(0),
        "Same, support told me to wait 14 days >:("
    );
    assert_eq!(
        comment.get::<_, Option<String>>(1).as_deref(),
        Some("reddit:t3_p2")
    );
    assert_eq!(
        comment.get::<_, Option<String>>(2).as_deref(),
        Some("r/pulsebuds")
    );
    assert_eq!(comment.get::<_, Option<i64>>(3), Some(12));

    let requests = requests.lock().unwrap().clone();
    let tokens = requests.iter().filter(|r| r.starts_with("POST")).count();
    assert_eq!(
        tokens, 2,
        "the refused token was renewed once: {requests:?}"
    );
    let listings: Vec<&String> = requests.iter().filter(|r| r.starts_with("GET")).collect();
    assert!(
        listings
            .iter()
            .all(|r| r.contains("auth=Bearer tok-") && r.contains("ua=pulse-test/1 (by /u/pulse)")),
        "{requests:?}"
    );
    assert!(
        listings
            .iter()
            .skip(1)
            .all(|r| r.contains("auth=Bearer tok-2")),
        "{requests:?}"
    );
    app.shutdown().await;
}

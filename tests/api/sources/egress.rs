//! Where sources may reach: no internal address, through a redirect (or, for Mastodon, a
//! declared streaming host) either, unless allowed; and a feed URL's credentials kept out of
//! the pipeline status and the log.

use crate::common;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http_standin::{pairs, read_request, respond, respond_streaming, serve};
use common::*;
use pulse::config::{MastodonSettings, SourceKind};

use crate::sources::{
    assert_stores, feeds, loopback, named, reddit_posts, reddit_site, serve_source, serve_with,
    store_position,
};

/// Something internal: a server on another loopback address, which the sources (allowed
/// 127.0.0.1 only) may not reach, counting the connections it gets. Its address and count.
async fn internal_server() -> (SocketAddr, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(0usize));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            *counter.lock().unwrap() += 1;
            read_request(&mut tcp).await;
            respond(&mut tcp, "200 OK", &[], "").await;
        }
    });
    (address, seen)
}

/// A feed server on loopback: `/news.rss` from tests/fixtures/feeds, `/moved.rss`
/// redirecting to it, and two feeds redirecting elsewhere (`/to-inside.rss` to `inside`,
/// `/to-metadata.rss` to the cloud metadata address). Returns its base URL and the paths it
/// was asked for.
async fn redirecting_site(inside: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let requests: Arc<Mutex<Vec<String>>> = Default::default();
    let seen = requests.clone();
    let address = serve(move |req, mut tcp| {
        seen.lock().unwrap().push(req.path.clone());
        let to = |location: &str| vec![("Location", location.to_string())];
        let redirect = match req.route() {
            "/news.rss" => None,
            "/moved.rss" => Some(("301 Moved Permanently", to("/news.rss"))),
            "/to-inside.rss" => Some(("302 Found", to(&inside))),
            "/to-metadata.rss" => Some((
                "307 Temporary Redirect",
                to("http://169.254.169.254/latest/meta-data/"),
            )),
            _ => Some(("404 Not Found", Vec::new())),
        };
        async move {
            match redirect {
                Some((line, location)) => respond(&mut tcp, line, &pairs(&location), "").await,
                None => {
                    let xml = [("Content-Type", "application/xml")];
                    let rss = include_str!("../../fixtures/feeds/news.rss");
                    respond(&mut tcp, "200 OK", &xml, rss).await;
                }
            }
        }
    })
    .await;
    (format!("http://{address}"), requests)
}

#[actix_rt::test]
async fn feeds_reach_no_internal_address_through_a_redirect_or_without_being_allowed() {
    let (inside, inside_seen) = internal_server().await;
    let (site, requests) = redirecting_site(format!("http://{inside}/admin/feed.rss")).await;
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
    let authorization = Arc::new(Mutex::new(Vec::new()));
    let seen = authorization.clone();
    let address = serve(move |req, mut tcp| {
        seen.lock().unwrap().push(req.header("authorization"));
        async move { respond(&mut tcp, "500 Internal Server Error", &[], "").await }
    })
    .await;
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

/// A Mastodon instance on loopback that points the source inside, at `inside`: its first
/// stream request is redirected to the streaming host it declares there, and its timeline is
/// redirected there too; later streams get tests/fixtures/mastodon/stream-second.txt and stay
/// open. Its base URL.
async fn instance_pointing_inside(inside: SocketAddr) -> String {
    let mut streams = 0;
    let address = serve(move |req, mut tcp| {
        let route = req.route().to_string();
        if route == "/api/v1/streaming/public" {
            streams += 1;
        }
        let first_stream = streams == 1;
        async move {
            let json = [("Content-Type", "application/json")];
            match route.as_str() {
                "/api/v1/streaming/public" if first_stream => {
                    let location = format!("http://{inside}/api/v1/streaming/public");
                    let headers = [("Location", location.as_str())];
                    respond(&mut tcp, "301 Moved Permanently", &headers, "").await;
                }
                "/api/v1/streaming/public" => {
                    tokio::spawn(async move {
                        respond_streaming(&mut tcp, "text/event-stream").await;
                        let body = include_str!("../../fixtures/mastodon/stream-second.txt");
                        let _ =
                            tokio::io::AsyncWriteExt::write_all(&mut tcp, body.as_bytes()).await;
                        tokio::time::sleep(Duration::from_secs(120)).await;
                    });
                }
                "/api/v2/instance" => {
                    let declared = format!(
                        r#"{{"configuration":{{"urls":{{"streaming":"ws://{inside}"}}}}}}"#
                    );
                    respond(&mut tcp, "200 OK", &json, &declared).await;
                }
                "/api/v1/timelines/public" => {
                    let location = format!("http://{inside}/latest/meta-data/");
                    let headers = [("Location", location.as_str())];
                    respond(&mut tcp, "302 Found", &headers, "").await;
                }
                _ => respond(&mut tcp, "404 Not Found", &[], "").await,
            }
        }
    })
    .await;
    format!("http://{address}/")
}

#[actix_rt::test]
async fn mastodon_reaches_no_internal_address_through_its_streaming_host_or_a_redirect() {
    let (inside, inside_seen) = internal_server().await;
    let instance = instance_pointing_inside(inside).await;
    let env = TestEnv::new().await;
    // A position from an earlier run: the connection that opens backfills from it.
    store_position(&env, "masto-egress", "110000000000000000").await;
    let source = named(
        "masto-egress",
        SourceKind::Mastodon(MastodonSettings {
            instance,
            allowed_private_networks: loopback(),
            ..Default::default()
        }),
    );
    let app = serve_with(env, source).await;
    let gap = || async {
        let (_, pipeline) = http_get(&app, "/api/v1/pipeline").await;
        pipeline["sources"][0]["last_gap"]["reason"]
            .as_str()
            .map(str::to_string)
    };
    // The stream is read from the instance itself once its streaming host was refused; the
    // timeline's redirect is refused and the statuses it held are a gap.
    assert!(
        app.env.stored(1, Duration::from_secs(30)).await,
        "{:?}",
        gap().await
    );
    assert!(
        wait_until(Duration::from_secs(20), || async { gap().await.is_some() }).await,
        "no gap reported"
    );
    let reason = gap().await.unwrap_or_default();
    assert!(
        reason.starts_with("the timeline: ")
            && reason.contains(&format!("redirected to http://{inside}/latest/meta-data/"))
            && reason.contains("an internal or reserved address, which is not allowed")
            && reason.contains("allowed_private_networks"),
        "{reason}"
    );
    assert_metrics_hold(
        &app,
        &[r#"pulse_source_errors_total{source="masto-egress",reason="not_allowed"}"#],
    )
    .await;
    assert_eq!(*inside_seen.lock().unwrap(), 0, "the source reached inside");
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_reddit_listing_redirected_to_the_metadata_address_is_refused() {
    let (site, asked) = reddit_site(|_| {
        let metadata = vec![("Location", "http://169.254.169.254/latest/meta-data/")];
        ("302 Found", metadata, "")
    })
    .await;
    let app = serve_source(reddit_posts("reddit-egress", &site)).await;
    let refused = r#"pulse_source_errors_total{source="reddit-egress",reason="not_allowed"}"#;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            metrics_text(&app).await.contains(refused)
        })
        .await,
        "{:?}",
        asked.lock().unwrap()
    );
    let (_, pipeline) = http_get(&app, "/api/v1/pipeline").await;
    let last_error = pipeline["sources"][0]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        last_error
            .starts_with("not_allowed: /r/pulsebuds/new: redirected to http://169.254.169.254/")
            && last_error.contains("an internal or reserved address, which is not allowed"),
        "{last_error}"
    );
    assert_eq!(app.env.post_count().await, 0);
    app.shutdown().await;
}

//! Where feeds may reach: no internal address, through a redirect either, unless allowed; and
//! a feed URL's credentials kept out of the pipeline status and the log.

use crate::common;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http_standin::{pairs, read_request, respond, serve};
use common::*;
use pulse::config::SourceKind;

use crate::sources::{assert_stores, feeds};

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

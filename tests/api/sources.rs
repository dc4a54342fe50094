//! Sources against local stand-ins for the platforms, replaying payloads of the platforms'
//! own shapes (tests/fixtures/*/README.md says where each shape comes from).

use crate::common;
use std::time::Duration;

use common::jetstream::JetstreamStandIn;
use common::*;
use pulse::app::{Application, ServeOptions};
use pulse::config::{JetstreamSettings, SourceKind, SourceSettings};

const ALICE_POST: &str = "at://did:plc:alice0000000000000000000/app.bsky.feed.post/3mpa1";
const BOB_REPLY: &str = "at://did:plc:bob00000000000000000000000/app.bsky.feed.post/3mpb1";

fn source(endpoint: String) -> SourceSettings {
    SourceSettings {
        name: "bsky".into(),
        kind: SourceKind::Jetstream(JetstreamSettings {
            endpoints: vec![endpoint],
            ..JetstreamSettings::default()
        }),
        product: Some("pulse-buds".into()),
        channel: None,
        max_backoff_secs: 1,
    }
}

#[actix_rt::test]
async fn a_jetstream_replay_cut_midway_lands_once_with_its_share_tree() {
    let lines: Vec<String> = common::jetstream::REPLAY
        .lines()
        .map(str::to_string)
        .collect();
    // Cut after the first repost: the reply and the repost must not be lost or doubled.
    let standin = JetstreamStandIn::start(lines, Some(3), Duration::ZERO).await;
    let (endpoint, uris) = (standin.endpoint, standin.uris);
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.sources = vec![source(endpoint)];
    settings.virality.score_interval_ms = 100;
    let app = Application::build(settings, ServeOptions::default())
        .await
        .unwrap();

    assert!(
        wait_until(Duration::from_secs(30), || async {
            env.post_count().await >= 3
        })
        .await,
        "the replay's three posts were not stored"
    );
    let pg = env.pg().await;
    let engagements = || async {
        pg.query_one(
            "SELECT count(*) FROM engagements WHERE post_id = $1",
            &[&ALICE_POST],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
    };
    assert!(
        wait_until(Duration::from_secs(20), || async {
            engagements().await >= 3
        })
        .await
    );
    // The second connection resumed from the stored position, rewound a few seconds.
    let uris = uris.lock().unwrap().clone();
    assert!(uris.len() >= 2, "{uris:?}");
    assert!(!uris[0].contains("cursor="), "{uris:?}");
    assert!(uris[1].contains("cursor="), "{uris:?}");
    assert!(
        uris[0].contains("wantedCollections=app.bsky.feed.repost"),
        "{uris:?}"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.post_count().await, 3, "each post stored once");
    assert_eq!(engagements().await, 3, "each repost and like stored once");
    let reply = pg
        .query_one(
            "SELECT platform, lang, parent_id, author_followers, product, url FROM posts WHERE id = $1",
            &[&BOB_REPLY],
        )
        .await
        .unwrap();
    assert_eq!(reply.get::<_, String>(0), "bluesky");
    assert_eq!(reply.get::<_, Option<String>>(1).as_deref(), Some("de"));
    assert_eq!(
        reply.get::<_, Option<String>>(2).as_deref(),
        Some(ALICE_POST)
    );
    assert_eq!(
        reply.get::<_, i64>(3),
        0,
        "followers are unknown in Jetstream"
    );
    assert_eq!(
        reply.get::<_, Option<String>>(4).as_deref(),
        Some("pulse-buds")
    );
    assert!(reply
        .get::<_, Option<String>>(5)
        .unwrap()
        .starts_with("https://bsky.app/profile/did:plc:bob"));
    // Nothing the source appended was refused downstream.
    let redis = env.redis().await;
    let dead: i64 = fred::prelude::StreamsInterface::xlen(&redis, format!("{}:dead", env.stream))
        .await
        .unwrap();
    assert_eq!(dead, 0);

    // The repost through the first one makes the tree two deep.
    let path = format!(
        "/api/v1/posts/{}/virality",
        url::form_urlencoded::byte_serialize(ALICE_POST.as_bytes()).collect::<String>()
    );
    assert!(
        wait_until(Duration::from_secs(20), || async {
            let (_, v) = http_get(&app, &path).await;
            v["current"]["counts"]["shares"] == 2 && v["current"]["structure"]["depth"] == 2
        })
        .await,
        "{}",
        http_get(&app, &path).await.1
    );

    let (_, ready) = http_get(&app, "/ready").await;
    assert_eq!(ready["sources"]["total"], 1, "{ready}");
    let metrics = reqwest::get(format!("http://{}/metrics", app.address()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"pulse_source_skipped_total{source="bsky",reason="malformed"}"#,
        r#"pulse_source_skipped_total{source="bsky",reason="empty_text"}"#,
        r#"pulse_source_reconnects_total{source="bsky"}"#,
        r#"pulse_source_events_total{source="bsky",event="share"}"#,
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    app.shutdown().await;
}

//! Sources against local stand-ins for the platforms, replaying payloads of the platforms'
//! own shapes (tests/fixtures/*/README.md says where each shape comes from): Jetstream, the
//! import, Bluesky profiles and the demo feed here; Mastodon, feeds and Reddit in
//! [`platforms`]; refusals and rate limits waited out in [`refusals`]; where sources may
//! reach in [`egress`].

use crate::common::{self, import_args};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::http_standin::{
    listen, read_request, respond, respond_bytes, respond_streaming, serve,
};
use common::jetstream::JetstreamStandIn;
use common::*;
use pulse::config::{FeedSettings, JetstreamSettings, RedditSettings, SourceKind, SourceSettings};
use serde_json::json;

const ALICE_POST: &str = "at://did:plc:alice0000000000000000000/app.bsky.feed.post/3mpa1";
const BOB_REPLY: &str = "at://did:plc:bob00000000000000000000000/app.bsky.feed.post/3mpb1";

/// A Pulse on `env` running `source`, its virality tracker ticking every 100 ms.
pub(crate) async fn serve_with(env: TestEnv, source: SourceSettings) -> TestApp {
    env.serve(|s| {
        s.sources = vec![source];
        quick_scores(s);
    })
    .await
}

/// [`serve_with`] on a fresh environment.
pub(crate) async fn serve_source(source: SourceSettings) -> TestApp {
    serve_with(TestEnv::new().await, source).await
}

/// A source named `name` reading `kind`, with no query, product or channel, backing off at
/// most 1 s (the stand-ins refuse on purpose).
pub(crate) fn named(name: &str, kind: SourceKind) -> SourceSettings {
    SourceSettings {
        name: name.into(),
        kind,
        query: None,
        topics: false,
        product: None,
        channel: None,
        max_backoff_secs: 1,
    }
}

/// A Jetstream source named `bsky` reading `endpoint`, its posts about `pulse-buds`.
pub(crate) fn source(endpoint: String) -> SourceSettings {
    SourceSettings {
        product: Some("pulse-buds".into()),
        ..named(
            "bsky",
            SourceKind::Jetstream(JetstreamSettings {
                endpoints: vec![endpoint],
                ..JetstreamSettings::default()
            }),
        )
    }
}

/// The address the stand-ins listen on, as a source's `allowed_private_networks` names it:
/// sources reach no internal address (loopback included) unless allowed.
pub(crate) fn loopback() -> Vec<String> {
    vec!["127.0.0.1".into()]
}

/// A feed source reading `urls`, allowed to reach the loopback stand-ins of the tests.
pub(crate) fn feeds(name: &str, urls: Vec<String>) -> SourceSettings {
    named(
        name,
        SourceKind::Feed(FeedSettings {
            urls,
            poll_secs: 1,
            allowed_private_networks: loopback(),
            ..Default::default()
        }),
    )
}

/// A Reddit source named `name` reading `settings`' subreddits (r/pulsebuds when it names
/// none) from the stand-in at `site` every second, allowed to reach loopback, with
/// `settings`' other fields.
pub(crate) fn reddit_source(name: &str, site: &str, settings: RedditSettings) -> SourceSettings {
    let subreddits = if settings.subreddits.is_empty() {
        vec!["pulsebuds".into()]
    } else {
        settings.subreddits.clone()
    };
    named(
        name,
        SourceKind::Reddit(RedditSettings {
            subreddits,
            client_id: "app-id".into(),
            client_secret: "app-secret".into(),
            poll_secs: 1,
            token_url: format!("{site}/api/v1/access_token"),
            api_url: site.into(),
            allowed_private_networks: loopback(),
            ..settings
        }),
    )
}

/// Stores `cursor` as a source's position, as a run before this one would have.
pub(crate) async fn store_position(env: &TestEnv, source: &str, cursor: &str) {
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

/// Asserts `app` counted `errors` errors of source `source` for `reason`.
pub(crate) async fn assert_source_errors(app: &TestApp, source: &str, reason: &str, errors: u32) {
    let series =
        format!(r#"pulse_source_errors_total{{source="{source}",reason="{reason}"}} {errors}"#);
    assert_metrics_hold(app, &[series]).await;
}

/// Asserts that `env` stores at least `n` posts within 30 s; what the stand-in was asked is
/// printed when it does not.
pub(crate) async fn assert_stores(env: &TestEnv, n: i64, asked: &Mutex<impl Debug>) {
    assert!(
        env.stored(n, Duration::from_secs(30)).await,
        "{} of {n} posts stored: {:?}",
        env.post_count().await,
        asked.lock().unwrap()
    );
}

#[actix_rt::test]
async fn a_jetstream_replay_cut_midway_lands_once_with_its_share_tree() {
    let lines = common::jetstream::replay_lines();
    // Cut after the first repost: the reply and the repost must not be lost or doubled.
    let standin = JetstreamStandIn::start(lines, Some(3), Duration::ZERO).await;
    let (endpoint, uris) = (standin.endpoint, standin.uris);
    let app = spawn_app_tuned(|s| {
        s.sources = vec![source(endpoint)];
        quick_scores(s);
    })
    .await;
    let env = &app.env;

    assert!(
        env.stored(3, Duration::from_secs(30)).await,
        "the replay's three posts were not stored"
    );
    let pg = env.pg().await;
    let engagements = || async {
        pg.scalar::<i64>(
            "SELECT count(*) FROM engagements WHERE post_id = $1",
            &[&ALICE_POST],
        )
        .await
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
        .row(
            "SELECT platform, lang, parent_id, author_followers, product, url FROM posts WHERE id = $1",
            &[&BOB_REPLY],
        )
        .await;
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
    app.wait_for(&path, Duration::from_secs(20), |v| {
        v["current"]["counts"]["shares"] == 2 && v["current"]["structure"]["depth"] == 2
    })
    .await;

    // The reply was deleted on Bluesky: kept, marked, out of the listing and the metrics.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            pg.scalar::<bool>(
                "SELECT deleted_at IS NOT NULL FROM posts WHERE id = $1",
                &[&BOB_REPLY],
            )
            .await
        })
        .await
    );
    let ids = listed_post_ids(&app, "?limit=10").await;
    assert!(
        ids.iter().any(|i| i == ALICE_POST) && !ids.iter().any(|i| i == BOB_REPLY),
        "{ids:?}"
    );
    let counted: i64 = pg
        .scalar(
            "SELECT sum(posts)::int8 FROM metric_rollups WHERE dimension = 'platform' AND key = 'bluesky'",
            &[],
        ).await;
    // Live posts the lexicon reads (this test's backend): the German and Spanish ones are
    // stored but counted apart, as unsupported.
    let understood: i64 = pg
        .scalar(
            "SELECT count(*) FROM posts WHERE platform = 'bluesky' AND deleted_at IS NULL \
             AND language_support <> 'unsupported'",
            &[],
        )
        .await;
    assert!(understood >= 1);
    assert_eq!(
        counted, understood,
        "the deleted reply is taken out of the rollups"
    );
    let (_, ready) = http_get(&app, "/ready").await;
    assert_eq!(ready["sources"]["total"], 1, "{ready}");
    let (_, pipeline) = http_get(&app, "/api/v1/pipeline").await;
    let state = &pipeline["sources"][0];
    assert_eq!(
        (&state["name"], &state["kind"], &state["connected"]),
        (&json!("bsky"), &json!("jetstream"), &json!(true)),
        "{pipeline}"
    );
    assert!(state["lag_seconds"].as_f64().unwrap() > 0.0, "{pipeline}");
    assert_metrics_hold(
        &app,
        &[
            r#"pulse_source_skipped_total{source="bsky",reason="malformed"}"#,
            r#"pulse_source_skipped_total{source="bsky",reason="empty_text"}"#,
            r#"pulse_source_reconnects_total{source="bsky"}"#,
            r#"pulse_source_events_total{source="bsky",event="share"}"#,
        ],
    )
    .await;
    app.shutdown().await;
}

/// The delete of the post `rkey` of `did`, `n` seconds after the start of
/// [`common::jetstream::post_message`]'s posts.
fn delete_message(did: &str, rkey: &str, n: i64) -> String {
    json!({
        "did": did, "time_us": 1_783_175_888_000_000i64 + n * 1_000_000, "kind": "commit",
        "commit": {"rev": "3mptbypcq373f", "operation": "delete",
            "collection": "app.bsky.feed.post", "rkey": rkey}
    })
    .to_string()
}

/// A Jetstream source with keywords forwarded the delete of every post of the network, each
/// stored as the deletion of a post never stored; and had it remembered the posts it kept in
/// memory only, a restart would have lost the deletes of those kept before it.
#[actix_rt::test]
async fn a_jetstream_source_with_keywords_forwards_only_the_deletes_of_its_posts_across_a_restart()
{
    const KEPT: &str = "at://did:plc:author00000000000000000001/app.bsky.feed.post/3mp1";
    let with_keywords = |endpoint: String| {
        let settings = JetstreamSettings {
            endpoints: vec![endpoint],
            keywords: vec!["pulse buds".into()],
            ..JetstreamSettings::default()
        };
        named("bsky-keywords", SourceKind::Jetstream(settings))
    };
    let weather = common::jetstream::post_message(2).replace("the Pulse Buds", "the weather");
    let first = JetstreamStandIn::start(
        vec![common::jetstream::post_message(1), weather],
        None,
        Duration::ZERO,
    )
    .await;
    let app = serve_source(with_keywords(first.endpoint.clone())).await;
    assert_stores(&app.env, 1, &first.uris).await;
    let env = app.shutdown().await;

    // After the restart: the deletes of the post left out, of a post never heard of, and of
    // the post kept, in that order.
    let second = JetstreamStandIn::start(
        vec![
            delete_message("did:plc:author00000000000000000002", "3mp2", 10),
            delete_message("did:plc:elsewhere000000000000000", "3mx9", 11),
            delete_message("did:plc:author00000000000000000001", "3mp1", 12),
        ],
        None,
        Duration::ZERO,
    )
    .await;
    let app = serve_with(env, with_keywords(second.endpoint.clone())).await;
    let pg = app.env.pg().await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            pg.scalar::<bool>(
                "SELECT deleted_at IS NOT NULL FROM posts WHERE id = $1",
                &[&KEPT],
            )
            .await
        })
        .await,
        "the delete of the post kept before the restart was lost: {:?}",
        second.uris.lock().unwrap()
    );
    // Whatever the source appended before that delete has been read and written.
    let redis = app.env.redis().await;
    assert!(crate::deletions::read_all(&app.env, &redis).await);
    let deletions: Vec<String> = pg
        .column("SELECT post_id FROM post_deletions ORDER BY post_id", &[])
        .await;
    assert_eq!(deletions, [KEPT]);
    assert_metric_counted(
        &app,
        r#"pulse_source_skipped_total{source="bsky-keywords",reason="filtered"}"#,
    )
    .await;
    app.shutdown().await;
}

/// A service that sends a message over the 1 MiB limit though asked not to: the connection
/// ends on it at every resume unless Pulse passes over it.
#[actix_rt::test]
async fn a_jetstream_message_too_large_to_read_is_passed_over_not_read_for_ever() {
    let mut lines: Vec<String> = (0..5).map(common::jetstream::post_message).collect();
    let mut huge: serde_json::Value =
        serde_json::from_str(&common::jetstream::post_message(4)).unwrap();
    huge["time_us"] = json!(huge["time_us"].as_i64().unwrap() + 400_000);
    huge["commit"]["record"]["text"] = json!("x".repeat(2 << 20));
    lines.push(huge.to_string());
    lines.extend((5..10).map(common::jetstream::post_message));
    let standin = JetstreamStandIn::start(lines, None, Duration::ZERO).await;
    let mut bsky = source(standin.endpoint.clone());
    bsky.name = "bsky-huge".into();
    let app = serve_source(bsky).await;
    assert_stores(&app.env, 10, &standin.uris).await;
    let uris = standin.uris.lock().unwrap().clone();
    assert!(
        uris.iter()
            .all(|u| u.contains("maxMessageSizeBytes=1048576")),
        "{uris:?}"
    );
    assert_metrics_hold(
        &app,
        &[r#"pulse_source_skipped_total{source="bsky-huge",reason="too_large"}"#],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.env.post_count().await, 10, "each post stored once");
    app.shutdown().await;
}

/// Waits until `posts` posts are stored and the stream is read to its end, then asserts that
/// no more were: every post an import appended more than once is stored once.
async fn assert_stored_once(env: &TestEnv, posts: i64) {
    assert!(env.stored(posts, Duration::from_secs(60)).await);
    let redis = env.redis().await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            env.unfinished(&redis).await == 0
        })
        .await
    );
    assert_eq!(env.post_count().await, posts, "each post stored once");
}

/// Asserts that each post of `ids` is stored with the text `text`.
async fn assert_text_of(env: &TestEnv, ids: &[&str], text: &str) {
    let pg = env.pg().await;
    for id in ids {
        let stored: Option<String> = pg
            .scalar("SELECT text FROM posts WHERE id = $1", &[id])
            .await;
        assert_eq!(stored.as_deref(), Some(text), "{id}");
    }
}

#[actix_rt::test]
async fn an_import_counts_refused_lines_resumes_where_it_stopped_and_stores_each_post_once() {
    let app = spawn_app().await;
    let env = &app.env;
    let dir = fresh_dir("pulse-import");
    let file = dir.join("backfill.jsonl");
    let mut lines: Vec<String> = (0..1_000)
        .map(|i| post_json(&format!("imp-{i}"), "Imported post about the Pulse Phone"))
        .collect();
    lines.insert(10, "{\"type\": \"post\", \"id\": ".into());
    lines.insert(20, r#"{"type":"post","id":"x","platform":"twitter","author":{"id":"a","followers":1},"text":"   ","created_at":"2024-01-01T00:00:00Z"}"#.into());
    lines.insert(30, String::new());
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let settings = env.settings();
    let first = import_file(&settings, &file).await;
    assert_eq!(first.started_at_line, 1);
    assert_eq!((first.accepted, first.refused), (1_000, 2), "{first:?}");
    assert_eq!(first.refused_by_reason.get("malformed"), Some(&1));
    assert_eq!(first.refused_by_reason.get("invalid_field"), Some(&1));
    assert!(
        first.examples[0].starts_with("line 11:"),
        "{:?}",
        first.examples
    );

    // More lines arrive; the next import starts after the ones already appended.
    // With them come 20 likes without ids (the first two lines alike: two likes).
    let mut more: Vec<String> = (1_000..1_200)
        .map(|i| post_json(&format!("imp-{i}"), "Imported post about the Pulse Phone"))
        .collect();
    let like = |s: i64| {
        let at = chrono::Utc::now() - chrono::Duration::seconds(s);
        json!({"type": "engagement", "post_id": "imp-7", "kind": "like", "at": at.to_rfc3339()})
            .to_string()
    };
    more.push(like(1));
    more.push(more.last().unwrap().clone());
    more.extend((2..20).map(like));
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&(more.join("\n") + "\n"));
    std::fs::write(&file, text).unwrap();
    let second = import_file(&settings, &file).await;
    // It starts on the line after the last one read, the blank line counted.
    assert_eq!(second.started_at_line, lines.len() as u64 + 1, "{second:?}");
    assert_eq!((second.lines, second.accepted), (220, 220));

    // From the start again: appended twice, stored once.
    let mut again = import_args(&file);
    again.restart = true;
    let third = pulse::sources::import::run(&settings, again).await.unwrap();
    assert_eq!(third.accepted, 1_220);
    assert_stored_once(env, 1_200).await;
    // The likes were appended twice too, and are counted once each.
    let likes: i64 = env
        .pg()
        .await
        .scalar(
            "SELECT COALESCE(sum(count), 0)::int8 FROM engagements WHERE post_id = 'imp-7'",
            &[],
        )
        .await;
    assert_eq!(likes, 20);

    // Another export written over the same path (longer, so the old position would fit in
    // it) is read from its start, not from where the first file ended.
    let other: Vec<String> = (0..1_300)
        .map(|i| post_json(&format!("other-{i}"), "Another export of the Pulse Phone"))
        .collect();
    std::fs::write(&file, other.join("\n") + "\n").unwrap();
    let replaced = import_file(&settings, &file).await;
    assert_eq!(
        (replaced.started_at_line, replaced.accepted),
        (1, 1_300),
        "{replaced:?}"
    );

    // CSV through a column mapping.
    let csv = dir.join("export.csv");
    std::fs::write(
        &csv,
        "tweet_id,content,created_at,country\n\
         c1,\"Great battery, love it\",1700000000,DE\n\
         c2,,1700000001,FR\n\
         c3,\"Broke after a day\",2023-11-14T22:13:20Z,\n",
    )
    .unwrap();
    let mut args = import_args(&csv);
    args.map = "id=tweet_id,text=content".into();
    args.platform = "twitter".into();
    let summary = pulse::sources::import::run(&settings, args).await.unwrap();
    assert_eq!((summary.accepted, summary.refused), (2, 1), "{summary:?}");
    assert!(
        summary.examples[0].contains("content"),
        "{:?}",
        summary.examples
    );
    assert!(
        env.stored_exactly(1_200 + 1_300 + 2, Duration::from_secs(30))
            .await
    );
    let country: Option<String> = env
        .pg()
        .await
        .scalar("SELECT country FROM posts WHERE id = 'c1'", &[])
        .await;
    assert_eq!(country.as_deref(), Some("DE"));

    // Spaces after the commas of a header name the columns all the same, and empty columns
    // may repeat; a header that names a column the mapping reads twice is refused before
    // anything is read.
    let spaced = dir.join("spaced.csv");
    std::fs::write(
        &spaced,
        "id, text, created_at, author_followers,,\ns1,Spaced header,2026-11-20 10:00:00,\"1,200\",,\n",
    )
    .unwrap();
    let summary = import_file(&settings, &spaced).await;
    assert_eq!((summary.accepted, summary.refused), (1, 0), "{summary:?}");
    let twice = dir.join("twice.csv");
    std::fs::write(&twice, "id,text,created_at,id\nt1,x,1700000000,u1\n").unwrap();
    let refused = pulse::sources::import::run(&settings, import_args(&twice)).await;
    let error = format!("{:#}", refused.expect_err("a header naming a column twice"));
    assert!(error.contains("\"id\" twice"), "{error}");
    std::fs::remove_dir_all(&dir).ok();
    app.shutdown().await;
}

/// The summaries of an import of `file`, and of another once `change` has changed it.
async fn import_before_and_after(
    settings: &pulse::config::Settings,
    file: &std::path::Path,
    change: impl FnOnce(),
) -> (
    pulse::sources::import::ImportSummary,
    pulse::sources::import::ImportSummary,
) {
    let before = import_file(settings, file).await;
    change();
    (before, import_file(settings, file).await)
}

/// Windows-1252 bytes of `text` (as Excel's "CSV" on Windows writes it): é, the only letter
/// these tests write outside ASCII, is the byte 0xE9.
fn cp1252(text: &str) -> Vec<u8> {
    text.replace('é', "\u{1}")
        .bytes()
        .map(|b| if b == 1 { 0xE9 } else { b })
        .collect()
}

/// `bytes` read as Windows-1252 and written as UTF-8 (without a byte order mark), as
/// `iconv -f cp1252 -t utf-8` writes them; for 0xE9 and ASCII Latin-1 agrees with it.
fn as_utf8(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| b as char)
        .collect::<String>()
        .into_bytes()
}

/// Imports `text` written to `file` in Windows-1252, and again once the file is saved as
/// UTF-8; asserts that the first run refused one record as not UTF-8 and took `accepted`, and
/// that the second read the three records from `refused_line` on.
async fn assert_read_from_the_refused_line_once_utf8(
    settings: &pulse::config::Settings,
    file: &std::path::Path,
    text: &str,
    accepted: u64,
    refused_line: u64,
) {
    std::fs::write(file, cp1252(text)).unwrap();
    let saved_as_utf8 = || std::fs::write(file, as_utf8(&cp1252(text))).unwrap();
    let (first, again) = import_before_and_after(settings, file, saved_as_utf8).await;
    assert_eq!(first.refused_by_reason.get("invalid_utf8"), Some(&1));
    assert_eq!((first.accepted, first.refused), (accepted, 1), "{first:?}");
    assert_eq!(again.started_at_line, refused_line, "{again:?}");
    assert_eq!((again.accepted, again.refused), (3, 0), "{again:?}");
}

/// The run that refused a record as not UTF-8 stored the file's end as its position, so the
/// file saved as UTF-8 (as the error says to) and imported again was read from past the
/// converted records: they were never imported, and the run exited 0.
#[actix_rt::test]
async fn a_file_saved_as_utf8_after_its_refusal_is_read_again_from_the_first_refused_record() {
    let app = spawn_app().await;
    let env = &app.env;
    let settings = env.settings();
    let dir = fresh_dir("pulse-import-cp1252");

    // A CSV whose first 4 KiB are ASCII (the resume checks them) and a later row in
    // Windows-1252.
    let csv = dir.join("export.csv");
    let mut text = String::from("id,text,created_at\n");
    for i in 0..200 {
        text += &format!("a{i},An ASCII row about the Pulse Phone,1700000000\n");
    }
    text += "c9,Café au lait,1700000000\nc10,After it,1700000000\nc11,And on,1700000000\n";
    assert_read_from_the_refused_line_once_utf8(&settings, &csv, &text, 202, 202).await;

    // JSON lines alike, with a like without an id after the refused line: it is appended
    // again under the same id, so counted once.
    let jsonl = dir.join("backfill.jsonl");
    let mut lines: Vec<String> = (0..100)
        .map(|i| post_json(&format!("j-{i}"), "An ASCII post about the Pulse Phone"))
        .collect();
    lines.push(post_json("j9", "Café au lait"));
    lines.push(
        json!({"type": "engagement", "post_id": "j-0", "kind": "like",
            "at": chrono::Utc::now().to_rfc3339()})
        .to_string(),
    );
    lines.push(post_json("j10", "Plain after it"));
    let text = lines.join("\n") + "\n";
    assert_read_from_the_refused_line_once_utf8(&settings, &jsonl, &text, 102, 101).await;

    assert_stored_once(env, 203 + 102).await;
    assert_text_of(env, &["c9", "j9"], "Café au lait").await;
    let likes: i64 = env
        .pg()
        .await
        .scalar(
            "SELECT COALESCE(sum(count), 0)::int8 FROM engagements WHERE post_id = 'j-0'",
            &[],
        )
        .await;
    assert_eq!(likes, 1);
    std::fs::remove_dir_all(&dir).ok();
    app.shutdown().await;
}

/// Appends `text` to the file at `path`, as a writer finishing its line would.
fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// A last record with no line end was read as whole: a JSON line cut by its writer was
/// refused and the position moved past it, so its completed line was read from its middle; a
/// CSV row cut in its text was stored cut, and the completed row could never replace it.
#[actix_rt::test]
async fn a_last_record_its_writer_has_not_finished_is_held_back_until_it_is() {
    let app = spawn_app().await;
    let env = &app.env;
    let settings = env.settings();
    let dir = fresh_dir("pulse-import-cut");

    let jsonl = dir.join("growing.jsonl");
    let whole = post_json("p9", "Broke after a day");
    let (done, rest) = whole.split_at(whole.find("after").unwrap());
    let mut text: String = (0..5)
        .map(|i| post_json(&format!("p{i}"), "A whole line") + "\n")
        .collect();
    text += done;
    std::fs::write(&jsonl, &text).unwrap();
    let finished = || append(&jsonl, &format!("{rest}\n"));
    let (first, second) = import_before_and_after(&settings, &jsonl, finished).await;
    assert_eq!((first.accepted, first.refused), (5, 0), "{first:?}");
    assert_eq!(first.held_back_line, Some(6), "{first:?}");
    assert_eq!(second.started_at_line, 6, "{second:?}");
    assert_eq!((second.accepted, second.refused), (1, 0), "{second:?}");
    assert_eq!(second.held_back_line, None);

    let csv = dir.join("growing.csv");
    std::fs::write(
        &csv,
        "id,created_at,text\nc8,1700000000,Fine\nc9,1700000000,Broke aft",
    )
    .unwrap();
    let finished = || append(&csv, "er a day\n");
    let (first, second) = import_before_and_after(&settings, &csv, finished).await;
    assert_eq!((first.accepted, first.refused), (1, 0), "{first:?}");
    assert_eq!(first.held_back_line, Some(3), "{first:?}");
    assert_eq!((second.accepted, second.refused), (1, 0), "{second:?}");

    // A complete file that ends without a line end: a whole JSON object is read; a CSV row is
    // held back (it may be cut in its text) and read with --complete.
    let hand = dir.join("hand.jsonl");
    let two = [post_json("h0", "By hand"), post_json("h1", "No line end")];
    std::fs::write(&hand, two.join("\n")).unwrap();
    let read = import_file(&settings, &hand).await;
    assert_eq!((read.accepted, read.held_back_line), (2, None), "{read:?}");
    let hand = dir.join("hand.csv");
    std::fs::write(
        &hand,
        "id,text,created_at\nh2,By hand,1700000000\nh3,No line end,1700000000",
    )
    .unwrap();
    let held = import_file(&settings, &hand).await;
    assert_eq!(
        (held.accepted, held.held_back_line),
        (1, Some(3)),
        "{held:?}"
    );
    let mut complete = import_args(&hand);
    complete.complete = true;
    let read = pulse::sources::import::run(&settings, complete)
        .await
        .unwrap();
    assert_eq!(read.started_at_line, 3, "{read:?}");
    assert_eq!((read.accepted, read.held_back_line), (1, None), "{read:?}");

    assert_stored_once(env, 6 + 2 + 2 + 2).await;
    assert_text_of(env, &["p9", "c9"], "Broke after a day").await;
    std::fs::remove_dir_all(&dir).ok();
    app.shutdown().await;
}

/// Refused records were quoted with their number among the records: the CSV header, blank
/// lines and the lines of a quoted field were not counted.
#[actix_rt::test]
async fn refused_records_are_quoted_with_the_line_they_start_on() {
    let env = TestEnv::new().await;
    let settings = env.settings();
    let dir = fresh_dir("pulse-import-lines");
    let first_example = |path: std::path::PathBuf, text: &str| {
        std::fs::write(&path, text).unwrap();
        let settings = &settings;
        async move {
            let summary = import_file(settings, &path).await;
            summary.examples.first().cloned().unwrap_or_default()
        }
    };
    let example = first_example(
        dir.join("a.csv"),
        "id,text,created_at\nl1,Fine,1700000000\nl2,,1700000000\n",
    )
    .await;
    assert!(example.starts_with("line 3:"), "{example}");
    let example = first_example(
        dir.join("b.csv"),
        "id,text,created_at\r\nl3,\"Two\nlines\",1700000000\r\n\r\nl4,,1700000000\r\n",
    )
    .await;
    assert!(example.starts_with("line 5:"), "{example}");
    let good = post_json("l5", "Fine");
    let jsonl = dir.join("c.jsonl");
    let example = first_example(
        jsonl.clone(),
        &format!("{good}\n\n{{\"type\": \"post\", \"id\": \n"),
    )
    .await;
    assert!(example.starts_with("line 3:"), "{example}");
    // A resumed run counts on from the stored position.
    append(&jsonl, "\n{\"type\": \n");
    let resumed = import_file(&settings, &jsonl).await;
    assert_eq!(resumed.started_at_line, 4, "{resumed:?}");
    assert!(
        resumed.examples[0].starts_with("line 5:"),
        "{:?}",
        resumed.examples
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A Bluesky AppView stand-in answering `app.bsky.actor.getProfiles` with made-up follower
/// counts (the response shape of the lexicon `app.bsky.actor.getProfiles`: `{"profiles":
/// [{"did", "handle", "followersCount", ...}]}`), each after `delay`; counts the requests.
async fn profiles(delay: Duration) -> (String, Arc<Mutex<Vec<String>>>) {
    let requests: Arc<Mutex<Vec<String>>> = Default::default();
    let seen = requests.clone();
    let address = serve(move |req, mut tcp| {
        seen.lock().unwrap().push(req.path.clone());
        let profiles: Vec<serde_json::Value> = req
            .query("actors")
            .into_iter()
            .filter_map(|did| {
                let followers = match &did[..12] {
                    "did:plc:alic" => 1_200,
                    "did:plc:bob0" => 85,
                    "did:plc:dave" => 7_000,
                    _ => return None, // unknown to the AppView
                };
                Some(json!({"did": did, "handle": "someone.bsky.social", "followersCount": followers}))
            })
            .collect();
        let body = json!({ "profiles": profiles }).to_string();
        async move {
            tokio::time::sleep(delay).await;
            let json = [("Content-Type", "application/json")];
            respond(&mut tcp, "200 OK", &json, &body).await;
        }
    })
    .await;
    (format!("http://{address}"), requests)
}

/// A Pulse reading the Jetstream stand-in's replay with follower counts looked up at
/// `appview`.
async fn with_followers_from(appview: String) -> TestApp {
    let lines = common::jetstream::replay_lines();
    let standin = JetstreamStandIn::start(lines, None, Duration::ZERO).await;
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    let mut source = source(standin.endpoint);
    if let SourceKind::Jetstream(j) = &mut source.kind {
        j.fetch_followers = true;
        j.profiles_url = appview;
        j.allowed_private_networks = loopback();
    }
    settings.sources = vec![source];
    spawn_app_with(env, settings).await
}

/// An AppView that answers, but slowly (5 s a request, under the client's 10 s timeout), held
/// each batch of the firehose for four such answers: the source fell behind without bound.
/// A batch now waits for lookups a bounded time in all, and goes with what is known.
#[actix_rt::test]
async fn a_slow_profile_api_does_not_hold_up_the_firehose() {
    let (appview, requests) = profiles(Duration::from_secs(5)).await;
    let app = with_followers_from(appview).await;
    assert!(app.env.stored(3, Duration::from_secs(30)).await);
    let pg = app.env.pg().await;
    let unknown: i64 = pg
        .scalar(
            "SELECT count(*) FROM posts WHERE author_followers = 0 AND id = ANY($1)",
            &[&vec![BOB_REPLY, ALICE_POST]],
        )
        .await;
    assert_eq!(unknown, 2, "the batch waited for the slow answer");
    assert!(!requests.lock().unwrap().is_empty(), "no lookup was tried");
    app.shutdown().await;
}

#[actix_rt::test]
async fn bluesky_follower_counts_are_looked_up_in_batches_when_asked() {
    let (appview, requests) = profiles(Duration::ZERO).await;
    let app = with_followers_from(appview).await;
    let env = &app.env;
    assert!(env.stored(3, Duration::from_secs(30)).await);
    let pg = env.pg().await;
    assert!(
        wait_until(Duration::from_secs(20), || async {
            pg.scalar::<i64>("SELECT count(*) FROM engagements", &[])
                .await
                >= 3
        })
        .await
    );
    let followers = |sql: &'static str, id: &'static str| {
        let pg = &pg;
        async move {
            pg.query_one(sql, &[&id])
                .await
                .unwrap()
                .get::<_, Option<i64>>(0)
        }
    };
    let posts = "SELECT author_followers FROM posts WHERE id = $1";
    assert_eq!(followers(posts, BOB_REPLY).await, Some(85));
    assert_eq!(followers(posts, ALICE_POST).await, Some(1_200));
    let shares =
        "SELECT actor_followers FROM engagements WHERE post_id = $1 AND key LIKE '%3mpr2%'";
    assert_eq!(followers(shares, ALICE_POST).await, Some(7_000));
    // An account the AppView does not know stays unknown (0), and is asked for once.
    let requests = requests.lock().unwrap().clone();
    let asked: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("did%3Aplc%3Aerin"))
        .collect();
    assert_eq!(asked.len(), 1, "{requests:?}");
    app.shutdown().await;
}

/// A source's position went in the pipeline of its appends, so Redis stored it even after
/// refusing an append before it (at `maxmemory` with `noeviction`): the resume skipped the
/// refused events. A key of another type refuses every append while `SET` still works.
#[actix_rt::test]
async fn a_sources_position_is_not_stored_past_an_append_redis_refused() {
    use fred::prelude::*;
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let _: () = redis
        .set(&env.stream, "not a stream", None, None, false)
        .await
        .unwrap();
    let key = format!("{}:position", env.stream);
    let appended = pulse::streams::producer::append_with_cursor(
        &redis,
        &env.stream,
        &[r#"{"type":"post"}"#],
        &[],
        &key,
        Some("42"),
    )
    .await;
    assert!(appended.is_err());
    let stored: Option<String> = redis.get(&key).await.unwrap();
    assert_eq!(stored, None, "the position passed the refused append");
}

#[actix_rt::test]
async fn the_demo_feed_goes_on_when_redis_drops_its_connection() {
    use fred::prelude::*;
    use fred::types::{ClusterHash, CustomCommand};
    let client_command = || CustomCommand::new_static("CLIENT", ClusterHash::FirstKey, false);
    let env = TestEnv::new().await;
    let url = env.settings().redis.url;
    let generator = pulse::streams::connect(&url, "generator").await.unwrap();
    let admin = env.redis().await;
    let options = pulse::sources::demo::ProduceOptions {
        rate: 0.0,
        total: Some(30_000),
        duration: None,
        seed: 7,
        engagements: true,
        id_prefix: "drop-".into(),
        scenarios: false,
    };
    let producing = {
        let (generator, stream) = (generator.clone(), env.stream.clone());
        tokio::spawn(
            async move { pulse::sources::demo::produce(&generator, &stream, options).await },
        )
    };
    // The generator's connection is killed five times while it appends.
    let mut killed = 0;
    while killed < 5 && !producing.is_finished() {
        if let Ok(id) = generator
            .custom::<i64, _>(client_command(), vec!["ID"])
            .await
        {
            let kill = vec!["KILL".to_string(), "ID".into(), id.to_string()];
            killed += admin
                .custom::<i64, _>(client_command(), kill)
                .await
                .unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let report = producing.await.unwrap().expect("the feed survives");
    assert_eq!(report.events, 30_000);
    assert!(killed >= 1, "no connection was killed while it ran");
    let appended: u64 = admin.xlen(&env.stream).await.unwrap();
    assert!(appended >= 30_000, "{appended} appended");
}

mod egress;
mod platforms;
mod refusals;

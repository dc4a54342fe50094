//! Sources against local stand-ins for the platforms, replaying payloads of the platforms'
//! own shapes (tests/fixtures/*/README.md says where each shape comes from): Jetstream, the
//! import, Bluesky profiles and the demo feed here; Mastodon, feeds and Reddit in
//! [`platforms`]; refusals and rate limits waited out in [`refusals`]; where sources may
//! reach in [`egress`].

use crate::common::{self, import_args};
use crate::deletions::comes_marked_deleted;
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

/// A [`reddit_source`] of posts alone: no comment listing is read.
pub(crate) fn reddit_posts(name: &str, site: &str) -> SourceSettings {
    let settings = RedditSettings {
        comments: false,
        ..Default::default()
    };
    reddit_source(name, site, settings)
}

/// What a stand-in answers a request with: its status line, headers and body.
pub(crate) type Answer = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// A Reddit stand-in on loopback that grants every token request and answers every other
/// request as `answer` says for its route. Its base URL, and the routes it was asked in order.
pub(crate) async fn reddit_site(
    mut answer: impl FnMut(&str) -> Answer + Send + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = asked.clone();
    let site = serve(move |req, mut tcp| {
        let route = req.route();
        seen.lock().unwrap().push(route.to_string());
        let (status, headers, body) = if route == "/api/v1/access_token" {
            let token = r#"{"access_token":"t","token_type":"bearer","expires_in":86400}"#;
            ("200 OK", vec![("Content-Type", "application/json")], token)
        } else {
            answer(route)
        };
        async move { respond(&mut tcp, status, &headers, body).await }
    })
    .await;
    (format!("http://{site}"), asked)
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
    assert!(comes_marked_deleted(&pg, BOB_REPLY, Duration::from_secs(10)).await);
    // Every entry before that deletion is stored once it is. Two reposts and two likes: the
    // like undone and done again (a record of a new key) is one like, as Bluesky counts it.
    assert!(
        wait_until(Duration::from_secs(20), || async {
            env.unfinished(&redis).await == 0
        })
        .await
    );
    assert_eq!(engagements().await, 4, "each repost and like stored once");
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
        comes_marked_deleted(&pg, KEPT, Duration::from_secs(30)).await,
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
        "SELECT actor_followers FROM engagements WHERE post_id = $1 AND key LIKE '%did:plc:dave%app.bsky.feed.repost%'";
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
mod import;
mod platforms;
mod refusals;

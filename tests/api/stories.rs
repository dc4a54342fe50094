//! Stories on the real pipeline, PostgreSQL and Redis: posts of two conversations become two
//! stories with their posts' `story_id`, shown by the API and published live; posts of nothing
//! stay in none; a live stream and an import of the same posts give the same stories; a post
//! sent again counts once in its story's size; another producer's copy of a post never moves
//! the stored one into a story; a flood of fresh stories does not keep a real one from a
//! `new_story` rule; a story write cut off by a lost session is written when tried again; a
//! deleted post no longer counts in its story.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::common::app::spawn_app_with;
use crate::common::{fresh_dir, spawn_app, wait_until};
use crate::common::{import_file, quick_alerts, spawn_app_tuned, strings, sum_of, unique};
use crate::common::{xadd_fields, PostEvent, TestEnv};

const WAIT: Duration = Duration::from_secs(60);

const OUTAGE: [&str; 8] = [
    "pulse-buds outage in Lyon, nothing connects",
    "Lyon outage again, my pulse-buds are dead since noon",
    "is the pulse-buds outage in Lyon fixed yet?",
    "panne pulse-buds à Lyon, outage total depuis ce matin",
    "Lyon pulse-buds outage day two, support says nothing",
    "still no pulse-buds in Lyon, this outage is a joke",
    "pulse-buds outage Lyon: refund please",
    "the Lyon outage killed my pulse-buds playlist",
];

const PRICE: [&str; 8] = [
    "pulsephone price rise announced, 20% more",
    "that pulsephone price rise is a joke",
    "price rise on the pulsephone from March",
    "pulsephone price rise: switching brands",
    "who approved this pulsephone price rise",
    "the pulsephone price rise makes the upgrade pointless",
    "pulsephone price rise, again, third time",
    "price rise for pulsephone owners is insulting",
];

const NOTHING: [&str; 3] = [
    "lovely sunset over the harbour tonight",
    "my cat ignores me completely",
    "made pancakes for breakfast",
];

fn post_at(id: &str, text: &str, created: DateTime<Utc>, lang: &str) -> String {
    PostEvent::new(id, text)
        .at(created)
        .lang(lang)
        .product("pulse-buds")
        .to_string()
}

/// The conversation, interleaved, a minute apart: `(id, event)`.
fn conversation(prefix: &str) -> Vec<(String, String)> {
    let start = Utc::now() - chrono::Duration::hours(2);
    let mut out = Vec::new();
    for i in 0..OUTAGE.len() {
        for (kind, text) in [("outage", OUTAGE[i]), ("price", PRICE[i])] {
            let n = out.len() as i64;
            let id = format!("{prefix}-{kind}-{i}");
            let lang = if text.starts_with("panne") {
                "fr"
            } else {
                "en"
            };
            out.push((
                id.clone(),
                post_at(&id, text, start + chrono::Duration::minutes(n), lang),
            ));
        }
        if let Some(text) = NOTHING.get(i) {
            let n = out.len() as i64;
            let id = format!("{prefix}-nothing-{i}");
            out.push((
                id.clone(),
                post_at(&id, text, start + chrono::Duration::minutes(n), "en"),
            ));
        }
    }
    out
}

/// Post id -> story id (null: none), from the post listing.
async fn stories_of_posts(app: &crate::common::app::TestApp) -> BTreeMap<String, Value> {
    let page = app.get_ok("/api/v1/posts?limit=500").await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_string(), p["story_id"].clone()))
        .collect()
}

/// Sends the conversation of `prefix` and waits until its posts are stored.
async fn send_conversation(app: &crate::common::app::TestApp, prefix: &str) {
    let posts = conversation(prefix);
    let events: Vec<String> = posts.iter().map(|(_, e)| e.clone()).collect();
    app.send_events(&events).await;
    assert!(app.wait_for_posts(posts.len() as i64, WAIT).await);
}

/// The listing at `path` once it shows the conversation's two stories with their sixteen
/// posts.
async fn two_stories(app: &crate::common::app::TestApp, path: &str) -> Value {
    app.wait_for(path, WAIT, |b| {
        b["items"].as_array().is_some_and(|items| {
            items.len() == 2
                && items
                    .iter()
                    .map(|s| s["size"].as_i64().unwrap_or(0))
                    .sum::<i64>()
                    == 16
        })
    })
    .await
}

/// The posts of each story, as sets of post-id kinds (`outage`, `price`, `nothing`).
fn partition(stories: &BTreeMap<String, Value>, prefix: &str) -> BTreeSet<BTreeSet<String>> {
    let mut by_story: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (post, story) in stories {
        if !story.is_null() {
            let short = post.trim_start_matches(prefix).to_string();
            by_story.entry(story.to_string()).or_default().insert(short);
        }
    }
    by_story.into_values().collect()
}

#[actix_rt::test]
async fn two_conversations_become_two_stories_shown_with_their_posts_and_published_live() {
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.3);
    })
    .await;
    let mut ws = app.subscribe_ws(&["stories"]).await;

    app.remove_rules().await;
    app.create_rule(&json!({"name": "New stories", "kind": "new_story", "window_minutes": 1440, "min_volume": 3}))
        .await;
    app.create_rule(
        &json!({"name": "Surging stories", "kind": "story_surge", "window_minutes": 1440,
        "threshold": 6, "min_volume": 1, "dimension": "product", "key": "pulse-buds"}),
    )
    .await;

    let prefix = unique("story");
    send_conversation(&app, &prefix).await;

    let list = two_stories(&app, "/api/v1/stories?sort=growing").await;
    let items = list["items"].as_array().unwrap();
    let labels: Vec<&str> = items.iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert!(
        labels
            .iter()
            .any(|l| l.contains("outage") || l.contains("lyon")),
        "{labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l.contains("price") || l.contains("rise")),
        "{labels:?}"
    );

    // Every post of a conversation carries its story; the posts of nothing carry none.
    let stories = stories_of_posts(&app).await;
    let kinds = partition(&stories, &format!("{prefix}-"));
    assert_eq!(kinds.len(), 2, "{stories:?}");
    for group in &kinds {
        let kind: BTreeSet<&str> = group.iter().map(|p| p.split('-').next().unwrap()).collect();
        assert_eq!(kind.len(), 1, "a story mixes conversations: {group:?}");
        assert_eq!(group.len(), 8, "{group:?}");
    }
    for i in 0..NOTHING.len() {
        assert!(stories[&format!("{prefix}-nothing-{i}")].is_null());
    }

    // One story: what its posts say, and representative posts that are still there.
    let outage = items
        .iter()
        .find(|s| s["terms"].as_array().unwrap().iter().any(|t| t == "outage"))
        .expect("the outage story");
    let id = outage["id"].as_i64().unwrap();
    let detail = app.get_ok(&format!("/api/v1/stories/{id}")).await;
    assert_eq!(detail["size"], 8, "{detail}");
    assert_eq!(detail["status"], "live");
    let languages: Vec<&str> = strings(&detail["languages"], "value");
    assert!(
        languages.contains(&"en") && languages.contains(&"fr"),
        "{languages:?}"
    );
    assert_eq!(detail["products"][0]["value"], "pulse-buds");
    assert_eq!(detail["places"][0]["value"], "Lyon");
    let sentiment_total: i64 = sum_of(&detail["sentiment"], |s| s["posts"].as_i64().unwrap());
    assert_eq!(sentiment_total, 8);
    assert!(!detail["growth"].as_array().unwrap().is_empty());
    let reps = detail["representatives"].as_array().unwrap();
    assert_eq!(reps.len(), 3, "{detail}");
    assert!(reps.iter().all(|p| p["story_id"] == id));

    // A deleted representative is never shown.
    let gone = reps[0]["id"].as_str().unwrap().to_string();
    app.send_events(&[
        json!({"type": "delete", "post_id": gone, "at": Utc::now().to_rfc3339()}).to_string(),
    ])
    .await;
    let detail = app
        .wait_for(&format!("/api/v1/stories/{id}"), WAIT, |d| {
            d["representatives"]
                .as_array()
                .is_some_and(|r| r.iter().all(|p| p["id"] != gone.as_str()))
        })
        .await;
    assert_eq!(detail["representatives"].as_array().unwrap().len(), 3);

    // Both births were published on the stories topic.
    let mut born = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while born.len() < 2 {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a story message in time");
        let Some(Ok(Message::Text(text))) = frame else {
            continue;
        };
        let m: Value = serde_json::from_str(text.as_str()).unwrap();
        if m["type"] == "story:new" {
            born.insert(m["data"]["id"].as_i64().unwrap());
        }
    }
    let listed: BTreeSet<i64> = items.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(born, listed);

    // Each story fired a new_story alert and a story_surge alert with itself as evidence.
    for kind in ["new_story", "story_surge"] {
        let alerts = app
            .wait_for("/api/v1/alerts?status=firing&limit=50", WAIT, |b| {
                b["items"]
                    .as_array()
                    .is_some_and(|a| a.iter().filter(|x| x["kind"] == kind).count() == 2)
            })
            .await;
        let keys: BTreeSet<i64> = alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == kind)
            .map(|a| {
                assert_eq!(
                    a["evidence"]["story"]["id"].to_string(),
                    a["key"].as_str().unwrap(),
                    "{a}"
                );
                assert!(
                    !a["evidence"]["top_posts"].as_array().unwrap().is_empty(),
                    "{a}"
                );
                a["key"].as_str().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(keys, listed, "{kind}");
    }

    // Bad requests get the documented error shape.
    assert_eq!(app.get("/api/v1/stories/not-a-number").await.0, 400);
    assert_eq!(app.get("/api/v1/stories/12345").await.0, 404);
    for bad in [
        "sort=loudest",
        "limit=0",
        "window_secs=5",
        "status=merged",
        "colour=red",
        "sentiment=furious",
        "language_support=maybe",
    ] {
        let (status, body) = app.get(&format!("/api/v1/stories?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    // Filters keep the stories with a post of that value.
    let none = app.get_ok("/api/v1/stories?product=nothing-like-it").await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    // The post filters every listing shares: a story is listed under a value when one of its
    // posts has it, as the posts listing says.
    for (filter, values) in [
        (
            "language_support",
            ["supported", "unverified", "unsupported"],
        ),
        ("sentiment", ["negative", "neutral", "positive"]),
    ] {
        for value in values {
            let ids = |page: Value, key: &str| -> BTreeSet<i64> {
                let items = page["items"].as_array().expect("a page of items");
                items.iter().filter_map(|item| item[key].as_i64()).collect()
            };
            let stories = app
                .get_ok(&format!("/api/v1/stories?{filter}={value}"))
                .await;
            let posts = app
                .get_ok(&format!("/api/v1/posts?{filter}={value}&limit=500"))
                .await;
            assert_eq!(
                ids(stories, "id"),
                ids(posts, "story_id"),
                "{filter}={value}"
            );
        }
    }
    app.shutdown().await;
}

#[actix_rt::test]
async fn a_live_stream_and_an_import_of_the_same_posts_give_the_same_stories() {
    let prefix = unique("same");
    let posts = conversation(&prefix);

    // One batch at a time: stories (and their ids) depend on the order posts are placed in,
    // which batches committed side by side do not keep.
    let one_at_a_time = || async {
        let env = TestEnv::new().await;
        let mut settings = env.settings();
        settings.ingest.max_batches_in_flight = 1;
        spawn_app_with(env, settings).await
    };
    let live = one_at_a_time().await;
    let events: Vec<String> = posts.iter().map(|(_, e)| e.clone()).collect();
    live.send_events(&events).await;
    assert!(live.wait_for_posts(posts.len() as i64, WAIT).await);

    let imported = one_at_a_time().await;
    let dir = fresh_dir("pulse-story-import");
    let file = dir.join("posts.jsonl");
    std::fs::write(&file, events.join("\n") + "\n").unwrap();
    let summary = import_file(&imported.env.settings(), &file).await;
    assert_eq!(summary.accepted, posts.len() as u64);
    assert!(imported.wait_for_posts(posts.len() as i64, WAIT).await);

    for app in [&live, &imported] {
        app.wait_for("/api/v1/stories", WAIT, |b| {
            b["items"].as_array().is_some_and(|i| i.len() == 2)
        })
        .await;
    }
    let a = stories_of_posts(&live).await;
    let b = stories_of_posts(&imported).await;
    assert_eq!(a, b, "the same posts, the same stories and ids");
    std::fs::remove_dir_all(&dir).ok();
    live.shutdown().await;
    imported.shutdown().await;
}

/// Posts per story id, from [`stories_of_posts`].
fn posts_per_story(stories: &BTreeMap<String, Value>) -> BTreeMap<i64, i64> {
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for story in stories.values().filter_map(Value::as_i64) {
        *counts.entry(story).or_default() += 1;
    }
    counts
}

#[actix_rt::test]
async fn a_story_counts_each_stored_post_once_however_often_it_is_sent() {
    let app = spawn_app().await;
    let redis = app.redis().await;
    let prefix = unique("again");
    let posts = conversation(&prefix);
    let repeated: Vec<String> = posts
        .iter()
        .filter(|(id, _)| !id.contains("-nothing-"))
        .filter(|(id, _)| ["-0", "-3", "-6"].iter().any(|n| id.ends_with(n)))
        .map(|(_, event)| event.clone())
        .collect();
    assert_eq!(repeated.len(), 6);

    // Each repeated post twice in a row, so most copies are read in their post's batch.
    let mut first = Vec::new();
    for (_, event) in &posts {
        first.push(event.clone());
        if repeated.contains(event) {
            first.push(event.clone());
        }
    }
    app.send_events(&first).await;
    assert!(app.wait_for_posts(posts.len() as i64, WAIT).await);
    assert!(wait_until(WAIT, || async { app.env.unfinished(&redis).await == 0 }).await);
    // Twice more once they are stored: later batches place them and find them stored.
    for _ in 0..2 {
        app.send_events(&repeated).await;
        assert!(wait_until(WAIT, || async { app.env.unfinished(&redis).await == 0 }).await);
    }

    // A post of the outage written later, sent last. The keeper writes in commit order, so
    // once its story's size reaches its stored posts, every write before (the copies')
    // is in, and the sizes are final.
    let late = format!("{prefix}-outage-late");
    let written = Utc::now() - chrono::Duration::minutes(30);
    app.send_events(&[post_at(&late, OUTAGE[0], written, "en")])
        .await;
    let stored = app
        .wait_for(&format!("/api/v1/posts/{late}"), WAIT, |p| {
            p["story_id"].is_i64()
        })
        .await;
    let id = stored["story_id"].as_i64().unwrap();
    let path = format!("/api/v1/stories/{id}");
    let counted = wait_until(WAIT, || async {
        let stored = posts_per_story(&stories_of_posts(&app).await);
        let size = app.get_ok(&path).await["size"].as_i64().unwrap_or(0);
        size >= stored.get(&id).copied().unwrap_or(1)
    })
    .await;
    assert!(counted, "the late post never counted in its story");

    let per_story = posts_per_story(&stories_of_posts(&app).await);
    assert!(per_story[&id] >= 2, "{per_story:?}");
    let list = app.get_ok("/api/v1/stories").await;
    let items = list["items"].as_array().unwrap();
    assert!(items.iter().any(|s| s["id"] == id), "{list}");
    for story in items {
        let id = story["id"].as_i64().unwrap();
        assert_eq!(
            story["size"].as_i64(),
            per_story.get(&id).copied(),
            "a story counts each of its stored posts once: {story}"
        );
    }
    app.shutdown().await;
}

#[actix_rt::test]
async fn another_producers_copy_of_a_post_never_moves_the_stored_one_into_its_story() {
    let prefix = unique("owned");
    let owned: Vec<String> = (0..2).map(|i| format!("{prefix}-outage-{i}")).collect();
    // The owner's posts say nothing alike: stored in no story.
    let first = spawn_app().await;
    let written = Utc::now() - chrono::Duration::hours(3);
    let own: Vec<String> = owned
        .iter()
        .zip(NOTHING)
        .map(|(id, text)| post_at(id, text, written, "en"))
        .collect();
    first.send_events(&own).await;
    assert!(first.wait_for_posts(2, WAIT).await);

    // A process that knows none of them reads a rival's conversation whose first outage posts
    // carry the owner's ids (refused as taken), then, once those are read, the rest: the
    // outage story is born from posts of earlier batches, the rival's copies among them.
    let second = first.shutdown().await.serve(|_| {}).await;
    let redis = second.redis().await;
    let posts = conversation(&prefix);
    let split = 1 + posts.iter().position(|(id, _)| *id == owned[1]).unwrap();
    for (n, (_, event)) in posts.iter().enumerate() {
        if n == split {
            assert!(wait_until(WAIT, || async { second.env.unfinished(&redis).await == 0 }).await);
        }
        let fields = vec![
            ("event", event.clone()),
            ("producer", "source:rival".to_string()),
        ];
        xadd_fields(&redis, &second.env.stream, fields).await;
    }
    // The owner's posts and the rival's, less its copies of the owner's.
    let stored = (own.len() + posts.len() - owned.len()) as i64;
    assert!(second.wait_for_posts(stored, WAIT).await);

    // Every write of the stories is in once each story counts the posts that carry it.
    let settled = wait_until(WAIT, || async {
        let per_story = posts_per_story(&stories_of_posts(&second).await);
        let list = second.get_ok("/api/v1/stories").await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let outage = items.iter().find(|s| {
            s["terms"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "outage"))
        });
        outage.is_some_and(|s| s["size"].as_i64().unwrap_or(0) >= 6)
            && items.iter().all(|s| {
                let id = s["id"].as_i64().unwrap_or(0);
                s["size"].as_i64() == per_story.get(&id).copied()
            })
    })
    .await;
    assert!(settled, "{}", second.get_ok("/api/v1/stories").await);
    for (id, text) in owned.iter().zip(NOTHING) {
        let post = second.get_ok(&format!("/api/v1/posts/{id}")).await;
        assert_eq!(post["text"], text, "{post}");
        assert!(
            post["story_id"].is_null(),
            "the owner's post was moved into the rival's story: {post}"
        );
    }
    second.shutdown().await;
}

/// A `new_story` rule took the 50 stories born last: a producer that kept more than 50 fresh
/// stories in the window, each barely at `min_volume` or alerted on already, kept a story many
/// wrote about out of the list, and it never alerted. The rule takes the largest stories it
/// has not alerted on; those it has keep their open alerts while they are new.
#[actix_rt::test]
async fn a_flood_of_fresh_stories_does_not_keep_a_real_one_from_new_story_rules() {
    use pulse::db::alerts as rules;
    use pulse::db::stories::{alert_candidates, still_new};
    use pulse::models::alerts::RuleKind;

    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    let id = rules::create_rule(&pg, "New stories", RuleKind::NewStory)
        .await
        .unwrap();
    pg.execute(
        "UPDATE alert_rules SET min_volume = 3, window_minutes = 30 WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    let rule = rules::rule(&pg, id).await.unwrap().unwrap();
    // The real story, born ten minutes ago with 40 posts; 60 stories of 3 posts born since, a
    // second apart; and 60 larger ones born since that the rule alerted on, the alerts of half
    // of them resolved.
    pg.batch_execute(&format!(
        "INSERT INTO stories (id, label, terms, born_at, first_at, last_at, size, status)
         SELECT id, 'story ' || id, ARRAY['w' || id], born, born, born, size, 'live' FROM (
             SELECT 1 AS id, now() - interval '10 minutes' AS born, 40 AS size
             UNION ALL SELECT g, now() - make_interval(secs => g - 1000), 3
                 FROM generate_series(1000, 1059) g
             UNION ALL SELECT g, now() - make_interval(secs => g - 2000), 100
                 FROM generate_series(2000, 2059) g
         ) s;
         INSERT INTO posts (id, platform, author_id, author_followers, text, created_at,
             sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model, stream_id,
             story_id)
         SELECT 'p-' || s.id || '-' || g, 'twitter', 'a', 1, 'text', s.born_at, 'neutral', 0,
             '{{}}', 0, 0, 'seed', '0-0', s.id
         FROM stories s, generate_series(1, 3) g;
         INSERT INTO alerts (rule_id, rule_name, kind, severity, dimension, key, value,
             threshold, evidence, status)
         SELECT {id}, 'New stories', 'new_story', 'warning', 'overall', g::text, 100, 3, '{{}}',
             CASE WHEN g < 2030 THEN 'firing' ELSE 'resolved' END
         FROM generate_series(2000, 2059) g;"
    ))
    .await
    .unwrap();

    let now = Utc::now();
    let from = now - chrono::TimeDelta::minutes(29);
    let candidates = alert_candidates(&pg, &rule, from, now).await.unwrap();
    let keys: Vec<i64> = candidates.iter().map(|c| c.key.parse().unwrap()).collect();
    assert_eq!(keys.len(), 50, "{keys:?}");
    assert_eq!(keys[0], 1, "the real story comes first: {keys:?}");
    assert!(
        keys[1..].iter().all(|k| (1000..1060).contains(k)),
        "a story alerted on is a candidate again: {keys:?}"
    );

    let mut held = still_new(&pg, &rule, from).await.unwrap();
    held.sort();
    let open: Vec<String> = (2000..2030).map(|k: i64| k.to_string()).collect();
    assert_eq!(held, open);
}

/// The sessions of the test database waiting for a lock to write the stories: the keeper's.
const STORY_WRITERS: &str = "SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
      AND (query ILIKE 'INSERT INTO stories%' OR query ILIKE '%FROM stories%FOR UPDATE%')";

/// A story write whose session ended (as PostgreSQL's do when it restarts or fails over) was
/// dropped: the conversation's stories were never written, or written short, while their posts
/// named them.
#[actix_rt::test]
async fn a_story_write_whose_session_ended_is_written_when_tried_again() {
    let app = spawn_app().await;
    let lock = app.env.pg().await;
    lock.batch_execute("BEGIN; LOCK TABLE stories IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let prefix = unique("cut");
    send_conversation(&app, &prefix).await;

    let admin = &app.env.pg().await;
    let writers = || async move {
        let rows = admin.query(STORY_WRITERS, &[]).await.unwrap();
        rows.iter()
            .map(|r| r.get::<_, i32>(0))
            .collect::<Vec<i32>>()
    };
    let waiting = wait_until(WAIT, || async { !writers().await.is_empty() }).await;
    assert!(waiting, "no story write waited for the lock");
    let cut = &writers().await;
    for pid in cut {
        admin
            .execute("SELECT pg_terminate_backend($1)", &[pid])
            .await
            .unwrap();
    }
    let tried_again = wait_until(WAIT, || async {
        writers().await.iter().any(|pid| !cut.contains(pid))
    })
    .await;
    lock.batch_execute("COMMIT").await.unwrap();
    assert!(
        tried_again,
        "no story write waited again once the first was cut off"
    );

    let list = two_stories(&app, "/api/v1/stories").await;
    let listed: BTreeSet<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    let named: BTreeSet<i64> = stories_of_posts(&app)
        .await
        .values()
        .filter_map(Value::as_i64)
        .collect();
    assert_eq!(named, listed, "every story a post names is stored");
    app.shutdown().await;
}

/// A story's size kept counting its deleted posts: deletions never touched it.
#[actix_rt::test]
async fn a_deleted_post_no_longer_counts_in_its_storys_size() {
    let app = spawn_app().await;
    let redis = app.redis().await;
    let prefix = unique("shrink");
    send_conversation(&app, &prefix).await;
    let stories = stories_of_posts(&app).await;
    let id = stories[&format!("{prefix}-outage-7")]
        .as_i64()
        .expect("the outage is a story");
    let path = format!("/api/v1/stories/{id}");
    app.wait_for(&path, WAIT, |d| d["size"] == 8).await;

    let delete = |post: &str| {
        json!({"type": "delete", "post_id": format!("{prefix}-outage-{post}"), "at": Utc::now().to_rfc3339()})
            .to_string()
    };
    app.send_events(&[delete("1"), delete("5")]).await;
    app.wait_for(&path, WAIT, |d| d["size"] == 6).await;

    // Deleted again, a post is taken out once.
    app.send_events(&[delete("1")]).await;
    assert!(wait_until(WAIT, || async { app.env.unfinished(&redis).await == 0 }).await);
    let detail = app.get_ok(&path).await;
    assert_eq!(detail["size"], 6, "{detail}");
    let list = app.get_ok("/api/v1/stories").await;
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id);
    assert_eq!(listed.map(|s| s["size"].clone()), Some(json!(6)), "{list}");
    app.shutdown().await;
}

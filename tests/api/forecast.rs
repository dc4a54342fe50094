//! The reach forecast against a real Pulse: authors' track records come from their cascades in
//! the store (finished, and still growing at their shares so far), per platform; nothing a forecast reads is written; bad requests name each
//! wrong field.

use crate::common::*;
use pulse::actors::virality::refit_platforms;
use pulse::db::forecast::{
    author_entries, finished_posts, platforms_to_refit, record_finished_cascades,
    record_growing_cascades, RefitScope, PERCENTILE_HISTORY, REFIT_TEXT_CHARS,
};
use pulse::models::producer::{default_trust, Trust};
use pulse::virality::forecast::{AuthorRecord, RECORD_HISTORY};
use serde_json::{json, Value};

/// The `actor=owner` pairs of the default `ingest.producer_trust`, as the tracker passes them.
static TRUST: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| Trust::new(&default_trust()).pairs().to_vec());

/// `n` posts of `author` on `platform`, each with a finished cascade of `shares` final shares.
async fn finished_cascades(
    pg: &tokio_postgres::Client,
    author: &str,
    platform: &str,
    n: i64,
    shares: i64,
) {
    let ids = format!("{author}-{platform}");
    produced_cascades(pg, "stream", &ids, author, platform, n, shares).await;
}

/// As [`finished_cascades`], stored by `producer` under ids `<ids>-<i>`.
async fn produced_cascades(
    pg: &tokio_postgres::Client,
    producer: &str,
    ids: &str,
    author: &str,
    platform: &str,
    n: i64,
    shares: i64,
) {
    pg.execute(
        "WITH p AS (
             INSERT INTO posts (id, platform, author_id, author_followers, text, created_at,
                 sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model, stream_id,
                 producer)
             SELECT $5::text || '-' || g, $2::text, $1::text, 100,
                 'an earlier post',
                 now() - make_interval(days => 10 + g::int), 'neutral', 0, '{}', 0, 0, 'seed', '0-0',
                 $6::text
             FROM generate_series(1, $3::int8) g
             RETURNING id, created_at)
         INSERT INTO virality_cascades (post_id, platform, created_at, observed_at, status, shares,
             model_name, model_version, params_hash, updated_at, producer)
         SELECT id, $2::text, created_at, created_at, 'finished', $4::int8, 'm', '1', 'h',
             now() - interval '1 minute', $6::text FROM p",
        &[&author, &platform, &n, &shares, &ids, &producer],
    )
    .await
    .unwrap();
}

/// Rows of posts and cascades in the store.
async fn stored(pg: &tokio_postgres::Client) -> i64 {
    pg.value_of(
        "SELECT (SELECT count(*) FROM posts) + (SELECT count(*) FROM virality_cascades) \
             + (SELECT count(*) FROM author_records)",
    )
    .await
}

/// Everything the store records of `author` on twitter, whenever posted.
async fn record_of(pg: &tokio_postgres::Client, author: &str) -> AuthorRecord {
    let entries = author_entries(pg, "twitter", &[author.to_string()])
        .await
        .unwrap();
    entries
        .get(author)
        .map(|e| AuthorRecord::posted_before(e, f64::INFINITY))
        .unwrap_or_default()
}

/// Everything the store records of the author `prolific`, whenever posted.
async fn prolific(pg: &tokio_postgres::Client) -> AuthorRecord {
    record_of(pg, "prolific").await
}

/// When drafts go out: an hour after the tests started, after everything a test stores, and
/// one time for all, so two drafts differ only where a test makes them differ.
static DRAFTS_AT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339());

fn draft(author: &str, platform: &str) -> Value {
    json!({
        "text": "Our new headphones ship today, and they are lovely #launch https://example.com/x",
        "platform": platform,
        "author": {"id": author, "followers": 5000},
        "at": *DRAFTS_AT
    })
}

fn of(body: &Value, i: usize) -> &Value {
    &body["forecasts"][i]
}

#[actix_rt::test]
async fn an_author_whose_cascades_spread_is_forecast_above_a_new_one_and_one_whose_did_not() {
    let app = recording_by_hand().await;
    let mut pg = app.env.pg().await;
    finished_cascades(&pg, "loud", "twitter", 12, 3_000).await;
    finished_cascades(&pg, "quiet", "twitter", 12, 2).await;
    // Only on another platform: on twitter this author is new.
    finished_cascades(&pg, "elsewhere", "reddit", 12, 3_000).await;
    // What the virality leader does every minute.
    let recorded = record_finished_cascades(&mut pg, &TRUST).await.unwrap();
    assert_eq!(recorded, 36);
    let stored_before = stored(&pg).await;

    let (status, body) = app
        .post(
            "/api/v1/forecast",
            &json!({"posts": [
                draft("loud", "twitter"),
                draft("newcomer", "twitter"),
                draft("quiet", "twitter"),
                draft("elsewhere", "twitter"),
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let expected = |i: usize| of(&body, i)["expected_shares"].as_f64().unwrap();
    assert!(expected(0) > expected(1), "{body}");
    assert!(expected(1) > expected(2), "{body}");
    assert_eq!(of(&body, 0)["author"]["cascades"], 12);
    assert_eq!(of(&body, 0)["author"]["new_author"], false);
    assert_eq!(of(&body, 1)["author"]["new_author"], true);
    assert_eq!(of(&body, 3)["author"]["new_author"], true, "{body}");
    assert!((expected(3) - expected(1)).abs() < 1e-9, "{body}");
    let typical = of(&body, 0)["author"]["typical_shares"].as_f64().unwrap();
    assert!((typical - 3_000.0).abs() < 1.0, "{body}");
    for i in 0..4 {
        let f = of(&body, i);
        let (low, high) = (
            f["interval"]["low"].as_f64().unwrap(),
            f["interval"]["high"].as_f64().unwrap(),
        );
        assert!(low <= expected(i) && expected(i) <= high, "{f}");
        let p = f["viral_probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{f}");
        // 24 finished twitter cascades: enough for a percentile among them.
        assert_eq!(f["percentile_among"], 24, "{f}");
        assert!(f["percentile"].is_number(), "{f}");
    }
    let record_factor = |i: usize| {
        of(&body, i)["drivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["group"] == "author track record")
            .unwrap()["factor"]
            .as_f64()
            .unwrap()
    };
    assert!(record_factor(0) > 1.0 && record_factor(2) < 1.0, "{body}");
    assert!(
        of(&body, 0)["viral_probability"].as_f64() > of(&body, 2)["viral_probability"].as_f64()
    );
    assert!(body["model"]["id"]
        .as_str()
        .unwrap()
        .starts_with("reach-2:"));
    assert_eq!(
        stored(&pg).await,
        stored_before,
        "a forecast stores nothing"
    );
}

#[actix_rt::test]
async fn on_a_platform_of_small_cascades_a_forecast_is_set_to_their_level() {
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    // 30 finished mastodon cascades of 1 to 32 shares; none stored for bluesky.
    for (i, shares) in [1, 2, 4, 8, 16, 32].into_iter().enumerate() {
        finished_cascades(&pg, &format!("m{i}"), "mastodon", 5, shares).await;
    }
    let (status, body) = app
        .post(
            "/api/v1/forecast",
            &json!({"posts": [draft("newcomer", "mastodon"), draft("newcomer", "bluesky")]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (here, away) = (of(&body, 0), of(&body, 1));
    let expected = |f: &Value| f["expected_shares"].as_f64().unwrap();
    // Typical here: exp(mean ln(1 + shares)) - 1 = 6.4 shares.
    assert!(
        (2.0..20.0).contains(&expected(here)),
        "a new author on a platform of small cascades is forecast near its typical one: {here}"
    );
    assert!(expected(away) > 10.0 * expected(here), "{body}");
    let percentile = here["percentile"].as_f64().unwrap();
    assert!((10.0..90.0).contains(&percentile), "{here}");
    assert_eq!(here["percentile_among"], 30);
    assert!(
        away["percentile"].is_null() && away["percentile_among"] == 0,
        "{away}"
    );
    assert!(
        here["interval"]["high"].as_f64().unwrap() < 200.0,
        "the interval is at the platform's level too: {here}"
    );
}

/// 600 finished cascades on `platform` of 60 authors, each as large as its author's audience.
async fn audience_driven_cascades(pg: &tokio_postgres::Client, platform: &str) {
    pg.execute(
        "WITH p AS (
             INSERT INTO posts (id, platform, author_id, author_followers, text, created_at,
                 sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model, stream_id)
             SELECT $1 || '-' || g, $1, 'author-' || (g % 60), 10 * (1 + (g * 7919) % 5000),
                 'an earlier post about nothing in particular',
                 now() - make_interval(days => 10, mins => g::int), 'neutral', 0, '{}', 0, 0,
                 'seed', '0-0'
             FROM generate_series(1, 600) g
             RETURNING id, created_at, author_followers)
         INSERT INTO virality_cascades (post_id, platform, created_at, observed_at, status, shares,
             model_name, model_version, params_hash, updated_at)
         SELECT id, $1, created_at, created_at, 'finished',
             author_followers / 100 + (author_followers / 10) % 3, 'm', '1', 'h',
             now() - interval '1 minute' FROM p",
        &[&platform],
    )
    .await
    .unwrap();
}

#[actix_rt::test]
async fn the_tracker_refits_a_platform_as_soon_as_it_has_enough_finished_cascades() {
    let app = spawn_app_tuned(|s| {
        // The pass over every platform is hourly; the one platform that comes to enough cascades
        // afterwards is refitted at the next check, as often as track records are recorded.
        s.virality.forecast_refit_interval_secs = 3_600;
        s.virality.author_records_interval_ms = 200;
        s.virality.forecast_refit_min_cascades = 500;
    })
    .await;
    let pg = app.env.pg().await;
    for platform in ["mastodon", "bluesky"] {
        audience_driven_cascades(&pg, platform).await;
        let asked = json!({"posts": [draft("someone", platform)]});
        let refitted = format!("reach-2+{platform}:");
        let answer = |status: u16, body: &Value| {
            let model = body["forecasts"][0]["model"].as_str().unwrap_or_default();
            status == 200 && model.starts_with(&refitted)
        };
        let (adopted, last) = forecast_until(&app, &asked, answer).await;
        assert!(
            adopted,
            "no refitted model was adopted for {platform}: {last}"
        );
    }
}

#[actix_rt::test]
async fn a_check_for_new_platforms_passes_over_those_refitted_and_those_that_gave_no_model() {
    let app = spawn_app().await;
    let mut pg = app.env.pg().await;
    audience_driven_cascades(&pg, "bluesky").await;
    audience_driven_cascades(&pg, "reddit").await;
    // Every reddit cascade of one size: nothing to rank, so no model.
    pg.execute(
        "UPDATE virality_cascades SET shares = 3 WHERE platform = 'reddit'",
        &[],
    )
    .await
    .unwrap();
    let new_ones = |except: &[&str]| RefitScope::NeverFitted {
        except: except.iter().map(|p| p.to_string()).collect(),
    };
    let found = platforms_to_refit(&pg, 500, &new_ones(&[])).await.unwrap();
    let mut sorted = found.clone();
    sorted.sort();
    assert_eq!(sorted, ["bluesky", "reddit"]);

    let pass = refit_platforms(&mut pg, 500, &new_ones(&[])).await.unwrap();
    assert_eq!(
        (pass.adopted, pass.without_model),
        (1, vec!["reddit".to_string()])
    );
    // bluesky is refitted now; reddit is left out when named, as the tracker names it.
    let found = platforms_to_refit(&pg, 500, &new_ones(&[])).await.unwrap();
    assert_eq!(found, ["reddit"]);
    let found = platforms_to_refit(&pg, 500, &new_ones(&["reddit"]))
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
    // The periodic pass takes every platform with enough cascades.
    let mut found = platforms_to_refit(&pg, 500, &RefitScope::Every)
        .await
        .unwrap();
    found.sort();
    assert_eq!(found, ["bluesky", "reddit"]);
}

#[actix_rt::test]
async fn a_platform_whose_cascades_follow_their_audience_gets_a_forecast_refitted_on_them() {
    let app = spawn_app().await;
    let mut pg = app.env.pg().await;
    audience_driven_cascades(&pg, "bluesky").await;
    record_finished_cascades(&mut pg, &TRUST).await.unwrap();
    let pass = refit_platforms(&mut pg, 500, &RefitScope::Every)
        .await
        .unwrap();
    assert_eq!(pass.adopted, 1);
    let row = pg
        .query_one(
            "SELECT adopted, cascades, spearman, replaced_spearman FROM forecast_models
             WHERE platform = 'bluesky'",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i64>(1), 600);
    let (refitted, shipped): (f64, f64) = (row.get(2), row.get(3));
    assert!(
        refitted > 0.9 && refitted > shipped,
        "{refitted} against {shipped}"
    );

    let with_followers = |platform: &str, followers: u64| {
        let mut d = draft("someone", platform);
        d["author"]["followers"] = json!(followers);
        d
    };
    let (status, body) = app
        .post(
            "/api/v1/forecast",
            &json!({"posts": [
                with_followers("bluesky", 100),
                with_followers("bluesky", 50_000),
                with_followers("twitter", 100),
                with_followers("twitter", 50_000),
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let expected = |i: usize| of(&body, i)["expected_shares"].as_f64().unwrap();
    assert!(expected(1) > 10.0 * expected(0), "{body}");
    let model = |i: usize| of(&body, i)["model"].as_str().unwrap().to_string();
    assert!(model(0).starts_with("reach-2+bluesky:"), "{body}");
    assert_eq!(model(0), model(1));
    // Twitter has no cascades here: the shipped model, where followers carry no weight.
    assert_eq!(model(2), body["model"]["id"].as_str().unwrap());
    assert!((expected(2) - expected(3)).abs() < 1e-9, "{body}");
}

#[actix_rt::test]
async fn a_refit_shares_its_cascades_between_producers_so_a_flood_takes_only_the_room_left() {
    let app = recording_by_hand().await;
    let mut pg = app.env.pg().await;
    // The main feed's 300 cascades, a month old; another producer's 12,000 and a third's
    // 6,000, all more recent.
    produced_cascades(&pg, "source:main", "main", "m", "twitter", 300, 5).await;
    produced_cascades(&pg, "key:b", "flood", "f", "twitter", 12_000, 1).await;
    produced_cascades(&pg, "key:c", "third", "t", "twitter", 6_000, 2).await;
    pg.batch_execute(
        "UPDATE virality_cascades SET last_activity_at = now() - interval '30 days'
         WHERE post_id LIKE 'main-%';
         UPDATE virality_cascades SET last_activity_at = created_at WHERE post_id LIKE 'third-%'",
    )
    .await
    .unwrap();
    let posts = finished_posts(&mut pg, "twitter").await.unwrap();
    assert_eq!(posts.len(), PERCENTILE_HISTORY as usize);
    let of_producer = |producer: &str| posts.iter().filter(|p| p.producer == producer).count();
    assert_eq!(of_producer("source:main"), 300);
    assert_eq!(of_producer("key:b"), 4_850);
    assert_eq!(of_producer("key:c"), 4_850);
    // Each producer's most recent: the third's oldest 1,150 are left out.
    let oldest_read = posts
        .iter()
        .filter(|p| p.producer == "key:c")
        .map(|p| p.at)
        .fold(f64::INFINITY, f64::min);
    let newest_left_out: f64 = pg
        .value_of(
            "SELECT extract(epoch FROM created_at)::float8 FROM posts WHERE producer = 'key:c'
             ORDER BY created_at DESC OFFSET 4850 LIMIT 1",
        )
        .await;
    assert!(
        oldest_read > newest_left_out,
        "{oldest_read} {newest_left_out}"
    );
}

#[actix_rt::test]
async fn a_refit_reads_each_post_with_the_record_its_author_had_when_it_went_out() {
    let app = spawn_app().await;
    let mut pg = app.env.pg().await;
    // One author's posts 40, 30 and 25 days ago (100, 10 and 1,000 shares); the last is long.
    pg.execute(
        "WITH p AS (
             INSERT INTO posts (id, platform, author_id, author_followers, text, created_at,
                 sentiment_label, sentiment_score, emotions, toxicity, churn_risk, model, stream_id)
             SELECT 'rec-' || d, 'youtube', 'x', 0, repeat('word ', CASE WHEN d = 25 THEN 1000 ELSE 3 END),
                 now() - make_interval(days => d), 'neutral', 0, '{}', 0, 0, 'seed', '0-0'
             FROM unnest(ARRAY[40, 30, 25]) d
             RETURNING id, created_at)
         INSERT INTO virality_cascades (post_id, platform, created_at, observed_at, status, shares,
             model_name, model_version, params_hash, updated_at)
         SELECT id, 'youtube', created_at, created_at, 'finished',
             CASE id WHEN 'rec-40' THEN 100 WHEN 'rec-30' THEN 10 ELSE 1000 END, 'm', '1', 'h',
             now() - interval '1 minute' FROM p",
        &[],
    )
    .await
    .unwrap();
    // The post of 30 days ago had 4 shares a day in and its 10 six days in: its predictions.
    pg.execute(
        "INSERT INTO virality_predictions (post_id, observed_at, age_secs, shares,
             virality_score, virality_probability, viral, predicted_final_shares, ci_lower,
             ci_upper, dynamics, structural_virality, velocity, acceleration, params_hash)
         SELECT 'rec-30', now() - make_interval(days => 30 - d), d * 86400, s, 0, 0, false,
             0, 0, 0, 'broad', 0, 0, 0, 'h'
         FROM (VALUES (1, 4), (6, 10)) v(d, s)",
        &[],
    )
    .await
    .unwrap();
    record_finished_cascades(&mut pg, &TRUST).await.unwrap();
    let mut posts = finished_posts(&mut pg, "youtube").await.unwrap();
    posts.sort_by(|a, b| a.at.total_cmp(&b.at));
    let records: Vec<(u64, f64, f64)> = posts
        .iter()
        .map(|p| {
            let r = p.record;
            (r.cascades, r.max_log.exp_m1().round(), r.sum_log)
        })
        .collect();
    // 40 days ago: nothing before; 30 days ago: the post of 10 days earlier at its final size;
    // 25 days ago: that one too, and the post of 5 days earlier at the 4 shares it had then.
    let expected = [
        (0, 0.0, 0.0),
        (1, 100.0, 101f64.ln()),
        (2, 100.0, 101f64.ln() + 5f64.ln()),
    ];
    for (got, want) in records.iter().zip(expected) {
        assert_eq!((got.0, got.1), (want.0, want.1), "{posts:?}");
        assert!((got.2 - want.2).abs() < 1e-9, "{posts:?}");
    }
    assert_eq!(records.len(), 3);
    assert_eq!(posts[2].final_shares, 1000);
    assert_eq!(posts[2].followers, None, "0 followers is not known");
    assert_eq!(posts[2].text.chars().count(), REFIT_TEXT_CHARS as usize);
}

#[actix_rt::test]
async fn a_forecast_reads_the_text_in_the_language_its_caller_gives() {
    let app = spawn_app().await;
    let mut tagged = draft("a", "twitter");
    tagged["text"] = json!("Gift");
    tagged["lang"] = json!("pt-BR");
    let mut untagged = draft("a", "twitter");
    untagged["text"] = json!("Das ist wirklich wunderbar, ich freue mich sehr auf den Sommer");
    let (status, body) = app
        .post("/api/v1/forecast", &json!({"posts": [tagged, untagged]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(of(&body, 0)["lang"], "pt", "{body}");
    assert_eq!(of(&body, 1)["lang"], "de", "{body}");
}

#[actix_rt::test]
async fn forecast_requests_name_each_wrong_field() {
    let app = spawn_app().await;
    let too_long = "x".repeat(20_001);
    let (status, body) = app
        .post(
            "/api/v1/forecast",
            &json!({"posts": [
                {"text": "  ", "platform": "myspace", "author": {"id": ""}},
                {"text": too_long, "platform": "twitter",
                 "author": {"id": "a", "followers": 20_000_000_000u64}, "product": ""},
                {"text": "a\u{0}b", "platform": "twitter",
                 "author": {"id": "a\u{0}"}, "product": "p\u{0}", "lang": "english!"},
            ]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    assert_eq!(
        error_fields(&body),
        [
            "posts[0].text",
            "posts[0].platform",
            "posts[0].author.id",
            "posts[1].text",
            "posts[1].author.followers",
            "posts[1].product",
            "posts[2].author.id",
            "posts[2].lang",
            "posts[2].product",
        ],
        "{body}"
    );

    let (status, body) = app.post("/api/v1/forecast", &json!({"posts": []})).await;
    assert_eq!(status, 400, "{body}");
    let many: Vec<Value> = (0..65)
        .map(|i| draft(&format!("a{i}"), "twitter"))
        .collect();
    let (status, body) = app.post("/api/v1/forecast", &json!({"posts": many})).await;
    assert_refused(status, &body, "invalid_request", "invalid");
    assert_eq!(error_fields(&body), ["posts"]);
    // Past the 65th, elements are not read as posts: however long the list, no more than 65
    // are built, and it is refused for its length whatever follows.
    let longer = past_its_bound(many, 10_000);
    let (status, body) = app
        .post("/api/v1/forecast", &json!({"posts": longer}))
        .await;
    assert_refused(status, &body, "invalid_request", "invalid");
    assert_eq!(error_fields(&body), ["posts"], "{body}");
    // Each platform and product pair reads up to 10,000 finished cascades: 9 are refused.
    let spread: Vec<Value> = (0..9)
        .map(|i| {
            let mut d = draft("a", "twitter");
            d["product"] = json!(format!("product-{i}"));
            d
        })
        .collect();
    let (status, body) = app
        .post("/api/v1/forecast", &json!({"posts": spread}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_fields(&body), ["posts"], "{body}");
    let (status, body) = app
        .post(
            "/api/v1/forecast",
            &json!({"posts": [draft("a", "twitter")], "store": true}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_json", "{body}");
}

#[actix_rt::test]
async fn a_track_record_counts_each_cascade_once_and_keeps_the_most_recent_posts() {
    let app = recording_by_hand().await;
    let mut pg = app.env.pg().await;
    let many = RECORD_HISTORY + 10;
    finished_cascades(&pg, "prolific", "twitter", many, 5).await;
    // Still active: not part of any record.
    pg.execute(
        "UPDATE virality_cascades SET status = 'active' WHERE post_id = 'prolific-twitter-1'",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        record_finished_cascades(&mut pg, &TRUST).await.unwrap(),
        many - 1
    );
    // Nothing new: a second pass reads nothing and changes nothing.
    assert_eq!(record_finished_cascades(&mut pg, &TRUST).await.unwrap(), 0);
    let before = prolific(&pg).await;
    assert_eq!(before.cascades, RECORD_HISTORY as u64);
    assert!((before.sum_log - RECORD_HISTORY as f64 * 6f64.ln()).abs() < 1e-9);

    // The most recent post finishes (again, or late) with another size: it replaces its old
    // size, and the active one that finishes now pushes out the oldest kept.
    pg.batch_execute(
        "UPDATE virality_cascades SET status = 'finished', shares = 99,
             updated_at = now() - interval '1 minute'
         WHERE post_id IN ('prolific-twitter-1', 'prolific-twitter-2')",
    )
    .await
    .unwrap();
    assert_eq!(record_finished_cascades(&mut pg, &TRUST).await.unwrap(), 2);
    let after = prolific(&pg).await;
    assert_eq!(after.cascades, RECORD_HISTORY as u64);
    let expected = (RECORD_HISTORY - 2) as f64 * 6f64.ln() + 2.0 * 100f64.ln();
    assert!((after.sum_log - expected).abs() < 1e-9, "{after:?}");
    assert!((after.max_log - 100f64.ln()).abs() < 1e-12);

    // A row written this instant may belong to a transaction still committing behind it: it is
    // left for a later pass.
    pg.batch_execute(
        "UPDATE virality_cascades SET shares = 7, updated_at = now()
         WHERE post_id = 'prolific-twitter-3'",
    )
    .await
    .unwrap();
    assert_eq!(record_finished_cascades(&mut pg, &TRUST).await.unwrap(), 0);
    assert_eq!(prolific(&pg).await, after);
}

#[actix_rt::test]
async fn a_forecast_counts_only_the_authors_posts_from_before_its_time() {
    let app = recording_by_hand().await;
    let mut pg = app.env.pg().await;
    // Posts 11 and 12 days ago.
    finished_cascades(&pg, "prolific", "twitter", 2, 40).await;
    record_finished_cascades(&mut pg, &TRUST).await.unwrap();
    let posted: Vec<chrono::DateTime<chrono::Utc>> = pg
        .column("SELECT created_at FROM posts ORDER BY created_at", &[])
        .await;
    let as_of = |at: chrono::DateTime<chrono::Utc>| {
        let mut d = draft("prolific", "twitter");
        d["at"] = json!(at.to_rfc3339());
        d
    };
    let second = chrono::TimeDelta::seconds(1);
    let asked = json!({"posts": [
        as_of(posted[0]), as_of(posted[0] + second), as_of(posted[1] + second)
    ]});
    let (status, body) = app.post("/api/v1/forecast", &asked).await;
    assert_eq!(status, 200, "{body}");
    // The first post, forecast as of its own time, does not read itself.
    let cascades: Vec<&Value> = (0..3)
        .map(|i| &of(&body, i)["author"]["cascades"])
        .collect();
    assert_eq!(cascades, [&json!(0), &json!(1), &json!(2)], "{body}");
    assert_eq!(of(&body, 0)["author"]["new_author"], true);
}

#[actix_rt::test]
async fn a_cascade_still_growing_counts_in_its_authors_record_at_its_shares_so_far() {
    let app = recording_by_hand().await;
    let mut pg = app.env.pg().await;
    finished_cascades(&pg, "prolific", "twitter", 1, 12).await;
    pg.execute(
        "UPDATE virality_cascades SET status = 'active', last_activity_at = now()",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(record_finished_cascades(&mut pg, &TRUST).await.unwrap(), 0);
    assert_eq!(record_growing_cascades(&pg, &TRUST).await.unwrap(), 1);
    let r = prolific(&pg).await;
    assert_eq!(r.cascades, 1);
    assert!((r.sum_log - 13f64.ln()).abs() < 1e-12, "{r:?}");
    // Unchanged since: nothing is written again.
    assert_eq!(record_growing_cascades(&pg, &TRUST).await.unwrap(), 0);

    pg.execute("UPDATE virality_cascades SET shares = 20", &[])
        .await
        .unwrap();
    assert_eq!(record_growing_cascades(&pg, &TRUST).await.unwrap(), 1);
    assert!((prolific(&pg).await.sum_log - 21f64.ln()).abs() < 1e-12);

    // It finishes: its final size replaces what was seen, still one cascade, and it is no
    // longer read as growing.
    pg.execute(
        "UPDATE virality_cascades SET status = 'finished', shares = 25,
             updated_at = now() - interval '1 minute'",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(record_growing_cascades(&pg, &TRUST).await.unwrap(), 0);
    assert_eq!(record_finished_cascades(&mut pg, &TRUST).await.unwrap(), 1);
    let r = prolific(&pg).await;
    assert_eq!(r.cascades, 1);
    assert!((r.sum_log - 26f64.ln()).abs() < 1e-12, "{r:?}");
}

#[actix_rt::test]
async fn another_producers_posts_under_an_authors_id_do_not_move_their_record() {
    let app = recording_by_hand().await;
    let mut pg = app.env.pg().await;
    // The author's own feed is recorded first, then an ingest key posts as them, with cascades
    // of a million shares, and of one.
    finished_cascades(&pg, "prolific", "twitter", 5, 5).await;
    record_finished_cascades(&mut pg, &TRUST).await.unwrap();
    let own = record_of(&pg, "prolific").await;
    assert_eq!(own.cascades, 5);
    produced_cascades(&pg, "key:b", "b-huge", "prolific", "twitter", 5, 1_000_000).await;
    produced_cascades(&pg, "key:b", "b-tiny", "prolific", "twitter", 50, 1).await;
    assert_eq!(record_finished_cascades(&mut pg, &TRUST).await.unwrap(), 55);
    assert_eq!(record_of(&pg, "prolific").await, own);
    // A forecast reads the author's own record alone.
    let (status, body) = app
        .post(
            "/api/v1/forecast",
            &json!({"posts": [draft("prolific", "twitter")]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(of(&body, 0)["author"]["cascades"], 5, "{body}");
    let typical = of(&body, 0)["author"]["typical_shares"].as_f64().unwrap();
    assert!((typical - 5.0).abs() < 1e-6, "{body}");

    // An author first recorded from the key's posts: the stream, trusted for every producer by
    // default, still joins the record; a third key does not, unless trusted for the owner.
    produced_cascades(&pg, "key:b", "b-first", "newcomer", "twitter", 2, 3).await;
    record_finished_cascades(&mut pg, &TRUST).await.unwrap();
    finished_cascades(&pg, "newcomer", "twitter", 3, 8).await;
    produced_cascades(&pg, "key:c", "c-late", "newcomer", "twitter", 4, 900).await;
    record_finished_cascades(&mut pg, &TRUST).await.unwrap();
    assert_eq!(record_of(&pg, "newcomer").await.cascades, 5);
    let owner: String = pg
        .value_of("SELECT producer FROM author_records WHERE author_id = 'newcomer'")
        .await;
    assert_eq!(owner, "key:b");
    pg.batch_execute(
        "UPDATE virality_cascades SET updated_at = now() - interval '30 seconds'
         WHERE post_id LIKE 'c-late-%'",
    )
    .await
    .unwrap();
    let trusted = vec!["key:c=key:b".to_string()];
    assert_eq!(
        record_finished_cascades(&mut pg, &trusted).await.unwrap(),
        4
    );
    assert_eq!(record_of(&pg, "newcomer").await.cascades, 9);

    // The growing pass keeps to the same rule.
    produced_cascades(&pg, "key:b", "b-growing", "prolific", "twitter", 1, 40).await;
    pg.execute(
        "UPDATE virality_cascades SET status = 'active', last_activity_at = now()
         WHERE post_id = 'b-growing-1'",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(record_growing_cascades(&pg, &TRUST).await.unwrap(), 0);
    assert_eq!(record_of(&pg, "prolific").await, own);

    // A record kept from before producers were recorded, its posts gone, goes to the next
    // producer recorded in it.
    pg.batch_execute("UPDATE author_records SET producer = NULL WHERE author_id = 'prolific'")
        .await
        .unwrap();
    produced_cascades(&pg, "key:c", "c-legacy", "prolific", "twitter", 1, 2).await;
    pg.batch_execute(
        "UPDATE virality_cascades SET updated_at = now() - interval '10 seconds'
         WHERE post_id = 'c-legacy-1'",
    )
    .await
    .unwrap();
    assert_eq!(record_finished_cascades(&mut pg, &TRUST).await.unwrap(), 1);
    assert_eq!(record_of(&pg, "prolific").await.cascades, 6);
    let owner: String = pg
        .value_of("SELECT producer FROM author_records WHERE author_id = 'prolific'")
        .await;
    assert_eq!(owner, "key:c");
}

/// An application whose tracker leaves the track-record passes to the test, which runs them
/// itself: the tracker's own passes (every minute, and after its writes) could otherwise come
/// first on a slow run.
async fn recording_by_hand() -> TestApp {
    let env = TestEnv::new().await;
    let mut s = env.settings();
    s.virality.author_records_interval_ms = 3_600_000;
    s.virality.author_records_settle_ms = 0;
    spawn_app_with(env, s).await
}

/// A Pulse whose tracker expires cascades after `expiry_secs` without activity and records
/// authors' cascades every 200 ms.
async fn recording_app(expiry_secs: u64) -> TestApp {
    spawn_app_tuned(|s| {
        quick_scores(s);
        s.virality.inactive_expiry_secs = expiry_secs;
        s.virality.author_records_interval_ms = 200;
    })
    .await
}

/// Stream events of `author`'s post made five minutes ago and its `shares` shares, a second
/// apart.
fn shared_post(post: &str, author: &str, shares: i64) -> Vec<String> {
    use chrono::{TimeDelta, Utc};
    let created = Utc::now() - TimeDelta::minutes(5);
    let mut events = vec![json!({"type": "post", "id": post, "platform": "twitter",
           "author": {"id": author, "followers": 900},
           "text": "A post that people share", "created_at": created.to_rfc3339()})
    .to_string()];
    for i in 0..shares {
        events.push(
            json!({"type": "engagement", "id": format!("{post}:s{i}"), "post_id": post,
                   "kind": "share", "at": (created + TimeDelta::seconds(i + 1)).to_rfc3339()})
            .to_string(),
        );
    }
    events
}

/// Asks for `asked` until `answer(status, body)` holds, for at most a minute: whether it did,
/// and the last answer.
async fn forecast_until(
    app: &TestApp,
    asked: &Value,
    answer: impl Fn(u16, &Value) -> bool,
) -> (bool, Value) {
    let last = std::cell::RefCell::new(Value::Null);
    let (last_ref, answer) = (&last, &answer);
    let held = wait_until(std::time::Duration::from_secs(60), || async move {
        let (status, body) = app.post("/api/v1/forecast", asked).await;
        let held = answer(status, &body);
        *last_ref.borrow_mut() = json!({"status": status, "body": body});
        held
    })
    .await;
    (held, last.into_inner())
}

/// Asks for a forecast of `author`'s draft until it reads `cascades` of theirs, typically of
/// `typical` shares; the author part of that answer.
async fn forecast_once_recorded(app: &TestApp, author: &str, cascades: u64, typical: f64) -> Value {
    let asked = json!({"posts": [draft(author, "twitter")]});
    let answer = |status: u16, body: &Value| {
        let read = &body["forecasts"][0]["author"];
        status == 200
            && read["cascades"] == cascades
            && read["typical_shares"]
                .as_f64()
                .is_some_and(|t| (t - typical).abs() < 1e-6)
    };
    let (held, last) = forecast_until(app, &asked, answer).await;
    assert!(
        held,
        "{author}'s record never read {cascades} cascades of {typical}: {last}"
    );
    last["body"]["forecasts"][0]["author"].clone()
}

#[actix_rt::test]
async fn shares_just_stored_reach_the_record_without_waiting_for_the_periodic_pass() {
    let app = spawn_app_tuned(|s| {
        quick_scores(s);
        // The periodic pass never comes within the test: only the pass after the writes can.
        s.virality.author_records_interval_ms = 3_600_000;
        s.virality.author_records_settle_ms = 200;
    })
    .await;
    app.send_events(&shared_post("fresh", "fresh-author", 7))
        .await;
    let author = forecast_once_recorded(&app, "fresh-author", 1, 7.0).await;
    assert_eq!(author["new_author"], false);
    // Shares that arrive later are recorded by a later pass, not lost to a pass under way.
    let more: Vec<String> = shared_post("fresh", "fresh-author", 12)
        .into_iter()
        .skip(8)
        .collect();
    app.send_events(&more).await;
    forecast_once_recorded(&app, "fresh-author", 1, 12.0).await;
}

#[actix_rt::test]
async fn a_post_still_spreading_counts_in_its_authors_record_before_it_finishes() {
    let app = recording_app(3_600).await;
    app.send_events(&shared_post("spreading", "spreader", 12))
        .await;
    let author = forecast_once_recorded(&app, "spreader", 1, 12.0).await;
    assert_eq!(author["new_author"], false);
    let pg = app.env.pg().await;
    let status: String = pg
        .value_of("SELECT status FROM virality_cascades WHERE post_id = 'spreading'")
        .await;
    assert_eq!(status, "active", "recorded while it was still growing");
}

#[actix_rt::test]
async fn cascades_finished_by_the_pipeline_become_their_authors_track_record() {
    let app = recording_app(1).await;
    let mut events = shared_post("streamed-1", "streamer", 30);
    events.extend(shared_post("streamed-2", "streamer", 10));
    app.send_events(&events).await;
    // exp of the mean of ln(31) and ln(11), minus one. A cascade recorded before its last
    // shares were scored (it can finish and be taken up again) is recorded again, replaced.
    let expected = ((31f64.ln() + 11f64.ln()) / 2.0).exp_m1();
    let author = forecast_once_recorded(&app, "streamer", 2, expected).await;
    assert_eq!(author["new_author"], false);
}

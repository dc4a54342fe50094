//! Search on the real store: results equal a scan of every stored post with the topics
//! matcher, for queries drawn at random from the grammar, before and after deletions and for
//! posts whose vectors are missing or not exact; the API's answers to hostile requests;
//! exports in both formats. Facets are in [`facets`].

use crate::common;
use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::deletions::{deletion, xadd_all};

mod facets;

const WAIT: Duration = Duration::from_secs(90);

const WORDS: &[&str] = &[
    "refund",
    "late",
    "delivery",
    "café",
    "cafe",
    "pulse",
    "apple",
    "iphone",
    "customer",
    "service",
    "cancelled",
    "cancel",
    "straße",
    "strasse",
    "good",
    "bad",
    "battery",
    "buds",
    "東京",
    "地震",
    "京都",
    "über",
    "naïve",
    "don't",
    "apple's",
    "north",
    "south",
];
const TAGS: &[&str] = &["#pulse", "#Refund", "@pulse", "@support", "#東京"];
const LINKS: &[&str] = &[
    "https://shop.example.com/p/1",
    "http://www.news.example.org/a",
];

/// Stored posts marked deleted.
async fn deleted_posts(pg: &tokio_postgres::Client) -> i64 {
    pg.value_of("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL")
        .await
}

/// Stored posts without a search vector yet.
async fn unindexed(pg: &tokio_postgres::Client) -> i64 {
    pg.scalar("SELECT count(*) FROM posts WHERE search IS NULL", &[])
        .await
}

/// A post drawn from the vocabulary, with fields drawn from small sets.
fn random_post(rng: &mut StdRng, n: usize, at: DateTime<Utc>) -> Value {
    let mut words = Vec::new();
    for _ in 0..rng.random_range(3..14) {
        let w = match rng.random_range(0..10) {
            0 => TAGS[rng.random_range(0..TAGS.len())].to_string(),
            1 => LINKS[rng.random_range(0..LINKS.len())].to_string(),
            2 => "filler".to_string(),
            _ => WORDS[rng.random_range(0..WORDS.len())].to_string(),
        };
        let w = if rng.random_bool(0.2) {
            w.to_uppercase()
        } else {
            w
        };
        words.push(w);
    }
    let text = match n % 97 {
        // Vectors that cannot be exact: a word too often, a token too long.
        0 => "refund ".repeat(300) + "late",
        1 => format!("{} pulse", "x".repeat(2_100)),
        _ => words.join(if rng.random_bool(0.1) { ", " } else { " " }),
    };
    let platforms = ["twitter", "reddit", "bluesky"];
    let langs = ["en", "de", "fr", "ja"];
    let countries = ["FR", "DE"];
    let product = if n.is_multiple_of(5) {
        Value::Null
    } else {
        json!(["Buds", "Phone"][n % 2])
    };
    json!({
        "type": "post", "id": format!("s-{n}"),
        "platform": platforms[n % 3],
        "author": {"id": format!("Author{}", n % 7), "followers": 10},
        "text": text, "created_at": at.to_rfc3339(),
        "lang": langs[n % 4],
        "product": product,
        "geo": {"country": countries[n % 2], "city": "Lyon"},
        "url": format!("https://m.example.net/{n}"),
    })
}

/// A query drawn from the grammar: words, wildcards, phrases, tags, fields, and AND, OR,
/// NOT and NEAR nested up to `depth`.
fn random_query(rng: &mut StdRng, depth: u32) -> String {
    let leaf = |rng: &mut StdRng| -> String {
        match rng.random_range(0..12) {
            0 => format!(
                "\"{} {}\"",
                WORDS[rng.random_range(0..WORDS.len())],
                WORDS[rng.random_range(0..WORDS.len())]
            ),
            1 => ["cancel*", "deliv*", "bat*", "str*"][rng.random_range(0..4)].to_string(),
            2 => TAGS[rng.random_range(0..TAGS.len())].to_string(),
            3 => [
                "platform:reddit",
                "lang:de",
                "product:buds",
                "country:fr",
                "author:author3",
                "site:example.net",
                "links:example.com",
                "city:lyon",
            ][rng.random_range(0..8)]
            .to_string(),
            _ => {
                let w = WORDS[rng.random_range(0..WORDS.len())];
                if w.contains('\'') {
                    format!("\"{w}\"")
                } else {
                    w.to_string()
                }
            }
        }
    };
    if depth == 0 || rng.random_bool(0.35) {
        return leaf(rng);
    }
    let a = random_query(rng, depth - 1);
    let b = random_query(rng, depth - 1);
    match rng.random_range(0..5) {
        0 => format!("({a} AND {b})"),
        1 => format!("({a} OR {b})"),
        2 => format!("({a} NOT {b})"),
        3 => format!("({a} AND NOT ({b}))"),
        _ => format!(
            "{} NEAR/{} {}",
            leaf(rng),
            rng.random_range(0..4),
            leaf(rng)
        ),
    }
}

/// Every hit of `query` over every page.
/// `count` posts `{prefix}-0`, `{prefix}-1`... a second apart back from `now`: post `n` says
/// `even(n)` when `n` is even, `odd(n)` when it is odd.
fn alternating_posts(
    prefix: &str,
    count: i64,
    now: DateTime<Utc>,
    even: impl Fn(i64) -> String,
    odd: impl Fn(i64) -> String,
) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let text = if n % 2 == 0 { even(n) } else { odd(n) };
            super::deletions::post_at(&format!("{prefix}-{n}"), &text, now - TimeDelta::seconds(n))
        })
        .collect()
}

async fn search_all(app: &TestApp, query: &str, extra: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let q = urlencoding(query);
    loop {
        let mut path = format!("/api/v1/search?q={q}&limit=100{extra}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let body = app.get_ok(&path).await;
        for hit in body["items"].as_array().unwrap() {
            ids.push(hit["post"]["id"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The live stored posts, as the matcher reads them.
async fn stored(pg: &tokio_postgres::Client) -> Vec<pulse::db::topics::StoredText> {
    pg.query(
        &format!(
            "SELECT {} FROM posts WHERE deleted_at IS NULL",
            pulse::db::topics::STORED_TEXT_COLUMNS
        ),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(pulse::db::topics::stored_text)
    .collect()
}

/// Compares the search of every query with a scan; the queries that differ. With `relevance`,
/// a third of them page by relevance (only once every vector is written: a post's rank changes
/// when the indexer writes its vector, so it may move across a page boundary meanwhile).
async fn compare(app: &TestApp, queries: &[String], relevance: bool) -> Vec<String> {
    let pg = app.env.pg().await;
    let posts = stored(&pg).await;
    let mut wrong = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        let expected: BTreeSet<String> = posts
            .iter()
            .filter(|p| pulse::topics::set::query_matches(query, &p.fields()).unwrap())
            .map(|p| p.id.clone())
            .collect();
        let order = if relevance && i % 3 == 0 {
            "&order=relevance"
        } else {
            ""
        };
        let found = search_all(app, query, order).await;
        let unique: BTreeSet<String> = found.iter().cloned().collect();
        if unique.len() != found.len() || unique != expected {
            wrong.push(format!(
                "`{query}`: {} found ({} unique), {} expected; missing {:?}, extra {:?}",
                found.len(),
                unique.len(),
                expected.len(),
                expected.difference(&unique).take(3).collect::<Vec<_>>(),
                unique.difference(&expected).take(3).collect::<Vec<_>>()
            ));
            continue;
        }
        if i % 4 == 0 {
            let q = urlencoding(query);
            let body = app
                .get_ok(&format!("/api/v1/search?q={q}&limit=1&facets=true"))
                .await;
            let total = body["facets"]["total"].as_i64().unwrap();
            let by_platform: i64 = body["facets"]["platform"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["count"].as_i64().unwrap())
                .sum();
            if total != expected.len() as i64 || by_platform != total {
                wrong.push(format!(
                    "`{query}`: facets total {total}, by platform {by_platform}, expected {}",
                    expected.len()
                ));
            }
        }
    }
    wrong
}

#[actix_rt::test]
async fn results_equal_a_scan_for_random_queries_before_and_after_deletions() {
    let app = spawn_app().await;
    let mut rng = StdRng::seed_from_u64(20261127);
    let now = Utc::now();
    let posts: Vec<Value> = (0..600)
        .map(|n| random_post(&mut rng, n, now - TimeDelta::minutes(n as i64)))
        .collect();
    let redis = app.redis().await;
    xadd_all(&redis, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts(600, WAIT).await);
    // Posts stored without a vector (as before search existed) are found all the same.
    let pg = app.env.pg().await;
    pg.execute(
        "UPDATE posts SET search = NULL WHERE id IN (SELECT id FROM posts ORDER BY id LIMIT 40)",
        &[],
    )
    .await
    .unwrap();
    let mut queries = Vec::new();
    while queries.len() < 200 {
        let q = random_query(&mut rng, 3);
        if pulse::topics::parse(&q).is_ok() {
            queries.push(q);
        }
    }
    let wrong = compare(&app, &queries, false).await;
    assert!(
        wrong.is_empty(),
        "{} of 200:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    let deletions: Vec<Value> = (0..600)
        .step_by(7)
        .map(|n| deletion(&format!("s-{n}"), now))
        .collect();
    xadd_all(&redis, &app.env.stream, &deletions).await;
    assert!(
        wait_until(WAIT, || async {
            deleted_posts(&pg).await == deletions.len() as i64
        })
        .await
    );
    assert!(wait_until(WAIT, || async { unindexed(&pg).await == 0 }).await);
    let wrong = compare(&app, &queries[..90], true).await;
    assert!(wrong.is_empty(), "after deletions:\n{}", wrong.join("\n"));
    app.shutdown().await;
}

#[actix_rt::test]
async fn posts_stored_without_a_vector_are_indexed_in_the_background() {
    let app = spawn_app().await;
    let now = Utc::now();
    let posts: Vec<Value> = (0..50)
        .map(|n| super::deletions::post_at(&format!("b-{n}"), "Late refund again", now))
        .collect();
    xadd_all(&app.redis().await, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts(50, WAIT).await);
    let pg = app.env.pg().await;
    pg.execute("UPDATE posts SET search = NULL", &[])
        .await
        .unwrap();
    assert_eq!(search_all(&app, "refund", "").await.len(), 50);
    assert!(
        wait_until(WAIT, || async { unindexed(&pg).await == 0 }).await,
        "the indexer writes every missing vector"
    );
    let body = app.get_ok("/api/v1/search?q=refund&limit=5").await;
    assert_eq!(body["checked"], 0, "indexed posts need no check: {body}");
    assert_eq!(search_all(&app, "refund", "").await.len(), 50);
    app.shutdown().await;
}

#[actix_rt::test]
async fn hits_carry_highlights_and_hostile_searches_get_clear_errors() {
    let app = spawn_app().await;
    let now = Utc::now();
    let mut a = super::deletions::post_at("h-1", "Café déjà: refund, REFUND and #refund", now);
    a["lang"] = json!("fr");
    let b = super::deletions::post_at("h-2", "refund", now - TimeDelta::seconds(5));
    xadd_all(&app.redis().await, &app.env.stream, &[a, b]).await;
    assert!(app.wait_for_posts(2, WAIT).await);

    let body = app
        .get_ok("/api/v1/search?q=cafe%20OR%20refund&facets=true")
        .await;
    let hit = &body["items"][0];
    assert_eq!(hit["post"]["id"], "h-1");
    let text: Vec<char> = hit["post"]["text"].as_str().unwrap().chars().collect();
    let marked: Vec<String> = hit["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let (a, b) = (
                s[0].as_u64().unwrap() as usize,
                s[1].as_u64().unwrap() as usize,
            );
            text[a..b].iter().collect()
        })
        .collect();
    assert_eq!(marked, ["Café", "refund", "REFUND", "#refund"]);
    assert_eq!(body["facets"]["total"], 2);
    let langs: Vec<&str> = strings(&body["facets"]["lang"], "key");
    assert!(langs.contains(&"fr") && langs.len() <= 2, "{body}");

    let by_relevance = app.get_ok("/api/v1/search?q=refund&order=relevance").await;
    assert_eq!(
        by_relevance["items"][0]["post"]["id"], "h-1",
        "{by_relevance}"
    );
    assert!(by_relevance["items"][0]["score"].as_f64().unwrap() > 0.0);

    let page = app.get_ok("/api/v1/search?q=refund&limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let next = app
        .get_ok(&format!("/api/v1/search?q=refund&limit=1&cursor={cursor}"))
        .await;
    assert_eq!(next["items"][0]["post"]["id"], "h-2");

    let nested = "(".repeat(10_000) + "a" + &")".repeat(10_000);
    let deep = "(".repeat(40) + "a" + &")".repeat(40);
    let hostile: Vec<(String, u16, &str)> = vec![
        ("q=refund%20AND".into(), 400, "invalid_topic_query"),
        ("q=NOT%20refund".into(), 400, "invalid_topic_query"),
        ("q=*".into(), 400, "invalid_topic_query"),
        (format!("q={}", urlencoding(&nested)), 414, "query_too_long"),
        (
            format!("q={}", urlencoding(&deep)),
            400,
            "invalid_topic_query",
        ),
        ("q=a%20NEAR/1000000%20b".into(), 400, "invalid_topic_query"),
        ("q=%00".into(), 400, "invalid_query"),
        ("q=refund&limit=0".into(), 400, "invalid_query"),
        ("q=refund&order=best".into(), 400, "invalid_query"),
        (
            "q=refund&interval=week&facets=true".into(),
            400,
            "invalid_query",
        ),
        ("q=refund&format=csv".into(), 400, "invalid_query"),
        (
            "q=refund&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z".into(),
            400,
            "invalid_query",
        ),
        ("q=refund&cursor=zz".into(), 400, "invalid_cursor"),
        (format!("q=late&cursor={cursor}"), 400, "invalid_cursor"),
        (
            format!("q=refund&order=relevance&cursor={cursor}"),
            400,
            "invalid_cursor",
        ),
        ("q=refund&sentiment=angry".into(), 400, "invalid_query"),
        ("q=refund&nonsense=1".into(), 400, "invalid_query"),
        ("limit=5".into(), 400, "invalid_query"),
    ];
    for (query, status, code) in hostile {
        let (got, body) = app.get(&format!("/api/v1/search?{query}")).await;
        assert_error(got, &body, status, code, format!("{query}: {body}"));
    }
    let (status, body) = app.get("/api/v1/search?q=refund%20AND").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"]["position"], 10, "{body}");
    app.shutdown().await;
}

#[actix_rt::test]
async fn exports_stream_every_match_as_csv_or_json_lines() {
    let app = spawn_app().await;
    let now = Utc::now();
    let mut posts = alternating_posts(
        "e",
        2_500,
        now,
        |n| format!("refund {n}, \"quoted\"\nsecond line"),
        |n| format!("=cmd() other {n}"),
    );
    posts.push(super::deletions::post_at("e-x", "@refund", now));
    xadd_all(&app.redis().await, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts(2_501, WAIT).await);

    let csv = reqwest::get(app.url("/api/v1/search/export?q=refund"))
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(content_type(&csv).starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let mut reader = csv_rows(&text);
    let header = reader.remove(0);
    assert_eq!(header, pulse::http::api::search::export::CSV_COLUMNS);
    assert_eq!(reader.len(), 1_251, "every match, one row each");
    let text_col = header.iter().position(|c| c == "text").unwrap();
    assert!(reader
        .iter()
        .any(|r| r[text_col] == "refund 0, \"quoted\"\nsecond line"));
    assert!(reader.iter().any(|r| r[text_col] == "'@refund"));

    let jsonl = reqwest::get(app.url("/api/v1/search/export?q=other&format=jsonl"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1_250);
    assert!(lines[0]["text"].as_str().unwrap().starts_with("=cmd()"));

    for (query, code) in [
        ("q=refund&format=xlsx", "invalid_query"),
        ("q=refund&limit=10", "invalid_query"),
        ("q=(refund", "invalid_topic_query"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/search/export?{query}")).await;
        assert_error(status, &body, 400, code, &body);
    }
    let pg = app.env.pg().await;
    let audited: i64 = pg
        .value_of("SELECT count(*) FROM audit_log WHERE action = 'search.export'")
        .await;
    assert_eq!(audited, 2);
    app.shutdown().await;
}

/// The rows of an RFC 4180 text.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

#[actix_rt::test]
async fn searches_are_saved_listed_and_deleted_and_bad_ones_refused() {
    let app = spawn_app().await;
    let saved = json!({"name": "Refunds in German", "query": "refund* AND lang:de",
                       "filters": {"sentiment": "negative", "platform": "twitter"}});
    let (status, body) = app.post("/api/v1/saved-searches", &saved).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    assert_eq!(
        body["filters"],
        json!({"sentiment": "negative", "platform": "twitter"})
    );
    let listed = app.get_ok("/api/v1/saved-searches").await;
    assert_eq!(listed["items"][0]["id"], id);
    assert_eq!(
        app.get_ok(&format!("/api/v1/saved-searches/{id}")).await["query"],
        "refund* AND lang:de"
    );
    let refused = [
        (
            json!({"name": "refunds IN german", "query": "x"}),
            409,
            "name_taken",
        ),
        (
            json!({"name": "b", "query": "refund AND"}),
            400,
            "invalid_topic_query",
        ),
        (
            json!({"name": "b", "query": "x", "filters": {"sentiment": "angry"}}),
            400,
            "invalid_query",
        ),
        (
            json!({"name": "b", "query": "x", "filters": {"colour": "red"}}),
            400,
            "invalid_json",
        ),
        (json!({"name": " ", "query": "x"}), 400, "invalid_request"),
        (
            json!({"name": "a\u{202E}b", "query": "x"}),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, code) in refused {
        let (got, answer) = app.post("/api/v1/saved-searches", &body).await;
        assert_error(got, &answer, status, code, format!("{body}: {answer}"));
    }
    app.assert_deleted(&format!("/api/v1/saved-searches/{id}"))
        .await;
    app.shutdown().await;
}

/// Posts whose vectors are not exact (a word hundreds of times, a token too long to keep) were
/// candidates of every search whatever its query: a flood of them newer than the matches was
/// checked one by one by each page, 21 posts a statement, and past 20,000 of them every
/// search's facets were refused as too broad. Only those that could match are checked now,
/// and those are still all found, a wildcard's long tokens and a phrase's later places
/// included.
#[actix_rt::test]
async fn posts_whose_vectors_are_not_exact_are_checked_only_where_they_could_match() {
    let app = spawn_app().await;
    let now = Utc::now();
    let mut posts = alternating_posts(
        "u",
        300,
        now,
        |_| "late ".repeat(300),
        |_| format!("{} late", "x".repeat(2_100)),
    );
    let older = |minutes: i64| now - TimeDelta::minutes(minutes);
    posts.push(super::deletions::post_at(
        "refund-1",
        "refund please",
        older(30),
    ));
    let repeated = format!("{} refund", "late ".repeat(300));
    posts.push(super::deletions::post_at("refund-2", &repeated, older(31)));
    xadd_all(&app.redis().await, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts(302, WAIT).await);

    let found = app.get_ok("/api/v1/search?q=refund&facets=true").await;
    let ids = post_ids(&found);
    assert_eq!(ids, ["refund-1", "refund-2"], "{found}");
    assert_eq!(
        found["checked"], 1,
        "only the unsure post holding the word: {found}"
    );
    assert_eq!(found["facets"]["total"], 2, "{found}");

    // A wildcard may find a token too long to keep, and a phrase stand past the places a
    // vector keeps: every such post is still found.
    let long = search_all(&app, "xxxx*", "").await;
    assert_eq!(long.len(), 150, "{long:?}");
    assert!(long.iter().all(|id| id.starts_with("u-")), "{long:?}");
    let phrase = search_all(&app, "\"late late\"", "").await;
    assert_eq!(phrase.len(), 151, "{phrase:?}");
    assert!(phrase.contains(&"refund-2".to_string()));
    assert!(!phrase.contains(&"u-1".to_string()));
    app.shutdown().await;
}

/// Every link's host is indexed under each domain it is under: a text of 76 long hosts made a
/// vector past the megabyte PostgreSQL takes, which refused the post's whole batch again and
/// again and stopped the intake. Its links past what is indexed are found by checking the post.
#[actix_rt::test]
async fn a_post_of_many_long_links_is_stored_and_found_by_each() {
    let app = spawn_app().await;
    let links: String = (0..76)
        .map(|i| format!("https://{}c{i:02}/ ", "a.".repeat(122)))
        .collect();
    let posts = [
        PostEvent::new("many-links", &links).json(),
        PostEvent::new("after-links", "an ordinary post").json(),
    ];
    xadd_all(&app.redis().await, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts(2, WAIT).await, "both posts stored");
    for host in ["a.c00", "a.a.c75"] {
        let found = search_all(&app, &format!("links:{host}"), "").await;
        assert_eq!(found, ["many-links"], "links:{host}");
    }
    app.shutdown().await;
}

/// Facets and rollups name a post of no detected language `und`, and the dashboard's facet
/// asks for `lang=und`: the filters compared the stored NULL with it and found nothing.
#[actix_rt::test]
async fn a_post_of_no_language_is_found_by_the_und_it_is_shown_as() {
    let app = spawn_app().await;
    let redis = app.redis().await;
    let post = PostEvent::new("nolang", "12345 67890 !!!").json();
    xadd_all(&redis, &app.env.stream, &[post]).await;
    assert!(app.wait_for_posts(1, WAIT).await);
    let stored = app.get_ok("/api/v1/posts/nolang").await;
    assert!(stored["lang"].is_null(), "{stored}");
    let listed = app.get_ok("/api/v1/posts?lang=und").await;
    assert_eq!(listed["items"][0]["id"], "nolang", "{listed}");
    assert_eq!(search_all(&app, "12345", "&lang=und").await, ["nolang"]);
    assert!(search_all(&app, "12345", "&lang=en").await.is_empty());
}

/// A page that must check its candidates one by one ends once it has read for
/// `search.page_time_ms`, with a cursor where it stopped (here 0: one batch a page), and the
/// pages after it find every hit.
#[actix_rt::test]
async fn a_page_that_reads_past_its_time_ends_with_a_cursor_and_the_walk_finds_all() {
    let app = spawn_app_tuned(|s| s.search.page_time_ms = 0).await;
    let now = Utc::now();
    // Every post holds both words, few of them near each other and those the oldest: the
    // index reads each post as a candidate, and only a check tells them apart.
    let mut posts = alternating_posts(
        "far",
        1_200,
        now,
        |_| format!("refund {} delay", "word ".repeat(20)),
        |_| format!("delay {} refund", "other ".repeat(20)),
    );
    for n in 0..3 {
        let at = now - TimeDelta::hours(2 + n);
        posts.push(super::deletions::post_at(
            &format!("near-{n}"),
            "refund delay",
            at,
        ));
    }
    xadd_all(&app.redis().await, &app.env.stream, &posts).await;
    assert!(app.wait_for_posts(1_203, WAIT).await);

    let query = urlencoding("refund NEAR/3 delay");
    let first = app.get_ok(&format!("/api/v1/search?q={query}")).await;
    assert_eq!(post_ids(&first), Vec::<String>::new(), "{first}");
    assert_eq!(
        first["checked"], 500,
        "one batch before the page ends: {first}"
    );
    assert!(first["next_cursor"].is_string(), "{first}");

    let mut found = search_all(&app, "refund NEAR/3 delay", "").await;
    found.sort();
    assert_eq!(found, ["near-0", "near-1", "near-2"]);
    app.shutdown().await;
}

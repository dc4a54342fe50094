//! What a topic preview may cost: a query whose matching would explode over a post of one
//! repeated word stops at its budget, a page of long posts stops at its bytes, and previews
//! past the process's places are told to wait.

use super::*;

/// `n` posts of `text`, `<prefix>-0` to `<prefix>-<n - 1>`, the `i`th made at `at(i)`.
fn numbered_posts(
    prefix: &str,
    n: i64,
    text: &str,
    at: impl Fn(i64) -> chrono::DateTime<Utc>,
) -> Vec<Value> {
    (0..n)
        .map(|i| post_at(&format!("{prefix}-{i}"), text, at(i)))
        .collect()
}

/// Sends `events` through the pipeline and waits until each of them is stored as a post.
async fn send_stored(app: &TestApp, events: &[Value]) {
    xadd_all(&app.redis().await, &app.env.stream, events).await;
    assert!(app.wait_for_posts(events.len() as i64, WAIT).await);
}

/// Sends `events` through the pipeline and asserts that, once settled, the post `tagged`
/// carries `topic` alone and the post `untagged` no topic.
async fn tagged_live(app: &TestApp, events: &[Value], topic: i64, tagged: &str, untagged: &str) {
    let (env, redis) = (&app.env, app.redis().await);
    xadd_all(&redis, &env.stream, events).await;
    assert!(settled(env, &redis).await);
    assert_eq!(topics_of(app, tagged).await, vec![topic]);
    assert_eq!(topics_of(app, untagged).await, Vec::<i64>::new());
}

/// Thousands of one word in a post gave a chain of `NEAR`s of it millions of spans: the preview
/// never answered, held gigabytes and a core, and kept the caller's one preview taken. Matching
/// a post now stops at its budget of pairs, in the preview, the search and the live topics alike.
#[actix_rt::test]
async fn a_chain_of_near_over_a_post_of_one_repeated_word_is_answered() {
    let app = spawn_app().await;
    let now = Utc::now();
    let flood = vec!["the"; 4_999].join(" ");
    let events = vec![
        post_at("flood", &flood, now - TimeDelta::minutes(2)),
        post_at(
            "plain",
            "the cat and the hat and the bat and the rat and the mat",
            now - TimeDelta::minutes(1),
        ),
    ];
    send_stored(&app, &events).await;
    let chain = "the NEAR/100 the NEAR/100 the NEAR/100 the NEAR/100 the";
    for _ in 0..2 {
        // The second is refused if the first still held the caller's preview.
        let (status, preview) = app
            .post(
                "/api/v1/topic-preview",
                &json!({"query": chain, "hours": 1, "samples": 2}),
            )
            .await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["scanned"], 2, "{preview}");
        assert_eq!(preview["matches"]["count"], 1, "the plain post: {preview}");
    }
    let (status, found) = app
        .get(&format!(
            "/api/v1/search?q={}&limit=10",
            url::form_urlencoded::byte_serialize(chain.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    let ids = post_ids(&found);
    assert_eq!(ids, ["plain"], "{found}");

    // A live topic of the chain: the pipeline goes on and tags the plain post.
    let topic = app.create_topic("chain", chain).await;
    assert!(matcher_holds(&app, 1).await);
    let events = vec![
        post_at("flood-2", &flood, now),
        post_at("plain-2", "the the the the the", now),
    ];
    tagged_live(&app, &events, topic, "plain-2", "flood-2").await;
}

/// A phrase of 2,000 words over posts of 10,000 of the same word was checked from every place of
/// the word, part after part: 18 million checks a post, seconds of a core for each in a preview,
/// a search and the pipeline alike. A post's phrases now stop at its budget, as its `NEAR`s do,
/// and a post that holds the phrase where checking began is still found.
#[actix_rt::test]
async fn a_long_phrase_over_posts_of_one_repeated_word_is_answered_in_time() {
    let app = spawn_app().await;
    let now = Utc::now();
    let flood = vec!["a"; 9_999].join(" ");
    let mut events = numbered_posts("flood", 20, &flood, |_| now - TimeDelta::minutes(2));
    events.push(post_at("plain", "a b a", now - TimeDelta::minutes(1)));
    send_stored(&app, &events).await;
    let phrase = format!("\"{}\"", vec!["a"; 2_000].join(" "));
    let in_time = Duration::from_secs(30);
    for _ in 0..2 {
        // The second is refused if the first still held the caller's preview.
        let body = json!({"query": phrase, "hours": 1, "samples": 0});
        let asked = app.post("/api/v1/topic-preview", &body);
        let (status, preview) = tokio::time::timeout(in_time, asked)
            .await
            .expect("the preview answers in time");
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["scanned"], 21, "{preview}");
        assert_eq!(preview["matches"]["count"], 20, "the floods: {preview}");
    }
    let path = format!(
        "/api/v1/search?q={}&limit=100",
        url::form_urlencoded::byte_serialize(phrase.as_bytes()).collect::<String>()
    );
    let (status, found) = tokio::time::timeout(in_time, app.get(&path))
        .await
        .expect("the search answers in time");
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"].as_array().unwrap().len(), 20, "{found}");

    // A live topic of the phrase: the pipeline goes on and tags the floods.
    let topic = app.create_topic("long phrase", &phrase).await;
    assert!(matcher_holds(&app, 1).await);
    let mut events = numbered_posts("flood-live", 10, &flood, |_| now);
    events.push(post_at("plain-live", "a b a", now));
    tagged_live(&app, &events, topic, "flood-live-9", "plain-live").await;
}

/// A preview read 5,000 posts a page whatever they held: 100 MB of posts of 20,000 bytes, held
/// through the page's matching. A page now also stops at a budget of bytes, taking one post at
/// least, and the pages together read every post of the stretch once, newest first; the
/// preview reads them all as before.
#[actix_rt::test]
async fn a_preview_page_of_long_posts_stops_at_its_bytes() {
    let app = spawn_app().await;
    let now = Utc::now();
    let long = "coke ".repeat(3_800);
    let events = numbered_posts("long", 8, &long, |n| now - TimeDelta::minutes(n + 1));
    send_stored(&app, &events).await;
    let newest_first: Vec<String> = (0..8).map(|n| format!("long-{n}")).collect();

    let pg = app.env.pg().await;
    let stretch = (now - TimeDelta::hours(1), now + TimeDelta::minutes(1));
    for (budget, per_page) in [(50_000_i64, 2_usize), (1_000, 1)] {
        let (mut read, mut pages) = (Vec::new(), 0);
        let mut after: Option<(chrono::DateTime<Utc>, String)> = None;
        loop {
            let keyset = after.as_ref().map(|(at, id)| (*at, id.as_str()));
            let page = pulse::db::topics::text_page(&pg, stretch, keyset, 5_000, budget)
                .await
                .unwrap();
            pages += 1;
            let bytes: usize = page.posts.iter().map(|p| p.text.len()).sum();
            assert!(
                !page.posts.is_empty() || page.last,
                "page {pages} of {budget}"
            );
            if page.posts.len() > 1 {
                assert!(bytes as i64 <= budget, "page {pages}: {bytes} bytes");
            }
            if !page.last {
                assert_eq!(page.posts.len(), per_page, "page {pages} of {budget}");
            }
            read.extend(page.posts.iter().map(|p| p.id.clone()));
            if let Some(p) = page.posts.last() {
                after = Some((p.created_at, p.id.clone()));
            }
            if page.last {
                break;
            }
            assert!(pages <= 9, "pages never end");
        }
        assert_eq!(read, newest_first, "a budget of {budget} bytes");
    }

    let (status, preview) = app
        .post(
            "/api/v1/topic-preview",
            &json!({"query": "coke", "hours": 1, "samples": 1}),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        (
            &preview["scanned"],
            &preview["complete"],
            &preview["matches"]["count"]
        ),
        (&json!(8), &json!(true), &json!(8)),
        "{preview}"
    );
}

/// Previews were one per caller with none for the process: N analyst keys held N pages of
/// posts at once. Past `topics.preview_max_running` another caller's preview is answered 503
/// `busy` with `Retry-After` while the running one holds its place, and gets one once it ends.
#[actix_rt::test]
async fn a_preview_past_the_process_places_is_busy_until_one_ends() {
    let s = common::secured::SecuredServer::start(|s| {
        s.topics.preview_max_running = 1;
        // The first preview waits on a lock held by the test for as long as the test needs.
        s.database.api_statement_timeout_ms = 600_000;
    })
    .await;
    let pg = s.env.pg().await;
    let other = pulse::auth::keys::create(&pg, Role::Analyst, "other", None, "test")
        .await
        .unwrap();
    let body = json!({"query": "coke", "hours": 1});
    let as_other = || async {
        let body = body.to_string();
        raw_request(
            s.address(),
            "POST",
            "/api/v1/topic-preview",
            &[("x-api-key", other.key.as_str())],
            Some(&body),
        )
        .await
    };
    let lock = s.env.lock_posts().await;
    let first = s.analyst("POST", "/api/v1/topic-preview", Some(body.clone()));
    let meanwhile = async {
        // A preview page's statement.
        let waiting = s.env.a_statement_waits("octet_length(text)").await;
        let refused = as_other().await;
        lock.batch_execute("COMMIT").await.unwrap();
        (waiting, refused)
    };
    let (first, (waiting, refused)) = tokio::join!(first, meanwhile);
    assert!(waiting, "the first preview never read a page");
    refused.assert_error(503, "busy", "a second caller while the first previews");
    assert_eq!(refused.json()["error"]["details"]["reason"], "preview");
    assert!(
        refused.headers.contains_key("retry-after"),
        "{:?}",
        refused.headers
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let after = as_other().await;
    assert_eq!(after.status, 200, "once the first ended: {}", after.body);
}

//! The review queue: two reviewers are handed different posts and never one the same post
//! twice in a row, a flood of labels from one caller is refused with `Retry-After`, the
//! queue reads only the opening of each text and claims only what is still free, and one
//! caller's requests run one at a time.

use super::*;

async fn next(app: &TestApp, who: &Reviewer, body: Value) -> Vec<String> {
    let (status, batch) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/review/next",
            Some(&body),
            Some(&who.token),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    handed_ids(&batch)
}

/// The ids of the posts a review batch hands out, in its order.
fn handed_ids(batch: &Value) -> Vec<String> {
    batch["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["post"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn reviewers_never_share_a_post_nor_get_one_twice_in_a_row_and_a_flood_is_refused() {
    let app = review_app(5, 0.01).await;
    let alice = reviewer(&app, "alice").await;
    let bob = reviewer(&app, "bob").await;
    let events: Vec<String> = (0..30)
        .map(|i| post_json(&format!("p-{i}"), &car(i)))
        .collect();
    app.send_events(&events).await;
    assert!(app.wait_for_posts(30, WAIT).await);

    // Asking at once: different posts.
    let (a, b) = tokio::join!(
        next(&app, &alice, json!({"count": 5})),
        next(&app, &bob, json!({"count": 5}))
    );
    assert_eq!((a.len(), b.len()), (5, 5));
    assert!(a.iter().all(|id| !b.contains(id)), "{a:?} {b:?}");
    // Moving on: new posts, never the ones just handed out.
    let a2 = next(&app, &alice, json!({"count": 5})).await;
    assert_eq!(a2.len(), 5);
    assert!(
        a2.iter().all(|id| !a.contains(id) && !b.contains(id)),
        "{a2:?}"
    );
    // What alice moved on from may go to bob now, never back to alice.
    let b2 = next(&app, &bob, json!({"count": 20})).await;
    assert!(
        b2.iter().all(|id| !b.contains(id) && !a2.contains(id)),
        "{b2:?}"
    );
    let a3 = next(&app, &alice, json!({"count": 20})).await;
    assert!(
        a3.iter().all(|id| !a2.contains(id) && !b2.contains(id)),
        "{a3:?}"
    );
    assert_eq!(
        app.request(
            reqwest::Method::POST,
            "/api/v1/review/next",
            Some(&json!({"count": 21})),
            Some(&alice.token)
        )
        .await
        .0,
        400
    );
    // A post an alert showed as evidence comes first, whatever its age or polarity.
    app.send_events(&[post_json("evidence", &car(99))]).await;
    assert!(app.wait_for_posts(31, WAIT).await);
    let pg = app.env.pg().await;
    pg.execute(
        "INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence) \
         VALUES ('negativity', 'negativity', 'warning', 'overall', '', 0.9, 0.5, $1)",
        &[&json!({"top_posts": [{"id": "evidence", "text": "evidence"}]})],
    )
    .await
    .unwrap();
    let carol = reviewer(&app, "carol").await;
    let (status, batch) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/review/next",
            Some(&json!({"count": 3})),
            Some(&carol.token),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["items"][0]["post"]["id"], "evidence", "{batch}");
    assert_eq!(batch["items"][0]["reason"], "alert_evidence", "{batch}");

    // A flood from one caller: the burst passes, then 429 with Retry-After; another reviewer is
    // not held up.
    let mut statuses = Vec::new();
    for i in 0..8 {
        let body = json!({"post_id": format!("p-{i}"), "kind": "sentiment", "value": "positive"});
        let response = reqwest::Client::new()
            .post(app.url("/api/v1/labels"))
            .bearer_auth(&alice.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    let (status, by_bob) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/labels",
            Some(&json!({"post_id": "p-1", "kind": "sentiment", "value": "negative"})),
            Some(&bob.token),
        )
        .await;
    assert_eq!(status, 201, "{by_bob}");
    // Only its reviewer (or an administrator) undoes a label; every label is in the audit log.
    let (status, _) = undo(&app, &by_bob["id"], Some(&alice.token)).await;
    assert_eq!(status, 403);
    let audited: i64 = pg
        .scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'label.create' AND outcome = 'succeeded'",
            &[],
        ).await;
    assert_eq!(audited, 6);
    app.shutdown().await;
}

/// The queue was read with every candidate's whole text (up to 20,000 bytes, 2,000 posts) and
/// ranked while holding its lock and a connection; it is read and ranked without them now, so
/// what was read is checked again under the lock before the claim.
#[actix_rt::test]
async fn the_queue_reads_the_opening_of_each_text_and_claims_only_what_is_still_free() {
    use pulse::db::review::{candidates, claim, claimable, lock_queue};

    let app = spawn_app().await;
    // Mostly ASCII with a two-byte letter every 35 bytes (at 32 and 33), so a cut at 4,093
    // falls inside one.
    let long = "great service at the dealer, café ".repeat(560);
    assert!(long.len() > 19_000 && long.len() <= 20_000);
    let mut events: Vec<String> = (0..10)
        .map(|i| post_json(&format!("q-{i}"), &car(i)))
        .collect();
    events.push(post_json("long", &long));
    app.send_events(&events).await;
    assert!(app.wait_for_posts(11, WAIT).await);

    let mut pg = app.env.pg().await;
    for cut in [4_096, 4_093, 100] {
        let read = candidates(&pg, None, "alice", 2_000, cut).await.unwrap();
        assert_eq!(read.len(), 11);
        for c in &read {
            assert!(c.text.len() <= cut, "{}: {} bytes", c.id, c.text.len());
        }
        let opening = &read.iter().find(|c| c.id == "long").unwrap().text;
        assert!(long.starts_with(opening.as_str()));
        assert!(opening.len() + 1 >= cut, "cut short: {}", opening.len());
    }

    // Alice's candidates, ranked in some order; meanwhile bob claims three of them and a
    // fourth is labelled.
    let read = candidates(&pg, None, "alice", 2_000, 4_096).await.unwrap();
    let order: Vec<&str> = read.iter().map(|c| c.id.as_str()).collect();
    let tx = pg.transaction().await.unwrap();
    lock_queue(&tx, 0).await.unwrap();
    claim(&tx, 0, "bob", &order[..3], 300.0).await.unwrap();
    tx.commit().await.unwrap();
    created_label(
        &app,
        json!({"post_id": order[3], "kind": "sentiment", "value": "positive"}),
    )
    .await;

    let tx = pg.transaction().await.unwrap();
    lock_queue(&tx, 0).await.unwrap();
    let free = claimable(&tx, None, "alice", &order, 100).await.unwrap();
    assert_eq!(
        free,
        order[4..],
        "bob's and the labelled post left out, the order kept"
    );
    let first = claimable(&tx, None, "alice", &order, 2).await.unwrap();
    assert_eq!(first, order[4..6]);
    // Bob is not handed back what he holds either.
    let for_bob = claimable(&tx, None, "bob", &order, 100).await.unwrap();
    assert_eq!(for_bob, order[4..]);
    tx.rollback().await.unwrap();

    // Through the API, requests at once (each reading the queue before any claims) are
    // handed different posts, none of bob's nor the labelled one.
    let handed = futures::future::join_all((0..3).map(|_| async {
        let (status, batch) = app.post("/api/v1/review/next", &json!({"count": 2})).await;
        assert_eq!(status, 200, "{batch}");
        handed_ids(&batch)
    }))
    .await;
    let all: Vec<&String> = handed.iter().flatten().collect();
    assert_eq!(all.len(), 6, "{handed:?}");
    let distinct: std::collections::BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(distinct.len(), 6, "a post handed out twice: {handed:?}");
    assert!(
        all.iter().all(|id| !order[..4].contains(&id.as_str())),
        "{handed:?}"
    );
    app.shutdown().await;
}

/// Each request reads up to 2,000 posts' openings and ranks them; a caller sending many at once
/// had as many run. A caller's second request waits for its first, and past 10 s is a 429
/// `costly_read`, while the first is answered as ever.
#[actix_rt::test]
async fn a_callers_queue_requests_run_one_at_a_time() {
    // The first request waits on a lock held by the test for as long as the test needs,
    // holding an API connection: the API has others for the second request and its audit entry.
    // (An editor's key: an open server's caller is an administrator, whose changes and their
    // audit entries share the one connection kept for administrators.)
    let s = common::secured::SecuredServer::start(|s| {
        s.database.api_statement_timeout_ms = 600_000;
        s.database.api_pool_size = 4;
    })
    .await;
    s.app.send_events(&[post_json("q-0", &car(0))]).await;
    assert!(s.app.wait_for_posts(1, WAIT).await);
    let lock = s.app.env.lock_posts().await;
    let next = || {
        s.call(
            "POST",
            "/api/v1/review/next",
            Some(Role::Editor),
            Some(json!({"count": 1})),
        )
    };
    let first = next();
    let meanwhile = async {
        // The queue read's own statement.
        assert!(
            s.app
                .env
                .a_statement_waits("newest AS (SELECT id FROM posts")
                .await
        );
        // Without the bound this one waits on the lock too: the test gives up on it.
        let second = tokio::time::timeout(Duration::from_secs(60), next()).await;
        lock.batch_execute("ROLLBACK").await.unwrap();
        second.expect("the second request waited on the first's read")
    };
    let (first, second) = futures::join!(first, meanwhile);
    second.assert_error(429, "rate_limited", "");
    assert_eq!(
        second.json()["error"]["details"]["scope"],
        "costly_read",
        "{}",
        second.body
    );
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(handed_ids(&first.json()), ["q-0"]);
    s.app.shutdown().await;
}

//! Alerts on their way to webhook channels: signed, retried and dead-lettered; a receiver that
//! asks for a wait gets it, its channel held for the wait it asked (what is queued meanwhile
//! included) and shown held; a receiver that never answers or a channel with a long backlog
//! holds back no other channel.

use super::*;

/// A post negative enough to fire the negativity rules of these tests.
const WORST_PHONE: &str = "This is terrible, I hate it, worst phone ever";

/// Alerts as [`quick_alerts`] fires them at 30% negative, and webhooks polled every 50 ms that
/// try a delivery three times at most, 50 ms apart at first.
fn quick_retries(s: &mut pulse::config::Settings) {
    quick_alerts(s, 0.3);
    s.webhooks.base_delay_ms = 50;
    s.webhooks.max_attempts = 3;
    s.webhooks.poll_ms = 50;
}

/// What a local webhook receiver saw: (headers, body) per request.
type Seen =
    std::sync::Arc<std::sync::Mutex<Vec<(std::collections::HashMap<String, String>, String)>>>;

/// Starts a webhook receiver on a free port that fails its first `failures` requests with 500.
fn receiver(failures: usize) -> (std::net::SocketAddr, Seen, actix_web::dev::ServerHandle) {
    use actix_web::{HttpRequest, HttpResponse};
    let seen: Seen = Default::default();
    let state = seen.clone();
    let (addr, handle) = http_standin::receiver(move |req: HttpRequest, body: String| {
        let state = state.clone();
        async move {
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            let mut seen = state.lock().unwrap();
            seen.push((headers, body));
            if seen.len() <= failures {
                HttpResponse::InternalServerError().finish()
            } else {
                HttpResponse::Ok().finish()
            }
        }
    });
    (addr, seen, handle)
}

#[actix_rt::test]
async fn alerts_reach_webhooks_signed_retried_and_dead_lettered() {
    let app = spawn_app_tuned(quick_retries).await;

    let (flaky_addr, seen, receiver_handle) = receiver(2);
    let flaky = app
        .create_channel(
            &json!({"url": format!("http://{flaky_addr}/hook"), "kinds": ["negativity"]}),
        )
        .await;
    let secret = flaky["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    let closed = format!("http://127.0.0.1:{}/nobody-home", free_port());
    let dead = app
        .create_channel(
            &json!({"url": closed, "secret": "a-shared-secret-of-some-length", "kinds": ["negativity"]}),
        )
        .await;
    let (bad, _) = app
        .post("/api/v1/webhooks", &json!({"url": "ftp://x"}))
        .await;
    assert_eq!(bad, 400);

    send_posts(&app, "hook", 30, WORST_PHONE).await;

    // The flaky receiver fails twice, then takes the delivery on the third attempt.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            seen.lock().unwrap().len() >= 3
        })
        .await
    );
    let (delivered, delivery) = app
        .await_delivery(&flaky, "delivered", Duration::from_secs(30))
        .await;
    assert!(delivered);
    assert_eq!(delivery["attempts"], 3, "{delivery}");

    let requests = seen.lock().unwrap().clone();
    for (headers, body) in &requests {
        let timestamp: i64 = headers["x-pulse-timestamp"].parse().unwrap();
        assert_eq!(
            headers["x-pulse-signature"],
            pulse::actors::webhooks::signature(&secret, timestamp, body)
        );
        assert_eq!(headers["x-pulse-event"], "alert:negativity");
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["kind"], "negativity");
        assert!(payload["id"].as_i64().is_some() && payload["evidence"]["top_posts"].is_array());
    }
    assert_eq!(
        requests.len(),
        3,
        "delivered once, no duplicate after success"
    );

    // The unreachable one is given up after max_attempts.
    let (given_up, gave_up) = app
        .await_delivery(&dead, "dead", Duration::from_secs(30))
        .await;
    assert!(given_up);
    assert_eq!(gave_up["attempts"], 3);
    assert!(gave_up["last_error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));

    // A new installation has no history: the spike and dip rules are still warming up, so
    // only the negativity rule fired.
    let kinds: Vec<String> = app.get("/api/v1/alerts").await.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["negativity"]);
    assert_eq!(
        app.env.post_count().await,
        30,
        "the pipeline went on regardless"
    );

    receiver_handle.stop(false).await;
    app.shutdown().await;
}

/// A webhook receiver that answers its first request `429` with `Retry-After: retry_after`
/// and every later one `200`, noting `note(request)` of each, in the order they came.
fn asks_for_a_wait_once<T: Send + 'static>(
    retry_after: &'static str,
    note: fn(&actix_web::HttpRequest) -> T,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<T>>>,
    actix_web::dev::ServerHandle,
) {
    let notes: std::sync::Arc<std::sync::Mutex<Vec<T>>> = Default::default();
    let seen = notes.clone();
    let (addr, handle) = http_standin::receiver(move |req: actix_web::HttpRequest, _: String| {
        let (seen, noted) = (seen.clone(), note(&req));
        async move {
            let mut seen = seen.lock().unwrap();
            seen.push(noted);
            if seen.len() == 1 {
                actix_web::HttpResponse::TooManyRequests()
                    .insert_header(("retry-after", retry_after))
                    .finish()
            } else {
                actix_web::HttpResponse::Ok().finish()
            }
        }
    });
    (addr, notes, handle)
}

/// A receiver answering `429` with `Retry-After: 2` was asked again after the ordinary
/// backoff (50 ms here, a second by default): a rate-limited Slack or Teams channel spent every
/// attempt inside its window and the alert was dead-lettered. The wait it asks for is kept.
#[actix_rt::test]
async fn a_receiver_that_asks_for_a_wait_is_not_asked_again_sooner() {
    use std::time::Instant;
    let app = spawn_app_tuned(quick_retries).await;
    let (addr, arrivals, handle) = asks_for_a_wait_once("2", |_| Instant::now());
    let channel = app
        .create_channel(&json!({"url": format!("http://{addr}/hook"), "kinds": ["negativity"]}))
        .await;
    send_posts(&app, "limited", 30, "This is terrible, I hate it").await;

    let (delivered, delivery) = app
        .await_delivery(&channel, "delivered", Duration::from_secs(30))
        .await;
    assert!(delivered, "{delivery}");
    assert_eq!(delivery["attempts"], 2, "{delivery}");
    let at = arrivals.lock().unwrap().clone();
    assert_eq!(at.len(), 2);
    let gap = at[1] - at[0];
    assert!(gap >= Duration::from_secs(2), "asked again after {gap:?}");
    handle.stop(false).await;
    app.shutdown().await;
}

/// A migrated database (kept while the environment lives) and a client of it, holding
/// `channels` webhooks (ids 1 to `channels`), `alerts` alerts (ids 1 to `alerts`), and the
/// deliveries the SQL `deliveries` queues between them.
async fn with_deliveries(
    channels: u32,
    alerts: u32,
    deliveries: &str,
) -> (TestEnv, tokio_postgres::Client) {
    let env = TestEnv::migrated().await;
    let pg = env.pg().await;
    pg.batch_execute(&format!(
        "INSERT INTO webhooks (url, secret) SELECT 'http://192.0.2.1/' || i, 's' \
         FROM generate_series(1, {channels}) AS i; \
         INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence) \
         SELECT 'r', 'negativity', 'warning', 'all', 'all', 1, 1, '{{}}' \
         FROM generate_series(1, {alerts}); \
         {deliveries}"
    ))
    .await
    .unwrap();
    (env, pg)
}

/// The deliveries a claim takes now, beside those `sending` holds: 32 at most, leased for a
/// minute, `per_channel` of a channel at once.
async fn claim_now(
    pg: &mut tokio_postgres::Client,
    per_channel: usize,
    sending: &pulse::db::webhooks::Sending,
) -> Vec<pulse::db::webhooks::Due> {
    pulse::db::webhooks::claim_due(pg, 32, 60.0, per_channel, sending)
        .await
        .unwrap()
}

/// Deliveries queued for a channel after its receiver asked for a wait were sent inside it,
/// each refused again and spending an attempt. The channel's deliveries now wait with it, those
/// queued during the wait as well, and a shorter wait asked meanwhile does not cut it.
#[actix_rt::test]
async fn a_channel_asked_to_wait_gets_no_delivery_until_then() {
    use pulse::db::webhooks::{hold_channel, Sending};
    let (_env, mut pg) = with_deliveries(
        2,
        3,
        "INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) VALUES (2, 3, '{}');",
    )
    .await;
    async fn claim(pg: &mut tokio_postgres::Client) -> Vec<i64> {
        let due = claim_now(pg, 4, &Sending::default()).await;
        due.iter().map(|d| d.webhook_id).collect()
    }
    // Channel 1 asked for an hour; then its refused delivery (due again by its own backoff)
    // and a new one are queued.
    hold_channel(&pg, 1, 3600.0).await.unwrap();
    pg.batch_execute(
        "INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, attempts, last_status) \
         VALUES (1, 1, '{}', 1, 429); \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) VALUES (1, 2, '{}');",
    )
    .await
    .unwrap();
    assert_eq!(
        claim(&mut pg).await,
        [2],
        "the waiting channel's deliveries wait"
    );

    // A channel told to wait now: its queued deliveries wait with it.
    pg.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE webhook_id = 2",
        &[],
    )
    .await
    .unwrap();
    hold_channel(&pg, 2, 3600.0).await.unwrap();
    hold_channel(&pg, 2, 0.0).await.unwrap();
    assert!(claim(&mut pg).await.is_empty());
}

/// A channel's deliveries went in the order they fell due, digests and alerts alike: digests
/// sent on request, over and over, to every channel queued each alert behind them. An alert
/// now goes first, even behind digests due an hour before it.
#[actix_rt::test]
async fn a_channel_s_alert_goes_before_the_digests_queued_ahead_of_it() {
    use pulse::db::webhooks::Sending;
    use pulse::models::webhooks::DeliveryEvent;
    let (_env, mut pg) = with_deliveries(
        1,
        1,
        "INSERT INTO digests (period_from, period_to, manual, content) \
         SELECT now() - interval '1 day', now(), true, '{}' FROM generate_series(1, 3); \
         INSERT INTO webhook_deliveries (webhook_id, digest_id, event, payload, next_attempt_at) \
         SELECT 1, id, 'digest', '{}', now() - interval '1 hour' FROM digests; \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) VALUES (1, 1, '{}');",
    )
    .await;
    let first = claim_now(&mut pg, 1, &Sending::default()).await;
    let events = |due: &[pulse::db::webhooks::Due]| due.iter().map(|d| d.event).collect::<Vec<_>>();
    assert_eq!(events(&first), [DeliveryEvent::Fire]);
    // The digests then go, each in turn.
    let sending = Sending(std::collections::HashMap::from([(first[0].id, 1)]));
    let next = claim_now(&mut pg, 4, &sending).await;
    assert_eq!(events(&next), [DeliveryEvent::Digest; 3]);
}

/// A channel's hold was nowhere to be seen: the listing did not show it, and a delivery queued
/// during it showed a `next_attempt_at` in the past yet did not go. The listing shows the hold
/// now, and the delivery log the time a pending delivery goes, no sooner than the hold ends.
#[actix_rt::test]
async fn a_held_channel_shows_its_hold_and_its_pending_deliveries_wait_for_it() {
    use chrono::{DateTime, Utc};
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    let held = app
        .create_channel(&json!({"kind": "slack", "url": "http://127.0.0.1:9/services/held"}))
        .await;
    let free = app
        .create_channel(&json!({"kind": "slack", "url": "http://127.0.0.1:9/services/free"}))
        .await;
    let channel_of = |list: &Value, channel: &Value| {
        item_where(&list["items"], |c| c["id"] == channel["id"]).clone()
    };
    let (_, listed) = app.get("/api/v1/webhooks").await;
    assert_eq!(
        channel_of(&listed, &held)["held_until"],
        Value::Null,
        "{listed}"
    );

    let (held_id, free_id) = (held["id"].as_i64().unwrap(), free["id"].as_i64().unwrap());
    pulse::db::webhooks::hold_channel(&pg, held_id, 3600.0)
        .await
        .unwrap();
    // A delivery queued during the hold, due now by its own schedule; another to a channel
    // not held, due an hour ago (never claimed: its receiver does not listen, and it is read
    // before any attempt could change it).
    pg.batch_execute(&format!(
        "INSERT INTO alerts (rule_name, kind, severity, dimension, key, value, threshold, evidence) \
         VALUES ('r', 'negativity', 'warning', 'all', 'all', 1, 1, '{{}}'); \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, next_attempt_at) \
         SELECT {held_id}, max(id), '{{}}', now() FROM alerts; \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, next_attempt_at, status) \
         SELECT {free_id}, max(id), '{{}}', now() - interval '1 hour', 'dead' FROM alerts;"
    ))
    .await
    .unwrap();

    let (status, listed) = app.get("/api/v1/webhooks").await;
    assert_eq!(status, 200, "{listed}");
    let time = |v: &Value| serde_json::from_value::<DateTime<Utc>>(v.clone()).unwrap();
    let until = time(&channel_of(&listed, &held)["held_until"]);
    let ahead = (until - Utc::now()).num_seconds();
    assert!(
        (3000..=3600).contains(&ahead),
        "held for {ahead} s more: {listed}"
    );
    assert_eq!(
        channel_of(&listed, &free)["held_until"],
        Value::Null,
        "{listed}"
    );

    let pending = app.deliveries(&held).await["items"][0].clone();
    assert_eq!(pending["status"], "pending", "{pending}");
    assert!(
        time(&pending["next_attempt_at"]) >= until,
        "due no sooner than the hold ends ({until}): {pending}"
    );
    // A delivery that is not pending, or of a channel not held, keeps its own time.
    let dead = app.deliveries(&free).await["items"][0].clone();
    assert!(time(&dead["next_attempt_at"]) < Utc::now(), "{dead}");
    app.shutdown().await;
}

/// A channel's wait was kept as its refused delivery's next attempt, and the channel sent
/// nothing while that delivery was not due: the wait lasted the refused delivery's backoff
/// (here a minute or more), not the seconds its receiver asked for, and an alert fired during
/// it waited as long. The hold is the channel's now: a delivery queued during the wait goes
/// once the wait is over, before the refused one is due again.
#[actix_rt::test]
async fn a_wait_holds_what_is_queued_during_it_and_ends_when_the_receiver_asked() {
    use pulse::db::alerts::{create_rule, fire, rule, NewAlert};
    let app = spawn_app_tuned(|s| {
        quick_webhooks(s);
        // A refused delivery is due again one to three minutes later.
        s.webhooks.base_delay_ms = 120_000;
    })
    .await;
    let pg = app.env.pg().await;
    // The deliveries the receiver was asked to take, in the order they came.
    let (addr, arrivals, handle) = asks_for_a_wait_once("5", |req| {
        req.headers()
            .get("x-pulse-delivery")
            .and_then(|v| v.to_str().ok()?.parse::<i64>().ok())
            .unwrap_or(-1)
    });
    let channel = app
        .create_channel(&json!({"url": format!("http://{addr}/hook")}))
        .await;
    let channel_id = channel["id"].as_i64().unwrap();
    let rule_id = create_rule(
        &pg,
        "Held channel",
        pulse::models::alerts::RuleKind::Negativity,
    )
    .await
    .unwrap();
    let rule = rule(&pg, rule_id).await.unwrap().unwrap();
    let fire_on = |key: &'static str| {
        let (pg, rule) = (&pg, &rule);
        async move {
            let (alert, _) = fire(
                pg,
                NewAlert {
                    rule,
                    key,
                    value: 0.9,
                    threshold: 0.5,
                    evidence: &json!({}),
                    payload: &json!({"kind": "negativity", "key": key}),
                },
            )
            .await
            .unwrap()
            .expect("the alert fires");
            let row = pg
                .query_one(
                    "SELECT id FROM webhook_deliveries WHERE alert_id = $1 AND webhook_id = $2",
                    &[&alert, &channel_id],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0)
        }
    };

    let refused = fire_on("first").await;
    // The refusal is read from the database as soon as it is recorded, so the next alert
    // fires inside the five seconds the receiver asked for.
    let mut recorded = false;
    for _ in 0..3_000 {
        let row = pg
            .query_one(
                "SELECT last_status FROM webhook_deliveries WHERE id = $1",
                &[&refused],
            )
            .await
            .unwrap();
        if row.get::<_, Option<i32>>(0) == Some(429) {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(recorded, "the receiver got {:?}", arrivals.lock().unwrap());
    let queued = fire_on("second").await;
    let during: bool = pg
        .query_one(
            "SELECT d.created_at < w.held_until FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1",
            &[&queued],
        )
        .await
        .unwrap()
        .get(0);
    assert!(during, "the second alert was queued during the wait");

    let (delivered, delivery) = app
        .await_delivery(&channel, "delivered", Duration::from_secs(30))
        .await;
    assert!(delivered, "{delivery}");
    assert_eq!(delivery["id"], queued, "{delivery}");
    assert_eq!(
        delivery["attempts"], 1,
        "sent once, after the wait: {delivery}"
    );
    assert_eq!(
        *arrivals.lock().unwrap(),
        [refused, queued],
        "nothing was sent inside the wait"
    );
    // Sent once the hold was over, and before the refused delivery is due again.
    let row = pg
        .query_one(
            "SELECT q.delivered_at >= w.held_until, r.status, r.attempts, \
                    r.next_attempt_at > q.delivered_at \
             FROM webhook_deliveries q JOIN webhooks w ON w.id = q.webhook_id, \
                  webhook_deliveries r WHERE q.id = $1 AND r.id = $2",
            &[&queued, &refused],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the queued delivery went inside the wait"
    );
    assert_eq!(
        (row.get::<_, String>(1).as_str(), row.get::<_, i32>(2)),
        ("pending", 1)
    );
    assert!(
        row.get::<_, bool>(3),
        "the refused delivery's own backoff ends later"
    );
    handle.stop(false).await;
    app.shutdown().await;
}

/// A receiver that takes the connection and never answers held every other channel's
/// deliveries: they were sent beside it but recorded only once its request ended (the
/// receiver's timeout), and the next ones waited for the whole round. Each delivery is now
/// recorded when its own receiver answers.
#[actix_rt::test]
async fn a_receiver_that_never_answers_does_not_hold_back_the_other_channels() {
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.3);
        s.webhooks.poll_ms = 50;
        s.webhooks.timeout_secs = 600;
    })
    .await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        std::thread::spawn(move || {
            for stream in silent.incoming().flatten() {
                held.lock().unwrap().push(stream);
            }
        });
    }
    let (answering_addr, seen, receiver_handle) = receiver(0);
    let hanging = app
        .create_channel(
            &json!({"url": format!("http://{silent_addr}/hook"), "kinds": ["negativity"]}),
        )
        .await;
    let answering = app
        .create_channel(
            &json!({"url": format!("http://{answering_addr}/hook"), "kinds": ["negativity"]}),
        )
        .await;

    send_posts(&app, "held", 30, WORST_PHONE).await;

    assert!(
        wait_until(Duration::from_secs(60), || async {
            !held.lock().unwrap().is_empty()
        })
        .await
    );
    let (delivered, delivery) = app
        .await_delivery(&answering, "delivered", Duration::from_secs(60))
        .await;
    assert!(
        delivered,
        "recorded while the other receiver holds its request: {delivery}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    let (_, stuck) = app
        .await_delivery(&hanging, "pending", Duration::from_secs(1))
        .await;
    assert_eq!(stuck["status"], "pending", "{stuck}");
    assert_eq!(stuck["attempts"], 0, "{stuck}");

    receiver_handle.stop(false).await;
    app.shutdown().await;
}

/// A channel with a backlog older than every other channel's hid them: a claim read the oldest
/// due rows, all that channel's, and kept the four it may send at once. A claim now reads each
/// channel's first rows, and never one the process is still sending.
#[actix_rt::test]
async fn a_claim_reaches_every_channel_whatever_one_channels_backlog() {
    use pulse::db::webhooks::Sending;
    let (_env, mut pg) = with_deliveries(
        3,
        200,
        "INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, next_attempt_at) \
         SELECT 1, id, '{}', now() - interval '1 hour' + id * interval '1 ms' FROM alerts; \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload) \
         SELECT w, 1, '{}' FROM generate_series(2, 3) AS w;",
    )
    .await;
    let per_channel = pulse::actors::webhooks::PER_CHANNEL;

    let first = claim_now(&mut pg, per_channel, &Sending::default()).await;
    let channels = |due: &[pulse::db::webhooks::Due]| {
        let mut by = std::collections::BTreeMap::<i64, usize>::new();
        due.iter()
            .for_each(|d| *by.entry(d.webhook_id).or_default() += 1);
        by
    };
    assert_eq!(
        channels(&first),
        [(1, per_channel), (2, 1), (3, 1)].into(),
        "the backlog's first {per_channel} and the others' one each"
    );

    // The leases run out while the process still sends them: the same rows are due again.
    pg.execute("UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 hour' + alert_id * interval '1 ms'", &[])
        .await
        .unwrap();
    let mut sending = Sending(first.iter().map(|d| (d.id, d.webhook_id)).collect());
    let again = claim_now(&mut pg, per_channel, &sending).await;
    assert!(
        again.is_empty(),
        "claimed beside themselves: {:?}",
        channels(&again)
    );

    // All but one of the backlog's sends end: as many of its next rows take their places.
    let ended: Vec<i64> = first
        .iter()
        .filter(|d| d.webhook_id == 1)
        .skip(1)
        .map(|d| d.id)
        .collect();
    pg.execute(
        "UPDATE webhook_deliveries SET status = 'delivered' WHERE id = ANY($1)",
        &[&ended],
    )
    .await
    .unwrap();
    for id in &ended {
        sending.0.remove(id);
    }
    let more = claim_now(&mut pg, per_channel, &sending).await;
    assert_eq!(channels(&more), [(1, per_channel - 1)].into());
    assert!(more.iter().all(|d| first.iter().all(|f| f.id != d.id)));

    // A failing channel (a delivery due again after a failed attempt) gets one place: a
    // receiver that times out holds one, not four.
    pg.batch_execute(
        "UPDATE webhook_deliveries SET status = 'delivered' WHERE status = 'pending'; \
         INSERT INTO webhooks (url, secret) VALUES ('http://192.0.2.1/failing', 's'); \
         INSERT INTO webhook_deliveries (webhook_id, alert_id, payload, attempts) \
         SELECT (SELECT max(id) FROM webhooks), id, '{}', CASE WHEN id = 1 THEN 2 ELSE 0 END \
         FROM alerts WHERE id <= 10;",
    )
    .await
    .unwrap();
    let failing = claim_now(&mut pg, per_channel, &Sending::default()).await;
    assert_eq!(failing.len(), 1, "{:?}", channels(&failing));
    let sending = Sending(failing.iter().map(|d| (d.id, d.webhook_id)).collect());
    pg.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'",
        &[],
    )
    .await
    .unwrap();
    let beside = claim_now(&mut pg, per_channel, &sending).await;
    assert!(beside.is_empty(), "{:?}", channels(&beside));
}

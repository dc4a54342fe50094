//! Digests against a real Pulse: a preview's every figure equals what the API's own endpoint
//! answers for the same period and scope (before and after deletions); schedules refuse what
//! cannot work; scheduled periods are made once however many processes run, late ones marked,
//! and reach Slack, Teams and webhook stand-ins in their documented shapes.

mod delivery;

use crate::common;
use crate::deletions::{deletion, engagement, xadd_all};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use serde_json::{json, Value};

use crate::alerts::channels::{bodies, slack_shape, stand_in, teams_shape};
use pulse::http::api::digests::content::SHARE_OF_VOICE_TOPICS;

/// A post of `product` written `minutes_ago`, negative or not, mentioning the battery or not.
fn post(id: &str, minutes_ago: i64, negative: bool, battery: bool, now: DateTime<Utc>) -> Value {
    let text = match (negative, battery) {
        (true, true) => "the battery is terrible and died again, awful support #fail",
        (true, false) => "awful screen, cracked after a day, worst purchase #fail",
        (false, true) => "love the battery life, lasts two days #happy",
        (false, false) => "great camera and a lovely screen #happy",
    };
    PostEvent::new(id, text)
        .author(&format!("author-{}", id.len() % 7), 500)
        .at(now - TimeDelta::minutes(minutes_ago))
        .without(&["geo"])
        .json()
}

/// Every post and engagement stored and nothing held.
async fn settled(app: &TestApp, posts: i64) -> bool {
    let redis = app.redis().await;
    app.env.stored(posts, Duration::from_secs(60)).await
        && crate::deletions::settled(&app.env, &redis).await
}

fn query(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let f = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    format!("from={}&to={}", f(from), f(to))
}

/// The figures of `digest` beside the endpoints' answers for its period and scope; the list of
/// differences (empty when they agree).
async fn disagreements(app: &TestApp, digest: &Value) -> Vec<String> {
    let from: DateTime<Utc> = serde_json::from_value(digest["from"].clone()).unwrap();
    let to: DateTime<Utc> = serde_json::from_value(digest["to"].clone()).unwrap();
    let topic = digest["scope"]["topic"].as_i64();
    let scoped = |q: String| match topic {
        Some(t) => format!("{q}&topic={t}"),
        None => q,
    };
    let mut out = Vec::new();
    let mut same = |what: &str, ours: &Value, api: &Value| {
        if ours != api {
            out.push(format!("{what}: digest {ours} != API {api}"));
        }
    };
    // The digest's own period and scope, as a query.
    let period = scoped(query(from, to));
    let overall = app
        .get_ok(&format!("/api/v1/metrics/overall?{period}"))
        .await;
    same("stats", &digest["stats"], &overall["stats"]);
    same("posts", &digest["posts"], &overall["stats"]["posts"]);
    same(
        "negative_share",
        &digest["negative_share"],
        &overall["stats"]["sentiment"]["negative_share"],
    );
    for (n, p) in digest["history"].as_array().unwrap().iter().enumerate() {
        let f: DateTime<Utc> = serde_json::from_value(p["from"].clone()).unwrap();
        let t: DateTime<Utc> = serde_json::from_value(p["to"].clone()).unwrap();
        let api = app
            .get_ok(&format!("/api/v1/metrics/overall?{}", scoped(query(f, t))))
            .await;
        same(
            &format!("history[{n}].posts"),
            &p["posts"],
            &api["stats"]["posts"],
        );
        same(
            &format!("history[{n}].negative_share"),
            &p["negative_share"],
            &api["stats"]["sentiment"]["negative_share"],
        );
    }
    let series_scope = match topic {
        Some(t) => format!("dimension=topic&key={t}"),
        None => "dimension=overall".into(),
    };
    let series = app
        .get_ok(&format!(
            "/api/v1/metrics/timeseries?{series_scope}&bucket={}&{}",
            digest["series"]["bucket"].as_str().unwrap(),
            query(from, to)
        ))
        .await;
    same("series", &digest["series"]["points"], &series["points"]);
    let window = (to - from).num_seconds().clamp(60, 7 * 86_400);
    let stories = app
        .get_ok(&format!(
            "/api/v1/stories?sort=growing&limit=5&window_secs={window}&{period}"
        ))
        .await;
    same("stories", &digest["stories"], &stories["items"]);
    for (field, extra) in [
        ("viral_posts", ""),
        ("negative_posts", "&sentiment=negative"),
    ] {
        let trending = app
            .get_ok(&format!(
                "/api/v1/trending/posts?status=all&limit=5{extra}&{period}"
            ))
            .await;
        same(field, &digest[field], &trending["items"]);
    }
    let terms = app
        .get_ok(&format!("/api/v1/trending/terms?limit=200&{period}"))
        .await;
    let previous = &digest["previous"];
    let pf: DateTime<Utc> = serde_json::from_value(previous["from"].clone()).unwrap();
    let before = app
        .get_ok(&format!(
            "/api/v1/trending/terms?limit=200&{}",
            scoped(query(pf, from))
        ))
        .await;
    let count = |list: &Value, term: &str| {
        list["terms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["term"] == term)
            .map(|t| t["posts"].clone())
    };
    for t in digest["emerging_terms"].as_array().unwrap() {
        let term = t["term"].as_str().unwrap();
        same(
            &format!("term {term}"),
            &t["posts"],
            &count(&terms, term).unwrap_or(Value::Null),
        );
        same(
            &format!("term {term} before"),
            &t["previous_posts"],
            &count(&before, term).unwrap_or(Value::Null),
        );
    }
    let alerts_scope = match topic {
        Some(t) => format!("&dimension=topic&key={t}"),
        None => String::new(),
    };
    let alerts = app
        .get_ok(&format!(
            "/api/v1/alerts?limit=20{alerts_scope}&{}",
            query(from, to)
        ))
        .await;
    same("alerts", &digest["alerts"], &alerts["items"]);
    if topic.is_none() {
        let topics = app
            .get_ok(&format!("/api/v1/metrics/topics?{}", query(from, to)))
            .await;
        let (listed, others) = listed_topics(topics["items"].as_array().unwrap());
        same("share_of_voice", &digest["share_of_voice"], &listed);
        same("other_topics", &digest["other_topics"], &others);
    }
    out
}

/// `items` of `GET /api/v1/metrics/topics` as a digest lists them: the first ten, and the
/// others summed (null when there are none).
fn listed_topics(items: &[Value]) -> (Value, Value) {
    let listed = items.len().min(SHARE_OF_VOICE_TOPICS);
    let rest = &items[listed..];
    if rest.is_empty() {
        return (json!(items), Value::Null);
    }
    let sum = |share: &str| -> f64 {
        rest.iter()
            .map(|t| t["share_of_voice"][share].as_f64().unwrap())
            .sum()
    };
    let others = json!({
        "topics": rest.len(),
        "posts": rest.iter().map(|t| t["posts"].as_i64().unwrap()).sum::<i64>(),
        "share_of_voice": {
            "volume": sum("volume"),
            "positive": sum("positive"),
            "negative": sum("negative"),
        },
    });
    (json!(items[..listed]), others)
}

/// A preview taken while nothing changes: two previews equal before and after the API reads,
/// so the API answered the same state. Returns the preview and what disagreed.
async fn steady_preview(app: &TestApp, body: &Value) -> (Value, Vec<String>) {
    let mut last = Vec::new();
    for _ in 0..20 {
        let (status, first) = app.post("/api/v1/digests/preview", body).await;
        assert_eq!(status, 200, "{first}");
        let found = disagreements(app, &first).await;
        let (_, second) = app.post("/api/v1/digests/preview", body).await;
        let strip = |mut v: Value| {
            v.as_object_mut().unwrap().remove("rendered");
            v
        };
        if strip(first.clone()) == strip(second) {
            return (first, found);
        }
        last = found;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the figures kept changing; last differences: {last:#?}");
}

#[actix_rt::test]
async fn a_preview_holds_what_the_api_answers_for_its_period_and_scope_after_deletions_too() {
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.3);
        quick_scores(s);
    })
    .await;
    let topic_id = app.create_topic("Battery", "battery").await;
    // Topics apply to posts analysed after the matcher sees them.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let now = Utc::now();
    let mut events = Vec::new();
    let mut n = 0;
    // The period (the last two hours) and the ones before: more and more negative posts.
    for minutes_ago in (1..600).step_by(3) {
        let negative = minutes_ago < 120 && n % 2 == 0 || n % 5 == 0;
        let id = format!("dg-{n}");
        events.push(post(&id, minutes_ago, negative, n % 3 == 0, now));
        if n % 4 == 0 {
            let at = now - TimeDelta::minutes(minutes_ago) + TimeDelta::seconds(20);
            events.push(engagement(
                &format!("{id}-s"),
                &id,
                "share",
                1 + (n % 7) as u32,
                at,
            ));
            events.push(engagement(&format!("{id}-l"), &id, "like", 3, at));
        }
        n += 1;
    }
    let redis = app.redis().await;
    xadd_all(&redis, &app.env.stream, &events).await;
    assert!(settled(&app, n as i64).await, "the posts are stored");
    let from = now - TimeDelta::hours(2);
    // Tracked within the digest's period, not only before it (the scorer reaches the cascades
    // in no set order).
    let in_period = format!(
        "/api/v1/trending/posts?status=all&limit=5&from={}&to={}",
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        now.format("%Y-%m-%dT%H:%M:%SZ")
    );
    assert!(
        wait_until(Duration::from_secs(60), || async {
            let (_, trending) = app.get(&in_period).await;
            trending["items"].as_array().is_some_and(|i| !i.is_empty())
        })
        .await,
        "the shared posts of the period are tracked"
    );

    for scope in [json!("all"), json!({"topic": topic_id})] {
        let body = json!({"scope": scope, "from": from, "to": now});
        let (digest, differences) = steady_preview(&app, &body).await;
        assert!(differences.is_empty(), "{scope}: {differences:#?}");
        assert!(digest["posts"].as_i64().unwrap() > 10, "{digest}");
        assert_eq!(digest["history"].as_array().unwrap().len(), 8);
        assert!(digest["series"]["points"].as_array().unwrap().len() > 5);
        let rendered = &digest["rendered"];
        slack_shape(&rendered["slack"]).unwrap();
        assert!(rendered["text"]
            .as_str()
            .unwrap()
            .contains(&format!("{} posts", digest["posts"])));
        assert!(rendered["html"]
            .as_str()
            .unwrap()
            .contains("cid:digest-chart"));
        assert!(rendered["chart_png"].as_str().unwrap().len() > 1_000);
        if scope == "all" {
            assert!(
                !digest["viral_posts"].as_array().unwrap().is_empty(),
                "shared posts rank: {digest}"
            );
            assert!(digest["share_of_voice"].as_array().unwrap().len() == 1);
        } else {
            assert_eq!(digest["scope"]["name"], "Battery");
        }
    }

    // Deleting posts of the period changes the figures, and the digest follows the API.
    let (before, _) = steady_preview(&app, &json!({"scope": "all", "from": from, "to": now})).await;
    let gone: Vec<Value> = (0..40)
        .map(|i| deletion(&format!("dg-{i}"), Utc::now()))
        .collect();
    xadd_all(&redis, &app.env.stream, &gone).await;
    assert!(crate::deletions::settled(&app.env, &redis).await);
    let (after, differences) =
        steady_preview(&app, &json!({"scope": "all", "from": from, "to": now})).await;
    assert!(differences.is_empty(), "after deletions: {differences:#?}");
    assert!(
        after["posts"].as_i64() < before["posts"].as_i64(),
        "deletions counted: {} then {}",
        before["posts"],
        after["posts"]
    );
    app.shutdown().await;
}

/// The whole stream's share of voice listed every live topic, a line each in every form: with
/// 300 topics of 50-character names the Teams card passed the 28 KB Teams takes, so every
/// whole-stream digest to Teams failed. It lists the ten with the most posts and sums the
/// others, whose shares add up with the listed ones' to the whole.
#[actix_rt::test]
async fn the_share_of_voice_lists_ten_topics_and_sums_the_others() {
    let app = spawn_app_tuned(|s| s.limits.rate_limits = false).await;
    let n = 300;
    for i in 0..n {
        let name = format!("{:-<50}", format!("topic {i} "));
        app.create_topic(&name, &format!("word{i}")).await;
    }
    assert!(crate::topics::matcher_holds(&app, n).await);
    let now = Utc::now();
    // Topic 0 in four posts, topics 1 to 14 in one each.
    let events: Vec<Value> = (0..18)
        .map(|k| {
            let about = if k < 15 { k } else { 0 };
            crate::deletions::post_at(
                &format!("sov-{k}"),
                &format!("about word{about}"),
                now - TimeDelta::minutes(10),
            )
        })
        .collect();
    xadd_all(&app.redis().await, &app.env.stream, &events).await;
    assert!(settled(&app, 18).await, "the posts are stored");

    let body = json!({"scope": "all", "from": now - TimeDelta::hours(1), "to": now});
    let (digest, differences) = steady_preview(&app, &body).await;
    assert!(differences.is_empty(), "{differences:#?}");
    let listed = digest["share_of_voice"].as_array().unwrap();
    assert_eq!(listed.len(), SHARE_OF_VOICE_TOPICS);
    assert!(listed[0]["name"].as_str().unwrap().starts_with("topic 0 "));
    assert_eq!(listed[0]["posts"], 4);
    let others = &digest["other_topics"];
    assert_eq!(others["topics"], n - SHARE_OF_VOICE_TOPICS, "{others}");
    assert_eq!(others["posts"], 5, "{others}");
    let volume: f64 = listed
        .iter()
        .chain([others])
        .map(|t| t["share_of_voice"]["volume"].as_f64().unwrap())
        .sum();
    assert!((volume - 1.0).abs() < 1e-9, "the shares add up: {volume}");

    let rendered = &digest["rendered"];
    teams_shape(&rendered["teams"]).unwrap();
    slack_shape(&rendered["slack"]).unwrap();
    let card = serde_json::to_vec(&rendered["teams"]).unwrap().len();
    assert!(card <= 28 * 1024, "a Teams card of {card} bytes");
    assert!(
        rendered["text"]
            .as_str()
            .unwrap()
            .contains("290 other topics: 27.8% of posts (5)"),
        "{}",
        rendered["text"]
    );
    app.shutdown().await;
}

#[actix_rt::test]
async fn previews_and_schedules_refuse_what_cannot_work() {
    let app = spawn_app().await;
    let now = Utc::now();
    let bad_previews = [
        json!({"scope": "all", "from": now, "to": now - TimeDelta::hours(1)}),
        json!({"scope": "all", "from": now - TimeDelta::days(40), "to": now}),
        json!({"scope": {"topic": 424242}, "from": now - TimeDelta::hours(1), "to": now}),
        json!({"scope": "everything", "from": now - TimeDelta::hours(1), "to": now}),
        json!({"scope": "all", "from": "2027-02-31T00:00:00Z", "to": now}),
        // The earliest time there is: the periods before it cannot be counted back.
        json!({"scope": "all", "from": "-262143-01-01T00:00:00Z", "to": "-262143-01-02T00:00:00Z"}),
        json!({"scope": "all", "from": "+262142-12-30T00:00:00Z", "to": "+262142-12-31T00:00:00Z"}),
    ];
    for body in bad_previews {
        let (status, answer) = app.post("/api/v1/digests/preview", &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    // A period with nothing in it is a digest that says so.
    let (status, empty) = app
        .post(
            "/api/v1/digests/preview",
            &json!({"scope": "all", "from": now - TimeDelta::days(30), "to": now - TimeDelta::days(29)}),
        )
        .await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty["posts"], 0);
    assert!(empty["rendered"]["text"]
        .as_str()
        .unwrap()
        .contains("Nothing happened"));

    let (addr, _seen, handle) = stand_in(slack_shape, 0);
    let slack = app
        .create_channel(&json!({"kind": "slack", "url": format!("http://{addr}/services/x")}))
        .await;
    let slack = slack["id"].as_i64().unwrap();
    let pagerduty = app
        .create_channel(&json!({"kind": "pagerduty", "url": format!("http://{addr}/v2/enqueue"), "secret": "routing-key-0123456789abcdef0123"}))
        .await;
    let pagerduty = pagerduty["id"].as_i64().unwrap();
    let good = json!({"name": "Weekly", "scope": "all", "cadence": "weekly", "weekday": "monday",
        "at": "08:00", "timezone": "Europe/Paris", "channels": [slack]});
    let with = |key: &str, value: Value| {
        let mut v = good.clone();
        v[key] = value;
        v
    };
    let mut daily_with_day = with("cadence", json!("daily"));
    daily_with_day["weekday"] = json!("monday");
    let refused = [
        (with("timezone", json!("Mars/Olympus")), "invalid_digest"),
        (
            with("timezone", json!("Europe/Paris\u{0}")),
            "invalid_digest",
        ),
        (with("at", json!("25:00")), "invalid_digest"),
        (with("at", json!("8am")), "invalid_digest"),
        (with("weekday", Value::Null), "invalid_digest"),
        (daily_with_day, "invalid_digest"),
        (with("channels", json!([])), "invalid_digest"),
        (with("channels", json!([424242])), "invalid_digest"),
        (with("channels", json!([pagerduty])), "invalid_digest"),
        (with("scope", json!({"topic": 424242})), "invalid_digest"),
        (with("name", json!("  ")), "invalid_digest"),
        (with("name", json!("a\u{202e}b")), "invalid_digest"),
        (with("day_of_month", json!(31)), "invalid_json"),
        (with("cadence", json!("monthly")), "invalid_json"),
    ];
    for (body, code) in refused {
        let (status, answer) = app.post("/api/v1/digests/schedules", &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    // The bound is on the list as sent: 21 ids are refused even when they name one channel,
    // and past the 21st, elements are not read as ids at all.
    let ids = vec![json!(slack); 21];
    for listed in [json!(ids), past_its_bound(ids.clone(), 10_000)] {
        let (status, answer) = app
            .post("/api/v1/digests/schedules", &with("channels", listed))
            .await;
        assert_refused(status, &answer, "invalid_digest", "1 to 20 channels");
    }
    let (status, made) = app.post("/api/v1/digests/schedules", &good).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["weekday"], 1);
    assert_eq!(made["at"], "08:00");
    let id = made["id"].as_i64().unwrap();
    let listed = app.get_ok("/api/v1/digests/schedules").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    // At most 200 schedules: every process computes each one's periods every round.
    let pg = app.env.pg().await;
    pg.execute(
        "INSERT INTO digest_schedules (name, cadence, at, timezone, channels) \
         SELECT 'bulk ' || g, 'daily', '08:00', 'UTC', ARRAY[$1::int8] FROM generate_series(1, 199) g",
        &[&slack],
    )
    .await
    .unwrap();
    let (status, full) = app.post("/api/v1/digests/schedules", &good).await;
    assert_eq!(status, 409, "{full}");
    assert_eq!(full["error"]["code"], "limit_reached");
    pg.execute("DELETE FROM digest_schedules WHERE name LIKE 'bulk %'", &[])
        .await
        .unwrap();
    let (status, off) = app
        .patch(
            &format!("/api/v1/digests/schedules/{id}"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!((status, &off["enabled"]), (200, &json!(false)));
    // A channel deleted after scheduling is reported, and the schedule stays.
    assert_eq!(app.delete(&format!("/api/v1/webhooks/{slack}")).await, 204);
    let view = app.get_ok(&format!("/api/v1/digests/schedules/{id}")).await;
    assert_eq!(view["missing_channels"], json!([slack]));
    app.assert_deleted(&format!("/api/v1/digests/schedules/{id}"))
        .await;
    handle.stop(true).await;
    app.shutdown().await;
}

/// The periods of a schedule are local: a daily one across the spring change of
/// daylight-saving time lasts 23 hours, and a weekly one ends on its weekday.
#[actix_rt::test]
async fn schedule_periods_follow_local_time_across_daylight_saving() {
    let app = spawn_app().await;
    let pg = app.env.pg().await;
    let period =
        |cadence: &'static str, weekday: Option<i16>, tz: &'static str, now: &'static str| {
            let pg = &pg;
            async move {
                let now: DateTime<Utc> = now.parse().unwrap();
                let at = chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap();
                let row = pg
                .query_one(
                    "SELECT period_from, period_to FROM pulse_digest_period($1, $2, $3, $4, $5, 0)",
                    &[&cadence, &weekday, &at, &tz, &now],
                )
                .await
                .unwrap();
                let (f, t): (DateTime<Utc>, DateTime<Utc>) = (row.get(0), row.get(1));
                (f, t)
            }
        };
    // New York moves to daylight time on Sunday 8 March 2026.
    let (f, t) = period("daily", None, "America/New_York", "2026-03-08T15:00:00Z").await;
    assert_eq!(f, "2026-03-07T13:00:00Z".parse::<DateTime<Utc>>().unwrap());
    assert_eq!(t, "2026-03-08T12:00:00Z".parse::<DateTime<Utc>>().unwrap());
    assert_eq!(t - f, TimeDelta::hours(23));
    // Before 08:00 local, the latest period is the one that ended yesterday.
    let (_, t) = period("daily", None, "Europe/Paris", "2026-11-27T06:30:00Z").await;
    assert_eq!(t, "2026-11-26T07:00:00Z".parse::<DateTime<Utc>>().unwrap());
    // Weekly on Monday (1), asked on a Saturday.
    let (f, t) = period("weekly", Some(1), "Europe/Paris", "2026-11-28T12:00:00Z").await;
    assert_eq!(t, "2026-11-23T07:00:00Z".parse::<DateTime<Utc>>().unwrap());
    assert_eq!(t - f, TimeDelta::days(7));
    app.shutdown().await;
}

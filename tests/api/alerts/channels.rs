//! Alert channels against local receivers: Slack, Microsoft Teams and PagerDuty stand-ins that
//! check each body against the documented shape of that service's payload (and answer 400 to
//! anything else, as the services do), a receiver that fails twice before taking the alert,
//! a channel that asks for critical alerts only, and the resolution of the alert announced
//! with PagerDuty's same deduplication key. What a person would read is asserted, not only
//! the status.

use crate::common;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// One request a stand-in received: its body, and why it refused it (None: accepted or failed
/// on purpose).
pub(crate) type Seen = Arc<Mutex<Vec<(Value, Option<String>)>>>;

/// Checks a body against a service's documented payload shape.
pub(crate) type Shape = fn(&Value) -> Result<(), String>;

fn need(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

pub(crate) fn text_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Slack incoming webhooks: `text` (the notification's fallback) and Block Kit `blocks`.
pub(crate) fn slack_shape(b: &Value) -> Result<(), String> {
    need(!text_of(&b["text"]).is_empty(), "text is required")?;
    let blocks = b["blocks"].as_array().ok_or("blocks must be an array")?;
    need(!blocks.is_empty() && blocks.len() <= 50, "1 to 50 blocks")?;
    for block in blocks {
        match text_of(&block["type"]) {
            "header" => {
                need(
                    block["text"]["type"] == "plain_text",
                    "header text is plain_text",
                )?;
                need(
                    text_of(&block["text"]["text"]).chars().count() <= 150,
                    "header ≤ 150",
                )?;
            }
            "section" => {
                let t = text_of(&block["text"]["type"]);
                need(t == "mrkdwn" || t == "plain_text", "section text type")?;
                need(
                    text_of(&block["text"]["text"]).len() <= 3000,
                    "section text ≤ 3000",
                )?;
                if let Some(fields) = block.get("fields") {
                    let fields = fields.as_array().ok_or("fields must be an array")?;
                    need(fields.len() <= 10, "≤ 10 fields")?;
                    for f in fields {
                        need(!text_of(&f["text"]).is_empty(), "field text")?;
                    }
                }
            }
            "context" => {
                let elements = block["elements"].as_array().ok_or("context elements")?;
                need(
                    !elements.is_empty() && elements.len() <= 10,
                    "1 to 10 context elements",
                )?;
            }
            "actions" => {
                for e in block["elements"].as_array().ok_or("actions elements")? {
                    need(e["type"] == "button", "action is a button")?;
                    need(
                        e["text"]["type"] == "plain_text",
                        "button text is plain_text",
                    )?;
                    need(text_of(&e["url"]).starts_with("http"), "button url")?;
                }
            }
            other => return Err(format!("unknown block type {other:?}")),
        }
    }
    Ok(())
}

/// Teams incoming webhooks: a `message` with one Adaptive Card attachment.
pub(crate) fn teams_shape(b: &Value) -> Result<(), String> {
    need(b["type"] == "message", "type message")?;
    let card = &b["attachments"][0];
    need(
        card["contentType"] == "application/vnd.microsoft.card.adaptive",
        "an Adaptive Card attachment",
    )?;
    let content = &card["content"];
    need(
        content["type"] == "AdaptiveCard",
        "content type AdaptiveCard",
    )?;
    need(!text_of(&content["version"]).is_empty(), "card version")?;
    for element in content["body"].as_array().ok_or("card body")? {
        match text_of(&element["type"]) {
            "TextBlock" => need(!text_of(&element["text"]).is_empty(), "TextBlock text")?,
            "RichTextBlock" => {
                let inlines = element["inlines"].as_array().ok_or("inlines")?;
                need(!inlines.is_empty(), "at least one inline")?;
                for run in inlines {
                    need(run["type"] == "TextRun", "inline TextRun")?;
                    need(!text_of(&run["text"]).is_empty(), "TextRun text")?;
                }
            }
            "FactSet" => {
                for fact in element["facts"].as_array().ok_or("facts")? {
                    need(
                        fact["title"].is_string() && fact["value"].is_string(),
                        "fact",
                    )?;
                }
            }
            other => return Err(format!("unexpected element {other:?}")),
        }
    }
    for action in content["actions"].as_array().ok_or("actions")? {
        need(action["type"] == "Action.OpenUrl", "OpenUrl action")?;
        need(text_of(&action["url"]).starts_with("http"), "action url")?;
    }
    Ok(())
}

/// PagerDuty Events API v2.
fn pagerduty_shape(b: &Value) -> Result<(), String> {
    need(!text_of(&b["routing_key"]).is_empty(), "routing_key")?;
    let dedup = text_of(&b["dedup_key"]);
    need(!dedup.is_empty() && dedup.len() <= 255, "dedup_key ≤ 255")?;
    match text_of(&b["event_action"]) {
        "trigger" => {
            let p = &b["payload"];
            let summary = text_of(&p["summary"]);
            need(
                !summary.is_empty() && summary.len() <= 1024,
                "summary ≤ 1024",
            )?;
            need(!text_of(&p["source"]).is_empty(), "source")?;
            need(
                ["critical", "error", "warning", "info"].contains(&text_of(&p["severity"])),
                "severity",
            )?;
        }
        "resolve" | "acknowledge" => {}
        other => return Err(format!("event_action {other:?}")),
    }
    Ok(())
}

/// A stand-in on a free port that fails its first `failures` well-formed requests with 500,
/// refuses malformed ones with 400, and takes the rest (202 for PagerDuty, 200 otherwise).
pub(crate) fn stand_in(
    shape: Shape,
    failures: usize,
) -> (std::net::SocketAddr, Seen, actix_web::dev::ServerHandle) {
    use actix_web::{HttpRequest, HttpResponse};
    let seen: Seen = Default::default();
    let state = seen.clone();
    let (addr, handle) = http_standin::receiver(move |_: HttpRequest, body: String| {
        let state = state.clone();
        async move {
            let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let verdict = shape(&parsed).err();
            let mut seen = state.lock().unwrap();
            let bad = verdict.is_some();
            seen.push((parsed, verdict));
            if bad {
                HttpResponse::BadRequest().finish()
            } else if seen.len() <= failures {
                HttpResponse::InternalServerError().finish()
            } else {
                HttpResponse::Accepted().json(json!({"status": "success"}))
            }
        }
    });
    (addr, seen, handle)
}

pub(crate) fn bodies(seen: &Seen) -> Vec<Value> {
    let seen = seen.lock().unwrap();
    for (body, verdict) in seen.iter() {
        assert!(verdict.is_none(), "malformed body ({verdict:?}): {body}");
    }
    seen.iter().map(|(b, _)| b.clone()).collect()
}

#[actix_rt::test]
async fn alerts_reach_slack_teams_and_pagerduty_in_their_formats_and_resolve_there() {
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.3);
        s.alerts.resolve_after_secs = 1;
        quick_webhooks(s);
        s.webhooks.dashboard_url = "https://pulse.example.com/".into();
    })
    .await;

    // The default rules watch the whole stream; this test's rule watches one product.
    let rule = super::only_phone_negativity(&app, "Phone negativity", "warning").await;

    let (slack_addr, slack, slack_handle) = stand_in(slack_shape, 2);
    let (teams_addr, teams, teams_handle) = stand_in(teams_shape, 0);
    let (pd_addr, pd, pd_handle) = stand_in(pagerduty_shape, 0);
    let (quiet_addr, quiet, quiet_handle) = stand_in(slack_shape, 0);
    let hooks = "/api/v1/webhooks";
    let slack_channel = app
        .create_channel(&json!({"kind": "slack", "name": "#brand-alerts",
               "url": format!("http://{slack_addr}/services/T000/B000/s3cr3tpath")}))
        .await;
    assert_eq!(slack_channel["kind"], "slack");
    app.create_channel(
        &json!({"kind": "teams", "url": format!("http://{teams_addr}/webhookb2/x")}),
    )
    .await;
    let routing_key = "R0UT1NGKEY0123456789abcdefabcdef";
    app.create_channel(
        &json!({"kind": "pagerduty", "url": format!("http://{pd_addr}/v2/enqueue"),
               "secret": routing_key}),
    )
    .await;
    app.create_channel(
        &json!({"kind": "slack", "url": format!("http://{quiet_addr}/services/critical"),
               "min_severity": "critical"}),
    )
    .await;
    // A PagerDuty channel needs its routing key; a Slack one its URL.
    for bad in [
        json!({"kind": "pagerduty"}),
        json!({"kind": "slack"}),
        json!({"kind": "email", "url": "http://x"}),
    ] {
        let (status, _) = app.post(hooks, &bad).await;
        assert_eq!(status, 400, "{bad}");
    }
    // Listings hide the path that is Slack's secret.
    let listed = app.get(hooks).await.1;
    assert!(
        !listed.to_string().contains("s3cr3tpath"),
        "the Slack URL's path is listed: {listed}"
    );

    let angry: Vec<String> =
        super::complaints("ch", 8, "The Pulse Phone update bricked it again, terrible")
            .map(|p| p.to_string())
            .collect();
    app.send_events(&angry).await;

    // Slack fails twice, then takes the alert: three requests, one alert.
    assert!(
        wait_until(Duration::from_secs(30), || async {
            slack.lock().unwrap().len() >= 3
                && !teams.lock().unwrap().is_empty()
                && !pd.lock().unwrap().is_empty()
        })
        .await,
        "slack {} teams {} pagerduty {}",
        slack.lock().unwrap().len(),
        teams.lock().unwrap().len(),
        pd.lock().unwrap().len()
    );
    let alert = &app.get("/api/v1/alerts").await.1["items"][0];
    let alert_id = alert["id"].as_i64().unwrap();

    let message = bodies(&slack)[2].clone();
    let text = message.to_string();
    assert!(
        text_of(&message["text"]).starts_with("[WARNING] Phone negativity: product pulse-phone"),
        "{message}"
    );
    assert!(
        text.contains("negative share 100% (threshold 50%)"),
        "{text}"
    );
    assert!(
        text.contains("The Pulse Phone update bricked it again"),
        "{text}"
    );
    assert!(
        text.contains("https://pulse.example.com/?product=pulse-phone"),
        "{text}"
    );

    let card = &bodies(&teams)[0]["attachments"][0]["content"];
    assert_eq!(
        card["body"][0]["inlines"][0]["text"],
        "[WARNING] Phone negativity: product pulse-phone"
    );
    assert!(card.to_string().contains("bricked it again"), "{card}");

    let trigger = bodies(&pd)[0].clone();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], routing_key);
    assert_eq!(trigger["dedup_key"], format!("pulse-alert-{alert_id}"));
    assert_eq!(trigger["payload"]["severity"], "warning");
    assert_eq!(trigger["payload"]["component"], "product pulse-phone");

    // Resolution: the condition clears (the bar is raised above what the window shows).
    app.clear_rule(&rule).await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            pd.lock().unwrap().len() >= 2
                && slack.lock().unwrap().len() >= 4
                && teams.lock().unwrap().len() >= 2
        })
        .await,
        "the resolution did not reach every channel"
    );
    let resolve = bodies(&pd)[1].clone();
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert!(text_of(&bodies(&slack)[3]["text"]).starts_with("Resolved: Phone negativity"));

    // Exactly once each: no duplicate after a success, nothing for the critical-only channel.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(slack.lock().unwrap().len(), 4);
    assert_eq!(teams.lock().unwrap().len(), 2);
    assert_eq!(pd.lock().unwrap().len(), 2);
    assert!(
        quiet.lock().unwrap().is_empty(),
        "a warning reached a critical-only channel"
    );

    let log = app.deliveries(&slack_channel).await;
    let events: Vec<(String, String, i64)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["event"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
                d["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("resolve".to_string(), "delivered".to_string(), 1),
            ("fire".to_string(), "delivered".to_string(), 3)
        ]
    );

    // The listing carries each channel's newest delivery.
    let listed = app.get(hooks).await.1;
    let slack_listed = item_where(&listed["items"], |w| w["id"] == slack_channel["id"]).clone();
    assert_eq!(
        slack_listed["last_delivery"]["event"], "resolve",
        "{slack_listed}"
    );
    assert_eq!(slack_listed["last_delivery"]["status"], "delivered");
    assert_eq!(slack_listed["last_delivery"]["alert_id"], alert_id);

    for handle in [slack_handle, teams_handle, pd_handle, quiet_handle] {
        handle.stop(false).await;
    }
    app.shutdown().await;
}

#[actix_rt::test]
async fn rules_route_to_their_channels_quiet_hours_hold_and_test_messages_arrive() {
    let app = spawn_app_tuned(|s| {
        quick_alerts(s, 0.3);
        quick_webhooks(s);
    })
    .await;
    app.remove_rules().await;

    let (routed_addr, routed, h1) = stand_in(slack_shape, 0);
    let (other_addr, other, h2) = stand_in(slack_shape, 0);
    let (asleep_addr, asleep, h3) = stand_in(teams_shape, 0);
    let (pd_addr, pd, h4) = stand_in(pagerduty_shape, 0);
    let (down_addr, _down, h5) = stand_in(slack_shape, 1_000);
    let hooks = "/api/v1/webhooks";
    let routed_channel = app
        .create_channel(
            &json!({"kind": "slack", "url": format!("http://{routed_addr}/services/a")}),
        )
        .await;
    app.create_channel(&json!({"kind": "slack", "url": format!("http://{other_addr}/services/b")}))
        .await;
    // Quiet from an hour ago to two hours from now in Kiritimati (UTC+14, so the quiet hours
    // run over local midnight on some runs): nothing below critical goes now.
    let local = chrono::Utc::now() + chrono::Duration::hours(14);
    let hhmm = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let quiet = json!({"from": hhmm(local - chrono::Duration::hours(1)),
                       "to": hhmm(local + chrono::Duration::hours(2)),
                       "timezone": "Pacific/Kiritimati"});
    let asleep_channel = app.create_channel(&json!({"kind": "teams", "url": format!("http://{asleep_addr}/x"), "quiet_hours": quiet})).await;
    assert_eq!(asleep_channel["quiet_hours"], quiet);
    let pd_channel = app
        .create_channel(
            &json!({"kind": "pagerduty", "url": format!("http://{pd_addr}/v2/enqueue"),
               "secret": "R0UT1NGKEY0123456789abcdefabcdef"}),
        )
        .await;
    let down_channel = app
        .create_channel(&json!({"kind": "slack", "url": format!("http://{down_addr}/services/c")}))
        .await;
    for bad in [
        json!({"kind": "teams", "url": "http://127.0.0.1:9/x", "quiet_hours": {"from": "22:00", "to": "07:00", "timezone": "Mars/Olympus"}}),
        json!({"kind": "teams", "url": "http://127.0.0.1:9/x", "quiet_hours": {"from": "25:00", "to": "07:00"}}),
        json!({"kind": "teams", "url": "http://127.0.0.1:9/x", "quiet_hours": {"from": "22:00", "to": "07:00", "timezone": "UTC\u{0}"}}),
    ] {
        let (status, body) = app.post(hooks, &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["code"], "invalid_webhook", "{body}");
    }

    // Kinds are a set, however often a body repeats one: the channel and its one-time secret
    // come back whole.
    let repeated = vec!["churn"; 20_000];
    let (status, body) = app
        .post(
            hooks,
            &json!({"kind": "slack", "url": "http://127.0.0.1:9/services/r", "kinds": repeated}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["kinds"], json!(["churn"]), "{body}");
    assert!(
        body["secret"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    app.assert_deleted(&format!("{hooks}/{}", body["id"])).await;

    // A rule naming channels that do not exist is refused.
    let (status, _) = app
        .post(
            "/api/v1/alert-rules",
            &json!({"name": "x", "kind": "negativity", "channels": [987654]}),
        )
        .await;
    assert_eq!(status, 400);
    // So is one naming more than 50, and past the 51st, elements are not read as ids at all:
    // however long the list, the server builds no more than 51 of them.
    let ids = vec![routed_channel["id"].clone(); 51];
    for listed in [json!(ids), past_its_bound(ids.clone(), 10_000)] {
        let (status, answer) = app
            .post(
                "/api/v1/alert-rules",
                &json!({"name": "x", "kind": "negativity", "channels": listed}),
            )
            .await;
        assert_refused(status, &answer, "invalid_rule", "at most 50 channel ids");
    }
    let rule = app
        .create_rule(
            &json!({"name": "Routed negativity", "kind": "negativity", "threshold": 0.5,
               "min_volume": 5, "severity": "warning",
               "channels": [routed_channel["id"], asleep_channel["id"]]}),
        )
        .await;
    assert_eq!(
        rule["channels"],
        json!([routed_channel["id"], asleep_channel["id"]])
    );

    let angry: Vec<String> =
        super::complaints("rt", 6, "Awful support, terrible product, I hate it")
            .map(|p| p.platform("reddit").without(&["product"]).to_string())
            .collect();
    app.send_events(&angry).await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            !routed.lock().unwrap().is_empty()
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(bodies(&routed).len(), 1);
    assert!(
        other.lock().unwrap().is_empty(),
        "a channel the rule does not name got it"
    );
    assert!(
        asleep.lock().unwrap().is_empty(),
        "a channel in its quiet hours got it now"
    );
    let held = app.deliveries(&asleep_channel).await["items"][0].clone();
    assert_eq!(held["status"], "pending", "{held}");
    let due: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(held["next_attempt_at"].clone()).unwrap();
    assert!(
        due > chrono::Utc::now(),
        "held until the quiet hours end: {held}"
    );

    // Test messages: in the channel's format, and the receiver's answer reported.
    let tested = app.test_channel(&routed_channel).await;
    assert_eq!(
        tested,
        json!({"delivered": true, "status": 202, "error": null})
    );
    let test_message = bodies(&routed).pop().unwrap();
    assert!(
        text_of(&test_message["text"]).contains("Test message from Pulse"),
        "{test_message}"
    );
    let paged = app.test_channel(&pd_channel).await;
    assert_eq!(paged["delivered"], true);
    let actions: Vec<Value> = bodies(&pd)
        .iter()
        .map(|b| b["event_action"].clone())
        .collect();
    assert_eq!(actions, [json!("trigger"), json!("resolve")]);
    let failed = app.test_channel(&down_channel).await;
    assert_eq!(failed["delivered"], false);
    assert_eq!(failed["status"], 500);
    let (missing, _) = app.post_empty("/api/v1/webhooks/987654/test").await;
    assert_eq!(missing, 404);

    for handle in [h1, h2, h3, h4, h5] {
        handle.stop(false).await;
    }
    app.shutdown().await;
}

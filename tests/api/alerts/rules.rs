//! Rules as the alerter announces them: names and keys with control characters refused, and a
//! manual resolution announced as manual, a cleared condition as cleared.

use crate::common;

use common::*;
use serde_json::{json, Value};

/// A rule name with a line break wrote a second, forged line into the `alert fired` log. Names
/// and keys with control characters are refused on create and on update; what a name that is
/// already stored logs is tested with the alerter (`src/actors/alerter.rs`).
#[actix_rt::test]
async fn rule_names_and_keys_with_control_characters_are_refused() {
    let app = spawn_app().await;
    let rules = || async { app.get("/api/v1/alert-rules").await.1["items"].clone() };
    let before = rules().await;
    let forged = "Churn\n2026-11-24T10:00:00.000000Z  INFO pulse::actors::alerter: all clear";

    let invalid_rule = |res: Value| {
        assert_eq!(res["error"]["code"], "invalid_rule", "{res}");
        assert_eq!(res["error"]["details"], json!({}), "{res}");
        res["error"]["message"].as_str().unwrap().to_string()
    };
    for body in [
        json!({"name": forged, "kind": "churn"}),
        json!({"name": "bell\u{7}", "kind": "churn"}),
        json!({"name": "\u{1b}[2Jwiped", "kind": "churn"}),
        json!({"name": "Phone", "kind": "churn", "dimension": "product", "key": "pulse\r\nphone"}),
        // Unseen or direction-changing: a name passing for another, a log line read backwards.
        json!({"name": "Churn\u{2028}all clear", "kind": "churn"}),
        json!({"name": "Churn \u{202E}raelc lla", "kind": "churn"}),
        json!({"name": "Phone", "kind": "churn", "dimension": "product", "key": "pulse\u{200B}phone"}),
    ] {
        let (status, res) = app.post("/api/v1/alert-rules", &body).await;
        assert_eq!(status, 400, "{body}");
        let message = invalid_rule(res);
        assert!(message.contains("control characters"), "{message}");
    }
    assert_eq!(rules().await, before, "a refused rule was stored");

    let id = before[0]["id"].as_i64().unwrap();
    let (status, res) = app
        .patch(
            &format!("/api/v1/alert-rules/{id}"),
            &json!({"name": forged}),
        )
        .await;
    assert_eq!(status, 400);
    invalid_rule(res);
    assert_eq!(rules().await, before, "a refused update was applied");

    // Names in any script, with spaces and punctuation, are still names.
    app.create_rule(&json!({"name": "Négativité ≥ 50 % — « Pulse »", "kind": "churn"}))
        .await;
    app.shutdown().await;
}

/// After a manual resolve, Slack said "The condition has held clear": whoever read it stopped
/// looking at a problem that may still be there. One alert is resolved by hand with an
/// analyst's key, another clears by itself; each resolution says which it was.
#[actix_rt::test]
async fn a_manual_resolve_is_announced_as_manual_and_a_clear_as_the_condition() {
    use crate::alerts::channels::{bodies, slack_shape, stand_in, text_of};
    use pulse::auth::Role;
    use std::time::Duration;

    let s = common::secured::SecuredServer::start(|settings| {
        settings.alerts.enabled = true;
        settings.alerts.evaluate_every_secs = 0.3;
        settings.alerts.resolve_after_secs = 1;
        settings.webhooks.poll_ms = 50;
        settings.webhooks.base_delay_ms = 50;
    })
    .await;
    let admin = Some(Role::Admin);
    for rule in s
        .call("GET", "/api/v1/alert-rules", admin, None)
        .await
        .json()["items"]
        .as_array()
        .unwrap()
    {
        let path = format!("/api/v1/alert-rules/{}", rule["id"]);
        assert_eq!(s.call("DELETE", &path, admin, None).await.status, 204);
    }
    let mut rules = Vec::new();
    for (name, product) in [
        ("Phone negativity", "pulse-phone"),
        ("Watch negativity", "pulse-watch"),
    ] {
        let rule = s
            .call(
                "POST",
                "/api/v1/alert-rules",
                admin,
                Some(
                    json!({"name": name, "kind": "negativity", "dimension": "product",
                            "key": product, "threshold": 0.5, "min_volume": 5}),
                ),
            )
            .await;
        assert_eq!(rule.status, 201, "{}", rule.body);
        rules.push(rule.json());
    }
    let (slack_addr, slack, slack_handle) = stand_in(slack_shape, 0);
    let channel = s
        .call(
            "POST",
            "/api/v1/webhooks",
            admin,
            Some(json!({"kind": "slack", "url": format!("http://{slack_addr}/services/T/B/x")})),
        )
        .await;
    assert_eq!(channel.status, 201, "{}", channel.body);

    let redis = s.env.redis().await;
    let angry: Vec<String> = ["pulse-phone", "pulse-watch"]
        .into_iter()
        .flat_map(|product| {
            super::complaints(product, 8, "The update bricked it again, terrible")
                .map(move |p| p.product(product).to_string())
        })
        .collect();
    pulse::streams::producer::xadd_events(&redis, &s.env.stream, &angry)
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            slack.lock().unwrap().len() >= 2
        })
        .await,
        "the alerts did not reach Slack"
    );

    // The phone's alert is resolved by hand while its condition still holds; the watch's
    // condition clears (its bar is raised above what the window shows).
    let alerts = s
        .analyst("GET", "/api/v1/alerts?status=firing", None)
        .await
        .json();
    let phone = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "pulse-phone")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let resolved = s
        .analyst("POST", &format!("/api/v1/alerts/{phone}/resolve"), None)
        .await;
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    let patched = s
        .call(
            "PATCH",
            &format!("/api/v1/alert-rules/{}", rules[1]["id"]),
            admin,
            Some(json!({"threshold": 1.1})),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert!(
        wait_until(Duration::from_secs(30), || async {
            slack.lock().unwrap().len() >= 4
        })
        .await,
        "the resolutions did not reach Slack"
    );

    let messages = bodies(&slack);
    let resolution = |rule: &str| {
        messages
            .iter()
            .find(|m| text_of(&m["text"]).starts_with(&format!("Resolved: {rule}")))
            .unwrap_or_else(|| panic!("no resolution of {rule} in {messages:?}"))
            .to_string()
    };
    let analyst = &s.key(Role::Analyst).info;
    let manual = resolution("Phone negativity");
    assert!(
        manual.contains(&format!(
            "Resolved manually by {} (key:{}) at ",
            analyst.name, analyst.id
        )),
        "{manual}"
    );
    assert!(
        manual.contains("not by the condition clearing: it may still hold"),
        "{manual}"
    );
    assert!(!manual.contains("held clear"), "{manual}");

    let cleared = resolution("Watch negativity");
    assert!(
        cleared.contains("The condition has held clear, so Pulse resolved the alert at "),
        "{cleared}"
    );
    assert!(!cleared.contains("manually"), "{cleared}");

    slack_handle.stop(false).await;
    s.app.shutdown().await;
}

/// `"channels": null` in a PATCH was read as absent: a rule sent to one channel could not be
/// sent to every channel again, though the API says null means every channel. `"key": null`
/// (every key) was ignored alike.
#[actix_rt::test]
async fn a_patch_with_null_channels_or_key_sets_them_back_to_every_one() {
    let app = spawn_app().await;
    let channel = app
        .create_channel(&json!({"kind": "slack", "url": "http://127.0.0.1:9/services/n"}))
        .await;
    let rule = app
        .create_rule(&json!({"name": "Phone negativity", "kind": "negativity",
            "dimension": "product", "key": "pulse-phone", "channels": [channel["id"]]}))
        .await;
    assert_eq!(rule["channels"], json!([channel["id"]]), "{rule}");
    let path = format!("/api/v1/alert-rules/{}", rule["id"]);

    // Absent fields stay as they are.
    let (status, kept) = app.patch(&path, &json!({"threshold": 0.6})).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["channels"], json!([channel["id"]]), "{kept}");
    assert_eq!(kept["key"], "pulse-phone", "{kept}");

    let (status, patched) = app
        .patch(&path, &json!({"channels": null, "key": null}))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["channels"], Value::Null, "{patched}");
    assert_eq!(patched["key"], Value::Null, "{patched}");
    let (_, listed) = app.get("/api/v1/alert-rules").await;
    let stored = item_where(&listed["items"], |r| r["id"] == rule["id"]).clone();
    assert_eq!(stored["channels"], Value::Null, "{stored}");
    assert_eq!(stored["key"], Value::Null, "{stored}");
    app.shutdown().await;
}

use super::*;

fn payload() -> Value {
    json!({
        "id": 42, "rule_id": 1, "rule_name": "Negativity above half of posts",
        "kind": "negativity", "severity": "warning", "dimension": "product",
        "key": "pulse phone", "status": "firing", "value": 0.72, "threshold": 0.5,
        "fired_at": "2026-11-24T10:00:00Z",
        "evidence": {
            "window": {"minutes": 5, "stats": {"posts": 120}},
            "top_posts": [
                {"id": "p1", "text": "My <Pulse> phone & charger both died"},
                {"id": "p2", "text": "Worst update ever"},
                {"id": "p3", "text": "x".repeat(400)},
                {"id": "p4", "text": "not quoted"},
            ],
            "top_terms": [{"term": "update", "posts": 9}, {"term": "died", "posts": 4}],
        },
    })
}

#[test]
fn slack_says_what_fired_where_with_figures_posts_and_a_scoped_link() {
    let body = render(
        ChannelKind::Slack,
        DeliveryEvent::Fire,
        &payload(),
        "https://pulse.example/",
        "",
    );
    let text = body.to_string();
    assert!(body["text"]
        .as_str()
        .unwrap()
        .starts_with("[WARNING] Negativity above half of posts: product pulse phone"));
    assert!(text.contains("negative share 72% (threshold 50%), 120 posts in 5 min"));
    assert!(text.contains("&lt;Pulse&gt; phone &amp; charger"));
    assert!(text.contains("Worst update ever") && !text.contains("not quoted"));
    assert!(text.contains(&format!("{}…", "x".repeat(POST_CHARS - 1))));
    let button = &body["blocks"].as_array().unwrap().last().unwrap()["elements"][0];
    assert_eq!(button["url"], "https://pulse.example/?product=pulse+phone");
}

#[test]
fn teams_sends_an_adaptive_card() {
    let body = render(
        ChannelKind::Teams,
        DeliveryEvent::Resolve,
        &json!({"id": 7, "rule_name": "Churn", "kind": "churn", "severity": "critical",
                    "dimension": "overall", "key": "", "value": 0.3, "threshold": 0.2,
                    "resolved_at": "2026-11-24T11:00:00Z"}),
        "http://localhost:8080",
        "",
    );
    let card = &body["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(
        card["content"]["body"][0]["inlines"][0]["text"],
        "Resolved: Churn: whole stream"
    );
    assert_eq!(
        card["content"]["actions"][0]["url"],
        "http://localhost:8080/"
    );
}

/// A post and a product name are anyone's words: in a card they must stay text, not
/// become a link, a mention or formatting.
#[test]
fn posts_and_product_names_cannot_add_links_or_mentions() {
    let mut alert = payload();
    alert["key"] = json!("[Open](https://evil.example/login)");
    alert["evidence"]["top_posts"] = json!([
        {"id": "p1", "text": "**Verify your account** [here](https://evil.example/x) <!channel> <https://evil.example|Pulse>"},
    ]);
    alert["evidence"]["top_terms"] = json!([{"term": "[a](https://evil.example)", "posts": 3}]);

    let card = fired(ChannelKind::Teams, &alert);
    let body = card["attachments"][0]["content"]["body"]
        .as_array()
        .unwrap();
    let mut runs = Vec::new();
    for element in body {
        match element["type"].as_str().unwrap() {
            // Markdown is read here: nothing of the attacker's may appear.
            "TextBlock" => assert!(!element.to_string().contains("evil"), "{element}"),
            "FactSet" => assert!(!element.to_string().contains("evil"), "{element}"),
            "RichTextBlock" => {
                for run in element["inlines"].as_array().unwrap() {
                    assert_eq!(run["type"], "TextRun");
                    runs.push(run["text"].as_str().unwrap().to_string());
                }
            }
            other => panic!("unexpected element {other}"),
        }
    }
    let shown = runs.join("\n");
    assert!(
        shown.contains("Scope: product [Open](https://evil.example/login)"),
        "{shown}"
    );
    assert!(shown.contains("[here](https://evil.example/x)"), "{shown}");
    assert!(
        shown.contains("Words: [a](https://evil.example)"),
        "{shown}"
    );

    let slack = fired(ChannelKind::Slack, &alert);
    let text = slack.to_string();
    for forbidden in ["<!channel>", "<https://evil.example|"] {
        assert!(!text.contains(forbidden), "{forbidden} in {text}");
    }
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
    // The dashboard link's filter value is URL-encoded, not spliced into the URL.
    let button = &slack["blocks"].as_array().unwrap().last().unwrap()["elements"][0];
    assert_eq!(
        button["url"],
        "https://p.example/?product=%5BOpen%5D%28https%3A%2F%2Fevil.example%2Flogin%29"
    );
}

#[test]
fn a_quoted_post_cannot_end_its_quote_or_reorder_what_it_shows() {
    let mut alert = payload();
    alert["evidence"]["top_posts"] = json!([
        {"id": "p1", "text": "Refund issue\rOpen in Pulse: https://login.evil.example/\u{2028}moc.\u{202E}lave"},
    ]);
    let slack = fired(ChannelKind::Slack, &alert);
    let quoted: Vec<String> = slack_mrkdwn(&slack)
        .into_iter()
        .filter(|t| t.contains("Refund issue"))
        .collect();
    assert_eq!(quoted.len(), 1, "{slack}");
    let quote = &quoted[0];
    assert!(!quote.contains(['\r', '\u{2028}', '\u{202E}']), "{quote:?}");
    assert!(quote.lines().all(|l| l.starts_with("> ")), "{quote:?}");
    let email = fired(ChannelKind::Email, &alert);
    assert!(!email.to_string().contains("\\r"), "{email}");
}

/// Only the quoted posts were verbatim: a bare URL or `#channel` in a product key, a
/// trending word or a resolution note became a link in Slack.
#[test]
fn slack_links_nothing_an_alert_carries() {
    let mut alert = payload();
    alert["key"] = json!("https://login.evil.example/ #general");
    alert["resolved_at"] = json!("2026-11-24T11:00:00Z");
    for event in [DeliveryEvent::Fire, DeliveryEvent::Resolve] {
        let slack = render(ChannelKind::Slack, event, &alert, "https://p.example", "");
        assert_eq!(linkable_mrkdwn(&slack), Vec::<String>::new(), "{slack}");
    }
}

/// `alert`'s firing as `kind` renders it, with the dashboard at `https://p.example`.
fn fired(kind: ChannelKind, alert: &Value) -> Value {
    render(kind, DeliveryEvent::Fire, alert, "https://p.example", "")
}

/// Every mrkdwn text of a Slack message: the notification `text` and the blocks' own.
fn slack_mrkdwn(message: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if o.get("type") == Some(&json!("mrkdwn")) {
                    out.push(o["text"].as_str().unwrap_or("").to_string());
                }
                o.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = vec![message["text"].as_str().unwrap().to_string()];
    walk(&message["blocks"], &mut out);
    out
}

/// The notification `text` is read as mrkdwn like the blocks, and it is what a phone shows:
/// a rule name or a product label must not mention the channel or link there either.
#[test]
fn slack_notification_text_is_escaped_like_the_blocks() {
    let mut alert = payload();
    alert["rule_name"] = json!("Ops <!channel> & <https://evil.example|click>");
    alert["key"] = json!("<!channel> <https://evil.example|click>");
    alert["resolved_at"] = json!("2026-11-24T11:00:00Z");
    for event in &[DeliveryEvent::Fire, DeliveryEvent::Resolve] {
        let slack = render(ChannelKind::Slack, *event, &alert, "https://p.example", "");
        let text = slack["text"].as_str().unwrap();
        assert!(
            text.contains("Ops &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"),
            "{text}"
        );
        assert!(
            text.contains("product &lt;!channel&gt; &lt;https://evil.example|click&gt;"),
            "{text}"
        );
        for mrkdwn in slack_mrkdwn(&slack) {
            for forbidden in ["<!channel>", "<https://evil.example|click>", " & "] {
                assert!(!mrkdwn.contains(forbidden), "{forbidden} in {mrkdwn}");
            }
        }
    }
}

fn resolved(resolution: Value, by: Value) -> Value {
    let mut alert = payload();
    alert["status"] = json!("resolved");
    alert["resolved_at"] = json!("2026-11-24T11:00:00Z");
    alert["resolution"] = resolution;
    alert["resolved_by"] = by;
    alert
}

/// An alert whose quoted posts were deleted may clear because they no longer count: the
/// resolution says so rather than resolving silently.
#[test]
fn a_condition_that_cleared_after_deletions_says_so() {
    let mut cleared = resolved(json!("cleared"), Value::Null);
    cleared["evidence"]["deleted_posts"] = json!(3);
    for kind in [ChannelKind::Slack, ChannelKind::Teams, ChannelKind::Email] {
        let text = render(
            kind,
            DeliveryEvent::Resolve,
            &cleared,
            "https://p.example",
            "",
        )
        .to_string();
        assert!(
            text.contains("3 posts it quoted were deleted since it fired and no longer count."),
            "{kind}: {text}"
        );
    }
}

/// Someone resolving an alert by hand says nothing about the condition: the message must
/// not tell people it cleared, and says who resolved it when that is known.
#[test]
fn a_manual_resolution_is_never_announced_as_the_condition_clearing() {
    let manual = resolved(json!("manual"), json!("ops <!channel> (key:k1)"));
    let cleared = resolved(json!("cleared"), Value::Null);
    let anonymous = resolved(json!("manual"), Value::Null);
    let before = resolved(Value::Null, Value::Null);
    let render_as = |kind, alert: &Value| {
        render(kind, DeliveryEvent::Resolve, alert, "https://p.example", "").to_string()
    };
    for kind in [ChannelKind::Slack, ChannelKind::Teams, ChannelKind::Email] {
        let text = render_as(kind, &manual);
        assert!(text.contains("Resolved manually by ops "), "{kind}: {text}");
        assert!(text.contains("(key:k1) at 2026-11-24T11:00:00Z, not by the condition clearing: it may still hold."), "{kind}: {text}");
        assert!(!text.contains("held clear"), "{kind}: {text}");

        let text = render_as(kind, &cleared);
        assert!(
                text.contains("The condition has held clear, so Pulse resolved the alert at 2026-11-24T11:00:00Z."),
                "{kind}: {text}"
            );
        assert!(!text.contains("manually"), "{kind}: {text}");

        let text = render_as(kind, &anonymous);
        assert!(
            text.contains(
                "Resolved manually at 2026-11-24T11:00:00Z, not by the condition clearing"
            ),
            "{kind}: {text}"
        );

        // Queued before resolutions said how: neither story is told.
        let text = render_as(kind, &before);
        assert!(
            text.contains("Resolved at 2026-11-24T11:00:00Z. It fired at 2026-11-24T10:00:00Z."),
            "{kind}: {text}"
        );
        assert!(
            !text.contains("held clear") && !text.contains("manually"),
            "{kind}: {text}"
        );
    }
    // The key's name is anyone's text too: escaped where it is read as markup.
    let slack = render(ChannelKind::Slack, DeliveryEvent::Resolve, &manual, "", "");
    for mrkdwn in slack_mrkdwn(&slack) {
        assert!(!mrkdwn.contains("<!channel>"), "{mrkdwn}");
    }
    let text = slack["text"].as_str().unwrap();
    assert!(
            text.starts_with("Resolved: Negativity above half of posts: product pulse phone. Resolved manually by ops &lt;!channel&gt; (key:k1)"),
            "{text}"
        );
    let email = render(ChannelKind::Email, DeliveryEvent::Resolve, &manual, "", "");
    assert!(email["html"]
        .as_str()
        .unwrap()
        .contains("by ops &lt;!channel&gt; (key:k1)"));
}

/// An alert's card and message hold no list that grows: at their longest (a rule name of
/// 200 bytes, a key of 128, all escaped in JSON; posts at their cut, of four-byte
/// characters; long words) they stay within what Teams and Slack take, with nothing left
/// out.
#[test]
fn an_alert_at_its_longest_fits_teams_and_slack() {
    let mut alert = payload();
    alert["rule_name"] = json!("\"".repeat(200));
    alert["key"] = json!("<".repeat(128));
    alert["evidence"]["top_posts"] = json!((0..EXAMPLE_POSTS)
        .map(|i| json!({"id": format!("p{i}"), "text": "🔥".repeat(1_000)}))
        .collect::<Vec<_>>());
    alert["evidence"]["top_terms"] = json!((0..5)
        .map(|i| json!({"term": format!("{i}{}", "&".repeat(100)), "posts": 3}))
        .collect::<Vec<_>>());
    for event in [DeliveryEvent::Fire, DeliveryEvent::Resolve] {
        let card = render(ChannelKind::Teams, event, &alert, "https://p.example", "");
        assert!(teams_fits(&card), "{} bytes", card.to_string().len());
        let slack = render(ChannelKind::Slack, event, &alert, "https://p.example", "");
        for block in slack["blocks"].as_array().unwrap() {
            assert!(slack_section_fits(block), "{block}");
        }
    }
}

#[test]
fn pagerduty_triggers_and_resolves_with_one_dedup_key() {
    let trigger = render(
        ChannelKind::Pagerduty,
        DeliveryEvent::Fire,
        &payload(),
        "http://localhost:8080",
        "R0UT1NGKEY",
    );
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY");
    assert_eq!(trigger["payload"]["severity"], "warning");
    assert_eq!(trigger["payload"]["source"], "pulse");
    assert!(trigger["payload"]["summary"].as_str().unwrap().len() <= PAGERDUTY_SUMMARY_CHARS);
    let resolve = render(
        ChannelKind::Pagerduty,
        DeliveryEvent::Resolve,
        &payload(),
        "",
        "R0UT1NGKEY",
    );
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert_eq!(resolve["dedup_key"], "pulse-alert-42");
}

#[test]
fn email_has_a_subject_a_text_and_an_escaped_html_part() {
    let body = render(
        ChannelKind::Email,
        DeliveryEvent::Fire,
        &payload(),
        "https://pulse.example",
        "",
    );
    assert_eq!(
        body["subject"],
        "[WARNING] Negativity above half of posts: product pulse phone"
    );
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("negative share 72% (threshold 50%)"));
    assert!(text.contains("> My <Pulse> phone & charger both died"));
    assert!(text.contains("Open in Pulse: https://pulse.example/?product=pulse+phone"));
    let html = body["html"].as_str().unwrap();
    assert!(
        html.contains("<blockquote>My &lt;Pulse&gt; phone &amp; charger both died</blockquote>")
    );
    assert!(!html.contains("<Pulse>"));
}

#[test]
fn a_payload_missing_fields_still_renders() {
    for kind in ChannelKind::ALL {
        for event in DeliveryEvent::ALL {
            let body = render(kind, event, &json!({}), "", "k");
            assert!(body.is_object(), "{kind} {event}");
        }
    }
}

//! A digest in each channel's form: an e-mail with a plain-text part and an HTML part whose
//! chart is an inline image, Slack blocks and a Microsoft Teams Adaptive Card (both without the
//! image, which neither takes inline, and with the dashboard's link), and the digest's own JSON
//! for the generic webhook. Every form says the same things in the same order. Story
//! labels, terms, topic names and post ids are anyone's words: they go through the channel's
//! own escaping (the same functions the alert messages use).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::content::Digest;
use crate::actors::webhooks::channels::{
    fit_lists, html_escape, mrkdwn, slack_escape, slack_section_fits, teams_card, teams_fits,
    teams_text, Listing, DIGEST_CHART_CID as CHART_CID, SLACK_HEADER_CHARS,
};
use crate::http::api::metrics::ShareOfVoice;
use crate::models::text::ellipsized_chars;

/// Every form of one digest.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    /// The e-mail's HTML; its chart is `cid:digest-chart`, the attached `chart_png`.
    pub html: String,
    /// Slack's `{"text", "blocks"}`.
    #[schema(value_type = Object)]
    pub slack: Value,
    /// Teams' message with one Adaptive Card.
    #[schema(value_type = Object)]
    pub teams: Value,
    /// The chart, PNG in base64.
    pub chart_png: String,
}

/// The period in words, in UTC: "Mon 2 Nov 2026 – Mon 9 Nov 2026".
fn period_words(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let fmt = |t: DateTime<Utc>| t.format("%a %-d %b %Y %H:%M").to_string();
    format!("{} – {} UTC", fmt(from), fmt(to))
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn signed_percent(change: f64) -> String {
    format!("{:+.1}%", change * 100.0)
}

fn signed_points(change: f64) -> String {
    format!("{:+.1} points", change * 100.0)
}

/// The lines every form carries, as (heading, items) in order; items are plain text.
fn sections(d: &Digest) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    let volume = match d.change.posts {
        Some(c) => format!(
            "{} posts ({} on the previous period's {})",
            d.posts,
            signed_percent(c),
            d.previous.posts
        ),
        None => format!("{} posts (none the period before)", d.posts),
    };
    let sentiment = format!(
        "{} negative ({} on the previous period), {} positive, mean sentiment {:+.2}",
        percent(d.negative_share),
        signed_points(d.change.negative_share),
        percent(d.stats.sentiment.positive_share),
        d.stats.sentiment.mean
    );
    let standing = match (d.change.posts_z, d.change.negative_share_z) {
        (Some(v), Some(n)) => format!(
            "Against the last {} periods: {} (volume {v:+.1} sd, negative share {n:+.1} sd)",
            d.history.len(),
            d.change.verdict
        ),
        _ => format!(
            "Against the last periods: {} ({} with posts)",
            d.change.verdict,
            d.history.iter().filter(|p| p.posts > 0).count()
        ),
    };
    out.push(("Volume and sentiment", vec![volume, sentiment, standing]));
    if d.posts == 0 {
        out.push((
            "Nothing happened",
            vec!["No posts were stored for this scope in the period.".into()],
        ));
    }
    if !d.stories.is_empty() {
        out.push((
            "Top stories",
            d.stories
                .iter()
                .map(|s| {
                    format!(
                        "{} ({} posts, {} in the period's window)",
                        s.label, s.size, s.recent
                    )
                })
                .collect(),
        ));
    }
    let post_line = |p: &crate::db::cascades::ViralityView| {
        format!(
            "{} on {}: {} shares, {} likes, reach {}, virality {:.0}",
            p.post_id,
            p.platform.as_deref().unwrap_or("unknown platform"),
            p.virality.counts.shares,
            p.virality.counts.likes,
            p.virality.reach,
            p.virality.virality_score
        )
    };
    if !d.viral_posts.is_empty() {
        out.push((
            "Most viral posts",
            d.viral_posts.iter().map(post_line).collect(),
        ));
    }
    if !d.negative_posts.is_empty() {
        out.push((
            "Most negative posts with reach",
            d.negative_posts.iter().map(post_line).collect(),
        ));
    }
    if !d.emerging_terms.is_empty() {
        out.push((
            "Emerging terms",
            d.emerging_terms
                .iter()
                .map(|t| match t.previous_posts {
                    Some(p) => format!("{}: {} posts (from {p})", t.term, t.posts),
                    None => format!("{}: {} posts (new)", t.term, t.posts),
                })
                .collect(),
        ));
    }
    out.push((
        "Alerts fired",
        if d.alerts.is_empty() {
            vec!["None.".into()]
        } else {
            d.alerts
                .iter()
                .map(|a| {
                    format!(
                        "{} ({}, {}) at {}",
                        a.rule_name,
                        a.kind,
                        a.severity,
                        a.fired_at.format("%a %-d %b %H:%M UTC")
                    )
                })
                .collect()
        },
    ));
    if !d.share_of_voice.is_empty() {
        out.push(("Share of voice by topic", share_of_voice_lines(d)));
    }
    out
}

/// A line per topic listed, and one for the others together.
fn share_of_voice_lines(d: &Digest) -> Vec<String> {
    let line = |name: &str, share: &ShareOfVoice, posts: i64| {
        format!(
            "{name}: {} of posts ({posts}), {} of negative",
            percent(share.volume),
            percent(share.negative)
        )
    };
    let mut out: Vec<String> = d
        .share_of_voice
        .iter()
        .map(|t| line(&t.name, &t.share_of_voice, t.stats.posts))
        .collect();
    if let Some(other) = &d.other_topics {
        let name = match other.topics {
            1 => "1 other topic".to_string(),
            n => format!("{n} other topics"),
        };
        out.push(line(&name, &other.share_of_voice, other.posts));
    }
    out
}

/// The subject line.
pub fn subject(d: &Digest, late: bool) -> String {
    let late = if late { " (late)" } else { "" };
    format!(
        "Pulse digest{late}: {} — {} posts, {} negative",
        d.scope.name,
        d.posts,
        percent(d.negative_share)
    )
}

/// Every form of `d`, with its chart `png`.
pub fn render(d: &Digest, png: &[u8], late: bool) -> Rendered {
    use base64::Engine as _;
    let subject = subject(d, late);
    let period = period_words(d.from, d.to);
    let sections = sections(d);
    let late_note = late
        .then_some("This digest is late: Pulse was not running when it was due, and sends it now.");

    let mut text = format!("{subject}\n{period}\n");
    if let Some(note) = late_note {
        text.push_str(&format!("{note}\n"));
    }
    for (heading, items) in &sections {
        text.push_str(&format!("\n{heading}\n"));
        for item in items {
            text.push_str(&format!("- {item}\n"));
        }
    }
    text.push_str(&format!("\nOpen in Pulse: {}\n", d.link));

    let mut html = format!(
        "<div style=\"font-family:sans-serif;max-width:760px\"><h2>{}</h2><p>{}</p>",
        html_escape(&subject),
        html_escape(&period)
    );
    if let Some(note) = late_note {
        html.push_str(&format!("<p><strong>{}</strong></p>", html_escape(note)));
    }
    html.push_str(&format!(
        "<p><img src=\"cid:{CHART_CID}\" width=\"{}\" height=\"{}\" alt=\"Posts and negative share over the period\"></p>",
        super::chart::WIDTH,
        super::chart::HEIGHT
    ));
    for (heading, items) in &sections {
        html.push_str(&format!("<h3>{}</h3><ul>", html_escape(heading)));
        for item in items {
            html.push_str(&format!("<li>{}</li>", html_escape(item)));
        }
        html.push_str("</ul>");
    }
    html.push_str(&format!(
        "<p><a href=\"{}\">Open in Pulse</a></p></div>",
        html_escape(&d.link)
    ));

    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": ellipsized_chars(&subject, SLACK_HEADER_CHARS), "emoji": true}}),
        json!({"type": "context", "elements": [mrkdwn(slack_escape(&period))]}),
    ];
    if let Some(note) = late_note {
        blocks
            .push(json!({"type": "section", "text": mrkdwn(format!("*{}*", slack_escape(note)))}));
    }
    // Each section within Slack's limit on its own, whole items left out and said.
    for section in &sections {
        blocks.push(fit_lists(
            std::slice::from_ref(section),
            slack_section_fits,
            |kept| {
                let (heading, items) = &kept[0];
                let body: Vec<String> = items
                    .iter()
                    .map(|i| format!("• {}", slack_escape(i)))
                    .collect();
                json!({
                    "type": "section",
                    "text": mrkdwn(format!("*{}*\n{}", slack_escape(heading), body.join("\n"))),
                })
            },
        ));
    }
    blocks.push(json!({
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open in Pulse"}, "url": d.link}],
    }));
    let slack = json!({"text": slack_escape(&subject), "blocks": blocks});

    let mut head = vec![
        teams_text(
            subject.clone(),
            json!({"weight": "Bolder", "size": "Medium"}),
        ),
        teams_text(period.clone(), json!({"isSubtle": true})),
    ];
    if let Some(note) = late_note {
        head.push(teams_text(note.to_string(), json!({"color": "Warning"})));
    }
    // The chart stays out of the card: Teams refuses a message over 28 KB, which the image
    // alone can reach; the card links to the dashboard's chart instead. Twenty alerts of long
    // rule names, ten topics of long names and long post ids can reach it too: the card drops
    // items until it fits, and says how many.
    let chart_png = base64::engine::general_purpose::STANDARD.encode(png);
    let teams = fit_lists(&sections, teams_fits, |kept: &[Listing<'_>]| {
        let mut body = head.clone();
        for (heading, items) in kept {
            body.push(teams_text(heading.to_string(), json!({"weight": "Bolder"})));
            for item in items {
                body.push(teams_text(format!("• {item}"), json!({})));
            }
        }
        teams_card(body, &d.link)
    });

    Rendered {
        subject,
        text,
        html,
        slack,
        teams,
        chart_png,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::webhooks::channels::{
        left_out_line, SLACK_SECTION_CHARS, TEAMS_MESSAGE_BYTES,
    };
    use crate::http::api::digests::content::{Change, DigestScope, DigestSeries, PeriodFigures};
    use crate::http::api::metrics::Bucket;
    use crate::models::alerts::{AlertStatus, AlertView, RuleKind, Severity};
    use crate::models::metrics::{Dimension, Stats};

    /// A digest of the whole stream whose alerts are `alerts`, each named `name` and its number.
    fn digest_with_alerts(alerts: usize, name: &str) -> Digest {
        let now = Utc::now();
        let figures = PeriodFigures {
            from: now,
            to: now,
            posts: 0,
            negative_share: 0.0,
        };
        Digest {
            scope: DigestScope {
                topic: None,
                name: "All posts".into(),
            },
            from: now,
            to: now,
            posts: 10,
            negative_share: 0.5,
            stats: Stats::default(),
            previous: figures,
            history: Vec::new(),
            change: Change {
                posts: None,
                negative_share: 0.0,
                posts_z: None,
                negative_share_z: None,
                verdict: "not enough history".into(),
            },
            series: DigestSeries {
                bucket: Bucket::OneHour,
                points: Vec::new(),
            },
            stories: Vec::new(),
            viral_posts: Vec::new(),
            negative_posts: Vec::new(),
            emerging_terms: Vec::new(),
            alerts: (0..alerts)
                .map(|i| AlertView {
                    id: i as i64,
                    rule_id: Some(1),
                    rule_name: format!("{name} {i}"),
                    kind: RuleKind::Negativity,
                    severity: Severity::Warning,
                    dimension: Dimension::Overall,
                    key: String::new(),
                    status: AlertStatus::Firing,
                    value: 0.9,
                    threshold: 0.5,
                    evidence: json!({}),
                    fired_at: now,
                    acknowledged_at: None,
                    resolved_at: None,
                })
                .collect(),
            share_of_voice: Vec::new(),
            other_topics: None,
            link: "https://pulse.example/".into(),
        }
    }

    /// The digest's Slack sections were not verbatim, so a post id or rule name holding a bare
    /// URL or `#channel` became a link there (the alerts' quotes already were).
    #[test]
    fn slack_links_nothing_a_digest_carries() {
        let d = digest_with_alerts(3, "Outage https://login.evil.example/ #general");
        let rendered = render(&d, &[], false);
        let text = rendered.slack.to_string();
        assert!(text.contains("https://login.evil.example/"), "{text}");
        assert_eq!(
            crate::actors::webhooks::channels::linkable_mrkdwn(&rendered.slack),
            Vec::<String>::new()
        );
    }

    /// The Teams card and Slack sections had no hard size check: alerts of long rule names
    /// (quotes, escaped twice over in the card's JSON, and four-byte characters) made a card
    /// Teams refuses whole, and Slack's sections were cut midway through a line. Items are
    /// now left out, whole, until each fits, and the message says how many.
    #[test]
    fn a_digest_of_many_long_rule_names_fits_teams_and_slack_and_says_what_it_left_out() {
        // 196 bytes of name before the number: the API takes 200.
        let name = format!("{}{}", "\"🔥".repeat(39), "x");
        let d = digest_with_alerts(200, &name);
        let unfitted: usize = d.alerts.iter().map(|a| a.rule_name.len() * 2).sum();
        assert!(
            unfitted > TEAMS_MESSAGE_BYTES,
            "the alerts alone would not fit"
        );
        let rendered = render(&d, &[], false);

        let card = rendered.teams.to_string();
        assert!(card.len() <= TEAMS_MESSAGE_BYTES, "{} bytes", card.len());
        let runs: Vec<&str> = rendered.teams["attachments"][0]["content"]["body"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["inlines"][0]["text"].as_str())
            .collect();
        let shown = runs.iter().filter(|r| r.contains(&name)).count();
        assert!(shown > 0 && shown < 200, "{shown} alerts shown");
        assert!(
            runs.contains(&format!("• {}", left_out_line(200 - shown)).as_str()),
            "{runs:?}"
        );
        // Alerts are listed newest first: those left out are the oldest.
        assert!(runs.iter().any(|r| r.starts_with(&format!("• {name} 0 "))));
        assert!(!runs
            .iter()
            .any(|r| r.starts_with(&format!("• {name} 199 "))));

        let sections = rendered.slack["blocks"].as_array().unwrap();
        let alerts = sections
            .iter()
            .find(|b| {
                b["text"]["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("*Alerts fired*"))
            })
            .unwrap();
        let text = alerts["text"]["text"].as_str().unwrap();
        assert!(text.chars().count() <= SLACK_SECTION_CHARS, "{text}");
        let listed = text.lines().filter(|l| l.contains("🔥")).count();
        assert!(listed > 0 && listed < 200, "{listed} alerts listed");
        assert!(text.ends_with(&left_out_line(200 - listed)), "{text}");

        // A digest within the limits keeps every item and says nothing of any left out.
        let short = render(&digest_with_alerts(20, "Negativity"), &[], false);
        for form in [short.teams.to_string(), short.slack.to_string()] {
            assert!(form.contains("Negativity 19 (negativity"), "{form}");
            assert!(!form.contains("left out"), "{form}");
        }
    }
}

//! What an alert looks like in each channel: a Slack message of blocks, a Microsoft Teams
//! Adaptive Card, a PagerDuty Events API v2 event, an email with a plain-text and an HTML part. Each is built from the alert as the generic
//! webhook sends it (kind, scope, figures, evidence), so every channel says the same thing:
//! what fired, where, the figures that fired it, two or three example posts, and a link to the
//! dashboard filtered on the scope; and, when it resolves, whether the condition cleared or
//! someone resolved it by hand.
//!
//! Rule names, dimension keys, posts, terms and key names are anyone's words: wherever a channel reads
//! markup (Slack's mrkdwn, including the notification `text`; email's HTML) they go through
//! that channel's one escaping function, and Teams gets them only in `TextRun`s.

use serde_json::{json, Value};

use crate::models::printable::quotable;
use crate::models::text::ellipsized_chars;
use crate::models::webhooks::{ChannelKind, DeliveryEvent};

/// Example posts quoted in a message.
const EXAMPLE_POSTS: usize = 3;
/// Longest quoted post, in characters; longer ones are cut with an ellipsis.
const POST_CHARS: usize = 280;
/// PagerDuty refuses a summary longer than this.
const PAGERDUTY_SUMMARY_CHARS: usize = 1024;
/// Slack refuses a header longer than this.
pub const SLACK_HEADER_CHARS: usize = 150;
/// Slack refuses a section whose text is longer than this, in characters.
pub const SLACK_SECTION_CHARS: usize = 3_000;
/// Teams refuses an incoming-webhook message over 28 KB, taken as 28,000 bytes of JSON (the
/// stricter reading).
pub const TEAMS_MESSAGE_BYTES: usize = 28_000;

/// The parts of an alert a message shows, read from the alert's webhook payload.
struct Alert<'a> {
    id: i64,
    rule_name: &'a str,
    kind: &'a str,
    severity: &'a str,
    dimension: &'a str,
    key: &'a str,
    value: f64,
    threshold: f64,
    window_minutes: Option<i64>,
    posts: Option<i64>,
    fired_at: &'a str,
    resolved_at: Option<&'a str>,
    /// How it was resolved: `cleared` (the condition held clear) or `manual` (by hand, through
    /// the API); absent from resolutions queued by earlier versions.
    resolution: Option<&'a str>,
    /// Who resolved it by hand, when known (an API key; nobody on an open server).
    resolved_by: Option<&'a str>,
    examples: Vec<String>,
    terms: Vec<&'a str>,
    /// Posts the alert quoted that were deleted since it fired: a condition that clears then
    /// may have cleared because they no longer count.
    deleted_posts: u64,
}

impl<'a> Alert<'a> {
    fn read(payload: &'a Value) -> Alert<'a> {
        let text = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("");
        let evidence = &payload["evidence"];
        Alert {
            id: payload["id"].as_i64().unwrap_or(0),
            rule_name: text("rule_name"),
            kind: text("kind"),
            severity: text("severity"),
            dimension: text("dimension"),
            key: text("key"),
            value: payload["value"].as_f64().unwrap_or(f64::NAN),
            threshold: payload["threshold"].as_f64().unwrap_or(f64::NAN),
            window_minutes: evidence["window"]["minutes"].as_i64(),
            posts: evidence["window"]["stats"]["posts"].as_i64(),
            fired_at: text("fired_at"),
            resolved_at: payload.get("resolved_at").and_then(Value::as_str),
            resolution: payload.get("resolution").and_then(Value::as_str),
            resolved_by: payload
                .get("resolved_by")
                .and_then(Value::as_str)
                .filter(|by| !by.is_empty()),
            deleted_posts: evidence["deleted_posts"].as_u64().unwrap_or(0),
            examples: evidence["top_posts"]
                .as_array()
                .map(|posts| {
                    posts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .take(EXAMPLE_POSTS)
                        .map(|t| ellipsized_chars(&quotable(t), POST_CHARS))
                        .collect()
                })
                .unwrap_or_default(),
            terms: evidence["top_terms"]
                .as_array()
                .map(|terms| {
                    terms
                        .iter()
                        .filter_map(|t| t["term"].as_str())
                        .take(5)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// "whole stream", or "product pulse-phone".
    fn scope(&self) -> String {
        if self.dimension == "overall" || self.key.is_empty() {
            "whole stream".into()
        } else {
            format!("{} {}", self.dimension, self.key)
        }
    }

    /// What was measured against what, in the units of the kind.
    fn figures(&self) -> String {
        let share = |v: f64| format!("{:.0}%", v * 100.0);
        let (value, threshold) = match self.kind {
            "negativity" | "churn" => (share(self.value), share(self.threshold)),
            "volume_spike" => (
                format!("{:.0} posts", self.value),
                format!("{:.0}", self.threshold),
            ),
            _ => (
                format!("{:.2}", self.value),
                format!("{:.2}", self.threshold),
            ),
        };
        let what = match self.kind {
            "negativity" => "negative share",
            "churn" => "high churn-risk share",
            "volume_spike" => "volume",
            "sentiment_dip" => "mean sentiment",
            "toxicity" => "mean toxicity",
            other => other,
        };
        let limit = if self.kind == "sentiment_dip" {
            "below"
        } else {
            "threshold"
        };
        let mut out = format!("{what} {value} ({limit} {threshold})");
        if let (Some(minutes), Some(posts)) = (self.window_minutes, self.posts) {
            out.push_str(&format!(", {posts} posts in {minutes} min"));
        }
        out
    }

    fn title(&self, event: DeliveryEvent) -> String {
        match event {
            // A digest never reaches an alert's forms (see `render`).
            DeliveryEvent::Fire | DeliveryEvent::Digest => format!(
                "[{}] {}: {}",
                self.severity.to_uppercase(),
                self.rule_name,
                self.scope()
            ),
            DeliveryEvent::Resolve => format!("Resolved: {}: {}", self.rule_name, self.scope()),
        }
    }

    /// How the alert was resolved, in one sentence. A manual resolution must never read as if
    /// the condition had cleared: whoever reads it would stop looking at a problem that may
    /// still be there.
    fn resolution_note(&self) -> String {
        let at = self
            .resolved_at
            .map(|at| format!(" at {at}"))
            .unwrap_or_default();
        let fired = if self.fired_at.is_empty() {
            String::new()
        } else {
            format!(" It fired at {}.", self.fired_at)
        };
        match self.resolution {
            Some("manual") => {
                let by = self
                    .resolved_by
                    .map(|by| format!(" by {by}"))
                    .unwrap_or_default();
                format!(
                    "Resolved manually{by}{at}, not by the condition clearing: it may still hold.{fired}"
                )
            }
            Some("cleared") => {
                let deleted = match self.deleted_posts {
                    0 => String::new(),
                    1 => " One post it quoted was deleted since it fired and no longer counts."
                        .to_string(),
                    n => format!(
                        " {n} posts it quoted were deleted since it fired and no longer count."
                    ),
                };
                format!(
                    "The condition has held clear, so Pulse resolved the alert{at}.{deleted}{fired}"
                )
            }
            _ => format!("Resolved{at}.{fired}"),
        }
    }

    /// The dashboard, filtered on the alert's scope where the dashboard has that filter.
    fn link(&self, dashboard_url: &str) -> String {
        let base = dashboard_url.trim_end_matches('/');
        match self.dimension {
            "platform" | "product" | "channel" | "country" | "city" if !self.key.is_empty() => {
                let key: String =
                    url::form_urlencoded::byte_serialize(self.key.as_bytes()).collect();
                format!("{base}/?{}={key}", self.dimension)
            }
            _ => format!("{base}/"),
        }
    }
}

/// A Slack mrkdwn text object of `text` (escaped already), verbatim: Slack turns no bare URL
/// or `#channel` of it into a link, so a post, rule name or product can add none.
pub fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

/// Escapes the three characters Slack's mrkdwn gives a meaning to.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The request body for a channel, from the alert's webhook `payload`; `routing_key` is
/// PagerDuty's integration key. The generic webhook sends the payload itself.
pub fn render(
    kind: ChannelKind,
    event: DeliveryEvent,
    payload: &Value,
    dashboard_url: &str,
    routing_key: &str,
) -> Value {
    if event == DeliveryEvent::Digest {
        return digest(kind, payload);
    }
    let alert = Alert::read(payload);
    match kind {
        ChannelKind::Webhook => payload.clone(),
        ChannelKind::Slack => slack(&alert, event, dashboard_url),
        ChannelKind::Teams => teams(&alert, event, dashboard_url),
        ChannelKind::Pagerduty => pagerduty(&alert, event, dashboard_url, routing_key),
        ChannelKind::Email => email(&alert, event, dashboard_url),
    }
}

/// The content id of a digest's chart in its e-mail's HTML part (`cid:digest-chart`).
pub const DIGEST_CHART_CID: &str = "digest-chart";

/// A digest's form for a channel, from the forms rendered when it was made (its payload
/// holds each); the generic webhook gets the digest itself.
fn digest(kind: ChannelKind, payload: &Value) -> Value {
    let form = |name: &str| match payload.get(name) {
        Some(v) if v.is_object() => v.clone(),
        _ => json!({}),
    };
    match kind {
        ChannelKind::Webhook => form("digest"),
        ChannelKind::Slack => form("slack"),
        ChannelKind::Teams => form("teams"),
        ChannelKind::Email => json!({
            "subject": payload["subject"],
            "text": payload["text"],
            "html": payload["html"],
            "images": [{"cid": DIGEST_CHART_CID, "png_base64": payload["chart_png"]}],
        }),
        // Digests are not queued for PagerDuty, which opens incidents.
        ChannelKind::Pagerduty => json!({}),
    }
}

/// Escapes text for HTML.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `{"subject", "text", "html"}`.
fn email(alert: &Alert, event: DeliveryEvent, dashboard_url: &str) -> Value {
    let title = alert.title(event);
    let link = alert.link(dashboard_url);
    let facts = [
        ("Kind", alert.kind.to_string()),
        ("Severity", alert.severity.to_string()),
        ("Scope", alert.scope()),
        ("Fired", alert.fired_at.to_string()),
    ];
    let mut text = format!("{title}\n\n");
    let mut html = format!("<h2>{}</h2>", html_escape(&title));
    if event == DeliveryEvent::Resolve {
        let note = alert.resolution_note();
        text.push_str(&format!("{note}\nFigures when it fired: "));
        html.push_str(&format!("<p>{}</p>", html_escape(&note)));
    }
    text.push_str(&format!("{}\n\n", alert.figures()));
    for (k, v) in &facts {
        text.push_str(&format!("{k}: {v}\n"));
    }
    html.push_str(&format!(
        "<p><strong>{}</strong></p><table>",
        html_escape(&alert.figures())
    ));
    for (k, v) in &facts {
        html.push_str(&format!(
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
            html_escape(v)
        ));
    }
    html.push_str("</table>");
    if event == DeliveryEvent::Fire {
        if !alert.terms.is_empty() {
            text.push_str(&format!("Words: {}\n", alert.terms.join(", ")));
            html.push_str(&format!(
                "<p>Words: {}</p>",
                html_escape(&alert.terms.join(", "))
            ));
        }
        for post in &alert.examples {
            text.push_str(&format!("\n> {}\n", post.replace('\n', "\n> ")));
            html.push_str(&format!("<blockquote>{}</blockquote>", html_escape(post)));
        }
    }
    text.push_str(&format!("\nOpen in Pulse: {link}\n"));
    html.push_str(&format!(
        "<p><a href=\"{}\">Open in Pulse</a></p>",
        html_escape(&link)
    ));
    json!({"subject": title, "text": text, "html": html})
}

fn slack(alert: &Alert, event: DeliveryEvent, dashboard_url: &str) -> Value {
    let title = alert.title(event);
    let link = alert.link(dashboard_url);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": ellipsized_chars(&title, SLACK_HEADER_CHARS), "emoji": true},
    })];
    let mut summary = format!("*{}*", slack_escape(&alert.figures()));
    if event == DeliveryEvent::Resolve {
        summary = format!(
            "{} Figures when it fired: {summary}",
            slack_escape(&alert.resolution_note())
        );
    }
    blocks.push(json!({
        "type": "section",
        "text": mrkdwn(summary),
        "fields": [
            mrkdwn(format!("*Kind*\n{}", alert.kind)),
            mrkdwn(format!("*Severity*\n{}", alert.severity)),
            mrkdwn(format!("*Scope*\n{}", slack_escape(&alert.scope()))),
            mrkdwn(format!("*Fired*\n{}", alert.fired_at)),
        ],
    }));
    if event == DeliveryEvent::Fire {
        if !alert.terms.is_empty() {
            blocks.push(json!({
                "type": "context",
                "elements": [mrkdwn(format!("Words: {}", slack_escape(&alert.terms.join(", "))))],
            }));
        }
        for post in &alert.examples {
            blocks.push(json!({
                "type": "section",
                "text": mrkdwn(format!("> {}", slack_escape(post).replace('\n', "\n> "))),
            }));
        }
    }
    blocks.push(json!({
        "type": "actions",
        "elements": [{
            "type": "button",
            "text": {"type": "plain_text", "text": "Open in Pulse"},
            "url": link,
        }],
    }));
    // The notification text is mrkdwn too, and the one people see first (and their phones
    // show): a rule name or product read as markup here would mention the channel or link
    // anywhere.
    let text = match event {
        DeliveryEvent::Fire | DeliveryEvent::Digest => format!("{title}: {}", alert.figures()),
        DeliveryEvent::Resolve => format!("{title}. {}", alert.resolution_note()),
    };
    json!({
        "text": slack_escape(&text),
        "blocks": blocks,
    })
}

/// A list a message shows: its heading and its items, in order, each plain text.
pub type Listing<'a> = (&'a str, Vec<String>);

/// The line that ends a list of which `n` items were left out.
pub fn left_out_line(n: usize) -> String {
    format!("… and {n} more, left out for length (open Pulse for every one)")
}

/// The message `render` makes of as much of `lists` as lets it `fit` a channel's hard limit.
/// While it does not fit, the last item of the list whose items hold the most text goes, and
/// each list that lost some ends with [`left_out_line`]: what a reader misses is whole items,
/// and said, never a line cut midway (nor an escape, once escaped). With every item gone, what
/// is left (headings and the message's own words, bounded) is sent as it is.
pub fn fit_lists(
    lists: &[Listing<'_>],
    fits: impl Fn(&Value) -> bool,
    render: impl Fn(&[Listing<'_>]) -> Value,
) -> Value {
    let mut kept: Vec<Listing<'_>> = lists.to_vec();
    let mut left_out = vec![0; lists.len()];
    loop {
        let shown: Vec<Listing<'_>> = kept
            .iter()
            .zip(&left_out)
            .map(|((heading, items), &n)| {
                let mut items = items.clone();
                if n > 0 {
                    items.push(left_out_line(n));
                }
                (*heading, items)
            })
            .collect();
        let message = render(&shown);
        if fits(&message) {
            return message;
        }
        let longest = kept
            .iter()
            .enumerate()
            .filter(|(_, (_, items))| !items.is_empty())
            .max_by_key(|(i, (_, items))| (items.iter().map(String::len).sum::<usize>(), *i))
            .map(|(i, _)| i);
        let Some(i) = longest else {
            return message;
        };
        kept[i].1.pop();
        left_out[i] += 1;
    }
}

/// Whether Teams takes `message`.
pub fn teams_fits(message: &Value) -> bool {
    message.to_string().len() <= TEAMS_MESSAGE_BYTES
}

/// Whether Slack takes `section` (a section block) as its text goes.
pub fn slack_section_fits(section: &Value) -> bool {
    section["text"]["text"]
        .as_str()
        .map_or(0, |t| t.chars().count())
        <= SLACK_SECTION_CHARS
}

/// A block of plain text: a `TextRun` is never read as Markdown, where a `TextBlock` or a
/// fact's value is, so a post or a product name cannot turn into a link in the card.
pub fn teams_text(text: String, style: Value) -> Value {
    let mut run = json!({"type": "TextRun", "text": text});
    if let (Some(run), Some(style)) = (run.as_object_mut(), style.as_object()) {
        run.extend(style.clone());
    }
    json!({"type": "RichTextBlock", "inlines": [run]})
}

fn teams(alert: &Alert, event: DeliveryEvent, dashboard_url: &str) -> Value {
    let title = alert.title(event);
    let color = match (event, alert.severity) {
        (DeliveryEvent::Resolve, _) => "Good",
        (_, "critical") => "Attention",
        (_, "warning") => "Warning",
        _ => "Default",
    };
    let subtle = || json!({"isSubtle": true});
    let mut body = vec![
        teams_text(
            title,
            json!({"weight": "Bolder", "size": "Medium", "color": color}),
        ),
        teams_text(alert.figures(), json!({})),
        // Kind, severity and time are Pulse's own words; the scope, which may name a
        // product, stays out of the fact set's Markdown.
        json!({"type": "FactSet", "facts": [
            {"title": "Kind", "value": alert.kind},
            {"title": "Severity", "value": alert.severity},
            {"title": "Fired", "value": alert.fired_at},
        ]}),
        teams_text(format!("Scope: {}", alert.scope()), json!({})),
    ];
    if event == DeliveryEvent::Resolve {
        body.push(teams_text(alert.resolution_note(), json!({})));
    }
    if event == DeliveryEvent::Fire {
        if !alert.terms.is_empty() {
            body.push(teams_text(
                format!("Words: {}", alert.terms.join(", ")),
                subtle(),
            ));
        }
        for post in &alert.examples {
            body.push(teams_text(format!("“{post}”"), subtle()));
        }
    }
    teams_card(body, &alert.link(dashboard_url))
}

/// A Teams incoming-webhook message: one Adaptive Card of `body`, opening `link` in Pulse.
pub fn teams_card(body: Vec<Value>, link: &str) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{"type": "Action.OpenUrl", "title": "Open in Pulse", "url": link}],
            },
        }],
    })
}

fn pagerduty(alert: &Alert, event: DeliveryEvent, dashboard_url: &str, routing_key: &str) -> Value {
    let dedup_key = format!("pulse-alert-{}", alert.id);
    if event == DeliveryEvent::Resolve {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    // PagerDuty's severities: critical, error, warning, info.
    let severity = match alert.severity {
        "critical" => "critical",
        "warning" => "warning",
        _ => "info",
    };
    let summary = ellipsized_chars(
        &format!("{}: {}", alert.title(event), alert.figures()),
        PAGERDUTY_SUMMARY_CHARS,
    );
    let mut payload = json!({
        "summary": summary,
        "source": "pulse",
        "severity": severity,
        "component": alert.scope(),
        "group": alert.dimension,
        "class": alert.kind,
        "custom_details": {
            "rule": alert.rule_name,
            "figures": alert.figures(),
            "value": alert.value,
            "threshold": alert.threshold,
            "words": alert.terms,
            "example_posts": alert.examples,
        },
    });
    if !alert.fired_at.is_empty() {
        payload["timestamp"] = json!(alert.fired_at);
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "Pulse",
        "client_url": alert.link(dashboard_url),
        "links": [{"href": alert.link(dashboard_url), "text": "Open in Pulse"}],
        "payload": payload,
    })
}

/// The mrkdwn texts of a Slack message that Slack would preprocess (linking bare URLs and
/// `#channel` names): every one Pulse writes is verbatim.
#[cfg(test)]
pub fn linkable_mrkdwn(message: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if o.get("type") == Some(&json!("mrkdwn"))
                    && o.get("verbatim") != Some(&json!(true))
                {
                    out.push(o["text"].as_str().unwrap_or("").to_string());
                }
                o.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&message["blocks"], &mut out);
    out
}

#[cfg(test)]
mod tests;

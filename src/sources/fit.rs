//! What a platform sends that the ingester would refuse, made to fit before the sink checks
//! it. A platform allows what Pulse's event contract does not (a Reddit post of 40,000
//! characters, a feed author "Jane\u{200D}Doe" with a joiner, an Atom id on its own indented
//! line); refusing the whole post for it would lose what people wrote. Texts lose their
//! control characters but tab and line breaks, and are cut at the limit; ids and labels lose
//! surrounding whitespace and the characters a label may not hold (control, zero-width and
//! direction-changing ones), the same way wherever they appear, so a reply still names its
//! parent; a URL that does not fit is left out; a follower count past the store's integer
//! (what a profile API answered) is kept as its largest. What is still refused after this (an
//! id that was nothing but such characters) is counted as `invalid`.

use crate::models::event::{MAX_ID_BYTES, MAX_LABEL_BYTES, MAX_TEXT_BYTES, MAX_URL_BYTES};
use crate::models::printable::{has_unshowable, hides_or_reorders};
use crate::models::text::truncate_bytes;
use crate::models::Event;

/// Largest follower count the store holds.
const MAX_FOLLOWERS: u64 = i64::MAX as u64;

pub fn fit(event: &mut Event) {
    match event {
        Event::Post(p) => {
            label(&mut p.id, MAX_ID_BYTES);
            label(&mut p.author.id, MAX_ID_BYTES);
            p.author.followers = p.author.followers.min(MAX_FOLLOWERS);
            p.text.retain(|c| !dropped_from_text(c));
            truncate_bytes(&mut p.text, MAX_TEXT_BYTES);
            for (value, max) in [
                (&mut p.parent_id, MAX_ID_BYTES),
                (&mut p.lang, MAX_LABEL_BYTES),
                (&mut p.product, MAX_LABEL_BYTES),
                (&mut p.channel, MAX_LABEL_BYTES),
            ] {
                optional_label(value, max);
            }
            if let Some(geo) = &mut p.geo {
                optional_label(&mut geo.city, MAX_LABEL_BYTES);
                optional_label(&mut geo.country, MAX_LABEL_BYTES);
            }
            if p.url
                .as_ref()
                .is_some_and(|u| u.len() > MAX_URL_BYTES || has_unshowable(u))
            {
                p.url = None;
            }
        }
        Event::Engagement(e) => {
            label(&mut e.post_id, MAX_ID_BYTES);
            optional_label(&mut e.id, MAX_ID_BYTES);
            e.actor_followers = e.actor_followers.map(|n| n.min(MAX_FOLLOWERS));
        }
        Event::Delete(d) => label(&mut d.post_id, MAX_ID_BYTES),
    }
}

/// The control characters a text loses: every C0 one but tab, line feed and carriage return,
/// and DEL. PostgreSQL text cannot hold NUL, and JSON writes each of the others as a
/// six-byte escape, so a text of them would outgrow the largest event the ingester takes
/// and be dead-lettered rather than stored.
fn dropped_from_text(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7F}'
}

fn label(value: &mut String, max: usize) {
    if value.trim() != value.as_str() || has_unshowable(value) {
        *value = value
            .trim()
            .chars()
            .filter(|c| !c.is_control() && !hides_or_reorders(*c))
            .collect();
    }
    truncate_bytes(value, max);
}

/// A label that is empty once fitted is left out.
fn optional_label(value: &mut Option<String>, max: usize) {
    if let Some(v) = value {
        label(v, max);
        if v.is_empty() {
            *value = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::models::{fixtures, Author, Platform, Post};

    fn post(id: &str, author: &str, text: String) -> Event {
        Event::Post(Post {
            platform: Platform::Reddit,
            author: Author {
                id: author.into(),
                followers: 0,
            },
            lang: Some("\n  de \n".into()),
            channel: Some("\u{200B}".into()),
            parent_id: Some(" reddit:t3_a\u{200F}".into()),
            url: Some(format!("https://x.example/{}", "a".repeat(MAX_URL_BYTES))),
            ..fixtures::post(id, text, Utc::now())
        })
    }

    #[test]
    fn what_the_platform_allowed_is_made_to_fit_and_then_passes() {
        let long = "日本語のテキスト".repeat(2_000);
        let mut event = post(
            "\n  tag:x,2026:1\n",
            "Jane\u{200D}Doe \u{1F469}\u{200D}\u{1F4BB}",
            long,
        );
        assert!(event.validate().is_err(), "refused as it came");
        fit(&mut event);
        event.validate().expect("fits");
        let Event::Post(p) = &event else {
            unreachable!()
        };
        assert_eq!(p.id, "tag:x,2026:1");
        assert_eq!(p.author.id, "JaneDoe \u{1F469}\u{1F4BB}");
        assert!(p.text.len() <= MAX_TEXT_BYTES && p.text.len() > MAX_TEXT_BYTES - 3);
        assert_eq!(p.lang.as_deref(), Some("de"));
        assert_eq!(p.channel, None, "nothing left of it");
        assert_eq!(p.parent_id.as_deref(), Some("reddit:t3_a"));
        assert_eq!(p.url, None);
    }

    /// A profile API answering a follower count past `i64::MAX` made every post and like of
    /// the account invalid for as long as its count was cached.
    #[test]
    fn follower_counts_past_the_stores_integer_are_kept_as_its_largest() {
        let mut event = post("p", "a", "hello".into());
        if let Event::Post(p) = &mut event {
            p.author.followers = u64::MAX;
        }
        fit(&mut event);
        event.validate().expect("fits");
        let mut like = Event::Engagement(crate::models::Engagement {
            id: None,
            post_id: "p".into(),
            kind: crate::models::EngagementKind::Like,
            at: Utc::now(),
            actor_followers: Some(u64::MAX),
            via: None,
            count: None,
        });
        fit(&mut like);
        like.validate().expect("fits");
    }

    #[test]
    fn a_text_keeps_tabs_and_line_breaks_and_loses_other_controls() {
        let mut event = post(
            "p",
            "a",
            "one\u{1}\ttwo\r\nthree\u{1B}[0m\0\u{7F}\u{1F}!".into(),
        );
        fit(&mut event);
        let Event::Post(p) = &event else {
            unreachable!()
        };
        assert_eq!(p.text, "one\ttwo\r\nthree[0m!");
        let mut only_controls = post("p", "a", "\u{1}".repeat(MAX_TEXT_BYTES));
        fit(&mut only_controls);
        let e = only_controls.validate().expect_err("nothing left to store");
        assert!(e.to_string().contains("`text`"), "{e}");
    }

    #[test]
    fn an_id_of_nothing_but_unseen_characters_is_still_refused() {
        let mut event = post("\u{200B}\u{FEFF}", "a", "text".into());
        fit(&mut event);
        assert!(event.validate().is_err());
    }
}

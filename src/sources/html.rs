//! HTML fragments (Mastodon statuses, feed entries) to the plain text Pulse analyses:
//! paragraphs and line breaks become newlines, tags go, entities are decoded. Text hidden
//! for display (Mastodon's `invisible` spans hold the parts of long links) is kept, so links
//! come out whole.

use std::sync::LazyLock;

use regex::Regex;

static BREAKS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)<br\s*/?>|</p\s*>|</li\s*>|</h[1-6]\s*>").unwrap());
static TAGS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").unwrap());
static SCRIPTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<(script|style)\b.*?</(script|style)\s*>").unwrap());
static BLANK_LINES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\n\s*\n+").unwrap());

pub fn to_text(html: &str) -> String {
    let text = SCRIPTS.replace_all(html, "");
    let text = BREAKS.replace_all(&text, "\n");
    let text = TAGS.replace_all(&text, "");
    let text = decode_entities(&text);
    let text = BLANK_LINES.replace_all(&text, "\n");
    text.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Decodes the named entities HTML text commonly carries and every numeric one.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let decoded = after.find(';').filter(|end| *end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_come_out_as_readable_text_with_whole_links() {
        let html = r#"<p><a href="https://ruby.social/tags/piano" class="mention hashtag">#<span>piano</span></a> track</p><p>Don&#39;t &amp; won&apos;t &#x1F600;<br />next</p><p><a href="https://x.example/a/long"><span class="invisible">https://</span><span class="ellipsis">x.example/a/</span><span class="invisible">long</span></a></p><script>alert(1)</script>"#;
        assert_eq!(
            to_text(html),
            "#piano track\nDon't & won't \u{1F600}\nnext\nhttps://x.example/a/long"
        );
        assert_eq!(
            decode_entities("a & b &bogus; &#xZZ; &"),
            "a & b &bogus; &#xZZ; &"
        );
    }
}

//! HTML fragments (Mastodon statuses, feed entries) to the plain text Pulse analyses: block
//! elements (paragraphs, divisions, list items, table cells, headings...) and line breaks
//! become newlines, other tags go without a trace, entities are decoded. Text hidden for
//! display (Mastodon's `invisible` spans hold the parts of long links) is kept, so links come
//! out whole.

use std::sync::LazyLock;

use regex::Regex;

/// The tags, opening or closing, of elements laid out as blocks, and line breaks: each
/// becomes a newline, so the words of two blocks (`<div>Buds</div><div>recall</div>`) stay
/// two words. Any other tag is inline (`<b>Pul</b>se`) and goes without a trace, since a word
/// may run across it.
static BREAKS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)<\s*/?\s*(?:p|div|br|hr|li|ul|ol|dl|dd|dt|h[1-6]|table|caption|thead|tbody|tfoot|tr|td|th|blockquote|pre|section|article|aside|nav|main|header|footer|address|figure|figcaption|details|summary)\b[^>]*>",
    )
    .unwrap()
});
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

/// Longest entity name read between `&` and `;` (`&#x1F600;` is 8): an `&` is looked at only
/// this far, so a text of ampersands costs its length, not its length squared.
const MAX_ENTITY_NAME: usize = 10;

/// Decodes the named entities HTML text commonly carries and every numeric one.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        // `;` is one byte, so its position is a character boundary of `after`.
        let decoded = after
            .bytes()
            .take(MAX_ENTITY_NAME + 1)
            .position(|b| b == b';')
            .and_then(|end| Some((entity(&after[..end])?, end)));
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

/// The character an entity name (between `&` and `;`) stands for: the named ones feeds and
/// statuses carry (quotes, dashes and the letters of the languages Pulse reads), or a number.
fn entity(name: &str) -> Option<char> {
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "lsquo" => '\u{2018}',
        "rsquo" => '\u{2019}',
        "sbquo" => '\u{201A}',
        "ldquo" => '\u{201C}',
        "rdquo" => '\u{201D}',
        "bdquo" => '\u{201E}',
        "laquo" => '\u{AB}',
        "raquo" => '\u{BB}',
        "ndash" => '\u{2013}',
        "mdash" => '\u{2014}',
        "hellip" => '\u{2026}',
        "middot" => '\u{B7}',
        "bull" => '\u{2022}',
        "euro" => '\u{20AC}',
        "pound" => '\u{A3}',
        "copy" => '\u{A9}',
        "reg" => '\u{AE}',
        "trade" => '\u{2122}',
        "deg" => '\u{B0}',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "Auml" => 'Ä',
        "Ouml" => 'Ö',
        "Uuml" => 'Ü',
        "szlig" => 'ß',
        "eacute" => 'é',
        "egrave" => 'è',
        "ecirc" => 'ê',
        "agrave" => 'à',
        "aacute" => 'á',
        "ccedil" => 'ç',
        "iacute" => 'í',
        "oacute" => 'ó',
        "uacute" => 'ú',
        "ntilde" => 'ñ',
        "atilde" => 'ã',
        "otilde" => 'õ',
        "Eacute" => 'É',
        _ => {
            return name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32)
                // PostgreSQL text cannot hold NUL: `&#0;` stays as written.
                .filter(|c| *c != '\0');
        }
    };
    Some(c)
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

    /// Block elements other than paragraphs and list items used to vanish without a trace,
    /// running the last word of one into the first of the next.
    #[test]
    fn block_elements_separate_their_text() {
        assert_eq!(
            to_text("<div>Pulse Buds</div><div>recall announced</div>"),
            "Pulse Buds\nrecall announced"
        );
        assert_eq!(
            to_text("<table><tr><td>Pulse</td><td>Buds</td></tr><tr><th>recall</th></tr></table>"),
            "Pulse\nBuds\nrecall"
        );
        assert_eq!(
            to_text("Lead<blockquote>quoted</blockquote><pre>code</pre><ul><li>one</li></ul>end"),
            "Lead\nquoted\ncode\none\nend"
        );
        assert_eq!(
            to_text("<section><header>Title</header><article><p>Body</article><footer>Foot</footer></section>"),
            "Title\nBody\nFoot"
        );
        assert_eq!(
            to_text("a<hr/>b<dl><dt>term</dt><dd>definition</dd></dl><figure><img src=x><figcaption>cap</figcaption></figure>"),
            "a\nb\nterm\ndefinition\ncap"
        );
        assert_eq!(to_text("before<P CLASS=\"x\">after"), "before\nafter");
    }

    /// Inline tags (and tags merely starting like a block's: `<param>`, `<track>`) leave no
    /// space, so a word split by markup stays one word.
    #[test]
    fn inline_tags_do_not_split_words() {
        assert_eq!(
            to_text("<b>Pul</b>se <i>Buds</i> <a href=\"/r\">re<em>ca</em>ll</a><span>ed</span>"),
            "Pulse Buds recalled"
        );
        assert_eq!(
            to_text("Pu<strong>l</strong>se<param name=x>Bu<track>ds"),
            "PulseBuds"
        );
    }

    #[test]
    fn named_entities_of_feeds_are_decoded_and_a_text_of_ampersands_costs_its_length() {
        assert_eq!(
            decode_entities("don&rsquo;t &mdash; Stra&szlig;e &hellip; &bogus; &#0; a&b;"),
            "don\u{2019}t \u{2014} Stra\u{df}e \u{2026} &bogus; &#0; a&b;"
        );
        // Two million ampersands with a `;` at the very end: each `&` looks ahead at most
        // eleven bytes (each used to search the whole rest of the text for its `;`).
        let text = format!("{};", "&".repeat(2_000_000));
        assert_eq!(decode_entities(&text), text);
    }
}

//! How a text is read for matching: folded (case, accents, compatibility forms) and cut into
//! tokens, the same way for a post and for a query's words, so the two always agree.
//!
//! - Words are runs of letters, digits and their marks; anything else separates them, so
//!   `Apple's` reads `apple` `s` and `pulse-cloud` reads `pulse` `cloud`.
//! - Scripts written without spaces (Chinese, Japanese, Korean, Thai, Lao, Khmer, Myanmar) read
//!   one token per character, so a word of them matches as a character sequence anywhere.
//! - `#tag` and `@handle` are tokens of their own kinds; an emoji is a token.
//! - Links are not words: their hosts are kept for `site:`.

use std::ops::Range;

use unicode_normalization::UnicodeNormalization;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Word,
    Hashtag,
    Mention,
}

/// One token: its kind, its folded text (a range of [`Tokens::folded`]) and where it stands
/// in the original text (byte offsets, for highlighting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub folded: Range<u32>,
    pub source: Range<u32>,
}

/// A text read for matching. A token's position is its index in `tokens`.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub folded: String,
    pub tokens: Vec<Token>,
    /// The hosts of the links in the text, folded, without a leading `www.`.
    pub hosts: Vec<String>,
}

impl Tokens {
    /// Reads `text`.
    pub fn read(text: &str) -> Tokens {
        let mut out = Tokens::default();
        out.read_into(text);
        out
    }

    /// Reads `text` into `self`, reusing its buffers.
    pub fn read_into(&mut self, text: &str) {
        self.folded.clear();
        self.tokens.clear();
        self.hosts.clear();
        let mut at = 0;
        let mut previous: Option<char> = None;
        while let Some(c) = text[at..].chars().next() {
            let start = at;
            let mut end = start + c.len_utf8();
            let after_word = previous.is_some_and(is_word_char);
            if (c == '#' || c == '@') && !after_word {
                match handle_end(text, end, c == '@') {
                    Ok(body_end) => {
                        if c == '@' {
                            self.push(text, TokenKind::Mention, start, end, body_end);
                        } else {
                            self.push_hashtag(text, start, end, body_end);
                        }
                        end = body_end;
                    }
                    // A run of `.`, `-` and `@` with no body: none of it starts a handle.
                    Err(run_end) => end = run_end,
                }
            } else if let Some(link_end) = (!after_word).then(|| link_end(text, start)).flatten() {
                if let Some(host) = host_of(&text[start..link_end]) {
                    self.hosts.push(host);
                }
                end = link_end;
            } else if is_spaceless(c) {
                end = marks_end(text, end);
                self.push(text, TokenKind::Word, start, start, end);
            } else if is_pictograph(c) {
                self.push(text, TokenKind::Word, start, start, end);
            } else if is_word_start(c) {
                end = word_end(text, end);
                self.push(text, TokenKind::Word, start, start, end);
            }
            previous = text[..end].chars().next_back();
            at = end;
        }
    }

    /// Adds the token whose source is `text[start..end]` and whose text is `text[body..end]`.
    fn push(&mut self, text: &str, kind: TokenKind, start: usize, body: usize, end: usize) {
        let from = self.folded.len();
        fold_into(&mut self.folded, &text[body..end]);
        if self.folded.len() == from {
            return;
        }
        self.tokens.push(Token {
            kind,
            folded: from as u32..self.folded.len() as u32,
            source: start as u32..end as u32,
        });
    }

    /// Adds a hashtag whose body is `text[body..end]`: one token, or, where the body holds
    /// characters of spaceless scripts, one token per such character and per run of others,
    /// so `#地震` reads as the characters the word `地震` reads as.
    fn push_hashtag(&mut self, text: &str, start: usize, body: usize, end: usize) {
        if !text[body..end].chars().any(is_spaceless) {
            self.push(text, TokenKind::Hashtag, start, body, end);
            return;
        }
        let mut at = body;
        let mut source = start;
        while at < end {
            let c = text[at..].chars().next().expect("within the body");
            let next = if is_spaceless(c) {
                marks_end(text, at + c.len_utf8()).min(end)
            } else {
                let run = text[at..end]
                    .find(is_spaceless)
                    .map_or(end, |offset| at + offset);
                if text[at..run].chars().all(|c| c == '_') {
                    at = run;
                    continue;
                }
                run
            };
            self.push(text, TokenKind::Hashtag, source, at, next);
            at = next;
            source = next;
        }
    }

    /// The folded text of the token at `position`.
    pub fn text(&self, position: usize) -> &str {
        let range = &self.tokens[position].folded;
        &self.folded[range.start as usize..range.end as usize]
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// `text` folded as tokens are: lowercase, without accents, in compatibility form.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(&mut out, text);
    out
}

/// Appends `text` folded: lowercase (with `ß` as `ss`), compatibility forms decomposed
/// (full-width letters, ligatures), and the accents of alphabets that write them optionally
/// dropped; the marks other scripts spell with (Japanese voicing, Indic vowels) are kept.
pub fn fold_into(out: &mut String, text: &str) {
    if text.is_ascii() {
        let from = out.len();
        out.push_str(text);
        out[from..].make_ascii_lowercase();
        return;
    }
    let mut lowered = String::with_capacity(text.len());
    for c in text.nfkd() {
        if is_optional_mark(c) {
            continue;
        }
        for l in c.to_lowercase() {
            match l {
                'ß' => lowered.push_str("ss"),
                'ς' => lowered.push('σ'),
                _ => lowered.push(l),
            }
        }
    }
    out.extend(lowered.nfc());
}

/// Marks that a reader may leave off without changing the word: Latin, Greek and Cyrillic
/// accents, Arabic vowel signs and the tatweel, Hebrew points.
fn is_optional_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F
        | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670 | 0x0640 | 0x06D6..=0x06DC | 0x06DF..=0x06E4
        | 0x06E7..=0x06E8 | 0x06EA..=0x06ED
        | 0x0591..=0x05BD | 0x05BF | 0x05C1..=0x05C2 | 0x05C4..=0x05C5 | 0x05C7)
}

/// A letter or digit that starts a word; not one of a [`is_spaceless`] script.
pub fn is_word_start(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    c.is_alphanumeric() && !is_spaceless(c) && !is_pictograph(c)
}

/// A character a word goes on with: [`is_word_start`], or a mark that belongs to the letter
/// before it (not an emoji's variation selector).
pub fn is_word_char(c: char) -> bool {
    is_word_start(c)
        || (!c.is_ascii()
            && unicode_normalization::char::is_combining_mark(c)
            && !matches!(c as u32, 0xFE00..=0xFE0F | 0xE0100..=0xE01EF))
}

/// Scripts written without spaces between words, read one character at a time.
pub fn is_spaceless(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F // Han
        | 0x3005..=0x3007 | 0x3040..=0x309F | 0x30A0..=0x30FF | 0x31F0..=0x31FF // kana
        | 0xFF66..=0xFF9F // half-width katakana
        | 0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F // Hangul
        | 0x0E00..=0x0E7F | 0x0E80..=0x0EFF | 0x1780..=0x17FF | 0x1000..=0x109F) // Thai, Lao, Khmer, Myanmar
        && !unicode_normalization::char::is_combining_mark(c)
        && c != '\u{30FB}' // katakana middle dot, a separator
}

/// Emoji and pictographic symbols: each is a token.
pub fn is_pictograph(c: char) -> bool {
    matches!(c as u32,
        0x1F300..=0x1F3FA | 0x1F400..=0x1FAFF | 0x2600..=0x27BF | 0x1F000..=0x1F2FF
        | 0x2B50 | 0x2B55 | 0x2B1B..=0x2B1C | 0x231A..=0x231B | 0x23E9..=0x23FA)
}

/// The end of the run of combining marks starting at `at` (a character of a spaceless script
/// keeps its vowel and tone marks, and half-width katakana its voicing marks).
fn marks_end(text: &str, mut at: usize) -> usize {
    for c in text[at..].chars() {
        if !(unicode_normalization::char::is_combining_mark(c)
            || matches!(c, '\u{FF9E}' | '\u{FF9F}'))
        {
            break;
        }
        at += c.len_utf8();
    }
    at
}

/// The end of the word that continues at `at`.
fn word_end(text: &str, mut at: usize) -> usize {
    for c in text[at..].chars() {
        if !is_word_char(c) {
            break;
        }
        at += c.len_utf8();
    }
    at
}

/// The end of a hashtag's or handle's body starting at `at`, if it has one, else the end of
/// what was read looking for it (so a text of ten thousand `@` is read once, not once per `@`).
/// A hashtag holds letters, digits, `_` and characters of spaceless scripts; a handle also
/// `.`, `-` and a second `@` (`@name@instance`), but does not end on `.` or `-`.
fn handle_end(text: &str, at: usize, handle: bool) -> Result<usize, usize> {
    let mut end = at;
    let mut last_body = at;
    for c in text[at..].chars() {
        let body = is_word_char(c) || is_spaceless(c) || c == '_';
        let joiner = handle && matches!(c, '.' | '-' | '@');
        if !(body || joiner) {
            break;
        }
        end += c.len_utf8();
        if body {
            last_body = end;
        }
    }
    if last_body > at {
        Ok(last_body)
    } else {
        Err(end)
    }
}

/// The end of the link starting at `start`, if one does (`http://`, `https://` or `www.`).
fn link_end(text: &str, start: usize) -> Option<usize> {
    let rest = &text[start..];
    let starts = |prefix: &str| {
        rest.as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    if !(starts("http://") || starts("https://") || starts("www.")) {
        return None;
    }
    let len = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
        .unwrap_or(rest.len());
    Some(start + len)
}

/// The host of a link, folded, without `www.`, a port or credentials.
pub fn host_of(link: &str) -> Option<String> {
    let rest = match link.find("://") {
        Some(at) => &link[at + 3..],
        None => link,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    let host = fold(host.trim_end_matches('.'));
    let host = host.strip_prefix("www.").unwrap_or(&host).to_string();
    let valid = !host.is_empty()
        && host.len() <= MAX_HOST_BYTES
        && host.contains('.')
        && host.split('.').all(|label| label.len() <= MAX_LABEL_BYTES)
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-'));
    valid.then_some(host)
}

/// Longest name DNS resolves, in bytes: each host is indexed under every domain it is under,
/// so a longer "host" would cost the square of its length.
const MAX_HOST_BYTES: usize = 253;
/// Longest label of a name DNS resolves, in bytes.
const MAX_LABEL_BYTES: usize = 63;

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let t = Tokens::read(text);
        (0..t.len())
            .map(|i| {
                let prefix = match t.tokens[i].kind {
                    TokenKind::Word => "",
                    TokenKind::Hashtag => "#",
                    TokenKind::Mention => "@",
                };
                format!("{prefix}{}", t.text(i))
            })
            .collect()
    }

    #[test]
    fn words_are_folded_and_cut_at_anything_but_letters_and_digits() {
        assert_eq!(
            words("Café crème, Apple’s iPhone15 pulse-cloud!"),
            ["cafe", "creme", "apple", "s", "iphone15", "pulse", "cloud"]
        );
        assert_eq!(
            words("STRASSE Straße ＴＯＫＹＯ ﬁne"),
            ["strasse", "strasse", "tokyo", "fine"]
        );
        assert_eq!(words("Ça ÉTÉ İstanbul"), ["ca", "ete", "istanbul"]);
    }

    // Each `@` of a run without a handle's body read the whole rest of the run: two million
    // `@` took about two million squared steps, on every read of such a post.
    #[test]
    fn a_run_of_at_signs_without_a_handle_is_read_once() {
        for filler in ["@", "@.", "@-", ".@"] {
            let text = filler.repeat(1_000_000);
            assert!(words(&text).is_empty(), "{filler}");
        }
        assert_eq!(words("@.-@ @bob -@- #x @@carol"), ["@bob", "#x", "@@carol"]);
    }

    #[test]
    fn hashtags_mentions_and_links_are_their_own() {
        assert_eq!(
            words("#PulseCloud by @alice.bsky.social. see https://www.Pulse.example/x?y=1 mail bob@example.com C#"),
            [
                "#pulsecloud",
                "by",
                "@alice.bsky.social",
                "see",
                "mail",
                "bob",
                "example",
                "com",
                "c"
            ]
        );
        let t = Tokens::read("https://www.Pulse.example/x and www.other.org/a http://1.2.3.4:80/");
        assert_eq!(t.hosts, ["pulse.example", "other.org", "1.2.3.4"]);
        let label = "a".repeat(63);
        let longest = format!("{label}.{label}.{label}.{}.com", "b".repeat(57));
        assert_eq!(longest.len(), 253);
        let t = Tokens::read(&format!(
            "https://{longest}/ https://x{longest}/ https://{}.com/ www.{}com",
            "c".repeat(64),
            "a.".repeat(200)
        ));
        assert_eq!(t.hosts, [longest]);
    }

    #[test]
    fn spaceless_scripts_read_a_character_at_a_time_and_keep_their_marks() {
        assert_eq!(words("東京でガスが"), ["東", "京", "で", "ガ", "ス", "が"]);
        assert_eq!(words("ｶﾞｽ"), ["ガ", "ス"]);
        assert_eq!(
            words("#地震 速報 #iPhone発売"),
            ["#地", "#震", "速", "報", "#iphone", "#発", "#売"]
        );
        assert_eq!(words("สวัสดี"), ["ส", "วั", "ส", "ดี"]);
        assert_eq!(words("삼성은"), ["삼", "성", "은"]);
        assert_eq!(words("नमस्ते दुनिया"), ["नमस्ते", "दुनिया"]);
    }

    #[test]
    fn emoji_are_tokens() {
        assert_eq!(
            words("so hot🔥🔥 ok👍🏽"),
            ["so", "hot", "🔥", "🔥", "ok", "👍"]
        );
    }

    #[test]
    fn tokens_remember_where_they_stand_in_the_text() {
        let text = "Le Café de l'Été";
        let t = Tokens::read(text);
        let source = |i: usize| {
            let r = &t.tokens[i].source;
            &text[r.start as usize..r.end as usize]
        };
        assert_eq!(source(1), "Café");
        assert_eq!(t.text(1), "cafe");
        assert_eq!(source(4), "Été");
    }
}

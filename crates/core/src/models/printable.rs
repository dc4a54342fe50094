//! What a name or label may hold. Names and labels are shown in the dashboard, written in logs
//! and sent to every channel; one that holds a character that is not seen, or that reorders
//! the text around it, can pass for another ("pulse​phone" with a zero-width space) or forge
//! a line of a log.

/// Characters that are not seen or that change the direction of the text around them:
/// zero-width spaces and joiners, direction marks (the Arabic letter mark among them: it is
/// one of Unicode's bidirectional controls, and `char::is_control` knows only the C0 and C1
/// ones), embeddings, overrides and isolates, line and paragraph separators, invisible
/// operators and the byte order mark; and the format and filler characters that are drawn as
/// nothing: the soft hyphen, the combining grapheme joiner, the Hangul fillers, the Khmer
/// inherent vowels, the Mongolian vowel separator, the interlinear annotation marks, the
/// musical formatting controls and the tag characters. ("pulse-phone" and
/// "pulse-phone\u{AD}" are two product keys that read the same.) Variation selectors are
/// left alone: emoji carry them.
pub fn hides_or_reorders(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2028}' | '\u{2029}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        | '\u{061C}' | '\u{00AD}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180E}' | '\u{3164}' | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}')
}

/// Whether `s` holds a control character or one that [`hides_or_reorders`].
pub fn has_unshowable(s: &str) -> bool {
    s.chars().any(|c| c.is_control() || hides_or_reorders(c))
}

/// `s` as it may be quoted line by line in a message: every line break (`\r\n`, a lone `\r`,
/// U+0085, U+2028, U+2029) made `\n`, which the quoting sees, and other control characters and
/// those that [`hides_or_reorders`] dropped, so quoted text can neither end its quote nor show
/// other than it reads.
pub fn quotable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\n' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push('\n'),
            '\t' => out.push(c),
            c if c.is_control() || hides_or_reorders(c) => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_has_one_kind_of_line_break_and_nothing_unseen() {
        assert_eq!(
            quotable("a\r\nb\rc\u{2028}d\u{85}e\u{202E}f\u{200B}g\u{1}h\ti"),
            "a\nb\nc\nd\nefgh\ti"
        );
        assert_eq!(quotable("Zürich ☕"), "Zürich ☕");
    }

    #[test]
    fn unseen_and_reordering_characters_are_found() {
        for s in [
            "pulse\u{200B}phone",
            "abc\u{202E}cba",
            "one\u{2028}two",
            "\u{FEFF}bom",
            "tab\t",
            "nul\0",
            // Read as "tw:123" and "pulse-phone", each is another id or key.
            "tw:123\u{061C}",
            "pulse\u{AD}-phone",
            "pulse-phone\u{3164}",
            "pulse-phone\u{E0020}",
            "p\u{34F}ulse",
            "\u{180E}pulse",
        ] {
            assert!(has_unshowable(s), "{s:?}");
        }
        for s in [
            "pulse-phone",
            "Zürich",
            "東京",
            "café ☕",
            "São Paulo",
            "I \u{2764}\u{FE0F} NY",
            "서울",
            "القاهرة",
        ] {
            assert!(!has_unshowable(s), "{s:?}");
        }
    }
}

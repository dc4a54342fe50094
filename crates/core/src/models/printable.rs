//! What a name or label may hold. Names and labels are shown in the dashboard, written in logs
//! and sent to every channel; one that holds a character that is not seen, or that reorders
//! the text around it, can pass for another ("pulse​phone" with a zero-width space) or forge
//! a line of a log.

/// Characters that are not seen or that change the direction of the text around them:
/// zero-width spaces and joiners, direction marks, embeddings, overrides and isolates, line
/// and paragraph separators, invisible operators and the byte order mark.
pub fn hides_or_reorders(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2028}' | '\u{2029}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
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
        ] {
            assert!(has_unshowable(s), "{s:?}");
        }
        for s in ["pulse-phone", "Zürich", "東京", "café ☕", "São Paulo"] {
            assert!(!has_unshowable(s), "{s:?}");
        }
    }
}

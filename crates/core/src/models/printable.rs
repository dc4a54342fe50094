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

#[cfg(test)]
mod tests {
    use super::*;

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

//! Cutting text to a size: every place that shortens a text (an echoed value, an error, a log
//! attribute, a channel message) cuts it here, so none can split a character.

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn prefix_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The first `max` characters of `text` (all of it when it has fewer).
pub fn prefix_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// `text` trimmed and cut to at most `max` characters, the last an ellipsis when it was longer.
pub fn ellipsized_chars(text: &str, max: usize) -> String {
    let mut out = text.trim().to_string();
    ellipsize_chars(&mut out, max);
    out
}

/// Cuts `text` in place to at most `max` characters, the last an ellipsis when it was longer;
/// unlike [`ellipsized_chars`] it trims nothing, so a text short enough stays as it was.
pub fn ellipsize_chars(text: &mut String, max: usize) {
    if text.char_indices().nth(max).is_none() {
        return;
    }
    let end = prefix_chars(text, max.saturating_sub(1)).len();
    text.truncate(end);
    text.push('…');
}

/// Cuts `text` in place to [`prefix_bytes`] of it.
pub fn truncate_bytes(text: &mut String, max: usize) {
    let end = prefix_bytes(text, max).len();
    text.truncate(end);
}

/// Cuts `text` in place to at most `max` bytes, ending in an ellipsis when it was longer.
pub fn ellipsize_bytes(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    truncate_bytes(text, max.saturating_sub('…'.len_utf8()));
    text.push('…');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as an in-place cut to `max` leaves it.
    fn cut(cut: fn(&mut String, usize), text: &str, max: usize) -> String {
        let mut text = text.to_string();
        cut(&mut text, max);
        text
    }

    #[test]
    fn byte_cuts_never_split_a_character() {
        assert_eq!(prefix_bytes("héllo", 2), "h");
        assert_eq!(prefix_bytes("héllo", 3), "hé");
        assert_eq!(prefix_bytes("hé", 10), "hé");
        assert_eq!(prefix_bytes("日本", 5), "日");
        let s = cut(ellipsize_bytes, "日本語のテキスト", 10);
        assert!(s.len() <= 10 && s.ends_with('…'), "{s}");
        assert_eq!(s, "日本…");
        assert_eq!(cut(ellipsize_bytes, "ok", 10), "ok");
    }

    #[test]
    fn character_cuts_count_characters_not_bytes() {
        assert_eq!(prefix_chars("日本語", 2), "日本");
        assert_eq!(prefix_chars("ab", 5), "ab");
        assert_eq!(prefix_chars("ab", 0), "");
        assert_eq!(ellipsized_chars("  日本語テキスト ", 4), "日本語…");
        assert_eq!(ellipsized_chars(" four ", 4), "four");
        assert_eq!(ellipsized_chars("abcde", 4).chars().count(), 4);
        assert_eq!(cut(ellipsize_chars, " 日本語テキスト", 4), " 日本…");
        assert_eq!(cut(ellipsize_chars, " four", 5), " four");
    }
}

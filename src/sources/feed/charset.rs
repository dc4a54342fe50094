//! A feed document's bytes to the UTF-8 text it is parsed from. The parser decodes by the
//! document's XML declaration alone (never the charset of the HTTP answer) and refuses a
//! whole document for one byte its encoding does not allow, as a Windows-1252 quote in a
//! feed that says UTF-8. So the encoding is chosen here (the byte order mark, then the XML
//! declaration, then UTF-8 where the text decodes as such, then the HTTP charset, then UTF-8),
//! a byte that does not decode becomes
//! U+FFFD, and the declaration no longer names another encoding than the UTF-8 handed on.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use regex::bytes::Regex;

/// The `encoding` of an XML declaration at the start of a document: the whole pseudo-attribute
/// (group 1) and its value (group 2).
static DECLARED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?-u)\A\s*<\?xml\s(?:[^>]*?\s)?(encoding\s*=\s*["']([^"'>]*)["'])"#).unwrap()
});

/// `body` as UTF-8 text, read in the encoding [`encoding_of`] chooses, with a replacement
/// character for each byte that does not decode in it.
pub fn to_utf8<'a>(body: &'a [u8], http_charset: Option<&str>) -> Cow<'a, str> {
    let (encoding, bom) = encoding_of(body, http_charset);
    let (text, _) = encoding.decode_without_bom_handling(&body[bom..]);
    without_other_encoding(text)
}

/// The encoding a document is read in, and the length of its byte order mark: the mark's,
/// else UTF-16 where the document begins with `<` in UTF-16, else the one its declaration
/// names, else UTF-8 when the document decodes as UTF-8, else the one the HTTP answer names,
/// else UTF-8. A declaration or header naming
/// UTF-16 for a document whose first bytes are not UTF-16 is mistaken and not followed (the
/// declaration could not have been read otherwise); a name no encoding has counts as none.
fn encoding_of(body: &[u8], http_charset: Option<&str>) -> (&'static Encoding, usize) {
    if let Some(found) = Encoding::for_bom(body) {
        return found;
    }
    if body.starts_with(b"<\0") {
        return (UTF_16LE, 0);
    }
    if body.starts_with(b"\0<") {
        return (UTF_16BE, 0);
    }
    let declared = declared_encoding(body).map(|(_, label)| label);
    // A server's default charset (Apache's ISO-8859-1) often mislabels UTF-8 feeds that
    // declare nothing; text that decodes as UTF-8 with any byte past ASCII almost never is
    // Latin-1, so it is read as UTF-8.
    if declared.is_none() && std::str::from_utf8(body).is_ok() {
        return (UTF_8, 0);
    }
    let named = declared
        .into_iter()
        .chain(http_charset.map(str::as_bytes))
        .filter_map(Encoding::for_label_no_replacement)
        .find(|e| *e != UTF_16LE && *e != UTF_16BE);
    (named.unwrap_or(UTF_8), 0)
}

/// Where the declaration's `encoding` pseudo-attribute lies in `text`, and its value.
fn declared_encoding(text: &[u8]) -> Option<(Range<usize>, &[u8])> {
    let found = DECLARED.captures(text)?;
    Some((found.get(1)?.range(), found.get(2)?.as_bytes()))
}

/// `text` without its declaration's `encoding` unless that names UTF-8: the parser would
/// decode the UTF-8 text in the encoding named again.
fn without_other_encoding(text: Cow<'_, str>) -> Cow<'_, str> {
    let Some((range, label)) = declared_encoding(text.as_bytes()) else {
        return text;
    };
    if Encoding::for_label(label) == Some(UTF_8) {
        return text;
    }
    let mut text = text.into_owned();
    text.replace_range(range, "");
    Cow::Owned(text)
}

/// The `charset` parameter of a `Content-Type` value, unquoted.
pub fn http_charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        let value = value.trim().trim_matches('"').trim();
        (name.trim().eq_ignore_ascii_case("charset") && !value.is_empty()).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Latin-1 document that declares no encoding was read as UTF-8, the charset of its
    /// HTTP answer unheard, and refused.
    #[test]
    fn the_http_charset_decodes_a_document_that_declares_none() {
        let body = b"<?xml version=\"1.0\"?><rss><title>Caf\xE9</title></rss>";
        let charset = http_charset("application/rss+xml; charset=ISO-8859-1");
        assert_eq!(charset, Some("ISO-8859-1"));
        assert_eq!(
            to_utf8(body, charset),
            "<?xml version=\"1.0\"?><rss><title>Caf\u{e9}</title></rss>"
        );
        assert_eq!(
            to_utf8(b"<rss>Caf\xE9</rss>", charset),
            "<rss>Caf\u{e9}</rss>"
        );
        // A UTF-8 feed that declares nothing, behind a server whose default says Latin-1.
        assert_eq!(
            to_utf8("<rss>Café</rss>".as_bytes(), charset),
            "<rss>Café</rss>"
        );
    }

    /// The declaration was the parser's to read: the text handed on in UTF-8 would have been
    /// decoded as Latin-1 again.
    #[test]
    fn the_declaration_outranks_the_http_charset_and_is_then_dropped() {
        let latin = b"<?xml version='1.0' encoding='ISO-8859-1' standalone='yes'?><t>Caf\xE9</t>";
        assert_eq!(
            to_utf8(latin, Some("utf-8")),
            "<?xml version='1.0'  standalone='yes'?><t>Caf\u{e9}</t>"
        );
        let utf8 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><t>Caf\u{e9}</t>";
        let read = to_utf8(utf8.as_bytes(), Some("ISO-8859-1"));
        assert_eq!(read, utf8);
        assert!(matches!(read, Cow::Borrowed(_)), "not copied");
        // A declaration naming no known encoding counts as none.
        assert_eq!(
            to_utf8(
                b"<?xml version=\"1.0\" encoding=\"bogus\"?><t>\xE9</t>",
                Some("latin1")
            ),
            "<?xml version=\"1.0\" ?><t>\u{e9}</t>"
        );
    }

    #[test]
    fn a_byte_order_mark_outranks_every_name_and_utf16_is_read() {
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in "<?xml version=\"1.0\" encoding=\"UTF-16\"?><t>Caf\u{e9}</t>".encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(
            to_utf8(&utf16, Some("ISO-8859-1")),
            "<?xml version=\"1.0\" ?><t>Caf\u{e9}</t>"
        );
        let without_mark = &utf16[2..];
        assert_eq!(
            to_utf8(without_mark, None),
            "<?xml version=\"1.0\" ?><t>Caf\u{e9}</t>"
        );
        assert_eq!(
            to_utf8(b"\xEF\xBB\xBF<t>Caf\xC3\xA9</t>", Some("ISO-8859-1")),
            "<t>Caf\u{e9}</t>"
        );
        // UTF-16 named for a document read as ASCII is a mistake.
        assert_eq!(
            to_utf8(
                b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><t>Caf\xC3\xA9</t>",
                None
            ),
            "<?xml version=\"1.0\" ?><t>Caf\u{e9}</t>"
        );
    }

    #[test]
    fn a_byte_outside_the_encoding_becomes_a_replacement_character() {
        assert_eq!(
            to_utf8(b"<t>it\x92s</t>", Some("utf-8")),
            "<t>it\u{fffd}s</t>"
        );
        assert_eq!(http_charset("text/xml"), None);
        assert_eq!(
            http_charset("text/xml; Charset=\"windows-1252\""),
            Some("windows-1252")
        );
        assert_eq!(http_charset("text/xml; charset="), None);
    }
}

//! Request paths in one spelling only. The router decodes percent-encoded characters before it
//! matches, so `/%61pi/v1` and `/api/v1` reach the same route; a check that read the path as
//! sent would judge one route by another's text. Paths with a second spelling of the same
//! route are therefore refused (400 `non_canonical_path`) before anything else reads them:
//! percent-encoded characters that need no encoding (letters, digits, `-`, `.`, `_`, `~`),
//! malformed escapes, empty segments (`//`), `.` and `..` segments, and backslashes (which
//! some proxies turn into slashes). Encodings a path needs (spaces, `%2F` inside an id) stay
//! allowed: the router keeps `%2F` encoded, so it never splits a segment. An encoded NUL is
//! refused too: no id, key or name Pulse stores can hold one.

/// Why `path` is not in its one canonical spelling, or `None` when it is.
pub fn problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("the path must start with `/`");
    }
    if path.contains('\\') {
        return Some("the path contains a backslash");
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let decoded = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match decoded {
                None => return Some("the path has a malformed percent-encoding"),
                Some(0) => return Some("the path holds a NUL (%00), which no name can hold"),
                Some(c) if is_unreserved(c) => {
                    return Some("the path percent-encodes a character that needs no encoding")
                }
                Some(_) => i += 3,
            }
        } else {
            i += 1;
        }
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (n, segment) in segments.iter().enumerate() {
        match *segment {
            "" if n < last => return Some("the path has an empty segment (`//`)"),
            "." | ".." => return Some("the path has a `.` or `..` segment"),
            _ => {}
        }
    }
    None
}

/// RFC 3986's unreserved characters: encoding them changes nothing, so an encoded one only
/// ever serves to spell a path twice.
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn one_spelling_per_path_passes() {
        for path in [
            "/",
            "/api/v1/posts",
            "/api/v1/posts/tw-1",
            "/api/v1/posts/a%20b",
            "/api/v1/posts/at%3A%2F%2Fdid%3Aplc%3Ax%2Fpost%2F1",
            "/api/v1/posts/caf%C3%A9",
            "/api/v1/posts/",
            "/assets/index-3f2a.js",
            "/api/v1/posts/..a",
        ] {
            assert_eq!(problem(path), None, "{path}");
        }
    }

    #[test]
    fn second_spellings_are_refused() {
        for path in [
            "/%61pi/v1/admin/keys",
            "/api/v1/admin/keys/%00",
            "/api/v1/%61dmin/audit",
            "/%77s",
            "/api/v1/posts/%2e%2e",
            "/api/v1/posts/%7E",
            "/api/v1/posts/%5Fx",
            "/api/v1/posts/%3",
            "/api/v1/posts/%zz",
            "/api/v1/posts/%",
            "//api/v1/posts",
            "/api//v1/posts",
            "/api/v1/./posts",
            "/api/v1/../v1/posts",
            "/api/v1/posts/..",
            "/api\\v1/posts",
            "api/v1/posts",
        ] {
            assert!(problem(path).is_some(), "{path}");
        }
    }
}

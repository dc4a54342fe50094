//! URLs as logs, errors and API answers may show them: credentials, query values and, for
//! receivers whose path is the secret, the path hidden. One place, so every source, webhook
//! and setting redacts the same way.

use reqwest::Url;

/// `url` with its user information and query values hidden, for logs, errors and the audit
/// log (receivers often carry a token in either).
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return "[unparseable URL]".into();
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username("***");
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        // A bare word (`?s3cr3t`) is a key with no value, and may be the token itself: then
        // the whole query goes.
        if parsed.query_pairs().any(|(_, v)| v.is_empty()) {
            parsed.set_query(Some("***"));
        } else {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, _)| (k.into_owned(), "***".to_string()))
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    parsed.set_fragment(None);
    parsed.to_string()
}

/// `text` with every URL in it (`scheme://...` up to a blank, a quote or an angle bracket)
/// passed through [`redact_url`]: for errors and log lines that quote URLs they did not
/// build (HTTP clients name the URL they failed on).
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let scheme_start = rest[..i]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(i, |(j, _)| j);
        let after = i + 3;
        if scheme_start == i || !rest[scheme_start..].starts_with(|c: char| c.is_ascii_alphabetic())
        {
            out.push_str(&rest[..after]);
            rest = &rest[after..];
            continue;
        }
        let end = rest[after..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(rest.len(), |n| after + n);
        let found = &rest[scheme_start..end];
        let url = found.trim_end_matches([')', ',', '.', ';', ':']);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&redact_url(url));
        out.push_str(&found[url.len()..]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// `url` reduced to its scheme, host and port, for receivers whose path is the secret (Slack
/// and Teams incoming webhooks).
pub fn origin_only(url: &str) -> String {
    match Url::parse(url) {
        Ok(parsed) => format!("{}/***", parsed.origin().ascii_serialization()),
        Err(_) => "[unparseable URL]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `?s3cr3t` became `?s3cr3t=***`: the bare word was taken for a key and kept.
    #[test]
    fn a_bare_query_word_is_hidden_with_the_values() {
        let redacted = redact_url("https://recv.example/hook?s3cr3t");
        assert!(!redacted.contains("s3cr3t"), "{redacted}");
        let redacted = redact_url("https://u:p@recv.example/hook?a=1&s3cr3t#f");
        assert!(
            !redacted.contains("s3cr3t") && !redacted.contains(":p@"),
            "{redacted}"
        );
        assert_eq!(
            redact_url("https://recv.example/hook?token=abc"),
            "https://recv.example/hook?token=***"
        );
    }
}

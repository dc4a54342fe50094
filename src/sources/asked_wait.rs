//! What a platform's answer asks of a source's next request (`Retry-After`, rate-limit
//! headers); the source's own retries between failures follow
//! [`crate::models::backoff::Backoff`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

/// Longest wait a platform's headers can impose: a platform asking for more (or a header
/// garbled into a huge number) is asked again after this, rather than never.
pub const MAX_ASKED_WAIT: Duration = Duration::from_secs(3_600);
/// The wait after a `429` that names no time: the platform asked for less traffic without
/// saying until when.
pub const UNSPECIFIED_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Requests left in a rate-limit window below which a source waits for the window's reset
/// rather than spend the last ones (and be answered 429).
pub const BUDGET_RESERVE: f64 = 2.0;

/// A wait a platform asked for before its next request, and which header asked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AskedWait {
    pub wait: Duration,
    /// `retry-after`, `x-ratelimit-reset`, `ratelimit-reset`, or `unspecified` (a 429 naming
    /// no time).
    pub by: &'static str,
}

/// What an answer asks of the next request to the same service: every source decides its
/// waits here, so a platform's `Retry-After` (in seconds or as an HTTP date) and its
/// rate-limit headers mean the same in each.
///
/// - A `429` or `503` waits for its `Retry-After`, or for the reset of a spent rate-limit
///   window (`X-RateLimit-Reset`, in seconds from now as Reddit sends it, as a timestamp as
///   Mastodon sends it, or as Unix seconds), whichever is later; a `429` naming neither waits
///   [`UNSPECIFIED_RATE_LIMIT_WAIT`]; a `503` naming neither asks nothing (ordinary backoff).
/// - Any other answer asks for a wait only when its rate-limit window is nearly spent
///   (`X-RateLimit-Remaining` below [`BUDGET_RESERVE`]): until the window's reset.
/// - Without the `X-` headers, `RateLimit-Remaining` and `RateLimit-Reset` are read alike.
///
/// Every wait is at most [`MAX_ASKED_WAIT`]. `None` when the answer asks nothing.
pub fn asked_wait(status: u16, headers: &HeaderMap, now: DateTime<Utc>) -> Option<AskedWait> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // `X-RateLimit-*` (Reddit, Mastodon), else `RateLimit-*` (Bluesky's services, the IETF
    // draft), each with the name it was read from.
    let either = |name: &'static str| {
        text(name)
            .map(|v| (v, name))
            .or_else(|| text(&name[2..]).map(|v| (v, &name[2..])))
    };
    let remaining = either("x-ratelimit-remaining").and_then(|(v, _)| v.parse::<f64>().ok());
    let spent = remaining.is_some_and(|r| r < BUDGET_RESERVE);
    let (reset, reset_by) = match either("x-ratelimit-reset") {
        Some((v, by)) => (until_reset(v, now), by),
        None => (None, "x-ratelimit-reset"),
    };
    let limited = status == 429 || status == 503;
    let asked = if limited {
        let retry_after = text("retry-after").and_then(|v| until_retry(v, now));
        // A 429 with a reset and no count left to read means that window is spent.
        let reset = reset.filter(|_| spent || (status == 429 && remaining.is_none()));
        match (retry_after, reset) {
            (Some(r), Some(w)) if w > r => Some((w, reset_by)),
            (Some(r), _) => Some((r, "retry-after")),
            (None, Some(w)) => Some((w, reset_by)),
            (None, None) if status == 429 => Some((UNSPECIFIED_RATE_LIMIT_WAIT, "unspecified")),
            (None, None) => None,
        }
    } else if spent {
        reset.map(|w| (w, reset_by))
    } else {
        None
    };
    asked.map(|(wait, by)| AskedWait {
        wait: wait.min(MAX_ASKED_WAIT),
        by,
    })
}

/// What a source makes of an answer that is not a success, the same in every source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsuccessful {
    /// The answer asked for a wait ([`asked_wait`]): counted as `rate_limited`, and the
    /// service is not asked again before it ends.
    Wait(AskedWait),
    /// A `401` or `403` asking no wait: the platform refused the credentials or the access.
    Refused,
    /// Anything else: the ordinary backoff.
    Failed,
}

/// The decision on an answer with `status` that is not a success, `asked` being what
/// [`asked_wait`] read from it. A wait asked for comes before the status: a `401` or `403`
/// sent with a spent rate-limit window (Reddit answers so when its budget is spent) waits
/// for the reset like any other answer, rather than being retried after the backoff, which
/// spends the next window too, and logged as refused credentials.
pub fn unsuccessful(status: u16, asked: Option<AskedWait>) -> Unsuccessful {
    match (status, asked) {
        (_, Some(asked)) => Unsuccessful::Wait(asked),
        (401 | 403, None) => Unsuccessful::Refused,
        _ => Unsuccessful::Failed,
    }
}

/// A `Retry-After` value: delay-seconds, or an HTTP date (zero when it has passed).
fn until_retry(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(MAX_ASKED_WAIT.as_secs())));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// An `X-RateLimit-Reset` value: seconds from now (Reddit), Unix seconds (a number past
/// 10^9), an RFC 3339 timestamp (Mastodon) or an HTTP date.
fn until_reset(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let at = if let Ok(n) = value.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        if n < 1e9 {
            return Some(Duration::from_secs_f64(n.min(MAX_ASKED_WAIT.as_secs_f64())));
        }
        DateTime::<Utc>::from_timestamp(n as i64, 0)?
    } else if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        at.with_timezone(&Utc)
    } else {
        httpdate::parse_http_date(value).ok()?.into()
    };
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn asked(status: u16, pairs: &[(&'static str, &str)]) -> Option<(u64, &'static str)> {
        let now = DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        asked_wait(status, &headers(pairs), now).map(|a| (a.wait.as_secs(), a.by))
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_as_an_http_date_on_429_and_503() {
        let max = MAX_ASKED_WAIT.as_secs();
        let cases = [
            (429, "3", Some((3, "retry-after"))),
            (503, " 2 ", Some((2, "retry-after"))),
            (
                429,
                "Fri, 20 Nov 2026 10:00:42 GMT",
                Some((42, "retry-after")),
            ),
            // The two obsolete date forms HTTP still accepts.
            (
                503,
                "Friday, 20-Nov-26 10:01:00 GMT",
                Some((60, "retry-after")),
            ),
            (503, "Fri Nov 20 10:00:05 2026", Some((5, "retry-after"))),
            // A date already past: no wait beyond the ordinary backoff.
            (
                429,
                "Fri, 20 Nov 2026 09:00:00 GMT",
                Some((0, "retry-after")),
            ),
            // Capped, so a garbled header cannot stop a source for good.
            (429, "99999999999", Some((max, "retry-after"))),
            // A 429 naming no time waits a minute.
            (429, "soon", Some((60, "unspecified"))),
            // Other answers do not carry Retry-After's meaning.
            (500, "30", None),
            (200, "30", None),
        ];
        for (status, value, expected) in cases {
            let got = asked(status, &[("retry-after", value)]);
            assert_eq!(got, expected, "{status} with Retry-After {value:?}");
        }
        // A 503 naming no time backs off as usual.
        assert_eq!(asked(503, &[]), None);
    }

    /// [`asked`] of an answer with an `X-RateLimit-*` window, and a `Retry-After` when given.
    fn asked_window(
        status: u16,
        retry_after: Option<&str>,
        remaining: &str,
        reset: &str,
    ) -> Option<(u64, &'static str)> {
        let mut pairs = vec![
            ("x-ratelimit-remaining", remaining),
            ("x-ratelimit-reset", reset),
        ];
        pairs.extend(retry_after.map(|r| ("retry-after", r)));
        asked(status, &pairs)
    }

    #[test]
    fn rate_limit_windows_are_waited_out_when_spent_whatever_their_reset_format() {
        let reset = "x-ratelimit-reset";
        // Reddit: seconds to the reset, the remaining count a float.
        assert_eq!(asked_window(200, None, "1.0", "120"), Some((120, reset)));
        assert_eq!(asked_window(200, None, "57.0", "120"), None);
        // Mastodon: a timestamp.
        let mastodon = "2026-11-20T10:05:00.000Z";
        assert_eq!(asked_window(200, None, "0", mastodon), Some((300, reset)));
        assert_eq!(asked_window(429, None, "0", mastodon), Some((300, reset)));
        // Unix seconds.
        assert_eq!(
            asked_window(200, None, "0", "1795168810"),
            Some((10, reset))
        );
        // A 429 waits for the later of Retry-After and a spent window's reset.
        assert_eq!(asked_window(429, Some("5"), "0", "30"), Some((30, reset)));
        let sooner = asked_window(429, Some("50"), "0", "30");
        assert_eq!(sooner, Some((50, "retry-after")));
        // A window that is not spent does not lengthen a 503's wait.
        let open = asked_window(503, Some("5"), "80", "30");
        assert_eq!(open, Some((5, "retry-after")));
        assert_eq!(asked_window(200, None, "0", "nonsense"), None);
    }

    #[test]
    fn a_refusal_with_a_spent_window_waits_for_its_reset() {
        let now = Utc::now();
        for status in [401, 403] {
            let spent = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "600")]);
            match unsuccessful(status, asked_wait(status, &spent, now)) {
                Unsuccessful::Wait(asked) => {
                    assert!(
                        asked.wait >= Duration::from_secs(600),
                        "{status}: {asked:?}"
                    )
                }
                other => panic!("{status} with a spent window: {other:?}"),
            }
            let open = headers(&[
                ("x-ratelimit-remaining", "80"),
                ("x-ratelimit-reset", "600"),
            ]);
            let decided = unsuccessful(status, asked_wait(status, &open, now));
            assert_eq!(decided, Unsuccessful::Refused, "{status}");
        }
        assert_eq!(unsuccessful(500, None), Unsuccessful::Failed);
        let limited = asked_wait(429, &headers(&[]), now);
        assert!(matches!(
            unsuccessful(429, limited),
            Unsuccessful::Wait(AskedWait {
                by: "unspecified",
                ..
            })
        ));
    }

    #[test]
    fn the_unprefixed_rate_limit_headers_of_bluesky_are_read_too() {
        // Unix seconds, as Bluesky's services send the reset: 10:05 is 300 s away.
        let reset = "1795169100";
        assert_eq!(
            asked(
                200,
                &[("ratelimit-remaining", "1"), ("ratelimit-reset", reset)]
            ),
            Some((300, "ratelimit-reset"))
        );
        assert_eq!(
            asked(
                200,
                &[("ratelimit-remaining", "900"), ("ratelimit-reset", reset)]
            ),
            None
        );
        assert_eq!(
            asked(
                200,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "30"),
                    ("ratelimit-reset", reset)
                ]
            ),
            Some((30, "x-ratelimit-reset")),
            "the prefixed header, where both are sent"
        );
    }
}

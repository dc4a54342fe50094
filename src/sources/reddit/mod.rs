//! Reddit: each subreddit's new posts (`/r/<sub>/new`) and, optionally, new comments
//! (`/r/<sub>/comments`), polled through the OAuth API with an application token (client
//! credentials grant), refreshed before it expires or when refused.
//!
//! The request budget is Reddit's, read from every response (`X-Ratelimit-Remaining`,
//! `X-Ratelimit-Reset`): when it is nearly spent the source waits for the reset, and a 429 or
//! 503 waits for its `Retry-After` or that reset, whichever is later (the decision is
//! [`asked_wait`]'s, shared by every source). The position
//! is, per listing, the newest creation time handled (never ahead of now) and the names of
//! the things handled within a day before it (see [`things`]), stored with the events: a
//! thing approved from the moderation queue after newer ones were handled is sent when it
//! appears, and nothing handled is sent again after a restart. A listing holds the latest
//! 100 things, so a subreddit
//! busier than 100 per `poll_secs` loses the surplus between polls: a full listing of new
//! things is logged, counted (`pulse_source_errors_total{reason="overflow"}`) and reported
//! as a gap in `GET /api/v1/pipeline`, telling the operator to poll more often.
//!
//! Requests go under the egress policy ([`crate::egress`]), as every source's do: only public
//! addresses (and the networks `allowed_private_networks` names), a listing's redirects
//! followed by the policy, each hop checked before it is asked and the token kept to the
//! API's origin; the token request follows none.

pub mod things;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use reqwest::header::{AUTHORIZATION, USER_AGENT};
use serde::Deserialize;
use tokio::time::Instant;

use self::things::{Listing, Position, Tags};
use super::asked_wait::{asked_wait, unsuccessful, AskedWait, Unsuccessful};
use super::body;
use super::filter::TextFilter;
use super::sink::Sink;
use super::SourceContext;
use crate::config::RedditSettings;
use crate::egress::{FetchError, TargetPolicy};
use crate::models::backoff::Backoff;

#[derive(Deserialize)]
struct Token {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

struct Client {
    /// A client of `policy`: it follows no redirect and reaches no refused address.
    http: reqwest::Client,
    policy: TargetPolicy,
    settings: RedditSettings,
    token: Option<(String, Instant)>,
}

/// Why a request failed, and how long to wait at least: the wait Reddit asked for, when it
/// asked for one (a 429 or 503, or any answer whose rate-limit window is spent).
struct Failure {
    reason: &'static str,
    error: anyhow::Error,
    at_least: Duration,
    asked: Option<AskedWait>,
}

fn fail(reason: &'static str, error: anyhow::Error, at_least: Duration) -> Failure {
    Failure {
        reason,
        error,
        at_least,
        asked: None,
    }
}

/// How long a listing that answered 403 or 404 is left alone: the others go on at their pace.
const UNAVAILABLE_REST: Duration = Duration::from_secs(600);

/// The failure of an answer that is not a success, as every source decides it
/// ([`unsuccessful`]): a wait Reddit asked for first, whatever the status.
fn failure_of(
    status: reqwest::StatusCode,
    asked: Option<AskedWait>,
    error: anyhow::Error,
) -> Failure {
    match unsuccessful(status.as_u16(), asked) {
        Unsuccessful::Wait(asked) => Failure {
            reason: "rate_limited",
            error,
            at_least: asked.wait,
            asked: Some(asked),
        },
        Unsuccessful::Refused => fail("refused", error, Duration::from_secs(60)),
        Unsuccessful::Failed => fail("http", error, Duration::ZERO),
    }
}

/// Bounds on the `expires_in` believed, in seconds: a token said to last less (or nothing)
/// is still used for a minute, and one said to last longer than Reddit's day is renewed
/// daily, so that no answer can move the renewal past what an `Instant` holds.
const TOKEN_SECS: (u64, u64) = (120, 86_400);

/// How long a token said to expire in `expires_in` seconds is used: until a minute before it
/// expires, so a poll never goes out with an expired one.
fn token_lifetime(expires_in: u64) -> Duration {
    Duration::from_secs(expires_in.clamp(TOKEN_SECS.0, TOKEN_SECS.1) - 60)
}

/// A request to `what` that did not get an answer (a target the policy refused included),
/// without the URL the HTTP client would quote.
fn unanswered(e: FetchError, what: &str) -> Failure {
    fail(
        super::fetch_reason(&e),
        super::fetch_error(e, what),
        Duration::ZERO,
    )
}

impl Client {
    async fn token(&mut self) -> Result<String, Failure> {
        if let Some((token, expires)) = &self.token {
            if Instant::now() < *expires {
                return Ok(token.clone());
            }
        }
        let request = self
            .http
            .post(&self.settings.token_url)
            .basic_auth(&self.settings.client_id, Some(&self.settings.client_secret))
            .header(USER_AGENT, &self.settings.user_agent)
            .form(&[("grant_type", "client_credentials")]);
        let response = self
            .policy
            .send(request, false)
            .await
            .map_err(|e| unanswered(e, "the token endpoint"))?;
        let status = response.status();
        if !status.is_success() {
            let error = anyhow::anyhow!("the token endpoint answered {status}");
            let asked = asked_wait(status.as_u16(), response.headers(), Utc::now());
            // OAuth answers refused credentials with a 400 too.
            if status.as_u16() == 400 && asked.is_none() {
                return Err(fail("refused", error, Duration::from_secs(60)));
            }
            return Err(failure_of(status, asked, error));
        }
        let token: Token = body::json(response)
            .await
            .map_err(|e| fail("malformed", e.into(), Duration::ZERO))?;
        let lifetime = token_lifetime(token.expires_in);
        self.token = Some((token.access_token.clone(), Instant::now() + lifetime));
        Ok(token.access_token)
    }

    /// One listing, and the wait Reddit asks for before the next request to stay in budget.
    async fn listing(&mut self, path: &str) -> Result<(Listing, Option<AskedWait>), Failure> {
        let token = self.token().await?;
        let url = listing_url(&self.settings.api_url, path)?;
        let user_agent = &self.settings.user_agent;
        let response = self
            .policy
            .get_following_redirects(&self.http, &url, |request| {
                request
                    .header(AUTHORIZATION, format!("Bearer {token}"))
                    .header(USER_AGENT, user_agent)
            })
            .await
            .map_err(|e| unanswered(e, path))?;
        let status = response.status();
        let asked = asked_wait(status.as_u16(), response.headers(), Utc::now());
        if status.as_u16() == 401 {
            self.token = None;
            if asked.is_none() {
                return Err(fail(
                    "refused",
                    anyhow::anyhow!("{path}: the token was refused; renewing it"),
                    Duration::ZERO,
                ));
            }
        }
        if matches!(status.as_u16(), 403 | 404) && asked.is_none() {
            return Err(fail(
                "unavailable",
                anyhow::anyhow!(
                    "{path} answered {status}: the subreddit is private, quarantined, banned or gone; asked again in {} minutes",
                    UNAVAILABLE_REST.as_secs() / 60
                ),
                Duration::ZERO,
            ));
        }
        if !status.is_success() {
            let error = anyhow::anyhow!("{path} answered {status}");
            return Err(failure_of(status, asked, error));
        }
        let listing = body::json(response)
            .await
            .map_err(|e| fail("malformed", e.into(), Duration::ZERO))?;
        Ok((listing, asked))
    }
}

/// The URL of the listing at `path` of the API at `api_url`, a hundred things at most.
fn listing_url(api_url: &str, path: &str) -> Result<reqwest::Url, Failure> {
    let url = format!(
        "{}{path}?limit=100&raw_json=1",
        api_url.trim_end_matches('/')
    );
    reqwest::Url::parse(&url).map_err(|e| {
        let shown = crate::egress::redact_url(api_url);
        fail(
            "connect",
            anyhow::anyhow!("api_url {shown}: {e}"),
            Duration::ZERO,
        )
    })
}

/// Polls the subreddits until the task is stopped.
pub async fn run(ctx: SourceContext, settings: RedditSettings) -> anyhow::Result<()> {
    if settings.subreddits.is_empty() {
        anyhow::bail!(
            "source {}: no subreddit configured (subreddits = [...])",
            ctx.name
        );
    }
    if settings.client_id.is_empty() || settings.client_secret.is_empty() {
        anyhow::bail!(
            "source {}: Reddit needs an application's client_id and client_secret (reddit.com/prefs/apps)",
            ctx.name
        );
    }
    let mut paths = Vec::new();
    for sub in &settings.subreddits {
        paths.push(format!("/r/{sub}/new"));
        if settings.comments {
            paths.push(format!("/r/{sub}/comments"));
        }
    }
    let mut sink = Sink::for_source(&ctx);
    let mut positions: BTreeMap<String, Position> = sink
        .stored_cursor_retrying(&ctx)
        .await
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let mut filter = TextFilter::new(ctx.listening()?, &[], 0);
    let tags = Tags {
        product: ctx.product.clone(),
        channel: ctx.channel.clone(),
    };
    let every = Duration::from_secs(settings.poll_secs.max(1));
    let policy = ctx.egress_policy(&settings.allowed_private_networks)?;
    let mut client = Client {
        http: policy.client_builder(Duration::from_secs(60)).build()?,
        policy,
        settings,
        token: None,
    };
    let mut failures = Backoff::new(Duration::from_secs(1), ctx.max_backoff);
    // Listings left alone until then (a private or banned subreddit).
    let mut resting: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        let round = Instant::now();
        let mut failed = false;
        let mut answered = false;
        for path in &paths {
            if resting
                .get(path)
                .is_some_and(|until| Instant::now() < *until)
            {
                continue;
            }
            match client.listing(path).await {
                Ok((listing, pause)) => {
                    answered = true;
                    let position = positions.remove(path).unwrap_or_default();
                    let read = things::events(listing, &position, &mut filter, &tags, Utc::now());
                    if read.overflowed {
                        let error = anyhow::anyhow!(
                            "{path}: every thing of the listing was new, so some may have been missed; lower poll_secs"
                        );
                        ctx.error("overflow", &error);
                        ctx.gap(format!("{error:#}"), None);
                    }
                    for reason in read.skipped {
                        sink.skipped(reason);
                    }
                    for event in read.events {
                        sink.push(event, None);
                    }
                    let newest = read.position.newest;
                    if newest > 0.0 {
                        ctx.set_lag(((Utc::now().timestamp() as f64 - newest) * 1e6) as i64);
                    }
                    positions.insert(path.clone(), read.position);
                    sink.advance(Some(serde_json::to_string(&positions)?));
                    if let Some(asked) = pause {
                        ctx.budget_wait(asked, path);
                        // What was read goes out before the wait (up to the hour a reset may
                        // name), not after it, and a stop meanwhile does not lose its position.
                        sink.flush_retrying(&ctx).await;
                        tokio::time::sleep(asked.wait).await;
                    }
                }
                Err(failure) if failure.reason == "unavailable" => {
                    ctx.error(failure.reason, &failure.error);
                    resting.insert(path.clone(), Instant::now() + UNAVAILABLE_REST);
                }
                Err(failure) => {
                    failed = true;
                    match failure.asked {
                        Some(asked) if failure.reason == "rate_limited" => {
                            ctx.rate_limited(asked, &failure.error)
                        }
                        _ => ctx.error(failure.reason, &failure.error),
                    }
                    // The listings read before this one go out before the wait, as above.
                    sink.flush_retrying(&ctx).await;
                    tokio::time::sleep(failures.next_wait_at_least(failure.at_least)).await;
                }
            }
        }
        // Connected while the listings that were asked answered; a round whose every listing
        // rests (Reddit refusing them all with 403) is not, and keeps its last error.
        ctx.set_connected(!failed && answered);
        if !failed {
            failures.reset();
        }
        sink.flush_retrying(&ctx).await;
        tokio::time::sleep_until(round + every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_whose_window_is_spent_waits_for_the_reset_and_is_no_refusal() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", "600".parse().unwrap());
        let forbidden = reqwest::StatusCode::FORBIDDEN;
        let asked = asked_wait(403, &headers, Utc::now());
        let failure = failure_of(forbidden, asked, anyhow::anyhow!("403"));
        assert_eq!(failure.reason, "rate_limited");
        assert!(failure.at_least >= Duration::from_secs(600));
        assert!(failure.asked.is_some());
        let refused = failure_of(forbidden, None, anyhow::anyhow!("403"));
        assert_eq!(refused.reason, "refused");
    }

    #[test]
    fn a_token_is_renewed_a_minute_early_and_at_least_daily() {
        assert_eq!(token_lifetime(0), Duration::from_secs(60));
        assert_eq!(token_lifetime(3_600), Duration::from_secs(3_540));
        assert_eq!(token_lifetime(86_400), Duration::from_secs(86_340));
        assert_eq!(token_lifetime(u64::MAX), Duration::from_secs(86_340));
        // What was added to the time of the answer before, and overflowed.
        assert!(Instant::now()
            .checked_add(token_lifetime(u64::MAX - 1))
            .is_some());
    }
}

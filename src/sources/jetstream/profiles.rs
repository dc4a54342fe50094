//! Follower counts of Bluesky accounts, which Jetstream does not carry, from the public
//! profile API (`app.bsky.actor.getProfiles`, 25 accounts a request), cached for six hours
//! and rate-limited. A batch of events waits for at most [`REQUESTS_PER_BATCH`] requests and
//! [`LOOKUP_TIME_PER_BATCH`] for all of them; accounts still unknown after that (or while the
//! API fails) are sent as 0 and looked up with a later batch, so a slow or absent API never
//! holds up the source. An API that answers none of a batch's requests in that time counts as
//! failed. After a failure,
//! lookups pause for a minute, or for as long as the API asked ([`asked_wait`]: a 429's or
//! 503's `Retry-After`, a spent rate-limit window's reset), whichever is longer; a lookup that
//! succeeds with its window nearly spent (`RateLimit-Remaining` below 2) pauses them until
//! the window's reset.
//!
//! Lookups go under the egress policy ([`crate::egress`]), as every source's requests do:
//! only public addresses (and the networks the source's `allowed_private_networks` names),
//! redirects followed by the policy with each hop checked before it is asked.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::config::JetstreamSettings;
use crate::egress::{redact_url, TargetPolicy};
use crate::models::bounded::First;
use crate::models::Event;
use crate::sources::asked_wait::{asked_wait, AskedWait};

/// Accounts per request (the API's maximum).
const ACCOUNTS_PER_REQUEST: usize = 25;
/// Requests one batch of events waits for.
pub const REQUESTS_PER_BATCH: usize = 4;
/// How long one batch of events waits for its lookups, all of them together.
pub const LOOKUP_TIME_PER_BATCH: Duration = Duration::from_secs(2);
/// How long a follower count is used.
const TTL: Duration = Duration::from_secs(6 * 3_600);
/// How long lookups pause after a failure, at least.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// A failed lookup, and the wait the API asked for.
#[derive(Debug)]
pub struct LookupError {
    pub error: anyhow::Error,
    pub asked: Option<AskedWait>,
}

impl From<anyhow::Error> for LookupError {
    fn from(error: anyhow::Error) -> LookupError {
        LookupError { error, asked: None }
    }
}

/// How long lookups pause after `failure`.
fn pause_after(failure: &LookupError) -> Duration {
    failure
        .asked
        .map_or(PAUSE_AFTER_FAILURE, |a| a.wait.max(PAUSE_AFTER_FAILURE))
}

#[derive(Deserialize)]
struct Profiles {
    /// A request's worth at most: an API answering with more does not make Pulse build (or
    /// cache) them.
    #[serde(default)]
    profiles: First<Profile, ACCOUNTS_PER_REQUEST>,
}

#[derive(Deserialize)]
struct Profile {
    did: String,
    #[serde(rename = "followersCount", default)]
    followers_count: u64,
}

pub struct ProfileCache {
    /// A client of `policy`: it follows no redirect and reaches no refused address.
    client: reqwest::Client,
    policy: TargetPolicy,
    /// `app.bsky.actor.getProfiles` of the AppView, without its query.
    url: Url,
    counts: HashMap<String, (u64, Instant)>,
    order: VecDeque<String>,
    capacity: usize,
    interval: Duration,
    next_request: Instant,
    paused_until: Option<Instant>,
}

/// The DID an event's author or actor is: the post's author, or the account the engagement's
/// id starts with (see `records::engagement_id`).
fn account_of(event: &Event) -> Option<&str> {
    match event {
        Event::Post(p) => Some(p.author.id.as_str()),
        Event::Engagement(e) => e.id.as_deref()?.split('/').next(),
        Event::Delete(_) => None,
    }
    .filter(|did| did.starts_with("did:"))
}

/// `app.bsky.actor.getProfiles` of the AppView at `profiles_url`.
fn get_profiles_url(profiles_url: &str) -> anyhow::Result<Url> {
    let url = format!(
        "{}/xrpc/app.bsky.actor.getProfiles",
        profiles_url.trim_end_matches('/')
    );
    Url::parse(&url).map_err(|e| anyhow::anyhow!("profiles_url {}: {e}", redact_url(profiles_url)))
}

impl ProfileCache {
    /// Lookups from the AppView of `settings`, where `policy` lets them go.
    pub fn new(settings: &JetstreamSettings, policy: TargetPolicy) -> anyhow::Result<ProfileCache> {
        let client = policy
            .client_builder(Duration::from_secs(10))
            .user_agent(concat!("pulse/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ProfileCache {
            client,
            policy,
            url: get_profiles_url(&settings.profiles_url)?,
            counts: HashMap::new(),
            order: VecDeque::new(),
            capacity: settings.profile_cache.max(1),
            interval: Duration::from_secs_f64(1.0 / settings.profile_requests_per_sec.max(0.01)),
            next_request: Instant::now(),
            paused_until: None,
        })
    }

    fn known(&self, did: &str) -> Option<u64> {
        self.counts
            .get(did)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(n, _)| *n)
    }

    fn remember(&mut self, did: String, followers: u64) {
        if self
            .counts
            .insert(did.clone(), (followers, Instant::now()))
            .is_none()
        {
            self.order.push_back(did);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.counts.remove(&old);
                }
            }
        }
    }

    /// Sets the follower counts of `events`' accounts, looking up a few unknown ones first;
    /// returns the error of a failed lookup (the events then carry what is known).
    pub async fn fill(&mut self, events: &mut [&mut Event]) -> Result<(), LookupError> {
        let mut wanted: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for e in events.iter() {
            if let Some(did) = account_of(e) {
                if self.known(did).is_none() && seen.insert(did.to_string()) {
                    wanted.push(did.to_string());
                }
            }
        }
        let mut result = Ok(());
        let deadline = Instant::now() + LOOKUP_TIME_PER_BATCH;
        let chunks = wanted.chunks(ACCOUNTS_PER_REQUEST).take(REQUESTS_PER_BATCH);
        for (answered, chunk) in chunks.enumerate() {
            if self.paused_until.is_some_and(|t| Instant::now() < t)
                || self.next_request >= deadline
            {
                break;
            }
            tokio::time::sleep_until(self.next_request).await;
            self.next_request = Instant::now() + self.interval;
            let looked_up = match tokio::time::timeout_at(deadline, self.look_up(chunk)).await {
                Ok(result) => result,
                // The batch's time ran out after answers came: the rest wait for a later batch.
                Err(_) if answered > 0 => break,
                Err(_) => Err(LookupError::from(anyhow::anyhow!(
                    "the profile API gave no answer within {} s",
                    LOOKUP_TIME_PER_BATCH.as_secs()
                ))),
            };
            if let Err(e) = looked_up {
                self.paused_until = Some(Instant::now() + pause_after(&e));
                result = Err(e);
                break;
            }
        }
        for e in events.iter_mut() {
            let Some(n) = account_of(e).and_then(|did| self.known(did)) else {
                continue;
            };
            match &mut **e {
                Event::Post(p) => p.author.followers = n,
                Event::Engagement(g) => g.actor_followers = Some(n),
                Event::Delete(_) => {}
            }
        }
        result
    }

    async fn look_up(&mut self, dids: &[String]) -> Result<(), LookupError> {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .extend_pairs(dids.iter().map(|d| ("actors", d.as_str())));
        let response = self
            .policy
            .get_following_redirects(&self.client, &url, |r| r)
            .await
            .map_err(|e| crate::sources::fetch_error(e, "the profile API"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(LookupError {
                error: anyhow::anyhow!("the profile API answered {status}"),
                asked: asked_wait(status.as_u16(), response.headers(), chrono::Utc::now()),
            });
        }
        // A lookup that succeeds can still say the window is nearly spent: the next ones wait
        // for its reset.
        if let Some(asked) = asked_wait(status.as_u16(), response.headers(), chrono::Utc::now()) {
            self.paused_until = Some(Instant::now() + asked.wait);
        }
        let profiles: Profiles = crate::sources::body::json(response)
            .await
            .map_err(anyhow::Error::new)?;
        let profiles = profiles.profiles.into_inner();
        let found: HashSet<String> = profiles.iter().map(|p| p.did.clone()).collect();
        for p in profiles {
            self.remember(p.did, p.followers_count);
        }
        // Accounts the API does not know (deleted, taken down) are not asked for again soon.
        for did in dids.iter().filter(|d| !found.contains(*d)) {
            self.remember(did.clone(), 0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_pause_a_minute_or_as_long_as_the_api_asked() {
        let failure = |asked: Option<u64>| LookupError {
            error: anyhow::anyhow!("the profile API answered 429 Too Many Requests"),
            asked: asked.map(|s| AskedWait {
                wait: Duration::from_secs(s),
                by: "retry-after",
            }),
        };
        assert_eq!(pause_after(&failure(None)), PAUSE_AFTER_FAILURE);
        assert_eq!(pause_after(&failure(Some(5))), PAUSE_AFTER_FAILURE);
        assert_eq!(pause_after(&failure(Some(600))), Duration::from_secs(600));
    }

    #[test]
    fn an_answer_keeps_a_requests_worth_of_profiles() {
        let listed: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"did":"did:plc:{i}","followersCount":{i}}}"#))
            .collect();
        let answer = format!(r#"{{"profiles":[{}]}}"#, listed.join(","));
        let profiles: Profiles = serde_json::from_str(&answer).unwrap();
        assert_eq!(profiles.profiles.len(), ACCOUNTS_PER_REQUEST);
    }

    #[tokio::test]
    async fn an_appview_at_an_internal_address_is_not_asked() {
        let settings = |profiles_url: &str| JetstreamSettings {
            profiles_url: profiles_url.into(),
            ..JetstreamSettings::default()
        };
        let strict = TargetPolicy::default();
        for internal in ["http://169.254.169.254", "http://10.0.0.5:8080/"] {
            let mut cache = ProfileCache::new(&settings(internal), strict.clone()).unwrap();
            let failed = cache.look_up(&["did:plc:alice".into()]).await.unwrap_err();
            let error = format!("{:#}", failed.error);
            assert!(
                error.contains("internal or reserved address, which is not allowed")
                    && error.contains("allowed_private_networks"),
                "{error}"
            );
            assert!(cache.known("did:plc:alice").is_none());
        }
        assert!(ProfileCache::new(&settings("not a url"), strict).is_err());
    }
}

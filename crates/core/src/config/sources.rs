//! Settings of the sources that feed the stream from real platforms: a list, each with its
//! own name, kind and filters.
//!
//! ```toml
//! [[sources]]
//! kind = "jetstream"           # Bluesky, no account needed
//! keywords = ["pulse buds"]
//! languages = ["en", "de"]
//! ```
//!
//! or, from the environment, `PULSE_SOURCES='[{kind="jetstream"}]'`.

use serde::{Deserialize, Serialize};

/// One configured source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceSettings {
    /// Names the source in metrics, logs, `/ready` and its stored position; defaults to the
    /// kind. Two sources of one group of processes must not share a name.
    #[serde(default)]
    pub name: String,
    /// What it reads and how.
    #[serde(flatten)]
    pub kind: SourceKind,
    /// Only posts this query of the topic language matches (docs/topics.md), besides those the
    /// kind's `keywords` keep; with `topics`, those any active topic matches too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Also keep the posts an active topic matches (a source with no other filter then keeps
    /// only those).
    #[serde(default)]
    pub topics: bool,
    /// Product and channel given to every post of this source, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Longest wait between reconnection attempts, in seconds (the wait doubles from one
    /// second, with jitter, up to it).
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
}

fn default_max_backoff_secs() -> u64 {
    60
}

impl SourceSettings {
    /// The kinds there are.
    pub const KINDS: [&'static str; 4] = ["jetstream", "mastodon", "feed", "reddit"];

    /// A source of `kind` with every default.
    pub fn of_kind(kind: &str) -> Option<SourceSettings> {
        let kind = match kind {
            "jetstream" => SourceKind::Jetstream(JetstreamSettings::default()),
            "mastodon" => SourceKind::Mastodon(MastodonSettings::default()),
            "feed" => SourceKind::Feed(FeedSettings::default()),
            "reddit" => SourceKind::Reddit(RedditSettings::default()),
            _ => return None,
        };
        Some(SourceSettings {
            name: String::new(),
            kind,
            query: None,
            topics: false,
            product: None,
            channel: None,
            max_backoff_secs: default_max_backoff_secs(),
        })
    }

    /// The name, or the kind's when none was given.
    pub fn name(&self) -> &str {
        if self.name.is_empty() {
            self.kind.as_str()
        } else {
            &self.name
        }
    }
}

/// The kinds of source, told apart by `kind`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceKind {
    /// Bluesky through a Jetstream service (JSON over WebSocket).
    Jetstream(JetstreamSettings),
    /// A Mastodon instance's streaming API (server-sent events).
    Mastodon(MastodonSettings),
    /// RSS and Atom feeds, polled.
    Feed(FeedSettings),
    /// New posts and comments of subreddits, through Reddit's OAuth API.
    Reddit(RedditSettings),
}

impl SourceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Jetstream(_) => "jetstream",
            SourceKind::Mastodon(_) => "mastodon",
            SourceKind::Feed(_) => "feed",
            SourceKind::Reddit(_) => "reddit",
        }
    }

    /// The platform of the posts it reads.
    pub fn platform(&self) -> crate::models::Platform {
        use crate::models::Platform;
        match self {
            SourceKind::Jetstream(_) => Platform::Bluesky,
            SourceKind::Mastodon(_) => Platform::Mastodon,
            SourceKind::Feed(_) => Platform::Other,
            SourceKind::Reddit(_) => Platform::Reddit,
        }
    }

    /// Its `keywords`.
    pub fn keywords(&self) -> &[String] {
        match self {
            SourceKind::Jetstream(s) => &s.keywords,
            SourceKind::Mastodon(s) => &s.keywords,
            SourceKind::Feed(s) => &s.keywords,
            SourceKind::Reddit(s) => &s.keywords,
        }
    }
}

/// Bluesky posts, reposts and likes from Jetstream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JetstreamSettings {
    /// Subscribe URLs, tried in turn: a failed connection moves to the next.
    pub endpoints: Vec<String>,
    /// Record collections to read: posts, reposts (shares) and likes by default.
    pub collections: Vec<String>,
    /// Only posts holding one of these words or phrases (on word boundaries, case and accents
    /// folded: words of the topic language joined by OR), and the reposts and likes of those
    /// posts; empty keeps every post.
    pub keywords: Vec<String>,
    /// Only posts tagged with one of these languages (`en`, `de`, ...); empty keeps all.
    pub languages: Vec<String>,
    /// Only these accounts (DIDs), filtered by the service; empty reads everyone.
    pub accounts: Vec<String>,
    /// How far to go back when resuming, in seconds: positions are each service's own
    /// clock, so a little overlap covers a switch between services (what is read twice is
    /// stored once).
    pub rewind_secs: u64,
    /// Posts remembered as matching the keyword and language filters, so their reposts and
    /// likes are kept; the oldest are forgotten first.
    pub remembered_posts: usize,
    /// Look up authors' and sharers' follower counts (Jetstream does not carry them) from
    /// the public profile API, in batches of 25, cached; without it, or while a lookup is
    /// pending or failing, they are sent as 0.
    pub fetch_followers: bool,
    /// The AppView serving `app.bsky.actor.getProfiles`.
    pub profiles_url: String,
    /// Most profile requests per second.
    pub profile_requests_per_sec: f64,
    /// Follower counts cached (each for six hours); the oldest are forgotten first.
    pub profile_cache: usize,
    /// Internal networks the profile lookups (and their redirects) may reach, as for feeds;
    /// empty, only public addresses. The Jetstream endpoints are connected to as configured
    /// (a WebSocket upgrade is not redirected).
    pub allowed_private_networks: Vec<String>,
}

/// The public Jetstream services run by Bluesky.
pub const PUBLIC_JETSTREAMS: [&str; 4] = [
    "wss://jetstream1.us-east.bsky.network/subscribe",
    "wss://jetstream2.us-east.bsky.network/subscribe",
    "wss://jetstream1.us-west.bsky.network/subscribe",
    "wss://jetstream2.us-west.bsky.network/subscribe",
];

impl Default for JetstreamSettings {
    fn default() -> Self {
        Self {
            endpoints: PUBLIC_JETSTREAMS.iter().map(|e| e.to_string()).collect(),
            collections: [
                "app.bsky.feed.post",
                "app.bsky.feed.repost",
                "app.bsky.feed.like",
            ]
            .iter()
            .map(|c| c.to_string())
            .collect(),
            keywords: Vec::new(),
            languages: Vec::new(),
            accounts: Vec::new(),
            rewind_secs: 5,
            remembered_posts: 200_000,
            fetch_followers: false,
            profiles_url: "https://public.api.bsky.app".into(),
            profile_requests_per_sec: 5.0,
            profile_cache: 200_000,
            allowed_private_networks: Vec::new(),
        }
    }
}

/// Statuses and boosts from one Mastodon instance.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MastodonSettings {
    /// The instance's base URL.
    pub instance: String,
    /// `public` (federated), `local`, `hashtag` (with `tag`) or `list` (with `list`, needs a
    /// token).
    pub timeline: String,
    pub tag: String,
    pub list: String,
    /// An access token, for instances that require one (or for lists); empty sends none.
    /// Never logged.
    pub access_token: String,
    /// Only statuses containing one of these (case-insensitive); empty keeps all.
    pub keywords: Vec<String>,
    /// Only statuses in one of these languages; empty keeps all.
    pub languages: Vec<String>,
    /// Pages of 40 statuses read from the REST timeline on reconnecting, to fill what the
    /// stream missed while away.
    pub backfill_pages: u32,
    /// Statuses remembered as matching the filters, so that their boosts are kept.
    pub remembered_posts: usize,
    /// Internal networks the source may reach, as for feeds: the instance, where it
    /// redirects, and the streaming host it declares; empty, only public addresses (an
    /// instance's answers choose where the source goes next).
    pub allowed_private_networks: Vec<String>,
}

impl std::fmt::Debug for MastodonSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MastodonSettings")
            .field(
                "instance",
                &crate::telemetry::redact::redact_url(&self.instance),
            )
            .field("timeline", &self.timeline)
            .field("tag", &self.tag)
            .field("list", &self.list)
            .field("access_token", &set_or_not(&self.access_token))
            .field("keywords", &self.keywords)
            .field("languages", &self.languages)
            .field("allowed_private_networks", &self.allowed_private_networks)
            .finish_non_exhaustive()
    }
}

impl Default for MastodonSettings {
    fn default() -> Self {
        Self {
            instance: "https://mastodon.social".into(),
            timeline: "public".into(),
            tag: String::new(),
            list: String::new(),
            access_token: String::new(),
            keywords: Vec::new(),
            languages: Vec::new(),
            backfill_pages: 10,
            remembered_posts: 200_000,
            allowed_private_networks: Vec::new(),
        }
    }
}

/// News and blog coverage from RSS and Atom feeds.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FeedSettings {
    /// The feeds' URLs.
    pub urls: Vec<String>,
    /// Seconds between two polls of one feed (a feed's own `ttl` can only lengthen it).
    pub poll_secs: u64,
    /// Only entries containing one of these (case-insensitive); empty keeps all.
    pub keywords: Vec<String>,
    /// Only entries in one of these languages (the entry's or the feed's); empty keeps all.
    pub languages: Vec<String>,
    /// Characters of an entry's text kept (title, then summary or content).
    pub max_text_chars: usize,
    /// Internal networks the feeds (and their redirects) may reach, as addresses or
    /// address/prefix (`10.20.0.0/16`, `192.168.1.5`); empty, only public addresses are
    /// reached, as for webhooks. `0.0.0.0/0` and `::/0` allow every address.
    pub allowed_private_networks: Vec<String>,
}

impl std::fmt::Debug for FeedSettings {
    /// URLs redacted: a feed URL can carry credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self
            .urls
            .iter()
            .map(|u| crate::telemetry::redact::redact_url(u))
            .collect();
        f.debug_struct("FeedSettings")
            .field("urls", &urls)
            .field("poll_secs", &self.poll_secs)
            .field("keywords", &self.keywords)
            .field("languages", &self.languages)
            .field("allowed_private_networks", &self.allowed_private_networks)
            .finish_non_exhaustive()
    }
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            poll_secs: 300,
            keywords: Vec::new(),
            languages: Vec::new(),
            max_text_chars: 4_000,
            allowed_private_networks: Vec::new(),
        }
    }
}

/// Subreddits' new posts and comments, through Reddit's OAuth API with an application's
/// credentials (app-only, client credentials grant).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RedditSettings {
    /// Subreddit names, without `r/`.
    pub subreddits: Vec<String>,
    /// Read new comments as well as new posts.
    pub comments: bool,
    /// The application's id and secret (reddit.com/prefs/apps). The secret is never logged.
    pub client_id: String,
    pub client_secret: String,
    /// Reddit asks for a descriptive User-Agent naming the application and its author.
    pub user_agent: String,
    /// Seconds between two polls of one listing.
    pub poll_secs: u64,
    /// Only posts and comments containing one of these (case-insensitive); empty keeps all.
    pub keywords: Vec<String>,
    pub token_url: String,
    pub api_url: String,
    /// Internal networks `token_url`, `api_url` and their redirects may reach, as for feeds
    /// (a proxy or stand-in on the inside); empty, only public addresses.
    pub allowed_private_networks: Vec<String>,
}

impl std::fmt::Debug for RedditSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedditSettings")
            .field("subreddits", &self.subreddits)
            .field("comments", &self.comments)
            .field("client_id", &self.client_id)
            .field("client_secret", &set_or_not(&self.client_secret))
            .field("poll_secs", &self.poll_secs)
            .field("allowed_private_networks", &self.allowed_private_networks)
            .finish_non_exhaustive()
    }
}

impl Default for RedditSettings {
    fn default() -> Self {
        Self {
            subreddits: Vec::new(),
            comments: true,
            client_id: String::new(),
            client_secret: String::new(),
            user_agent: concat!("pulse/", env!("CARGO_PKG_VERSION"), " (social listening)").into(),
            poll_secs: 30,
            keywords: Vec::new(),
            token_url: "https://www.reddit.com/api/v1/access_token".into(),
            api_url: "https://oauth.reddit.com".into(),
            allowed_private_networks: Vec::new(),
        }
    }
}

/// A secret setting as `Debug` shows it: whether it is set, never its value.
fn set_or_not(secret: &str) -> &'static str {
    if secret.is_empty() {
        ""
    } else {
        "<set>"
    }
}

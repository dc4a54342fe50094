//! The one builder of post events the tests append: a post with every field a producer
//! usually sends, each changed by one method, so a test names only what matters to it.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

/// A post event: on twitter, by `author-{id}` with 120 followers, created now, in Lyon (FR),
/// about `pulse-phone` through the `organic` channel.
#[derive(Debug, Clone)]
pub struct PostEvent(Value);

impl PostEvent {
    pub fn new(id: &str, text: &str) -> Self {
        Self(json!({
            "type": "post", "id": id, "platform": "twitter",
            "author": {"id": format!("author-{id}"), "followers": 120},
            "text": text, "created_at": Utc::now().to_rfc3339(),
            "geo": {"city": "Lyon", "country": "FR"}, "product": "pulse-phone", "channel": "organic"
        }))
    }

    pub fn at(self, created: DateTime<Utc>) -> Self {
        self.with("created_at", json!(created.to_rfc3339()))
    }

    pub fn minutes_ago(self, minutes: i64) -> Self {
        self.at(Utc::now() - TimeDelta::minutes(minutes))
    }

    pub fn platform(self, platform: &str) -> Self {
        self.with("platform", json!(platform))
    }

    pub fn author(self, id: &str, followers: u64) -> Self {
        self.with("author", json!({"id": id, "followers": followers}))
    }

    pub fn followers(mut self, followers: u64) -> Self {
        self.0["author"]["followers"] = json!(followers);
        self
    }

    pub fn lang(self, lang: &str) -> Self {
        self.with("lang", json!(lang))
    }

    pub fn country(mut self, country: &str) -> Self {
        self.0["geo"]["country"] = json!(country);
        self
    }

    pub fn product(self, product: &str) -> Self {
        self.with("product", json!(product))
    }

    /// Sets any other field (or replaces one of the above whole).
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.0[field] = value;
        self
    }

    /// Leaves `fields` out, as a producer that does not know them would.
    pub fn without(mut self, fields: &[&str]) -> Self {
        if let Value::Object(map) = &mut self.0 {
            for field in fields {
                map.remove(*field);
            }
        }
        self
    }

    pub fn json(self) -> Value {
        self.0
    }
}

impl std::fmt::Display for PostEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

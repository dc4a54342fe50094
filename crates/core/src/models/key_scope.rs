//! What an ingest key may send. A post id belongs to the producer that stores it first, so a
//! key that may send anything can plant a post under an id its real owner has not sent yet.
//! A scope closes that: a key limited to its own id prefixes can neither create nor change a
//! post outside them, whatever it sends.
//!
//! Post ids are one space across platforms: a platform or product scope limits which posts a
//! key may create, but only id prefixes keep two keys from ever claiming the same id.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bounded::at_most;
use super::event::{Event, Platform, MAX_ID_BYTES, MAX_LABEL_BYTES};

/// Most values in each list of a scope.
pub const MAX_SCOPE_VALUES: usize = 64;

/// The posts a key may create, delete and engage with. An empty list does not limit; a key
/// whose lists are all empty (or that has no scope) may send anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyScope {
    /// Platforms whose posts the key may create.
    #[serde(default, deserialize_with = "at_most::<_, _, MAX_SCOPE_VALUES>")]
    #[schema(max_items = 64)]
    pub platforms: Vec<Platform>,
    /// Products the key's posts must name (a post without `product` is then refused).
    #[serde(default, deserialize_with = "at_most::<_, _, MAX_SCOPE_VALUES>")]
    #[schema(max_items = 64)]
    pub products: Vec<String>,
    /// Prefixes one of which every post id the key creates, deletes or engages with must
    /// start with (e.g. `tw:` for a feed that sends `tw:<tweet id>`).
    #[serde(default, deserialize_with = "at_most::<_, _, MAX_SCOPE_VALUES>")]
    #[schema(max_items = 64)]
    pub id_prefixes: Vec<String>,
    /// Shown, never taken: the stored scope was written by a newer version and cannot be read
    /// here, so the key admits nothing (its lists read empty).
    #[serde(skip_deserializing, skip_serializing_if = "std::ops::Not::not")]
    #[schema(read_only)]
    unreadable: bool,
}

impl KeyScope {
    /// A scope that a stored one can be read back as (the unreadable flag off).
    pub fn new(platforms: Vec<Platform>, products: Vec<String>, id_prefixes: Vec<String>) -> Self {
        KeyScope {
            platforms,
            products,
            id_prefixes,
            unreadable: false,
        }
    }

    /// The scope of a key whose stored scope cannot be read (a newer version wrote it).
    pub fn unreadable() -> Self {
        KeyScope {
            unreadable: true,
            ..KeyScope::default()
        }
    }

    /// Whether it was stored by a newer version and cannot be read here (it then admits
    /// nothing, and cannot be copied to another key).
    pub fn is_unreadable(&self) -> bool {
        self.unreadable
    }

    /// Whether the scope limits nothing (an unreadable one limits everything).
    pub fn is_unlimited(&self) -> bool {
        !self.unreadable
            && self.platforms.is_empty()
            && self.products.is_empty()
            && self.id_prefixes.is_empty()
    }

    /// The first of its lists that holds more than [`MAX_SCOPE_VALUES`] values. One read from
    /// JSON holds at most one value past it, the rest unread ([`super::bounded::at_most`]).
    pub fn overlong_list(&self) -> Option<&'static str> {
        [
            ("platforms", self.platforms.len()),
            ("products", self.products.len()),
            ("id_prefixes", self.id_prefixes.len()),
        ]
        .into_iter()
        .find(|(_, len)| *len > MAX_SCOPE_VALUES)
        .map(|(field, _)| field)
    }

    /// Checks the scope's own limits: lists of at most [`MAX_SCOPE_VALUES`] values; products
    /// as long as a post's product may be, id prefixes as long as an id, each printable.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(field) = self.overlong_list() {
            return Err(format!(
                "scope.{field} holds more than {MAX_SCOPE_VALUES} values"
            ));
        }
        for (field, values, max) in [
            ("products", &self.products, MAX_LABEL_BYTES),
            ("id_prefixes", &self.id_prefixes, MAX_ID_BYTES),
        ] {
            for value in values {
                if value.is_empty() || value.len() > max || super::printable::has_unshowable(value)
                {
                    return Err(format!(
                        "each of scope.{field} must be 1 to {max} bytes without control, \
                         zero-width or direction-changing characters"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Why `event` is outside the scope, or `None` when the key may send it. Deletions and
    /// engagements name only a post id, so only the id prefixes limit them; which posts
    /// they may change beyond that is ownership's to decide.
    pub fn refuses(&self, event: &Event) -> Option<String> {
        if self.unreadable {
            return Some("this key's scope was written by a newer version of Pulse".into());
        }
        let post_id = match event {
            Event::Post(post) => {
                if !self.platforms.is_empty() && !self.platforms.contains(&post.platform) {
                    return Some(format!(
                        "platform `{}` is outside this key's scope",
                        post.platform.as_str()
                    ));
                }
                if !self.products.is_empty()
                    && !post
                        .product
                        .as_ref()
                        .is_some_and(|p| self.products.contains(p))
                {
                    return Some("the post's product is outside this key's scope".into());
                }
                &post.id
            }
            Event::Engagement(e) => &e.post_id,
            Event::Delete(d) => &d.post_id,
        };
        let in_prefix =
            self.id_prefixes.is_empty() || self.id_prefixes.iter().any(|p| post_id.starts_with(p));
        (!in_prefix).then(|| "the post id does not start with one of this key's id prefixes".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: serde_json::Value) -> Event {
        Event::from_slice(value.to_string().as_bytes()).unwrap()
    }

    fn post(id: &str, platform: &str, product: Option<&str>) -> Event {
        let mut v = json!({"type": "post", "id": id, "platform": platform,
            "author": {"id": "a", "followers": 1}, "text": "hello",
            "created_at": "2026-01-01T00:00:00Z"});
        if let Some(p) = product {
            v["product"] = json!(p);
        }
        event(v)
    }

    #[test]
    fn a_list_past_the_limit_is_read_one_value_past_it_and_refused() {
        let many: Vec<String> = (0..1_000).map(|i| format!("p{i}:")).collect();
        let scope: KeyScope = serde_json::from_value(json!({"id_prefixes": many})).unwrap();
        assert_eq!(scope.id_prefixes.len(), MAX_SCOPE_VALUES + 1);
        assert_eq!(
            scope.validate().unwrap_err(),
            format!("scope.id_prefixes holds more than {MAX_SCOPE_VALUES} values")
        );
    }

    #[test]
    fn a_scope_admits_only_its_platforms_products_and_id_prefixes() {
        let scope = KeyScope::new(
            vec![Platform::Twitter],
            vec!["phone".into()],
            vec!["tw:".into(), "x:".into()],
        );
        assert_eq!(scope.refuses(&post("tw:1", "twitter", Some("phone"))), None);
        assert_eq!(scope.refuses(&post("x:1", "twitter", Some("phone"))), None);
        assert!(scope
            .refuses(&post("tw:1", "reddit", Some("phone")))
            .is_some());
        assert!(scope
            .refuses(&post("tw:1", "twitter", Some("tablet")))
            .is_some());
        assert!(scope.refuses(&post("tw:1", "twitter", None)).is_some());
        assert!(scope
            .refuses(&post("1", "twitter", Some("phone")))
            .is_some());
        assert!(
            scope
                .refuses(&post("t", "twitter", Some("phone")))
                .is_some(),
            "shorter than a prefix"
        );

        let like = |post_id: &str| {
            event(
                json!({"type": "engagement", "post_id": post_id, "kind": "like",
                "at": "2026-01-01T00:00:00Z"}),
            )
        };
        let delete = |post_id: &str| {
            event(json!({"type": "delete", "post_id": post_id, "at": "2026-01-01T00:00:00Z"}))
        };
        assert_eq!(scope.refuses(&like("tw:9")), None);
        assert!(scope.refuses(&like("ig:9")).is_some());
        assert_eq!(scope.refuses(&delete("x:9")), None);
        assert!(scope.refuses(&delete("9")).is_some());

        let open = KeyScope::default();
        assert!(open.is_unlimited());
        assert_eq!(open.refuses(&post("anything", "other", None)), None);
        assert!(!scope.is_unlimited());
        let unreadable = KeyScope::unreadable();
        assert!(!unreadable.is_unlimited());
        assert!(unreadable
            .refuses(&post("tw:1", "twitter", Some("phone")))
            .is_some());
        // Listed as what it is, never taken from a client.
        let shown = serde_json::to_value(&unreadable).unwrap();
        assert_eq!(shown["unreadable"], true);
        assert!(serde_json::to_value(&open)
            .unwrap()
            .get("unreadable")
            .is_none());
        assert!(serde_json::from_value::<KeyScope>(shown).is_err());
    }

    #[test]
    fn scopes_out_of_bounds_are_refused() {
        assert!(KeyScope::default().validate().is_ok());
        let many = KeyScope {
            id_prefixes: (0..=MAX_SCOPE_VALUES).map(|i| format!("p{i}:")).collect(),
            ..KeyScope::default()
        };
        assert!(many.validate().unwrap_err().contains("id_prefixes"));
        for bad in ["", "a\u{202E}b", "line\nbreak"] {
            let scope = KeyScope {
                products: vec![bad.into()],
                ..KeyScope::default()
            };
            assert!(scope.validate().is_err(), "{bad:?}");
        }
        let long = KeyScope {
            id_prefixes: vec!["p".repeat(MAX_ID_BYTES + 1)],
            ..KeyScope::default()
        };
        assert!(long.validate().is_err());
        let long = KeyScope {
            products: vec!["p".repeat(MAX_LABEL_BYTES + 1)],
            ..KeyScope::default()
        };
        assert!(long.validate().is_err(), "a product no post can name");
        let refused: Result<KeyScope, _> =
            serde_json::from_value(json!({"platforms": ["twitter"], "owners": []}));
        assert!(refused.is_err(), "unknown fields are refused");
    }
}

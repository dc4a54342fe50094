//! The post filters shared by the listing, search and metrics endpoints: declared once (with
//! their documentation, [`with_post_filters`]) and validated in one place ([`PostFilters`]).

use super::error::ApiError;
use crate::db::query as sql;
use crate::models::event::MAX_LABEL_BYTES;
use crate::models::named::Named;
use crate::models::{LanguageSupport, Platform, SentimentLabel};

/// Declares a query-string struct with its own fields followed by the post filters every
/// filtering endpoint takes (`platform`, `product`, `city`, `country`, `channel`, `lang`,
/// `language_support`, `sentiment`, `topic`), and its `post_filters()`: the filters validated
/// into the `posts` columns to match.
macro_rules! with_post_filters {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty,)*
            pub platform: Option<crate::models::Platform>,
            pub product: Option<String>,
            pub city: Option<String>,
            pub country: Option<String>,
            pub channel: Option<String>,
            /// Language (ISO 639-1 where it has one: `de`; `und` for posts with none).
            pub lang: Option<String>,
            /// How far the analysis of the post's language can be trusted.
            pub language_support: Option<crate::models::LanguageSupport>,
            pub sentiment: Option<crate::models::SentimentLabel>,
            /// A topic's id: only posts that matched it (`GET /api/v1/topics`).
            pub topic: Option<i64>,
        }

        impl $name {
            /// The `posts` columns to match and their values, or a 400 naming the bad value.
            pub fn post_filters(
                &self,
            ) -> Result<Vec<(&'static str, String)>, crate::http::error::ApiError> {
                crate::http::filters::PostFilters {
                    platform: self.platform,
                    product: &self.product,
                    city: &self.city,
                    country: &self.country,
                    channel: &self.channel,
                    lang: &self.lang,
                    language_support: self.language_support,
                    sentiment: self.sentiment,
                    topic: self.topic,
                }
                .columns()
            }
        }
    };
}
pub(crate) use with_post_filters;

/// Filter values as they arrive in a query string (the enumerated ones already read).
pub struct PostFilters<'a> {
    pub platform: Option<Platform>,
    pub product: &'a Option<String>,
    pub city: &'a Option<String>,
    pub country: &'a Option<String>,
    pub channel: &'a Option<String>,
    pub lang: &'a Option<String>,
    pub language_support: Option<LanguageSupport>,
    pub sentiment: Option<SentimentLabel>,
    /// A topic's id: posts that matched it.
    pub topic: Option<i64>,
}

impl PostFilters<'_> {
    /// The `posts` columns to match and their values, or a 400 naming the bad value.
    pub fn columns(&self) -> Result<Vec<(&'static str, String)>, ApiError> {
        no_nul_in_query([
            ("product", self.product.as_deref()),
            ("city", self.city.as_deref()),
            ("country", self.country.as_deref()),
            ("channel", self.channel.as_deref()),
            ("lang", self.lang.as_deref()),
        ])?;
        let values = [
            ("product", self.product),
            ("city", self.city),
            ("country", self.country),
            ("channel", self.channel),
            ("lang", self.lang),
        ];
        for (name, value) in values {
            if value.as_ref().is_some_and(|v| v.len() > MAX_LABEL_BYTES) {
                return Err(ApiError::invalid_query(format!(
                    "{name} is longer than {MAX_LABEL_BYTES} bytes; no stored post has such a value"
                )));
            }
        }
        let owned = |value: Option<&str>| value.map(str::to_owned);
        Ok([
            ("topics", self.topic.map(|id| id.to_string())),
            ("platform", owned(self.platform.map(Platform::as_str))),
            ("product", self.product.clone()),
            ("city", self.city.clone()),
            ("country", self.country.clone()),
            ("channel", self.channel.clone()),
            (
                "lang",
                self.lang
                    .as_deref()
                    .map(crate::analysis::language::canonical_tag),
            ),
            (
                "language_support",
                owned(self.language_support.map(LanguageSupport::as_str)),
            ),
            (
                "sentiment_label",
                owned(self.sentiment.map(SentimentLabel::as_str)),
            ),
        ]
        .into_iter()
        .filter_map(|(column, value)| value.map(|v| (column, v)))
        .collect())
    }
}

/// A listing's page size: `given`, or `default` when absent; a 400 `invalid_query` outside 1 to
/// `max`.
pub fn page_limit(given: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = given.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid_query(format!(
            "limit must be between 1 and {max}"
        )));
    }
    Ok(limit)
}

/// A filter of an enumerated kind given as text (a saved search's, say), read as the query
/// string would read it; a 400 `invalid_query` naming the kinds it may be otherwise.
pub fn enumerated<T: Named>(name: &str, value: Option<String>) -> Result<Option<T>, ApiError> {
    value
        .map(|v| {
            T::parse(&v)
                .ok_or_else(|| ApiError::invalid_query(format!("{name}: {}", T::unknown(&v))))
        })
        .transpose()
}

/// The 400 of the first of `params` (a query parameter's name and value) that contains NUL,
/// if one does.
pub fn no_nul_in_query<'a>(
    params: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), ApiError> {
    match sql::unstorable(params) {
        Some(name) => Err(nul_in_query(name)),
        None => Ok(()),
    }
}

/// The 400 for a query parameter that contains NUL, which no stored text can.
pub fn nul_in_query(name: &str) -> ApiError {
    ApiError::invalid_query(format!("{name} must not contain NUL characters"))
}

//! The post filters shared by the listing, search and metrics endpoints: declared once (with
//! their documentation, [`with_post_filters`]) and validated in one place ([`PostFilters`]).

use super::error::ApiError;
use crate::db::query as sql;
use crate::models::errors::ErrorCode;
use crate::models::event::MAX_LABEL_BYTES;
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
            #[param(value_type = Option<crate::models::Platform>)]
            pub platform: Option<String>,
            pub product: Option<String>,
            pub city: Option<String>,
            pub country: Option<String>,
            pub channel: Option<String>,
            /// Language (ISO 639-1 where it has one: `de`; `und` for posts with none).
            pub lang: Option<String>,
            /// How far the analysis of the post's language can be trusted.
            #[param(value_type = Option<crate::models::LanguageSupport>)]
            pub language_support: Option<String>,
            #[param(value_type = Option<crate::models::SentimentLabel>)]
            pub sentiment: Option<String>,
            /// A topic's id: only posts that matched it (`GET /api/v1/topics`).
            pub topic: Option<i64>,
        }

        impl $name {
            /// The `posts` columns to match and their values, or a 400 naming the bad value.
            pub fn post_filters(
                &self,
            ) -> Result<Vec<(&'static str, String)>, crate::http::error::ApiError> {
                crate::http::filters::PostFilters {
                    platform: &self.platform,
                    product: &self.product,
                    city: &self.city,
                    country: &self.country,
                    channel: &self.channel,
                    lang: &self.lang,
                    language_support: &self.language_support,
                    sentiment: &self.sentiment,
                    topic: &self.topic,
                }
                .columns()
            }
        }
    };
}
pub(crate) use with_post_filters;

/// Filter values as they arrive in a query string.
pub struct PostFilters<'a> {
    pub platform: &'a Option<String>,
    pub product: &'a Option<String>,
    pub city: &'a Option<String>,
    pub country: &'a Option<String>,
    pub channel: &'a Option<String>,
    pub lang: &'a Option<String>,
    pub language_support: &'a Option<String>,
    pub sentiment: &'a Option<String>,
    /// A topic's id: posts that matched it.
    pub topic: &'a Option<i64>,
}

impl PostFilters<'_> {
    /// The `posts` columns to match and their values, or a 400 naming the bad value.
    pub fn columns(&self) -> Result<Vec<(&'static str, String)>, ApiError> {
        if let Some(name) = sql::unstorable([
            ("product", self.product.as_deref()),
            ("city", self.city.as_deref()),
            ("country", self.country.as_deref()),
            ("channel", self.channel.as_deref()),
            ("lang", self.lang.as_deref()),
        ]) {
            return Err(nul_in_query(name));
        }
        if let Some(p) = self.platform {
            if Platform::parse(p).is_none() {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidQuery,
                    format!("unknown platform `{p}`"),
                ));
            }
        }
        if let Some(s) = self.sentiment {
            if SentimentLabel::parse(s).is_none() {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidQuery,
                    "sentiment must be negative, neutral or positive",
                ));
            }
        }
        if let Some(s) = self.language_support {
            if LanguageSupport::parse(s).is_none() {
                return Err(ApiError::bad_request(
                    ErrorCode::InvalidQuery,
                    "language_support must be supported, unverified or unsupported",
                ));
            }
        }
        let values = [
            ("platform", self.platform),
            ("product", self.product),
            ("city", self.city),
            ("country", self.country),
            ("channel", self.channel),
            ("lang", self.lang),
        ];
        for (name, value) in values {
            if value.as_ref().is_some_and(|v| v.len() > MAX_LABEL_BYTES) {
                return Err(ApiError::bad_request(ErrorCode::InvalidQuery,
                    format!("{name} is longer than {MAX_LABEL_BYTES} bytes; no stored post has such a value"),
                ));
            }
        }
        let topic = self.topic.map(|id| id.to_string());
        Ok([
            ("topics", &topic),
            ("platform", self.platform),
            ("product", self.product),
            ("city", self.city),
            ("country", self.country),
            ("channel", self.channel),
            ("lang", self.lang),
            ("language_support", self.language_support),
            ("sentiment_label", self.sentiment),
        ]
        .into_iter()
        .filter_map(|(column, value)| value.clone().map(|v| (column, v)))
        .collect())
    }
}

/// The 400 for a query parameter that contains NUL, which no stored text can.
pub fn nul_in_query(name: &str) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidQuery,
        format!("{name} must not contain NUL characters"),
    )
}

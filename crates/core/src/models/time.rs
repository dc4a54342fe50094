//! Timestamps a client sends in queries, bounded to what PostgreSQL and the analysis can
//! represent: RFC 3339 parsing alone accepts years from -262143 to 262142, which the database
//! then refuses as an internal error.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Deserializer};

/// Earliest year a query may name.
pub const MIN_YEAR: i32 = 1970;
/// Latest year a query may name.
pub const MAX_YEAR: i32 = 9999;

/// `serde(deserialize_with)` for an optional query timestamp within [`MIN_YEAR`]..=[`MAX_YEAR`].
pub fn bounded<'de, D>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error>
where
    D: Deserializer<'de>,
{
    Option::<DateTime<Utc>>::deserialize(deserializer)?
        .map(within_years)
        .transpose()
}

/// [`bounded`] for a timestamp that must be given.
pub fn bounded_required<'de, D>(deserializer: D) -> Result<DateTime<Utc>, D::Error>
where
    D: Deserializer<'de>,
{
    within_years(DateTime::<Utc>::deserialize(deserializer)?)
}

fn within_years<E: serde::de::Error>(at: DateTime<Utc>) -> Result<DateTime<Utc>, E> {
    if (MIN_YEAR..=MAX_YEAR).contains(&at.year()) {
        Ok(at)
    } else {
        Err(E::custom(format!(
            "timestamps must lie in the years {MIN_YEAR} to {MAX_YEAR}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Q {
        #[serde(default, deserialize_with = "bounded")]
        from: Option<DateTime<Utc>>,
    }

    fn parse(json: &str) -> Result<Q, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn years_outside_the_range_are_refused() {
        assert!(parse(r#"{"from":"2026-01-01T00:00:00Z"}"#)
            .unwrap()
            .from
            .is_some());
        assert!(parse("{}").unwrap().from.is_none());
        for bad in [
            "-5000-01-01T00:00:00Z",
            "+20000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse(&format!(r#"{{"from":"{bad}"}}"#)).is_err(), "{bad}");
        }
    }
}

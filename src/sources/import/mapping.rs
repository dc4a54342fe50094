//! CSV rows to posts through `--map`, and the times and counts exports write.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::models::{Author, Event, EventError, Geo, Platform, Post};

/// Post fields to CSV columns.
pub(super) struct CsvMapping {
    pub(super) columns: BTreeMap<&'static str, String>,
    pub(super) platform: Platform,
}

const CSV_FIELDS: [&str; 13] = [
    "id",
    "text",
    "created_at",
    "author_id",
    "author_followers",
    "platform",
    "lang",
    "product",
    "channel",
    "city",
    "country",
    "url",
    "parent_id",
];

impl CsvMapping {
    /// Two columns of a name the mapping reads (a tweet's `id` and its author's): which is
    /// meant cannot be told, so the file is refused rather than one taken at random. Other
    /// names may repeat (Excel's empty trailing columns, two unused `notes`).
    pub(super) fn check_headers(&self, headers: &[String]) -> anyhow::Result<()> {
        for column in self.columns.values() {
            if headers.iter().filter(|h| *h == column).count() > 1 {
                anyhow::bail!(
                    "the CSV header names the column {column:?} twice; rename one (and --map to it)"
                );
            }
        }
        Ok(())
    }

    pub(super) fn parse(map: &str, platform: &str) -> anyhow::Result<CsvMapping> {
        let mut columns: BTreeMap<&'static str, String> =
            CSV_FIELDS.iter().map(|f| (*f, f.to_string())).collect();
        for pair in map.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, column) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--map entry {pair:?} is not field=column"))?;
            let field = CSV_FIELDS
                .iter()
                .find(|f| **f == field.trim())
                .ok_or_else(|| {
                    anyhow::anyhow!("--map: unknown field {field:?}; the fields are {CSV_FIELDS:?}")
                })?;
            columns.insert(field, column.trim().to_string());
        }
        let platform = Platform::parse(platform)
            .ok_or_else(|| anyhow::anyhow!("--platform {platform:?} is not a known platform"))?;
        Ok(CsvMapping { columns, platform })
    }

    pub(super) fn event(
        &self,
        row: &BTreeMap<String, String>,
    ) -> Result<Event, crate::models::EventError> {
        let get = |field: &str| {
            self.columns
                .get(field)
                .and_then(|c| row.get(c))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |field: &'static str| {
            get(field).ok_or(EventError::Invalid {
                field,
                reason: format!("column {:?} is missing or empty", self.columns[field]),
            })
        };
        let id = required("id")?;
        let created = required("created_at")?;
        let created_at = parse_time(&created).ok_or(EventError::Invalid {
            field: "created_at",
            reason: format!(
                "{created:?} is not a time (RFC 3339, `2026-11-20 10:00:00`, Twitter's \
                 `Fri Nov 20 10:00:00 +0000 2026`, or Unix seconds or milliseconds)"
            ),
        })?;
        let followers = match get("author_followers") {
            Some(f) => parse_count(&f).ok_or_else(|| EventError::Invalid {
                field: "author.followers",
                reason: format!("{f:?} is not a count"),
            })?,
            None => 0,
        };
        let platform = match get("platform") {
            Some(p) => Platform::parse(&p.to_lowercase()).unwrap_or(Platform::Other),
            None => self.platform,
        };
        let (city, country) = (get("city"), get("country"));
        let post = Post {
            author: Author {
                id: get("author_id").unwrap_or_else(|| "unknown".into()),
                followers,
            },
            id,
            platform,
            text: required("text")?,
            created_at,
            lang: get("lang"),
            geo: (city.is_some() || country.is_some()).then_some(Geo { city, country }),
            product: get("product"),
            channel: get("channel"),
            parent_id: get("parent_id"),
            url: get("url"),
            metrics: None,
        };
        let event = Event::Post(post);
        event.validate()?;
        Ok(event)
    }
}

/// A count as spreadsheets write one: `1200`; grouped by thousands with one separator
/// (`1,200`, `1 200`, `1_200`); or a whole float (`1200.0`, a column of counts with gaps).
/// What could be a decimal (`1,5`, `1.000` in a German sheet) is not a count.
fn parse_count(value: &str) -> Option<u64> {
    if let Ok(n) = value.parse::<u64>() {
        return Some(n);
    }
    if let Some(separator) = value
        .chars()
        .find(|c| matches!(c, ',' | '_' | ' ' | '\u{A0}' | '\u{202F}'))
    {
        let groups: Vec<&str> = value.split(separator).collect();
        let grouped = (1..=3).contains(&groups[0].len())
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
        return grouped.then(|| groups.concat().parse().ok()).flatten();
    }
    let (whole, fraction) = value.split_once('.')?;
    let whole_float =
        !fraction.is_empty() && fraction.bytes().all(|b| b == b'0') && fraction.len() != 3;
    whole_float.then(|| whole.parse().ok()).flatten()
}

/// A time as exports write one: RFC 3339; `2026-11-20 10:00:00` (a space for the `T`, with or
/// without fractions and an offset; UTC without one); Twitter's `Fri Nov 20 10:00:00 +0000
/// 2026`; or Unix seconds, or milliseconds where the number is too large for seconds.
fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%a %b %d %H:%M:%S %z %Y",
    ] {
        if let Ok(t) = DateTime::parse_from_str(value, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, format) {
            return Some(t.and_utc());
        }
    }
    let number: f64 = value.parse().ok()?;
    // `nan` and `0` are what an export writes for a time it does not have.
    if !number.is_finite() || number == 0.0 {
        return None;
    }
    // 10^12 seconds is the year 33658: a number this large is milliseconds. One under 10^8
    // (1973) is a year, a date written as digits or a count, not a time.
    let seconds = if number.abs() >= 1e12 {
        number / 1e3
    } else {
        number
    };
    if seconds.abs() < 1e8 {
        return None;
    }
    DateTime::from_timestamp_micros((seconds * 1e6) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_counts_are_read_as_exports_write_them() {
        let at = |v: &str| parse_time(v).map(|t| t.to_rfc3339());
        let expected = Some("2026-11-20T10:00:00+00:00".to_string());
        for written in [
            "2026-11-20T10:00:00Z",
            "2026-11-20 10:00:00",
            "2026-11-20 10:00:00.000",
            "2026-11-20 11:00:00+01:00",
            "2026-11-20T10:00:00",
            "Fri Nov 20 10:00:00 +0000 2026",
            "1795168800",
            "1795168800000",
        ] {
            assert_eq!(at(written), expected, "{written}");
        }
        for missing in ["nan", "NaN", "0", "inf", "yesterday", "2026", "20261120"] {
            assert_eq!(at(missing), None, "{missing}");
        }
        for (written, n) in [
            ("1200", 1200),
            ("1,200", 1200),
            ("1 200", 1200),
            ("1,200,000", 1_200_000),
            ("1200.0", 1200),
        ] {
            assert_eq!(parse_count(written), Some(n), "{written}");
        }
        for bad in [
            "-3", "1.5", "1,5", "1.000", "1,2,3,4", "1 200,5", "many", "nan",
        ] {
            assert_eq!(parse_count(bad), None, "{bad}");
        }
    }

    #[test]
    fn csv_rows_map_to_posts_and_bad_rows_say_why() {
        let m = CsvMapping::parse("id=tweet_id, text=content", "twitter").unwrap();
        let row = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let Event::Post(p) = m
            .event(&row(&[
                ("tweet_id", "t1"),
                ("content", "love it"),
                ("created_at", "1700000000"),
                ("country", "DE"),
            ]))
            .unwrap()
        else {
            panic!("not a post")
        };
        assert_eq!((p.id.as_str(), p.platform), ("t1", Platform::Twitter));
        assert_eq!(p.created_at.timestamp(), 1_700_000_000);
        assert_eq!(p.geo.unwrap().country.as_deref(), Some("DE"));
        let e = m
            .event(&row(&[("tweet_id", "t2"), ("created_at", "1700000000")]))
            .unwrap_err();
        assert!(e.to_string().contains("content"), "{e}");
        let e = m
            .event(&row(&[
                ("tweet_id", "t3"),
                ("content", "x"),
                ("created_at", "yesterday"),
            ]))
            .unwrap_err();
        assert!(e.to_string().contains("yesterday"), "{e}");
        assert!(CsvMapping::parse("nope=x", "twitter").is_err());
        assert!(CsvMapping::parse("id", "twitter").is_err());
        assert!(CsvMapping::parse("", "myspace").is_err());
    }
}

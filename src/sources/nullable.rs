//! `serde(deserialize_with)` for platform fields that may come as `null` where a value is
//! expected (Reddit's removed things, a Bluesky record's `"langs": null`): read as absent, so
//! one odd field does not lose the record.

use serde::{Deserialize, Deserializer};

pub fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

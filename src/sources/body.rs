//! A platform's answer read whole, up to a size: a server that sends more is cut off at the
//! limit, not buffered (the request's timeout alone would let hundreds of megabytes in first).

use serde::de::DeserializeOwned;

/// Largest JSON answer read from a platform's API. A Reddit listing of 100 posts of 40,000
/// characters each, with their HTML copies, can reach 25 MiB in scripts of three bytes a
/// character; a Mastodon page of 40 statuses and 25 Bluesky profiles are far smaller.
pub const MAX_JSON_BYTES: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the answer: {0}")]
    Read(reqwest::Error),
    #[error("the answer is not the JSON expected: {0}")]
    Malformed(serde_json::Error),
}

/// The body of `response`, at most `max` bytes.
pub async fn bytes(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Read(e.without_url()))?
    {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body of `response` as JSON, at most [`MAX_JSON_BYTES`]. `T` names only what is read,
/// its lists bounded to a page's worth ([`crate::models::bounded::First`]) and records to be
/// read one by one kept as written: built as a tree of values, an answer of small objects
/// takes about a hundred times its size (32 MiB of `{"":0}` was 3 GB).
pub async fn json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, BodyError> {
    let body = bytes(response, MAX_JSON_BYTES).await?;
    serde_json::from_slice(&body).map_err(BodyError::Malformed)
}

//! Limits on what a request body may be, checked before any handler parses it: its size
//! (refused from `Content-Length` alone when that is too big, else while reading, so an
//! oversize body is never held in memory) and the nesting depth of its JSON (deep nesting is
//! how small bodies make parsers recurse).

use crate::models::errors::ErrorCode;
use actix_web::dev::ServiceRequest;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web::{Bytes, BytesMut};
use futures::StreamExt;

use super::error::ApiError;
use crate::telemetry::names;

/// Whether `body` nests arrays and objects deeper than `max` (strings are skipped, escapes
/// included). Linear, with no recursion and no allocation.
pub fn json_too_deep(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn too_large(limit: usize) -> ApiError {
    metrics::counter!(names::INPUT_REFUSED, "reason" => "body_too_large").increment(1);
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than {limit} bytes"),
    )
    .with_details(serde_json::json!({"limit": limit}))
}

/// Reads the request's body (at most `limit` bytes), checks its JSON depth, and puts it
/// back for the handler. Returns the body for those who need to see it (the audit log).
pub async fn check(
    req: &mut ServiceRequest,
    limit: usize,
    max_depth: usize,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut payload = std::mem::replace(req.parts_mut().1, actix_web::dev::Payload::None);
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(ErrorCode::InvalidBody, e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    if json_too_deep(&body, max_depth) {
        metrics::counter!(names::INPUT_REFUSED, "reason" => "json_too_deep").increment(1);
        return Err(ApiError::bad_request(
            ErrorCode::JsonTooDeep,
            format!("JSON nests deeper than {max_depth} levels"),
        )
        .with_details(serde_json::json!({"limit": max_depth})));
    }
    req.set_payload(actix_web::dev::Payload::from(body.clone()));
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting_outside_strings() {
        assert!(!json_too_deep(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(json_too_deep(br#"{"a":[1,{"b":[2]}]}"#, 3));
        assert!(!json_too_deep(br#"{"a":"[[[[[[[[\"[[[["}"#, 1));
        assert!(json_too_deep(&[b'['; 10_000], 32));
        assert!(!json_too_deep(b"", 0));
    }
}

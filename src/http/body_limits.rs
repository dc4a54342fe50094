//! Limits on what a request body may be, checked before any handler parses it: its size
//! (refused from `Content-Length` alone when that is too big, else while reading, so an
//! oversize body is never held in memory) and the nesting depth of its JSON (deep nesting is
//! how small bodies make parsers recurse).
//!
//! A body sent with `Content-Encoding` (gzip, deflate or br) is decoded here, and the decoded
//! bytes are held to the same limits: a few kilobytes of brotli can stand for gigabytes, so the
//! decoder stops one byte past the limit, and the depth check, the audit log and the handler
//! all see the JSON itself.

use crate::models::errors::ErrorCode;
use actix_web::dev::ServiceRequest;
use std::io::Read;

use actix_web::http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH};
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

/// `body` decoded from `encoding` (a `Content-Encoding` value), at most `limit` bytes of it.
fn decode(body: &[u8], encoding: &str, limit: usize) -> Result<Bytes, ApiError> {
    let decoder: Box<dyn Read + '_> = match encoding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(body)),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(body)),
        "br" => Box::new(brotli::Decompressor::new(body, 4096)),
        other => {
            metrics::counter!(names::INPUT_REFUSED, "reason" => "content_encoding").increment(1);
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "Content-Encoding {other:?} is not supported: send gzip, deflate, br or none"
                ),
            ));
        }
    };
    let mut out = Vec::new();
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ApiError::bad_request(
                ErrorCode::InvalidBody,
                format!("the body is not valid {encoding}: {e}"),
            )
        })?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(out))
}

/// Reads the request's body (at most `limit` bytes, decoded), checks its JSON depth, and puts
/// it back for the handler, decoded. Returns the body for those who need to see it (the audit
/// log).
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
    let mut body = body.freeze();
    let encoding = req
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    if let Some(encoding) = encoding.filter(|e| !e.is_empty() && e != "identity") {
        body = decode(&body, &encoding, limit)?;
        let headers = req.headers_mut();
        headers.remove(CONTENT_ENCODING);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
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

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn decodes_what_the_client_encoded_within_the_limit() {
        let json = br#"{"text":"hello"}"#;
        assert_eq!(&decode(&gzip(json), "gzip", 100).unwrap()[..], json);
        let mut br = Vec::new();
        brotli::BrotliCompress(&mut &json[..], &mut br, &Default::default()).unwrap();
        assert_eq!(&decode(&br, "br", 100).unwrap()[..], json);
        assert_eq!(decode(json, "gzip", 100).unwrap_err().status(), 400);
        assert_eq!(decode(json, "zstd", 100).unwrap_err().status(), 415);
    }

    #[test]
    fn a_small_body_that_decodes_to_a_huge_one_is_refused_without_decoding_it_all() {
        let bomb = gzip(&vec![b' '; 64 << 20]);
        assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
        assert_eq!(decode(&bomb, "gzip", 1 << 20).unwrap_err().status(), 413);
        let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
        for _ in 0..64 {
            std::io::Write::write_all(&mut w, &[b' '; 1 << 20]).unwrap();
        }
        let bomb = w.into_inner();
        assert!(bomb.len() < 1_000, "{} bytes", bomb.len());
        assert_eq!(decode(&bomb, "br", 1 << 20).unwrap_err().status(), 413);
    }

    #[test]
    fn depth_counts_nesting_outside_strings() {
        assert!(!json_too_deep(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(json_too_deep(br#"{"a":[1,{"b":[2]}]}"#, 3));
        assert!(!json_too_deep(br#"{"a":"[[[[[[[[\"[[[["}"#, 1));
        assert!(json_too_deep(&[b'['; 10_000], 32));
        assert!(!json_too_deep(b"", 0));
    }
}

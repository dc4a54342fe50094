//! Limits on what a request body may be, checked before any handler parses it: its size
//! (refused from `Content-Length` alone when that is too big, else while reading, so an
//! oversize body is never held in memory) and the nesting depth of its JSON (deep nesting is
//! how small bodies make parsers recurse).
//!
//! A body sent with `Content-Encoding` (gzip, deflate or br) is decoded here, and the decoded
//! bytes are held to the same limits: a few kilobytes of brotli can stand for gigabytes, so the
//! decoder stops one byte past the limit, and the depth check, the audit log and the handler
//! all see the JSON itself. Decoding runs off the HTTP workers, one body at a time per process,
//! and a gzip body may hold at most [`MAX_GZIP_MEMBERS`] members (each costs a decoder set-up
//! whatever it holds: a megabyte of empty members took half a second of a worker).
//!
//! The body's buffer is charged to its client's [`BodyCharge`] before it is taken, as it grows
//! with what arrives (doubling, up to the declared length), and the body must arrive whole
//! within `limits.body_timeout_secs`.

use crate::models::errors::ErrorCode;
use actix_web::dev::ServiceRequest;
use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use actix_web::http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH};
use actix_web::web::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::http::error::ApiError;
use crate::http::middleware::body_budget::{BodyCharge, Refusal};
use crate::telemetry::names;

/// Most gzip members one body may hold.
pub const MAX_GZIP_MEMBERS: usize = 64;
/// Bodies decoded at once by one process.
const DECODE_CONCURRENCY: usize = 1;
/// Bytes reserved for a body before any arrive (fewer when it declares fewer).
const INITIAL_CAPACITY: usize = 16 * 1024;

/// The decoders' turn, shared by every worker of the process.
fn decoders() -> &'static Semaphore {
    static DECODERS: OnceLock<Semaphore> = OnceLock::new();
    DECODERS.get_or_init(|| Semaphore::new(DECODE_CONCURRENCY))
}

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

/// The 4xx or 503 for a body the budget refuses.
pub fn budget_refusal(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::TotalMemory | Refusal::PublicMemory => ApiError::busy_for(
            "bodies",
            "the server holds as many request bodies as it may; retry shortly",
            1,
        ),
        Refusal::ClientBodies | Refusal::ClientMemory => ApiError::rate_limited(
            "body",
            "this client is sending as many request bodies as it may at once; retry when one is answered",
            Duration::from_secs(1),
        ),
    }
}

/// Gzip members one after another (RFC 1952 allows several), at most [`MAX_GZIP_MEMBERS`].
struct GzipMembers<'a> {
    rest: &'a [u8],
    current: Option<flate2::bufread::GzDecoder<&'a [u8]>>,
    members: usize,
}

impl Read for GzipMembers<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(decoder) = &mut self.current {
                let n = decoder.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.rest = self.current.take().map_or(&[][..], |d| d.into_inner());
            }
            if self.rest.is_empty() {
                return Ok(0);
            }
            self.members += 1;
            if self.members > MAX_GZIP_MEMBERS {
                return Err(std::io::Error::other(format!(
                    "more than {MAX_GZIP_MEMBERS} gzip members"
                )));
            }
            self.current = Some(flate2::bufread::GzDecoder::new(self.rest));
        }
    }
}

/// `body` decoded from `encoding` (a `Content-Encoding` value), at most `limit` bytes of it.
fn decode(body: &[u8], encoding: &str, limit: usize) -> Result<Bytes, ApiError> {
    let decoder: Box<dyn Read + '_> = match encoding {
        "gzip" | "x-gzip" => Box::new(GzipMembers {
            rest: body,
            current: None,
            members: 0,
        }),
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

/// What a body may be and how long it may take.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body, before and after decoding.
    pub bytes: usize,
    pub max_depth: usize,
    pub timeout: Duration,
}

/// The 408 for a body that did not arrive in time.
fn timed_out(timeout: Duration) -> ApiError {
    metrics::counter!(names::INPUT_REFUSED, "reason" => "body_timeout").increment(1);
    ApiError::new(
        ErrorCode::BodyTimeout,
        format!(
            "the request body did not arrive within {} s",
            timeout.as_secs_f64()
        ),
    )
    .with_details(serde_json::json!({"limit_secs": timeout.as_secs_f64()}))
}

/// Reads the request's body within `limits` (decoded, charged to `charge`), checks its JSON
/// depth, and puts it back for the handler, decoded. Returns the body for those who need to
/// see it (the audit log).
pub async fn check(
    req: &mut ServiceRequest,
    limits: BodyLimits,
    charge: &mut BodyCharge,
) -> Result<Bytes, ApiError> {
    let limit = limits.bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let mut payload = std::mem::replace(req.parts_mut().1, actix_web::dev::Payload::None);
    // The buffer grows as bytes come, each growth charged first and never past what was
    // declared: a length promised but not sent holds no more than the first step, so a few
    // callers declaring the largest bodies and sending nothing cannot fill the process's budget.
    let ceiling = declared.map_or(limit, |n| n as usize);
    // `charged` is the buffer's size as charged; each growth is a buffer of exactly that size
    // (`reserve` would round it up to double, past what was charged).
    let mut charged = INITIAL_CAPACITY.min(ceiling);
    charge.grow(charged).map_err(budget_refusal)?;
    let mut body = BytesMut::with_capacity(charged);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => return Err(timed_out(limits.timeout)),
        };
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(ErrorCode::InvalidBody, e.to_string()))?;
        let needed = body.len() + chunk.len();
        if needed > limit {
            return Err(too_large(limit));
        }
        if needed > charged {
            let grown = needed.max(charged * 2).min(ceiling.max(needed));
            charge.grow(grown - charged).map_err(budget_refusal)?;
            let mut bigger = BytesMut::with_capacity(grown);
            bigger.extend_from_slice(&body);
            body = bigger;
            charged = grown;
        }
        body.extend_from_slice(&chunk);
    }
    let mut body = body.freeze();
    let encoding = req
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    if let Some(encoding) = encoding.filter(|e| !e.is_empty() && e != "identity") {
        body = decode_off_worker(body, encoding, limits, charge, deadline).await?;
        let headers = req.headers_mut();
        headers.remove(CONTENT_ENCODING);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let max_depth = limits.max_depth;
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

/// [`decode`] on a blocking thread, after the process's other decodes (waiting no later than
/// `deadline`), with the decoded bytes charged to the body.
async fn decode_off_worker(
    body: Bytes,
    encoding: String,
    limits: BodyLimits,
    charge: &mut BodyCharge,
    deadline: tokio::time::Instant,
) -> Result<Bytes, ApiError> {
    let _turn = match tokio::time::timeout_at(deadline, decoders().acquire()).await {
        Ok(Ok(turn)) => turn,
        Ok(Err(_)) | Err(_) => return Err(ApiError::busy()),
    };
    let limit = limits.bytes;
    let decoded = tokio::task::spawn_blocking(move || decode(&body, &encoding, limit))
        .await
        .map_err(|e| ApiError::internal(format!("decoding a body: {e}")))??;
    charge.grow(decoded.len()).map_err(budget_refusal)?;
    Ok(decoded)
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
    fn gzip_members_are_joined_up_to_a_cap() {
        let mut two = gzip(br#"{"a":"#);
        two.extend(gzip(br#"1}"#));
        assert_eq!(&decode(&two, "gzip", 100).unwrap()[..], br#"{"a":1}"#);
        // A megabyte of empty members: refused after the cap, not decoded one by one.
        let empty = gzip(b"");
        let many: Vec<u8> = empty.iter().copied().cycle().take(1 << 20).collect();
        let refused = decode(&many, "gzip", 1 << 20).unwrap_err();
        assert_eq!(refused.status(), 400, "{}", refused.message);
        assert!(
            refused.message.contains("gzip members"),
            "{}",
            refused.message
        );
        let exactly: Vec<u8> = empty
            .iter()
            .copied()
            .cycle()
            .take(empty.len() * MAX_GZIP_MEMBERS)
            .collect();
        assert!(decode(&exactly, "gzip", 100).unwrap().is_empty());
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

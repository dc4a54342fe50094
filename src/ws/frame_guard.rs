//! Refuses a client's frame by the length its header declares, before the payload arrives.
//!
//! actix's frame parser compares a frame's length with the codec's limit only once the whole
//! declared payload is buffered, so a header promising gigabytes had the session keep every byte
//! the client sent (a megabyte held per megabyte sent) until the idle timeout. [`FrameGuard`]
//! sits between the connection's body and the session's parser, follows the frame boundaries
//! as the bytes pass, and ends the stream with an error as soon as a header declares more than
//! the limit; the session then closes with 1009, as it does for a complete oversized frame.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures::Stream;

/// The longest frame header: two bytes, eight of extended length, four of mask.
const MAX_HEADER: usize = 14;

/// The client's bytes, passed through while each frame's declared length is within `max`.
pub struct FrameGuard<S> {
    inner: S,
    max: u64,
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to pass.
    remaining: u64,
    /// Set when a header declared too much, for the session to close with the right code.
    tripped: Arc<AtomicBool>,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, max: usize, tripped: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            max: max as u64,
            header: [0; MAX_HEADER],
            header_len: 0,
            remaining: 0,
            tripped,
        }
    }

    /// Follows `data` through headers and payloads; false once a header declares more than
    /// the limit.
    fn pass(&mut self, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                self.remaining -= n as u64;
                data = &data[n..];
                continue;
            }
            self.header[self.header_len] = data[0];
            self.header_len += 1;
            data = &data[1..];
            if let Some(length) = declared_length(&self.header[..self.header_len]) {
                if length > self.max {
                    return false;
                }
                self.remaining = length;
                self.header_len = 0;
            }
        }
        true
    }
}

/// The payload length a complete frame header declares; `None` while the header is not whole.
fn declared_length(header: &[u8]) -> Option<u64> {
    let [_, second, rest @ ..] = header else {
        return None;
    };
    let masked = second & 0x80 != 0;
    let (extended, length) = match second & 0x7f {
        126 => (2, None),
        127 => (8, None),
        short => (0, Some(u64::from(short))),
    };
    if rest.len() < extended + if masked { 4 } else { 0 } {
        return None;
    }
    length.or_else(|| {
        let mut bytes = [0u8; 8];
        bytes[8 - extended..].copy_from_slice(&rest[..extended]);
        Some(u64::from_be_bytes(bytes))
    })
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.tripped.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if self.pass(&chunk) {
                    Poll::Ready(Some(Ok(chunk)))
                } else {
                    self.tripped.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(max: usize) -> FrameGuard<futures::stream::Empty<Result<Bytes, PayloadError>>> {
        FrameGuard::new(futures::stream::empty(), max, Arc::default())
    }

    /// A masked client frame of `len` payload bytes (the payload not included).
    fn header(len: u64) -> Vec<u8> {
        let mut h = vec![0x81];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 126);
                h.extend((len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend(len.to_be_bytes());
            }
        }
        h.extend([1, 2, 3, 4]);
        h
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_cut_and_a_header_over_it_stops_the_stream() {
        let mut bytes = Vec::new();
        for len in [0u64, 5, 125, 126, 300, 65_535, 65_536] {
            bytes.extend(header(len));
            bytes.extend(std::iter::repeat_n(7u8, len as usize));
        }
        for cut in [1, 2, 3, 7, 13, 1_000, bytes.len()] {
            let mut g = guard(65_536);
            assert!(bytes.chunks(cut).all(|c| g.pass(c)), "cut into {cut}");
            assert_eq!((g.remaining, g.header_len), (0, 0));
        }
        for declared in [65_537u64, 9_000_000_000_000, u64::MAX >> 1] {
            let mut g = guard(65_536);
            let h = header(declared);
            // Refused once the header is whole, not one payload byte later.
            assert!(g.pass(&h[..h.len() - 1]));
            assert!(!g.pass(&h[h.len() - 1..]), "{declared}");
        }
    }
}

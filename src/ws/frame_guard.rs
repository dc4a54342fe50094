//! Refuses a client's frame by the length its header declares, before the payload arrives.
//!
//! actix's frame parser compares a frame's length with the codec's limit only once the whole
//! declared payload is buffered, so a header promising gigabytes had the session keep every byte
//! the client sent (a megabyte held per megabyte sent) until the idle timeout. [`FrameGuard`]
//! sits between the connection's body and the session's parser, follows the frame boundaries
//! as the bytes pass, and ends the stream with an error as soon as a header declares more than
//! the limit; the session then closes with 1009, as it does for a complete oversized frame.
//!
//! It also holds the client back. actix's frame reader takes every chunk the connection has
//! ready into its buffer while the session handles sixteen frames a poll, so a client sending
//! tiny frames (a pong is six bytes) faster than they are handled grew that buffer without
//! bound. The guard counts the whole frames it lets through, the session counts those it
//! handles ([`Intake::handled_one`]), and while more than [`MAX_FRAMES_AHEAD`] wait the guard
//! takes nothing more: the connection's own buffers fill and TCP slows the client down.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures::task::AtomicWaker;
use futures::Stream;

/// The longest frame header: two bytes, eight of extended length, four of mask.
const MAX_HEADER: usize = 14;

/// Whole frames let through and not yet handled, past which the guard stops reading: what one
/// connection can have waiting is this many frames (each within the frame limit) and one chunk.
pub const MAX_FRAMES_AHEAD: u64 = 64;

/// What the guard and its session share.
#[derive(Debug, Default)]
pub struct Intake {
    /// Set when a header declared too much, for the session to close with the right code.
    tripped: AtomicBool,
    passed: AtomicU64,
    handled: AtomicU64,
    /// The guard's task, waiting for the session to catch up.
    waiting: AtomicWaker,
}

impl Intake {
    /// Whether a frame was refused by its declared length.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    /// Counts one frame (or frame error) the session has handled.
    pub fn handled_one(&self) {
        self.handled.fetch_add(1, Ordering::AcqRel);
        self.waiting.wake();
    }

    fn ahead(&self) -> u64 {
        let handled = self.handled.load(Ordering::Acquire);
        self.passed.load(Ordering::Acquire).saturating_sub(handled)
    }
}

/// The client's bytes, passed through while each frame's declared length is within `max` and
/// the session keeps up.
pub struct FrameGuard<S> {
    inner: S,
    max: u64,
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to pass.
    remaining: u64,
    intake: Arc<Intake>,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, max: usize, intake: Arc<Intake>) -> Self {
        Self {
            inner,
            max: max as u64,
            header: [0; MAX_HEADER],
            header_len: 0,
            remaining: 0,
            intake,
        }
    }

    /// Follows `data` through headers and payloads, counting the frames it completes; false
    /// once a header declares more than the limit.
    fn pass(&mut self, mut data: &[u8]) -> bool {
        let mut whole = 0;
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                self.remaining -= n as u64;
                data = &data[n..];
                whole += u64::from(self.remaining == 0);
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
                whole += u64::from(length == 0);
            }
        }
        self.intake.passed.fetch_add(whole, Ordering::AcqRel);
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
        if self.intake.tripped() {
            return Poll::Ready(None);
        }
        if self.intake.ahead() > MAX_FRAMES_AHEAD {
            // Registered before the second look, so a frame handled in between still wakes us.
            self.intake.waiting.register(cx.waker());
            if self.intake.ahead() > MAX_FRAMES_AHEAD {
                return Poll::Pending;
            }
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if self.pass(&chunk) {
                    Poll::Ready(Some(Ok(chunk)))
                } else {
                    self.intake.tripped.store(true, Ordering::Relaxed);
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

    fn passed(g: &FrameGuard<impl Sized>) -> u64 {
        g.intake.passed.load(Ordering::Relaxed)
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
            assert_eq!(
                passed(&g),
                7,
                "every whole frame counted once, cut into {cut}"
            );
        }
        for declared in [65_537u64, 9_000_000_000_000, u64::MAX >> 1] {
            let mut g = guard(65_536);
            let h = header(declared);
            // Refused once the header is whole, not one payload byte later.
            assert!(g.pass(&h[..h.len() - 1]));
            assert!(!g.pass(&h[h.len() - 1..]), "{declared}");
        }
    }

    #[test]
    fn the_guard_takes_nothing_more_while_the_session_is_behind_and_resumes_when_it_catches_up() {
        use futures::task::noop_waker_ref;
        // 200 pongs in one chunk, then one more chunk.
        let pongs: Vec<u8> = (0..200).flat_map(|_| header(0)).collect();
        let chunks = vec![Ok(Bytes::from(pongs)), Ok(Bytes::from(header(0)))];
        let intake = Arc::new(Intake::default());
        let mut g = FrameGuard::new(futures::stream::iter(chunks), 1024, intake.clone());
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(matches!(
            Pin::new(&mut g).poll_next(&mut cx),
            Poll::Ready(Some(Ok(_)))
        ));
        assert_eq!(intake.ahead(), 200);
        assert!(Pin::new(&mut g).poll_next(&mut cx).is_pending());
        for _ in 0..200 - MAX_FRAMES_AHEAD {
            intake.handled_one();
        }
        assert!(matches!(
            Pin::new(&mut g).poll_next(&mut cx),
            Poll::Ready(Some(Ok(_)))
        ));
        assert_eq!(intake.ahead(), MAX_FRAMES_AHEAD + 1);
    }
}

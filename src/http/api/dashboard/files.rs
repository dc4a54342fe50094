//! The build's files, each read from disk once and then answered from memory as shared bytes:
//! a client that asks for the dashboard and never reads its answer holds a reference to the
//! one copy and the slice its connection is writing, not a copy of its own (actix copies a
//! response body into the connection's write buffer one chunk at a time, so the body is given
//! in [`Slices`]; read per request and given whole, a few hundred clients stalled on a 265 KB
//! bundle held as many copies). Each request still looks at the file's size and
//! modification time, so a new build is served at once; its stamp is the `ETag` a browser
//! revalidates with, answered `304 Not Modified` while it holds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;

/// What the files held may take in all; past it the next file read starts the table afresh
/// (rebuilds leave their old hashed names behind, and a build directory may hold anything).
const MAX_HELD_BYTES: usize = 64 << 20;
/// A file larger than this is read for its request and not kept.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// A file as read, with the stamp of the version read.
#[derive(Clone)]
pub struct Built {
    pub bytes: Bytes,
    /// A strong `ETag`: size and modification time of the version read.
    pub etag: String,
}

#[derive(Default)]
pub struct Files {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    files: HashMap<PathBuf, Built>,
    bytes: usize,
}

fn stamp(len: u64, modified: Option<SystemTime>) -> String {
    let nanos = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

impl Files {
    /// The file at `path` as it is on disk now; `None` when it is not a readable file.
    pub async fn get(&self, path: &Path) -> Option<Built> {
        let meta = tokio::fs::metadata(path).await.ok()?;
        if !meta.is_file() {
            return None;
        }
        let etag = stamp(meta.len(), meta.modified().ok());
        if let Some(built) = self.held().files.get(path).filter(|b| b.etag == etag) {
            return Some(built.clone());
        }
        let bytes = Bytes::from(tokio::fs::read(path).await.ok()?);
        // Written between the look and the read: stamp what was read as unknown, so the next
        // request reads it again.
        let etag = if bytes.len() as u64 == meta.len() {
            etag
        } else {
            stamp(bytes.len() as u64, None)
        };
        let built = Built { bytes, etag };
        if meta.len() <= MAX_FILE_BYTES {
            let mut held = self.held();
            if held.bytes + built.bytes.len() > MAX_HELD_BYTES {
                *held = Held::default();
            }
            held.bytes += built.bytes.len();
            if let Some(old) = held.files.insert(path.to_path_buf(), built.clone()) {
                held.bytes -= old.bytes.len();
            }
        }
        Some(built)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a connection copies into its write buffer at a time.
const SLICE_BYTES: usize = 16 << 10;

/// A held file as a response body, given out a slice at a time.
pub struct Slices {
    bytes: Bytes,
    at: usize,
}

impl Slices {
    pub fn new(bytes: Bytes) -> Slices {
        Slices { bytes, at: 0 }
    }
}

impl MessageBody for Slices {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized((self.bytes.len() - self.at) as u64)
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.at >= self.bytes.len() {
            return Poll::Ready(None);
        }
        let end = (self.at + SLICE_BYTES).min(self.bytes.len());
        let slice = self.bytes.slice(self.at..end);
        self.at = end;
        Poll::Ready(Some(Ok(slice)))
    }
}

/// Whether an `If-None-Match` value names `etag` (or is `*`); weak tags compare by their value.
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim())
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_is_read_as_a_list() {
        assert!(matches("\"a-1\"", "\"a-1\""));
        assert!(matches("\"x\", W/\"a-1\"", "\"a-1\""));
        assert!(matches("*", "\"a-1\""));
        assert!(!matches("\"a-2\"", "\"a-1\""));
        assert!(!matches("", "\"a-1\""));
    }

    #[actix_web::test]
    async fn a_body_is_given_in_slices_of_the_one_copy() {
        let bytes = Bytes::from(vec![7u8; SLICE_BYTES * 2 + 5]);
        let mut body = Slices::new(bytes.clone());
        assert_eq!(body.size(), BodySize::Sized(bytes.len() as u64));
        let mut lengths = Vec::new();
        while let Some(slice) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
            let slice = slice.unwrap();
            assert!(bytes.as_ptr_range().contains(&slice.as_ptr()));
            lengths.push(slice.len());
        }
        assert_eq!(lengths, [SLICE_BYTES, SLICE_BYTES, 5]);
    }

    #[tokio::test]
    async fn a_file_is_held_once_and_read_again_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("pulse-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("index.html");
        std::fs::write(&path, "first").unwrap();
        let files = Files::default();
        let first = files.get(&path).await.unwrap();
        let again = files.get(&path).await.unwrap();
        assert_eq!(first.bytes, "first");
        assert_eq!(first.etag, again.etag);
        // The same allocation, not a copy.
        assert_eq!(first.bytes.as_ptr(), again.bytes.as_ptr());
        std::fs::write(&path, "second, longer").unwrap();
        let changed = files.get(&path).await.unwrap();
        assert_eq!(changed.bytes, "second, longer");
        assert_ne!(changed.etag, first.etag);
        assert!(files.get(&dir).await.is_none());
        assert!(files.get(&dir.join("missing")).await.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Gives memory the allocator holds free back to the kernel.
//!
//! The model's tensors are allocated and freed on every batch. After a burst of full batches
//! glibc keeps the freed pages in its arenas, so resident memory would stay at the burst's
//! high-water mark for good. A background thread calls `malloc_trim(0)` every few seconds,
//! which returns free pages from every arena; it takes a few milliseconds on a heap of a few
//! hundred megabytes.

use std::sync::Once;
use std::time::Duration;

/// How often free memory is handed back.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Starts the trimming thread, once per process; later calls do nothing.
pub fn start_trimming() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("pulse-memory-trim".into())
            .spawn(|| loop {
                std::thread::sleep(TRIM_INTERVAL);
                trim();
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the memory trimming thread");
        }
    });
}

/// Returns the free pages of every malloc arena to the kernel.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

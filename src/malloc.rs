//! Bounds glibc's malloc arenas before any thread starts.
//!
//! glibc gives each thread that allocates its own arena (up to eight per core), and memory
//! freed by another thread goes back to the arena that allocated it. Pulse hands every batch
//! from thread to thread (reader, analyzer workers, store, broadcaster), so with the default
//! the arenas fragment and resident memory creeps up in steps over a long run. Two arenas
//! (the usual `MALLOC_ARENA_MAX=2`) keep it flat for a few percent of throughput at most here. An
//! explicit `MALLOC_ARENA_MAX` in the environment wins.

/// Arenas Pulse asks glibc for unless `MALLOC_ARENA_MAX` says otherwise.
pub const ARENAS: i32 = 2;

/// Applies [`ARENAS`]; call first thing in `main`, before any thread exists.
pub fn bound_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc parameter; no thread allocates concurrently
        // this early.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

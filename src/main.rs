fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    pulse::cli::main()
}

/// glibc gives each thread that allocates its own malloc arena (up to eight per core), and memory
/// freed in one arena is not reused by another thread's allocations. With ONNX Runtime's worker
/// threads that held 60 to 80 MB more at peak under load, for no gain in speed (see
/// docs/benchmarks.md, "The model and alerts"). `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` set by
/// whoever runs Pulse take precedence.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    let set_outside = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
    if !set_outside {
        // SAFETY: mallopt only sets an allocator parameter; this runs first thing in main,
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> std::process::ExitCode {
    tune_malloc();
    pulse::cli::main()
}

/// glibc gives each thread that allocates its own malloc arena (up to eight per core), and memory
/// freed in one arena is not reused by another thread's allocations. With ONNX Runtime's worker
/// threads that held 60 to 80 MB more at peak under load, for no gain in speed (see
/// docs/benchmarks.md, "The model and alerts").
///
/// The two thresholds stop glibc from handing an inference's activations back to the kernel as
/// soon as they are freed: blocks up to 32 MB come from the heap instead of their own mapping,
/// and a freed heap top is kept instead of being trimmed at 128 KB, so the next batch does not
/// fault the same pages in again (raw inference 18% faster, Pulse end to end 5-12%). The analyzer
/// workers still return free pages themselves, at most once a second while busy.
///
/// Whatever `MALLOC_*` variable or `GLIBC_TUNABLES` entry whoever runs Pulse sets for one of
/// these takes precedence.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let set_outside = |variable: &str, tunable: &str| {
        std::env::var_os(variable).is_some() || tunables.contains(tunable)
    };
    // SAFETY: mallopt only sets an allocator parameter; this runs first thing in main, before
    // any other thread exists.
    unsafe {
        if !set_outside("MALLOC_ARENA_MAX", "arena_max") {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
        if !set_outside("MALLOC_MMAP_THRESHOLD_", "mmap_threshold")
            && !set_outside("MALLOC_TRIM_THRESHOLD_", "trim_threshold")
        {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

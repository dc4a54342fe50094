//! The process's resident memory under the name Prometheus client libraries use, and the memory
//! limit of its cgroup beside it, so an alert can say "near the limit" without knowing how the
//! process was deployed.

use std::path::Path;

use super::names::{PROCESS_MEMORY_LIMIT, PROCESS_RESIDENT_MEMORY};

/// Samples both figures into their gauges (called at start and on every metrics upkeep).
pub fn record() {
    if let Some(rss) = resident_bytes() {
        metrics::gauge!(PROCESS_RESIDENT_MEMORY).set(rss as f64);
    }
    metrics::gauge!(PROCESS_MEMORY_LIMIT).set(memory_limit_bytes().unwrap_or(0) as f64);
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// The limit of cgroup v2 (`memory.max`) or v1 (`memory.limit_in_bytes`), if one is set.
fn memory_limit_bytes() -> Option<u64> {
    let v2 = Path::new("/sys/fs/cgroup/memory.max");
    let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    [v2, v1]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| parse_limit(&s))
}

/// `max`, and v1's "no limit" (a page-rounded `i64::MAX`), mean none.
fn parse_limit(raw: &str) -> Option<u64> {
    let limit: u64 = raw.trim().parse().ok()?;
    (limit < 1 << 60).then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_either_cgroup_version() {
        assert_eq!(parse_limit("1073741824\n"), Some(1 << 30));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_resident_size_is_read() {
        assert!(resident_bytes().is_some_and(|b| b > 1 << 20));
    }
}

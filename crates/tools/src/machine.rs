//! What a report records of the machine it ran on: the CPU, how busy the machine was, and the
//! memory of processes (from `/proc`).

use crate::config::Settings;

/// The 1-minute load average (`/proc/loadavg`), to record how busy the machine was during a
/// run on a shared host; 0 when unreadable.
pub(crate) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// This machine for a report: CPU model, cores, and the vector extensions model speed
/// depends on (from `/proc/cpuinfo`).
pub(crate) fn machine_description() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let flags = field("flags");
    // Every extension is named, present or not, so two reports from different machines line
    // up at a glance.
    let extensions: Vec<String> = ["avx2", "avx512f", "avx512_vnni", "avx_vnni"]
        .into_iter()
        .map(|f| {
            let have = flags.split_whitespace().any(|x| x == f);
            format!("{f} {}", if have { "yes" } else { "no" })
        })
        .collect();
    format!(
        "{}, {} cores, {}",
        field("model name"),
        Settings::threads_or_cores(0),
        extensions.join(", ")
    )
}

/// Peak resident memory (VmHWM) of this process, in MB; 0 when unreadable.
pub(crate) fn peak_rss_mb() -> f64 {
    peak_rss_mb_in("/proc/self/status")
}

/// Resident memory (VmRSS) of process `pid` now, in MB; 0 when unreadable.
pub(crate) fn rss_mb_of(pid: u32) -> f64 {
    status_mb(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Peak resident memory (VmHWM) from a `/proc/<pid>/status` file, in MB; 0 when unreadable.
pub(crate) fn peak_rss_mb_in(status: &str) -> f64 {
    status_mb(status, "VmHWM:")
}

/// A memory field of a `/proc/<pid>/status` file (`VmRSS:   1234 kB`), in MB; 0 when the file
/// or the field cannot be read.
fn status_mb(status: &str, field: &str) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

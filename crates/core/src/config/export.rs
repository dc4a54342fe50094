//! Settings of export jobs (docs/search.md): how long their links live, what each may hold
//! and how a process runs them.

use serde::{Deserialize, Serialize};

/// Exports of searches run as jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportSettings {
    /// Hours a finished export's download link works; then its file is removed.
    pub link_hours: u32,
    /// Export jobs one caller may have queued or running at once.
    pub max_jobs_per_caller: i64,
    /// Export jobs queued or running at once in the whole group.
    pub max_jobs: i64,
    /// Most rows one export job writes; a larger search fails with the reason.
    pub max_rows: i64,
    /// Most megabytes the stored exports may hold together; a new job is refused, and a
    /// running one fails, past it.
    pub max_stored_mb: i64,
    /// The same for one caller's stored exports, so one caller cannot take the whole store.
    pub max_stored_mb_per_caller: i64,
    /// Posts read, written and committed at a time.
    pub chunk_rows: i64,
    /// Jobs this process runs at once; 0 for a process that only serves the API.
    pub workers: usize,
    /// Seconds a process holds a job between chunks before another process may take it over.
    pub lease_secs: u64,
    /// Share of its time a job works while the pipeline has entries in flight (it rests in
    /// proportion after each chunk); with nothing in flight it works without rest.
    pub busy_share: f64,
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings {
            link_hours: 24,
            max_jobs_per_caller: 2,
            max_jobs: 20,
            max_rows: 20_000_000,
            max_stored_mb: 8_192,
            max_stored_mb_per_caller: 2_048,
            chunk_rows: 2_000,
            workers: 1,
            lease_secs: 30,
            busy_share: 0.3,
        }
    }
}

impl ExportSettings {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        super::check_share("export.busy_share", self.busy_share)?;
        if self.link_hours == 0
            || self.chunk_rows <= 0
            || self.lease_secs == 0
            || self.max_jobs <= 0
            || self.max_jobs_per_caller <= 0
            || self.max_rows <= 0
            || self.max_stored_mb <= 0
            || self.max_stored_mb_per_caller <= 0
        {
            return Err(
                "export.link_hours, export.chunk_rows, export.lease_secs, export.max_jobs, \
                 export.max_jobs_per_caller, export.max_rows, export.max_stored_mb and \
                 export.max_stored_mb_per_caller must be above 0"
                    .into(),
            );
        }
        Ok(())
    }
}

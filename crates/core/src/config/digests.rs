//! Settings of digests (docs/digests.md): how often a process looks for periods that ended,
//! and which of them it still makes.

use serde::{Deserialize, Serialize};

/// Most periods `digests.catch_up` may name: retention keeps a scheduled digest whose period
/// is this recent (`crate::db::retention`).
pub const MAX_CATCH_UP: u32 = 100;

/// Scheduled digests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DigestSettings {
    /// Seconds between two looks for schedules whose period ended: the most a digest waits
    /// after its period before it is made.
    pub poll_secs: u64,
    /// A period made later than this many seconds after its end is marked late.
    pub late_after_secs: u64,
    /// Periods of one schedule made when a process comes back after missing them, the
    /// newest first; older ones are not sent.
    pub catch_up: u32,
}

impl Default for DigestSettings {
    fn default() -> Self {
        DigestSettings {
            poll_secs: 30,
            late_after_secs: 600,
            catch_up: 7,
        }
    }
}

impl DigestSettings {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_CATCH_UP).contains(&self.catch_up) {
            return Err(format!(
                "digests.catch_up must be between 1 and {MAX_CATCH_UP}, not {}",
                self.catch_up
            ));
        }
        Ok(())
    }
}

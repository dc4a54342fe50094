//! The consumer group's backlog as `POST /api/v1/events` sees it, read from Redis at most every
//! [`REFRESH`] (and raised by what this process appended since), so a flood of requests costs
//! Redis a few reads a second and cannot outrun the figure by more than a moment's requests.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use fred::clients::Client;

use crate::config::Settings;
use crate::streams::group::group_stats;

/// How long a read of the backlog is used.
pub const REFRESH: Duration = Duration::from_millis(250);

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Backlog {
    last: Mutex<Option<(Instant, u64)>>,
}

impl Backlog {
    /// Entries the group has to read or acknowledge, as of at most [`REFRESH`] ago.
    pub async fn entries(
        &self,
        redis: &Client,
        settings: &Settings,
    ) -> Result<u64, fred::error::Error> {
        if let Some((at, n)) = *self.last.lock().unwrap_or_else(PoisonError::into_inner) {
            if at.elapsed() < REFRESH {
                return Ok(n);
            }
        }
        let n = group_stats(redis, settings).await?.backlog().max(0) as u64;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), n));
        Ok(n)
    }

    /// Counts `n` entries just appended, until the next read.
    pub fn appended(&self, n: u64) {
        if let Some((_, entries)) = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            *entries += n;
        }
    }
}

//! Settings of search (docs/search.md): how many matches facets count one by one before they
//! are estimated from a sample.

use serde::{Deserialize, Serialize};

/// Search's facets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchSettings {
    /// Facets count every match of a search up to about this many; above, they are estimated
    /// from a sample of the matches (a request may still ask for `exact=true`).
    pub exact_facets_up_to: i64,
    /// About how many matches a sampled facet count reads.
    pub facet_sample: i64,
    /// How long a page reads candidates, in milliseconds, before it ends early with a cursor:
    /// each statement has the API's statement timeout, and a page that must check its
    /// candidates one by one could otherwise run 40 of them on one connection. 0 reads one
    /// batch a page.
    pub page_time_ms: u64,
}

impl Default for SearchSettings {
    fn default() -> Self {
        SearchSettings {
            exact_facets_up_to: 50_000,
            facet_sample: 10_000,
            page_time_ms: 5_000,
        }
    }
}

impl SearchSettings {
    /// Refuses settings that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.exact_facets_up_to < 0 || self.facet_sample <= 0 {
            return Err(
                "search.exact_facets_up_to must be at least 0 and search.facet_sample above 0"
                    .into(),
            );
        }
        Ok(())
    }
}

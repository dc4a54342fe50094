//! Topics: what a team listens for, written in one query language (docs/topics.md), and every
//! active topic compiled into one index that matches a post against all of them at once.
//!
//! - [`syntax`]: the grammar, its limits and its errors (position, what was expected).
//! - [`text`]: how posts and queries are read alike (folding, tokens, spaceless scripts).
//! - [`set`]: the compiled index and the matching.
//!
//! [`LiveTopics`] holds the set every part of a process matches with; it is replaced whole when
//! topics change, so a post is always matched against one consistent set.

#[doc(hidden)]
pub mod cases;
pub mod relevance;
pub mod set;
pub mod syntax;
pub mod text;

use std::sync::{Arc, RwLock};

pub use set::{PostFields, TopicDef, TopicMatch, TopicSet, Verdict};
pub use syntax::{parse, Expr, Field, QueryError};

/// The set of active topics a process matches posts with, their relevance filters, and the
/// revision they were built from.
#[derive(Debug, Default)]
pub struct LiveTopics {
    current: RwLock<Current>,
}

#[derive(Debug, Default)]
struct Current {
    revision: u64,
    set: Arc<TopicSet>,
    filters: Arc<relevance::Filters>,
}

impl LiveTopics {
    pub fn new() -> Arc<LiveTopics> {
        Arc::new(LiveTopics::default())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The set to match with now.
    pub fn get(&self) -> Arc<TopicSet> {
        self.read().set.clone()
    }

    /// The set and the relevance filters to match with now, read together.
    pub fn with_filters(&self) -> (Arc<TopicSet>, Arc<relevance::Filters>) {
        let current = self.read();
        (current.set.clone(), current.filters.clone())
    }

    /// The revision of the topics the set was built from (0 before the first).
    pub fn revision(&self) -> u64 {
        self.read().revision
    }

    /// Replaces the set with one built from topics at `revision`, with no filters.
    pub fn replace(&self, revision: u64, set: TopicSet) {
        self.replace_with(revision, set, relevance::Filters::default());
    }

    /// Replaces the set and the filters with ones built from topics at `revision`.
    pub fn replace_with(&self, revision: u64, set: TopicSet, filters: relevance::Filters) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Current {
            revision,
            set: Arc::new(set),
            filters: Arc::new(filters),
        };
    }
}

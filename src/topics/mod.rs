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

/// The set of active topics a process matches posts with, and the revision it was built from.
#[derive(Debug, Default)]
pub struct LiveTopics {
    current: RwLock<(u64, Arc<TopicSet>)>,
}

impl LiveTopics {
    pub fn new() -> Arc<LiveTopics> {
        Arc::new(LiveTopics::default())
    }

    /// The set to match with now.
    pub fn get(&self) -> Arc<TopicSet> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .clone()
    }

    /// The revision of the topics the set was built from (0 before the first).
    pub fn revision(&self) -> u64 {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }

    /// Replaces the set with one built from topics at `revision`.
    pub fn replace(&self, revision: u64, set: TopicSet) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (revision, Arc::new(set));
    }
}

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

use rustc_hash::FxHashMap;

pub use set::{PostFields, TopicDef, TopicMatch, TopicSet, Verdict};
pub use syntax::{parse, Expr, Field, QueryError};

/// Each topic a set was built from, by id: the version of its query and the query parsed
/// (`None`: a query that no longer parses, left out of the set). A load of changed topics reads
/// and parses again only the queries whose version it does not hold.
pub type ParsedTopics = FxHashMap<i64, (i32, Option<Arc<Expr>>)>;

/// The set of active topics a process matches posts with, their relevance filters, and the
/// revision they were built from.
#[derive(Debug, Default)]
pub struct LiveTopics {
    current: RwLock<Current>,
}

#[derive(Debug, Default)]
struct Current {
    revision: u64,
    loaded: Loaded,
}

/// What a process holds of its topics.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub set: Arc<TopicSet>,
    pub filters: Arc<relevance::Filters>,
    /// What `set` was built from; `None` for a set not built from the stored topics (put in
    /// whole by [`LiveTopics::replace`]), which the next load builds again from every query.
    pub parsed: Option<Arc<ParsedTopics>>,
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
        self.read().loaded.set.clone()
    }

    /// The set and the relevance filters to match with now, read together.
    pub fn with_filters(&self) -> (Arc<TopicSet>, Arc<relevance::Filters>) {
        let current = self.read();
        (current.loaded.set.clone(), current.loaded.filters.clone())
    }

    /// Everything held now, read together: what a load of changed topics starts from.
    pub fn loaded(&self) -> Loaded {
        self.read().loaded.clone()
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
        self.install(
            revision,
            Loaded {
                set: Arc::new(set),
                filters: Arc::new(filters),
                parsed: None,
            },
        );
    }

    /// Replaces everything held with `loaded`, loaded from topics at `revision`.
    pub fn install(&self, revision: u64, loaded: Loaded) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Current { revision, loaded };
    }
}

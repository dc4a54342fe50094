//! Search over every stored post, in the topics query language: each post is stored with a
//! vector of what it holds ([`vector`]), a query becomes a lookup in the vectors' index
//! ([`plan`]), and what the lookup cannot decide exactly is checked against the query itself,
//! so results are the posts the query matches, as a topic would match them.

pub mod highlight;
pub mod plan;
pub mod vector;

pub use highlight::{highlights, PageHighlights};
pub use plan::{plan, Plan};

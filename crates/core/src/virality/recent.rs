//! The metadata of recent posts that have no engagement yet, bounded, oldest dropped first.
//!
//! Entries leave in arrival order as fast as new ones come in, so the hash table fills with
//! tombstones; when they use up its spare room, a table holding more than half of its capacity
//! doubles instead of rehashing in place. Sized for twice the bound from the start, the table
//! never grows: its memory is reserved once (and becomes resident only as it fills), and no
//! insert stalls the tracker copying the whole table.

use std::collections::{HashMap, VecDeque};

use super::PostMeta;

/// Bounded metadata of recent posts, keyed by post id.
#[derive(Debug)]
pub struct RecentPosts {
    meta: HashMap<String, PostMeta>,
    /// Ids in arrival order; may still hold ids already taken out of `meta`.
    order: VecDeque<String>,
    bound: usize,
}

impl RecentPosts {
    /// Holds at most `bound` posts (at least one).
    pub fn new(bound: usize) -> Self {
        let bound = bound.max(1);
        Self {
            meta: HashMap::with_capacity(bound.saturating_mul(2)),
            order: VecDeque::with_capacity(bound + 1),
            bound,
        }
    }

    /// Remembers `meta` for post `id`, dropping the oldest posts beyond the bound.
    pub fn insert(&mut self, id: &str, meta: PostMeta) {
        if self.meta.insert(id.to_string(), meta).is_none() {
            self.order.push_back(id.to_string());
        }
        while self.order.len() > self.bound {
            if let Some(old) = self.order.pop_front() {
                self.meta.remove(&old);
            }
        }
    }

    /// Whether post `id` is remembered.
    pub fn contains(&self, id: &str) -> bool {
        self.meta.contains_key(id)
    }

    /// Takes the metadata of post `id` out, when remembered.
    pub fn take(&mut self, id: &str) -> Option<PostMeta> {
        self.meta.remove(id)
    }

    /// Forgets every post, keeping the reserved room.
    pub fn clear(&mut self) {
        self.meta.clear();
        self.order.clear();
    }

    /// Posts remembered.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether no post is remembered.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Posts the table holds without growing.
    pub fn capacity(&self) -> usize {
        self.meta.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(followers: u64) -> PostMeta {
        PostMeta {
            author_followers: followers,
            ..PostMeta::default()
        }
    }

    #[test]
    fn keeps_the_newest_posts_up_to_the_bound() {
        let mut recent = RecentPosts::new(3);
        for i in 0..5 {
            recent.insert(&format!("p{i}"), meta(i));
        }
        assert_eq!(recent.len(), 3);
        assert!(!recent.contains("p0") && !recent.contains("p1"));
        assert_eq!(recent.take("p4").map(|m| m.author_followers), Some(4));
        assert!(!recent.contains("p4"));
        assert_eq!(recent.len(), 2);
    }

    #[test]
    fn a_post_seen_twice_is_held_once() {
        let mut recent = RecentPosts::new(2);
        recent.insert("a", meta(1));
        recent.insert("a", meta(2));
        recent.insert("b", meta(3));
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.take("a").map(|m| m.author_followers), Some(2));
    }

    #[test]
    fn the_table_never_grows_under_churn() {
        let bound = 1_000;
        let mut recent = RecentPosts::new(bound);
        let reserved = recent.capacity();
        assert!(reserved >= 2 * bound);
        // Deleted slots count against `capacity()` until the next rehash, so under churn it
        // may dip below the reserve; a table that doubled would report about twice as much.
        let mut largest = 0;
        for i in 0..50 * bound as u64 {
            recent.insert(&format!("post-{i}"), meta(i));
            if i % 7 == 0 {
                recent.take(&format!("post-{}", i / 2));
            }
            largest = largest.max(recent.capacity());
        }
        assert!(recent.len() <= bound);
        assert!(largest <= reserved, "grew from {reserved} to {largest}");
        recent.clear();
        assert!(recent.is_empty());
        assert_eq!(recent.capacity(), reserved);
    }
}

//! One post's share cascade: the shares seen so far, the tree they form through `via`, and
//! its structure (depth, breadth, structural virality) computed in O(n).
//!
//! The tree's root is the post; a share hangs under the share named by its `via`, or under
//! the root when it has none. A share whose `via` names a share not seen yet waits as an
//! orphan (counted under the root) and is re-linked when that share arrives, so the tree of
//! a set of shares does not depend on their arrival order.

use std::collections::HashMap;

/// Marks a share hanging directly under the post.
pub const ROOT: u32 = u32::MAX;

/// One share in a cascade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShareNode {
    /// Event time, Unix seconds.
    pub at: f64,
    /// Followers of the sharer, when known.
    pub followers: Option<u64>,
    /// Index of the parent share, or [`ROOT`].
    pub parent: u32,
    /// Shares this node stands for (an event's `count`); the tree counts the node once.
    pub weight: u32,
}

/// The structure of a share tree.
#[derive(
    Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Structure {
    /// Nodes in the tree, the post included.
    #[serde(skip_serializing, default)]
    pub nodes: u64,
    /// Longest path from the post to a share (0 without shares).
    pub depth: u32,
    /// Most shares at one depth.
    pub breadth: u64,
    /// Mean distance between two nodes of the tree (Goel et al. 2016); 0 below two nodes.
    pub structural_virality: f64,
}

/// The share cascade of one post.
#[derive(Debug, Default, Clone)]
pub struct ShareTree {
    nodes: Vec<ShareNode>,
    ids: HashMap<Box<str>, u32>,
    /// `via` id -> shares waiting for it.
    orphans: HashMap<Box<str>, Vec<u32>>,
    /// The subtrees hanging directly under the post, as a union-find over the shares: a
    /// share waiting on a later one joins it only when it is not the top of that later
    /// share's own subtree, and asking for that top by walking parents cost a chain's
    /// length for each link, quadratic in a chain whose every share was waited on.
    subtrees: Subtrees,
    /// Shares past the node cap: counted, not kept.
    untracked: u64,
    untracked_reach: u64,
    max_nodes: usize,
}

impl ShareTree {
    /// An empty cascade keeping at most `max_nodes` shares (further ones are only counted).
    pub fn new(max_nodes: usize) -> Self {
        ShareTree {
            max_nodes: max_nodes.max(1),
            ..Default::default()
        }
    }

    /// The shares kept, in arrival order.
    pub fn nodes(&self) -> &[ShareNode] {
        &self.nodes
    }

    /// Shares seen (weights included, untracked included).
    pub fn shares(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.weight)).sum::<u64>() + self.untracked
    }

    /// Followers of every sharer (the audience the shares reached).
    pub fn reach(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.followers.unwrap_or(0).saturating_mul(u64::from(n.weight)))
            .fold(self.untracked_reach, u64::saturating_add)
    }

    /// Shares waiting for the share their `via` names.
    pub fn orphans(&self) -> usize {
        self.orphans.values().map(Vec::len).sum()
    }

    /// Adds a share. `id` dedupes (a share seen twice counts once) and is what later
    /// shares' `via` point at. Returns false for a duplicate.
    pub fn add(
        &mut self,
        id: Option<&str>,
        via: Option<&str>,
        at: f64,
        followers: Option<u64>,
        weight: u32,
    ) -> bool {
        if let Some(id) = id {
            if self.ids.contains_key(id) {
                return false;
            }
        }
        let weight = weight.max(1);
        if self.nodes.len() >= self.max_nodes {
            self.untracked = self.untracked.saturating_add(u64::from(weight));
            self.untracked_reach = self
                .untracked_reach
                .saturating_add(followers.unwrap_or(0).saturating_mul(u64::from(weight)));
            return true;
        }
        let index = self.nodes.len() as u32;
        let mut parent = ROOT;
        if let Some(via) = via.filter(|v| Some(*v) != id) {
            match self.ids.get(via) {
                Some(&p) => parent = p,
                None => self.orphans.entry(via.into()).or_default().push(index),
            }
        }
        self.nodes.push(ShareNode {
            at: if at.is_finite() { at } else { 0.0 },
            followers,
            parent,
            weight,
        });
        self.subtrees.push(parent);
        if let Some(id) = id {
            self.ids.insert(id.into(), index);
            if let Some(children) = self.orphans.remove(id) {
                // A cycle of `via`s would cut shares off the root; a child that is this share
                // or one of its ancestors stays under the root. A waiting child hangs under
                // the post, so it is one of those only when it is the top of this share's
                // subtree: one look-up for all the children, and none walks the chain.
                let top = self.subtrees.top(index);
                for child in children {
                    debug_assert_eq!(self.nodes[child as usize].parent, ROOT);
                    if child != top {
                        self.nodes[child as usize].parent = index;
                        self.subtrees.hang(child, index);
                    }
                }
            }
        }
        true
    }

    /// Depth, breadth and structural virality, in O(n).
    pub fn structure(&self) -> Structure {
        structure_of(&self.nodes.iter().map(|n| n.parent).collect::<Vec<_>>())
    }
}

/// Union-find over a tree's shares, one set per subtree hanging directly under the post,
/// each knowing that subtree's top share. Parents only ever point at shares already in the
/// tree, and a share is re-linked only from the root and never under its own subtree, so the
/// shares always form such subtrees and the top of a share is the last ancestor before the
/// post. Union by size and path halving keep each operation near-constant.
#[derive(Debug, Default, Clone)]
struct Subtrees {
    /// Union-find parent of each share (itself at a set's representative).
    link: Vec<u32>,
    /// At a representative: the shares of its set.
    size: Vec<u32>,
    /// At a representative: the top share of its subtree.
    top: Vec<u32>,
    /// Union-find steps taken, to bound them in tests.
    #[cfg(test)]
    steps: u64,
}

impl Subtrees {
    /// Adds the next share, under `parent` (a share already added, or [`ROOT`]).
    fn push(&mut self, parent: u32) {
        let index = self.link.len() as u32;
        self.size.push(1);
        self.top.push(index);
        if parent == ROOT {
            self.link.push(index);
        } else {
            let set = self.find(parent);
            self.link.push(set);
            self.size[set as usize] += 1;
        }
    }

    /// The top share of the subtree holding `share`.
    fn top(&mut self, share: u32) -> u32 {
        let set = self.find(share);
        self.top[set as usize]
    }

    /// Moves the subtree topped by `child` under `parent`'s subtree.
    fn hang(&mut self, child: u32, parent: u32) {
        let (a, b) = (self.find(child), self.find(parent));
        if a == b {
            return;
        }
        let top = self.top[b as usize];
        let (small, big) = if self.size[a as usize] < self.size[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        self.link[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        self.top[big as usize] = top;
    }

    fn find(&mut self, mut share: u32) -> u32 {
        loop {
            #[cfg(test)]
            {
                self.steps += 1;
            }
            let up = self.link[share as usize];
            if up == share {
                return share;
            }
            let next = self.link[up as usize];
            self.link[share as usize] = next;
            share = next;
        }
    }
}

/// Structure of a tree given each share's parent (an index into the same list, or [`ROOT`]).
/// Parents may come after their children; shares unreachable from the root (a cycle) are
/// counted under the root.
pub fn structure_of(parents: &[u32]) -> Structure {
    let n = parents.len();
    if n == 0 {
        return Structure {
            nodes: 1,
            ..Default::default()
        };
    }
    let root = n; // the post, as node n
                  // Children lists as linked lists in two arrays: O(n), no per-node allocation.
    let mut first = vec![u32::MAX; n + 1];
    let mut next = vec![u32::MAX; n];
    for (i, &p) in parents.iter().enumerate().rev() {
        let p = if p == ROOT || p as usize >= n {
            root
        } else {
            p as usize
        };
        next[i] = first[p];
        first[p] = i as u32;
    }
    let mut order = Vec::with_capacity(n + 1);
    let mut depth = vec![0u32; n + 1];
    let mut seen = vec![false; n + 1];
    seen[root] = true;
    visit_detached(root, &first, &next, &mut seen, &mut depth, &mut order);
    // Shares caught in a cycle: hang each unreached one under the root.
    let mut parent_of: Vec<usize> = parents
        .iter()
        .map(|&p| {
            if p == ROOT || p as usize >= n {
                root
            } else {
                p as usize
            }
        })
        .collect();
    for i in 0..n {
        if !seen[i] {
            seen[i] = true;
            parent_of[i] = root;
            depth[i] = 1;
            visit_detached(i, &first, &next, &mut seen, &mut depth, &mut order);
        }
    }
    let mut size = vec![1u64; n + 1];
    for &v in order.iter().rev() {
        if v != root {
            let p = parent_of[v];
            size[p] += size[v];
        }
    }
    let total = (n + 1) as u64;
    let mut wiener: u128 = 0;
    let mut levels: Vec<u64> = Vec::new();
    let mut max_depth = 0u32;
    for v in 0..n {
        let s = size[v];
        wiener += u128::from(s) * u128::from(total - s);
        let d = depth[v] as usize;
        if levels.len() <= d {
            levels.resize(d + 1, 0);
        }
        levels[d] += 1;
        max_depth = max_depth.max(depth[v]);
    }
    let pairs = u128::from(total) * u128::from(total - 1) / 2;
    Structure {
        nodes: total,
        depth: max_depth,
        breadth: levels.iter().skip(1).copied().max().unwrap_or(0),
        structural_virality: wiener as f64 / pairs as f64,
    }
}

/// Visits the subtree under `start` depth-first, recording each node's depth and the order.
fn visit_detached(
    start: usize,
    first: &[u32],
    next: &[u32],
    seen: &mut [bool],
    depth: &mut [u32],
    order: &mut Vec<usize>,
) {
    let mut stack = vec![start];
    while let Some(v) = stack.pop() {
        order.push(v);
        let mut c = first[v];
        while c != u32::MAX {
            let cu = c as usize;
            if !seen[cu] {
                seen[cu] = true;
                depth[cu] = depth[v] + 1;
                stack.push(cu);
            }
            c = next[cu];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_star_has_structural_virality_two_k_over_k_plus_one() {
        for k in [1usize, 2, 5, 100] {
            let s = structure_of(&vec![ROOT; k]);
            assert_eq!(s.nodes, k as u64 + 1);
            assert_eq!(s.depth, 1);
            assert_eq!(s.breadth, k as u64);
            assert!(close(
                s.structural_virality,
                2.0 * k as f64 / (k as f64 + 1.0)
            ));
        }
    }

    #[test]
    fn a_chain_has_structural_virality_n_plus_one_over_three() {
        for n in [2usize, 3, 10, 1000] {
            // n nodes in all: the post and n - 1 shares, each through the previous one.
            let parents: Vec<u32> = (0..n - 1)
                .map(|i| if i == 0 { ROOT } else { i as u32 - 1 })
                .collect();
            let s = structure_of(&parents);
            assert_eq!(s.depth, n as u32 - 1);
            assert_eq!(s.breadth, 1);
            assert!(
                close(s.structural_virality, (n as f64 + 1.0) / 3.0),
                "{n}: {s:?}"
            );
        }
    }

    #[test]
    fn a_hand_built_tree_matches_brute_force() {
        // post -> a, b; a -> c, d; d -> e
        let parents = [ROOT, ROOT, 0, 0, 3];
        let s = structure_of(&parents);
        // Distances by BFS over the 6 nodes (post = 5).
        let edges = [(5, 0), (5, 1), (0, 2), (0, 3), (3, 4)];
        let mut adj = vec![Vec::new(); 6];
        for (a, b) in edges {
            adj[a].push(b);
            adj[b].push(a);
        }
        let mut sum = 0u64;
        for src in 0..6 {
            let mut dist = [u64::MAX; 6];
            dist[src] = 0;
            let mut q = std::collections::VecDeque::from([src]);
            while let Some(v) = q.pop_front() {
                for &w in &adj[v] {
                    if dist[w] == u64::MAX {
                        dist[w] = dist[v] + 1;
                        q.push_back(w);
                    }
                }
            }
            sum += dist.iter().sum::<u64>();
        }
        assert!(close(s.structural_virality, sum as f64 / 30.0));
        assert_eq!(s.depth, 3);
        assert_eq!(s.breadth, 2);
    }

    #[test]
    fn shares_link_in_any_order_and_dedupe() {
        let mut a = ShareTree::new(100);
        a.add(Some("s1"), None, 1.0, Some(10), 1);
        a.add(Some("s2"), Some("s1"), 2.0, Some(20), 1);
        a.add(Some("s3"), Some("s2"), 3.0, None, 2);
        let mut b = ShareTree::new(100);
        b.add(Some("s3"), Some("s2"), 3.0, None, 2);
        b.add(Some("s2"), Some("s1"), 2.0, Some(20), 1);
        assert_eq!(b.orphans(), 1);
        b.add(Some("s1"), None, 1.0, Some(10), 1);
        assert!(!b.add(Some("s1"), None, 1.0, Some(10), 1));
        assert_eq!(b.orphans(), 0);
        assert_eq!(a.structure(), b.structure());
        assert_eq!(a.structure().depth, 3);
        assert_eq!(b.shares(), 4);
        assert_eq!(b.reach(), 30);
    }

    #[test]
    fn cycles_and_caps_never_break_the_tree() {
        let mut t = ShareTree::new(3);
        t.add(Some("a"), Some("b"), 1.0, None, 1);
        t.add(Some("b"), Some("a"), 2.0, None, 1);
        t.add(Some("c"), Some("c"), 3.0, None, 1);
        t.add(Some("d"), None, 4.0, Some(5), 1);
        assert_eq!(t.shares(), 4);
        assert_eq!(t.nodes().len(), 3);
        let s = t.structure();
        assert_eq!(s.nodes, 4);
        assert!(s.structural_virality > 0.0);
        // A cycle given directly in the parent list.
        let s = structure_of(&[1, 0, ROOT]);
        assert_eq!(s.nodes, 4);
    }

    #[test]
    fn many_shares_waiting_on_the_end_of_a_long_chain_join_it() {
        const CHAIN: usize = 3_000;
        const WAITING: usize = 3_000;
        let mut t = ShareTree::new(CHAIN + WAITING + 2);
        // The chain's first share waits for "z", which comes last through the chain's end:
        // a cycle, so that first share stays under the post.
        t.add(Some("a0"), Some("z"), 0.0, None, 1);
        for i in 1..CHAIN {
            let (id, via) = (format!("a{i}"), format!("a{}", i - 1));
            t.add(Some(&id), Some(&via), i as f64, None, 1);
        }
        for i in 0..WAITING {
            t.add(Some(&format!("w{i}")), Some("z"), 0.0, None, 1);
        }
        let last = format!("a{}", CHAIN - 1);
        t.add(Some("z"), Some(&last), CHAIN as f64, None, 1);
        let z = (CHAIN + WAITING) as u32;
        assert_eq!(t.nodes()[0].parent, ROOT, "the cycle is cut");
        assert!(t.nodes()[CHAIN..CHAIN + WAITING]
            .iter()
            .all(|n| n.parent == z));
        assert_eq!(t.orphans(), 0);
        // post -> a0 ... a(CHAIN-1) -> z -> w*
        assert_eq!(t.structure().depth, CHAIN as u32 + 2);
    }

    /// Orphans `o<i>` waiting on `s<i>`, then the chain `s0` <- `s1` <- ...: every link of
    /// the chain re-links a share waiting on it.
    fn waited_chain(n: usize) -> ShareTree {
        let mut t = ShareTree::new(2 * n);
        for i in 0..n {
            t.add(Some(&format!("o{i}")), Some(&format!("s{i}")), 0.0, None, 1);
        }
        t.add(Some("s0"), None, 1.0, None, 1);
        for i in 1..n {
            let (id, via) = (format!("s{i}"), format!("s{}", i - 1));
            t.add(Some(&id), Some(&via), 1.0, None, 1);
        }
        t
    }

    #[test]
    fn a_chain_whose_every_link_is_waited_on_links_in_linear_steps() {
        const N: usize = 20_000;
        let t = waited_chain(N);
        assert!(
            t.subtrees.steps < 10 * N as u64,
            "{} ancestry steps for {N} links",
            t.subtrees.steps
        );
        assert_eq!(t.orphans(), 0);
        let nodes = t.nodes();
        assert_eq!(nodes[N].parent, ROOT, "s0 hangs under the post");
        for i in 0..N {
            assert_eq!(nodes[i].parent, (N + i) as u32, "o{i} hangs under s{i}");
            if i > 0 {
                assert_eq!(
                    nodes[N + i].parent,
                    (N + i - 1) as u32,
                    "s{i} under s{}",
                    i - 1
                );
            }
        }
        // post -> s0 -> ... -> s(N-1) -> o(N-1); below s0 each level holds one link and one
        // waiting share.
        let s = t.structure();
        assert_eq!(s.nodes, 2 * N as u64 + 1);
        assert_eq!(s.depth, N as u32 + 1);
        assert_eq!(s.breadth, 2);
        assert_eq!(t.shares(), 2 * N as u64);
    }

    /// The re-linking as first written: walk the new share's ancestors for every arrival.
    fn linked_by_walking(shares: &[(Option<String>, Option<String>)], cap: usize) -> Vec<u32> {
        let mut parents: Vec<u32> = Vec::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut orphans: HashMap<String, Vec<u32>> = HashMap::new();
        for (id, via) in shares {
            if id.as_ref().is_some_and(|id| ids.contains_key(id)) || parents.len() >= cap {
                continue;
            }
            let index = parents.len() as u32;
            let mut parent = ROOT;
            if let Some(via) = via.as_ref().filter(|v| Some(*v) != id.as_ref()) {
                match ids.get(via) {
                    Some(&p) => parent = p,
                    None => orphans.entry(via.clone()).or_default().push(index),
                }
            }
            parents.push(parent);
            if let Some(id) = id {
                ids.insert(id.clone(), index);
                for child in orphans.remove(id).unwrap_or_default() {
                    let mut lineage = std::collections::HashSet::new();
                    let mut b = index;
                    while b != ROOT && lineage.insert(b) {
                        b = parents[b as usize];
                    }
                    if !lineage.contains(&child) {
                        parents[child as usize] = index;
                    }
                }
            }
        }
        parents
    }

    #[test]
    fn shares_link_as_walking_every_ancestor_would() {
        // A small deterministic generator: few ids, so duplicates, orphans, chains waited on
        // and cycles of `via`s all come up.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for round in 0..300 {
            let ids = 2 + next(40);
            let count = next(120) as usize;
            let cap = if round % 5 == 0 {
                1 + next(60) as usize
            } else {
                1000
            };
            let shares: Vec<(Option<String>, Option<String>)> = (0..count)
                .map(|_| {
                    let id = (next(8) != 0).then(|| format!("x{}", next(ids)));
                    let via = (next(4) != 0).then(|| format!("x{}", next(ids)));
                    (id, via)
                })
                .collect();
            let mut t = ShareTree::new(cap);
            for (id, via) in &shares {
                t.add(id.as_deref(), via.as_deref(), 0.0, None, 1);
            }
            let parents: Vec<u32> = t.nodes().iter().map(|n| n.parent).collect();
            assert_eq!(
                parents,
                linked_by_walking(&shares, cap),
                "round {round}: {shares:?}"
            );
        }
    }
}

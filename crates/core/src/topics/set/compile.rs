//! Compiling queries into the shared index: each distinct word, phrase and field value becomes
//! one atom, each topic a tree of nodes over them, and each topic's cheapest set of required
//! atoms its anchors.

use rustc_hash::FxHashMap;

use super::{prefix_key, Atom, Compiled, Node, TopicSet};
use crate::topics::syntax::{Expr, Field, Pattern};
use crate::topics::text::TokenKind;

/// Atoms of which a post must hold at least one for an expression to be true, and a guess at
/// how often posts hold one (lower is rarer): a topic is evaluated only for posts holding one
/// of its required atoms, so the rarer the set, the fewer topics a post costs.
struct Required {
    cost: f64,
    atoms: Vec<u32>,
}

impl Required {
    fn of(atom: u32, cost: f64) -> Required {
        Required {
            cost,
            atoms: vec![atom],
        }
    }

    fn union(all: Vec<Required>) -> Required {
        Required {
            cost: all.iter().map(|r| r.cost).sum(),
            atoms: all.into_iter().flat_map(|r| r.atoms).collect(),
        }
    }
}

/// How common posts holding these patterns in a row are likely to be: short words are common,
/// hashtags and handles rarer, wildcards common, phrases rarer than their rarest word.
fn words_cost(patterns: &[Pattern]) -> f64 {
    let one = |p: &Pattern| {
        let chars = p.text.chars().count().max(1) as f64;
        let kind = match p.kind {
            TokenKind::Word => 1.0,
            _ => 0.5,
        };
        let spread = if p.prefix { 3.0 } else { 1.0 };
        8.0 / chars * kind * spread
    };
    let rarest = patterns.iter().map(one).fold(f64::INFINITY, f64::min);
    if patterns.len() > 1 {
        rarest * 0.3
    } else {
        rarest
    }
}

/// How common posts of one value of `field` are likely to be.
fn field_cost(field: Field) -> f64 {
    match field {
        Field::Platform => 50.0,
        Field::Lang => 30.0,
        Field::Country => 20.0,
        Field::City | Field::Product | Field::Channel => 10.0,
        Field::Site | Field::Links => 5.0,
        Field::Author => 1.0,
    }
}

#[derive(Default)]
pub(super) struct Builder {
    set: TopicSet,
    ids: FxHashMap<Atom, u32>,
    anchors: Vec<Vec<u32>>,
    /// The nodes of the topic being compiled, so a part written twice is one node.
    nodes: FxHashMap<Node, u32>,
}

impl Builder {
    fn atom(&mut self, atom: Atom) -> u32 {
        if let Some(&id) = self.ids.get(&atom) {
            return id;
        }
        let id = self.set.atoms.len() as u32;
        match &atom {
            Atom::Pattern(p) => {
                let key = match (p.prefix, prefix_key(&p.text)) {
                    (true, Some(head)) => Some(head.to_string()),
                    _ => None,
                };
                match key {
                    Some(head) => {
                        self.set
                            .prefixes
                            .entry(p.text.as_str().into())
                            .or_default()
                            .push(id);
                        let lengths = self.set.prefix_lengths.entry(head.into()).or_default();
                        let length = p.text.len() as u32;
                        if let Err(at) = lengths.binary_search(&length) {
                            lengths.insert(at, length);
                        }
                    }
                    None => self
                        .set
                        .exact
                        .entry(p.text.as_str().into())
                        .or_default()
                        .push(id),
                }
            }
            Atom::Phrase(parts) => self.set.phrases.entry(parts[0]).or_default().push(id),
            Atom::Field(field, value) => {
                let at = match self.set.fields.iter().position(|(f, _)| f == field) {
                    Some(at) => at,
                    None => {
                        self.set.fields.push((*field, FxHashMap::default()));
                        self.set.fields.len() - 1
                    }
                };
                self.set.fields[at].1.insert(value.clone(), id);
            }
        }
        self.set.atoms.push(atom.clone());
        self.anchors.push(Vec::new());
        self.ids.insert(atom, id);
        id
    }

    pub(super) fn add(&mut self, id: i64, version: i32, expr: &Expr) {
        let slot = self.set.topics.len() as u32;
        self.nodes.clear();
        let mut topic = Compiled {
            id,
            version,
            nodes: Vec::new(),
            root: 0,
        };
        let (root, required) = self.node(&mut topic, expr);
        topic.root = root;
        // The parser refuses queries that require nothing; such a topic could never match.
        for atom in required.map(|r| r.atoms).unwrap_or_default() {
            let list = &mut self.anchors[atom as usize];
            if list.last() != Some(&slot) {
                list.push(slot);
            }
        }
        self.set.topics.push(topic);
    }

    /// Compiles `expr` into `topic`'s nodes, and what a post must hold for it to be true:
    /// one atom of the cheapest such set (see [`Required`]), or `None` for an expression that
    /// can be true of a post holding none of its atoms (under a `NOT`).
    fn node(&mut self, topic: &mut Compiled, expr: &Expr) -> (u32, Option<Required>) {
        let (node, required) = match expr {
            Expr::Words(patterns) => {
                let parts: Vec<u32> = patterns
                    .iter()
                    .map(|p| self.atom(Atom::Pattern(p.clone())))
                    .collect();
                let atom = if parts.len() == 1 {
                    parts[0]
                } else {
                    self.atom(Atom::Phrase(parts.into()))
                };
                (
                    Node::Atom(atom),
                    Some(Required::of(atom, words_cost(patterns))),
                )
            }
            Expr::Field(field, value) => {
                let atom = self.atom(Atom::Field(*field, value.as_str().into()));
                (
                    Node::Atom(atom),
                    Some(Required::of(atom, field_cost(*field))),
                )
            }
            Expr::And(items) => {
                let (nodes, mut required) = self.items(topic, items);
                if nodes.len() == 1 {
                    return (nodes[0], required.pop().flatten());
                }
                // Every item must hold, so any one item's requirement will do: the cheapest.
                let cheapest = required
                    .into_iter()
                    .flatten()
                    .min_by(|a, b| a.cost.total_cmp(&b.cost));
                (Node::And(nodes.into()), cheapest)
            }
            Expr::Or(items) => {
                let (nodes, mut required) = self.items(topic, items);
                if nodes.len() == 1 {
                    return (nodes[0], required.pop().flatten());
                }
                // One item holds, whichever: every item must bring its requirement.
                let all: Option<Vec<Required>> = required.into_iter().collect();
                (Node::Or(nodes.into()), all.map(Required::union))
            }
            Expr::Not(inner) => (Node::Not(self.node(topic, inner).0), None),
            Expr::Near {
                left,
                right,
                distance,
                ordered,
            } => {
                let (left, l) = self.node(topic, left);
                let (right, r) = self.node(topic, right);
                let cheapest = [l, r]
                    .into_iter()
                    .flatten()
                    .min_by(|a, b| a.cost.total_cmp(&b.cost));
                let node = Node::Near {
                    left,
                    right,
                    distance: *distance,
                    ordered: *ordered,
                };
                (node, cheapest)
            }
        };
        (self.push(topic, node), required)
    }

    /// Compiles the items of an `AND` or an `OR`, each distinct one once (`the OR the` gathered
    /// the same spans twice), with what each requires.
    fn items(&mut self, topic: &mut Compiled, items: &[Expr]) -> (Vec<u32>, Vec<Option<Required>>) {
        let mut nodes = Vec::with_capacity(items.len());
        let mut required = Vec::with_capacity(items.len());
        for item in items {
            let (node, r) = self.node(topic, item);
            if !nodes.contains(&node) {
                nodes.push(node);
                required.push(r);
            }
        }
        (nodes, required)
    }

    /// The index of `node` in `topic`, added unless the topic has it already.
    fn push(&mut self, topic: &mut Compiled, node: Node) -> u32 {
        *self.nodes.entry(node).or_insert_with_key(|node| {
            topic.nodes.push(node.clone());
            (topic.nodes.len() - 1) as u32
        })
    }

    pub(super) fn finish(mut self) -> TopicSet {
        self.set.anchors = self
            .anchors
            .into_iter()
            .map(Vec::into_boxed_slice)
            .collect();
        self.set.exact.shrink_to_fit();
        self.set.prefixes.shrink_to_fit();
        self.set.prefix_lengths.shrink_to_fit();
        self.set
    }
}

//! Every active topic's query compiled into one index, so a post is matched against all of them
//! in one pass: its tokens are looked up once among every topic's words (exact words by hash,
//! wildcards by their whole text, at each length a wildcard sharing the token's first
//! characters has), phrases are checked from their first word, fields by value, and only the
//! topics one of whose required parts was found are evaluated. The cost of a post grows with
//! the topics it could match, not with how many topics there are.

use std::cell::{Cell, RefCell};

use rustc_hash::FxHashMap;

use super::syntax::{self, Expr, Field, Pattern, QueryError, MIN_WILDCARD_CHARS};
use super::text::{fold, fold_into, host_of, Tokens};
pub use crate::models::topic::TopicMatch;

use compile::Builder;

mod compile;

/// A topic as the index takes it.
#[derive(Debug, Clone)]
pub struct TopicDef {
    pub id: i64,
    pub version: i32,
    pub query: String,
}

impl TopicDef {
    /// `queries` as topics 1, 2, ... at version 1 (tests and benchmarks).
    pub fn numbered<S: AsRef<str>>(queries: &[S]) -> Vec<TopicDef> {
        queries
            .iter()
            .enumerate()
            .map(|(i, query)| TopicDef {
                id: i as i64 + 1,
                version: 1,
                query: query.as_ref().to_string(),
            })
            .collect()
    }
}

/// What of a post a query can look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostFields<'a> {
    pub text: &'a str,
    pub author: &'a str,
    pub platform: &'a str,
    pub lang: Option<&'a str>,
    pub country: Option<&'a str>,
    pub city: Option<&'a str>,
    pub product: Option<&'a str>,
    pub channel: Option<&'a str>,
    /// The post's own link.
    pub url: Option<&'a str>,
}

impl<'a> PostFields<'a> {
    /// What a query can see of an analysed post (its language as resolved).
    pub fn of(p: &'a crate::models::AnalyzedPost) -> PostFields<'a> {
        PostFields {
            text: &p.post.text,
            author: &p.post.author.id,
            platform: p.post.platform.as_str(),
            lang: p.analysis.lang.as_deref(),
            country: p.post.country(),
            city: p.post.city(),
            product: p.post.product.as_deref(),
            channel: p.post.channel.as_deref(),
            url: p.post.url.as_deref(),
        }
    }
}

/// How a post stands against one topic, for a preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Matches,
    /// It holds the topic's words, and a `NOT` or a field left it out.
    NearMiss,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Atom {
    Pattern(Pattern),
    /// Pattern atoms in a row.
    Phrase(Box<[u32]>),
    Field(Field, Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Node {
    Atom(u32),
    And(Box<[u32]>),
    Or(Box<[u32]>),
    Not(u32),
    Near {
        left: u32,
        right: u32,
        distance: u32,
        ordered: bool,
    },
}

#[derive(Debug, Clone)]
struct Compiled {
    id: i64,
    version: i32,
    nodes: Vec<Node>,
    root: u32,
}

/// A span of token positions, both ends included.
type Span = (u32, u32);

/// Spans one post's `NEAR`s may gather for their operands and pairs of them they may visit,
/// every topic together. A text of thousands of one word gives a `NEAR` of it thousands of spans
/// on each side, and a chain of them millions: a 20 KB post and four `NEAR/100`s of `the` held
/// gigabytes and a core without end; an `OR` of `the` written 299 times gathered a million and
/// a half spans of it before visiting one pair. Past the budget a `NEAR` finds no more spans, so
/// such a post may miss a topic it would match; a post of ordinary text spends a few hundred.
pub const NEAR_STEPS_PER_POST: u32 = 50_000;

/// Parts of phrases one post's phrases may check, every topic together. A phrase is checked
/// part after part from each place its first word stands, so a text of thousands of one word
/// and a phrase of thousands of it (a query of 4,096 characters holds 2,000 words) took tens of
/// millions of checks for each post, each topic or search of such a phrase a second or more of
/// a core. Past the budget no further phrase is found in the post, so such a post may miss a
/// topic it would match; a post of ordinary text checks a part or two per phrase whose first
/// word it holds.
pub const PHRASE_STEPS_PER_POST: u32 = 100_000;

/// Every active topic, compiled. Immutable: a change of topics builds a new set.
#[derive(Debug, Default)]
pub struct TopicSet {
    topics: Vec<Compiled>,
    atoms: Vec<Atom>,
    /// Exact patterns by their text.
    exact: FxHashMap<Box<str>, Vec<u32>>,
    /// Wildcard patterns by their whole text (what a token must start with).
    prefixes: FxHashMap<Box<str>, Vec<u32>>,
    /// For the first [`MIN_WILDCARD_CHARS`] characters of some wildcard, the lengths in bytes
    /// of the wildcards that start with them, shortest first: a token is looked up at each of
    /// those lengths it reaches, so thousands of wildcards sharing its first characters cost
    /// it no more than their distinct lengths do.
    prefix_lengths: FxHashMap<Box<str>, Vec<u32>>,
    /// Phrases by the pattern they start with.
    phrases: FxHashMap<u32, Vec<u32>>,
    /// Field atoms by field, then by folded value; only the fields some topic names, so the
    /// others are not even folded.
    fields: Vec<(Field, FxHashMap<Box<str>, u32>)>,
    /// For each atom, the topics it can make match (where it is not under a `NOT`).
    anchors: Vec<Box<[u32]>>,
}

impl TopicSet {
    /// Compiles `defs`; a topic whose query no longer parses is left out and named.
    pub fn build(defs: impl IntoIterator<Item = TopicDef>) -> (TopicSet, Vec<(i64, QueryError)>) {
        let mut builder = Builder::default();
        let mut refused = Vec::new();
        for def in defs {
            match syntax::parse(&def.query) {
                Ok(expr) => builder.add(def.id, def.version, &expr),
                Err(e) => refused.push((def.id, e)),
            }
        }
        (builder.finish(), refused)
    }

    /// Compiles topics already parsed: `(id, version, query)`, in the order the set holds them.
    pub fn from_parsed<'a>(topics: impl IntoIterator<Item = (i64, i32, &'a Expr)>) -> TopicSet {
        let mut builder = Builder::default();
        for (id, version, expr) in topics {
            builder.add(id, version, expr);
        }
        builder.finish()
    }

    /// The set of one parsed query (for previews and checks).
    pub fn of(id: i64, version: i32, expr: &Expr) -> TopicSet {
        let mut builder = Builder::default();
        builder.add(id, version, expr);
        builder.finish()
    }

    pub fn len(&self) -> usize {
        self.topics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// The ids and versions of the topics in the set.
    pub fn topics(&self) -> impl Iterator<Item = TopicMatch> + '_ {
        self.topics.iter().map(|t| TopicMatch {
            id: t.id,
            version: t.version,
        })
    }

    /// The topics `post` matches, by id.
    pub fn matches(&self, post: &PostFields) -> Vec<TopicMatch> {
        if self.topics.is_empty() {
            return Vec::new();
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let scratch = &mut *scratch;
            self.find_atoms(post, scratch);
            let mut out: Vec<TopicMatch> = scratch
                .candidates
                .iter()
                .map(|&t| &self.topics[t as usize])
                .filter(|t| self.eval(t, t.root, scratch, false))
                .map(|t| TopicMatch {
                    id: t.id,
                    version: t.version,
                })
                .collect();
            out.sort_unstable();
            out
        })
    }

    /// The topics `post` matches, evaluating every topic whatever its required atoms: what
    /// [`TopicSet::matches`] must find.
    #[cfg(test)]
    fn matches_evaluating_all(&self, post: &PostFields) -> Vec<i64> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            self.find_atoms(post, &mut scratch);
            self.topics
                .iter()
                .filter(|t| self.eval(t, t.root, &scratch, false))
                .map(|t| t.id)
                .collect()
        })
    }

    /// The mean number of topics evaluated per post of `posts` (those one of whose required
    /// parts the post holds), for the benchmark.
    pub fn candidates_per_post<'a>(&self, posts: impl Iterator<Item = PostFields<'a>>) -> f64 {
        let (mut total, mut n) = (0usize, 0usize);
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            for post in posts {
                self.find_atoms(&post, &mut scratch);
                total += scratch.candidates.len();
                n += 1;
            }
        });
        total as f64 / n.max(1) as f64
    }

    /// How `post` stands against the set's first topic: a match, a near miss (it matches once
    /// every `NOT` and field is set aside, and holds at least one of the topic's words), or
    /// neither.
    pub fn verdict(&self, post: &PostFields) -> Verdict {
        let Some(topic) = self.topics.first() else {
            return Verdict::Other;
        };
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let scratch = &mut *scratch;
            self.find_atoms(post, scratch);
            if scratch.candidates.contains(&0) && self.eval(topic, topic.root, scratch, false) {
                return Verdict::Matches;
            }
            let words = self.words_outside_not(topic);
            let has_words = words
                .iter()
                .any(|&a| scratch.atom_stamp[a as usize] == scratch.stamp);
            if has_words && self.eval(topic, topic.root, scratch, true) {
                Verdict::NearMiss
            } else {
                Verdict::Other
            }
        })
    }

    /// The word and phrase atoms of `topic` that are not under a `NOT`.
    fn words_outside_not(&self, topic: &Compiled) -> Vec<u32> {
        fn walk(set: &TopicSet, topic: &Compiled, at: u32, out: &mut Vec<u32>) {
            match &topic.nodes[at as usize] {
                Node::Atom(a) => {
                    if !matches!(set.atoms[*a as usize], Atom::Field(..)) {
                        out.push(*a);
                    }
                }
                Node::And(items) | Node::Or(items) => {
                    items.iter().for_each(|&i| walk(set, topic, i, out))
                }
                Node::Near { left, right, .. } => {
                    walk(set, topic, *left, out);
                    walk(set, topic, *right, out);
                }
                Node::Not(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(self, topic, topic.root, &mut out);
        out
    }

    /// Finds every atom the post holds and the topics they may make match.
    fn find_atoms(&self, post: &PostFields, s: &mut Scratch) {
        s.next_stamp(self.atoms.len(), self.topics.len());
        #[cfg(test)]
        {
            s.wildcard_checks = 0;
            s.spans_built.set(0);
        }
        s.tokens.read_into(post.text);
        s.hits.clear();
        s.true_atoms.clear();
        s.candidates.clear();
        for position in 0..s.tokens.len() {
            let kind = s.tokens.tokens[position].kind;
            let text = s.tokens.text(position);
            let p = position as u32;
            if let Some(atoms) = self.exact.get(text) {
                for &a in atoms {
                    if let Atom::Pattern(pattern) = &self.atoms[a as usize] {
                        if pattern.finds(kind, text) {
                            s.hits.push((a, p, p));
                        }
                    }
                }
            }
            let lengths = if self.prefix_lengths.is_empty() {
                None
            } else {
                prefix_key(text).and_then(|head| self.prefix_lengths.get(head))
            };
            for &length in lengths.into_iter().flatten() {
                let length = length as usize;
                if length > text.len() {
                    break;
                }
                // A wildcard's text is whole characters: where the token has no boundary, no
                // wildcard of this length can start it.
                if !text.is_char_boundary(length) {
                    continue;
                }
                #[cfg(test)]
                {
                    s.wildcard_checks += 1;
                }
                if let Some(atoms) = self.prefixes.get(&text[..length]) {
                    for &a in atoms {
                        #[cfg(test)]
                        {
                            s.wildcard_checks += 1;
                        }
                        if let Atom::Pattern(pattern) = &self.atoms[a as usize] {
                            if pattern.finds(kind, text) {
                                s.hits.push((a, p, p));
                            }
                        }
                    }
                }
            }
        }
        s.hits.sort_unstable();
        // Phrases, from the hits of their first pattern, each part checked spending one of the
        // post's steps.
        let mut found = std::mem::take(&mut s.found);
        found.clear();
        let mut steps = PHRASE_STEPS_PER_POST;
        let mut at = 0;
        'heads: while at < s.hits.len() {
            let head = s.hits[at].0;
            let end = at + s.hits[at..].partition_point(|h| h.0 == head);
            if let Some(phrases) = self.phrases.get(&head) {
                for &phrase in phrases {
                    let Atom::Phrase(parts) = &self.atoms[phrase as usize] else {
                        continue;
                    };
                    for &(_, start, _) in &s.hits[at..end] {
                        let mut whole = true;
                        for (i, &part) in parts.iter().enumerate().skip(1) {
                            if steps == 0 {
                                break 'heads;
                            }
                            steps -= 1;
                            let p = start + i as u32;
                            if s.hits.binary_search(&(part, p, p)).is_err() {
                                whole = false;
                                break;
                            }
                        }
                        if whole {
                            found.push((phrase, start, start + parts.len() as u32 - 1));
                        }
                    }
                }
            }
            at = end;
        }
        #[cfg(test)]
        {
            s.phrase_steps = steps;
        }
        s.hits.extend_from_slice(&found);
        s.found = found;
        s.hits.sort_unstable();
        s.hits.dedup();
        let mut previous = None;
        for i in 0..s.hits.len() {
            let atom = s.hits[i].0;
            if previous != Some(atom) {
                previous = Some(atom);
                s.mark(atom);
            }
        }
        self.find_fields(post, s);
        for i in 0..s.true_atoms.len() {
            let atom = s.true_atoms[i];
            for &topic in self.anchors[atom as usize].iter() {
                if s.topic_stamp[topic as usize] != s.stamp {
                    s.topic_stamp[topic as usize] = s.stamp;
                    s.candidates.push(topic);
                }
            }
        }
    }

    fn find_fields(&self, post: &PostFields, s: &mut Scratch) {
        for (field, values) in &self.fields {
            let look = |value: &str, s: &mut Scratch| {
                s.value.clear();
                fold_into(&mut s.value, value);
                if let Some(&a) = values.get(s.value.as_str()) {
                    s.mark(a);
                }
            };
            match field {
                Field::Author => look(post.author, s),
                Field::Platform => look(post.platform, s),
                Field::Country => post.country.into_iter().for_each(|v| look(v, s)),
                Field::City => post.city.into_iter().for_each(|v| look(v, s)),
                Field::Product => post.product.into_iter().for_each(|v| look(v, s)),
                Field::Channel => post.channel.into_iter().for_each(|v| look(v, s)),
                Field::Lang => {
                    if let Some(lang) = post.lang {
                        let lang = lang.replace('_', "-");
                        look(&lang, s);
                        if let Some((primary, _)) = lang.split_once('-') {
                            look(primary, s);
                        }
                    }
                }
                Field::Site => {
                    if let Some(host) = post.url.and_then(host_of) {
                        find_domains(values, &host, s);
                    }
                }
                Field::Links => {
                    let hosts = std::mem::take(&mut s.tokens.hosts);
                    for host in &hosts {
                        find_domains(values, host, s);
                    }
                    s.tokens.hosts = hosts;
                }
            }
        }
    }

    /// Whether node `at` of `topic` holds; `relaxed` sets aside every `NOT` and field.
    fn eval(&self, topic: &Compiled, at: u32, s: &Scratch, relaxed: bool) -> bool {
        match &topic.nodes[at as usize] {
            Node::Atom(a) => {
                (relaxed && matches!(self.atoms[*a as usize], Atom::Field(..)))
                    || s.atom_stamp[*a as usize] == s.stamp
            }
            Node::And(items) => items.iter().all(|&i| self.eval(topic, i, s, relaxed)),
            Node::Or(items) => items.iter().any(|&i| self.eval(topic, i, s, relaxed)),
            Node::Not(inner) => relaxed || !self.eval(topic, *inner, s, relaxed),
            Node::Near { .. } => !self.spans(topic, at, s).is_empty(),
        }
    }

    /// Where node `at` (a positional one) stands in the text, sorted. Each span an atom or an
    /// `OR` gathers spends one of the post's [`NEAR_STEPS_PER_POST`], as each pair a `NEAR`
    /// visits does: an `OR` of words a flood of one word holds gathers thousands of spans per
    /// word before any pair is visited. None left, it gathers no more.
    fn spans(&self, topic: &Compiled, at: u32, s: &Scratch) -> Vec<Span> {
        let out = match &topic.nodes[at as usize] {
            Node::Atom(a) => {
                let from = s.hits.partition_point(|h| h.0 < *a);
                let to = s.hits.partition_point(|h| h.0 <= *a);
                let to = from + spend(&s.near_steps, to - from);
                s.hits[from..to].iter().map(|h| (h.1, h.2)).collect()
            }
            Node::Or(items) => {
                let mut out: Vec<Span> = Vec::new();
                for &i in items.iter() {
                    let spans = self.spans(topic, i, s);
                    let kept = spend(&s.near_steps, spans.len());
                    out.extend_from_slice(&spans[..kept]);
                    if kept < spans.len() {
                        break;
                    }
                }
                out.sort_unstable();
                out.dedup();
                out
            }
            Node::Near {
                left,
                right,
                distance,
                ordered,
            } => {
                let left = self.spans(topic, *left, s);
                if left.is_empty() {
                    return left;
                }
                let right = self.spans(topic, *right, s);
                near(&left, &right, *distance, *ordered, &s.near_steps)
            }
            Node::And(_) | Node::Not(_) => Vec::new(),
        };
        #[cfg(test)]
        s.spans_built.set(s.spans_built.get() + out.len() as u32);
        out
    }

    /// A rough count of the bytes the set holds, for the benchmark's memory figure.
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        let atoms: usize = self
            .atoms
            .iter()
            .map(|a| {
                size_of::<Atom>()
                    + match a {
                        Atom::Pattern(p) => p.text.capacity(),
                        Atom::Phrase(parts) => parts.len() * 4,
                        Atom::Field(_, v) => v.len(),
                    }
            })
            .sum();
        let nodes: usize = self
            .topics
            .iter()
            .map(|t| {
                size_of::<Compiled>()
                    + t.nodes.capacity() * size_of::<Node>()
                    + t.nodes
                        .iter()
                        .map(|n| match n {
                            Node::And(i) | Node::Or(i) => i.len() * 4,
                            _ => 0,
                        })
                        .sum::<usize>()
            })
            .sum();
        let index = |m: &FxHashMap<Box<str>, Vec<u32>>| -> usize {
            m.iter()
                .map(|(k, v)| k.len() + 24 + 16 + v.capacity() * 4)
                .sum::<usize>()
        };
        let anchors: usize = self.anchors.iter().map(|a| 16 + a.len() * 4).sum();
        atoms
            + nodes
            + index(&self.exact)
            + index(&self.prefixes)
            + index(&self.prefix_lengths)
            + anchors
    }
}

/// Marks the atoms of `values` (hosts) naming `host` or a domain it is under.
fn find_domains(values: &FxHashMap<Box<str>, u32>, host: &str, s: &mut Scratch) {
    let mut rest = host;
    loop {
        if let Some(&a) = values.get(rest) {
            s.mark(a);
        }
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => break,
        }
    }
}

/// The spans where a span of `left` and one of `right` stand with at most `distance` tokens
/// between them (`ordered`: left first), neither overlapping the other; each such pair gives
/// the span covering both. Only right spans within reach of each left one are visited.
/// Each pair visited spends one of `steps`; none left, it stops with what it found.
fn near(
    left: &[Span],
    right: &[Span],
    distance: u32,
    ordered: bool,
    steps: &Cell<u32>,
) -> Vec<Span> {
    let longest = right.iter().map(|r| r.1 - r.0).max().unwrap_or(0);
    let mut out = Vec::new();
    'left: for &(ls, le) in left {
        let lowest = ls.saturating_sub(distance + 1 + longest);
        let from = right.partition_point(|r| r.0 < lowest);
        for &(rs, re) in &right[from..] {
            if rs > le + distance + 1 {
                break;
            }
            match steps.get().checked_sub(1) {
                Some(rest) => steps.set(rest),
                None => break 'left,
            }
            let gap = if le < rs {
                Some(rs - le - 1)
            } else if re < ls && !ordered {
                Some(ls - re - 1)
            } else {
                None
            };
            if gap.is_some_and(|g| g <= distance) {
                out.push((ls.min(rs), le.max(re)));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Spends up to `wanted` of `steps`; how many it could.
fn spend(steps: &Cell<u32>, wanted: usize) -> usize {
    let granted = steps.get().min(u32::try_from(wanted).unwrap_or(u32::MAX));
    steps.set(steps.get() - granted);
    granted as usize
}

/// The key the lengths of wildcard patterns are filed under: a token's first
/// [`MIN_WILDCARD_CHARS`] characters; `None` for a shorter token.
fn prefix_key(text: &str) -> Option<&str> {
    if text.len() < MIN_WILDCARD_CHARS {
        return None;
    }
    if text.is_char_boundary(MIN_WILDCARD_CHARS) && text.as_bytes()[..MIN_WILDCARD_CHARS].is_ascii()
    {
        return Some(&text[..MIN_WILDCARD_CHARS]);
    }
    let head = crate::models::text::prefix_chars(text, MIN_WILDCARD_CHARS);
    (head.chars().count() == MIN_WILDCARD_CHARS).then_some(head)
}

/// Per-thread working memory, so matching allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    tokens: Tokens,
    stamp: u32,
    atom_stamp: Vec<u32>,
    topic_stamp: Vec<u32>,
    /// Positional atoms found: (atom, first position, last position), sorted.
    hits: Vec<(u32, u32, u32)>,
    found: Vec<(u32, u32, u32)>,
    true_atoms: Vec<u32>,
    candidates: Vec<u32>,
    value: String,
    /// What is left of the post's [`NEAR_STEPS_PER_POST`].
    near_steps: Cell<u32>,
    /// What the last post left of its [`PHRASE_STEPS_PER_POST`].
    #[cfg(test)]
    phrase_steps: u32,
    /// Lookups of the last post's tokens among the wildcards, and wildcards tried.
    #[cfg(test)]
    wildcard_checks: u32,
    /// Spans the last post's `NEAR`s and their operands gathered, every topic together.
    #[cfg(test)]
    spans_built: Cell<u32>,
}

impl Scratch {
    fn next_stamp(&mut self, atoms: usize, topics: usize) {
        if self.stamp == u32::MAX {
            self.stamp = 0;
            self.atom_stamp.iter_mut().for_each(|s| *s = 0);
            self.topic_stamp.iter_mut().for_each(|s| *s = 0);
        }
        self.stamp += 1;
        self.near_steps.set(NEAR_STEPS_PER_POST);
        if self.atom_stamp.len() < atoms {
            self.atom_stamp.resize(atoms, 0);
        }
        if self.topic_stamp.len() < topics {
            self.topic_stamp.resize(topics, 0);
        }
    }

    fn mark(&mut self, atom: u32) {
        if self.atom_stamp[atom as usize] != self.stamp {
            self.atom_stamp[atom as usize] = self.stamp;
            self.true_atoms.push(atom);
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Whether `query` matches `post`: the one-topic path, for checks and tests.
pub fn query_matches(query: &str, post: &PostFields) -> Result<bool, QueryError> {
    let expr = syntax::parse(query)?;
    Ok(!TopicSet::of(0, 1, &expr).matches(post).is_empty())
}

/// A folded value as fields compare it.
pub fn field_value(value: &str) -> String {
    fold(value)
}

#[cfg(test)]
mod tests;

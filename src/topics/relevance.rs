//! Whether a post a topic's query matched is about the topic, learned from people's labels. A
//! query cannot tell Apple the company from the fruit; the posts a reviewer marks "about this
//! topic" or "not about it" can. The model is a logistic regression over what the post says
//! (its words and word pairs, hashtags and mentions, as the query language reads them), who wrote
//! it, its language and whether the query matched it, hashed into a fixed space so it needs no
//! vocabulary and trains in milliseconds. [`choose`] picks the posts worth labelling next, as
//! the review queue asks for them: the ones the model is least sure of.

use super::text::{TokenKind, Tokens};

/// Hashed feature space: 2^18 weights (1 MiB a topic).
const BUCKETS: usize = 1 << 18;
/// L2 penalty of the weights.
const L2: f32 = 1e-3;
/// Passes over the labels while training.
const EPOCHS: usize = 40;
/// Posts chosen at random (by id) before the model picks.
pub const SEED_LABELS: usize = 10;
/// Posts chosen per round once the model picks.
pub const BATCH: usize = 10;

/// What the model reads of a post.
#[derive(Debug, Clone, Copy, Default)]
pub struct Post<'a> {
    pub text: &'a str,
    pub author: Option<&'a str>,
    pub lang: Option<&'a str>,
    /// Whether the topic's query matched it.
    pub matched: bool,
}

/// A post's features: hashed indexes with their values (presence, scaled to unit length).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features(Vec<(u32, f32)>);

fn bucket(kind: u8, parts: &[&str]) -> u32 {
    // FNV-1a: stable across runs and platforms, so a stored model reads the same features.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(kind);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ 0x1f).wrapping_mul(0x100_0000_01b3);
        }
        for b in p.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    (h % BUCKETS as u64) as u32
}

impl Features {
    /// Reads `post`.
    pub fn of(post: &Post) -> Features {
        let tokens = Tokens::read(post.text);
        let mut out: Vec<u32> = Vec::with_capacity(tokens.len() * 2 + 4);
        let mut previous: Option<&str> = None;
        for (i, t) in tokens.tokens.iter().enumerate() {
            let word = tokens.text(i);
            let kind = match t.kind {
                TokenKind::Hashtag => 1,
                TokenKind::Mention => 2,
                TokenKind::Word => 0,
            };
            out.push(bucket(kind, &[word]));
            if let Some(p) = previous {
                out.push(bucket(3, &[p, word]));
            }
            previous = Some(word);
        }
        for host in &tokens.hosts {
            out.push(bucket(4, &[host]));
        }
        if let Some(a) = post.author {
            out.push(bucket(5, &[a]));
        }
        if let Some(l) = post.lang {
            out.push(bucket(6, &[l]));
        }
        out.push(bucket(7, &[if post.matched { "yes" } else { "no" }]));
        out.sort_unstable();
        out.dedup();
        let value = 1.0 / (out.len() as f32).sqrt();
        Features(out.into_iter().map(|i| (i, value)).collect())
    }
}

/// A topic's learned relevance.
#[derive(Debug, Clone)]
pub enum Model {
    /// Labels of one class only: every post is that class.
    Constant(bool),
    Learned {
        weights: Vec<f32>,
        bias: f32,
    },
}

impl Model {
    /// Trains on `labelled` (features, related); deterministic for the same labels in the
    /// same order.
    pub fn train(labelled: &[(&Features, bool)]) -> Model {
        let related = labelled.iter().filter(|(_, r)| *r).count();
        if related == 0 || related == labelled.len() {
            return Model::Constant(related > 0 || labelled.is_empty());
        }
        let n = labelled.len() as f32;
        // The bias starts at the labels' log-odds, so a weak signal leans to the majority.
        let prior = related as f32 / n;
        let mut bias = (prior / (1.0 - prior)).ln();
        let mut weights = vec![0.0f32; BUCKETS];
        // AdaGrad: a step per example, scaled by the gradients seen at each weight.
        let mut seen = vec![0.0f32; BUCKETS];
        let mut bias_seen = 0.0f32;
        let rate = 0.5;
        for _ in 0..EPOCHS {
            for (f, label) in labelled {
                let p = sigmoid(bias + dot(&weights, f));
                let g = p - if *label { 1.0 } else { 0.0 };
                bias_seen += g * g;
                bias -= rate * g / (bias_seen.sqrt() + 1e-6);
                for &(i, v) in &f.0 {
                    let i = i as usize;
                    let gi = g * v + L2 * weights[i];
                    seen[i] += gi * gi;
                    weights[i] -= rate * gi / (seen[i].sqrt() + 1e-6);
                }
            }
        }
        Model::Learned { weights, bias }
    }

    /// The probability that the post is about the topic.
    pub fn probability(&self, f: &Features) -> f32 {
        match self {
            Model::Constant(true) => 1.0,
            Model::Constant(false) => 0.0,
            Model::Learned { weights, bias } => sigmoid(bias + dot(weights, f)),
        }
    }

    /// Whether the post is kept as about the topic.
    pub fn keeps(&self, f: &Features) -> bool {
        self.probability(f) >= 0.5
    }
}

fn dot(weights: &[f32], f: &Features) -> f32 {
    f.0.iter().map(|&(i, v)| weights[i as usize] * v).sum()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The order in which a reviewer is asked to label `pool` until `n` are chosen: first
/// [`SEED_LABELS`] in the order of `keys` (a stable hash of each post's id, so the sample is
/// random but repeatable), then, [`BATCH`] at a time, the posts the model trained on the labels so
/// far is least sure of. `label` answers for a chosen post, as the reviewer would.
pub fn choose(
    pool: &[Features],
    keys: &[u64],
    n: usize,
    label: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let n = n.min(pool.len());
    let mut by_key: Vec<usize> = (0..pool.len()).collect();
    by_key.sort_by_key(|&i| (keys[i], i));
    let mut chosen: Vec<usize> = by_key.iter().copied().take(SEED_LABELS.min(n)).collect();
    let mut taken = vec![false; pool.len()];
    for &i in &chosen {
        taken[i] = true;
    }
    while chosen.len() < n {
        let labelled: Vec<(&Features, bool)> =
            chosen.iter().map(|&i| (&pool[i], label(i))).collect();
        let model = Model::train(&labelled);
        let mut open: Vec<(f32, u64, usize)> = (0..pool.len())
            .filter(|&i| !taken[i])
            .map(|i| ((model.probability(&pool[i]) - 0.5).abs(), keys[i], i))
            .collect();
        open.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(_, _, i) in open.iter().take(BATCH.min(n - chosen.len())) {
            taken[i] = true;
            chosen.push(i);
        }
    }
    chosen
}

/// A stable 64-bit key of `id`, for choosing posts in a random but repeatable order.
pub fn key_of(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    // A final mix, so ids that differ in their last bytes spread.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(text: &str) -> Features {
        Features::of(&Post {
            text,
            matched: true,
            ..Post::default()
        })
    }

    #[test]
    fn it_learns_which_sense_of_a_name_is_meant() {
        let cars = [
            "the new jaguar suv has a great engine",
            "test drive of the jaguar f-type at the dealer",
            "jaguar recalls cars over a brake fault",
            "my jaguar needs a new engine part",
        ];
        let cats = [
            "a jaguar hunting in the amazon rainforest",
            "the zoo's jaguar cub was born this week",
            "jaguar spotted in the wild near the river",
            "wildlife photo: jaguar resting in a tree",
        ];
        let features: Vec<Features> = cars.iter().chain(&cats).map(|t| f(t)).collect();
        let labelled: Vec<(&Features, bool)> = features
            .iter()
            .enumerate()
            .map(|(i, x)| (x, i < 4))
            .collect();
        let model = Model::train(&labelled);
        assert!(model.keeps(&f("jaguar engine trouble at the dealer")));
        assert!(!model.keeps(&f("a jaguar in the rainforest near the river")));
    }

    #[test]
    fn one_class_of_labels_keeps_or_drops_everything() {
        let a = f("anything");
        assert!(Model::train(&[(&a, true)]).keeps(&f("other")));
        assert!(!Model::train(&[(&a, false)]).keeps(&f("other")));
    }

    #[test]
    fn choosing_asks_first_at_random_then_where_the_model_is_unsure() {
        let texts: Vec<String> = (0..60)
            .map(|i| {
                if i % 2 == 0 {
                    format!("car engine dealer {i}")
                } else {
                    format!("rainforest river wildlife {i}")
                }
            })
            .collect();
        let pool: Vec<Features> = texts.iter().map(|t| f(t)).collect();
        let keys: Vec<u64> = (0..60).map(|i| key_of(&i.to_string())).collect();
        let chosen = choose(&pool, &keys, 30, |i| i % 2 == 0);
        assert_eq!(chosen.len(), 30);
        let mut unique = chosen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 30);
        assert_eq!(
            chosen,
            choose(&pool, &keys, 30, |i| i % 2 == 0),
            "repeatable"
        );
        assert_eq!(choose(&pool, &keys, 100, |_| true).len(), 60);
    }
}

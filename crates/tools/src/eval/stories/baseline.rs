//! The classic anchor: incremental tf-idf first-story clustering (Allan, Papka and Lavrenko
//! 1998; Petrović et al. 2010 without hashing). Each post joins the most similar cluster active
//! in the window, by cosine to its centroid, or starts a new one; idf counts every post seen.

use std::collections::HashMap;

use crate::stories::features::{term_of, words};

struct Cluster {
    centroid: HashMap<u32, f32>,
    norm: f32,
    last_ms: i64,
}

/// The baseline clusterer; cluster ids are their order of creation.
pub struct TfIdfClustering {
    threshold: f32,
    window_ms: i64,
    df: HashMap<u32, u32>,
    docs: u32,
    clusters: Vec<Cluster>,
    index: HashMap<u32, Vec<usize>>,
}

impl TfIdfClustering {
    pub fn new(threshold: f32, window_secs: i64) -> Self {
        TfIdfClustering {
            threshold,
            window_ms: window_secs * 1000,
            df: HashMap::new(),
            docs: 0,
            clusters: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Places a post; answers its cluster.
    pub fn place(&mut self, at_ms: i64, text: &str) -> usize {
        let mut terms: Vec<u32> = words(text).iter().map(|w| term_of(w)).collect();
        terms.sort_unstable();
        terms.dedup();
        self.docs += 1;
        let n = self.docs as f32;
        let mut vector: Vec<(u32, f32)> = terms
            .iter()
            .map(|&t| {
                let df = self.df.entry(t).or_insert(0);
                *df += 1;
                (t, ((n + 1.0) / (*df as f32 + 1.0)).ln() + 1.0)
            })
            .collect();
        let norm = vector
            .iter()
            .map(|(_, w)| w * w)
            .sum::<f32>()
            .sqrt()
            .max(f32::EPSILON);
        for (_, w) in &mut vector {
            *w /= norm;
        }
        let mut dots: HashMap<usize, f32> = HashMap::new();
        for &(t, w) in &vector {
            for &c in self.index.get(&t).into_iter().flatten() {
                let cluster = &self.clusters[c];
                if cluster.last_ms + self.window_ms < at_ms {
                    continue;
                }
                *dots.entry(c).or_default() += w * cluster.centroid[&t];
            }
        }
        let best = dots
            .into_iter()
            .map(|(c, dot)| (c, dot / self.clusters[c].norm.max(f32::EPSILON)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let chosen = match best {
            Some((c, sim)) if sim >= self.threshold => c,
            _ => {
                self.clusters.push(Cluster {
                    centroid: HashMap::new(),
                    norm: 0.0,
                    last_ms: at_ms,
                });
                self.clusters.len() - 1
            }
        };
        let cluster = &mut self.clusters[chosen];
        for (t, w) in vector {
            let entry = cluster.centroid.entry(t).or_insert_with(|| {
                self.index.entry(t).or_default().push(chosen);
                0.0
            });
            *entry += w;
        }
        cluster.norm = cluster.centroid.values().map(|w| w * w).sum::<f32>().sqrt();
        cluster.last_ms = cluster.last_ms.max(at_ms);
        chosen
    }

    /// Approximate bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.df.capacity() * 16
            + self
                .clusters
                .iter()
                .map(|c| 64 + c.centroid.capacity() * 16)
                .sum::<usize>()
            + self
                .index
                .values()
                .map(|v| 32 + v.capacity() * 8)
                .sum::<usize>()
    }
}

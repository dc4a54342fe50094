//! What analysis adds to resident memory while the pipeline is saturated, as an estimate from
//! the settings: the figure of "At full load" in docs/operations.md, which the hostile
//! benchmark prints beside the growth it measures.
//!
//! Each worker runs one inference call at a time; ONNX Runtime frees a call's activations
//! after it (its arena is off by default) and the allocator keeps the pages for the next call,
//! so a busy process holds every worker's largest call at once.

use crate::config::{Backend, Settings};

/// The sizes that decide an encoder's activations.
#[derive(Debug, Clone, Copy)]
pub struct EncoderShape {
    pub heads: u64,
    pub hidden: u64,
    pub feed_forward: u64,
}

/// The shipped encoders' sizes: the 4-layer MiniLM and multilingual E5-small share them.
pub const SHIPPED: EncoderShape = EncoderShape {
    heads: 12,
    hidden: 384,
    feed_forward: 1_536,
};

/// The shipped bundles' token limit.
pub const SHIPPED_MAX_LENGTH: u64 = 128;

impl EncoderShape {
    /// Bytes of activations one text of `tokens` tokens holds at the peak of a layer:
    /// attention scores and their softmax (2 · heads · L²), the feed-forward layer and its
    /// activation (2 · L · feed_forward) and a few hidden states (4 · L · hidden), as f32.
    /// Layers run one after another, so their number does not count.
    pub fn bytes_per_text(&self, tokens: u64) -> u64 {
        let l = tokens;
        4 * (2 * self.heads * l * l + 2 * l * self.feed_forward + 4 * l * self.hidden)
    }
}

/// Bytes over idle memory at full load: every worker's call with a full batch of texts at the
/// token limit (none for the lexicon), and request bodies at their budget.
pub fn full_load_bytes(settings: &Settings) -> u64 {
    let bodies = settings.limits.body_memory_bytes as u64;
    let a = &settings.analyzer;
    if a.backend == Backend::Lexicon {
        return bodies;
    }
    let workers = Settings::threads_or_cores(a.workers) as u64;
    let tokens = match a.max_length as u64 {
        0 => SHIPPED_MAX_LENGTH,
        n => n.min(SHIPPED_MAX_LENGTH),
    };
    workers * a.batch_size as u64 * SHIPPED.bytes_per_text(tokens) + bodies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_figures() {
        // docs/operations.md, "At full load": 3.75 MiB a text, 240 MiB for 2 workers.
        assert_eq!(SHIPPED.bytes_per_text(128), 3_932_160);
        let mut s = Settings::default();
        s.analyzer.backend = Backend::Onnx;
        s.analyzer.workers = 2;
        let activations = full_load_bytes(&s) - s.limits.body_memory_bytes as u64;
        assert_eq!(activations, 251_658_240);
        s.analyzer.batch_size = 16;
        s.analyzer.max_length = 64;
        assert!(full_load_bytes(&s) - (s.limits.body_memory_bytes as u64) < activations / 4);
        s.analyzer.backend = Backend::Lexicon;
        assert_eq!(full_load_bytes(&s), s.limits.body_memory_bytes as u64);
    }
}

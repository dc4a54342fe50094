//! Deep versus broad spreading, from structural virality (the mean distance between two
//! nodes of the share tree). A pure broadcast (every share straight from the post) of `k`
//! shares has structural virality `2k / (k + 1) < 2`; a chain of `n` nodes has `(n + 1) / 3`.

use serde::{Deserialize, Serialize};

use super::cascade::Structure;

/// Below this structural virality a cascade is broad (a broadcast, possibly with short
/// second generations).
pub const BROAD_BELOW: f64 = 2.5;
/// At or above this structural virality a cascade is deep (chains of reshares).
pub const DEEP_FROM: f64 = 4.0;
/// Fewer shares than this are too few to spread either way: broad.
pub const MIN_SHARES: u64 = 3;

/// How a cascade spreads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dynamics {
    Deep,
    Broad,
    Hybrid,
}

impl Dynamics {
    /// The lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Dynamics::Deep => "deep",
            Dynamics::Broad => "broad",
            Dynamics::Hybrid => "hybrid",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Dynamics> {
        [Dynamics::Deep, Dynamics::Broad, Dynamics::Hybrid]
            .into_iter()
            .find(|d| d.as_str() == s)
    }

    /// Classifies a tree of `shares` shares with `structure`.
    pub fn of(structure: &Structure, shares: u64) -> Dynamics {
        let sv = structure.structural_virality;
        if shares < MIN_SHARES || sv < BROAD_BELOW {
            Dynamics::Broad
        } else if sv >= DEEP_FROM {
            Dynamics::Deep
        } else {
            Dynamics::Hybrid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cascade::{structure_of, ROOT};
    use super::*;

    #[test]
    fn stars_are_broad_chains_deep_and_mixtures_hybrid() {
        let star = structure_of(&[ROOT; 50]);
        assert_eq!(Dynamics::of(&star, 50), Dynamics::Broad);
        let chain: Vec<u32> = (0..50).map(|i| if i == 0 { ROOT } else { i - 1 }).collect();
        assert_eq!(Dynamics::of(&structure_of(&chain), 50), Dynamics::Deep);
        // Five direct shares, each with five reshares of its own.
        let mut parents = vec![ROOT; 5];
        for p in 0..5 {
            parents.extend(std::iter::repeat_n(p, 5));
        }
        let s = structure_of(&parents);
        assert_eq!(Dynamics::of(&s, 30), Dynamics::Hybrid, "{s:?}");
        assert_eq!(Dynamics::of(&structure_of(&[ROOT, 0]), 2), Dynamics::Broad);
    }
}

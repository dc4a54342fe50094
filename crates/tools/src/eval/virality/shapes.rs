//! What cascades look like, to set real ones beside the generator's: final size, how long
//! until half of it, depth, structural virality, the share of direct shares, and the delays of
//! direct shares (after the post) and of reshares (after the share they came through).

use serde::Serialize;

use super::data::TrueCascade;
use super::metrics::quantile_of;
use crate::virality::cascade::{structure_of, ROOT};

/// Quantiles reported: 10%, 50%, 90%.
pub const LEVELS: [f64; 3] = [0.1, 0.5, 0.9];

/// Shapes of a set of cascades with at least `min_shares` shares.
#[derive(Debug, Clone, Serialize)]
pub struct Shapes {
    pub cascades: usize,
    pub final_size: [f64; 3],
    pub minutes_to_half: [f64; 3],
    pub depth: [f64; 3],
    pub structural_virality: [f64; 3],
    pub direct_share: [f64; 3],
    pub direct_delay_minutes: [f64; 3],
    pub reshare_delay_minutes: [f64; 3],
}

fn quantiles(mut v: Vec<f64>) -> [f64; 3] {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    LEVELS.map(|q| quantile_of(&v, q))
}

impl Shapes {
    pub fn of(cascades: &[TrueCascade], min_shares: u64) -> Shapes {
        let kept: Vec<&TrueCascade> = cascades
            .iter()
            .filter(|c| c.size() >= min_shares.max(1))
            .collect();
        let (mut sizes, mut halves, mut depths, mut virality, mut direct) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut direct_delays, mut reshare_delays) = (Vec::new(), Vec::new());
        for c in &kept {
            let size = c.size() as f64;
            sizes.push(size);
            let mut times: Vec<f64> = c.shares.iter().map(|s| s.at - c.created_at).collect();
            times.sort_by(f64::total_cmp);
            halves.push(times[(times.len() - 1) / 2] / 60.0);
            let parents: Vec<u32> = c.shares.iter().map(|s| s.parent).collect();
            let s = structure_of(&parents);
            depths.push(f64::from(s.depth));
            virality.push(s.structural_virality);
            let mut roots = 0usize;
            for share in &c.shares {
                match c.shares.get(share.parent as usize) {
                    Some(p) if share.parent != ROOT => {
                        reshare_delays.push((share.at - p.at) / 60.0);
                    }
                    _ => {
                        roots += 1;
                        direct_delays.push((share.at - c.created_at) / 60.0);
                    }
                }
            }
            direct.push(roots as f64 / c.shares.len().max(1) as f64);
        }
        Shapes {
            cascades: kept.len(),
            final_size: quantiles(sizes),
            minutes_to_half: quantiles(halves),
            depth: quantiles(depths),
            structural_virality: quantiles(virality),
            direct_share: quantiles(direct),
            direct_delay_minutes: quantiles(direct_delays),
            reshare_delay_minutes: quantiles(reshare_delays),
        }
    }

    /// The rows of a markdown table, one per measure, with this set's 10/50/90% in one cell.
    pub fn cells(&self) -> Vec<(&'static str, String)> {
        let f = |q: [f64; 3], digits: usize| {
            format!("{:.digits$} / {:.digits$} / {:.digits$}", q[0], q[1], q[2])
        };
        vec![
            ("final size", f(self.final_size, 0)),
            ("minutes to half the final size", f(self.minutes_to_half, 1)),
            ("depth", f(self.depth, 0)),
            ("structural virality", f(self.structural_virality, 2)),
            ("share of direct shares", f(self.direct_share, 2)),
            (
                "direct share delay, minutes",
                f(self.direct_delay_minutes, 1),
            ),
            ("reshare delay, minutes", f(self.reshare_delay_minutes, 1)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virality::cascade::ShareNode;

    #[test]
    fn shapes_of_a_chain_and_a_star() {
        let node = |at: f64, parent: u32| ShareNode {
            at,
            followers: None,
            parent,
            weight: 1,
        };
        let chain = TrueCascade {
            id: "chain".into(),
            platform: None,
            author_followers: 0,
            created_at: 0.0,
            shares: (0..4)
                .map(|i| node(60.0 * f64::from(i + 1), if i == 0 { ROOT } else { i - 1 }))
                .collect(),
            prior: None,
        };
        let s = Shapes::of(&[chain], 1);
        assert_eq!(s.cascades, 1);
        assert_eq!(s.depth[1], 4.0);
        assert_eq!(s.direct_share[1], 0.25);
        assert_eq!(s.reshare_delay_minutes[1], 1.0);
        assert_eq!(s.minutes_to_half[1], 2.0);
        let star = TrueCascade {
            id: "star".into(),
            platform: None,
            author_followers: 0,
            created_at: 0.0,
            shares: (0..4)
                .map(|i| node(60.0 * f64::from(i + 1), ROOT))
                .collect(),
            prior: None,
        };
        let s = Shapes::of(&[star], 5);
        assert_eq!(s.cascades, 0);
        assert!(s.depth[1].is_nan());
    }
}

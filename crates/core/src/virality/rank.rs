//! Rank correlation, for judging forecasts and the models fitted from the store, and how
//! sure a difference between two of them is.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};

/// Ranks from 1, ties given their average rank.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation (Pearson's over average ranks); NaN when either side is flat.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 {
        return f64::NAN;
    }
    sab / (saa * sbb).sqrt()
}

/// A paired bootstrap over groups of `metric(a) - metric(b)`: the 2.5th, 50th and 97.5th
/// percentiles of `draws` resamples of whole groups.
pub fn paired_bootstrap(
    groups: &[usize],
    draws: usize,
    seed: u64,
    metric: &dyn Fn(&[usize]) -> f64,
) -> (f64, f64, f64) {
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(*g).or_default().push(i);
    }
    let mut keys: Vec<usize> = members.keys().copied().collect();
    keys.sort_unstable();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out: Vec<f64> = (0..draws)
        .map(|_| {
            let mut rows = Vec::with_capacity(groups.len());
            for _ in 0..keys.len() {
                rows.extend(&members[&keys[rng.random_range(0..keys.len())]]);
            }
            metric(&rows)
        })
        .filter(|x| x.is_finite())
        .collect();
    out.sort_by(f64::total_cmp);
    let at = |q: f64| super::fit::quantile_of(&out, q);
    (at(0.025), at(0.5), at(0.975))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_a_hand_computed_case_with_ties() {
        // scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]) = 0.9486832980505138
        let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]);
        assert!((r - 0.948_683_298_050_513_8).abs() < 1e-12, "{r}");
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn a_bootstrap_of_a_constant_difference_is_that_difference() {
        let groups: Vec<usize> = (0..50).map(|i| i % 10).collect();
        let (lo, mid, hi) =
            paired_bootstrap(&groups, 100, 1, &|rows| rows.len() as f64 * 0.0 + 0.25);
        assert_eq!((lo, mid, hi), (0.25, 0.25, 0.25));
    }
}

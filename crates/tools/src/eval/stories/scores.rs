//! Agreement between two partitions of the same posts: adjusted mutual information (arithmetic
//! mean normalisation, as scikit-learn's default) and the adjusted Rand index.

use std::collections::HashMap;

/// Contingency of truth (rows) against prediction (columns).
struct Table {
    n: usize,
    rows: Vec<usize>,
    cols: Vec<usize>,
    cells: HashMap<(usize, usize), usize>,
}

fn table(truth: &[usize], predicted: &[usize]) -> Table {
    let index = |values: &[usize]| {
        let mut ids: HashMap<usize, usize> = HashMap::new();
        let dense: Vec<usize> = values
            .iter()
            .map(|v| {
                let next = ids.len();
                *ids.entry(*v).or_insert(next)
            })
            .collect();
        (dense, ids.len())
    };
    let (t, r) = index(truth);
    let (p, c) = index(predicted);
    let mut rows = vec![0; r];
    let mut cols = vec![0; c];
    let mut cells = HashMap::new();
    for (a, b) in t.iter().zip(&p) {
        rows[*a] += 1;
        cols[*b] += 1;
        *cells.entry((*a, *b)).or_insert(0) += 1;
    }
    Table {
        n: truth.len(),
        rows,
        cols,
        cells,
    }
}

fn entropy(counts: &[usize], n: f64) -> f64 {
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// Adjusted mutual information of two labelings of the same items.
pub fn ami(truth: &[usize], predicted: &[usize]) -> f64 {
    assert_eq!(truth.len(), predicted.len());
    let t = table(truth, predicted);
    let n = t.n as f64;
    if t.n == 0 || (t.rows.len() == 1 && t.cols.len() == 1) {
        return 1.0;
    }
    let mi: f64 = t
        .cells
        .iter()
        .map(|(&(i, j), &nij)| {
            let nij = nij as f64;
            nij / n * (n * nij / (t.rows[i] as f64 * t.cols[j] as f64)).ln()
        })
        .sum();
    let emi = expected_mi(&t);
    let (hu, hv) = (entropy(&t.rows, n), entropy(&t.cols, n));
    let denominator = (hu + hv) / 2.0 - emi;
    if denominator.abs() < 1e-12 {
        return 0.0;
    }
    (mi - emi) / denominator
}

/// Expected mutual information under the hypergeometric model of random labelings with the
/// same cluster sizes (Vinh, Epps and Bailey 2010).
fn expected_mi(t: &Table) -> f64 {
    let n = t.n;
    let ln_fact: Vec<f64> = std::iter::once(0.0)
        .chain((1..=n).scan(0.0, |acc, k| {
            *acc += (k as f64).ln();
            Some(*acc)
        }))
        .collect();
    let nf = n as f64;
    // Columns of equal size contribute equally: group them.
    let mut col_sizes: HashMap<usize, usize> = HashMap::new();
    for &b in &t.cols {
        *col_sizes.entry(b).or_insert(0) += 1;
    }
    let mut emi = 0.0;
    for &a in &t.rows {
        for (&b, &times) in &col_sizes {
            let start = 1.max((a + b).saturating_sub(n));
            let end = a.min(b);
            let mut sum = 0.0;
            for nij in start..=end {
                let term = nij as f64 / nf * (nf * nij as f64 / (a as f64 * b as f64)).ln();
                let log_p = ln_fact[a] + ln_fact[b] + ln_fact[n - a] + ln_fact[n - b]
                    - ln_fact[n]
                    - ln_fact[nij]
                    - ln_fact[a - nij]
                    - ln_fact[b - nij]
                    - ln_fact[n - a - b + nij];
                sum += term * log_p.exp();
            }
            emi += sum * times as f64;
        }
    }
    emi
}

/// Adjusted Rand index of two labelings of the same items.
pub fn ari(truth: &[usize], predicted: &[usize]) -> f64 {
    let t = table(truth, predicted);
    let pairs = |k: usize| (k * k.saturating_sub(1) / 2) as f64;
    let index: f64 = t.cells.values().map(|&c| pairs(c)).sum();
    let rows: f64 = t.rows.iter().map(|&c| pairs(c)).sum();
    let cols: f64 = t.cols.iter().map(|&c| pairs(c)).sum();
    let total = pairs(t.n);
    if total == 0.0 {
        return 1.0;
    }
    let expected = rows * cols / total;
    let max = (rows + cols) / 2.0;
    if (max - expected).abs() < 1e-12 {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts the AMI and ARI of `predicted` against `truth`, within `tolerance`.
    fn assert_scores(truth: &[usize], predicted: &[usize], expected: (f64, f64), tolerance: f64) {
        let (ami, ari) = (ami(truth, predicted), ari(truth, predicted));
        assert!(
            (ami - expected.0).abs() < tolerance,
            "AMI {ami} of {predicted:?}"
        );
        assert!(
            (ari - expected.1).abs() < tolerance,
            "ARI {ari} of {predicted:?}"
        );
    }

    #[test]
    fn identical_partitions_score_one_whatever_the_names() {
        assert_scores(&[0, 0, 1, 1, 2, 2], &[5, 5, 3, 3, 9, 9], (1.0, 1.0), 1e-9);
    }

    #[test]
    fn matches_scikit_learn_on_a_small_case() {
        // scikit-learn 1.x adjusted_mutual_info_score and adjusted_rand_score of the same.
        let (truth, predicted) = ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]);
        assert_scores(&truth, &predicted, (0.298_792_458, 0.242_424_242), 1e-6);
        let truth = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3];
        let predicted = [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5];
        assert_scores(&truth, &predicted, (0.366_180_245, 0.271_646_859), 1e-6);
    }

    #[test]
    fn singletons_earn_nothing() {
        assert_scores(&[0, 0, 0, 1, 1, 1], &[0, 1, 2, 3, 4, 5], (0.0, 0.0), 1e-9);
    }
}

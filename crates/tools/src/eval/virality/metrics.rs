//! Figures of predictions against what happened: ranking (AUC, Kendall's tau), relative error,
//! and the calibration of probabilities.

use serde::Serialize;

/// One row of a calibration table.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRow {
    pub from: f64,
    pub to: f64,
    pub posts: usize,
    pub mean_predicted: f64,
    pub observed_frequency: f64,
}

pub use crate::virality::fit::{median, quantile_of};

/// Kendall's tau-b between two series (ties in either count for neither side). O(n²).
pub fn kendall_tau(pairs: &[(f64, f64)]) -> f64 {
    let (mut concordant, mut discordant, mut ties_x, mut ties_y) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (i, a) in pairs.iter().enumerate() {
        for b in &pairs[i + 1..] {
            let dx = (a.0 - b.0).signum() * f64::from(u8::from(a.0 != b.0));
            let dy = (a.1 - b.1).signum() * f64::from(u8::from(a.1 != b.1));
            if dx == 0.0 && dy == 0.0 {
                continue;
            }
            if dx == 0.0 {
                ties_x += 1.0;
            } else if dy == 0.0 {
                ties_y += 1.0;
            } else if dx == dy {
                concordant += 1.0;
            } else {
                discordant += 1.0;
            }
        }
    }
    let denominator =
        ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)).sqrt();
    if denominator > 0.0 {
        (concordant - discordant) / denominator
    } else {
        f64::NAN
    }
}

/// Area under the ROC curve (ties count half).
pub fn auc(scores: &[(f64, bool)]) -> f64 {
    let mut v: Vec<(f64, bool)> = scores.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = v.iter().filter(|(_, y)| *y).count() as f64;
    let negatives = v.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let mean_rank = (i + j + 1) as f64 / 2.0; // ranks i+1 ..= j
        rank_sum += mean_rank * v[i..j].iter().filter(|(_, y)| *y).count() as f64;
        i = j;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Calibration table over ten probability bins and the expected calibration error.
pub fn calibration_table(scores: &[(f64, bool)]) -> (Vec<CalibrationRow>, f64) {
    let mut rows = Vec::new();
    let mut ece = 0.0;
    let n = scores.len().max(1) as f64;
    for b in 0..10 {
        let (from, to) = (f64::from(b) / 10.0, f64::from(b + 1) / 10.0);
        let inside: Vec<&(f64, bool)> = scores
            .iter()
            .filter(|(p, _)| *p >= from && (*p < to || (b == 9 && *p <= 1.0)))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let k = inside.len() as f64;
        let mean = inside.iter().map(|(p, _)| p).sum::<f64>() / k;
        let freq = inside.iter().filter(|(_, y)| *y).count() as f64 / k;
        ece += k / n * (mean - freq).abs();
        rows.push(CalibrationRow {
            from,
            to,
            posts: inside.len(),
            mean_predicted: mean,
            observed_frequency: freq,
        });
    }
    (rows, ece)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_calibration_helpers() {
        assert_eq!(auc(&[(0.1, false), (0.9, true)]), 1.0);
        assert_eq!(auc(&[(0.5, false), (0.5, true)]), 0.5);
        let (rows, ece) = calibration_table(&[(0.05, false), (0.95, true)]);
        assert_eq!(rows.len(), 2);
        assert!((ece - 0.05).abs() < 1e-9);
    }

    #[test]
    fn kendall_tau_of_orders() {
        let up: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), f64::from(i * i))).collect();
        assert!((kendall_tau(&up) - 1.0).abs() < 1e-12);
        let down: Vec<(f64, f64)> = up.iter().map(|&(x, y)| (x, -y)).collect();
        assert!((kendall_tau(&down) + 1.0).abs() < 1e-12);
        // One swapped pair of 4: 5 concordant, 1 discordant.
        let one = [(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (4.0, 4.0)];
        assert!((kendall_tau(&one) - 4.0 / 6.0).abs() < 1e-12);
        assert!(kendall_tau(&[(1.0, 1.0), (1.0, 2.0)]).is_nan());
    }
}

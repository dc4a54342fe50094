//! How well forecasts rank, fit and bound what happened.

use std::collections::HashMap;

pub fn mean_abs_error(predicted: &[f64], truth: &[f64]) -> f64 {
    predicted
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t).abs())
        .sum::<f64>()
        / truth.len().max(1) as f64
}

/// Mean squared error of probabilities against outcomes.
pub fn brier(probability: &[f64], outcome: &[bool]) -> f64 {
    probability
        .iter()
        .zip(outcome)
        .map(|(p, &o)| (p - f64::from(u8::from(o))).powi(2))
        .sum::<f64>()
        / outcome.len().max(1) as f64
}

/// Of the pairs of cascades by one author with different final sizes, the share the forecast
/// orders the same way (ties in the forecast count half); NaN without such pairs.
pub fn same_author_order(authors: &[String], predicted: &[f64], truth: &[f64]) -> f64 {
    let mut by_author: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, a) in authors.iter().enumerate() {
        by_author.entry(a).or_default().push(i);
    }
    let (mut right, mut pairs) = (0.0, 0.0);
    for rows in by_author.values() {
        for (k, &i) in rows.iter().enumerate() {
            for &j in &rows[k + 1..] {
                if truth[i] == truth[j] {
                    continue;
                }
                pairs += 1.0;
                let agree = (predicted[i] - predicted[j]) * (truth[i] - truth[j]);
                right += if agree > 0.0 {
                    1.0
                } else if agree == 0.0 {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    if pairs == 0.0 {
        f64::NAN
    } else {
        right / pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_of_one_author_are_counted_within_the_author() {
        let authors: Vec<String> = ["a", "a", "a", "b"].iter().map(|s| s.to_string()).collect();
        let truth = [1.0, 2.0, 3.0, 0.0];
        // a: (0,1) right, (0,2) right, (1,2) wrong; b has no pair.
        let predicted = [0.0, 5.0, 4.0, 100.0];
        assert!((same_author_order(&authors, &predicted, &truth) - 2.0 / 3.0).abs() < 1e-12);
    }
}

//! Ridge regression on standardised features, cross-validated over grouped folds: how the
//! reach forecast is fitted, offline on a labelled set and live from a platform's store.

use super::fit::quantile_of;
use super::forecast::{Weight, LEVELS};

/// Penalties the inner cross-validation picks from.
pub const ALPHAS: [f64; 5] = [1.0, 10.0, 100.0, 300.0, 1000.0];

/// A ridge fit: standardisation and weights of each column, and the intercept.
#[derive(Debug, Clone)]
pub struct Ridge {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub weight: Vec<f64>,
    pub intercept: f64,
}

impl Ridge {
    /// Fits rows `x` to `y` with penalty `alpha`, using only the columns `use_col` allows
    /// (the others get weight 0).
    pub fn fit(x: &[Vec<f64>], y: &[f64], alpha: f64, use_col: &dyn Fn(usize) -> bool) -> Ridge {
        let n = x.len().max(1) as f64;
        let p = x.first().map_or(0, Vec::len);
        let mut mean = vec![0.0; p];
        let mut scale = vec![0.0; p];
        for row in x {
            for (j, v) in row.iter().enumerate() {
                mean[j] += v / n;
            }
        }
        for row in x {
            for (j, v) in row.iter().enumerate() {
                scale[j] += (v - mean[j]).powi(2) / n;
            }
        }
        let cols: Vec<usize> = (0..p).filter(|&j| use_col(j) && scale[j] > 1e-12).collect();
        for s in &mut scale {
            *s = s.sqrt();
        }
        let y_mean = y.iter().sum::<f64>() / n;
        let k = cols.len();
        // Normal equations (Z'Z + alpha I) w = Z'(y - mean y) over the used columns.
        let mut a = vec![vec![0.0; k + 1]; k];
        for (row, &target) in x.iter().zip(y) {
            let z: Vec<f64> = cols
                .iter()
                .map(|&j| (row[j] - mean[j]) / scale[j])
                .collect();
            for r in 0..k {
                for c in 0..k {
                    a[r][c] += z[r] * z[c];
                }
                a[r][k] += z[r] * (target - y_mean);
            }
        }
        for (r, row) in a.iter_mut().enumerate() {
            row[r] += alpha;
        }
        let solved = solve(a);
        let mut weight = vec![0.0; p];
        for (i, &j) in cols.iter().enumerate() {
            weight[j] = solved[i];
        }
        Ridge {
            mean,
            scale,
            weight,
            intercept: y_mean,
        }
    }

    pub fn predict(&self, row: &[f64]) -> f64 {
        self.intercept
            + row
                .iter()
                .enumerate()
                .filter(|(j, _)| self.weight[*j] != 0.0)
                .map(|(j, v)| self.weight[j] * (v - self.mean[j]) / self.scale[j])
                .sum::<f64>()
    }

    /// The weights as the shipped model keeps them.
    pub fn weights(&self, names: &[&str]) -> Vec<Weight> {
        names
            .iter()
            .enumerate()
            .map(|(j, name)| Weight {
                name: name.to_string(),
                mean: self.mean[j],
                scale: if self.weight[j] == 0.0 {
                    0.0
                } else {
                    self.scale[j]
                },
                weight: self.weight[j],
            })
            .collect()
    }
}

/// Gaussian elimination with partial pivoting on an augmented k x (k+1) matrix.
fn solve(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let k = a.len();
    for col in 0..k {
        let pivot = (col..k)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        let d = a[col][col];
        if d.abs() < 1e-12 {
            continue;
        }
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / d;
                if f != 0.0 {
                    for (x, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                        *x -= f * p;
                    }
                }
            }
        }
    }
    (0..k)
        .map(|i| {
            if a[i][i].abs() < 1e-12 {
                0.0
            } else {
                a[i][k] / a[i][i]
            }
        })
        .collect()
}

/// Out-of-fold predictions of a ridge with penalty `alpha` over `fold` (rows of fold f
/// predicted by a fit on the others).
pub fn out_of_fold(
    x: &[Vec<f64>],
    y: &[f64],
    fold: &[usize],
    alpha: f64,
    use_col: &dyn Fn(usize) -> bool,
) -> Vec<f64> {
    let k = fold.iter().max().map_or(0, |m| m + 1);
    let mut out = vec![0.0; y.len()];
    for f in 0..k {
        let (tx, ty): (Vec<Vec<f64>>, Vec<f64>) = x
            .iter()
            .zip(y)
            .zip(fold)
            .filter(|(_, &g)| g != f)
            .map(|((r, &t), _)| (r.clone(), t))
            .unzip();
        let model = Ridge::fit(&tx, &ty, alpha, use_col);
        for i in (0..y.len()).filter(|&i| fold[i] == f) {
            out[i] = model.predict(&x[i]);
        }
    }
    out
}

/// The penalty of [`ALPHAS`] with the least absolute error out of fold.
pub fn pick_alpha(
    x: &[Vec<f64>],
    y: &[f64],
    fold: &[usize],
    use_col: &dyn Fn(usize) -> bool,
) -> f64 {
    let mae = |alpha: f64| {
        let p = out_of_fold(x, y, fold, alpha, use_col);
        p.iter().zip(y).map(|(a, b)| (a - b).abs()).sum::<f64>()
    };
    ALPHAS
        .iter()
        .copied()
        .min_by(|a, b| mae(*a).total_cmp(&mae(*b)))
        .unwrap_or(100.0)
}

/// Quantiles at [`LEVELS`] of `values`.
pub fn level_quantiles(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    LEVELS.iter().map(|&l| quantile_of(&v, l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_linear_relation_and_leaves_out_what_it_is_told() {
        let x: Vec<Vec<f64>> = (0..200)
            .map(|i| {
                let a = i as f64 / 10.0;
                vec![a, (i % 7) as f64, 3.0]
            })
            .collect();
        let y: Vec<f64> = x.iter().map(|r| 2.0 * r[0] - r[1] + 1.0).collect();
        let m = Ridge::fit(&x, &y, 1e-6, &|_| true);
        assert!((m.predict(&[4.0, 2.0, 3.0]) - 7.0).abs() < 1e-3);
        // A constant column gets no weight.
        assert_eq!(m.weight[2], 0.0);
        let without = Ridge::fit(&x, &y, 1e-6, &|j| j != 1);
        assert_eq!(without.weight[1], 0.0);
        assert!(without.weight[0] > 0.0);
    }
}

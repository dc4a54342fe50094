//! The log-normal distributions the generator draws audiences, quality, pace and noise from.

use rand_distr::LogNormal;

/// A log-normal distribution by its median and the spread (sigma) of its logarithm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogNormalParams {
    pub median: f64,
    pub sigma: f64,
}

impl LogNormalParams {
    pub(crate) fn distribution(self) -> LogNormal<f64> {
        LogNormal::new(self.median.ln(), self.sigma).expect("finite sigma")
    }
}

/// A log-normal with mean 1, for multiplicative noise that does not shift averages.
pub(crate) fn mean_one(sigma: f64) -> LogNormal<f64> {
    LogNormal::new(-sigma * sigma / 2.0, sigma).expect("finite sigma")
}

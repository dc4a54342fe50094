//! Early prediction of a cascade's final size with a self-exciting point process, in the
//! manner of SEISMIC (Zhao et al., KDD 2015).
//!
//! Every share `i`, seen at `t_i` from an account with `n_i` followers, triggers further
//! shares at rate `p · w(n_i) · φ(t − t_i)`, where `φ` is a power-law memory kernel and
//! `w(n) = min((n / n_ref)^κ, w_max) / w̄` weighs a sharer's audience (SEISMIC takes `w(n) =
//! n`; `κ` is fitted, see `pulse eval virality`). The post itself draws "direct" shares.
//!
//! At observation time `t`:
//!
//! - **infectiousness** `p̂ = (C + s·m₀) / (Σᵢ w(nᵢ)·Φ(t − tᵢ) + s)`: the shares observed to
//!   come through another share (`C`) over the kernel-weighted exposure of the shares seen,
//!   shrunk towards the population mean `m₀` with `s` pseudo-exposure;
//! - **direct shares still to come** from a Gamma–Poisson posterior whose prior mean grows
//!   with the author's followers (`a · F^β`, shape `k`): `λ̂ = (k + D) / (k / (a F^β) + Φ(t))`,
//!   remaining `λ̂ · (1 − Φ(t))`;
//! - **final size** from the branching factor: every share still to come directly
//!   (`R₀ + p̂ Σᵢ w(nᵢ)(1 − Φ(t − tᵢ))`) starts a sub-cascade of expected size `1 / (1 − p̂)`,
//!   so `N̂ = N_t + (R₀ + R₁) / (1 − p̂)`, with `p̂` capped below 1;
//! - **variance** of what remains, a compound Poisson of sub-cascades with Poisson offspring:
//!   `(R₀ + R₁) / (1 − p̂)³`.

use serde::{Deserialize, Serialize};

use super::cascade::{ShareNode, ROOT};

/// Parameters of the point process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelParams {
    /// Kernel `φ(s) = (θ / s₀)(1 + s / s₀)^−(1+θ)`: scale `s₀` in seconds.
    pub kernel_scale_s: f64,
    /// Kernel tail exponent `θ` (excitation decays as `s^−(1+θ)`).
    pub kernel_shape: f64,
    /// Follower exponent `κ` of a sharer's weight.
    pub follower_exponent: f64,
    /// Follower count of weight 1 before normalisation.
    pub follower_ref: f64,
    /// Largest weight of one sharer before normalisation.
    pub max_weight: f64,
    /// Mean weight of sharers, so normalised weights average 1.
    pub weight_mean: f64,
    /// Prior mean of a post's direct shares: `a · F^β`.
    pub root_coef: f64,
    pub root_exponent: f64,
    /// Gamma shape of the direct-share rate across posts with the same audience.
    pub root_shape: f64,
    /// Population mean infectiousness `m₀` and its weight in pseudo-exposure `s`.
    pub branching_prior: f64,
    pub branching_strength: f64,
    /// Largest infectiousness used (the process is kept subcritical).
    pub max_branching: f64,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            kernel_scale_s: 60.0,
            kernel_shape: 1.5,
            follower_exponent: 0.15,
            follower_ref: 150.0,
            max_weight: 4.0,
            weight_mean: 1.0,
            root_coef: 0.2,
            root_exponent: 0.4,
            root_shape: 1.1,
            branching_prior: 0.45,
            branching_strength: 3.0,
            max_branching: 0.995,
        }
    }
}

impl ModelParams {
    /// Kernel mass elapsed `s` seconds after an event: `Φ(s) = 1 − (1 + s/s₀)^−θ`.
    pub fn kernel_cdf(&self, s: f64) -> f64 {
        if s.is_nan() || s <= 0.0 {
            return 0.0;
        }
        1.0 - (1.0 + s / self.kernel_scale_s).powf(-self.kernel_shape)
    }

    /// Normalised weight of a sharer with `followers` (1 when unknown).
    pub fn weight(&self, followers: Option<u64>) -> f64 {
        match followers {
            None => 1.0,
            Some(f) => {
                let raw = (f.max(1) as f64 / self.follower_ref)
                    .powf(self.follower_exponent)
                    .min(self.max_weight);
                raw / self.weight_mean.max(1e-9)
            }
        }
    }

    /// Prior mean of a post's direct shares for an author with `followers`.
    pub fn root_mean(&self, followers: u64) -> f64 {
        (self.root_coef * (followers.max(1) as f64).powf(self.root_exponent)).max(1e-6)
    }
}

/// What the process says at one observation time, before calibration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RawPrediction {
    /// Shares observed up to the observation time.
    pub observed: f64,
    /// Expected shares still to come.
    pub remaining: f64,
    /// Variance of the shares still to come.
    pub variance: f64,
    /// Estimated infectiousness `p̂` (after the cap).
    pub branching: f64,
    /// Seconds from the post to the observation.
    pub age_s: f64,
}

impl RawPrediction {
    /// Expected final size.
    pub fn expected_final(&self) -> f64 {
        self.observed + self.remaining
    }
}

/// Predicts from the shares of a post created at `origin` (Unix seconds) by an author with
/// `author_followers`, observed at `at`. Shares after `at` are ignored. O(n).
pub fn predict(
    params: &ModelParams,
    origin: f64,
    author_followers: u64,
    shares: &[ShareNode],
    extra_shares: u64,
    at: f64,
) -> RawPrediction {
    let age = (at - origin).max(0.0);
    let mut observed = extra_shares as f64;
    let mut direct = 0.0;
    let mut children = 0.0;
    let mut exposure = 0.0;
    let mut open = 0.0;
    for s in shares {
        if s.at > at {
            continue;
        }
        let weight = f64::from(s.weight);
        observed += weight;
        if s.parent == ROOT || shares.get(s.parent as usize).is_some_and(|p| p.at > at) {
            direct += weight;
        } else {
            children += weight;
        }
        let w = params.weight(s.followers) * weight;
        let elapsed = params.kernel_cdf(at - s.at);
        exposure += w * elapsed;
        open += w * (1.0 - elapsed);
    }
    let strength = params.branching_strength.max(1e-6);
    let branching = ((children + strength * params.branching_prior) / (exposure + strength))
        .clamp(0.0, params.max_branching);
    let elapsed_root = params.kernel_cdf(age);
    let k = params.root_shape.max(1e-3);
    let rate = (k + direct) / (k / params.root_mean(author_followers) + elapsed_root);
    let root_left = rate * (1.0 - elapsed_root);
    let first_generation = root_left + branching * open;
    let amplifier = 1.0 / (1.0 - branching);
    let remaining = first_generation * amplifier;
    RawPrediction {
        observed,
        remaining: if remaining.is_finite() {
            remaining
        } else {
            0.0
        },
        variance: first_generation * amplifier.powi(3),
        branching,
        age_s: age,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(at: f64, parent: u32) -> ShareNode {
        ShareNode {
            at,
            followers: Some(150),
            parent,
            weight: 1,
        }
    }

    #[test]
    fn the_kernel_is_a_distribution() {
        let p = ModelParams::default();
        assert_eq!(p.kernel_cdf(0.0), 0.0);
        assert!(p.kernel_cdf(60.0) > 0.5);
        assert!(p.kernel_cdf(1e9) > 0.999);
        assert_eq!(p.kernel_cdf(f64::NAN), 0.0);
    }

    #[test]
    fn a_quiet_cascade_expects_less_and_less() {
        let p = ModelParams::default();
        let shares: Vec<ShareNode> = (0..20).map(|i| share(f64::from(i), ROOT)).collect();
        let mut last = f64::INFINITY;
        for age in [30.0, 120.0, 600.0, 3600.0, 36000.0] {
            let r = predict(&p, 0.0, 1000, &shares, 0, age);
            assert_eq!(r.observed, 20.0);
            assert!(r.remaining < last, "{age}: {r:?}");
            assert!(r.variance >= 0.0);
            last = r.remaining;
        }
        assert!(last < 1.0);
    }

    #[test]
    fn chains_raise_infectiousness() {
        let p = ModelParams::default();
        let star: Vec<ShareNode> = (0..30).map(|i| share(f64::from(i), ROOT)).collect();
        let chain: Vec<ShareNode> = (0..30)
            .map(|i| share(f64::from(i) * 10.0, if i == 0 { ROOT } else { i - 1 }))
            .collect();
        let a = predict(&p, 0.0, 100, &star, 0, 300.0);
        let b = predict(&p, 0.0, 100, &chain, 0, 300.0);
        assert!(b.branching > a.branching);
    }

    #[test]
    fn nonsense_input_stays_finite() {
        let p = ModelParams::default();
        let shares = vec![share(f64::MAX, ROOT), share(-1e300, 7)];
        let r = predict(&p, f64::MAX, u64::MAX, &shares, u64::MAX, f64::MAX);
        assert!(r.remaining.is_finite() && r.observed.is_finite());
    }
}

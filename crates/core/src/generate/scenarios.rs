//! Demo scenarios: the events Pulse exists to catch, laid over the steady feed on a timetable,
//! so a demo shows them within its first minutes and again at intervals.
//!
//! Every [`CYCLE_S`] of virtual time (15 minutes), counted from the generator's start:
//!
//! - at 0:40, a **product incident**: an outage wave of angry, sad and churn-intent posts about
//!   one product, four in five through the support channel, from one country's cities. It
//!   ramps up over 30 s, holds 90 s and fades over 60 s; at its peak it adds three times the
//!   steady rate. Within it the default negativity and churn rules fire; once their baselines
//!   hold six earlier windows (the third incident, after 30 minutes, with the default rules'
//!   5-minute windows) so do the volume spike and sentiment dip rules.
//! - at 1:10, a **post that goes viral**: a large account's post whose cascade is drawn as a
//!   viral one (the same process and delays as every cascade, with the direct shares of the
//!   largest real cascades and the pace of the fastest tenth), so hundreds of shares arrive
//!   within two minutes and the post is classified viral before it reaches the threshold.
//! - at 7:00, a **praise wave**: joy and optimism about another product, through campaign and
//!   influencer channels, adding twice the steady rate for two and a half minutes.
//!
//! Which product, country and tone each cycle uses is drawn from the generator's random
//! source, so a seed replays the same demo. Wave posts come as a Poisson process whose rate
//! follows the wave's shape (drawn by thinning), like the steady posts.

use rand::distr::Distribution;
use rand::rngs::SmallRng;
use rand::Rng;
use rand_distr::Exp;

use super::text::Flavor;
use super::world::{Channel, CITIES, PRODUCTS};

/// Length of one round of scenarios, in virtual seconds.
pub(crate) const CYCLE_S: f64 = 900.0;
/// When the viral post comes, in seconds into a cycle.
const VIRAL_AT_S: f64 = 70.0;

/// The two waves of a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wave {
    Incident,
    Praise,
}

/// A wave's timing (seconds into its cycle) and strength (times the steady rate, at its peak).
struct Shape {
    wave: Wave,
    start_s: f64,
    ramp_s: f64,
    hold_s: f64,
    fade_s: f64,
    peak: f64,
}

const SHAPES: [Shape; 2] = [
    Shape {
        wave: Wave::Incident,
        start_s: 40.0,
        ramp_s: 30.0,
        hold_s: 90.0,
        fade_s: 60.0,
        peak: 3.0,
    },
    Shape {
        wave: Wave::Praise,
        start_s: 420.0,
        ramp_s: 20.0,
        hold_s: 110.0,
        fade_s: 20.0,
        peak: 2.0,
    },
];

/// The highest rate multiple of any wave: the rate candidates are drawn at.
const PEAK: f64 = 3.0;

impl Shape {
    fn end_s(&self) -> f64 {
        self.start_s + self.ramp_s + self.hold_s + self.fade_s
    }

    /// The wave's rate multiple `s` seconds into its cycle.
    fn intensity(&self, s: f64) -> f64 {
        let t = s - self.start_s;
        if t < 0.0 || s >= self.end_s() {
            0.0
        } else if t < self.ramp_s {
            self.peak * t / self.ramp_s
        } else if t < self.ramp_s + self.hold_s {
            self.peak
        } else {
            self.peak * (self.end_s() - s) / self.fade_s
        }
    }
}

/// What one cycle is about.
#[derive(Debug, Clone, Copy)]
struct Plan {
    cycle: u64,
    /// Indexes into [`PRODUCTS`].
    incident_product: usize,
    praise_product: usize,
    /// Index into [`CITIES`] of one city of the incident's country.
    incident_city: usize,
}

/// What a scenario post is made of; the rest (author, platform, text) is drawn as for any post.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScenarioPost {
    pub flavor: Flavor,
    pub product: usize,
    pub channel: Channel,
    /// Index into [`CITIES`], when the scenario has a region.
    pub city: Option<usize>,
    /// From one of the large accounts, with a cascade drawn as a viral one.
    pub viral: bool,
    /// What the wave is about, in the words its posts share (a real outage's posts say
    /// "outage" and "won't connect"; a campaign's carry its hashtag).
    pub topic: Option<&'static str>,
}

/// What went wrong in an incident; a cycle's is chosen by its number, so the steady feed of a
/// seed is the same whatever the scenarios say.
pub(crate) const ISSUES: [&str; 4] = [
    "outage: servers down, won't connect since the firmware update",
    "battery recall, units overheating while charging",
    "the update bricked it, stuck on the boot logo",
    "login outage, accounts locked out after the password reset",
];

/// What a praise wave celebrates.
pub(crate) const CAMPAIGNS: [&str; 3] = [
    "#LaunchDay the new colours drop is gorgeous",
    "#UnboxingWeek giveaway winners announced",
    "the anniversary edition reveal, limited run",
];

/// The timetable of scenario posts of one generator.
pub(crate) struct Scenarios {
    candidate_gaps: Exp<f64>,
    /// Virtual seconds of the next wave post.
    next_wave_s: f64,
    /// Which wave the next wave post belongs to.
    next_wave: Wave,
    /// Virtual seconds of the next viral post.
    next_viral_s: f64,
    plan: Plan,
}

impl Scenarios {
    /// Scenarios over a steady feed of `posts_per_sec`.
    pub(crate) fn new(rng: &mut SmallRng, posts_per_sec: f64) -> Scenarios {
        let candidate_gaps = Exp::new(posts_per_sec * PEAK).expect("a positive rate");
        let mut scenarios = Scenarios {
            candidate_gaps,
            next_wave_s: 0.0,
            next_wave: Wave::Incident,
            next_viral_s: VIRAL_AT_S,
            plan: plan(rng, 0),
        };
        scenarios.advance_wave(rng);
        scenarios
    }

    /// Virtual seconds of the next scenario post.
    pub(crate) fn next_at_s(&self) -> f64 {
        self.next_wave_s.min(self.next_viral_s)
    }

    /// The scenario post due at [`Scenarios::next_at_s`], and the timetable moved past it.
    pub(crate) fn take(&mut self, rng: &mut SmallRng) -> ScenarioPost {
        if self.next_viral_s <= self.next_wave_s {
            let plan = self.plan_for(rng, self.next_viral_s);
            self.next_viral_s += CYCLE_S;
            return ScenarioPost {
                flavor: if rng.random_bool(0.5) {
                    Flavor::Joy
                } else {
                    Flavor::News
                },
                product: plan.incident_product,
                channel: Channel::Influencer,
                city: None,
                viral: true,
                topic: None,
            };
        }
        let plan = self.plan_for(rng, self.next_wave_s);
        let post = match self.next_wave {
            Wave::Incident => ScenarioPost {
                flavor: match rng.random_range(0..20) {
                    0..=8 => Flavor::Anger,
                    9..=16 => Flavor::Churn,
                    _ => Flavor::Sadness,
                },
                product: plan.incident_product,
                channel: if rng.random_bool(0.8) {
                    Channel::Support
                } else {
                    Channel::Organic
                },
                city: Some(city_near(rng, plan.incident_city)),
                viral: false,
                topic: Some(ISSUES[(plan.cycle as usize + plan.incident_product) % ISSUES.len()]),
            },
            Wave::Praise => ScenarioPost {
                flavor: if rng.random_bool(0.6) {
                    Flavor::Joy
                } else {
                    Flavor::Optimism
                },
                product: plan.praise_product,
                channel: if rng.random_bool(0.6) {
                    Channel::Campaign
                } else {
                    Channel::Influencer
                },
                city: None,
                viral: false,
                topic: Some(
                    CAMPAIGNS[(plan.cycle as usize + plan.praise_product) % CAMPAIGNS.len()],
                ),
            },
        };
        self.advance_wave(rng);
        post
    }

    fn plan_for(&mut self, rng: &mut SmallRng, at_s: f64) -> Plan {
        let cycle = (at_s / CYCLE_S) as u64;
        if cycle != self.plan.cycle {
            self.plan = plan(rng, cycle);
        }
        self.plan
    }

    /// Draws the next wave post: candidates at the peak rate, each kept with the probability
    /// of the wave's rate at its time over the peak (thinning); between waves, straight to the
    /// next one's start.
    fn advance_wave(&mut self, rng: &mut SmallRng) {
        let mut s = self.next_wave_s;
        loop {
            s += self.candidate_gaps.sample(rng);
            let cycle_start = (s / CYCLE_S).floor() * CYCLE_S;
            let into = s - cycle_start;
            match SHAPES.iter().find(|w| into < w.end_s()) {
                Some(shape) if into < shape.start_s => s = cycle_start + shape.start_s,
                Some(shape) => {
                    if rng.random::<f64>() * PEAK < shape.intensity(into) {
                        self.next_wave_s = s;
                        self.next_wave = shape.wave;
                        return;
                    }
                }
                None => s = cycle_start + CYCLE_S,
            }
        }
    }
}

/// A cycle's products and region, drawn so the praised product is not the failing one.
fn plan(rng: &mut SmallRng, cycle: u64) -> Plan {
    let incident_product = rng.random_range(0..PRODUCTS.len());
    let praise_product = (incident_product + rng.random_range(1..PRODUCTS.len())) % PRODUCTS.len();
    Plan {
        cycle,
        incident_product,
        praise_product,
        incident_city: rng.random_range(0..CITIES.len()),
    }
}

/// A city of the same country as `city`: an incident is regional, not one street.
fn city_near(rng: &mut SmallRng, city: usize) -> usize {
    let country = CITIES[city].country;
    let same: Vec<usize> = (0..CITIES.len())
        .filter(|&i| CITIES[i].country == country)
        .collect();
    same[rng.random_range(0..same.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_waves_follow_their_shapes_at_the_steady_rate_multiples() {
        let rate = 5.0;
        let mut rng = SmallRng::seed_from_u64(7);
        let mut scenarios = Scenarios::new(&mut rng, rate);
        let mut counts = [0u32; 4]; // incident hold, praise hold, viral posts, posts outside waves
        let cycles = 40.0;
        while scenarios.next_at_s() < cycles * CYCLE_S {
            let at = scenarios.next_at_s();
            let into = at % CYCLE_S;
            let post = scenarios.take(&mut rng);
            if post.viral {
                counts[2] += 1;
                assert!((into - VIRAL_AT_S).abs() < 1e-6);
                continue;
            }
            let incident = &SHAPES[0];
            let praise = &SHAPES[1];
            let hold =
                |s: &Shape| into >= s.start_s + s.ramp_s && into < s.start_s + s.ramp_s + s.hold_s;
            if hold(incident) {
                assert_eq!(post.flavor.tone(), super::super::text::Tone::Negative);
                counts[0] += 1;
            } else if hold(praise) {
                assert_eq!(post.flavor.tone(), super::super::text::Tone::Positive);
                counts[1] += 1;
            } else if incident.intensity(into) == 0.0 && praise.intensity(into) == 0.0 {
                counts[3] += 1;
            }
        }
        assert_eq!(counts[2], 40);
        assert_eq!(counts[3], 0, "wave posts outside every wave");
        // Expected in the holds: peak × rate × hold seconds × cycles.
        let expect_incident = 3.0 * rate * 90.0 * cycles;
        let expect_praise = 2.0 * rate * 110.0 * cycles;
        for (got, expect) in [(counts[0], expect_incident), (counts[1], expect_praise)] {
            let got = f64::from(got);
            assert!(
                (got - expect).abs() < 4.0 * expect.sqrt(),
                "{got} vs {expect}"
            );
        }
    }

    #[test]
    fn an_incident_stays_on_one_product_and_one_country() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut scenarios = Scenarios::new(&mut rng, 5.0);
        let mut seen = std::collections::BTreeSet::new();
        while scenarios.next_at_s() < CYCLE_S {
            let post = scenarios.take(&mut rng);
            if !post.viral && post.flavor.tone() == super::super::text::Tone::Negative {
                let city = post.city.expect("an incident has a region");
                seen.insert((post.product, CITIES[city].country));
            }
        }
        assert_eq!(seen.len(), 1, "{seen:?}");
    }
}

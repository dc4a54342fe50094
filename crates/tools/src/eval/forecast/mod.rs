//! `pulse eval forecast`: the reach forecast against three baselines (a constant, the author's
//! track record alone, the audience alone where follower counts exist), out of fold over folds
//! that keep each author's and each story's cascades together. With `--write-model`, also fits
//! the model on every cascade and writes it in the form Pulse ships.

pub mod data;
pub mod scores;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::analysis;
use crate::eval::virality::metrics::auc;
use crate::eval::AnalyzerArgs;
use crate::virality::forecast::{
    feature_names, features, interval, reach_probability, Draft, ForecastModel, HeldOutEffect,
    GROUPS,
};
use crate::virality::forecast_fit::{fit_model, FitSpec};
use crate::virality::rank::{paired_bootstrap, spearman};
use crate::virality::ridge::{level_quantiles, out_of_fold, pick_alpha, Ridge};
use scores::{brier, mean_abs_error, same_author_order};

/// Pseudo-cascades an author's record is shrunk by (the best of 0.5 to 16 on Twitter15).
pub const SHRINK: f64 = 4.0;
/// The share of cascades the ranking figures call viral: the top 10% by final size.
pub use crate::virality::forecast_fit::VIRAL_SHARE;
/// The share Pulse calls viral by default (`virality.threshold_quantile`): the top 1%.
pub const PULSE_VIRAL_SHARE: f64 = 0.01;

/// Options of `pulse eval forecast`.
#[derive(Debug, Clone, clap::Args)]
pub struct ForecastEvalArgs {
    /// A folder of propagation trees (`tree/<id>.txt`) with `source_tweets.tsv` (`id<TAB>text`),
    /// or a file of cascades as JSON lines, each with `author`, `text` and `created_at`, and
    /// `author_followers` where known (the virality evaluation's format otherwise).
    #[arg(long)]
    pub data: PathBuf,
    /// The analyzer that reads each text's sentiment and emotion.
    #[command(flatten)]
    pub analyzer: AnalyzerArgs,
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Resamples of the paired bootstrap.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Also fit on every cascade and write the model here (crates/core/src/virality/forecast.json ships).
    #[arg(long)]
    pub write_model: Option<PathBuf>,
    /// Also write each cascade's out-of-fold forecast here, as JSON lines (`id`, `author`,
    /// `forecast` and `truth` in ln(1 + shares), `fold`).
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// One predictor's figures, out of fold.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub predictor: String,
    pub spearman: f64,
    pub mae_log: f64,
    pub auc_top10: f64,
    pub coverage_80: f64,
    pub brier: f64,
    /// 1 - Brier / Brier of the base rate.
    pub brier_skill: f64,
    /// The same for Pulse's own definition of viral (the top 1%).
    pub brier_skill_top1: f64,
    pub same_author_pairs: f64,
    /// Spearman over the cascades whose author had no earlier cascade in the store.
    pub new_authors_spearman: f64,
    pub mae_log_by_fold: Vec<f64>,
    /// The spread across folds (empty for the later period, a single split).
    pub spearman_by_fold: Vec<f64>,
}

/// The run's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cascades: usize,
    pub without_text: usize,
    pub authors: usize,
    pub groups: usize,
    pub new_author_cascades: usize,
    pub viral_threshold_shares: u64,
    pub pulse_viral_threshold_shares: u64,
    pub analyzer: String,
    pub scores: Vec<Scores>,
    /// Pulse minus the track record, Spearman: 2.5%, 50%, 97.5% of a paired bootstrap over
    /// groups.
    pub bootstrap_over_track_record: (f64, f64, f64),
    /// The same against the author's median earlier cascade (authors with none lowest).
    pub bootstrap_over_median: (f64, f64, f64),
    /// Fitted on the earliest cascades, judged on the latest [`LATER_SHARE`].
    pub later_period: LaterPeriod,
    pub effects: Vec<HeldOutEffect>,
    pub alphas: Vec<f64>,
    pub forecast_micros: f64,
    pub analysis_millis_per_text: f64,
}

/// Out-of-fold forecasts of one predictor: each row's point (log) and the residual quantiles
/// its interval and probabilities come from.
#[derive(Default, Clone)]
struct Oof {
    pred: Vec<f64>,
    residuals: Vec<Vec<f64>>,
}

impl Oof {
    fn new(n: usize) -> Self {
        Oof {
            pred: vec![0.0; n],
            residuals: vec![Vec::new(); n],
        }
    }
    fn set(&mut self, i: usize, pred: f64, residuals: &[f64]) {
        self.pred[i] = pred;
        self.residuals[i] = residuals.to_vec();
    }
    /// Whether row `i`'s interval holds `truth`.
    fn covers(&self, i: usize, truth: f64) -> bool {
        let (low, high) = interval(&self.residuals[i], self.pred[i]);
        low <= truth && truth <= high
    }
    /// Each row's probability of reaching ln(1 + shares) `log`.
    fn probabilities(&self, log: f64) -> Vec<f64> {
        self.pred
            .iter()
            .zip(&self.residuals)
            .map(|(p, r)| reach_probability(r, *p, log))
            .collect()
    }
}

/// Where a baseline that ranks authors by their median earlier cascade puts an author with
/// none: below every ln(1 + shares), which is never negative.
const NONE_LOWEST: f64 = -1.0;
/// The share of cascades, the latest, that the later-period check forecasts from the others.
pub const LATER_SHARE: f64 = 0.3;

/// The figures of a model fitted on the earlier cascades only, on the later ones.
#[derive(Debug, Clone, Serialize)]
pub struct LaterPeriod {
    pub cascades: usize,
    /// Unix seconds of the first later cascade.
    pub from: f64,
    pub new_author_cascades: usize,
    pub scores: Vec<Scores>,
}

/// Every predictor's forecasts, filled split by split.
struct Predictions {
    pulse: Oof,
    constant: Oof,
    track: Oof,
    median: Oof,
    audience: Oof,
    /// Pulse's forecasts with each of [`GROUPS`] left out of the fit.
    without: Vec<Vec<f64>>,
    base_rate: Vec<f64>,
    base_rate1: Vec<f64>,
    alphas: Vec<f64>,
}

impl Predictions {
    fn new(n: usize) -> Self {
        Predictions {
            pulse: Oof::new(n),
            constant: Oof::new(n),
            track: Oof::new(n),
            median: Oof::new(n),
            audience: Oof::new(n),
            without: vec![vec![0.0; n]; GROUPS.len()],
            base_rate: vec![0.0; n],
            base_rate1: vec![0.0; n],
            alphas: Vec::new(),
        }
    }
}

/// The rows and what every split of them is judged on.
struct Split<'a> {
    rows: &'a [data::Row],
    drafts: &'a [Draft<'a>],
    groups: &'a [usize],
    y: &'a [f64],
    viral: &'a [bool],
    viral1: &'a [bool],
    viral_log: f64,
    viral1_log: f64,
    followers_exist: bool,
}

/// The median of the ln(1 + shares) of an author's earlier cascades, [`NONE_LOWEST`] without
/// any: the honest baseline, which needs no fitting.
fn median_earlier(row: &data::Row) -> f64 {
    if row.earlier.is_empty() {
        return NONE_LOWEST;
    }
    let mut v = row.earlier.clone();
    v.sort_by(f64::total_cmp);
    crate::eval::virality::metrics::quantile_of(&v, 0.5)
}

impl Split<'_> {
    /// Fits every predictor on `train` and forecasts `test` into `out`.
    fn predict(&self, train: &[usize], test: &[usize], out: &mut Predictions) {
        let (rows, y) = (self.rows, self.y);
        let names = feature_names();
        let audience_cols = |j: usize| matches!(names[j], "log_followers" | "followers_known");
        let prior = train.iter().map(|&i| y[i]).sum::<f64>() / train.len() as f64;
        let x: Vec<Vec<f64>> = self
            .drafts
            .iter()
            .map(|d| features(d, prior, SHRINK))
            .collect();
        let xt: Vec<Vec<f64>> = train.iter().map(|&i| x[i].clone()).collect();
        let yt: Vec<f64> = train.iter().map(|&i| y[i]).collect();
        let inner = data::folds(
            &train.iter().map(|&i| self.groups[i]).collect::<Vec<_>>(),
            3,
            1,
        );
        let all = |_: usize| true;
        let alpha = pick_alpha(&xt, &yt, &inner, &all);
        out.alphas.push(alpha);
        let inner_pred = out_of_fold(&xt, &yt, &inner, alpha, &all);
        let known = |i: usize| rows[i].record.cascades > 0;
        let residuals = |pred: &dyn Fn(usize, usize) -> f64| {
            let split = |want: bool| {
                let r: Vec<f64> = train
                    .iter()
                    .enumerate()
                    .filter(|(_, &i)| known(i) == want)
                    .map(|(k, &i)| y[i] - pred(k, i))
                    .collect();
                level_quantiles(&r)
            };
            (split(true), split(false))
        };
        let (pk, pn) = residuals(&|k, _| inner_pred[k]);
        let model = Ridge::fit(&xt, &yt, alpha, &all);
        let (ck, cn) = residuals(&|_, _| prior);
        let record = |i: usize| rows[i].record.shrunk_mean(prior, SHRINK);
        let (tk, tn) = residuals(&|_, i| record(i));
        let (mk, mn) = residuals(&|_, i| median_earlier(&rows[i]));
        let rate_of =
            |v: &[bool]| train.iter().filter(|&&i| v[i]).count() as f64 / train.len() as f64;
        let (rate, rate1) = (rate_of(self.viral), rate_of(self.viral1));
        let audience_model = self.followers_exist.then(|| {
            let p = out_of_fold(&xt, &yt, &inner, 10.0, &audience_cols);
            let (ak, an) = residuals(&|k, _| p[k]);
            (Ridge::fit(&xt, &yt, 10.0, &audience_cols), ak, an)
        });
        let ablated: Vec<Ridge> = GROUPS
            .iter()
            .map(|(_, members)| {
                Ridge::fit(&xt, &yt, alpha, &|j: usize| !members.contains(&names[j]))
            })
            .collect();
        for &i in test {
            let pick = |k: &Vec<f64>, nw: &Vec<f64>| if known(i) { k.clone() } else { nw.clone() };
            out.pulse.set(i, model.predict(&x[i]), &pick(&pk, &pn));
            out.constant.set(i, prior, &pick(&ck, &cn));
            out.track.set(i, record(i), &pick(&tk, &tn));
            out.median.set(i, median_earlier(&rows[i]), &pick(&mk, &mn));
            if let Some((m, ak, an)) = &audience_model {
                out.audience.set(i, m.predict(&x[i]), &pick(ak, an));
            }
            for (g, m) in ablated.iter().enumerate() {
                out.without[g][i] = m.predict(&x[i]);
            }
            out.base_rate[i] = rate;
            out.base_rate1[i] = rate1;
        }
    }

    /// Every predictor's figures over the rows `idx`, with Pulse's by fold where `folds` says.
    fn scores(
        &self,
        p: &Predictions,
        idx: &[usize],
        folds: Option<(&[usize], usize)>,
    ) -> Vec<Scores> {
        let rows = self.rows;
        let pick = |v: &[f64], on: &[usize]| on.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let pick_bool = |v: &[bool]| idx.iter().map(|&i| v[i]).collect::<Vec<bool>>();
        let (y, viral, viral1) = (
            pick(self.y, idx),
            pick_bool(self.viral),
            pick_bool(self.viral1),
        );
        let authors: Vec<String> = idx.iter().map(|&i| rows[i].author.clone()).collect();
        let new_rows: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| rows[i].record.cascades == 0)
            .collect();
        let base_brier = brier(&pick(&p.base_rate, idx), &viral);
        let base_brier1 = brier(&pick(&p.base_rate1, idx), &viral1);
        let score = |name: &str, o: &Oof| {
            let pred = pick(&o.pred, idx);
            let prob = pick(&o.probabilities(self.viral_log), idx);
            let prob1 = pick(&o.probabilities(self.viral1_log), idx);
            let by_fold = |f: &dyn Fn(&[usize]) -> f64| -> Vec<f64> {
                folds.map_or_else(Vec::new, |(fold, k)| {
                    (0..k)
                        .map(|g| {
                            let on: Vec<usize> =
                                idx.iter().copied().filter(|&i| fold[i] == g).collect();
                            f(&on)
                        })
                        .collect()
                })
            };
            Scores {
                predictor: name.to_string(),
                spearman: spearman(&pred, &y),
                mae_log: mean_abs_error(&pred, &y),
                auc_top10: auc(&pred
                    .iter()
                    .zip(&viral)
                    .map(|(p, v)| (*p, *v))
                    .collect::<Vec<_>>()),
                coverage_80: idx.iter().filter(|&&i| o.covers(i, self.y[i])).count() as f64
                    / idx.len() as f64,
                brier: brier(&prob, &viral),
                brier_skill: 1.0 - brier(&prob, &viral) / base_brier,
                brier_skill_top1: 1.0 - brier(&prob1, &viral1) / base_brier1,
                same_author_pairs: same_author_order(&authors, &pred, &y),
                new_authors_spearman: spearman(&pick(&o.pred, &new_rows), &pick(self.y, &new_rows)),
                mae_log_by_fold: by_fold(&|on| {
                    mean_abs_error(&pick(&o.pred, on), &pick(self.y, on))
                }),
                spearman_by_fold: by_fold(&|on| spearman(&pick(&o.pred, on), &pick(self.y, on))),
            }
        };
        let mut all = vec![
            score("constant", &p.constant),
            score("author median so far", &p.median),
            score("author track record", &p.track),
        ];
        if self.followers_exist {
            all.push(score("audience (followers)", &p.audience));
        }
        all.push(score("pulse", &p.pulse));
        all
    }
}

/// Runs the evaluation and prints the report.
pub fn run(args: ForecastEvalArgs) -> anyhow::Result<()> {
    let (report, model) = evaluate(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, args.write_model.as_deref(), &model);
    }
    Ok(())
}

/// The evaluation itself; writes the model and the predictions where asked.
pub fn evaluate(args: &ForecastEvalArgs) -> anyhow::Result<(Report, ForecastModel)> {
    let (rows, without_text) = data::read(&args.data)?;
    anyhow::ensure!(
        rows.len() >= 50,
        "{} cascades with text: too few to evaluate",
        rows.len()
    );
    let (backend, settings) = args.analyzer.settings(1)?;
    let mut analyzer = analysis::build(backend, &settings)?;
    let started = Instant::now();
    let mut analyses = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(32) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        analyses.extend(analyzer.analyze_batch(&texts));
    }
    let analysis_millis_per_text = started.elapsed().as_secs_f64() * 1e3 / rows.len() as f64;
    let drafts: Vec<Draft> = rows
        .iter()
        .zip(&analyses)
        .map(|(r, a)| Draft::new(&r.text, r.followers, r.at, r.record, a))
        .collect();

    let groups = data::groups(&rows);
    let fold = data::folds(&groups, args.folds, 0);
    let y: Vec<f64> = rows.iter().map(|r| r.y).collect();
    let mut sizes: Vec<f64> = rows.iter().map(|r| r.final_shares as f64).collect();
    sizes.sort_by(f64::total_cmp);
    let threshold = crate::eval::virality::metrics::quantile_of(&sizes, 1.0 - VIRAL_SHARE);
    let viral: Vec<bool> = rows
        .iter()
        .map(|r| r.final_shares as f64 >= threshold)
        .collect();
    let viral_log = threshold.ln_1p();
    let threshold1 = crate::eval::virality::metrics::quantile_of(&sizes, 1.0 - PULSE_VIRAL_SHARE);
    let viral1: Vec<bool> = rows
        .iter()
        .map(|r| r.final_shares as f64 >= threshold1)
        .collect();
    let split = Split {
        rows: &rows,
        drafts: &drafts,
        groups: &groups,
        y: &y,
        viral: &viral,
        viral1: &viral1,
        viral_log,
        viral1_log: threshold1.ln_1p(),
        followers_exist: rows.iter().any(|r| r.followers.is_some()),
    };
    let n = rows.len();
    let mut oof = Predictions::new(n);
    for f in 0..args.folds {
        let train: Vec<usize> = (0..n).filter(|&i| fold[i] != f).collect();
        let test: Vec<usize> = (0..n).filter(|&i| fold[i] == f).collect();
        split.predict(&train, &test, &mut oof);
    }
    let everyone: Vec<usize> = (0..n).collect();
    let all_scores = split.scores(&oof, &everyone, Some((&fold, args.folds)));
    // Rows are in time order: the model and every baseline learn from the earlier cascades
    // and forecast the later ones, as a deployment forecasts what comes after its history.
    let cut = (n as f64 * (1.0 - LATER_SHARE)).round() as usize;
    let (earlier, later): (Vec<usize>, Vec<usize>) = ((0..cut).collect(), (cut..n).collect());
    let mut held = Predictions::new(n);
    split.predict(&earlier, &later, &mut held);
    let later_period = LaterPeriod {
        cascades: later.len(),
        from: rows[cut].at,
        new_author_cascades: later
            .iter()
            .filter(|&&i| rows[i].earlier.is_empty())
            .count(),
        scores: split.scores(&held, &later, None),
    };

    let authors: Vec<String> = rows.iter().map(|r| r.author.clone()).collect();
    let new_rows: Vec<usize> = (0..n).filter(|&i| rows[i].record.cascades == 0).collect();
    let full = spearman(&oof.pulse.pred, &y);
    let effects: Vec<HeldOutEffect> = GROUPS
        .iter()
        .zip(&oof.without)
        .map(|((group, _), p)| HeldOutEffect {
            group: group.to_string(),
            spearman_loss_without: full - spearman(p, &y),
        })
        .collect();
    let over = |baseline: &Oof| {
        paired_bootstrap(&groups, args.bootstrap, 7, &|idx| {
            let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            let truth = pick(&y);
            spearman(&pick(&oof.pulse.pred), &truth) - spearman(&pick(&baseline.pred), &truth)
        })
    };
    let bootstrap = over(&oof.track);
    let bootstrap_median = over(&oof.median);
    let alphas = oof.alphas.clone();

    // The shipped model: every cascade, the penalty and residuals from the same folds.
    let prior = y.iter().sum::<f64>() / n as f64;
    let x: Vec<Vec<f64>> = drafts.iter().map(|d| features(d, prior, SHRINK)).collect();
    let known: Vec<bool> = rows.iter().map(|r| r.record.cascades > 0).collect();
    let spec = FitSpec {
        version: "reach-2".into(),
        data: format!(
            "{} ({} cascades with text, {} folds grouped by author and story, analyzer {})",
            args.data
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            n,
            args.folds,
            analyzer.model()
        ),
        prior,
        shrink: SHRINK,
        viral_log,
        effects: Some(effects.clone()),
    };
    let model = fit_model(spec, &x, &y, &fold, &known).model;
    let started = Instant::now();
    let mut sink = 0.0;
    for d in &drafts {
        sink += model.forecast(d, None, None).log_shares;
    }
    let forecast_micros = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    anyhow::ensure!(sink.is_finite(), "a forecast is not finite");
    if let Some(path) = &args.write_model {
        std::fs::write(path, serde_json::to_string_pretty(&model)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.predictions {
        let lines: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::json!({
                    "id": r.id, "author": r.author, "forecast": oof.pulse.pred[i], "truth": y[i],
                    "fold": fold[i],
                })
                .to_string()
            })
            .collect();
        std::fs::write(path, lines.join("\n") + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }

    let report = Report {
        cascades: n,
        without_text,
        authors: {
            let mut a = authors.clone();
            a.sort();
            a.dedup();
            a.len()
        },
        groups: {
            let mut g = groups.clone();
            g.sort_unstable();
            g.dedup();
            g.len()
        },
        new_author_cascades: new_rows.len(),
        viral_threshold_shares: threshold as u64,
        pulse_viral_threshold_shares: threshold1 as u64,
        analyzer: analyzer.model().to_string(),
        scores: all_scores,
        bootstrap_over_track_record: bootstrap,
        bootstrap_over_median: bootstrap_median,
        later_period,
        effects,
        alphas,
        forecast_micros,
        analysis_millis_per_text,
    };
    Ok((report, model))
}

fn print_table(scores: &[Scores]) {
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}  Spearman by fold",
        "predictor",
        "Spearman",
        "MAE log",
        "AUC10%",
        "cover80",
        "Brier",
        "skill",
        "skill1%",
        "same-auth",
        "new-auth"
    );
    for s in scores {
        println!(
            "{:<22} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.4} {:>7.1}% {:>7.1}% {:>10.3} {:>10.3}  {}",
            s.predictor,
            s.spearman,
            s.mae_log,
            s.auc_top10,
            s.coverage_80,
            s.brier,
            100.0 * s.brier_skill,
            100.0 * s.brier_skill_top1,
            s.same_author_pairs,
            s.new_authors_spearman,
            s.spearman_by_fold
                .iter()
                .map(|m| format!("{m:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

fn print_report(r: &Report, written: Option<&std::path::Path>, model: &ForecastModel) {
    println!(
        "cascades {} ({} without text left out), authors {}, author+story groups {}, \
         cascades of authors with no earlier cascade {}; viral = top 10% = >= {} shares \
         (top 1%, Pulse's default: >= {}); analyzer {}",
        r.cascades,
        r.without_text,
        r.authors,
        r.groups,
        r.new_author_cascades,
        r.viral_threshold_shares,
        r.pulse_viral_threshold_shares,
        r.analyzer
    );
    print_table(&r.scores);
    let (lo, mid, hi) = r.bootstrap_over_track_record;
    println!(
        "pulse - track record, Spearman, paired bootstrap over groups: {mid:+.3} [{lo:+.3}, {hi:+.3}]"
    );
    let (lo, mid, hi) = r.bootstrap_over_median;
    println!(
        "pulse - author median so far, Spearman, paired bootstrap over groups: {mid:+.3} [{lo:+.3}, {hi:+.3}]"
    );
    let later = &r.later_period;
    println!(
        "later period: fitted on the earlier {:.0}%, judged on the {} cascades from {} ({} of authors \
         with no earlier cascade)",
        100.0 * (1.0 - LATER_SHARE),
        later.cascades,
        chrono::DateTime::from_timestamp(later.from as i64, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        later.new_author_cascades
    );
    print_table(&later.scores);
    println!("held-out effect of each group (Spearman lost without it):");
    for e in &r.effects {
        println!("  {:<22} {:+.3}", e.group, e.spearman_loss_without);
    }
    println!(
        "penalties by fold {:?}; {:.1} us a forecast (model), {:.2} ms a text (analysis)",
        r.alphas, r.forecast_micros, r.analysis_millis_per_text
    );
    if let Some(path) = written {
        println!("model {} written to {}", model.id(), path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::path::Path;

    /// 600 cascades of 120 authors on a platform where reach follows the author's audience.
    fn audience_driven(path: &Path) {
        let words = [
            "launch", "outage", "price", "meme", "weather", "coffee", "music", "game", "city",
            "team", "market", "phone", "train", "school", "garden", "movie",
        ];
        let mut rng = SmallRng::seed_from_u64(1);
        let mut lines = Vec::new();
        for a in 0..120 {
            let followers = 10f64.powf(rng.random_range(1.0..5.0)) as u64;
            for k in 0..5 {
                let at = 1.6e9 + rng.random_range(0.0..90.0 * 86_400.0);
                let noise: f64 = rng.random_range(-1.0..1.0);
                let n = ((followers as f64).powf(0.6) * noise.exp()) as usize;
                let shares: Vec<(f64, Option<u64>, i64)> = (0..n)
                    .map(|_| (rng.random_range(0.0..86_400.0), None, -1))
                    .collect();
                let text: Vec<&str> = (0..4).map(|_| words[rng.random_range(0..16)]).collect();
                lines.push(
                    serde_json::json!({
                        "id": format!("p{a}-{k}"), "author": format!("a{a}"),
                        "text": format!("{} number {}", text.join(" "), a * 5 + k),
                        "platform": "mastodon", "author_followers": followers,
                        "created_at": at, "shares": shares,
                    })
                    .to_string(),
                );
            }
        }
        // One without a text, left out and counted.
        lines.push(r#"{"id": "x", "author": "a0", "created_at": 1.6e9, "shares": []}"#.into());
        std::fs::write(path, lines.join("\n")).unwrap();
    }

    #[test]
    fn on_cascades_whose_reach_follows_the_audience_followers_rank_them_and_new_authors_too() {
        let path =
            std::env::temp_dir().join(format!("pulse-forecast-{}.jsonl", std::process::id()));
        audience_driven(&path);
        let args = ForecastEvalArgs {
            data: path.clone(),
            analyzer: AnalyzerArgs::lexicon(),
            folds: 5,
            bootstrap: 100,
            write_model: None,
            predictions: None,
            json: false,
        };
        let (report, model) = evaluate(&args).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(
            (report.cascades, report.without_text, report.authors),
            (600, 1, 120)
        );
        let score = |name: &str| report.scores.iter().find(|s| s.predictor.starts_with(name));
        let audience = score("audience").expect("an audience baseline where followers exist");
        let pulse = score("pulse").unwrap();
        let constant = score("constant").unwrap();
        assert!(audience.spearman > 0.8, "{audience:?}");
        assert!(
            pulse.spearman > 0.8 && pulse.spearman > constant.spearman + 0.5,
            "{pulse:?}"
        );
        assert!(pulse.new_authors_spearman > 0.8, "{pulse:?}");
        // The honest baseline is printed beside it, and ranks authors by their earlier
        // cascades: those of the first cascade of each author, without any, tie at the bottom.
        let median = score("author median so far").unwrap();
        assert!(
            median.spearman > 0.3 && median.spearman < pulse.spearman,
            "{median:?}"
        );
        assert_eq!(pulse.spearman_by_fold.len(), 5);
        // Fitted on the earliest 70%, judged on the latest 180 cascades.
        let later = &report.later_period;
        assert_eq!(later.cascades, 180);
        let later_pulse = later
            .scores
            .iter()
            .find(|s| s.predictor == "pulse")
            .unwrap();
        assert!(later_pulse.spearman > 0.8, "{later_pulse:?}");
        assert!(later_pulse.spearman_by_fold.is_empty());
        // The model fitted on every cascade weighs the audience.
        let weight = model
            .weights
            .iter()
            .find(|w| w.name == "log_followers")
            .unwrap();
        assert!(weight.weight > 0.1, "{weight:?}");
    }
}

//! The transformer part of `pulse bench`: in one run, (a) the raw ONNX Runtime ceiling — a
//! loop of `session.run` over pre-tokenised batches, with the same bundle, sub-batches, worker
//! threads and intra-op threads as the pipeline — for the English model on English posts and
//! for the multilingual model on posts in other languages; (b) real `pulse serve` child
//! processes with both models analysing posts XADDed as fast as Redis takes them, timed until
//! every entry is committed and acknowledged: English posts, posts in other languages, and the
//! demo generator's mix; (c) the children's peak resident memory. When a reference bundle is
//! given (by default the 6-layer float32 model, `PULSE_FULL_MODEL_DIR`), its ceiling and Pulse
//! end to end are measured in the same run on the same English posts, and the ratios printed.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fred::prelude::*;
use serde::Serialize;

use crate::analysis::language::PostLanguage;
use crate::analysis::transformer::TransformerAnalyzer;
use crate::analysis::Analyzer;
use crate::config::Settings;
use crate::models::Event;

/// Texts per analyzer call in the raw loop: what one XREADGROUP hands a worker under load.
const READ_BATCH: usize = 500;

/// Options of the model benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelBenchArgs {
    /// Posts analysed by the raw loop and by the pipeline.
    #[arg(long, default_value_t = 6_000)]
    pub model_events: u64,
    /// A bundle to compare the configured English model with, on the same posts in the same
    /// run; empty skips the comparison.
    #[arg(long, env = "PULSE_FULL_MODEL_DIR", default_value = "")]
    pub reference_bundle: String,
}

/// Figures of one model run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelReport {
    /// CPU model, cores and vector extensions: model speed depends on them.
    pub machine: String,
    pub model: String,
    pub events: u64,
    pub workers: usize,
    pub intra_threads: usize,
    pub batch_size: usize,
    /// English posts only: the English model's ceiling and Pulse end to end.
    pub raw_onnx_posts_per_sec: f64,
    pub pipeline_posts_per_sec: f64,
    pub fraction_of_raw: f64,
    /// The multilingual model, when one is configured: its ceiling and Pulse end to end on
    /// posts in other languages, and on the demo's mix of languages.
    pub multilingual_model: Option<String>,
    pub other_language_events: u64,
    pub raw_multilingual_posts_per_sec: Option<f64>,
    pub pipeline_other_languages_posts_per_sec: Option<f64>,
    pub mixed_events: u64,
    /// Share of the mix not in English (by the producer's tag or detection), in 0..=1.
    pub mixed_other_share: f64,
    pub pipeline_mixed_posts_per_sec: Option<f64>,
    /// English posts through a `pulse serve` with the English model alone, in the same run:
    /// what loading the multilingual model costs the English path.
    pub pipeline_english_alone_posts_per_sec: Option<f64>,
    pub peak_rss_english_alone_mb: Option<f64>,
    /// The highest peak resident memory of the `pulse serve` children (both models loaded when
    /// a multilingual one is configured).
    pub peak_rss_mb: f64,
    /// The reference bundle on the same English posts: its ceiling, Pulse end to end with it
    /// in place of the configured English model (everything else the same), and the
    /// configured model's speed-ups over it.
    pub reference: Option<ReferenceReport>,
}

/// The comparison with the reference bundle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReferenceReport {
    pub model: String,
    pub raw_onnx_posts_per_sec: f64,
    pub pipeline_posts_per_sec: f64,
    pub peak_rss_mb: f64,
    pub raw_speedup: f64,
    pub pipeline_speedup: f64,
}

/// Generated posts as (event JSON, text).
type Posts = Vec<(String, String)>;

/// The text of a generated post and whether Pulse reads it as English (or finds no language,
/// which also goes to the English model); `None` when the event is not a post.
fn text_and_englishness(json: &str) -> Option<(String, bool)> {
    match Event::from_slice(json.as_bytes()) {
        Ok(Event::Post(p)) => {
            let lang = PostLanguage::resolve(p.lang.as_deref(), &p.text);
            let english = lang.code.as_deref().is_none_or(|c| c == "en");
            Some((p.text, english))
        }
        _ => None,
    }
}

/// Generated posts split by language: (English, other).
fn by_language(events: Vec<String>) -> (Posts, Posts) {
    let mut english = Vec::new();
    let mut other = Vec::new();
    for json in events {
        match text_and_englishness(&json) {
            Some((text, true)) => english.push((json, text)),
            Some((text, false)) => other.push((json, text)),
            None => {}
        }
    }
    (english, other)
}

/// Runs the raw loops and the pipelines on generated posts: `events` in English, half as many
/// in other languages, and `events` of the demo's mix.
pub async fn run(run: &super::Run, args: &ModelBenchArgs) -> anyhow::Result<ModelReport> {
    let (settings, db_url, run_id) = (&run.settings, &run.db_url, &run.id);
    let n = args.model_events;
    let mixed = super::generate_posts(n, &format!("model-{run_id}-mix-"));
    let mixed_other = mixed
        .iter()
        .filter(|json| matches!(text_and_englishness(json), Some((_, false))))
        .count();
    let mixed_other_share = mixed_other as f64 / mixed.len().max(1) as f64;
    // Enough generated posts to have `n` in English and `n / 2` in other languages.
    let (mut english, mut other) = (Vec::new(), Vec::new());
    let mut round = 0;
    while (english.len() < n as usize || other.len() < n as usize / 2) && round < 20 {
        let (e, o) = by_language(super::generate_posts(
            n,
            &format!("model-{run_id}-{round}-"),
        ));
        english.extend(e);
        other.extend(o);
        round += 1;
    }
    english.truncate(n as usize);
    other.truncate(n as usize / 2);

    let workers = Settings::threads_or_cores(settings.analyzer.workers);
    let mut report = ModelReport {
        machine: super::machine_description(),
        events: english.len() as u64,
        workers,
        intra_threads: settings.analyzer.intra_threads,
        batch_size: settings.analyzer.batch_size,
        mixed_events: mixed.len() as u64,
        mixed_other_share,
        ..Default::default()
    };
    let options = crate::analysis::transformer::InferenceOptions::from_settings(&settings.analyzer);
    let texts: Vec<String> = english.iter().map(|(_, t)| t.clone()).collect();
    let (model, raw) = raw_onnx(&options, &texts, workers)?;
    report.model = model;
    report.raw_onnx_posts_per_sec = raw;
    eprintln!("raw ONNX Runtime, English model on English posts: {raw:.0} posts/s");
    let reference = reference_bundle(args, &options);
    let mut reference_report = None;
    if let Some(dir) = &reference {
        let mut ro = options.clone();
        ro.bundles = vec![dir.clone()];
        let (model, raw) = raw_onnx(&ro, &texts, workers)?;
        eprintln!("raw ONNX Runtime, reference {model} on English posts: {raw:.0} posts/s");
        reference_report = Some(ReferenceReport {
            model,
            raw_onnx_posts_per_sec: raw,
            raw_speedup: report.raw_onnx_posts_per_sec / raw,
            ..Default::default()
        });
    }
    let multilingual = !settings.analyzer.multilingual_bundles.is_empty();
    if multilingual {
        let mut ml = options.clone();
        ml.bundles = settings
            .analyzer
            .multilingual_bundles
            .iter()
            .map(|b| crate::analysis::transformer::resolve_bundle_dir(b))
            .collect();
        let texts: Vec<String> = other.iter().map(|(_, t)| t.clone()).collect();
        let (model, raw) = raw_onnx(&ml, &texts, workers)?;
        eprintln!("raw ONNX Runtime, multilingual model on other languages: {raw:.0} posts/s");
        report.multilingual_model = Some(model);
        report.raw_multilingual_posts_per_sec = Some(raw);
        report.other_language_events = texts.len() as u64;
    }

    // The parts before this one may have left posts behind; the counts below are this run's.
    let english: Vec<String> = english.into_iter().map(|(j, _)| j).collect();
    let mut runs: Vec<(&str, Vec<String>)> = vec![("english", english.clone())];
    if reference.is_some() {
        runs.push(("english reference", english.clone()));
    }
    if multilingual {
        runs.push(("english alone", english));
        runs.push(("other", other.into_iter().map(|(j, _)| j).collect()));
        runs.push(("mixed", mixed));
    }
    for (name, events) in runs {
        super::truncate(db_url).await?;
        let stream = format!("pulse:bench:{run_id}:model-{}", name.replace(' ', "-"));
        let alone = name == "english alone";
        let mut env: Vec<(&str, String)> = Vec::new();
        if alone {
            env.push(("PULSE_ANALYZER__MULTILINGUAL_BUNDLES", "[]".into()));
        }
        if let (Some(dir), "english reference") = (&reference, name) {
            env.push(("PULSE_ANALYZER__BUNDLES", bundles_env(dir)?));
        }
        let (rate, rss) = pipeline(run, &stream, &events, &env).await?;
        eprintln!("pipeline, {name} posts: {rate:.0} posts/s, peak RSS {rss:.0} MB");
        if name == "english reference" {
            if let Some(r) = reference_report.as_mut() {
                r.pipeline_posts_per_sec = rate;
                r.peak_rss_mb = rss;
                r.pipeline_speedup = report.pipeline_posts_per_sec / rate;
            }
            continue;
        }
        if alone {
            report.pipeline_english_alone_posts_per_sec = Some(rate);
            report.peak_rss_english_alone_mb = Some(rss);
            continue;
        }
        report.peak_rss_mb = report.peak_rss_mb.max(rss);
        match name {
            "english" => {
                report.pipeline_posts_per_sec = rate;
                report.fraction_of_raw = rate / report.raw_onnx_posts_per_sec;
            }
            "other" => report.pipeline_other_languages_posts_per_sec = Some(rate),
            _ => report.pipeline_mixed_posts_per_sec = Some(rate),
        }
    }
    super::truncate(db_url).await?;
    report.reference = reference_report;
    Ok(report)
}

/// The reference bundle to compare with, unless it is not given or is the configured one.
fn reference_bundle(
    args: &ModelBenchArgs,
    options: &crate::analysis::transformer::InferenceOptions,
) -> Option<std::path::PathBuf> {
    if args.reference_bundle.is_empty() {
        return None;
    }
    let dir = crate::analysis::transformer::resolve_bundle_dir(std::path::Path::new(
        &args.reference_bundle,
    ));
    let same = |a: &std::path::Path| {
        a.canonicalize()
            .ok()
            .is_some_and(|a| dir.canonicalize().ok() == Some(a))
    };
    (!options.bundles.iter().any(|b| same(b))).then_some(dir)
}

/// `PULSE_ANALYZER__BUNDLES` for one bundle directory: a JSON list.
fn bundles_env(dir: &std::path::Path) -> anyhow::Result<String> {
    let dir = dir
        .to_str()
        .context("the reference bundle's path is not UTF-8")?;
    Ok(serde_json::to_string(&[dir])?)
}

/// `session.run` alone over pre-tokenised batches on `workers` threads.
fn raw_onnx(
    options: &crate::analysis::transformer::InferenceOptions,
    texts: &[String],
    workers: usize,
) -> anyhow::Result<(String, f64)> {
    let share = texts.len().div_ceil(workers).max(1);
    let results: Vec<anyhow::Result<(String, Duration, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .chunks(share)
            .map(|part| {
                let options = options.clone();
                scope.spawn(move || {
                    let mut model = TransformerAnalyzer::load(&options)?;
                    let mut prepared = Vec::new();
                    for chunk in part.chunks(READ_BATCH) {
                        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                        prepared.extend(model.prepare(0, &refs)?);
                    }
                    let started = Instant::now();
                    for batch in &prepared {
                        model.run_prepared(0, batch)?;
                    }
                    Ok((model.model().to_string(), started.elapsed(), part.len()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("raw thread panicked")))
            })
            .collect()
    });
    let mut slowest = Duration::ZERO;
    let mut total = 0;
    let mut model = String::new();
    for r in results {
        let (name, took, count) = r?;
        slowest = slowest.max(took);
        total += count;
        model = name;
    }
    Ok((model, total as f64 / slowest.as_secs_f64()))
}

/// A `pulse serve` child with the configured models, `env` on top, and no fallback, fed
/// `events` at full speed.
async fn pipeline(
    run: &super::Run,
    stream: &str,
    events: &[String],
    env: &[(&str, String)],
) -> anyhow::Result<(f64, f64)> {
    let (settings, db_url, redis) = (&run.settings, &run.db_url, &run.redis);
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut command = Command::new(crate::server_binary()?);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let mut child = ServeChild(
        command
            .args(["serve", "--open"])
            .env_remove("PULSE_AUTH__JWT_SECRET")
            .env("PULSE_LIMITS__RATE_LIMITS", "false")
            .env("DATABASE_URL", db_url)
            .env("REDIS_URL", &settings.redis.url)
            .env("PULSE_STREAM", stream)
            .env("PULSE_LISTEN", format!("127.0.0.1:{port}"))
            .env("PULSE_CONFIG", "/nonexistent/pulse.toml")
            .env("PULSE_MIGRATE_ON_START", "false")
            .env("PULSE_ANALYZER__BACKEND", "onnx")
            .env("PULSE_ANALYZER__FALLBACK_LAG_SECS", "0")
            .env("PULSE_ALERTS__ENABLED", "false")
            .env("PULSE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting pulse serve")?,
    );
    let ready = format!("http://127.0.0.1:{port}/ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(&ready).await {
            if r.status().is_success() {
                break;
            }
        }
        if let Some(status) = child.0.try_wait()? {
            anyhow::bail!("pulse serve exited with {status} before it was ready");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "pulse serve was not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    super::raw_xadd(redis, stream, events).await?;
    let mut s = settings.clone();
    s.redis.stream = stream.to_string();
    s.redis.group = "pulse".into();
    super::wait_drained(redis, &s, "the model run").await?;
    let rate = events.len() as f64 / started.elapsed().as_secs_f64();
    let rss = super::peak_rss_mb_in(&format!("/proc/{}/status", child.0.id()));
    let stored = super::count_posts(db_url).await?;
    anyhow::ensure!(
        stored == events.len() as i64,
        "expected {} posts stored, found {stored}",
        events.len()
    );
    let _: i64 = redis.del(stream).await?;
    Ok((rate, rss))
}

/// Kills the child when the benchmark ends, however it ends.
struct ServeChild(Child);

impl Drop for ServeChild {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// The report as a Markdown table.
pub fn markdown(r: &ModelReport) -> String {
    let mut out = format!(
        "| measure ({model}, {workers} workers x {intra} intra-op threads, batches of {batch}) | result |\n|---|---|\n\
         | English posts | {events} |\n\
         | ceiling: raw ONNX Runtime (`session.run` on pre-tokenised batches), English model | {raw:.0} posts/s |\n\
         | **Pulse end to end, English posts** (XADD to committed and acknowledged) | **{e2e:.0} posts/s** |\n\
         | fraction of the raw ONNX Runtime ceiling | {fraction:.0}% |",
        model = r.model,
        workers = r.workers,
        intra = r.intra_threads,
        batch = r.batch_size,
        events = r.events,
        raw = r.raw_onnx_posts_per_sec,
        e2e = r.pipeline_posts_per_sec,
        fraction = r.fraction_of_raw * 100.0,
    );
    if let (Some(model), Some(raw), Some(other), Some(mixed)) = (
        &r.multilingual_model,
        r.raw_multilingual_posts_per_sec,
        r.pipeline_other_languages_posts_per_sec,
        r.pipeline_mixed_posts_per_sec,
    ) {
        out.push_str(&format!(
            "\n| posts in other languages ({model}) | {n} |\n\
             | ceiling: raw ONNX Runtime, multilingual model | {raw:.0} posts/s |\n\
             | **Pulse end to end, posts in other languages** | **{other:.0} posts/s** |\n\
             | Pulse end to end, the demo's mix ({mixed_n} posts, {share:.0}% not in English) | {mixed:.0} posts/s |",
            n = r.other_language_events,
            mixed_n = r.mixed_events,
            share = r.mixed_other_share * 100.0,
        ));
    }
    if let (Some(rate), Some(rss)) = (
        r.pipeline_english_alone_posts_per_sec,
        r.peak_rss_english_alone_mb,
    ) {
        out.push_str(&format!(
            "\n| Pulse end to end, English posts, the English model alone | {rate:.0} posts/s |\n\
             | peak resident memory, the English model alone, under this load | {rss:.0} MB |"
        ));
    }
    out.push_str(&format!(
        "\n| peak resident memory of `pulse serve` with the models loaded, under this load | {:.0} MB |",
        r.peak_rss_mb
    ));
    if let Some(f) = &r.reference {
        out.push_str(&format!(
            "\n| reference model ({model}): ceiling, raw ONNX Runtime, English posts | {raw:.0} posts/s |\n\
             | reference model: Pulse end to end, English posts | {e2e:.0} posts/s |\n\
             | reference model: peak resident memory under this load | {rss:.0} MB |\n\
             | **speed-up over the reference**: raw ceiling / end to end | **{rs:.2}x / {ps:.2}x** |",
            model = f.model,
            raw = f.raw_onnx_posts_per_sec,
            e2e = f.pipeline_posts_per_sec,
            rss = f.peak_rss_mb,
            rs = f.raw_speedup,
            ps = f.pipeline_speedup,
        ));
    }
    out.push_str(&format!("\n| machine | {} |", r.machine));
    out
}

//! `pulse eval stories`: replays labelled posts in time order through Pulse's story tracker and
//! through the classic baseline (incremental tf-idf first-story clustering), and prints for both
//! in one run: AMI and ARI over the posts of labelled events, each event's detection delay,
//! spurious stories per replay day, microseconds per post and peak memory.
//!
//! `--data` is JSON lines: `id`, `text`, `created_at` (RFC 3339), optional `lang` and `label`
//! (the event; absent for posts of no event). `scripts/crisislex-jsonl.py` writes CrisisLexT26
//! so.

pub mod baseline;
pub mod scores;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::stories::{AnnouncedStory, StoryEvent, StorySettings, StoryTracker};

/// Options of `pulse eval stories`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoriesEvalArgs {
    /// JSON lines of posts (`id`, `text`, `created_at`, optional `lang`, `label`).
    #[arg(long)]
    pub data: PathBuf,
    /// Story settings to try, as JSON (fields of `[stories]`; the rest keep their defaults).
    #[arg(long)]
    pub settings: Option<String>,
    /// Similarity thresholds tried for the baseline; the best by AMI is reported.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.02,0.05,0.1,0.2,0.3,0.5"
    )]
    pub baseline_thresholds: Vec<f32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write each post's story as `id<TAB>story` lines (empty: no story), to look into.
    #[arg(long)]
    pub assignments: Option<PathBuf>,
    /// Also replay as this many processes of one consumer group, each placing every n-th post
    /// with a tracker of its own, and score their stories together (do their ids agree?).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub processes: u16,
    /// Also score the group with no story announced between its processes (each finds its
    /// own), as with the fan-out off.
    #[arg(long)]
    pub unannounced: bool,
}

#[derive(Debug, Deserialize)]
struct Line {
    id: String,
    text: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    label: Option<String>,
}

/// One method's figures.
#[derive(Debug, Clone, Serialize)]
pub struct MethodScore {
    pub method: String,
    pub ami: f64,
    pub ari: f64,
    /// Stories born (reaching the birth size, for the baseline).
    pub stories: usize,
    /// Events whose posts ended up mostly in some story.
    pub events_detected: usize,
    /// Posts of its event seen when its story was born: median and max over detected events.
    pub delay_median: f64,
    pub delay_max: usize,
    /// Stories born mostly from posts of no event, per replay day.
    pub spurious_per_day: f64,
    pub spurious: usize,
    /// Labelled posts left in no story.
    pub unplaced_share: f64,
    pub micros_per_post: f64,
    pub peak_memory_bytes: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct StoriesReport {
    pub posts: usize,
    pub labelled: usize,
    pub events: usize,
    pub replay_days: usize,
    pub settings: StorySettings,
    pub pulse: MethodScore,
    /// Pulse as `processes` processes of one group, each placing every n-th post: their story
    /// ids taken together (None with one process).
    pub group: Option<MethodScore>,
    /// The same group with no story announced between its processes (with `--unannounced`).
    pub group_unannounced: Option<MethodScore>,
    pub processes: usize,
    /// The baseline at its best threshold by AMI.
    pub baseline: MethodScore,
    pub baseline_threshold: f32,
    /// The baseline at every threshold tried.
    pub baselines: Vec<(f32, MethodScore)>,
    /// Per event: name, posts, Pulse's delay, the baseline's delay (None: not detected).
    pub per_event: Vec<(String, usize, Option<usize>, Option<usize>)>,
}

/// A post of the replay.
pub struct ReplayPost {
    pub id: String,
    pub text: String,
    pub at_ms: i64,
    pub label: Option<usize>,
}

/// What a method did: each post's final story, and each story's birth.
struct Outcome {
    story_of: Vec<Option<i64>>,
    /// Story id, position of the post that gave birth, positions of its founding posts.
    births: Vec<(i64, usize, Vec<usize>)>,
    micros_per_post: f64,
    peak_memory_bytes: usize,
}

/// Reads the posts, sorted by time (ties in file order), with the event names.
pub fn read(path: &std::path::Path) -> anyhow::Result<(Vec<ReplayPost>, Vec<String>)> {
    let mut names: Vec<String> = Vec::new();
    let mut posts = Vec::new();
    let located = |n| format!("{}:{n}: not a post", path.display());
    for line in crate::eval::json_lines(path, located)? {
        let (_, l): (usize, Line) = line?;
        let label = l
            .label
            .map(|name| match names.iter().position(|x| *x == name) {
                Some(i) => i,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            });
        posts.push(ReplayPost {
            id: l.id,
            text: l.text,
            at_ms: l.created_at.timestamp_millis(),
            label,
        });
    }
    posts.sort_by_key(|p| p.at_ms);
    Ok((posts, names))
}

/// Posts of the stream that go by between a birth and its announcement reaching the other
/// processes of a group (the batch committing, the story row written, the fan-out).
const ANNOUNCE_DELAY_POSTS: usize = 64;

/// Replays the posts through the story tracker of each of `processes` processes, post `i` going
/// to process `i % processes` as entries of a consumer group are spread among its consumers;
/// each process announces the stories born in it to the others, as the live `story:new`
/// messages do.
fn run_pulse(
    posts: &[ReplayPost],
    settings: &StorySettings,
    processes: usize,
    announce: bool,
) -> Outcome {
    let mut trackers: Vec<StoryTracker<usize>> = (0..processes.max(1))
        .map(|_| StoryTracker::new(settings.clone()))
        .collect();
    let memory = |trackers: &[StoryTracker<usize>]| -> usize {
        trackers.iter().map(StoryTracker::memory_bytes).sum()
    };
    let mut story_of: Vec<Option<i64>> = vec![None; posts.len()];
    let mut births = Vec::new();
    let mut merged_into: HashMap<i64, i64> = HashMap::new();
    let mut peak = memory(&trackers);
    let mut spent = std::time::Duration::ZERO;
    // Births announced by each process, reaching the others `ANNOUNCE_DELAY_POSTS` later.
    let mut announced: VecDeque<(usize, usize, AnnouncedStory)> = VecDeque::new();
    let group = processes.max(1);
    for (i, post) in posts.iter().enumerate() {
        let started = Instant::now();
        while announced.front().is_some_and(|(due, _, _)| *due <= i) {
            if let Some((_, from, story)) = announced.pop_front() {
                for (p, tracker) in trackers.iter_mut().enumerate() {
                    if p != from {
                        tracker.adopt(&story);
                    }
                }
            }
        }
        let process = i % group;
        let tracker = &mut trackers[process];
        let story = tracker.place(i, post.at_ms, &post.text);
        let events = tracker.drain_events();
        spent += started.elapsed();
        story_of[i] = story;
        for event in events {
            match event {
                StoryEvent::Born { id, members } => {
                    for &m in &members {
                        story_of[m] = Some(id);
                    }
                    births.push((id, i, members));
                    if group > 1 && announce {
                        if let Some(s) = trackers[process].snapshot(id) {
                            announced.push_back((i + ANNOUNCE_DELAY_POSTS, process, s.into()));
                        }
                    }
                }
                StoryEvent::Grew { id, members } => {
                    for &m in &members {
                        story_of[m] = Some(id);
                    }
                }
                StoryEvent::Merged { from, into } => {
                    merged_into.insert(from, into);
                }
                StoryEvent::Faded { .. } | StoryEvent::Left { .. } => {}
            }
        }
        if i % 1000 == 0 {
            peak = peak.max(memory(&trackers));
        }
    }
    peak = peak.max(memory(&trackers));
    // In a group an id can be merged one way in one process and come back to be merged the
    // other way later: a chain is followed at most once round.
    let resolve = |start: i64| {
        let mut id = start;
        for _ in 0..merged_into.len() {
            match merged_into.get(&id) {
                Some(&next) if next != start => id = next,
                _ => break,
            }
        }
        id
    };
    for s in story_of.iter_mut().flatten() {
        *s = resolve(*s);
    }
    for b in &mut births {
        b.0 = resolve(b.0);
    }
    Outcome {
        story_of,
        births,
        micros_per_post: spent.as_secs_f64() * 1e6 / posts.len().max(1) as f64,
        peak_memory_bytes: peak,
    }
}

/// Replays the posts through the baseline; a cluster counts as a story once it has as many
/// posts as Pulse needs for a birth.
fn run_baseline(posts: &[ReplayPost], threshold: f32, settings: &StorySettings) -> Outcome {
    let mut clustering = baseline::TfIdfClustering::new(threshold, settings.fade_secs);
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut births = Vec::new();
    let mut peak = 0;
    let mut spent = std::time::Duration::ZERO;
    let mut story_of = vec![None; posts.len()];
    for (i, post) in posts.iter().enumerate() {
        let started = Instant::now();
        let cluster = clustering.place(post.at_ms, &post.text);
        spent += started.elapsed();
        story_of[i] = Some(cluster as i64);
        let m = members.entry(cluster).or_default();
        m.push(i);
        if m.len() == settings.birth_posts {
            births.push((cluster as i64, i, m.clone()));
        }
        if i % 1000 == 0 {
            peak = peak.max(clustering.memory_bytes());
        }
    }
    Outcome {
        story_of,
        births,
        micros_per_post: spent.as_secs_f64() * 1e6 / posts.len().max(1) as f64,
        peak_memory_bytes: peak.max(clustering.memory_bytes()),
    }
}

fn score(
    method: &str,
    posts: &[ReplayPost],
    events: usize,
    days: usize,
    outcome: &Outcome,
) -> (MethodScore, Vec<Option<usize>>) {
    // Posts in no story are singletons: leaving a post out is not placing it with its event.
    let mut truth = Vec::new();
    let mut predicted = Vec::new();
    let mut unplaced = 0usize;
    for (i, post) in posts.iter().enumerate() {
        let Some(label) = post.label else { continue };
        truth.push(label);
        predicted.push(match outcome.story_of[i] {
            Some(id) => id as u64 as usize,
            None => {
                unplaced += 1;
                usize::MAX - i
            }
        });
    }
    let born_at: HashMap<i64, usize> =
        outcome
            .births
            .iter()
            .fold(HashMap::new(), |mut m, (id, at, _)| {
                let e = m.entry(*id).or_insert(*at);
                *e = (*e).min(*at);
                m
            });
    let mut delays = Vec::new();
    for event in 0..events {
        let positions: Vec<usize> = (0..posts.len())
            .filter(|&i| posts[i].label == Some(event))
            .collect();
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for &i in &positions {
            if let Some(id) = outcome.story_of[i] {
                *counts.entry(id).or_default() += 1;
            }
        }
        let main = counts
            .into_iter()
            .max_by_key(|&(id, c)| (c, std::cmp::Reverse(id)));
        let delay = main
            .and_then(|(id, _)| born_at.get(&id))
            .map(|&at| positions.iter().filter(|&&p| p <= at).count());
        delays.push(delay);
    }
    let mut detected: Vec<usize> = delays.iter().flatten().copied().collect();
    detected.sort_unstable();
    let delay_median = match detected.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => detected[n / 2] as f64,
        n => (detected[n / 2 - 1] + detected[n / 2]) as f64 / 2.0,
    };
    let spurious = outcome
        .births
        .iter()
        .filter(|(_, _, members)| {
            let noise = members
                .iter()
                .filter(|&&m| posts[m].label.is_none())
                .count();
            noise * 2 > members.len()
        })
        .count();
    let stories: BTreeSet<i64> = outcome.births.iter().map(|b| b.0).collect();
    (
        MethodScore {
            method: method.to_string(),
            ami: scores::ami(&truth, &predicted),
            ari: scores::ari(&truth, &predicted),
            stories: stories.len(),
            events_detected: detected.len(),
            delay_median,
            delay_max: detected.last().copied().unwrap_or(0),
            spurious_per_day: spurious as f64 / days.max(1) as f64,
            spurious,
            unplaced_share: unplaced as f64 / truth.len().max(1) as f64,
            micros_per_post: outcome.micros_per_post,
            peak_memory_bytes: outcome.peak_memory_bytes,
        },
        delays,
    )
}

/// Scores Pulse (alone, and as `processes` processes of one group) and the baseline on a replay
/// of `posts`.
pub fn evaluate(
    posts: &[ReplayPost],
    names: &[String],
    settings: &StorySettings,
    thresholds: &[f32],
    processes: usize,
    unannounced: bool,
) -> StoriesReport {
    let days: BTreeSet<i64> = posts
        .iter()
        .map(|p| p.at_ms.div_euclid(86_400_000))
        .collect();
    let (pulse, pulse_delays) = score(
        "pulse",
        posts,
        names.len(),
        days.len(),
        &run_pulse(posts, settings, 1, true),
    );
    let group = |announce: bool| {
        let name = match announce {
            true => format!("pulse, {processes} processes"),
            false => "  not announced".to_string(),
        };
        let outcome = run_pulse(posts, settings, processes, announce);
        score(&name, posts, names.len(), days.len(), &outcome).0
    };
    let group_unannounced = (processes > 1 && unannounced).then(|| group(false));
    let group = (processes > 1).then(|| group(true));
    let tried: Vec<(MethodScore, Vec<Option<usize>>, f32)> = thresholds
        .iter()
        .map(|&t| {
            let (s, d) = score(
                "tf-idf baseline",
                posts,
                names.len(),
                days.len(),
                &run_baseline(posts, t, settings),
            );
            (s, d, t)
        })
        .collect();
    let baselines = tried.iter().map(|(s, _, t)| (*t, s.clone())).collect();
    let (baseline, baseline_delays, threshold) = tried
        .into_iter()
        .max_by(|a, b| a.0.ami.total_cmp(&b.0.ami))
        .expect("at least one baseline threshold");
    let per_event = names
        .iter()
        .enumerate()
        .map(|(e, name)| {
            let size = posts.iter().filter(|p| p.label == Some(e)).count();
            (name.clone(), size, pulse_delays[e], baseline_delays[e])
        })
        .collect();
    StoriesReport {
        posts: posts.len(),
        labelled: posts.iter().filter(|p| p.label.is_some()).count(),
        events: names.len(),
        replay_days: days.len(),
        settings: settings.clone(),
        pulse,
        group,
        group_unannounced,
        processes,
        baseline,
        baseline_threshold: threshold,
        baselines,
        per_event,
    }
}

/// Runs the evaluation and prints the report.
pub fn run(args: StoriesEvalArgs) -> anyhow::Result<()> {
    let settings: StorySettings = match &args.settings {
        Some(json) => serde_json::from_str(json).context("--settings: not story settings")?,
        None => StorySettings::default(),
    };
    settings.validate()?;
    anyhow::ensure!(
        !args.baseline_thresholds.is_empty(),
        "--baseline-thresholds: none given"
    );
    let (posts, names) = read(&args.data)?;
    anyhow::ensure!(
        !names.is_empty(),
        "{}: no post has a label",
        args.data.display()
    );
    if let Some(path) = &args.assignments {
        let outcome = run_pulse(&posts, &settings, 1, true);
        let lines: String = posts
            .iter()
            .zip(&outcome.story_of)
            .map(|(p, s)| format!("{}\t{}\n", p.id, s.map_or(String::new(), |s| s.to_string())))
            .collect();
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    let report = evaluate(
        &posts,
        &names,
        &settings,
        &args.baseline_thresholds,
        usize::from(args.processes),
        args.unannounced,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} posts ({} labelled, {} events) over {} replay days; peak RSS {} MB",
        report.posts,
        report.labelled,
        report.events,
        report.replay_days,
        crate::machine::peak_rss_mb() as u64
    );
    println!(
        "{:<22} {:>6} {:>6} {:>8} {:>9} {:>10} {:>10} {:>10} {:>9} {:>8} {:>9}",
        "method",
        "AMI",
        "ARI",
        "stories",
        "detected",
        "delay med",
        "delay max",
        "spur/day",
        "unplaced",
        "us/post",
        "peak MB"
    );
    let rows = std::iter::once(("pulse".to_string(), &report.pulse))
        .chain(report.group.iter().map(|s| (s.method.clone(), s)))
        .chain(
            report
                .group_unannounced
                .iter()
                .map(|s| (s.method.clone(), s)),
        )
        .chain(
            report
                .baselines
                .iter()
                .map(|(t, s)| (format!("{} @{t}", s.method), s)),
        );
    for (name, s) in rows {
        println!(
            "{:<22} {:>6.3} {:>6.3} {:>8} {:>6}/{:<2} {:>10.1} {:>10} {:>10.2} {:>8.1}% {:>8.1} {:>9.1}",
            name,
            s.ami,
            s.ari,
            s.stories,
            s.events_detected,
            report.events,
            s.delay_median,
            s.delay_max,
            s.spurious_per_day,
            s.unplaced_share * 100.0,
            s.micros_per_post,
            s.peak_memory_bytes as f64 / 1e6
        );
    }
    println!(
        "AMI above the best baseline (@{}): {:+.3}; ARI {:+.3}",
        report.baseline_threshold,
        report.pulse.ami - report.baseline.ami,
        report.pulse.ari - report.baseline.ari
    );
    println!("\nper event: posts, delay (pulse / best baseline)");
    for (name, size, p, b) in &report.per_event {
        let show = |d: &Option<usize>| d.map_or("-".to_string(), |d| d.to_string());
        println!("  {name:<32} {size:>5} {:>6} {:>6}", show(p), show(b));
    }
    Ok(())
}

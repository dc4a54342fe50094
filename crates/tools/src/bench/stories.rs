//! `pulse bench --only stories`: what story detection costs per post beside what the analysis
//! of the same post costs (the lexicon, on one core, in the same run), and the tracker's memory
//! as a long stream of the synthetic world (with its incident and praise scenarios) flows
//! through it at 2,000 posts/s of event time; then placing posts among as many live stories as
//! the tracker keeps, all holding one word (a brand's name in every story of a brand's stream).

use std::time::Instant;

use serde::Serialize;

use super::ceilings::generate_posts;
use crate::analysis::{lexicon::LexiconAnalyzer, Analyzer};
use crate::config::StorySettings;
use crate::models::event::Event;
use crate::stories::{AnnouncedStory, StoryTracker};

/// Options of the stories part.
#[derive(Debug, Clone, clap::Args)]
pub struct StoriesBenchArgs {
    /// Posts streamed through the tracker.
    #[arg(long, default_value_t = 1_000_000)]
    pub story_posts: u64,
}

/// The stories part's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoriesReport {
    pub posts: u64,
    /// Live stories, all holding one word, in the crowded run.
    pub crowded_stories: usize,
    /// Placing one post that uses the word all of them hold and words of one of them.
    pub crowded_micros_per_post: f64,
    /// Event-time rate the posts were stamped at.
    pub posts_per_sec_event_time: f64,
    /// Placing one post, on one core.
    pub micros_per_post: f64,
    /// The lexicon analysis of one post, on one core, same posts, same run.
    pub analysis_micros_per_post: f64,
    pub live_stories_at_end: usize,
    pub stories_born: u64,
    /// The tracker's own estimate of what it holds, at its peak and at the end.
    pub peak_memory_mb: f64,
    pub end_memory_mb: f64,
    /// Memory after the first tenth of the stream: the plateau the rest must stay near.
    pub memory_at_tenth_mb: f64,
}

pub fn run(args: &StoriesBenchArgs) -> anyhow::Result<StoriesReport> {
    // The synthetic world repeats after a few thousand distinct texts; stamp a long stream
    // with event times 0.5 ms apart.
    let sample = generate_posts(20_000, "story-bench");
    let texts: Vec<String> = sample
        .iter()
        .filter_map(|json| match Event::from_slice(json.as_bytes()) {
            Ok(Event::Post(p)) => Some(p.text),
            _ => None,
        })
        .collect();
    anyhow::ensure!(!texts.is_empty(), "the generator made no posts");

    let mut lexicon = LexiconAnalyzer::new();
    let started = Instant::now();
    for chunk in texts.chunks(256) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        std::hint::black_box(lexicon.analyze_batch(&refs));
    }
    let analysis_micros = started.elapsed().as_secs_f64() * 1e6 / texts.len() as f64;

    let rate = 2_000.0;
    let mut tracker: StoryTracker<u64> = StoryTracker::new(StorySettings::default());
    let (mut peak, mut at_tenth, mut born) = (0usize, 0usize, 0u64);
    let started = Instant::now();
    for i in 0..args.story_posts {
        let at_ms = (i as f64 * 1000.0 / rate) as i64;
        tracker.place(i, at_ms, &texts[i as usize % texts.len()]);
        for event in tracker.drain_events() {
            if matches!(event, crate::stories::StoryEvent::Born { .. }) {
                born += 1;
            }
        }
        if i % 50_000 == 0 {
            peak = peak.max(tracker.memory_bytes());
        }
        if i == args.story_posts / 10 {
            at_tenth = tracker.memory_bytes();
        }
    }
    let elapsed = started.elapsed();
    // The memory estimate is sampled outside the timed loop's average.
    let end = tracker.memory_bytes();
    let (crowded_stories, crowded_micros_per_post) = crowded(args.story_posts / 50);
    Ok(StoriesReport {
        posts: args.story_posts,
        crowded_stories,
        crowded_micros_per_post,
        posts_per_sec_event_time: rate,
        micros_per_post: elapsed.as_secs_f64() * 1e6 / args.story_posts.max(1) as f64,
        analysis_micros_per_post: analysis_micros,
        live_stories_at_end: tracker.live(),
        stories_born: born,
        peak_memory_mb: peak.max(end) as f64 / 1e6,
        end_memory_mb: end as f64 / 1e6,
        memory_at_tenth_mb: at_tenth as f64 / 1e6,
    })
}

/// Places `posts` posts among `max_stories` live stories (taken in as a restarted process takes
/// them) that all hold the word `pulsebrand` beside ten words of their own; each post uses the
/// shared word and two of one story's own. Answers the live stories and the microseconds a post.
fn crowded(posts: u64) -> (usize, f64) {
    let settings = StorySettings::default();
    let stories = settings.max_stories;
    let mut tracker: StoryTracker<u64> = StoryTracker::new(settings);
    for i in 0..stories {
        let mut terms = vec![("pulsebrand".to_string(), 1.0)];
        terms.extend((0..10).map(|w| (format!("story{i}word{w}"), 0.5)));
        tracker.restore(&AnnouncedStory {
            id: i as i64 + 1,
            born_ms: 0,
            first_ms: 0,
            last_ms: 60_000,
            terms,
        });
    }
    let texts: Vec<String> = (0..posts)
        .map(|p| {
            let (s, w) = (p as usize % stories, p % 10);
            format!(
                "pulsebrand news story{s}word{w} story{s}word{}",
                (w + 1) % 10
            )
        })
        .collect();
    let started = Instant::now();
    for (p, text) in texts.iter().enumerate() {
        tracker.place(p as u64, 60_000 + p as i64, text);
        tracker.drain_events();
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / posts.max(1) as f64;
    (tracker.live(), micros)
}

/// The report as a Markdown table.
pub fn markdown(s: &StoriesReport) -> String {
    format!(
        "\n| stories | figure |\n|---|---|\n| posts (event time {} /s) | {} |\n| placing one post | {:.1} µs |\n| analysing one post (lexicon, same run) | {:.1} µs |\n| stories born / live at the end | {} / {} |\n| tracker memory after a tenth / peak / end | {:.1} / {:.1} / {:.1} MB |\n| placing one post among {} live stories that all hold one of its words | {:.1} µs |",
        s.posts_per_sec_event_time,
        s.posts,
        s.micros_per_post,
        s.analysis_micros_per_post,
        s.stories_born,
        s.live_stories_at_end,
        s.memory_at_tenth_mb,
        s.peak_memory_mb,
        s.end_memory_mb,
        s.crowded_stories,
        s.crowded_micros_per_post
    )
}

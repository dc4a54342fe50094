use super::*;
use crate::models::EngagementKind;
use std::collections::{BTreeMap, BTreeSet};

/// The demo's incident and praise waves come out as stories of their own: most of a
/// wave's posts in one story whose heaviest words include the wave's, and no two waves in
/// one story.
#[test]
fn the_demo_waves_become_stories_of_their_own() {
    use crate::stories::{StoryEvent, StoryTracker};
    let mut generator = Generator::new(GeneratorOptions {
        seed: 11,
        posts_per_sec: 5.0,
        engagements: false,
        ..GeneratorOptions::default()
    })
    .with_scenarios();
    let mut tracker = StoryTracker::new(crate::config::StorySettings::default());
    let mut texts: Vec<String> = Vec::new();
    let mut story: Vec<Option<i64>> = Vec::new();
    while texts.len() < 6_000 {
        let Event::Post(post) = generator.next_event() else {
            continue;
        };
        let i = texts.len();
        let at = post.created_at.timestamp_millis();
        story.push(tracker.place(i, at, &post.text));
        texts.push(post.text);
        for event in tracker.drain_events() {
            match event {
                StoryEvent::Born { id, members } | StoryEvent::Grew { id, members } => {
                    for m in members {
                        story[m] = Some(id);
                    }
                }
                StoryEvent::Merged { from, into } => {
                    for s in story.iter_mut().flatten() {
                        if *s == from {
                            *s = into;
                        }
                    }
                }
                StoryEvent::Faded { .. } | StoryEvent::Left { .. } => {}
            }
        }
    }
    let mut stories_of_waves = BTreeSet::new();
    for topic in scenarios::ISSUES.iter().chain(scenarios::CAMPAIGNS.iter()) {
        let wave: Vec<usize> = (0..texts.len())
            .filter(|&i| texts[i].contains(topic))
            .collect();
        if wave.len() < 20 {
            continue;
        }
        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for &i in &wave {
            if let Some(id) = story[i] {
                *counts.entry(id).or_default() += 1;
            }
        }
        let (&main, &held) = counts.iter().max_by_key(|(_, n)| **n).expect("a story");
        assert!(
            held * 10 >= wave.len() * 8,
            "{topic}: {held} of {} posts in its story",
            wave.len()
        );
        let label = tracker
            .snapshot(main)
            .expect("the wave's story is live")
            .terms;
        let words = crate::stories::features::words(topic);
        assert!(
            label.iter().filter(|w| words.contains(w)).count() >= 2,
            "{topic}: its story's words are {label:?}"
        );
        assert!(
            stories_of_waves.insert(main),
            "{topic}: two waves in one story"
        );
    }
    assert!(
        stories_of_waves.len() >= 2,
        "the run holds an incident and a praise wave"
    );
}

fn options(seed: u64) -> GeneratorOptions {
    GeneratorOptions {
        seed,
        posts_per_sec: 20.0,
        engagements: true,
        start: DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        id_prefix: "t1-".to_string(),
        // Cascades a thousand times faster than real ones (a week of lifetime in ten
        // minutes), so tests about sizes and ids see many of them end.
        time_scale: 1000.0,
        max_posts: None,
    }
}

fn posts(seed: u64, n: usize) -> Vec<Post> {
    let mut generator = Generator::new(GeneratorOptions {
        engagements: false,
        ..options(seed)
    });
    (0..n)
        .map(|_| match generator.next_event() {
            Event::Post(p) => p,
            Event::Engagement(_) => panic!("engagements are off"),
            Event::Delete(_) => unreachable!("the generator deletes nothing"),
        })
        .collect()
}

fn at(event: &Event) -> DateTime<Utc> {
    match event {
        Event::Post(p) => p.created_at,
        Event::Engagement(e) => e.at,
        Event::Delete(d) => d.at,
    }
}

#[test]
fn one_seed_gives_one_sequence() {
    let a: Vec<Event> = Generator::new(options(42)).take(10_000).collect();
    let b: Vec<Event> = Generator::new(options(42)).take(10_000).collect();
    assert_eq!(a, b);
    let c: Vec<Event> = Generator::new(options(43)).take(10_000).collect();
    assert_ne!(a, c);
}

#[test]
fn every_event_validates_and_round_trips() {
    for event in Generator::new(options(1)).take(30_000) {
        event.validate().unwrap();
        let json = serde_json::to_vec(&event).unwrap();
        assert_eq!(Event::from_slice(&json).unwrap(), event);
    }
}

#[test]
fn time_never_goes_backwards() {
    let mut generator = Generator::new(options(2));
    let mut last = options(2).start;
    let mut post_times = BTreeMap::new();
    for _ in 0..50_000 {
        let event = generator.next_event();
        let t = at(&event);
        assert!(t >= last, "{t} after {last}");
        assert_eq!(generator.now(), t);
        match &event {
            Event::Post(p) => {
                post_times.insert(p.id.clone(), t);
            }
            Event::Engagement(e) => assert!(t > post_times[&e.post_id]),
            Event::Delete(_) => unreachable!("the generator deletes nothing"),
        }
        last = t;
    }
    assert_eq!(Generator::new(options(2)).next_event().validate(), Ok(()));
    assert_eq!(
        at(&Generator::new(options(2)).next_event()),
        options(2).start
    );
}

#[test]
fn posts_arrive_at_the_requested_rate() {
    let all = posts(3, 20_000);
    let span = (all.last().unwrap().created_at - all[0].created_at).as_seconds_f64();
    let rate = (all.len() - 1) as f64 / span;
    assert!((rate - 20.0).abs() < 1.0, "{rate} posts/s");
    let ids: BTreeSet<&str> = all.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), all.len());
    assert!(all.iter().all(|p| p.id.starts_with("t1-")));
}

#[test]
fn posts_cover_the_world() {
    let all = posts(4, 20_000);
    let cities: BTreeSet<&str> = all.iter().filter_map(|p| p.city()).collect();
    let countries: BTreeSet<&str> = all.iter().filter_map(|p| p.country()).collect();
    let platforms: BTreeSet<&str> = all.iter().map(|p| p.platform.as_str()).collect();
    let products: BTreeSet<&str> = all.iter().filter_map(|p| p.product.as_deref()).collect();
    let channels: BTreeSet<&str> = all.iter().filter_map(|p| p.channel.as_deref()).collect();
    assert!(cities.len() >= 20, "{cities:?}");
    assert!(countries.len() >= 8, "{countries:?}");
    assert_eq!(platforms.len(), Platform::ALL.len());
    assert_eq!(products.len(), PRODUCTS.len());
    assert_eq!(channels.len(), 5, "{channels:?}");

    let count = |f: &dyn Fn(&Post) -> bool| all.iter().filter(|p| f(p)).count();
    let n = all.len();
    // Of the posts whose producer named a language, about a quarter are not in English.
    let tagged = count(&|p| p.lang.is_some());
    let other = count(&|p| p.lang.as_deref().is_some_and(|l| l != "en"));
    assert!(
        other * 100 > tagged * 15 && other * 100 < tagged * 35,
        "{other} of {tagged} not in English"
    );
    let with_geo = count(&|p| p.geo.is_some());
    assert!(with_geo > n / 3 && with_geo < n, "{with_geo} with geo");
    for (what, have) in [
        ("replies", count(&|p| p.parent_id.is_some())),
        ("urls", count(&|p| p.url.is_some())),
        ("metrics", count(&|p| p.metrics.is_some())),
        ("untagged", count(&|p| p.product.is_none())),
    ] {
        assert!(have > n / 50 && have < n / 2, "{have} {what}");
    }
    let twitter = count(&|p| p.platform == Platform::Twitter);
    let mastodon = count(&|p| p.platform == Platform::Mastodon);
    assert!(twitter > 3 * mastodon);

    let ids: BTreeSet<&str> = all.iter().map(|p| p.id.as_str()).collect();
    let mut seen = BTreeSet::new();
    for p in &all {
        if let Some(parent) = &p.parent_id {
            assert!(seen.contains(parent.as_str()) && ids.contains(parent.as_str()));
        }
        seen.insert(p.id.as_str());
    }
}

#[test]
fn authors_recur_and_audiences_are_heavy_tailed() {
    let all = posts(5, 20_000);
    let mut per_author: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &all {
        *per_author.entry(p.author.id.as_str()).or_default() += 1;
    }
    assert!(per_author.values().filter(|&&n| n >= 5).count() > 100);
    let small = all.iter().filter(|p| p.author.followers < 1_000).count();
    let huge = all
        .iter()
        .filter(|p| p.author.followers > 1_000_000)
        .count();
    assert!(
        small * 10 > all.len() * 7,
        "{small} posts by authors under 1k"
    );
    assert!(
        huge > 0 && huge * 20 < all.len(),
        "{huge} posts by authors over 1M"
    );
}

const POSITIVE_WORDS: [&str; 12] = [
    "love",
    "great",
    "amazing",
    "awesome",
    "excellent",
    "fantastic",
    "happy",
    "excited",
    "hopeful",
    "perfect",
    "brilliant",
    "wonderful",
];
const NEGATIVE_WORDS: [&str; 12] = [
    "terrible",
    "awful",
    "hate",
    "worst",
    "disappointed",
    "furious",
    "angry",
    "sad",
    "useless",
    "broken",
    "pathetic",
    "horrible",
];
const CHURN_PHRASES: [&str; 4] = [
    "cancelling my subscription",
    "switching to",
    "refund",
    "closing my account",
];
const TOXIC_WORDS: [&str; 6] = ["idiots", "clowns", "morons", "crap", "damn", "jokers"];

fn has_any(text: &str, words: &[&str]) -> bool {
    let lower = text.to_lowercase();
    words.iter().any(|w| lower.contains(w))
}

#[test]
fn texts_mix_tones_emotions_and_churn() {
    let all = posts(6, 20_000);
    let n = all.len();
    let english: Vec<&str> = all
        .iter()
        .filter(|p| p.lang.as_deref().is_none_or(|l| l == "en"))
        .map(|p| p.text.as_str())
        .collect();
    let m = english.len();
    let positive = english
        .iter()
        .filter(|t| has_any(t, &POSITIVE_WORDS))
        .count();
    let negative = english
        .iter()
        .filter(|t| has_any(t, &NEGATIVE_WORDS))
        .count();
    let neither = english
        .iter()
        .filter(|t| !has_any(t, &POSITIVE_WORDS) && !has_any(t, &NEGATIVE_WORDS))
        .count();
    assert!(
        positive * 100 > m * 20 && positive * 100 < m * 50,
        "{positive}/{m}"
    );
    assert!(
        negative * 100 > m * 15 && negative * 100 < m * 45,
        "{negative}/{m}"
    );
    assert!(neither * 100 > m * 20, "{neither}/{m} neutral");

    for phrase in CHURN_PHRASES {
        assert!(
            english.iter().any(|t| t.to_lowercase().contains(phrase)),
            "{phrase}"
        );
    }
    let churn = english
        .iter()
        .filter(|t| has_any(t, &CHURN_PHRASES))
        .count();
    assert!(
        churn * 100 > m * 3 && churn * 100 < m * 15,
        "{churn}/{m} churn"
    );
    let toxic = english.iter().filter(|t| has_any(t, &TOXIC_WORDS)).count();
    assert!(toxic > 0 && toxic * 100 < m * 10, "{toxic}/{m} toxic");

    for emotion_words in [
        &["furious", "angry", "outraged", "fed up"][..],
        &["love", "happy", "smiling", "glad"][..],
        &["hope", "optimistic", "looking forward", "excited"][..],
        &["sad", "heartbroken", "miserable", "down"][..],
    ] {
        assert!(english.iter().filter(|t| has_any(t, emotion_words)).count() > n / 50);
    }
    let with_hashtag = english.iter().filter(|t| t.contains(" #")).count();
    let with_mention = english.iter().filter(|t| t.contains('@')).count();
    let with_emoji = english.iter().filter(|t| !t.is_ascii()).count();
    for have in [with_hashtag, with_mention, with_emoji] {
        assert!(have > m / 10 && have < m * 9 / 10, "{have}/{m}");
    }
    let distinct: BTreeSet<&str> = all.iter().map(|p| p.text.as_str()).collect();
    assert!(
        distinct.len() * 100 > n * 90,
        "{} distinct of {n}",
        distinct.len()
    );
}

/// Runs until `posts` posts have finished cascades, checking cascade invariants on the way.
fn checked_cascades(seed: u64, posts: usize) -> Vec<(String, u64)> {
    let mut generator = Generator::new(options(seed));
    let mut shares: BTreeMap<String, u64> = BTreeMap::new();
    let mut kinds: BTreeMap<String, EngagementKind> = BTreeMap::new();
    let mut emitted_posts = BTreeSet::new();
    let mut finished_posts = BTreeSet::new();
    let mut finished = Vec::new();
    while finished.len() < posts {
        match generator.next_event() {
            Event::Post(p) => {
                emitted_posts.insert(p.id);
            }
            Event::Engagement(e) => {
                assert!(emitted_posts.contains(&e.post_id));
                assert!(!finished_posts.contains(&e.post_id), "after its end");
                let id = e.id.clone().expect("every engagement has an id");
                assert!(id.starts_with(&format!("{}:e", e.post_id)));
                if let Some(via) = &e.via {
                    assert_eq!(e.kind, EngagementKind::Share);
                    assert!(via.starts_with(&format!("{}:e", e.post_id)));
                    assert_eq!(kinds.get(via), Some(&EngagementKind::Share), "{via}");
                }
                match e.kind {
                    EngagementKind::Share => {
                        assert!(e.actor_followers.is_some() && e.count.is_none());
                        *shares.entry(e.post_id.clone()).or_default() += 1;
                    }
                    EngagementKind::View => assert!(e.count.is_some()),
                    EngagementKind::Like | EngagementKind::Comment => {}
                }
                assert!(kinds.insert(id, e.kind).is_none(), "duplicate id");
            }
            Event::Delete(_) => unreachable!("the generator deletes nothing"),
        }
        for (post_id, total) in generator.take_finished_cascades() {
            assert!(emitted_posts.contains(&post_id));
            assert_eq!(
                shares.get(&post_id).copied().unwrap_or(0),
                total,
                "{post_id}"
            );
            assert!(finished_posts.insert(post_id.clone()), "reported twice");
            finished.push((post_id, total));
        }
    }
    finished
}

#[test]
fn cascades_report_what_they_emitted_and_via_points_back() {
    let finished = checked_cascades(7, 2_000);
    assert!(finished.iter().any(|(_, n)| *n > 0));
}

#[test]
fn cascade_sizes_are_heavy_tailed() {
    let mut generator = Generator::new(options(8));
    let mut sizes = Vec::new();
    while sizes.len() < 5_000 {
        generator.next_event();
        sizes.extend(
            generator
                .take_finished_cascades()
                .into_iter()
                .map(|(_, n)| n),
        );
    }
    sizes.sort_unstable();
    let median = sizes[sizes.len() / 2];
    let max = *sizes.last().unwrap();
    assert!(median <= 2, "median {median}");
    assert!(max >= 20 * median.max(1), "median {median}, max {max}");
    let zero = sizes.iter().filter(|&&n| n == 0).count();
    assert!(
        zero > sizes.len() / 10 && zero < sizes.len() * 8 / 10,
        "{zero} without shares"
    );
    let big = sizes.iter().filter(|&&n| n >= 10).count();
    assert!(
        big * 200 > sizes.len() && big * 5 < sizes.len(),
        "{big} with 10+ shares"
    );
}

#[test]
fn every_cascade_ends_within_its_lifetime() {
    // At real speed: a week of lifetime, so every post of the first hour has ended
    // eight days later.
    let opts = GeneratorOptions {
        posts_per_sec: 0.005,
        time_scale: 1.0,
        ..options(9)
    };
    let start = opts.start;
    let mut generator = Generator::new(opts);
    let horizon = start + TimeDelta::days(8);
    let mut first_hour = BTreeSet::new();
    let mut finished = BTreeSet::new();
    let mut last_week = 0usize;
    while generator.now() < horizon {
        if let Event::Post(p) = generator.next_event() {
            if p.created_at < start + TimeDelta::hours(1) {
                first_hour.insert(p.id);
            }
            if p.created_at >= horizon - TimeDelta::days(7) {
                last_week += 1;
            }
        }
        finished.extend(
            generator
                .take_finished_cascades()
                .into_iter()
                .map(|(id, _)| id),
        );
    }
    assert!(!first_hour.is_empty());
    assert!(first_hour.is_subset(&finished));
    // Only posts of the last week can still be running.
    assert!(generator.active_cascades() <= last_week, "{last_week}");
}

#[test]
fn engagements_can_be_turned_off() {
    let mut generator = Generator::new(GeneratorOptions {
        engagements: false,
        ..options(10)
    });
    for _ in 0..2_000 {
        assert!(matches!(generator.next_event(), Event::Post(_)));
    }
    assert!(generator.take_finished_cascades().is_empty());
    assert_eq!(generator.pending_engagements(), 0);
}

#[test]
fn a_generator_can_move_to_another_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Generator>();
}

#[test]
#[should_panic(expected = "posts_per_sec")]
fn a_zero_rate_is_refused() {
    Generator::new(GeneratorOptions {
        posts_per_sec: 0.0,
        ..options(11)
    });
}

use super::*;
use crate::models::fixtures::OUTAGE;

const MINUTE: i64 = 60_000;

/// A tracker that has seen an hour of unrelated chatter before the test's posts, so word
/// weights are those of a running stream (in a stream of only one conversation, every word
/// is common and none tells posts apart).
fn tracker() -> StoryTracker<String> {
    tracker_after(|i| format!("chatter{i} about topic{} and thing{}", i * 7, i * 13))
}

/// A tracker that has seen an hour of the chatter `text(i)` writes, one post a minute.
fn tracker_after(text: impl Fn(i64) -> String) -> StoryTracker<String> {
    let mut t = StoryTracker::new(StorySettings::default());
    for i in 0..60 {
        t.place(format!("bg{i}"), (i - 60) * MINUTE, &text(i));
    }
    t.drain_events();
    t
}

/// Places `(minute, text)` posts keyed `p0, p1, ...`; answers each post's final story.
fn replay(tracker: &mut StoryTracker<String>, posts: &[(i64, &str)]) -> Vec<Option<StoryId>> {
    replay_counting_departures(tracker, posts).0
}

/// [`replay`], and how many posts left a story they had joined loosely.
fn replay_counting_departures(
    tracker: &mut StoryTracker<String>,
    posts: &[(i64, &str)],
) -> (Vec<Option<StoryId>>, u64) {
    let mut story: Vec<Option<StoryId>> = vec![None; posts.len()];
    let mut departures = 0;
    for (i, (minute, text)) in posts.iter().enumerate() {
        story[i] = tracker.place(format!("p{i}"), minute * MINUTE, text);
        for event in tracker.drain_events() {
            match event {
                StoryEvent::Born { id, members } | StoryEvent::Grew { id, members } => {
                    for m in members {
                        story[m[1..].parse::<usize>().unwrap()] = Some(id);
                    }
                }
                StoryEvent::Merged { from, into } => {
                    for s in story.iter_mut().flatten() {
                        if *s == from {
                            *s = into;
                        }
                    }
                }
                StoryEvent::Left { count, .. } => departures += count,
                StoryEvent::Faded { .. } => {}
            }
        }
    }
    (story, departures)
}

const PRICE: [&str; 4] = [
    "pulsephone price rise announced, 20% more",
    "that pulsephone price rise is a joke",
    "price rise on the pulsephone from March",
    "pulsephone price rise: switching brands",
];

/// `texts` as `(minute, text)` posts, one a minute from minute 0.
fn minutes_apart<'a>(texts: &[&'a str]) -> Vec<(i64, &'a str)> {
    texts
        .iter()
        .enumerate()
        .map(|(i, s)| (i as i64, *s))
        .collect()
}

#[test]
fn alike_posts_found_a_story_and_its_founders_join_it() {
    let mut t = tracker();
    let posts = minutes_apart(&OUTAGE);
    let story = replay(&mut t, &posts);
    let id = story[4].expect("the outage is a story");
    assert!(story.iter().all(|s| *s == Some(id)), "{story:?}");
    let snapshot = t.snapshot(id).unwrap();
    assert_eq!(snapshot.size, 5);
    assert!(
        snapshot.terms.iter().any(|w| w == "outage"),
        "{:?}",
        snapshot.terms
    );
    assert!(snapshot.representatives.len() <= 5 && !snapshot.representatives.is_empty());
}

#[test]
fn two_conversations_become_two_stories_and_unrelated_posts_none() {
    let mut t = tracker();
    let mut posts: Vec<(i64, &str)> = Vec::new();
    for i in 0..4 {
        posts.push((i * 2, OUTAGE[i as usize]));
        posts.push((i * 2 + 1, PRICE[i as usize]));
    }
    posts.push((10, "lovely sunset over the harbour tonight"));
    posts.push((11, "my cat ignores me completely"));
    let story = replay(&mut t, &posts);
    let outage: BTreeSetOf = (0..4).map(|i| story[i * 2]).collect();
    let price: BTreeSetOf = (0..4).map(|i| story[i * 2 + 1]).collect();
    assert_eq!(outage.len(), 1, "{story:?}");
    assert_eq!(price.len(), 1, "{story:?}");
    assert_ne!(outage, price);
    assert!(!outage.contains(&None) && !price.contains(&None));
    assert_eq!(story[8], None);
    assert_eq!(story[9], None);
}

type BTreeSetOf = std::collections::BTreeSet<Option<StoryId>>;

/// A second earthquake is not the first one's story: its posts share "earthquake" with the
/// first story's centre, join it loosely, then found their own story together and leave the
/// first, which keeps its own posts and loses the count of those that left.
#[test]
fn a_new_event_sharing_a_common_word_founds_its_own_story() {
    // A stream where earthquakes are talked about: the word is common, not a story's own.
    // Each post has many words of its own, so one word in common does not make two alike.
    let mut t = tracker_after(|i| {
        let own: Vec<String> = (0..12).map(|k| format!("word{k}x{i}")).collect();
        if i % 4 == 0 {
            format!("{} earthquake", own.join(" "))
        } else {
            own.join(" ")
        }
    });
    let first = [
        "earthquake in Emilia, Italy: churches collapsed in Finale Emilia",
        "Emilia earthquake, Finale Emilia churches collapsed, Italy shaken",
        "Italy: the Emilia earthquake collapsed churches near Finale",
        "Finale Emilia after the earthquake: churches collapsed, Italy mourns",
        "churches collapsed in Finale Emilia, Italy, after the earthquake",
        "Italy earthquake: Emilia churches collapsed, Finale Emilia hit",
    ];
    let second = [
        "earthquake shakes Guatemala, San Marcos houses destroyed",
        "Guatemala earthquake: San Marcos houses destroyed, earthquake victims",
        "San Marcos, Guatemala: houses destroyed by the earthquake",
        "houses destroyed in San Marcos after the Guatemala earthquake",
        "Guatemala earthquake victims in San Marcos, houses destroyed",
    ];
    let posts = minutes_apart(&[&first[..], &second[..]].concat());
    let (story, left) = replay_counting_departures(&mut t, &posts);
    let italy: BTreeSetOf = story[..first.len()].iter().copied().collect();
    let guatemala: BTreeSetOf = story[first.len()..].iter().copied().collect();
    assert_eq!(italy.len(), 1, "{story:?}");
    assert_eq!(guatemala.len(), 1, "{story:?}");
    assert_ne!(italy, guatemala, "{story:?}");
    assert!(!italy.contains(&None) && !guatemala.contains(&None));
    assert!(
        left > 0,
        "some of the second event's posts had joined the first loosely"
    );
    let italy_id = story[0].unwrap();
    assert_eq!(t.snapshot(italy_id).unwrap().size, first.len() as u64);
}

#[test]
fn the_same_posts_in_the_same_order_give_the_same_ids() {
    let posts = minutes_apart(&[OUTAGE.as_slice(), PRICE.as_slice()].concat());
    let a = replay(&mut tracker(), &posts);
    let b = replay(&mut tracker(), &posts);
    assert_eq!(a, b);
    assert!(a.iter().flatten().all(|id| *id > 0));
}

/// What the keeper announces of a story born in `t`.
fn announcement(t: &StoryTracker<String>, id: StoryId) -> AnnouncedStory {
    t.snapshot(id).expect("a live story").into()
}

#[test]
fn a_story_announced_by_another_process_takes_its_posts_here() {
    let mut first = tracker();
    let id = replay(&mut first, &minutes_apart(&OUTAGE))[4].expect("a story");
    let post = (6 * MINUTE, "Lyon pulse-buds outage, third day now");

    // Alone, the second process holds the post back: one post is no story.
    let mut alone = tracker();
    assert_eq!(alone.place("q".to_string(), post.0, post.1), None);

    let mut second = tracker();
    assert!(second.adopt(&announcement(&first, id)));
    assert!(!second.adopt(&announcement(&first, id)), "taken in once");
    assert_eq!(second.place("q".to_string(), post.0, post.1), Some(id));
    assert_eq!(second.snapshot(id).unwrap().size, 1);
}

#[test]
fn two_processes_that_found_one_story_at_once_settle_on_one_id() {
    let mut first = tracker();
    let a = replay(&mut first, &minutes_apart(&OUTAGE))[4].expect("a story");
    let mut second = tracker();
    let other = [
        "servers down, servers down: pulse-buds outage in Lyon",
        "pulse-buds servers down in Lyon? servers down everywhere, outage",
        "Lyon outage: pulse-buds servers down, servers down since noon",
        "servers down again: pulse-buds in Lyon, outage, servers down",
    ];
    let b = replay(&mut second, &minutes_apart(&other))[3].expect("a story");
    assert_ne!(a, b, "founded from other words, named otherwise");

    let (to_second, to_first) = (announcement(&first, a), announcement(&second, b));
    first.adopt(&to_first);
    second.adopt(&to_second);
    let merges = |t: &mut StoryTracker<String>| -> Vec<StoryEvent<String>> {
        t.drain_events()
            .into_iter()
            .filter(|e| matches!(e, StoryEvent::Merged { .. }))
            .collect()
    };
    let (in_first, in_second) = (merges(&mut first), merges(&mut second));
    assert_eq!(in_first.len(), 1, "{in_first:?}");
    assert_eq!(in_first, in_second, "both processes keep the same story");
    let post = (9 * MINUTE, "pulse-buds outage in Lyon still going");
    let here = first.place("x".to_string(), post.0, post.1);
    let there = second.place("y".to_string(), post.0, post.1);
    assert!(here.is_some());
    assert_eq!(here, there);
}

/// A story of another process, born at minute 0, whose centre shares its two heaviest words
/// `shared` with any other such story and holds eighteen words of its own, `own0`, `own1`...
fn wide_story(id: StoryId, own: &str) -> AnnouncedStory {
    let mut terms = vec![("shared".to_string(), 1.0), ("words".to_string(), 1.0)];
    terms.extend((0..18).map(|i| (format!("{own}{i}"), 0.8)));
    AnnouncedStory {
        id,
        born_ms: 0,
        first_ms: 0,
        last_ms: MINUTE,
        terms,
    }
}

/// Merge events among `t`'s events since the last call.
fn merges(t: &mut StoryTracker<String>) -> Vec<StoryEvent<String>> {
    t.drain_events()
        .into_iter()
        .filter(|e| matches!(e, StoryEvent::Merged { .. }))
        .collect()
}

/// Two live stories kept apart by their whole centres were merged when a restarted process
/// took them in: each came back with only its eight heaviest words, on which they look alike.
#[test]
fn stories_kept_apart_stay_apart_when_taken_in_at_a_restart() {
    let mut running = tracker();
    assert!(running.adopt(&wide_story(1, "north")));
    assert!(running.adopt(&wide_story(2, "south")));
    assert_eq!(merges(&mut running), vec![], "apart on their whole centres");
    assert_eq!(running.live(), 2);
    let stored = [announcement(&running, 1), announcement(&running, 2)];
    assert_eq!(stored[0].terms.len(), SNAPSHOT_TERMS);

    let mut restarted = tracker();
    for story in &stored {
        assert!(restarted.restore(story));
    }
    assert_eq!(merges(&mut restarted), vec![]);
    assert_eq!(restarted.live(), 2);

    // Announced by another process, the same words are compared and merged.
    let mut announced = tracker();
    for story in &stored {
        announced.adopt(story);
    }
    assert_eq!(merges(&mut announced).len(), 1);
}

/// Words every live story held (a brand's name in each story of its stream) were looked up in
/// each of those stories for every post that used them. Held by more than 128 stories, such a
/// word finds no story: a post of nothing else waits, a post naming one story's own words joins
/// it, and a duplicate story is still found through its own words and merged.
#[test]
fn a_word_every_story_holds_finds_none_and_the_story_a_post_names_is_still_found() {
    let mut t = tracker();
    for i in 0..200 {
        assert!(t.restore(&wide_story(1_000 + i, &format!("own{i}x"))));
    }
    assert_eq!(t.live(), 200);
    assert_eq!(t.place("common".to_string(), MINUTE, "shared words"), None);
    let joined = t.place(
        "named".to_string(),
        MINUTE,
        "shared words own7x0 own7x1 own7x2 own7x3",
    );
    assert_eq!(joined, Some(1_007));
    t.drain_events();
    assert!(t.adopt(&wide_story(5_000, "own7x")));
    assert_eq!(
        merges(&mut t),
        vec![StoryEvent::Merged {
            from: 5_000,
            into: 1_007
        }]
    );
}

#[test]
fn a_quiet_story_fades_and_a_late_post_does_not_join_it() {
    let mut t = tracker();
    let posts = minutes_apart(&OUTAGE);
    let story = replay(&mut t, &posts);
    let id = story[0].unwrap();
    let later = 10 * 24 * 60;
    let late = t.place(
        "late".to_string(),
        later * MINUTE,
        "pulse-buds outage in Lyon",
    );
    assert!(t.drain_events().contains(&StoryEvent::Faded { id }));
    assert_ne!(late, Some(id));
    assert!(t.snapshot(id).is_none());
}

#[test]
fn memory_stays_bounded_however_long_the_stream() {
    let settings = StorySettings {
        max_stories: 50,
        max_pending: 2_000,
        ..StorySettings::default()
    };
    let mut t: StoryTracker<u64> = StoryTracker::new(settings);
    let mut peak_after_warmup = 0;
    for i in 0..40_000u64 {
        // Ever new topics, a few posts each, so stories keep being born.
        let topic = i / 4;
        let text = format!(
            "topic{topic} word{} common story about things{}",
            topic * 7,
            topic % 13
        );
        t.place(i, i as i64 * 1000, &text);
        t.drain_events();
        assert!(t.live() <= 50);
        if i == 10_000 {
            peak_after_warmup = t.memory_bytes();
        }
    }
    assert!(
        t.memory_bytes() < peak_after_warmup * 2,
        "{} vs {}",
        t.memory_bytes(),
        peak_after_warmup
    );
}

#[test]
fn settings_are_checked() {
    assert!(StorySettings::default().validate().is_ok());
    let bad = StorySettings {
        birth_posts: 1,
        ..StorySettings::default()
    };
    assert!(bad.validate().is_err());
}

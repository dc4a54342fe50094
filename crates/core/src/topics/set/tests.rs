use super::*;

fn post(text: &str) -> PostFields<'_> {
    PostFields {
        text,
        author: "u1",
        platform: "twitter",
        ..PostFields::default()
    }
}

#[test]
fn one_pass_finds_every_topic_a_post_matches() {
    let (set, refused) = TopicSet::build(TopicDef::numbered(&[
        "apple AND (iphone OR ipad)",
        "\"customer service\" NOT bank",
        "cancel* NEAR/2 subscription",
        "platform:reddit",
        "#pulse",
    ]));
    assert!(refused.is_empty());
    let ids = |text: &str| -> Vec<i64> { set.matches(&post(text)).iter().map(|m| m.id).collect() };
    assert_eq!(ids("My Apple iPad and #Pulse"), [1, 5]);
    assert_eq!(ids("Customer-service was great"), [2]);
    assert_eq!(ids("customer service at the bank"), Vec::<i64>::new());
    assert_eq!(ids("cancelled my pulse subscription"), [3]);
    assert_eq!(ids("subscription, I cancelled it"), [3]);
    assert_eq!(
        ids("cancelled it all, then my subscription"),
        Vec::<i64>::new()
    );
    let reddit = PostFields {
        platform: "reddit",
        ..post("anything")
    };
    assert_eq!(
        set.matches(&reddit)
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        [4]
    );
}

#[test]
fn near_misses_are_posts_a_not_or_a_field_removed() {
    let expr = syntax::parse("coke NOT (drug OR cocaine) platform:twitter").unwrap();
    let set = TopicSet::of(7, 1, &expr);
    assert_eq!(set.verdict(&post("a cold coke")), Verdict::Matches);
    assert_eq!(set.verdict(&post("coke is a drug")), Verdict::NearMiss);
    let reddit = PostFields {
        platform: "reddit",
        ..post("coke please")
    };
    assert_eq!(set.verdict(&reddit), Verdict::NearMiss);
    assert_eq!(set.verdict(&post("pepsi")), Verdict::Other);
}

#[test]
fn sites_match_their_subdomains_and_links_the_text() {
    let with_url = PostFields {
        url: Some("https://news.example.com/a"),
        ..post("read https://www.pulse.dev/blog")
    };
    for (query, expected) in [
        ("site:example.com", true),
        ("site:news.example.com", true),
        ("site:other.example.com", false),
        ("links:pulse.dev", true),
        ("site:pulse.dev", false),
        ("links:example.com", false),
    ] {
        assert_eq!(
            query_matches(query, &with_url).unwrap(),
            expected,
            "{query}"
        );
    }
}

/// The index evaluates only the topics one of whose required atoms a post holds: on random
/// queries and texts it finds exactly what evaluating every topic finds.
#[test]
fn the_index_finds_what_each_topic_alone_finds() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
    let words = [
        "apple", "pie", "phone", "cake", "#pie", "@apple", "东京", "café", "app*",
    ];
    let term = |rng: &mut rand::rngs::SmallRng| -> String {
        let w = words[rng.random_range(0..words.len())];
        match rng.random_range(0..8) {
            0 => format!("\"{w} {}\"", words[rng.random_range(0..3)]),
            1 => "platform:reddit".into(),
            _ => w.into(),
        }
    };
    let query = |rng: &mut rand::rngs::SmallRng| -> String {
        let a = term(rng);
        let b = term(rng);
        let c = term(rng);
        match rng.random_range(0..6) {
            0 => format!("{a} AND ({b} OR {c})"),
            1 => format!("({a} OR {b}) NOT {c}"),
            2 => format!("{a} NEAR/2 {b}"),
            3 => format!("{a} AND NOT ({b} AND NOT {c})"),
            4 => format!("({a} OR {b}) ({c} OR pie)"),
            _ => format!("{a} {b} OR {c}"),
        }
    };
    let defs: Vec<TopicDef> = (0..300)
        .map(|i| TopicDef {
            id: i,
            version: 1,
            query: query(&mut rng),
        })
        .collect();
    let (set, _) = TopicSet::build(defs.clone());
    let vocabulary = [
        "apple", "pie", "phone", "cake", "#pie", "@apple", "東京", "cafe", "apps", "x",
    ];
    let mut matched = 0;
    for n in 0..500 {
        let text: Vec<&str> = (0..rng.random_range(1..8))
            .map(|_| vocabulary[rng.random_range(0..vocabulary.len())])
            .collect();
        let text = text.join(" ");
        let platform = if n % 3 == 0 { "reddit" } else { "twitter" };
        let fields = PostFields {
            platform,
            ..post(&text)
        };
        let found: Vec<i64> = set.matches(&fields).iter().map(|m| m.id).collect();
        let mut expected = set.matches_evaluating_all(&fields);
        expected.sort_unstable();
        assert_eq!(found, expected, "{text} on {platform}");
        matched += found.len();
    }
    assert!(
        matched > 1_000,
        "the queries match often enough to tell: {matched}"
    );
}

#[test]
fn near_visits_only_spans_within_reach() {
    let left: Vec<Span> = (0..10_000).step_by(2).map(|p| (p, p)).collect();
    let right: Vec<Span> = (1..10_000).step_by(2).map(|p| (p, p)).collect();
    let steps = Cell::new(NEAR_STEPS_PER_POST);
    assert_eq!(near(&left, &right, 0, false, &steps).len(), 9_999);
    assert!(
        NEAR_STEPS_PER_POST - steps.get() < 20_001,
        "{} pairs visited",
        NEAR_STEPS_PER_POST - steps.get()
    );
    assert_eq!(
        near(&[(5, 5)], &[(5, 5)], 3, false, &steps),
        Vec::<Span>::new()
    );
    assert_eq!(
        near(&[(5, 5)], &[(1, 2)], 2, true, &steps),
        Vec::<Span>::new()
    );
    assert_eq!(near(&[(5, 5)], &[(1, 2)], 2, false, &steps), vec![(1, 5)]);
    steps.set(0);
    assert_eq!(
        near(&[(5, 5)], &[(1, 2)], 2, false, &steps),
        Vec::<Span>::new()
    );
}

/// Thousands of one word give a chain of `NEAR`s of it millions of spans to visit and keep;
/// the post's budget stops them, and the next post has a budget of its own.
#[test]
fn a_chain_of_near_over_a_repeated_word_stops_at_the_budget() {
    let set = TopicSet::of(
        1,
        1,
        &syntax::parse("the NEAR/100 the NEAR/100 the NEAR/100 the NEAR/100 the").unwrap(),
    );
    let flood = vec!["the"; 4_999].join(" ");
    let started = std::time::Instant::now();
    assert!(set.matches(&post(&flood)).is_empty());
    SCRATCH.with(|s| assert_eq!(s.borrow().near_steps.get(), 0));
    eprintln!("the flood took {:?}", started.elapsed());
    assert_eq!(
        set.matches(&post(
            "the cat and the hat and the bat and the rat and the mat"
        ))
        .len(),
        1
    );
    SCRATCH.with(|s| assert!(s.borrow().near_steps.get() > NEAR_STEPS_PER_POST - 1_000));
}

/// A phrase of 2,000 words checked from each of 10,000 places of the same word was 18 million
/// checks for one post; the post's budget stops them, and the next post has a budget of its
/// own.
#[test]
fn a_long_phrase_over_a_repeated_word_stops_at_the_budget() {
    let long = format!("\"{}\"", vec!["a"; 2_000].join(" "));
    let (set, refused) = TopicSet::build(TopicDef::numbered(&[long.as_str(), "\"b c\""]));
    assert!(refused.is_empty());
    let ids = |text: &str| -> Vec<i64> { set.matches(&post(text)).iter().map(|m| m.id).collect() };
    let flood = vec!["a"; 9_999].join(" ");
    let started = std::time::Instant::now();
    assert_eq!(
        ids(flood.as_str()),
        [1],
        "the first places checked hold the phrase"
    );
    SCRATCH.with(|s| assert_eq!(s.borrow().phrase_steps, 0));
    let short = vec!["a"; 1_999].join(" ");
    assert_eq!(ids(short.as_str()), Vec::<i64>::new());
    SCRATCH.with(|s| assert_eq!(s.borrow().phrase_steps, 0));
    eprintln!("the floods took {:?}", started.elapsed());
    assert_eq!(ids("a b c a"), [2]);
    SCRATCH.with(|s| assert!(s.borrow().phrase_steps > PHRASE_STEPS_PER_POST - 10));
}

/// Wildcards are looked up by their whole text at each length those sharing a token's first
/// characters have: 30,000 of them starting `abc` cost a token starting `abc` four lookups (their
/// lengths) and a try of each it does start with, where it was once a comparison with every one.
#[test]
fn wildcards_sharing_first_characters_cost_a_token_their_lengths_not_their_number() {
    // `abc` then `n` in bijective base 26 (a, b, ..., z, aa, ab, ...): 30,000 distinct wildcards
    // of 4 to 7 characters.
    let word = |mut n: usize| {
        let mut tail = Vec::new();
        loop {
            tail.push(b'a' + (n % 26) as u8);
            n /= 26;
            if n == 0 {
                break;
            }
            n -= 1;
        }
        tail.reverse();
        format!("abc{}", String::from_utf8(tail).unwrap())
    };
    let words: Vec<Vec<String>> = (0..100)
        .map(|t| (0..300).map(|j| word(t * 300 + j)).collect())
        .collect();
    let queries: Vec<String> = words
        .iter()
        .map(|topic| {
            topic
                .iter()
                .map(|w| format!("{w}*"))
                .collect::<Vec<_>>()
                .join(" OR ")
        })
        .collect();
    let (set, refused) = TopicSet::build(TopicDef::numbered(&queries));
    assert!(refused.is_empty(), "{refused:?}");

    let tokens = ["abcqqqq", "abcaaaaaaaa", "abcж", "xyz"];
    let text = "abcqqqq #abcaaaaaaaa abcж xyz";
    let found: Vec<i64> = set.matches(&post(text)).iter().map(|m| m.id).collect();
    let starts = |w: &String| tokens.iter().filter(|t| t.starts_with(w.as_str())).count();
    let expected: Vec<i64> = (0..words.len())
        .filter(|&t| words[t].iter().any(|w| starts(w) > 0))
        .map(|t| t as i64 + 1)
        .collect();
    assert_eq!(found, expected);
    assert!(expected.len() > 3, "{expected:?}");

    // Three tokens start `abc`; the wildcards have four lengths.
    let pairs: usize = words.iter().flatten().map(starts).sum();
    let checks = SCRATCH.with(|s| s.borrow().wildcard_checks) as usize;
    assert!(
        checks <= 3 * 4 + pairs,
        "{checks} lookups and tries for {pairs} wildcards found"
    );
}

/// An `OR` of one word written 299 times (the most a query holds beside one more word) compiled
/// to 299 nodes, each gathering the thousands of places a flood of the word holds it: a million
/// and a half spans before the `NEAR` visited a pair. Written once, it gathers them once, and
/// the post still matches.
#[test]
fn a_word_written_many_times_in_an_or_is_one_operand() {
    let query = format!("({}) NEAR/0 zz", vec!["the"; 299].join(" OR "));
    let set = TopicSet::of(1, 1, &syntax::parse(&query).unwrap());
    assert!(set.topics[0].nodes.len() <= 3, "{:?}", set.topics[0].nodes);
    let flood = format!("{}zz", "the ".repeat(4_999));
    assert_eq!(set.verdict(&post(&flood)), Verdict::Matches);
    let built = SCRATCH.with(|s| s.borrow().spans_built.get());
    assert!(built <= 2 * 5_000, "{built} spans gathered");
}

/// Different operands over the same words (`the OR the*`) gather the same places each: fifty
/// topics of them over a flood gathered a million spans, whatever the `NEAR` budget. Every span
/// gathered now spends it, and ordinary posts still match.
#[test]
fn spans_gathered_for_near_operands_stop_at_the_budget() {
    let queries: Vec<String> = (0..50)
        .map(|i| format!("(the OR the* OR \"the the\") NEAR/{i} zz"))
        .collect();
    let (set, refused) = TopicSet::build(TopicDef::numbered(&queries));
    assert!(refused.is_empty(), "{refused:?}");
    let flood = format!("{}zz", "the ".repeat(4_999));
    set.matches(&post(&flood));
    let built = SCRATCH.with(|s| s.borrow().spans_built.get());
    assert!(built <= NEAR_STEPS_PER_POST, "{built} spans gathered");
    SCRATCH.with(|s| assert_eq!(s.borrow().near_steps.get(), 0));

    let ids = |text: &str| -> Vec<i64> { set.matches(&post(text)).iter().map(|m| m.id).collect() };
    assert_eq!(ids("the zz"), (1..=50).collect::<Vec<i64>>());
    assert_eq!(ids("theory a b zz"), (3..=50).collect::<Vec<i64>>());
    assert_eq!(ids("zz and so the"), (3..=50).collect::<Vec<i64>>());
    assert_eq!(ids("the cat"), Vec::<i64>::new());
    let one = TopicSet::of(
        1,
        1,
        &syntax::parse("(refund OR money OR refund) NEAR/3 \"customer service\"").unwrap(),
    );
    assert_eq!(
        one.verdict(&post("customer service never gave my money back")),
        Verdict::Matches
    );
    assert_eq!(
        one.verdict(&post("money, after weeks and weeks, from customer service")),
        Verdict::Other
    );
    SCRATCH.with(|s| assert!(s.borrow().near_steps.get() > NEAR_STEPS_PER_POST - 100));
}

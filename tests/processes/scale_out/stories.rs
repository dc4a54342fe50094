//! Stories across processes: one born in a process takes another's posts under its id, and a
//! restarted process goes on with the stories stored before.

use super::*;

/// Chatter first, so the conversation's words are rare enough to tell its posts apart.
const CHATTER: [&str; 12] = [
    "lovely sunset over the harbour tonight",
    "my cat ignores me completely",
    "made pancakes for breakfast",
    "the match last night was a thriller",
    "new album drops on friday",
    "rain all week, of course",
    "finally finished that novel",
    "coffee machine broke at work",
    "anyone watching the cycling?",
    "garden tomatoes are ripe",
    "moving house next month",
    "best pizza place in town closed",
];
const STRIKE: [&str; 6] = [
    "ferry strike in Marseille, no boats today",
    "Marseille ferry strike: no boats at all",
    "no boats again, Marseille ferry strike",
    "Marseille ferry strike goes on, no boats",
    "ferry strike Marseille, still no boats",
    "Marseille ferry strike and no boats for days",
];

/// The chatter, then the strike's posts, a minute apart from an hour ago.
fn strike_conversation() -> Vec<String> {
    let start = Utc::now() - TimeDelta::hours(1);
    CHATTER
        .iter()
        .chain(&STRIKE)
        .enumerate()
        .map(|(i, text)| {
            let id = format!("p{i}");
            post(&id, "twitter", text, start + TimeDelta::minutes(i as i64))
        })
        .collect()
}

/// A post of the strike written after the conversation: alone, one post is no story.
fn late_strike_post(id: &str) -> String {
    post(
        id,
        "twitter",
        "Marseille ferry strike, day two, no boats",
        Utc::now() - TimeDelta::minutes(20),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_born_in_one_process_takes_the_posts_of_another_under_its_id() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    // Two processes of one group on two streams, so which process places which post is the
    // test's choice: the first sees a conversation, the second one post of it later.
    let channel = format!("{}:fanout", env.stream);
    let second_stream = format!("{}:second", env.stream);
    let first_vars = group_env(&env, &[("PULSE_FANOUT__CHANNEL", channel.as_str())]);
    let mut second_vars = first_vars.clone();
    for (k, v) in &mut second_vars {
        if k == "PULSE_STREAM" {
            *v = second_stream.clone();
        }
    }
    let group = vec![
        PulseProcess::start(&first_vars),
        PulseProcess::start(&second_vars),
    ];
    wait_for_peers(&group).await;
    let stories_there = Subscriber::connect(
        group[1].address,
        json!({"type":"subscribe","topics":["stories"]}),
    )
    .await;

    let events = strike_conversation();
    pulse::streams::producer::xadd_events(&redis, &env.stream, &events)
        .await
        .unwrap();

    let born = |s: &Subscriber| -> Option<i64> {
        s.of_type("story:new")
            .first()
            .and_then(|m| m["data"]["id"].as_i64())
    };
    assert!(
        wait_until(DEADLINE, || async { born(&stories_there).is_some() }).await,
        "the second process never heard of the first one's story\n{}",
        group[0].log_text()
    );
    let id = born(&stories_there).unwrap();

    // Alone, one post is no story: it waits for others alike. Taken in, the story takes it.
    let late = late_strike_post("strike-late");
    pulse::streams::producer::xadd_events(&redis, &second_stream, &[late])
        .await
        .unwrap();
    assert!(
        wait_until(DEADLINE, || async {
            get(group[1].address, "/api/v1/posts/strike-late").await.0 == 200
        })
        .await,
        "the late post was never stored\n{}",
        group[1].log_text()
    );
    let (_, stored) = get(group[1].address, "/api/v1/posts/strike-late").await;
    assert_eq!(
        stored["story_id"],
        json!(id),
        "the late post joins the story born elsewhere: {stored}"
    );
    assert_eq!(
        metric(group[1].address, "pulse_stories_adopted_total").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_process_goes_on_with_the_stories_stored_before() {
    let env = TestEnv::new().await;
    let redis = env.redis().await;
    let vars = group_env(&env, &[]);
    let first = PulseProcess::start(&vars);
    pulse::streams::producer::xadd_events(&redis, &env.stream, &strike_conversation())
        .await
        .unwrap();
    let stories = || async { get(first.address, "/api/v1/stories").await.1["items"].clone() };
    assert!(
        wait_until(DEADLINE, || async {
            stories()
                .await
                .as_array()
                .is_some_and(|items| !items.is_empty())
        })
        .await,
        "no story was stored\n{}",
        first.log_text()
    );
    let id = stories().await[0]["id"].clone();
    drop(first);

    let second = PulseProcess::start(&vars);
    pulse::streams::producer::xadd_events(&redis, &env.stream, &[late_strike_post("after")])
        .await
        .unwrap();
    assert!(
        wait_until(DEADLINE, || async {
            get(second.address, "/api/v1/posts/after").await.0 == 200
        })
        .await,
        "the post after the restart was never stored\n{}",
        second.log_text()
    );
    let (_, stored) = get(second.address, "/api/v1/posts/after").await;
    assert_eq!(stored["story_id"], id, "{stored}");
    assert_eq!(
        metric(second.address, "pulse_stories_adopted_total").await,
        1.0
    );
}

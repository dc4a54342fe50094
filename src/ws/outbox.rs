//! One session's bounded outbox, shared by the broadcaster (which pushes) and the session
//! (which drains). It also holds the session's subscription, so the broadcaster filters
//! without asking the session and a subscription change takes effect atomically.
//!
//! The broadcaster never waits on a session: it pushes under a short lock and, when the
//! session has no wake-up pending, sends it one. A session that is not draining (its client
//! stopped reading, so its response body is not polled) keeps at most `capacity` messages and
//! `max_bytes` of them; beyond that the oldest post is dropped and counted, and the next drain
//! starts with a `lagged` notice. Metrics snapshots are not queued: a single slot holds the
//! latest one. The outbox also knows since when it has waited for its session to take
//! anything ([`Outbox::waiting_for`]), so a client that stopped reading can be closed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytestring::ByteString;

use super::protocol::{
    self, ClientError, ErrorCode, Filter, FilterKeys, MessageClass, Topic, TopicSet,
};

/// Queue slots a drained session keeps allocated.
const IDLE_QUEUE_CAPACITY: usize = 16;

/// A message waiting in an outbox: its payload is shared by every session it goes to.
#[derive(Debug, Clone)]
pub struct Queued {
    pub topic: Topic,
    /// What the message is about, to re-check it when the subscription changes.
    pub keys: Arc<FilterKeys>,
    pub text: ByteString,
}

/// A message taken out of an outbox, ready to write.
#[derive(Debug)]
pub struct Outgoing {
    pub class: MessageClass,
    pub text: ByteString,
}

/// What one push did, for the broadcaster's per-batch metrics and wake-ups.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    pub queued: usize,
    pub dropped: u64,
    /// The session has no wake-up pending and must be sent one.
    pub wake: bool,
}

/// A session's subscription as the ack reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub topics: TopicSet,
    pub filter: Filter,
}

/// Queued messages in arrival order, posts apart from the rest: posts are shed first, and a
/// session behind on other messages (alerts, stories, virality) would otherwise have its whole
/// queue walked for the oldest post at every push once it is full.
#[derive(Debug, Default)]
struct Queue {
    posts: VecDeque<(u64, Queued)>,
    others: VecDeque<(u64, Queued)>,
    /// The arrival number of the next message.
    next: u64,
}

impl Queue {
    fn len(&self) -> usize {
        self.posts.len() + self.others.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_back(&mut self, queued: Queued) {
        let entry = (self.next, queued);
        self.next += 1;
        if entry.1.topic == Topic::Posts {
            self.posts.push_back(entry);
        } else {
            self.others.push_back(entry);
        }
    }

    /// Removes the oldest post, or the oldest message when none is a post.
    fn shed(&mut self) -> Option<Queued> {
        let oldest = self.posts.pop_front().or_else(|| self.others.pop_front());
        oldest.map(|(_, q)| q)
    }

    /// Removes the message that came first.
    fn pop_front(&mut self) -> Option<Queued> {
        let side = match (self.posts.front(), self.others.front()) {
            (Some((p, _)), Some((o, _))) if o < p => &mut self.others,
            (Some(_), _) => &mut self.posts,
            (None, _) => &mut self.others,
        };
        side.pop_front().map(|(_, q)| q)
    }

    fn retain(&mut self, mut keep: impl FnMut(&Queued) -> bool) {
        self.posts.retain(|(_, q)| keep(q));
        self.others.retain(|(_, q)| keep(q));
    }

    /// Bytes of the queued messages' texts.
    fn bytes(&self) -> usize {
        let texts = self.posts.iter().chain(&self.others);
        texts.map(|(_, q)| q.text.len()).sum()
    }

    /// Gives back what a burst grew, once drained, so idle sessions stay small however busy
    /// they once were.
    fn shrink_when_empty(&mut self) {
        if self.is_empty() {
            for side in [&mut self.posts, &mut self.others] {
                if side.capacity() > IDLE_QUEUE_CAPACITY {
                    side.shrink_to(IDLE_QUEUE_CAPACITY);
                }
            }
        }
    }
}

#[derive(Debug)]
struct State {
    topics: TopicSet,
    filter: Filter,
    queue: Queue,
    /// Bytes of the queued messages' texts.
    bytes: usize,
    metrics: Option<ByteString>,
    dropped: u64,
    wake_pending: bool,
    /// Since when messages have waited without the session taking any.
    waiting_since: Option<Instant>,
    /// When the session last ran its heartbeat.
    ran_at: Instant,
    /// Set by [`Outbox::close`]: nothing is queued any more, whatever the session subscribes
    /// to afterwards (a frame it handles before its close notice could subscribe again).
    closed: bool,
}

impl State {
    /// Notes that something waits for the session (since now, if nothing did), and whether
    /// the session must be woken for it: only the first since its last drain wakes it.
    fn waiting(&mut self) -> bool {
        self.waiting_since.get_or_insert_with(Instant::now);
        !std::mem::replace(&mut self.wake_pending, true)
    }
}

/// The bounded, shared queue of one session.
#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    max_bytes: usize,
    state: Mutex<State>,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` queued messages (at least one), whatever
    /// their size.
    pub fn new(capacity: usize) -> Self {
        Self::with_limits(capacity, usize::MAX)
    }

    /// An empty outbox holding at most `capacity` queued messages and, past the first,
    /// `max_bytes` of them.
    pub fn with_limits(capacity: usize, max_bytes: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            max_bytes,
            state: Mutex::new(State {
                topics: TopicSet::default(),
                filter: Filter::default(),
                queue: Queue::default(),
                bytes: 0,
                metrics: None,
                dropped: 0,
                wake_pending: false,
                waiting_since: None,
                ran_at: Instant::now(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the session currently wants `topic` (a cheap pre-check for the broadcaster).
    pub fn wants(&self, topic: Topic) -> bool {
        self.lock().topics.contains(topic)
    }

    /// Queues the candidates this session's filter lets through, if it subscribes to
    /// `topic`. A candidate's text is built only when some session takes it, and once.
    pub fn push<'a, F>(
        &self,
        topic: Topic,
        candidates: impl IntoIterator<Item = (&'a Arc<FilterKeys>, F)>,
    ) -> Pushed
    where
        F: FnOnce() -> ByteString,
    {
        let mut state = self.lock();
        if state.closed || !state.topics.contains(topic) {
            return Pushed::default();
        }
        let mut pushed = Pushed::default();
        for (keys, text) in candidates {
            if !state.filter.matches(keys) {
                continue;
            }
            let text = text();
            while !state.queue.is_empty()
                && (state.queue.len() >= self.capacity
                    || state.bytes.saturating_add(text.len()) > self.max_bytes)
            {
                // Posts go first: they are the bulk, and `lagged` tells the client to refetch.
                if let Some(gone) = state.queue.shed() {
                    state.bytes -= gone.text.len();
                }
                state.dropped += 1;
                pushed.dropped += 1;
            }
            state.bytes += text.len();
            state.queue.push_back(Queued {
                topic,
                keys: keys.clone(),
                text,
            });
            pushed.queued += 1;
        }
        if pushed.queued > 0 {
            pushed.wake = state.waiting();
        }
        pushed
    }

    /// Replaces the pending metrics snapshot, if the session subscribes to metrics: a
    /// session never holds more than one, and always the latest.
    pub fn set_metrics(&self, text: &ByteString) -> Pushed {
        let mut state = self.lock();
        if state.closed || !state.topics.contains(Topic::Metrics) {
            return Pushed::default();
        }
        state.metrics = Some(text.clone());
        Pushed {
            queued: 1,
            dropped: 0,
            wake: state.waiting(),
        }
    }

    /// Counts `n` posts as dropped, if the session subscribes to posts, so that its next
    /// drain starts with `lagged`: posts that were shed before reaching any outbox. Filters
    /// are not applied (that would cost what shedding saves), so a filtered session is told
    /// at most that many.
    pub fn lag(&self, n: u64) -> Pushed {
        let mut state = self.lock();
        if n == 0 || state.closed || !state.topics.contains(Topic::Posts) {
            return Pushed::default();
        }
        state.dropped += n;
        Pushed {
            queued: 0,
            dropped: 0,
            wake: state.waiting(),
        }
    }

    /// Adds `topics` and, when given, replaces the filter. Queued messages the new
    /// subscription would not let through are discarded, so once the ack is sent every
    /// message delivered matches it. Refused, changing nothing, past `max_topics`.
    pub fn subscribe(
        &self,
        topics: TopicSet,
        filter: Option<Filter>,
        max_topics: usize,
    ) -> Result<Subscription, ClientError> {
        let mut state = self.lock();
        let all = state.topics.union(topics);
        if all.len() > max_topics {
            return Err(ClientError::new(
                ErrorCode::TooManyTopics,
                format!(
                    "a session may subscribe to at most {max_topics} topics; it would have {}",
                    all.len()
                ),
            ));
        }
        state.topics = all;
        if let Some(filter) = filter {
            state.filter = filter;
            let State { queue, filter, .. } = &mut *state;
            queue.retain(|q| filter.matches(&q.keys));
            state.bytes = state.queue.bytes();
        }
        Ok(Subscription {
            topics: state.topics,
            filter: state.filter.clone(),
        })
    }

    /// Removes `topics`, discarding their queued messages.
    pub fn unsubscribe(&self, topics: TopicSet) -> Subscription {
        let mut state = self.lock();
        state.topics = state.topics.difference(topics);
        let kept = state.topics;
        state.queue.retain(|q| kept.contains(q.topic));
        state.bytes = state.queue.bytes();
        if !kept.contains(Topic::Metrics) {
            state.metrics = None;
        }
        Subscription {
            topics: state.topics,
            filter: state.filter.clone(),
        }
    }

    /// Moves up to `max` messages into `out`: first a `lagged` notice when messages were
    /// dropped, then the pending metrics snapshot, then queued messages in order. Returns
    /// whether more are waiting; when none are, the next push sends a wake-up again.
    pub fn drain(&self, max: usize, out: &mut Vec<Outgoing>) -> bool {
        let mut state = self.lock();
        let mut room = max.max(1);
        if state.dropped > 0 {
            out.push(Outgoing {
                class: MessageClass::Control,
                text: protocol::lagged(state.dropped).into(),
            });
            state.dropped = 0;
            room -= 1;
        }
        if room > 0 {
            if let Some(text) = state.metrics.take() {
                out.push(Outgoing {
                    class: MessageClass::Metrics,
                    text,
                });
                room -= 1;
            }
        }
        for _ in 0..room {
            let Some(q) = state.queue.pop_front() else {
                break;
            };
            state.bytes -= q.text.len();
            out.push(Outgoing {
                class: protocol::class_of(q.topic),
                text: q.text,
            });
        }
        state.queue.shrink_when_empty();
        let more = !state.queue.is_empty() || state.metrics.is_some() || state.dropped > 0;
        state.wake_pending = more;
        // The session took something: what is left has waited only since now.
        state.waiting_since = more.then(Instant::now);
        more
    }

    /// Notes that the session runs (its heartbeat, every `ws.heartbeat_secs`).
    pub fn ran(&self) {
        self.lock().ran_at = Instant::now();
    }

    /// How long since the session last ran. A session runs only while its connection's
    /// write buffer has room, so a client that stops reading its answers (errors, pongs)
    /// stops it without anything waiting here.
    pub fn idle_for(&self) -> Duration {
        self.lock().ran_at.elapsed()
    }

    /// How long messages have waited without the session taking any; zero when none wait.
    pub fn waiting_for(&self) -> Duration {
        self.lock()
            .waiting_since
            .map_or(Duration::ZERO, |since| since.elapsed())
    }

    /// Empties the outbox and its subscription, for a session being closed: it holds and
    /// receives nothing more, even if it subscribes again before it stops.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.topics = TopicSet::default();
        state.queue = Queue::default();
        state.bytes = 0;
        state.metrics = None;
        state.waiting_since = None;
    }

    /// Bytes of the messages queued now.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Messages queued now (not counting a pending metrics snapshot).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Platform;

    fn topics(list: &[Topic]) -> TopicSet {
        let mut set = TopicSet::default();
        for t in list {
            set.insert(*t);
        }
        set
    }

    fn keys(platform: Platform) -> Arc<FilterKeys> {
        Arc::new(FilterKeys {
            platform: Some(platform),
            ..FilterKeys::default()
        })
    }

    /// Pushes posts `range` on `platform`.
    fn push_posts(outbox: &Outbox, platform: Platform, range: std::ops::Range<usize>) -> Pushed {
        let keys = keys(platform);
        outbox.push(
            Topic::Posts,
            range.map(|n| (&keys, move || ByteString::from(format!("post-{n}")))),
        )
    }

    /// An outbox of `capacity` messages whose session is subscribed to `to`, unfiltered.
    fn subscribed(capacity: usize, to: &[Topic]) -> Outbox {
        let outbox = Outbox::new(capacity);
        outbox.subscribe(topics(to), None, 4).expect("subscribe");
        outbox
    }

    fn texts(out: &[Outgoing]) -> Vec<String> {
        out.iter().map(|o| o.text.to_string()).collect()
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_posts_and_reports_them_before_the_rest() {
        let outbox = subscribed(3, &[Topic::Posts]);
        let pushed = push_posts(&outbox, Platform::Reddit, 0..5);
        assert_eq!(
            pushed,
            Pushed {
                queued: 5,
                dropped: 2,
                wake: true
            }
        );
        // A second push while the wake-up is pending does not ask for another.
        let again = push_posts(&outbox, Platform::Reddit, 5..6);
        assert!(!again.wake);
        let mut out = Vec::new();
        assert!(!outbox.drain(10, &mut out));
        assert_eq!(
            texts(&out),
            [
                r#"{"type":"lagged","dropped":3}"#,
                "post-3",
                "post-4",
                "post-5"
            ]
        );
        let next = push_posts(&outbox, Platform::Reddit, 6..7);
        assert!(next.wake, "a drained outbox asks for a wake-up again");
    }

    #[test]
    fn a_byte_budget_drops_the_oldest_posts_too() {
        let outbox = Outbox::with_limits(100, 20);
        outbox.subscribe(topics(&[Topic::Posts]), None, 4).unwrap();
        // Each text is six bytes (`post-N`): three fit in twenty.
        let pushed = push_posts(&outbox, Platform::Reddit, 0..5);
        assert_eq!((pushed.queued, pushed.dropped), (5, 2));
        assert_eq!((outbox.len(), outbox.queued_bytes()), (3, 18));
        let mut out = Vec::new();
        // The `lagged` notice, then two of the three posts.
        outbox.drain(3, &mut out);
        assert_eq!(outbox.queued_bytes(), 6);
        // One message over the whole budget still goes through, alone.
        let keys = keys(Platform::Reddit);
        outbox.push(Topic::Posts, [(&keys, || ByteString::from("x".repeat(50)))]);
        assert_eq!((outbox.len(), outbox.queued_bytes()), (1, 50));
    }

    #[test]
    fn the_outbox_knows_how_long_its_session_has_taken_nothing() {
        let outbox = subscribed(10, &[Topic::Posts]);
        assert_eq!(outbox.waiting_for(), Duration::ZERO);
        push_posts(&outbox, Platform::Reddit, 0..3);
        std::thread::sleep(Duration::from_millis(50));
        let before = outbox.waiting_for();
        assert!(before >= Duration::from_millis(50));
        let mut out = Vec::new();
        outbox.drain(1, &mut out);
        assert!(outbox.waiting_for() < before, "the clock restarts");
        outbox.drain(10, &mut out);
        assert_eq!(outbox.waiting_for(), Duration::ZERO);
        push_posts(&outbox, Platform::Reddit, 3..4);
        outbox.close();
        assert_eq!((outbox.len(), outbox.waiting_for()), (0, Duration::ZERO));
        assert_eq!(
            push_posts(&outbox, Platform::Reddit, 4..5),
            Pushed::default()
        );
        // A closed session that subscribes again before it stops still gets nothing.
        outbox
            .subscribe(topics(&[Topic::Posts, Topic::Metrics]), None, 4)
            .unwrap();
        assert_eq!(
            push_posts(&outbox, Platform::Reddit, 5..6),
            Pushed::default()
        );
        assert_eq!(outbox.set_metrics(&"m".into()), Pushed::default());
        let mut out = Vec::new();
        assert!(!outbox.drain(10, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn other_messages_survive_while_posts_can_be_dropped() {
        let outbox = subscribed(2, &[Topic::Posts, Topic::Alerts]);
        let global = Arc::default();
        outbox.push(Topic::Alerts, [(&global, || ByteString::from("alert"))]);
        push_posts(&outbox, Platform::Reddit, 0..3);
        let mut out = Vec::new();
        outbox.drain(10, &mut out);
        assert_eq!(
            texts(&out),
            [r#"{"type":"lagged","dropped":2}"#, "alert", "post-2"]
        );
    }

    #[test]
    fn a_queue_without_posts_sheds_its_oldest_and_drains_in_arrival_order() {
        let outbox = subscribed(4, &[Topic::Posts, Topic::Alerts]);
        let global = Arc::default();
        let alert = |n: usize| {
            outbox.push(
                Topic::Alerts,
                [(&global, || ByteString::from(format!("alert-{n}")))],
            )
        };
        (0..3).for_each(|n| {
            alert(n);
        });
        push_posts(&outbox, Platform::Reddit, 0..1);
        // Full: the post goes first, then, with no post left, the oldest alert.
        assert_eq!(alert(3).dropped, 1);
        assert_eq!(push_posts(&outbox, Platform::Reddit, 1..2).dropped, 1);
        // And the newest post before any alert.
        assert_eq!(alert(4).dropped, 1);
        let mut out = Vec::new();
        outbox.drain(3, &mut out);
        assert_eq!(
            texts(&out),
            [r#"{"type":"lagged","dropped":3}"#, "alert-1", "alert-2"]
        );
        push_posts(&outbox, Platform::Reddit, 2..3);
        alert(5);
        out.clear();
        assert!(!outbox.drain(10, &mut out));
        assert_eq!(
            texts(&out),
            ["alert-3", "alert-4", "post-2", "alert-5"],
            "posts and other messages leave in the order they came"
        );
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[test]
    fn metrics_are_coalesced_to_the_latest_and_never_lost() {
        let outbox = subscribed(4, &[Topic::Metrics]);
        assert!(outbox.set_metrics(&"m1".into()).wake);
        for n in 2..=50 {
            assert!(!outbox.set_metrics(&format!("m{n}").into()).wake);
        }
        let mut out = Vec::new();
        assert!(!outbox.drain(10, &mut out));
        assert_eq!(texts(&out), ["m50"]);
    }

    #[test]
    fn only_what_the_filter_lets_through_is_queued_and_built() {
        let outbox = Outbox::new(10);
        let reddit = protocol::parse_client_message(
            r#"{"type":"subscribe","topics":["posts"],"filter":{"platform":"reddit"}}"#,
        )
        .unwrap();
        let protocol::ClientMessage::Subscribe { topics: t, filter } = reddit else {
            unreachable!()
        };
        outbox.subscribe(t, filter, 4).unwrap();
        let twitter = keys(Platform::Twitter);
        let pushed = outbox.push(
            Topic::Posts,
            [(&twitter, || -> ByteString { panic!("built for nobody") })],
        );
        assert_eq!(pushed, Pushed::default());
        assert_eq!(push_posts(&outbox, Platform::Reddit, 0..2).queued, 2);
    }

    #[test]
    fn drains_in_bounded_chunks() {
        let outbox = subscribed(100, &[Topic::Posts]);
        push_posts(&outbox, Platform::Reddit, 0..10);
        let mut out = Vec::new();
        assert!(outbox.drain(4, &mut out));
        assert_eq!(out.len(), 4);
        assert!(outbox.drain(4, &mut out));
        assert!(!outbox.drain(4, &mut out));
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn subscription_changes_discard_what_no_longer_matches() {
        let outbox = subscribed(10, &[Topic::Posts, Topic::Metrics]);
        push_posts(&outbox, Platform::Reddit, 0..1);
        push_posts(&outbox, Platform::Twitter, 1..2);
        outbox.set_metrics(&"m".into());
        let reddit = protocol::parse_client_message(
            r#"{"type":"subscribe","topics":[],"filter":{"platform":"reddit"}}"#,
        )
        .unwrap();
        let protocol::ClientMessage::Subscribe { topics: t, filter } = reddit else {
            unreachable!()
        };
        outbox.subscribe(t, filter, 4).unwrap();
        assert_eq!(outbox.len(), 1);
        let after = outbox.unsubscribe(topics(&[Topic::Posts, Topic::Metrics]));
        assert!(after.topics.is_empty());
        let mut out = Vec::new();
        outbox.drain(10, &mut out);
        assert!(out.is_empty());
        // Nothing is queued for topics the session does not hold.
        let pushed = push_posts(&outbox, Platform::Reddit, 2..3);
        assert_eq!(pushed, Pushed::default());
    }

    #[test]
    fn refuses_more_topics_than_allowed_and_changes_nothing() {
        let outbox = Outbox::new(10);
        outbox.subscribe(topics(&[Topic::Posts]), None, 2).unwrap();
        let err = outbox
            .subscribe(topics(&[Topic::Metrics, Topic::Alerts]), None, 2)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::TooManyTopics);
        assert!(outbox.wants(Topic::Posts) && !outbox.wants(Topic::Metrics));
    }
}

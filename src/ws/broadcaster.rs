//! The broadcaster: owns the session registry and fans every live event out to the sessions
//! that want it. Each event is serialized once and shared; pushing into a session's
//! [`Outbox`] never blocks or awaits, so one slow subscriber cannot hold up the others or the
//! pipeline.
//!
//! With the cross-process fan-out on, what this process produced (new posts, alerts,
//! virality updates) is also offered, already serialized, to the other processes of the
//! group, and what they produced arrives as [`Remote`] and goes to the local sessions only.
//!
//! Committed batches reach the broadcaster through a bounded hand-off, [`LiveIntake`], not
//! its mailbox: its work grows with sessions times posts on one thread, and a mailbox takes
//! whatever is sent. Past `ws.max_pending_posts` waiting, the oldest batches are shed from
//! live delivery only: their posts are stored and every other stage got them, the other
//! processes are offered them all the same, and the local sessions subscribed to posts are
//! told `lagged`, as when their own queue overflows, to catch up from the store.

pub use crate::actors::messages::MetricsUpdate;
use std::cell::OnceCell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient};
use bytestring::ByteString;

use super::fanout::{FanoutItem, FanoutSender, Remote};
use super::messages::{
    CloseAll, CredentialRevoked, GoingAway, HearStories, KeyRevoked, Register, SessionCount,
    SessionHandle, SessionId, Unregister, Wake,
};
use super::outbox::{Outbox, Pushed};
use super::protocol::{self, FilterKeys, Topic};
use super::socket::SocketHandle;
pub use crate::actors::messages::Publish;
use crate::actors::messages::{AnalyzedPost, Committed, CommittedSink};
use crate::models::deletion::DeletedPost;
use crate::models::views::PostView;
use crate::telemetry::names;

struct Registered {
    session: SessionHandle,
    outbox: Arc<Outbox>,
    key_id: Option<Arc<str>>,
    socket: Option<Arc<SocketHandle>>,
}

/// How often sessions are checked for clients that stopped reading.
const STALL_CHECK: Duration = Duration::from_secs(1);

/// The fan-out actor. See the module documentation.
pub struct Broadcaster {
    sessions: HashMap<SessionId, Registered>,
    /// The latest snapshot as a `metrics:initial` message, read by sessions on subscribe.
    latest_metrics: Arc<RwLock<Option<ByteString>>>,
    /// Where this process's own live messages go for the other processes, when fanned out.
    fanout: Option<FanoutSender>,
    /// Where the other processes' story announcements go (none with stories off).
    stories: Option<Arc<crate::actors::stories::StoryDesk>>,
    /// A session whose outbox waited this long without its client taking anything is closed.
    write_timeout: Duration,
    /// A session that has not run for this long is closed: its client stopped reading.
    idle_timeout: Duration,
    /// Keys found revoked while this process runs, with when. A session's upgrade checks its
    /// credential before the session registers here, so a revocation can reach the broadcaster
    /// in between; such a session is closed as it registers.
    revoked: HashMap<Arc<str>, Instant>,
    /// How long a revocation is remembered: the longest a session lives (one token lifetime,
    /// see `api::live`). Every session authenticated before the revocation has ended by then,
    /// and later upgrades are refused by the credential check itself.
    session_lifetime: Duration,
    /// The committed batches waiting for live delivery (see [`LiveIntake`]).
    backlog: Arc<Mutex<Backlog>>,
}

/// Committed batches waiting for live delivery, shared by the pipeline's hand-off
/// ([`LiveIntake`]) and the broadcaster, which takes them one at a time.
#[derive(Default)]
pub struct Backlog {
    batches: VecDeque<Committed>,
    /// The weight ([`weight`]) of `batches`.
    posts: usize,
    /// A [`TakeLive`] is on its way to the broadcaster, or being handled.
    wake_pending: bool,
    /// Posts shed since the broadcaster last told its sessions.
    shed: u64,
}

impl Backlog {
    /// Batches waiting now.
    pub fn batches(&self) -> usize {
        self.batches.len()
    }

    /// Their weight: posts in the batches and posts deleted.
    pub fn posts(&self) -> usize {
        self.posts
    }
}

/// What a waiting batch counts against `ws.max_pending_posts`: its posts (what it holds in
/// memory, replays included) and its deletions; at least one, so batches that carry nothing
/// to send are bounded too.
fn weight(c: &Committed) -> usize {
    (c.batch.posts.len() + c.outcome.deleted.len()).max(1)
}

/// What shedding a batch takes from the sessions: its new posts and deletion notices.
fn live_messages(c: &Committed) -> u64 {
    (c.outcome.inserted_entries.len() + c.outcome.deleted.len()) as u64
}

/// Tells the broadcaster that batches wait in its backlog.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeLive;

/// The pipeline's hand-off of committed batches to the broadcaster: it never waits, and keeps
/// at most `max_posts` waiting (and always the newest batch). Past that, the oldest waiting
/// batches are shed from live delivery: counted, offered to the other processes here (they
/// lose nothing), and reported to the sessions as `lagged` by the broadcaster.
pub struct LiveIntake {
    backlog: Arc<Mutex<Backlog>>,
    max_posts: usize,
    broadcaster: Recipient<TakeLive>,
    fanout: Option<FanoutSender>,
}

impl LiveIntake {
    /// The hand-off to `broadcaster`, whose backlog is `backlog` (see
    /// [`Broadcaster::with_backlog`]).
    pub fn new(
        backlog: Arc<Mutex<Backlog>>,
        max_posts: usize,
        broadcaster: Recipient<TakeLive>,
        fanout: Option<FanoutSender>,
    ) -> Self {
        Self {
            backlog,
            max_posts: max_posts.max(1),
            broadcaster,
            fanout,
        }
    }

    /// What waits now, for tests and diagnostics.
    pub fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CommittedSink for LiveIntake {
    fn take(&self, committed: Committed) {
        let mut shed = Vec::new();
        let wake = {
            let mut backlog = self.backlog();
            let w = weight(&committed);
            while !backlog.batches.is_empty() && backlog.posts + w > self.max_posts {
                let Some(oldest) = backlog.batches.pop_front() else {
                    break;
                };
                backlog.posts -= weight(&oldest);
                backlog.shed += live_messages(&oldest);
                shed.push(oldest);
            }
            backlog.posts += w;
            backlog.batches.push_back(committed);
            !std::mem::replace(&mut backlog.wake_pending, true)
        };
        if wake {
            self.broadcaster.do_send(TakeLive);
        }
        // Outside the lock: what is shed may take a while to serialize for other processes.
        for batch in shed {
            let lost = live_messages(&batch);
            if lost > 0 {
                metrics::counter!(names::WS_POSTS_SHED).increment(lost);
            }
            let started = std::time::SystemTime::now();
            let remote = self.fanout.as_ref().is_some_and(FanoutSender::wanted);
            if let Some(fanout) = self.fanout.as_ref().filter(|_| remote) {
                let (posts, ingested_at) = new_posts_of(&batch);
                fanout.offer(remote_posts(&posts, ingested_at));
                fanout.offer(remote_deleted(deleted_items(&batch.outcome.deleted)));
            }
            if let Some(trace) = &batch.trace {
                trace_publish(trace, &batch, started, false, remote, true);
            }
        }
    }
}

impl Broadcaster {
    /// A broadcaster publishing its latest metrics snapshot into `latest_metrics`.
    pub fn new(latest_metrics: Arc<RwLock<Option<ByteString>>>) -> Self {
        Self {
            sessions: HashMap::new(),
            latest_metrics,
            fanout: None,
            stories: None,
            write_timeout: Duration::from_secs(
                crate::config::WsSettings::default().write_timeout_secs,
            ),
            idle_timeout: Duration::MAX,
            revoked: HashMap::new(),
            session_lifetime: Duration::from_secs(
                crate::config::AuthSettings::default().token_ttl_secs,
            ),
            backlog: Arc::default(),
        }
    }

    /// Takes committed batches from `backlog`, filled by a [`LiveIntake`].
    pub fn with_backlog(mut self, backlog: Arc<Mutex<Backlog>>) -> Self {
        self.backlog = backlog;
        self
    }

    /// Remembers revoked keys for `lifetime`, the longest a session lives.
    pub fn with_session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// Forgets the revocations older than a session's lifetime at `now`: no session opened
    /// before them can still register.
    fn forget_old_revocations(&mut self, now: Instant) {
        let lifetime = self.session_lifetime;
        self.revoked
            .retain(|_, at| now.saturating_duration_since(*at) < lifetime);
    }

    /// Also offers every message this process produces to the other processes.
    pub fn with_fanout(mut self, fanout: Option<FanoutSender>) -> Self {
        self.fanout = fanout;
        self
    }

    /// Closes sessions whose client has taken nothing for `timeout`, and those that have not
    /// run for as long (or three heartbeats, if longer): a client that stops reading the
    /// answers to its own messages stops its session with nothing queued for it.
    pub fn with_write_timeout(mut self, timeout: Duration, heartbeat: Duration) -> Self {
        self.write_timeout = timeout;
        self.idle_timeout = timeout.max(heartbeat.saturating_mul(3));
        self
    }

    /// Closes the sessions whose client stopped reading: their outbox is emptied at once
    /// (whatever it held is freed), and their connection shut so the server drops it.
    fn close_stalled(&mut self) {
        let timeout = self.write_timeout;
        let stalled: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.outbox.waiting_for() > timeout || s.outbox.idle_for() > self.idle_timeout
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stalled {
            if let Some(session) = self.sessions.remove(&id) {
                tracing::debug!(
                    session = id,
                    "closing a websocket whose client stopped reading"
                );
                metrics::counter!(names::WS_CLOSED_STALLED).increment(1);
                session.outbox.close();
                if let Some(socket) = &session.socket {
                    socket.shut_down();
                }
            }
        }
    }

    /// Pushes to every session with `push`, wakes those that need it, forgets those that
    /// are gone, and records the batch's metrics once.
    fn fan_out(&mut self, mut push: impl FnMut(&Outbox) -> Pushed) {
        let mut dropped = 0u64;
        let mut gone = Vec::new();
        for (id, session) in &self.sessions {
            let pushed = push(&session.outbox);
            dropped += pushed.dropped;
            if pushed.wake {
                // Full means a wake-up is already waiting in the mailbox; the session's
                // heartbeat drains its outbox as well, so none is ever lost for good.
                if let Err(actix::dev::SendError::Closed(_)) = session.session.wake.try_send(Wake) {
                    gone.push(*id);
                }
            }
        }
        for id in gone {
            self.sessions.remove(&id);
        }
        if dropped > 0 {
            metrics::counter!(names::WS_MESSAGES_DROPPED).increment(dropped);
        }
    }
}

impl Actor for Broadcaster {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(STALL_CHECK, |this, _| {
            this.close_stalled();
            this.forget_old_revocations(Instant::now());
        });
    }
}

impl Handler<Register> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Self::Context) {
        let session = Registered {
            session: msg.session,
            outbox: msg.outbox,
            key_id: msg.key_id,
            socket: msg.socket,
        };
        if let Some(key_id) = session
            .key_id
            .as_deref()
            .filter(|key| self.revoked.contains_key(*key))
        {
            metrics::counter!(names::WS_CLOSED_REVOKED).increment(1);
            tracing::info!(%key_id, "closed a live session of a revoked key as it registered");
            revoke(&session);
        }
        // Registered all the same: until it closes, a session whose client stopped reading is
        // still shut by the stall check.
        self.sessions.insert(msg.id, session);
    }
}

/// Ends a session of a revoked key: nothing more is queued for it from now on (a wake-up
/// already in its mailbox, handled before the notice, would otherwise drain what came after
/// the revocation), and it is told to close. `do_send`, not `try_send`: a session whose
/// mailbox is full must close all the same.
fn revoke(session: &Registered) {
    session.outbox.close();
    session.session.revoked.do_send(CredentialRevoked);
}

impl Handler<Unregister> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: Unregister, _: &mut Self::Context) {
        self.sessions.remove(&msg.id);
    }
}

/// A post new to the database, serialized on first use only.
struct NewPost<'a> {
    post: &'a AnalyzedPost,
    keys: Arc<FilterKeys>,
    text: OnceCell<ByteString>,
}

impl NewPost<'_> {
    fn text(&self, ingested_at: chrono::DateTime<chrono::Utc>) -> ByteString {
        self.text
            .get_or_init(|| {
                let view = PostView::from_analyzed(self.post, ingested_at);
                protocol::envelope_of(protocol::MESSAGE_NEW, &view)
            })
            .clone()
    }
}

/// Whether pre-serialized data is one JSON value, so that every frame a client gets parses.
fn is_json(data: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(data).is_ok()
}

/// The filter keys of a post.
pub fn post_keys(p: &AnalyzedPost) -> FilterKeys {
    FilterKeys {
        platform: Some(p.post.platform),
        product: p.post.product.clone(),
        city: p.post.city().map(str::to_string),
        country: p.post.country().map(str::to_string),
        channel: p.post.channel.clone(),
        sentiment: Some(p.analysis.sentiment_label),
        lang: p.analysis.lang.clone(),
        topics: p.topics.iter().map(|t| t.id).collect(),
    }
}

impl Handler<TakeLive> for Broadcaster {
    type Result = ();

    /// Delivers the oldest waiting batch, first telling the sessions what was shed; one batch
    /// per message, so sessions registering and other events are not held up behind them all.
    fn handle(&mut self, _: TakeLive, ctx: &mut Self::Context) {
        let (batch, shed, more) = {
            let mut backlog = self.backlog.lock().unwrap_or_else(PoisonError::into_inner);
            let batch = backlog.batches.pop_front();
            if let Some(b) = &batch {
                backlog.posts -= weight(b);
            }
            let more = !backlog.batches.is_empty();
            backlog.wake_pending = more;
            (batch, std::mem::take(&mut backlog.shed), more)
        };
        if shed > 0 {
            self.fan_out(|outbox| outbox.lag(shed));
        }
        if let Some(batch) = batch {
            self.publish_committed(&batch);
        }
        if more {
            ctx.notify(TakeLive);
        }
    }
}

impl Broadcaster {
    /// Sends a committed batch's new posts and deletions to the sessions and the other
    /// processes that want them.
    fn publish_committed(&mut self, msg: &Committed) {
        let started = std::time::SystemTime::now();
        let local = self.sessions.values().any(|s| s.outbox.wants(Topic::Posts));
        let remote = self.fanout.as_ref().is_some_and(FanoutSender::wanted);
        self.publish_posts(msg, local, remote);
        self.publish_deleted(&msg.outcome.deleted, local, remote);
        if let Some(trace) = &msg.trace {
            trace_publish(trace, msg, started, local, remote, false);
        }
    }
}

/// A committed batch's posts to send live: those new to the database, as the store wrote
/// them, in the batch's (stream) order, with when they count as ingested. A replayed entry was
/// broadcast when it was first committed, and a copy of the same id the store did not write
/// is not the post. Backfill is stored and counted where it belongs, never pushed as live.
fn new_posts_of(msg: &Committed) -> (Vec<NewPost<'_>>, chrono::DateTime<chrono::Utc>) {
    let acked_at =
        chrono::DateTime::from_timestamp_millis(msg.acked_at_ms).unwrap_or_else(chrono::Utc::now);
    let posts = msg
        .new_posts()
        .filter(|p| !p.post.is_backfill(p.received_at(acked_at)))
        .map(|p| NewPost {
            post: p,
            keys: Arc::new(post_keys(p)),
            text: OnceCell::new(),
        })
        .collect();
    (posts, acked_at)
}

/// The fan-out items of `posts`.
fn remote_posts(
    posts: &[NewPost<'_>],
    ingested_at: chrono::DateTime<chrono::Utc>,
) -> Vec<FanoutItem> {
    posts
        .iter()
        .map(|p| FanoutItem {
            topic: Topic::Posts,
            keys: p.keys.clone(),
            text: p.text(ingested_at),
        })
        .collect()
}

/// The deletion notices of `deleted`, with the keys the posts had, so the same filters let
/// them through.
fn deleted_items(deleted: &[DeletedPost]) -> Vec<(Arc<FilterKeys>, ByteString)> {
    deleted
        .iter()
        .map(|p| {
            let text = protocol::envelope_of(protocol::MESSAGE_DELETED, &p.notice());
            (Arc::new(p.filter_keys()), text)
        })
        .collect()
}

/// The fan-out items of deletion notices.
fn remote_deleted(items: Vec<(Arc<FilterKeys>, ByteString)>) -> Vec<FanoutItem> {
    items
        .into_iter()
        .map(|(keys, text)| FanoutItem {
            topic: Topic::Posts,
            keys,
            text,
        })
        .collect()
}

impl Broadcaster {
    /// Tells the sessions (`local`) and the other processes (`remote`) that want posts of the
    /// posts just deleted, with the keys the posts had, so the same filters let them through.
    fn publish_deleted(&mut self, deleted: &[DeletedPost], local: bool, remote: bool) {
        if deleted.is_empty() || (!local && !remote) {
            return;
        }
        let items = deleted_items(deleted);
        if local {
            self.fan_out(|outbox| {
                outbox.push(
                    Topic::Posts,
                    items.iter().map(|(keys, text)| (keys, || text.clone())),
                )
            });
        }
        if let Some(fanout) = self.fanout.as_ref().filter(|_| remote) {
            fanout.offer(remote_deleted(items));
        }
    }

    /// Pushes a committed batch's new posts to the local sessions (`local`) and the other
    /// processes (`remote`) that want posts.
    fn publish_posts(&mut self, msg: &Committed, local: bool, remote: bool) {
        if msg.outcome.inserted_posts.is_empty() || (!local && !remote) {
            return;
        }
        let (posts, ingested_at) = new_posts_of(msg);
        if local {
            self.fan_out(|outbox| {
                outbox.push(
                    Topic::Posts,
                    posts.iter().map(|p| (&p.keys, || p.text(ingested_at))),
                )
            });
        }
        if let Some(fanout) = self.fanout.as_ref().filter(|_| remote) {
            fanout.offer(remote_posts(&posts, ingested_at));
        }
    }
}

/// Records the `publish` stage of a committed batch's sampled posts; `shed` when the batch
/// was not delivered to the local sessions because too many waited (see [`LiveIntake`]).
fn trace_publish(
    trace: &crate::telemetry::traces::BatchTrace,
    msg: &Committed,
    started: std::time::SystemTime,
    local: bool,
    remote: bool,
    shed: bool,
) {
    use opentelemetry::KeyValue;
    let new: std::collections::HashSet<&str> =
        msg.new_posts().map(|p| p.entry_id.as_str()).collect();
    let ids = msg.batch.posts.iter().map(|p| p.entry_id.as_str());
    trace.stage(
        "publish",
        ids,
        started,
        std::time::SystemTime::now(),
        |id| {
            vec![
                // A replayed post was published when it was first committed.
                KeyValue::new("pulse.publish.new", new.contains(id)),
                KeyValue::new("pulse.publish.local_subscribers", local),
                KeyValue::new("pulse.publish.fanout", remote),
                KeyValue::new("pulse.publish.shed", shed),
            ]
        },
    );
}

impl Handler<MetricsUpdate> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: MetricsUpdate, _: &mut Self::Context) {
        if !is_json(&msg.json) {
            tracing::warn!("metrics snapshot is not JSON; not sent to subscribers");
            return;
        }
        let initial = protocol::envelope(protocol::METRICS_INITIAL, &msg.json);
        *self
            .latest_metrics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(initial);
        let update = protocol::envelope(protocol::METRICS_UPDATE, &msg.json);
        self.fan_out(|outbox| outbox.set_metrics(&update));
    }
}

impl Handler<Publish> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: Publish, _: &mut Self::Context) {
        if !is_json(&msg.data) {
            tracing::warn!(event_type = %msg.event_type, "event data is not JSON; not sent to subscribers");
            return;
        }
        let text = protocol::envelope(&msg.event_type, &msg.data);
        let keys = Arc::new(msg.keys);
        let topic = msg.topic;
        self.fan_out(|outbox| outbox.push(topic, [(&keys, || text.clone())]));
        if let Some(fanout) = &self.fanout {
            fanout.offer(vec![FanoutItem { topic, keys, text }]);
        }
    }
}

impl Handler<Remote> for Broadcaster {
    type Result = ();

    /// Another process's messages: to the local sessions, in order; its story announcements
    /// also to the story desk.
    fn handle(&mut self, msg: Remote, _: &mut Self::Context) {
        let items = msg.0;
        if let Some(desk) = &self.stories {
            for item in items.iter().filter(|i| i.topic == Topic::Stories) {
                desk.hear(&item.text);
            }
        }
        let mut start = 0;
        while start < items.len() {
            let topic = items[start].topic;
            let end = items[start..]
                .iter()
                .position(|i| i.topic != topic)
                .map_or(items.len(), |n| start + n);
            let run = &items[start..end];
            self.fan_out(|outbox| {
                outbox.push(topic, run.iter().map(|i| (&i.keys, || i.text.clone())))
            });
            start = end;
        }
    }
}

impl Handler<HearStories> for Broadcaster {
    type Result = ();

    fn handle(&mut self, msg: HearStories, _: &mut Self::Context) {
        self.stories = Some(msg.0);
    }
}

impl Handler<CloseAll> for Broadcaster {
    type Result = usize;

    fn handle(&mut self, _: CloseAll, _: &mut Self::Context) -> usize {
        let n = self.sessions.len();
        for (_, session) in self.sessions.drain() {
            let _ = session.session.going_away.try_send(GoingAway);
        }
        n
    }
}

impl Handler<KeyRevoked> for Broadcaster {
    type Result = usize;

    /// Closes every session of the key, and those that register later; returns how many were
    /// registered.
    fn handle(&mut self, msg: KeyRevoked, _: &mut Self::Context) -> usize {
        let mut closed = 0;
        for session in self.sessions.values() {
            if session.key_id.as_deref() == Some(&*msg.0) {
                revoke(session);
                closed += 1;
            }
        }
        self.revoked.insert(msg.0.clone(), Instant::now());
        if closed > 0 {
            metrics::counter!(names::WS_CLOSED_REVOKED).increment(closed as u64);
            tracing::info!(key_id = %msg.0, sessions = closed, "closed the live sessions of a revoked key");
        }
        closed
    }
}

impl Handler<SessionCount> for Broadcaster {
    type Result = usize;

    fn handle(&mut self, _: SessionCount, _: &mut Self::Context) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ws::protocol::TopicSet;

    /// A session that only counts the close notices the broadcaster sends it.
    struct Counting {
        revoked: Arc<AtomicUsize>,
    }

    impl Actor for Counting {
        type Context = Context<Self>;
    }

    impl Handler<Wake> for Counting {
        type Result = ();

        fn handle(&mut self, _: Wake, _: &mut Self::Context) {}
    }

    impl Handler<GoingAway> for Counting {
        type Result = ();

        fn handle(&mut self, _: GoingAway, _: &mut Self::Context) {}
    }

    impl Handler<CredentialRevoked> for Counting {
        type Result = ();

        fn handle(&mut self, _: CredentialRevoked, _: &mut Self::Context) {
            self.revoked.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A session of `key` subscribed to alerts: its registration, its outbox and the count of
    /// close notices it got.
    fn session_of(id: SessionId, key: &str) -> (Register, Arc<Outbox>, Arc<AtomicUsize>) {
        let revoked = Arc::new(AtomicUsize::new(0));
        let addr = Counting {
            revoked: revoked.clone(),
        }
        .start();
        let outbox = Arc::new(Outbox::new(16));
        let mut topics = TopicSet::default();
        topics.insert(Topic::Alerts);
        outbox.subscribe(topics, None, 5).unwrap();
        let register = Register {
            id,
            session: SessionHandle {
                wake: addr.clone().recipient(),
                going_away: addr.clone().recipient(),
                revoked: addr.recipient(),
            },
            outbox: outbox.clone(),
            key_id: Some(key.into()),
            socket: None,
        };
        (register, outbox, revoked)
    }

    // Failed while every revocation was kept for the life of the process: the set held all
    // thousand keys.
    #[test]
    fn revocations_are_forgotten_once_no_session_of_theirs_can_register() {
        let lifetime = Duration::from_secs(60);
        let mut broadcaster = Broadcaster::new(Arc::default()).with_session_lifetime(lifetime);
        let start = Instant::now();
        for i in 0..1_000u32 {
            let at = start + Duration::from_secs(u64::from(i));
            broadcaster.revoked.insert(format!("k{i}").into(), at);
            broadcaster.forget_old_revocations(at);
            assert!(
                broadcaster.revoked.len() <= 60,
                "{}",
                broadcaster.revoked.len()
            );
        }
        let last = start + Duration::from_secs(999);
        assert!(
            broadcaster.revoked.contains_key("k940"),
            "within a lifetime"
        );
        assert!(!broadcaster.revoked.contains_key("k939"));
        broadcaster.forget_old_revocations(last + lifetime);
        assert!(broadcaster.revoked.is_empty());
    }

    async fn told(count: &AtomicUsize) -> bool {
        for _ in 0..200 {
            if count.load(Ordering::SeqCst) > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// The upgrade checks the key, the revocation reaches the broadcaster, then the session
    /// registers: it was registered as if nothing had happened and streamed until its
    /// credential expired. And a session told to close kept receiving until it did.
    #[actix_rt::test]
    async fn a_revoked_keys_sessions_get_nothing_more_and_one_registering_late_is_closed() {
        let broadcaster = Broadcaster::new(Arc::default()).start();
        let (early, early_outbox, early_told) = session_of(1, "k");
        broadcaster.send(early).await.unwrap();
        assert_eq!(broadcaster.send(KeyRevoked("k".into())).await.unwrap(), 1);
        let (late, late_outbox, late_told) = session_of(2, "k");
        broadcaster.send(late).await.unwrap();
        let (other, other_outbox, other_told) = session_of(3, "another");
        broadcaster.send(other).await.unwrap();
        assert!(told(&early_told).await, "the open session is told to close");
        assert!(told(&late_told).await, "the late session is told to close");

        // Published before the sessions have closed: only the other key's session gets it.
        let alert = Publish {
            topic: Topic::Alerts,
            event_type: "alert:test".into(),
            data: Arc::from("{}"),
            keys: FilterKeys::default(),
        };
        broadcaster.send(alert).await.unwrap();
        assert_eq!(
            (early_outbox.len(), late_outbox.len(), other_outbox.len()),
            (0, 0, 1)
        );
        assert_eq!(other_told.load(Ordering::SeqCst), 0);
    }

    /// Holds the broadcaster's thread, once it says so, until released: a fan-out that cannot
    /// keep up, without timing.
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Hold {
        held: std::sync::mpsc::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    }

    impl Handler<Hold> for Broadcaster {
        type Result = ();

        fn handle(&mut self, msg: Hold, _: &mut Self::Context) {
            let _ = msg.held.send(());
            let _ = msg.release.recv();
        }
    }

    /// A committed batch `n` of `posts` posts new to the database, posted now.
    fn committed(n: usize, posts: usize) -> Committed {
        use crate::actors::messages::{AnalyzedBatch, StoreOutcome};
        let now = chrono::Utc::now();
        let posts: Vec<AnalyzedPost> = (0..posts)
            .map(|i| {
                let post = crate::models::fixtures::post(&format!("p{n}-{i}"), "text", now);
                let entry = format!("{}-{}", now.timestamp_millis(), n * 100 + i);
                crate::models::fixtures::analyzed(post, entry)
            })
            .collect();
        let outcome = StoreOutcome {
            inserted_posts: posts.iter().map(|p| p.post.id.clone()).collect(),
            inserted_entries: posts.iter().map(|p| p.entry_id.clone()).collect(),
            ..Default::default()
        };
        Committed {
            batch: Arc::new(AnalyzedBatch {
                posts,
                ..Default::default()
            }),
            outcome: Arc::new(outcome),
            stories: None,
            acked_at_ms: now.timestamp_millis(),
            trace: None,
        }
    }

    /// The post ids named in `texts`, sorted.
    fn post_ids<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut ids: Vec<String> = texts
            .into_iter()
            .map(|t| {
                let v: serde_json::Value = serde_json::from_str(t).expect("json");
                v["data"]["id"].as_str().expect("a post").to_string()
            })
            .collect();
        ids.sort();
        ids
    }

    /// Waits until `outbox` holds `n` messages (or a lagged notice with fewer).
    async fn holds(outbox: &Outbox, n: usize) -> bool {
        for _ in 0..500 {
            if outbox.len() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Committed batches went to the broadcaster's mailbox, which takes whatever is sent: a
    /// broadcaster slower than the pipeline (many sessions) held every batch waiting, without
    /// bound, and its sessions' live posts fell ever further behind.
    #[actix_rt::test]
    async fn a_broadcaster_that_falls_behind_sheds_the_oldest_batches_and_says_so() {
        let backlog = Arc::new(Mutex::new(Backlog::default()));
        let (fanout, mut published) = crate::ws::fanout::queue(1_000);
        let arbiter = actix::Arbiter::new();
        let (theirs, their_fanout) = (backlog.clone(), fanout.clone());
        let broadcaster = Broadcaster::start_in_arbiter(&arbiter.handle(), move |_| {
            Broadcaster::new(Arc::default())
                .with_backlog(theirs)
                .with_fanout(Some(their_fanout))
        });
        let intake = LiveIntake::new(backlog, 10, broadcaster.clone().recipient(), Some(fanout));

        let (mut register, _, _) = session_of(1, "k");
        let outbox = Arc::new(Outbox::new(10_000));
        let mut posts = TopicSet::default();
        posts.insert(Topic::Posts);
        outbox.subscribe(posts, None, 5).unwrap();
        register.outbox = outbox.clone();
        broadcaster.send(register).await.unwrap();

        let (held, is_held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel();
        broadcaster.do_send(Hold {
            held,
            release: released,
        });
        is_held.recv().unwrap();

        for n in 0..100 {
            intake.take(committed(n, 3));
            assert!(intake.backlog().posts() <= 10, "batch {n}");
        }
        {
            let backlog = intake.backlog();
            assert_eq!((backlog.batches(), backlog.posts()), (3, 9));
            assert_eq!(backlog.shed, 97 * 3, "the excess is counted as shed");
        }
        assert!(outbox.is_empty());

        release.send(()).unwrap();
        assert!(holds(&outbox, 9).await, "the batches kept are delivered");
        let mut out = Vec::new();
        outbox.drain(100, &mut out);
        assert_eq!(
            out[0].text,
            protocol::lagged(97 * 3),
            "told it lagged first"
        );
        let expected: Vec<String> = (97..100)
            .flat_map(|n| (0..3).map(move |i| format!("p{n}-{i}")))
            .collect();
        assert_eq!(post_ids(out[1..].iter().map(|o| &*o.text)), expected);

        // After the release the broadcaster goes on delivering, with nothing more to report.
        intake.take(committed(100, 2));
        assert!(holds(&outbox, 2).await);
        out.clear();
        outbox.drain(100, &mut out);
        assert_eq!(post_ids(out.iter().map(|o| &*o.text)), ["p100-0", "p100-1"]);
        assert_eq!(intake.backlog().shed, 0);
        // Every offer is made once the broadcaster has handled what came before this.
        broadcaster.send(SessionCount).await.unwrap();

        // The other processes were offered every post, shed or not.
        let mut offered = Vec::new();
        while let Some(items) = published.try_recv() {
            offered.extend(items.into_iter().map(|i| i.text));
        }
        let mut all: Vec<String> = (0..100)
            .flat_map(|n| (0..3).map(move |i| format!("p{n}-{i}")))
            .chain(["p100-0".to_string(), "p100-1".to_string()])
            .collect();
        all.sort();
        assert_eq!(post_ids(offered.iter().map(|t| &**t)), all);
        arbiter.stop();
    }
}

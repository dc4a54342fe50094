//! One actor per configured source. The actor runs its source as a task and watches it: a
//! source that panics or gives up is counted and started again after a backoff, from its
//! stored position, while the rest of the process goes on.

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message};
use fred::prelude::Client;
use futures::FutureExt;

use super::{feed, jetstream, mastodon, reddit, SourceContext};
use crate::config::{SourceKind, SourceSettings};
use crate::models::backoff::Backoff;
use crate::telemetry::causes::causes;
use crate::telemetry::names;

/// How often the actor looks at its task.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// A task that ran at least this long (or the longest backoff, if longer) before it ended
/// ran well: its restart starts the backoff over.
const RAN_WELL: Duration = Duration::from_secs(60);

pub struct SourceActor {
    settings: SourceSettings,
    context: SourceContext,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    backoff: Backoff,
    restarting: bool,
    /// When the running task was started.
    started: Option<Instant>,
}

impl SourceActor {
    pub fn new(
        settings: SourceSettings,
        redis: Client,
        stream: &str,
        topics: Option<std::sync::Arc<crate::topics::LiveTopics>>,
    ) -> SourceActor {
        let context = SourceContext::new(&settings, redis, stream, topics);
        let backoff = Backoff::new(Duration::from_secs(1), context.max_backoff);
        SourceActor {
            settings,
            context,
            task: None,
            backoff,
            restarting: false,
            started: None,
        }
    }

    /// Makes the source pause while the group is behind past `gate`.
    pub fn gate(&mut self, gate: Option<crate::streams::admission::Gate>) {
        self.context.gate = gate;
    }

    pub fn context(&self) -> &SourceContext {
        &self.context
    }

    fn spawn(&mut self) {
        let context = self.context.clone();
        let task = match self.settings.kind.clone() {
            SourceKind::Jetstream(s) => tokio::spawn(jetstream::run(context, s)),
            SourceKind::Mastodon(s) => tokio::spawn(mastodon::run(context, s)),
            SourceKind::Feed(s) => tokio::spawn(feed::run(context, s)),
            SourceKind::Reddit(s) => tokio::spawn(reddit::run(context, s)),
        };
        self.task = Some(task);
        self.restarting = false;
        self.started = Some(Instant::now());
    }

    fn watch(&mut self, ctx: &mut Context<Self>) {
        let Some(task) = self.task.as_mut() else {
            return;
        };
        if !task.is_finished() || self.restarting {
            return;
        }
        let outcome = task.now_or_never();
        self.task = None;
        let name = &self.context.name;
        match outcome {
            Some(Ok(Ok(()))) => tracing::warn!(source = %name, "source stopped; starting it again"),
            Some(Ok(Err(e))) => self.context.error("stopped", &e),
            Some(Err(e)) => {
                tracing::error!(source = %name, error = %causes(&e), "source panicked; starting it again");
                metrics::counter!(names::ACTOR_RESTARTS, "actor" => "source").increment(1);
            }
            None => {}
        }
        self.context.set_connected(false);
        self.restarting = true;
        if self
            .started
            .is_some_and(|at| ran_well(at.elapsed(), self.context.max_backoff))
        {
            self.backoff.reset();
        }
        let wait = self.backoff.next_wait();
        ctx.run_later(wait, |this, _| this.spawn());
    }
}

/// Whether a task that ran `ran` before it ended starts the restart backoff over. Without
/// this every restart of a long-lived process would wait near `max_backoff`, however rare;
/// a task that keeps ending at once still waits longer each time.
fn ran_well(ran: Duration, max_backoff: Duration) -> bool {
    ran >= RAN_WELL.max(max_backoff)
}

impl Actor for SourceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(source = %self.context.name, kind = self.settings.kind.as_str(), "source starting");
        self.spawn();
        ctx.run_interval(WATCH_EVERY, |this, ctx| this.watch(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.context.set_connected(false);
    }
}

/// Stops the source (its task is aborted; the stored position covers what was appended).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSource;

impl Handler<StopSource> for SourceActor {
    type Result = ();

    fn handle(&mut self, _: StopSource, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_task_that_ran_a_while_starts_the_backoff_over() {
        let minute = Duration::from_secs(60);
        assert!(!ran_well(Duration::from_secs(2), minute));
        assert!(ran_well(minute, minute));
        assert!(ran_well(Duration::from_secs(600), Duration::from_secs(1)));
        assert!(!ran_well(Duration::from_secs(59), Duration::from_secs(1)));
        assert!(
            !ran_well(Duration::from_secs(200), Duration::from_secs(300)),
            "shorter than the longest wait"
        );
    }
}

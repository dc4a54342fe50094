//! Supervision: a crashed stage is restarted and the process keeps serving.
//!
//! actix's own `Supervisor` restarts an actor that *stops*; an actor whose handler panics is
//! dropped by its arbiter instead, so its address goes dead. [`Supervised`] holds the live
//! address of a stage and rebuilds the actor from its factory when the address is found dead,
//! either by the periodic [`Watchdog`] or by a caller whose message bounced.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context};

use crate::telemetry::names;

/// How often the watchdog looks for dead stages.
pub const WATCHDOG_INTERVAL: Duration = Duration::from_millis(200);

type Factory<A> = dyn Fn() -> Addr<A> + Send + Sync;

/// The current address of a restartable stage.
pub struct Supervised<A: Actor> {
    name: &'static str,
    addr: Arc<RwLock<Addr<A>>>,
    factory: Arc<Factory<A>>,
}

impl<A: Actor> Clone for Supervised<A> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            addr: self.addr.clone(),
            factory: self.factory.clone(),
        }
    }
}

impl<A: Actor> Supervised<A> {
    /// Starts the stage with `factory`, which is called again for every restart.
    pub fn start(
        name: &'static str,
        factory: impl Fn() -> Addr<A> + Send + Sync + 'static,
    ) -> Self {
        let addr = factory();
        // A zero series, so "no restarts" reads as 0 rather than as no data.
        metrics::counter!(names::ACTOR_RESTARTS, "actor" => name).increment(0);
        Self {
            name,
            addr: Arc::new(RwLock::new(addr)),
            factory: Arc::new(factory),
        }
    }

    /// The live address (restarting the stage first if it has died).
    pub fn addr(&self) -> Addr<A> {
        self.ensure_alive();
        self.addr.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Restarts the stage if its actor is gone; returns true if it did.
    pub fn ensure_alive(&self) -> bool {
        if self
            .addr
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .connected()
        {
            return false;
        }
        let mut slot = self.addr.write().unwrap_or_else(|p| p.into_inner());
        if slot.connected() {
            return false;
        }
        tracing::warn!(actor = self.name, "actor died; restarting it");
        metrics::counter!(names::ACTOR_RESTARTS, "actor" => self.name).increment(1);
        *slot = (self.factory)();
        true
    }

    /// The stage's name, for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Something the watchdog can check and restart.
pub trait Watched: Send {
    /// Restarts the stage if it died.
    fn check(&self);
}

impl<A: Actor> Watched for Supervised<A> {
    fn check(&self) {
        self.ensure_alive();
    }
}

/// Periodically checks every supervised stage, so a stage that died while idle is back
/// before the next message needs it.
pub struct Watchdog {
    stages: Vec<Box<dyn Watched>>,
}

impl Watchdog {
    /// A watchdog over `stages`.
    pub fn new(stages: Vec<Box<dyn Watched>>) -> Self {
        Self { stages }
    }
}

impl Actor for Watchdog {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(WATCHDOG_INTERVAL, |this, _| {
            for stage in &this.stages {
                stage.check();
            }
        });
    }
}

//! The application: builds every part from [`Settings`], serves until a signal, then shuts
//! down gracefully. Tests use the same entry points to run the real thing on port 0.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::{web, HttpServer};
use anyhow::Context;

use crate::actors::aggregator::Aggregator;
use crate::actors::messages::DrainReport;
use crate::actors::{LiveOutput, Pipeline};
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::sources::demo::{self as producer, ProduceOptions};
use crate::sources::Sources;
use crate::ws::fanout::{self, Fanout};
use crate::ws::messages::KeyRevoked;
use crate::ws::{Broadcaster, Hub};

/// How long the HTTP server lets open requests finish at shutdown, in seconds.
const HTTP_SHUTDOWN_SECS: u64 = 5;

/// What the flush of in-memory aggregates gets at shutdown even when the drain took all of
/// `shutdown_timeout_secs`.
const FLUSH_AT_LEAST: Duration = Duration::from_secs(2);

/// Options of `pulse serve` that are not settings.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Run the synthetic producer in process at this many events per second.
    pub demo_rate: Option<f64>,
}

/// A built, running Pulse process.
pub struct Application {
    address: SocketAddr,
    settings: Arc<Settings>,
    server: actix_web::dev::ServerHandle,
    server_task: tokio::task::JoinHandle<std::io::Result<()>>,
    pipeline: Pipeline,
    hub: Hub,
    fanout: Option<Fanout>,
    demo: Option<tokio::task::JoinHandle<()>>,
    sources: Sources,
    key_refresher: Option<tokio::task::JoinHandle<()>>,
    revocations: Option<tokio::task::JoinHandle<()>>,
    export_runner: crate::http::api::exports::runner::ExportRunner,
    digest_runner: crate::http::api::digests::runner::DigestRunner,
}

/// Closes the live sessions of every key revoked from now on, by this process or another.
fn close_revoked_sessions(
    auth: Arc<crate::auth::Authenticator>,
    broadcaster: Addr<Broadcaster>,
) -> tokio::task::JoinHandle<()> {
    use tokio::sync::broadcast::error::RecvError;
    let mut revoked = auth.revocations();
    tokio::spawn(async move {
        loop {
            match revoked.recv().await {
                Ok(id) => broadcaster.do_send(KeyRevoked(id)),
                // Missed some: close the sessions of every revoked key, which covers them.
                Err(RecvError::Lagged(_)) => {
                    for id in auth.revoked_ids() {
                        broadcaster.do_send(KeyRevoked(id));
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
}

/// Says, as loudly as a log can, that this process serves everyone.
fn announce_open() {
    metrics::gauge!(crate::telemetry::names::AUTH_OPEN).set(1.0);
    tracing::warn!("==================================================================");
    tracing::warn!("AUTHENTICATION IS OFF (auth.open): anyone who can reach this port");
    tracing::warn!("can read every post and change rules, webhooks and keys.");
    tracing::warn!("Set PULSE_AUTH__JWT_SECRET and create keys with `pulse keys create`.");
    tracing::warn!("==================================================================");
}

impl Application {
    /// Connects, migrates (when configured), starts the pipeline and binds the HTTP server.
    /// Must run inside an actix system.
    pub async fn build(settings: Settings, options: ServeOptions) -> anyhow::Result<Application> {
        settings.check_rates()?;
        let settings = Arc::new(settings);
        let metrics = crate::telemetry::metrics_handle();
        if settings.migrate_on_start {
            let applied = crate::db::migrate(&settings.database.url).await?;
            tracing::info!(applied, "database migrations up to date");
        }
        let pool = crate::db::pipeline_pool(&settings.database)?;
        // What can refuse to start is checked before any actor runs: an actor dropped before
        // its first poll, when the runtime ends, panics in its own start.
        let auth = match (&settings.auth.open, settings.auth.jwt_secret.is_empty()) {
            // A secret says keys are wanted. An `open` left from a demo (pulse.toml, the
            // environment, `serve --open`) won silently: the server took every request as an
            // admin's while the keys made for it seemed to work.
            (true, false) => anyhow::bail!(
                "auth.open and auth.jwt_secret are both set: refusing to serve without \
                 authentication while a token secret says it is wanted; unset \
                 PULSE_AUTH__OPEN (auth.open, `serve --open`) to require keys, or the secret \
                 to run open"
            ),
            (true, true) => {
                announce_open();
                None
            }
            (false, true) => anyhow::bail!(
                "authentication is on and auth.jwt_secret is not set: set PULSE_AUTH__JWT_SECRET \
                 (32+ random bytes, the same in every process; e.g. `openssl rand -hex 32`), \
                 or run deliberately without authentication with PULSE_AUTH__OPEN=true \
                 (`pulse serve --demo` does so when no secret is set)"
            ),
            (false, false) => {
                let auth = crate::auth::Authenticator::new(&settings.auth, pool.clone())?;
                auth.refresh().await.context("reading API keys")?;
                metrics::gauge!(crate::telemetry::names::AUTH_OPEN).set(0.0);
                tracing::info!("authentication on: API keys and bearer tokens required");
                warn_of_keys_made_while_open(&pool).await?;
                Some(auth)
            }
        };
        let proxies =
            crate::http::middleware::peer::TrustedProxies::parse(&settings.http.trusted_proxies)
                .map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(&settings.http.listen)
            .with_context(|| format!("binding the HTTP listener to {}", settings.http.listen))?;
        let redis = crate::streams::connect(&settings.redis.url, "shared").await?;
        crate::streams::group::ensure_group(&redis, &settings.redis.stream, &settings.redis.group)
            .await
            .context("creating the consumer group")?;
        let (fanout_sender, fanout_queue) = if settings.fanout.enabled {
            let (sender, queue) = fanout::queue(settings.fanout.queue_capacity);
            (Some(sender), Some(queue))
        } else {
            (None, None)
        };
        let session_lifetime = std::time::Duration::from_secs(settings.auth.token_ttl_secs);
        let hub = Hub::start_with(settings.ws.clone(), fanout_sender, session_lifetime);
        let fanout = fanout_queue
            .map(|queue| Fanout::start(&settings, queue, hub.broadcaster().recipient()));
        let live = LiveOutput {
            committed: Some(hub.live_intake()),
            metrics: Some(hub.broadcaster().recipient()),
            publish: Some(hub.broadcaster().recipient()),
        };
        let pipeline = Pipeline::start(settings.clone(), pool.clone(), redis.clone(), live).await?;
        if let Some(desk) = pipeline.ingest.stories.clone() {
            hub.broadcaster()
                .do_send(crate::ws::messages::HearStories(desk));
        }

        let key_refresher = auth.as_ref().map(|a| a.spawn_refresher());
        let revocations = auth
            .as_ref()
            .map(|a| close_revoked_sessions(a.clone(), hub.broadcaster()));
        let sources = Sources::start(
            &settings.sources,
            &redis,
            &settings.redis.stream,
            Some(pipeline.topics().clone()),
            Some(crate::streams::admission::Gate::of_intake(settings.clone())),
        )?;
        let export_wake = Arc::new(tokio::sync::Notify::new());
        let export_runner = crate::http::api::exports::runner::ExportRunner::start(
            &settings.export,
            &settings.database.url,
            pipeline.consumer(),
            export_wake.clone(),
            Some(pipeline.ingest.clone()),
        )?;
        let digest_runner =
            crate::http::api::digests::runner::DigestRunner::start(settings.clone(), pool.clone());
        let mut state = AppState::new(
            settings.clone(),
            pool,
            redis.clone(),
            metrics,
            pipeline.consumer().to_string(),
        )?;
        state.ingest = Some(pipeline.ingest.clone());
        state.ws = Some(hub.clone());
        state.auth = auth;
        state.proxies = proxies.clone();
        state.sources = sources.statuses();
        state.traces = pipeline.traces().clone();
        state.review = crate::http::api::labels::Review::new(
            &settings.topics,
            Some(pipeline.topics().clone()),
        );
        state.export_wake = export_wake.clone();
        let state = web::Data::new(state);
        let address = listener.local_addr()?;
        let workers = Settings::threads_or_cores(settings.http.workers);
        let admission = crate::http::middleware::connections::Admission::new(
            settings.http.max_connections_per_network,
            proxies,
        );
        let server = HttpServer::new(move || http::app(state.clone()))
            .on_connect(move |connection, data| {
                if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
                    admission.admit(tcp, data);
                }
            })
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(HTTP_SHUTDOWN_SECS)
            .listen(listener)?
            .run();
        let handle = server.handle();
        let server_task = tokio::spawn(server);
        tracing::info!(%address, consumer = pipeline.consumer(), stream = %settings.redis.stream, "listening on http://{address}");

        let demo = options.demo_rate.map(|rate| {
            let options = ProduceOptions {
                rate,
                ..ProduceOptions::demo()
            };
            let stream = settings.redis.stream.clone();
            tracing::info!(rate, "demo feed running in process");
            tokio::spawn(async move {
                if let Err(e) = producer::produce(&redis, &stream, options).await {
                    tracing::error!(error = %format_args!("{e:#}"), "demo feed stopped");
                }
            })
        });

        Ok(Application {
            address,
            settings,
            server: handle,
            server_task,
            pipeline,
            hub,
            fanout,
            demo,
            sources,
            key_refresher,
            revocations,
            export_runner,
            digest_runner,
        })
    }

    /// The bound HTTP address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The running pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The aggregator of live metrics and trending terms.
    pub fn aggregator(&self) -> &Addr<Aggregator> {
        self.pipeline.aggregator()
    }

    /// The broadcaster of live events to WebSocket subscribers.
    pub fn broadcaster(&self) -> Addr<Broadcaster> {
        self.hub.broadcaster()
    }

    /// Open WebSocket sessions now.
    pub fn ws_sessions(&self) -> usize {
        self.hub.sessions()
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<DrainReport> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; draining"),
            _ = int.recv() => tracing::info!("SIGINT received; draining"),
        }
        Ok(self.shutdown().await)
    }

    /// Stops reading, drains in-flight batches (committing and acknowledging them), sends
    /// WebSocket subscribers what they have queued and closes them, then stops the HTTP
    /// server.
    pub async fn shutdown(self) -> DrainReport {
        if let Some(demo) = &self.demo {
            demo.abort();
        }
        self.sources.stop().await;
        // One deadline for the runners, the drain and the flush, so that the whole stop stays
        // within `shutdown_timeout_secs` plus the fixed steps after it (the deployment's grace
        // period is sized on that sum).
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.settings.shutdown_timeout_secs);
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let (exports, digests) = (self.export_runner, self.digest_runner);
        let runners = async move {
            tokio::join!(exports.stop(), digests.stop());
        };
        if tokio::time::timeout(left(), runners).await.is_err() {
            tracing::warn!(
                "the export and digest runners did not stop in time; their leases expire"
            );
        }
        let report = self.pipeline.drain(left()).await;
        match report {
            DrainReport::Drained => {
                tracing::info!("pipeline drained; every read entry is committed and acknowledged")
            }
            DrainReport::TimedOut { in_flight } => tracing::warn!(
                in_flight,
                "drain timed out; unacknowledged entries stay pending for the next consumer"
            ),
        }
        if tokio::time::timeout(left().max(FLUSH_AT_LEAST), self.pipeline.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                "trending terms and virality scores held in memory were not written in time"
            );
        }
        self.hub.shutdown().await;
        // Only now: a key revoked during the drain still closes the sessions it opened.
        for task in [&self.key_refresher, &self.revocations]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        if let Some(fanout) = self.fanout {
            fanout.shutdown().await;
        }
        self.server.stop(true).await;
        let _ = self.server_task.await;
        // Stages on timers stop with the application (see `messages::Stop`).
        self.pipeline.stop_timers();
        self.pipeline.traces().shutdown().await;
        report
    }
}

/// glibc gives each thread that allocates its own malloc arena (up to eight per core), and memory
/// freed in one arena is not reused by another thread's allocations. With ONNX Runtime's worker
/// threads that held 60 to 80 MB more at peak under load, for no gain in speed (see
/// docs/benchmarks.md, "The model and alerts").
///
/// The two thresholds stop glibc from handing an inference's activations back to the kernel as
/// soon as they are freed: blocks up to 32 MB come from the heap instead of their own mapping,
/// and a freed heap top is kept instead of being trimmed at 128 KB, so the next batch does not
/// fault the same pages in again (raw inference 18% faster, Pulse end to end 5-12%). The analyzer
/// workers still return free pages themselves, at most once a second while busy.
///
/// Whatever `MALLOC_*` variable or `GLIBC_TUNABLES` entry whoever runs Pulse sets for one of
/// these takes precedence.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_malloc() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let set_outside = |variable: &str, tunable: &str| {
        std::env::var_os(variable).is_some() || tunables.contains(tunable)
    };
    // SAFETY: mallopt only sets an allocator parameter; this runs first thing in main, before
    // any other thread exists.
    unsafe {
        if !set_outside("MALLOC_ARENA_MAX", "arena_max") {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
        if !set_outside("MALLOC_MMAP_THRESHOLD_", "mmap_threshold")
            && !set_outside("MALLOC_TRIM_THRESHOLD_", "trim_threshold")
        {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_malloc() {}

/// Keys made while the deployment ran without authentication were made by whoever reached it
/// then: still in force once it requires keys, they are named at every start until revoked.
async fn warn_of_keys_made_while_open(pool: &deadpool_postgres::Pool) -> anyhow::Result<()> {
    let client = pool.get().await.context("reading API keys")?;
    let open = crate::auth::Principal::open().actor();
    let keys = crate::db::keys::active_made_by(&**client, &open).await?;
    if !keys.is_empty() {
        tracing::warn!(
            ?keys,
            "API keys in force were made while this deployment ran without authentication, by \
             whoever reached it then: revoke those you did not make (`pulse keys revoke ID`)"
        );
    }
    Ok(())
}

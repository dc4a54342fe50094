//! The pipeline stages as supervised actix actors, a file or a folder each (a folder holds the
//! stage's policies beside it: the analyzer pool's adaptive route and the analyze endpoint's
//! share, the deliverer's channel messages and mailer), and the [`Pipeline`] that starts and
//! wires them: ingester -> analyzer pool -> store (a call: it holds no state), with retention
//! and a watchdog beside them.

pub mod aggregator;
pub mod alerter;
pub mod analyzer;
pub mod calibration;
pub mod ingester;
pub mod messages;
pub mod monitor;
pub mod relevance;
pub mod retention;
pub mod search_indexer;
mod series;
pub mod store;
pub mod stories;
pub mod supervisor;
pub mod topics;
pub mod virality;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, SyncArbiter};
use deadpool_postgres::Pool;

use self::aggregator::{Aggregator, FlushTerms};
use self::alerter::Alerter;
use self::analyzer::AnalyzerWorker;
use self::ingester::{IngestContext, Ingester};
use self::messages::{Drain, DrainReport};
use self::monitor::GroupMonitor;
use self::retention::Retention;
use self::store::Store;
use self::supervisor::{Supervised, Watchdog};
use self::topics::{Retagger, TopicWatcher};
use self::virality::{FlushVirality, ViralityTracker};
use self::webhooks::Deliverer;
use crate::analysis::Backend;
use crate::config::Settings;
use crate::telemetry::traces::{Source, Traces};

/// A pipeline stage, for fault injection in tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Ingester,
    Analyzer,
    Store,
    /// Dead-lettering: the reply to the next one is lost after Redis applied it.
    DeadLetters,
}

/// Where the pipeline's live output goes: the live service's broadcaster, when this process
/// serves live updates.
#[derive(Default)]
pub struct LiveOutput {
    /// Receives every committed batch (new posts), before the stages downstream do.
    pub committed: Option<Arc<dyn messages::CommittedSink>>,
    /// Receives each metrics snapshot.
    pub metrics: Option<actix::Recipient<messages::MetricsUpdate>>,
    /// Receives alerts and virality updates.
    pub publish: Option<actix::Recipient<messages::Publish>>,
}

/// The running pipeline of one process: every stage, from the stream to the alerts.
pub struct Pipeline {
    pub ingest: Arc<IngestContext>,
    ingester: Supervised<Ingester>,
    aggregator: Addr<Aggregator>,
    alerter: Addr<Alerter>,
    deliverer: Addr<Deliverer>,
    virality: Option<Addr<ViralityTracker>>,
    topics: Arc<crate::topics::LiveTopics>,
    topic_watcher: Addr<TopicWatcher>,
    retagger: Addr<Retagger>,
    learner: Addr<relevance::RelevanceLearner>,
    calibrator: Option<Addr<calibration::Calibrator>>,
    search_indexer: Addr<search_indexer::SearchIndexer>,
    // Held for the pipeline's lifetime; read only by fault injection.
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    analyzer: Supervised<AnalyzerWorker>,
    _watchdog: Addr<Watchdog>,
    _retention: Addr<Retention>,
    _monitor: Addr<GroupMonitor>,
}

impl Pipeline {
    /// Starts every stage: ingester -> analyzer pool -> store, then the stages each committed
    /// batch goes to (the live output, the aggregator, the alerter, the virality tracker), the
    /// webhook deliverer, retention, the group monitor and the watchdog. Must run inside an
    /// actix system.
    pub async fn start(
        settings: Arc<Settings>,
        pool: Pool,
        redis: fred::clients::Client,
        live: LiveOutput,
    ) -> anyhow::Result<Pipeline> {
        series::seed();
        settings.ingest.validate().map_err(anyhow::Error::msg)?;
        settings.stories.validate()?;
        settings.topics.validate().map_err(anyhow::Error::msg)?;
        settings.export.validate().map_err(anyhow::Error::msg)?;
        settings.digests.validate().map_err(anyhow::Error::msg)?;
        settings.search.validate().map_err(anyhow::Error::msg)?;
        // The topics every post is matched against, loaded before the first batch is read.
        let topics = crate::topics::LiveTopics::new();
        if let Err(e) = topics::refresh(&pool, &topics).await {
            tracing::warn!(error = %format_args!("{e:#}"), "topics could not be loaded yet; the watcher keeps trying");
        }
        // The sentiment calibration in use, loaded before the first batch too.
        let calibrating = settings.analyzer.calibration_every_ms > 0;
        let live_calibration = crate::analysis::calibration::LiveCalibration::new();
        if calibrating {
            if let Err(e) = calibration::refresh(&pool, &live_calibration).await {
                tracing::warn!(error = %format_args!("{e:#}"), "the sentiment calibration could not be loaded yet; the calibrator keeps trying");
            }
        }
        let backend = settings.analyzer.backend;
        let analyzer_settings = Arc::new(settings.analyzer.clone());
        // Load the backend once here so a broken model fails start-up with its error
        // instead of panicking inside a worker thread.
        let probe = crate::analysis::build_router(backend, &analyzer_settings)?;
        tracing::info!(
            model = probe.model(),
            languages = ?probe.supported_languages(),
            "analyzer backend loaded"
        );
        if backend == Backend::Onnx && settings.analyzer.multilingual_bundles.is_empty() {
            tracing::warn!("no multilingual model: posts not in English are stored as unsupported and left out of aggregates (scripts/models.sh builds one)");
        }
        // The first worker takes the probe instead of loading the models again (a restarted
        // pool loads its own).
        let probe = Arc::new(std::sync::Mutex::new(Some(probe)));

        let workers = Settings::threads_or_cores(settings.analyzer.workers);
        let model_settings = analyzer_settings.clone();
        let model_topics = topics.clone();
        let model_calibration = live_calibration.clone();
        let analyzer = Supervised::start("analyzer", move || {
            let settings = model_settings.clone();
            let probe = probe.clone();
            let topics = model_topics.clone();
            let calibration = model_calibration.clone();
            SyncArbiter::start(workers, move || {
                let loaded = probe
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                match loaded {
                    Some(router) => AnalyzerWorker::with_router(backend, settings.clone(), router),
                    None => AnalyzerWorker::new(backend, settings.clone()),
                }
                .matching(topics.clone())
                .calibrated(calibration.clone())
            })
        });
        // The lexicon pool that takes new posts while the model is behind.
        let fallback = (backend != Backend::Lexicon && settings.analyzer.fallback_lag_secs > 0.0)
            .then(|| {
                let settings = analyzer_settings.clone();
                let topics = topics.clone();
                Supervised::start("fallback analyzer", move || {
                    let settings = settings.clone();
                    let topics = topics.clone();
                    SyncArbiter::start(1, move || {
                        AnalyzerWorker::new(Backend::Lexicon, settings.clone())
                            .matching(topics.clone())
                    })
                })
            });
        let store_pool = pool.clone();
        let stream = settings.redis.stream.clone();
        let high_churn = settings.metrics.high_churn_threshold;
        // One admission for every incarnation of the store: what it learned survives a restart.
        let admission = Arc::new(crate::db::rollup_keys::KeyAdmission::new(
            settings.metrics.max_keys_per_dimension,
        ));
        let trust = Arc::new(crate::models::producer::Trust::new(
            &settings.ingest.producer_trust,
        ));
        let store = Arc::new(Store::new(
            store_pool,
            stream,
            high_churn,
            admission,
            trust.clone(),
        ));

        let consumer = settings.consumer_name();
        let monitor = GroupMonitor::new(settings.clone(), redis.clone(), consumer.clone()).start();
        let reader = crate::streams::connect(&settings.redis.url, "stream reader").await?;
        let traces = Traces::start(
            &settings.traces,
            Source {
                stream: &settings.redis.stream,
                group: &settings.redis.group,
                consumer: &consumer,
            },
        )?;
        let stories_desk = settings
            .stories
            .enabled
            .then(|| Arc::new(stories::StoryDesk::new(&settings.stories)));
        if let Some(desk) = &stories_desk {
            stories::take_in_stored(desk, &pool, &settings.stories).await;
        }
        let ingest = Arc::new(IngestContext::new(
            settings.clone(),
            traces,
            consumer,
            reader,
            redis,
            analyzer.clone(),
            fallback.clone(),
            store.clone(),
            stories_desk,
        ));
        let ingest_ctx = ingest.clone();
        let ingester = Supervised::start("ingester", move || {
            Ingester::new(ingest_ctx.clone()).start()
        });

        let mut watched: Vec<Box<dyn supervisor::Watched>> =
            vec![Box::new(ingester.clone()), Box::new(analyzer.clone())];
        if let Some(fallback) = &fallback {
            watched.push(Box::new(fallback.clone()));
        }
        let watchdog = Watchdog::new(watched).start();
        let settling = retention::Settling {
            high_churn,
            trust: trust.pairs().to_vec(),
            hold_secs: settings.ingest.unknown_post_hold_secs,
            ingest: Some(ingest.clone()),
        };
        let retention = Retention::new(pool.clone(), &settings.store, settling).start();

        // Downstream of the commit, in the order each batch reaches them.
        if let Some(committed) = live.committed {
            ingest.subscribe_sink(committed);
        }
        let mut aggregator = Aggregator::new(settings.clone(), pool.clone());
        if let Some(metrics) = live.metrics {
            aggregator = aggregator.with_subscriber(metrics);
        }
        let aggregator = aggregator.start();
        ingest.subscribe(aggregator.clone().recipient());
        let alerter = Alerter::new(settings.clone(), pool.clone(), live.publish.clone()).start();
        ingest.subscribe(alerter.clone().recipient());
        let deliverer = Deliverer::new(settings.clone(), pool.clone()).start();
        if settings.stories.enabled {
            let keeper = stories::StoryKeeper::new(pool.clone(), live.publish.clone()).start();
            ingest.subscribe(keeper.recipient());
        }
        let topic_watcher =
            TopicWatcher::new(pool.clone(), topics.clone(), &settings.topics).start();
        let retagger = Retagger::new(
            pool.clone(),
            &settings.topics,
            high_churn,
            Some(ingest.clone()),
        )
        .start();
        let learner = relevance::RelevanceLearner::new(
            pool.clone(),
            &settings.topics,
            high_churn,
            Some(ingest.clone()),
        )
        .start();
        let calibrator = calibrating.then(|| {
            calibration::Calibrator::new(pool.clone(), ingest.clone(), live_calibration).start()
        });
        let search_indexer = search_indexer::SearchIndexer::new(
            pool.clone(),
            &settings.topics,
            Some(ingest.clone()),
        )
        .start();
        let virality = settings.virality.enabled.then(|| {
            let tracker = ViralityTracker::new(settings.clone(), pool, live.publish).start();
            ingest.subscribe(tracker.clone().recipient());
            tracker
        });

        Ok(Pipeline {
            ingest,
            ingester,
            aggregator,
            alerter,
            deliverer,
            virality,
            topics,
            topic_watcher,
            retagger,
            learner,
            calibrator,
            search_indexer,
            analyzer,
            _watchdog: watchdog,
            _retention: retention,
            _monitor: monitor,
        })
    }

    /// Stops reading and waits up to `timeout` for in-flight batches to commit and be
    /// acknowledged. Entries still in flight after that stay pending in Redis.
    pub async fn drain(&self, timeout: Duration) -> DrainReport {
        match self.ingester.addr().send(Drain { timeout }).await {
            Ok(report) => report,
            Err(_) => DrainReport::TimedOut {
                in_flight: self.ingest.in_flight(),
            },
        }
    }

    /// Writes what the stages downstream keep in memory (trending terms, virality scores);
    /// after [`drain`].
    ///
    /// [`drain`]: Pipeline::drain
    pub async fn flush(&self) {
        let _ = self.aggregator.send(FlushTerms).await;
        if let Some(virality) = &self.virality {
            let _ = virality.send(FlushVirality).await;
        }
    }

    /// Stops the stages that work on timers (retention, the group monitor, the aggregator, the
    /// alerter, the webhook deliverer); after [`drain`].
    ///
    /// [`drain`]: Pipeline::drain
    pub fn stop_timers(&self) {
        self._retention.do_send(messages::Stop);
        self._monitor.do_send(messages::Stop);
        self.aggregator.do_send(messages::Stop);
        self.alerter.do_send(messages::Stop);
        self.deliverer.do_send(messages::Stop);
        self.topic_watcher.do_send(messages::Stop);
        self.retagger.do_send(messages::Stop);
        self.learner.do_send(messages::Stop);
        if let Some(calibrator) = &self.calibrator {
            calibrator.do_send(messages::Stop);
        }
        self.search_indexer.do_send(messages::Stop);
    }

    /// The topics this process matches posts against.
    pub fn topics(&self) -> &Arc<crate::topics::LiveTopics> {
        &self.topics
    }

    /// The aggregator of live metrics and trending terms.
    pub fn aggregator(&self) -> &Addr<Aggregator> {
        &self.aggregator
    }

    /// Registers a stage that receives every committed batch.
    pub fn subscribe(&self, recipient: actix::Recipient<messages::Committed>) {
        self.ingest.subscribe(recipient);
    }

    /// The consumer name of this process.
    pub fn consumer(&self) -> &str {
        &self.ingest.consumer
    }

    /// This process's tracer (off unless `traces.otlp_endpoint` is set).
    pub fn traces(&self) -> &Traces {
        &self.ingest.traces
    }

    /// Makes one stage fail, to prove supervision and retries in tests: a stage panics, or
    /// dead-lettering loses its reply.
    #[cfg(feature = "fault-injection")]
    #[doc(hidden)]
    pub fn inject_fault(&self, stage: Stage) {
        use self::messages::InjectFault;
        match stage {
            Stage::Ingester => self.ingester.addr().do_send(InjectFault),
            Stage::Analyzer => self.analyzer.addr().do_send(InjectFault),
            Stage::Store => self.ingest.store.inject_fault(),
            Stage::DeadLetters => self.ingest.lose_next_dead_letter_reply(),
        }
    }
}

/// [`messages::Stop`] stops these stages.
macro_rules! stop_on_request {
    ($($actor:ty),+) => {$(
        impl actix::Handler<messages::Stop> for $actor {
            type Result = ();

            fn handle(&mut self, _: messages::Stop, ctx: &mut Self::Context) {
                actix::ActorContext::stop(ctx);
            }
        }
    )+};
}

stop_on_request!(
    Retention,
    GroupMonitor,
    alerter::Alerter,
    webhooks::Deliverer,
    aggregator::Aggregator,
    TopicWatcher,
    Retagger,
    relevance::RelevanceLearner,
    calibration::Calibrator,
    search_indexer::SearchIndexer
);

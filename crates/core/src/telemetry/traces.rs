//! OpenTelemetry traces over OTLP/HTTP: every HTTP request as a server span, and every post's
//! path through the pipeline as a `post` span with one child per stage (`read`, `analyse`,
//! `store`, `acknowledge`, `publish`), the stream entry id and the request id as attributes.
//!
//! Stages work on batches, so stage spans are recorded after the fact with the batch's own
//! start and end times, one set per sampled post: nothing is carried across actors but the
//! post spans of a batch ([`BatchTrace`]), and nothing at all is done while traces are off.
//! A post continues the trace named by its stream entry's `traceparent` field, which the HTTP
//! intake writes from its request span, so one trace shows a request and the posts it sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider,
};
use opentelemetry_sdk::Resource;

use crate::config::TraceSettings;
use crate::models::text::prefix_bytes;
use crate::telemetry::causes::causes;

/// The HTTP header and the stream entry field that name a caller's trace (W3C Trace Context).
pub const TRACEPARENT: &str = "traceparent";
/// Vendor state that travels with [`TRACEPARENT`].
pub const TRACESTATE: &str = "tracestate";
/// Longest `tracestate` copied into stream entries: what W3C Trace Context asks every
/// vendor to carry at least.
pub const MAX_TRACESTATE_BYTES: usize = 512;

/// Longest wait for one export request to the collector.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the last spans to be sent at shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The process's tracer, or nothing when traces are off. Cheap to clone.
#[derive(Clone, Default)]
pub struct Traces(Option<Arc<Exporting>>);

struct Exporting {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    follow_incoming: bool,
    /// Attributes every post span carries: where its entry was read from.
    stream: KeyValue,
    group: KeyValue,
}

/// Where the pipeline reads (for the post spans' messaging attributes).
pub struct Source<'a> {
    pub stream: &'a str,
    pub group: &'a str,
    /// This process's consumer name, also its `service.instance.id`.
    pub consumer: &'a str,
}

impl Traces {
    /// Starts exporting to `settings.otlp_endpoint`, or returns traces that are off when it is
    /// empty. Fails on an endpoint that is not an http(s) URL or a ratio outside 0 to 1.
    pub fn start(settings: &TraceSettings, source: Source<'_>) -> anyhow::Result<Traces> {
        let base = settings.otlp_endpoint.trim();
        if base.is_empty() {
            return Ok(Traces(None));
        }
        let ratio = settings.sample_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            anyhow::bail!("traces.sample_ratio must be between 0 and 1, not {ratio}");
        }
        let url = url::Url::parse(base)
            .with_context(|| format!("traces.otlp_endpoint {base:?} is not a URL"))?;
        let endpoint = format!("{}/v1/traces", base.trim_end_matches('/'));
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            anyhow::bail!("traces.otlp_endpoint must be an http:// or https:// URL, not {base:?}");
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .context("building the OTLP span exporter")?;
        let batching = BatchConfigBuilder::default()
            .with_max_queue_size(settings.max_queue_spans.max(1))
            .with_scheduled_delay(Duration::from_millis(settings.export_interval_ms.max(1)))
            .build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batching)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                ratio,
            ))))
            .with_resource(resource(source.consumer))
            .build();
        let tracer = provider.tracer("pulse");
        tracing::info!(%endpoint, ratio, follow_incoming = settings.follow_incoming, "exporting traces");
        Ok(Traces(Some(Arc::new(Exporting {
            provider,
            tracer,
            follow_incoming: settings.follow_incoming,
            stream: KeyValue::new("messaging.destination.name", source.stream.to_string()),
            group: KeyValue::new("messaging.consumer.group.name", source.group.to_string()),
        }))))
    }

    /// Whether spans are exported.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Sends the spans still held and stops exporting (blocking work runs off the runtime).
    pub async fn shutdown(&self) {
        let Some(exporting) = self.0.clone() else {
            return;
        };
        let flushed = tokio::task::spawn_blocking(move || {
            exporting.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        })
        .await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %causes(&e), "the last spans may not have reached the collector");
        }
    }

    /// Starts the server span of an HTTP request, under the caller's trace when it names one
    /// and `follow_incoming` is on. `route` is the matched pattern (never the raw path, which
    /// would make every post id a span name of its own).
    pub fn request(&self, request: HttpRequest<'_>) -> Option<RequestSpan> {
        let exporting = self.0.as_ref()?;
        let parent = exporting.parent(request.headers);
        let route = request.route.unwrap_or("unmatched");
        let mut attributes = vec![
            KeyValue::new("http.request.method", request.method.to_string()),
            KeyValue::new("url.path", prefix_bytes(request.path, 512).to_string()),
            KeyValue::new("pulse.request_id", request.request_id.to_string()),
        ];
        if let Some(route) = request.route {
            attributes.push(KeyValue::new("http.route", route.to_string()));
        }
        let span = exporting
            .tracer
            .span_builder(format!("{} {route}", request.method))
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&exporting.tracer, &parent);
        Some(RequestSpan {
            context: parent.with_span(span),
        })
    }

    /// Starts the `post` span of each entry of a batch read from the stream (with its `read`
    /// child, from when the read began or the entry arrived, whichever is later, to now); the
    /// other stages are added as the batch goes through them. None when traces are off or no
    /// entry is sampled.
    pub fn batch<'a>(
        &self,
        entries: impl IntoIterator<Item = Entry<'a>>,
        read_started: SystemTime,
    ) -> Option<Arc<BatchTrace>> {
        let exporting = self.0.as_ref()?;
        let dispatched = SystemTime::now();
        let tracer = &exporting.tracer;
        let mut posts = HashMap::new();
        for entry in entries {
            let parent = exporting.parent(&EntryFields(entry.fields));
            // From the XADD when the entry carries its time: the wait in the stream is part of
            // the post's path. (A clock ahead of Redis's cannot start it after the read.)
            let arrived = entry
                .added_at_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
                .map_or(read_started, |at| at.min(dispatched));
            let mut span = tracer
                .span_builder("post")
                .with_kind(SpanKind::Consumer)
                .with_start_time(arrived)
                .start_with_context(tracer, &parent);
            // Attributes only on sampled spans: most entries are not, and their cost counts.
            if !span.span_context().is_sampled() {
                continue;
            }
            span.set_attributes([
                KeyValue::new("messaging.system", "redis"),
                exporting.stream.clone(),
                exporting.group.clone(),
                KeyValue::new("messaging.message.id", entry.id.to_string()),
                KeyValue::new("pulse.deliveries", entry.deliveries as i64),
            ]);
            let context = parent.with_span(span);
            stage_span(
                tracer,
                &context,
                "read",
                arrived.max(read_started),
                dispatched,
                Vec::new(),
            );
            posts.insert(entry.id.to_string(), context);
        }
        (!posts.is_empty()).then(|| {
            Arc::new(BatchTrace {
                tracer: tracer.clone(),
                posts,
            })
        })
    }

    fn exporting(&self) -> Option<&Exporting> {
        self.0.as_deref()
    }

    /// The `traceparent` (and `tracestate`, up to [`MAX_TRACESTATE_BYTES`]) a producer writes
    /// into the entries it appends on behalf of `request`, so their posts continue its trace.
    /// The caller chose the request's `tracestate`: a longer one is left out, or a 100 KiB
    /// header would be copied into each of a request's thousand entries, and an event accepted
    /// at its size would be read back too large and dead-lettered.
    pub fn entry_fields(&self, request: Option<&RequestSpan>) -> Vec<(&'static str, String)> {
        let (Some(_), Some(request)) = (self.exporting(), request) else {
            return Vec::new();
        };
        if !request.context.span().span_context().is_sampled() {
            return Vec::new();
        }
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&request.context, &mut carrier);
        [TRACEPARENT, TRACESTATE]
            .into_iter()
            .filter_map(|name| {
                let value = carrier.remove(name).filter(|v| !v.is_empty())?;
                (name != TRACESTATE || value.len() <= MAX_TRACESTATE_BYTES).then_some((name, value))
            })
            .collect()
    }
}

impl Exporting {
    fn parent(&self, carrier: &dyn Extractor) -> Context {
        if self.follow_incoming {
            TraceContextPropagator::new().extract(carrier)
        } else {
            Context::new()
        }
    }
}

/// A stream entry as the trace of its post needs it.
pub struct Entry<'a> {
    /// The stream entry id.
    pub id: &'a str,
    /// Its XADD time in Unix milliseconds, when its id carries one (for an id ahead of the
    /// clock, when it was first seen: [`crate::streams::entry::RawEntry::arrived_at_ms`]).
    pub added_at_ms: Option<i64>,
    pub deliveries: u64,
    /// The entry's fields, where a producer's `traceparent` is.
    pub fields: &'a [(String, Vec<u8>)],
}

/// What the server span of a request is made of.
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub route: Option<&'a str>,
    pub path: &'a str,
    pub request_id: &'a str,
    pub headers: &'a dyn Extractor,
}

/// An HTTP request's span, open until the response is ready.
#[derive(Clone)]
pub struct RequestSpan {
    context: Context,
}

impl RequestSpan {
    /// Ends the span with the response's status (an error from 500 on).
    pub fn end(&self, status: u16) {
        let span = self.context.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        span.end();
    }
}

/// The sampled posts of one batch read from the stream, by entry id.
pub struct BatchTrace {
    tracer: SdkTracer,
    posts: HashMap<String, Context>,
}

impl BatchTrace {
    /// Records a stage the entries `ids` went through together from `start` to `end`, with
    /// the attributes `each` gives each entry.
    pub fn stage<'a, F>(
        &self,
        name: &'static str,
        ids: impl IntoIterator<Item = &'a str>,
        start: SystemTime,
        end: SystemTime,
        mut each: F,
    ) where
        F: FnMut(&str) -> Vec<KeyValue>,
    {
        for id in ids {
            if let Some(post) = self.posts.get(id) {
                stage_span(&self.tracer, post, name, start, end, each(id));
            }
        }
    }

    /// Marks the entry `id` as dead-lettered for `reason`.
    pub fn dead_lettered(&self, id: &str, reason: &str, class: &'static str) {
        if let Some(post) = self.posts.get(id) {
            let span = post.span();
            span.set_attribute(KeyValue::new("pulse.dead_letter.reason", class));
            span.set_status(Status::error(reason.to_string()));
        }
    }

    /// Adds attributes to the `post` span of the entry `id`.
    pub fn describe(&self, id: &str, attributes: Vec<KeyValue>) {
        if let Some(post) = self.posts.get(id) {
            post.span().set_attributes(attributes);
        }
    }

    /// Ends the `post` spans of `ids` at `at` (their `publish` span may still follow).
    pub fn end<'a>(&self, ids: impl IntoIterator<Item = &'a str>, at: SystemTime) {
        for id in ids {
            if let Some(post) = self.posts.get(id) {
                post.span().end_with_timestamp(at);
            }
        }
    }
}

fn stage_span(
    tracer: &SdkTracer,
    parent: &Context,
    name: &'static str,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
) {
    let mut span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Internal)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(tracer, parent);
    span.end_with_timestamp(end.max(start));
}

fn resource(instance: &str) -> Resource {
    let mut builder = Resource::builder()
        .with_attribute(KeyValue::new("service.instance.id", instance.to_string()))
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    // The operator's name for the service wins over ours.
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    if !named {
        builder = builder.with_service_name("pulse");
    }
    builder.build()
}

/// A stream entry's fields read as a trace carrier.
struct EntryFields<'a>(&'a [(String, Vec<u8>)]);

impl Extractor for EntryFields<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_endpoint_is_off_and_a_bad_one_is_refused() {
        let source = || Source {
            stream: "s",
            group: "g",
            consumer: "c",
        };
        let off = Traces::start(&TraceSettings::default(), source()).unwrap();
        assert!(!off.enabled());
        assert!(off.batch([], SystemTime::now()).is_none());
        for bad in ["localhost:4318", "ftp://collector:4318", "http://"] {
            let settings = TraceSettings {
                otlp_endpoint: bad.into(),
                ..TraceSettings::default()
            };
            assert!(
                Traces::start(&settings, source()).is_err(),
                "{bad} accepted"
            );
        }
        let settings = TraceSettings {
            otlp_endpoint: "http://127.0.0.1:4318".into(),
            sample_ratio: 1.5,
            ..TraceSettings::default()
        };
        assert!(Traces::start(&settings, source()).is_err());
    }

    /// A request's `tracestate` went into each of its entries whatever its length: a 100 KiB
    /// header made every accepted event too large to read back.
    #[test]
    fn a_long_tracestate_is_not_copied_into_entries() {
        let settings = TraceSettings {
            otlp_endpoint: "http://127.0.0.1:9".into(),
            sample_ratio: 1.0,
            follow_incoming: true,
            ..TraceSettings::default()
        };
        let source = Source {
            stream: "s",
            group: "g",
            consumer: "c",
        };
        let traces = Traces::start(&settings, source).unwrap();
        let fields_for = |state: String| {
            let headers: HashMap<String, String> = HashMap::from([
                (
                    TRACEPARENT.to_string(),
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
                ),
                (TRACESTATE.to_string(), state),
            ]);
            let request = traces.request(HttpRequest {
                method: "POST",
                route: Some("/api/v1/events"),
                path: "/api/v1/events",
                request_id: "r",
                headers: &headers,
            });
            traces.entry_fields(request.as_ref())
        };
        let short = fields_for("vendor=abc".to_string());
        assert!(
            short
                .iter()
                .any(|(n, v)| *n == TRACESTATE && v == "vendor=abc"),
            "{short:?}"
        );
        let members: Vec<String> = (0..30)
            .map(|i| format!("k{i}={}", "x".repeat(250)))
            .collect();
        let long = fields_for(members.join(","));
        assert!(long.iter().any(|(n, _)| *n == TRACEPARENT), "{long:?}");
        assert!(
            long.iter().all(|(n, _)| *n != TRACESTATE),
            "the long state was copied"
        );
    }

    #[test]
    fn an_entry_field_names_its_trace() {
        let fields = vec![
            ("event".to_string(), b"{}".to_vec()),
            (
                "traceparent".to_string(),
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec(),
            ),
        ];
        let context = TraceContextPropagator::new().extract(&EntryFields(&fields));
        let span = context.span();
        let remote = span.span_context();
        assert!(remote.is_valid() && remote.is_remote() && remote.is_sampled());
        assert_eq!(
            remote.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let junk = vec![("traceparent".to_string(), b"00-zz-\xff".to_vec())];
        let context = TraceContextPropagator::new().extract(&EntryFields(&junk));
        assert!(!context.span().span_context().is_valid());
    }
}

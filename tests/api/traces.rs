//! Traces against a running Pulse: an OTLP/HTTP receiver in the test stands for the collector,
//! decodes what Pulse exports with the protocol's own message types, and the tests follow one
//! request and its post through every stage.

use crate::common;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::app::{spawn_app_with, TestApp};
use common::http_standin::{read_request, respond};
use common::*;
use futures::{SinkExt, StreamExt};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use pulse::models::hex::hex;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// The stages of a post's path, in order.
const STAGES: [&str; 5] = ["read", "analyse", "store", "acknowledge", "publish"];

/// A span as received, with the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
struct Received {
    span: Span,
    service: String,
}

impl Received {
    fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    fn id(&self) -> String {
        hex(&self.span.span_id)
    }

    fn parent(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    fn attribute(&self, key: &str) -> Option<String> {
        attribute(&self.span.attributes, key)
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|a| a.key == key)?.value.as_ref()?;
    Some(match value.value.as_ref()? {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// An OTLP/HTTP trace receiver on a loopback port: what a collector is to Pulse.
struct Receiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<Received>>>,
    /// Bodies that were not a valid export request.
    malformed: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let spans: Arc<Mutex<Vec<Received>>> = Default::default();
        let malformed: Arc<Mutex<Vec<String>>> = Default::default();
        let (into, bad) = (spans.clone(), malformed.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let request = read_request(&mut tcp).await;
                let decoded = (request.method == "POST"
                    && request.route() == "/v1/traces"
                    && request.header("content-type") == "application/x-protobuf")
                    .then(|| ExportTraceServiceRequest::decode(request.body.as_slice()).ok())
                    .flatten();
                let Some(export) = decoded else {
                    bad.lock().unwrap().push(format!(
                        "{} {} ({})",
                        request.method,
                        request.path,
                        request.header("content-type")
                    ));
                    respond(&mut tcp, "400 Bad Request", &[], "").await;
                    continue;
                };
                let mut received = Vec::new();
                for resource in export.resource_spans {
                    let service = resource
                        .resource
                        .as_ref()
                        .and_then(|r| attribute(&r.attributes, "service.name"))
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        received.extend(scope.spans.into_iter().map(|span| Received {
                            span,
                            service: service.clone(),
                        }));
                    }
                }
                into.lock().unwrap().extend(received);
                respond(
                    &mut tcp,
                    "200 OK",
                    &[("Content-Type", "application/x-protobuf")],
                    "",
                )
                .await;
            }
        });
        Receiver {
            endpoint,
            spans,
            malformed,
            task,
        }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    fn of_trace(&self, trace_id: &str) -> Vec<Received> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id() == trace_id)
            .collect()
    }

    /// Waits until the trace `trace_id` holds a span of every name in `names`.
    async fn wait_for(&self, trace_id: &str, names: &[&str]) -> Vec<Received> {
        let complete = wait_until(Duration::from_secs(30), || async {
            let spans = self.of_trace(trace_id);
            names
                .iter()
                .all(|n| spans.iter().any(|s| s.span.name == *n))
        })
        .await;
        let spans = self.of_trace(trace_id);
        assert!(
            complete,
            "trace {trace_id} lacks some of {names:?}: {:?}",
            spans.iter().map(|s| &s.span.name).collect::<Vec<_>>()
        );
        spans
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn traced_app(receiver: &Receiver, sample_ratio: f64) -> TestApp {
    let env = TestEnv::new().await;
    let mut settings = env.settings();
    settings.traces.otlp_endpoint = receiver.endpoint.clone();
    settings.traces.sample_ratio = sample_ratio;
    settings.traces.export_interval_ms = 100;
    spawn_app_with(env, settings).await
}

fn one<'a>(spans: &'a [Received], name: &str) -> &'a Received {
    let found: Vec<&Received> = spans.iter().filter(|s| s.span.name == name).collect();
    assert_eq!(found.len(), 1, "spans named {name}: {found:?}");
    found[0]
}

#[actix_rt::test]
async fn one_post_is_followed_from_its_request_through_every_stage() {
    let receiver = Receiver::start().await;
    let app = traced_app(&receiver, 1.0).await;
    // A live subscriber, so the post is really published.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", app.app.address()))
        .await
        .expect("a WebSocket session");
    let subscribe = serde_json::json!({"type": "subscribe", "topics": ["posts"]});
    ws.send(Message::text(subscribe.to_string()))
        .await
        .expect("subscribe");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("an answer to subscribe");
        if let Some(Ok(Message::Text(text))) = frame {
            let ack: Value = serde_json::from_str(text.as_str()).unwrap();
            if ack["type"] == "subscribed" {
                break;
            }
        }
    }

    // The caller's own trace: Pulse's spans must join it.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let post_id = unique("traced");
    let response = app
        .http
        .post(app.url("/api/v1/events"))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .header("x-request-id", "trace-test-request")
        .header("content-type", "application/json")
        .body(post_json(&post_id, "what a lovely launch, thank you all"))
        .send()
        .await
        .expect("the intake answers");
    assert_eq!(response.status().as_u16(), 202);
    let accepted: Value = response.json().await.unwrap();
    let entry_id = accepted["ids"][0]
        .as_str()
        .expect("an entry id")
        .to_string();

    let mut names = vec!["POST /api/v1/events", "post"];
    names.extend(STAGES);
    let spans = receiver.wait_for(caller_trace, &names).await;
    assert!(spans.iter().all(|s| s.service == "pulse"), "{spans:?}");

    let request = one(&spans, "POST /api/v1/events");
    assert_eq!(
        request.parent(),
        caller_span,
        "the request joins the caller's trace"
    );
    assert_eq!(request.span.kind, SpanKind::Server as i32);
    assert_eq!(
        request.attribute("pulse.request_id").as_deref(),
        Some("trace-test-request")
    );
    assert_eq!(
        request.attribute("http.route").as_deref(),
        Some("/api/v1/events")
    );
    assert_eq!(
        request.attribute("http.response.status_code").as_deref(),
        Some("202")
    );

    let post = one(&spans, "post");
    assert_eq!(
        post.parent(),
        request.id(),
        "the post sits under its request"
    );
    assert_eq!(post.span.kind, SpanKind::Consumer as i32);
    assert_eq!(
        post.attribute("messaging.message.id").as_deref(),
        Some(entry_id.as_str())
    );
    assert_eq!(
        post.attribute("pulse.post.id").as_deref(),
        Some(post_id.as_str())
    );
    assert_eq!(
        post.attribute("messaging.destination.name"),
        Some(app.env.stream.clone())
    );

    // Every stage is a child of the post, in pipeline order.
    let mut previous_end = post.span.start_time_unix_nano;
    for name in STAGES {
        let stage = one(&spans, name);
        assert_eq!(stage.parent(), post.id(), "{name} is not under the post");
        assert!(
            stage.span.start_time_unix_nano >= previous_end,
            "{name} starts before the stage ahead of it ended"
        );
        assert!(stage.span.end_time_unix_nano >= stage.span.start_time_unix_nano);
        previous_end = stage.span.end_time_unix_nano;
    }
    let analyse = one(&spans, "analyse");
    assert!(
        analyse
            .attribute("pulse.model")
            .is_some_and(|m| !m.is_empty()),
        "{analyse:?}"
    );
    let publish = one(&spans, "publish");
    assert_eq!(
        publish.attribute("pulse.publish.new").as_deref(),
        Some("true")
    );
    assert_eq!(
        publish
            .attribute("pulse.publish.local_subscribers")
            .as_deref(),
        Some("true")
    );
    assert!(receiver.malformed.lock().unwrap().is_empty());
    let _ = ws.close(None).await;
    app.app.shutdown().await;
}

#[actix_rt::test]
async fn a_producers_trace_is_followed_at_any_ratio_and_dead_letters_are_errors() {
    let receiver = Receiver::start().await;
    // Nothing of Pulse's own is sampled: only what a producer's sampled trace names.
    let app = traced_app(&receiver, 0.0).await;
    let redis = app.redis().await;
    let stream = app.env.stream.clone();
    let xadd = |fields: Vec<(&'static str, String)>| {
        let redis = redis.clone();
        let stream = stream.clone();
        async move {
            use fred::prelude::*;
            let id: String = redis
                .xadd(&stream, false, None::<()>, "*", fields)
                .await
                .expect("XADD");
            id
        }
    };
    let good_trace = "0af7651916cd43dd8448eb211c80319c";
    let bad_trace = "1bf7651916cd43dd8448eb211c80319d";
    let parent = |trace: &str| format!("00-{trace}-b7ad6b7169203331-01");
    let traced = xadd(vec![
        ("event", post_json(&unique("followed"), "good morning")),
        ("traceparent", parent(good_trace)),
    ])
    .await;
    let untraced = xadd(vec![(
        "event",
        post_json(&unique("unsampled"), "good evening"),
    )])
    .await;
    let malformed = xadd(vec![
        ("event", "{\"type\": \"post\", \"id\": ".to_string()),
        ("traceparent", parent(bad_trace)),
    ])
    .await;

    let mut names = vec!["post"];
    names.extend(STAGES);
    let spans = receiver.wait_for(good_trace, &names).await;
    let post = one(&spans, "post");
    assert_eq!(post.parent(), "b7ad6b7169203331");
    assert_eq!(post.attribute("messaging.message.id"), Some(traced.clone()));

    let dead = receiver
        .wait_for(bad_trace, &["post", "read", "analyse", "acknowledge"])
        .await;
    let post = one(&dead, "post");
    assert_eq!(
        post.attribute("messaging.message.id"),
        Some(malformed.clone())
    );
    assert_eq!(
        post.attribute("pulse.dead_letter.reason").as_deref(),
        Some("malformed")
    );
    let status = post.span.status.clone().unwrap_or_default();
    assert_eq!(status.code, StatusCode::Error as i32, "{status:?}");
    assert!(!dead.iter().any(|s| s.span.name == "store"));

    // The unsampled post went through too, and left no span (shutdown sends what is held).
    assert!(app.wait_for_posts(2, Duration::from_secs(30)).await);
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 200);
    app.app.shutdown().await;
    let spans = receiver.spans();
    let by_entry: HashMap<String, usize> = spans
        .iter()
        .filter_map(|s| s.attribute("messaging.message.id"))
        .fold(HashMap::new(), |mut counts, id| {
            *counts.entry(id).or_default() += 1;
            counts
        });
    assert_eq!(
        by_entry.get(&untraced),
        None,
        "an unsampled post was exported"
    );
    assert_eq!(by_entry.get(&traced), Some(&1));
    assert!(
        !spans.iter().any(|s| s.span.name.starts_with("GET ")),
        "a request was sampled at ratio 0"
    );
    assert!(receiver.malformed.lock().unwrap().is_empty());
}

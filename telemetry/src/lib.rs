//! What a process tells its operators: logs, traces and metrics.
//!
//! - [`init`] installs the log subscriber (`QUERYGPT_LOG` filter, `QUERYGPT_LOG_FORMAT=json`) and, when
//!   `telemetry.otlp_endpoint` is set, an OpenTelemetry layer that exports every span over OTLP/HTTP.
//! - [`request_trace`] and [`job_span`] carry a question's W3C trace context from the HTTP request on its API node,
//!   through the job's `traceparent` bus header, to the worker's spans: one trace per question, across processes.
//!   Without an exporter the trace id still travels, and both sides log it.
//! - [`prometheus`] is the process's Prometheus recorder; the `metrics` macros anywhere in the process feed it.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider};
use querygpt_common::config::TelemetrySettings;
use querygpt_common::telemetry::{self as names, TraceParent};
use std::sync::OnceLock;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Bucket bounds (seconds) of every latency histogram: 0.5 ms to 60 s, since a stage runs from a cache hit to a
/// slow model.
const LATENCY_BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Keeps the span exporter alive; dropping it flushes the spans not sent yet.
#[must_use = "dropping the guard stops the span exporter"]
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("could not flush the last spans: {e}");
        }
    }
}

/// Installs logging (and the OTLP span exporter when configured) for the whole process. Call it once, before the
/// async runtime starts: the exporter sends from a thread of its own.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_env("QUERYGPT_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("QUERYGPT_LOG_FORMAT").is_ok_and(|f| f == "json");
    let logs = match json {
        true => tracing_subscriber::fmt::layer().json().boxed(),
        false => tracing_subscriber::fmt::layer().boxed(),
    };
    let provider = settings.otlp_endpoint.as_deref().map(|endpoint| span_exporter(endpoint, settings)).transpose()?;
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("querygpt")).with_filter(EnvFilter::new("info"))
    });
    tracing_subscriber::registry().with(logs.with_filter(filter)).with(traces).try_init()?;
    if let Some(endpoint) = &settings.otlp_endpoint {
        tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
    }
    Ok(TelemetryGuard { provider })
}

fn span_exporter(
    endpoint: &str,
    settings: &TelemetrySettings,
) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    // The endpoint names the collector, as OTEL_EXPORTER_OTLP_ENDPOINT does; spans go to its `/v1/traces`.
    let url = match endpoint.trim_end_matches('/') {
        full if full.ends_with("/v1/traces") => full.to_owned(),
        base => format!("{base}/v1/traces"),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(url).build()?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(settings.service_name.clone()).build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The span of one HTTP request, a child of the client's `traceparent` when it sent a valid one. The parent must be
/// set before the span is first entered, hence here, where the span is made.
pub fn http_span(method: &dyn std::fmt::Display, path: &str, traceparent: Option<&str>) -> Span {
    let span = tracing::info_span!("request", %method, path);
    if let Some(parent) = traceparent.and_then(TraceParent::parse) {
        set_remote_parent(&span, parent);
    }
    span
}

/// The trace context a request's work continues (the job on a worker): `span`'s own ids when spans are exported
/// (the request span of [`http_span`]); else ids made here, in the client's trace when it sent a `traceparent`.
pub fn request_trace(span: &Span, incoming: Option<&str>) -> TraceParent {
    span_trace(span).unwrap_or_else(|| match incoming.and_then(TraceParent::parse) {
        Some(parent) => parent.child(TraceParent::new_root().parent_id),
        None => TraceParent::new_root(),
    })
}

/// The span of one delivery of a job, a child of the trace the job carries.
pub fn job_span(job_id: &dyn std::fmt::Display, attempt: u64, trace: Option<TraceParent>) -> Span {
    let trace_id = trace.map(|t| t.trace_id_hex()).unwrap_or_default();
    let span = tracing::info_span!("job", %job_id, attempt, %trace_id);
    if let Some(parent) = trace {
        set_remote_parent(&span, parent);
    }
    span
}

fn set_remote_parent(span: &Span, parent: TraceParent) {
    let flags = if parent.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    let context = SpanContext::new(
        TraceId::from_bytes(parent.trace_id.to_be_bytes()),
        SpanId::from_bytes(parent.parent_id.to_be_bytes()),
        flags,
        true,
        TraceState::default(),
    );
    // Fails only for a span that is not recorded by the OpenTelemetry layer (no exporter): nothing to join then.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(context));
}

/// `span`'s own ids, when the OpenTelemetry layer records it.
fn span_trace(span: &Span) -> Option<TraceParent> {
    let context = span.context();
    let span_ref = context.span();
    let ids = span_ref.span_context();
    ids.is_valid().then(|| TraceParent {
        trace_id: u128::from_be_bytes(ids.trace_id().to_bytes()),
        parent_id: u64::from_be_bytes(ids.span_id().to_bytes()),
        sampled: ids.is_sampled(),
    })
}

/// The process's Prometheus recorder, installed on first use. Every part of the process records into it through
/// the `metrics` macros; [`PrometheusHandle::render`] gives the text exposition format.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for histogram in names::HISTOGRAMS {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(histogram.to_owned()), &LATENCY_BUCKETS)
                .expect("the bucket list is not empty");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed: /metrics shows nothing of this process");
        }
        describe();
        handle
    })
}

/// Help texts for the exposition: the metric names and their meaning are listed in `querygpt_common::telemetry`.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(names::HTTP_REQUESTS, "HTTP requests by method, route and status");
    describe_histogram!(names::HTTP_DURATION, Unit::Seconds, "Time to the response head by method, route, status");
    describe_gauge!(names::SSE_STREAMS_OPEN, "SSE chat streams open on this API node");
    describe_counter!(names::JOBS_SUBMITTED, "Questions this API node queued");
    describe_counter!(names::JOBS_REFUSED, "Questions refused before queueing, by reason");
    describe_gauge!(names::JOBS_RUNNING, "Jobs this worker is running");
    describe_counter!(names::JOBS_SETTLED, "Jobs this worker settled, by outcome (acked, retried, dead_lettered)");
    describe_counter!(names::JOBS_REDELIVERED, "Deliveries of a job after its first");
    describe_gauge!(names::JOB_QUEUE_PENDING, "Jobs queued and not yet delivered to a worker");
    describe_gauge!(names::JOB_QUEUE_UNACKED, "Jobs delivered to a worker and not acknowledged yet");
    describe_histogram!(names::STAGE_DURATION, Unit::Seconds, "Time of one stage of a job (llm, validation, ...)");
    describe_counter!(names::LLM_TOKENS, "LLM tokens by model and kind (prompt, completion)");
    describe_histogram!(names::POOL_WAIT, Unit::Seconds, "Wait for a pooled resource (store, target, llm)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_the_clients_trace_id_goes_on() {
        let span = tracing::info_span!("request");
        let client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = request_trace(&span, Some(client));
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(trace.parent_id, 0x00f0_67aa_0ba9_02b7, "the job's parent is this node, not the client");

        let fresh = request_trace(&span, Some("garbage"));
        assert_ne!(fresh.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn the_recorder_renders_what_is_recorded() {
        let handle = prometheus();
        metrics::counter!(names::JOBS_SUBMITTED).increment(2);
        metrics::histogram!(names::STAGE_DURATION, "stage" => "llm").record(0.003);
        let text = handle.render();
        assert!(text.contains("querygpt_jobs_submitted_total"), "{text}");
        assert!(text.contains("querygpt_stage_duration_seconds_bucket{stage=\"llm\",le=\"0.005\"} 1"), "{text}");
    }
}

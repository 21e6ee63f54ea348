//! `GET /metrics`: Prometheus text for the whole replica.
//!
//! Counters and histograms are recorded where things happen (the worker, the scheduler, the
//! JsonRPC endpoint) through the `metrics` facade; gauges that describe the present (queue
//! lengths, which components run) are read fresh from the engine at each scrape.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Buckets for latencies from a fast API call to a long scraping job, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0,
];

/// The process-wide recorder. The `metrics` facade has one global recorder per process, so
/// every server started in a process (tests start many) shares it.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed in this process")
    })
}

/// Records one API call: its count by outcome and its latency.
pub fn record_invocation(subsystem: &'static str, method: &str, started: Instant, succeeded: bool) {
    let outcome = if succeeded { "success" } else { "error" };
    let method = method.to_owned();
    metrics::counter!("sneakpeek_invocations_total", "subsystem" => subsystem, "method" => method.clone(), "type" => outcome).increment(1);
    metrics::histogram!("sneakpeek_latency_seconds", "subsystem" => subsystem, "method" => method)
        .record(started.elapsed().as_secs_f64());
}

pub async fn endpoint(State(state): State<AppState>) -> Response {
    match state.engine.queue_lengths().await {
        Ok(lengths) => {
            for (priority, length) in lengths {
                metrics::gauge!("sneakpeek_queue_length", "priority" => priority.name())
                    .set(length as f64);
            }
        }
        Err(error) => {
            tracing::warn!(error = %error.report(), "metrics: could not read the queue length");
            return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response();
        }
    }
    let status = state.engine.status();
    let scheduler = status.scheduler.unwrap_or_default();
    metrics::gauge!("sneakpeek_replicas", "type" => "scheduler")
        .set(f64::from(u8::from(status.scheduler.is_some())));
    metrics::gauge!("sneakpeek_replicas", "type" => "active_scheduler")
        .set(f64::from(u8::from(scheduler.leading)));
    metrics::gauge!("sneakpeek_replicas", "type" => "worker")
        .set(f64::from(u8::from(status.worker.is_some())));
    metrics::gauge!("sneakpeek_active_jobs")
        .set(status.worker.map_or(0, |worker| worker.running_jobs) as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        recorder().render(),
    )
        .into_response()
}

//! The API's own metrics for `/metrics`: requests by route template and
//! status, their latency as a histogram by route, error answers by their
//! stable code, and the build. Routes are the router's templates
//! (`/v1/subjects/{id}`), never the paths asked, so the label sets stay
//! bounded whatever callers send.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// The stable code of an error answer, set by the API on its response so
/// that the metrics count refusals by reason.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

#[derive(Default)]
struct Latency {
    /// Requests at or under each bucket's bound (not cumulative here).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
struct Counts {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Latency>,
    errors: BTreeMap<&'static str, u64>,
}

/// The API's request counters, shared by its layers and `/metrics`.
#[derive(Clone, Default)]
pub struct HttpMetrics(Arc<Mutex<Counts>>);

impl HttpMetrics {
    fn record(&self, route: String, status: u16, seconds: f64, error: Option<&'static str>) {
        let Ok(mut counts) = self.0.lock() else {
            return;
        };
        *counts.requests.entry((route.clone(), status)).or_default() += 1;
        let latency = counts.latency.entry(route).or_default();
        latency.count += 1;
        latency.sum_seconds += seconds;
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            latency.buckets[bucket] += 1;
        }
        if let Some(code) = error {
            *counts.errors.entry(code).or_default() += 1;
        }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP credence_build_info The running build.\n# TYPE credence_build_info gauge\ncredence_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let Ok(counts) = self.0.lock() else {
            return out;
        };
        let _ = writeln!(
            out,
            "# HELP credence_http_requests_total API requests answered, by route and status.\n# TYPE credence_http_requests_total counter"
        );
        for ((route, status), n) in &counts.requests {
            let _ = writeln!(
                out,
                "credence_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP credence_http_request_duration_seconds Time to answer an API request, by route.\n# TYPE credence_http_request_duration_seconds histogram"
        );
        for (route, latency) in &counts.latency {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(latency.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "credence_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "credence_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\ncredence_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\ncredence_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                latency.count, latency.sum_seconds, latency.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP credence_http_errors_total API error answers, by their stable code.\n# TYPE credence_http_errors_total counter"
        );
        for (code, n) in &counts.errors {
            let _ = writeln!(out, "credence_http_errors_total{{code=\"{code}\"}} {n}");
        }
        out
    }
}

/// The layer that counts every request: its route template (`unmatched`
/// for a path no route takes), status, latency and error code.
pub async fn count(
    axum::extract::State(metrics): axum::extract::State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let error = response.extensions().get::<ErrorCode>().map(|code| code.0);
    metrics.record(
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
        error,
    );
    response
}

//! `GET /metrics`: revkv's metrics (`revkv::METRICS`: conflicts by collection and kind,
//! `update_with` retries, transaction reruns, commit latency, group-commit sizes) in
//! Prometheus's text format, for a scraper. revkv publishes them through the `metrics` facade;
//! this service installs the Prometheus exporter as the process's recorder, once.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use revkv::http::{Caching, HttpError, HttpProblem, PROBLEM_JSON};

use super::Outcome;
use super::reply::Reply;

/// How often the exporter folds its histograms' samples away, scraped or not, so that they
/// do not pile up between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// The exporter, installed as the process's recorder on first use; `None` if another recorder
/// was installed first.
fn exporter() -> Option<&'static PrometheusHandle> {
    static EXPORTER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    EXPORTER
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP);
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Installs the exporter, so that metrics are recorded from the service's start.
pub fn install() {
    exporter();
}

#[utoipa::path(
    get, path = "/metrics", tag = "meta",
    responses(
        (status = 200, description = "revkv's metrics, in Prometheus's text format",
            content_type = "text/plain; version=0.0.4", body = String,
            headers(("Cache-Control" = String, description = "no-store"))),
        (status = 500, description = "The server failed", body = HttpProblem, content_type = PROBLEM_JSON),
    ),
)]
pub async fn metrics() -> Outcome {
    let exporter = exporter().ok_or_else(HttpError::internal)?;
    Ok(Reply::text(StatusCode::OK, exporter.render())
        .with_header(&CONTENT_TYPE, "text/plain; version=0.0.4")
        .with_caching(Caching::NoStore))
}

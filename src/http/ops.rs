//! Endpoints for operators and their tools: liveness, readiness, metrics,
//! version.

use super::handlers::{Answer, App, help, json};
use super::problem::ApiError;
use super::status_page::{self, PageInfo, SequenceStatus};
use crate::sequence::Mode;
use bytes::Bytes;
use hyper::Response;
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

/// How long readiness waits for the store.
const STORE_CHECK: Duration = Duration::from_secs(1);

/// The operator endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// GET /healthz
    Healthz,
    /// GET /readyz
    Readyz,
    /// GET /metrics
    Metrics,
    /// GET /version
    Version,
    /// GET /openapi.json
    OpenApi,
    /// GET /
    StatusPage,
}

impl Op {
    fn path(self) -> &'static str {
        match self {
            Op::Healthz => "/healthz",
            Op::Readyz => "/readyz",
            Op::Metrics => "/metrics",
            Op::Version => "/version",
            Op::OpenApi => "/openapi.json",
            Op::StatusPage => "/",
        }
    }
}

/// Seconds between reloads of the status page.
const PAGE_REFRESH_SECONDS: u32 = 5;

/// Any method on an operator endpoint: GET answers, OPTIONS describes.
pub async fn handle(op: Op, method: Method, app: std::sync::Arc<App>) -> Answer {
    match method {
        Method::GET => match op {
            Op::Healthz => healthz(),
            Op::Readyz => readyz(&app).await,
            Op::Metrics => metrics(&app).await,
            Op::Version => version(),
            Op::OpenApi => json(StatusCode::OK, super::openapi::document(&app).to_string()),
            Op::StatusPage => page(&app).await,
        },
        Method::OPTIONS => help(super::openapi::help(op.path(), &app), "GET, OPTIONS"),
        other => ApiError::MethodNotAllowed {
            method: other.to_string(),
            allow: "GET, OPTIONS",
        }
        .into_response(Some(op.path())),
    }
}

/// GET /: the status page.
async fn page(app: &App) -> Answer {
    let metrics = app.dispenser.metrics();
    let sequences = positions(app)
        .await
        .into_iter()
        .map(|(spec, next, _)| SequenceStatus {
            direction: spec.direction.as_str(),
            mode: spec.mode.as_str(),
            min: spec.min,
            max: spec.max,
            cycle: spec.cycle,
            next,
            range_used: spec.used_fraction(next),
            per_second: metrics.per_second(&spec.name),
            name: spec.name,
        })
        .collect();
    let info = PageInfo {
        version: crate::VERSION.to_owned(),
        store: app.store_description.clone(),
        refresh_seconds: PAGE_REFRESH_SECONDS,
        sequences,
    };
    let mut response = Response::new(Bytes::from(status_page::render(&info)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // It reloads itself: a cached copy would be stale at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page needs nothing from anywhere: say so to the browser.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

/// GET /healthz: the process is alive and answering.
pub fn healthz() -> Answer {
    json(StatusCode::OK, json!({ "status": "ok" }).to_string())
}

/// GET /version.
pub fn version() -> Answer {
    json(
        StatusCode::OK,
        json!({
            "name": "pez",
            "version": env!("CARGO_PKG_VERSION"),
            "git": env!("PEZ_GIT_DESCRIBE"),
            "full": crate::VERSION,
        })
        .to_string(),
    )
}

/// GET /readyz: ready when the store answers and every leased sequence has
/// numbers on hand; 503 with the reasons otherwise.
pub async fn readyz(app: &App) -> Answer {
    let mut reasons = Vec::new();
    match tokio::time::timeout(STORE_CHECK, app.dispenser.store_answers()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            log::warn!("readiness: {e}");
            reasons.push("the store does not answer".to_owned());
        }
        Err(_) => reasons.push(format!("the store did not answer within {STORE_CHECK:?}")),
    }
    let local = app.dispenser.local();
    for (spec, _, on_hand) in &local {
        if spec.mode == Mode::Leased && *on_hand == 0 {
            reasons.push(format!(
                "sequence {} has no leased numbers on hand",
                spec.name
            ));
        }
    }
    if reasons.is_empty() {
        return json(
            StatusCode::OK,
            json!({ "status": "ready", "sequences": local.len() }).to_string(),
        );
    }
    ApiError::NotReady { reasons }.into_response(Some("/readyz"))
}

/// Each sequence with the next number it issues and the numbers on hand:
/// what this instance holds, completed with where the store stands for the
/// sequences it holds nothing of (strict ones). If the store is slow or
/// down, this instance's own view will do.
async fn positions(app: &App) -> Vec<(crate::sequence::SequenceSpec, Option<i64>, u64)> {
    let stored: Vec<(String, Option<i64>)> =
        match tokio::time::timeout(STORE_CHECK, app.dispenser.describe()).await {
            Ok(Ok(infos)) => infos
                .into_iter()
                .map(|i| (i.spec.name, i.store_next))
                .collect(),
            _ => Vec::new(),
        };
    app.dispenser
        .local()
        .into_iter()
        .map(|(spec, next, on_hand)| {
            let next = next.or_else(|| {
                stored
                    .iter()
                    .find(|(name, _)| *name == spec.name)
                    .and_then(|(_, next)| *next)
            });
            (spec, next, on_hand)
        })
        .collect()
}

/// GET /metrics: the Prometheus text format, gauges refreshed first.
pub async fn metrics(app: &App) -> Answer {
    let states: Vec<(String, u64, f64)> = positions(app)
        .await
        .into_iter()
        .map(|(spec, next, on_hand)| {
            let used = spec.used_fraction(next);
            (spec.name, on_hand, used)
        })
        .collect();
    let metrics = app.dispenser.metrics();
    metrics.sequence_states(&states);
    let mut response = Response::new(Bytes::from(metrics.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

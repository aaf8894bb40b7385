//! Endpoints for operators and their tools: liveness, readiness, metrics,
//! version.
//!
//! None needs a token while no token is set at all (a development box).
//! Once any is, what they show of the sequences and the store is guarded
//! too ([`Need::Observe`]): /metrics answers 401 without the admin token or
//! one of PEZ_METRICS_TOKENS, and the status page leaves out its details.
//! The probes never show the store's own error text; the log has it.

use super::answer::{Answer, help, json};
use super::app::{App, RequestHeaders};
use super::auth::{Need, authorize};
use super::problem::ApiError;
use super::status_page::{self, Details, PageInfo, SequenceStatus};
use crate::telemetry::metrics::SequenceGauges;
use bytes::Bytes;
use hyper::Response;
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::json;

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

/// The methods every operator endpoint answers.
const ALLOW: &str = "GET, HEAD, OPTIONS";

/// Any method on an operator endpoint: GET answers, HEAD answers as GET
/// (hyper leaves the body out, keeping its length), OPTIONS describes.
pub async fn handle(
    op: Op,
    method: Method,
    headers: hyper::HeaderMap,
    app: std::sync::Arc<App>,
) -> Answer {
    let may_observe = || {
        let authorization = RequestHeaders::of(&headers).authorization();
        authorize(&app.access, Need::Observe, authorization)
    };
    match method {
        Method::GET | Method::HEAD => match op {
            Op::Healthz => healthz(),
            Op::Readyz => readyz(&app),
            Op::Metrics => match may_observe() {
                Ok(()) => metrics(&app),
                Err(refused) => refused.into_response(Some(op.path())),
            },
            Op::Version => version(),
            Op::OpenApi => json(StatusCode::OK, super::openapi::document(&app).to_string()),
            Op::StatusPage => page(&app, may_observe().is_ok()),
        },
        Method::OPTIONS => help(super::openapi::options::help(op.path(), &app), ALLOW),
        other => ApiError::MethodNotAllowed {
            method: other.to_string(),
            allow: ALLOW,
        }
        .into_response(Some(op.path())),
    }
}

/// GET /: the status page, with its details when `detailed`.
fn page(app: &App, detailed: bool) -> Answer {
    let details = detailed.then(|| {
        let metrics = app.dispenser.metrics();
        let sequences = positions(app)
            .into_iter()
            .map(|(spec, next, on_hand)| SequenceStatus {
                direction: spec.direction.as_str(),
                mode: spec.mode.as_str(),
                min: spec.min,
                max: spec.max,
                cycle: spec.cycle,
                next,
                range_used: spec.used_fraction(next),
                on_hand,
                per_second: metrics.per_second(&spec.name),
                name: spec.name,
            })
            .collect();
        Details {
            store: app.store_description.clone(),
            health: app.dispenser.store_health(),
            sequences,
        }
    });
    let reasons = app.dispenser.not_ready();
    let info = PageInfo {
        version: crate::VERSION.to_owned(),
        ready: reasons.is_empty(),
        reasons,
        uptime: app.started.elapsed(),
        sequence_count: app.dispenser.names().len(),
        refresh_seconds: PAGE_REFRESH_SECONDS,
        details,
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

/// GET /readyz: ready unless the instance is stopping or its store does
/// not answer (as the last store calls tell: no store call is made here);
/// 503 with the reasons otherwise, each a fixed phrase (the store's own
/// error text, which may name its users, hosts and tables, is logged). An exhausted sequence is no reason: it
/// answers 409 while the others serve.
pub fn readyz(app: &App) -> Answer {
    let reasons = app.dispenser.not_ready();
    if reasons.is_empty() {
        return json(
            StatusCode::OK,
            json!({ "status": "ready", "sequences": app.dispenser.names().len() }).to_string(),
        );
    }
    ApiError::NotReady { reasons }.into_response(Some("/readyz"))
}

/// Each sequence with the next number it issues and the numbers on hand:
/// what this instance holds, completed with where the store stood at the
/// last sync for the sequences it holds nothing of (strict ones). Makes no
/// store call, so a flood of status pages or scrapes never reaches it.
fn positions(app: &App) -> Vec<(crate::sequence::SequenceSpec, Option<i64>, u64)> {
    let stored = app
        .dispenser
        .view()
        .map(|view| view.states)
        .unwrap_or_default();
    app.dispenser
        .local()
        .into_iter()
        .map(|(spec, next, on_hand)| {
            let next = next.or_else(|| {
                stored
                    .iter()
                    .find(|state| state.spec.name == spec.name)
                    .and_then(|state| state.next_value)
            });
            (spec, next, on_hand)
        })
        .collect()
}

/// GET /metrics: the Prometheus text format, gauges refreshed first.
pub fn metrics(app: &App) -> Answer {
    let states: Vec<SequenceGauges> = positions(app)
        .into_iter()
        .map(|(spec, next, on_hand)| SequenceGauges {
            range_used: spec.used_fraction(next),
            remaining: spec.remaining(next),
            on_hand,
            name: spec.name,
        })
        .collect();
    let metrics = app.dispenser.metrics();
    // Ready as /readyz says, from the same state (no store call).
    metrics.set_state(app.dispenser.not_ready().is_empty(), &states);
    let mut response = Response::new(Bytes::from(metrics.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

//! Named sequences: `/v2/sequences/...`. Taking numbers (`next`) is open,
//! or needs one of PEZ_TOKENS when set; a range lease (`lease`) too, or one
//! of PEZ_LEASE_TOKENS when that is set; everything else is the admin API
//! and needs PEZ_ADMIN_TOKEN.
//!
//! | path | methods |
//! |---|---|
//! | `/v2/sequences` | GET: list |
//! | `/v2/sequences/{name}` | GET: show; PUT: create; DELETE |
//! | `/v2/sequences/{name}/next?count=N` | GET or POST: the next N numbers |
//! | `/v2/sequences/{name}/lease?count=N` | POST: a range lease |
//! | `/v2/sequences/{name}/restart` | POST `{"value": N}` |

use super::answer::{Answer, help, json};
use super::app::{App, RequestHeaders};
use super::auth::{Need, authorize};
use super::format::{self, Format};
use super::handlers::{count, dispense_error};
use super::problem::ApiError;
use super::query;
use crate::dispenser::SequenceInfo;
use crate::sequence::{
    Direction, MAX_VALUE, MIN_VALUE, Mode, SequenceSpec, check_name, check_new_name,
};
use crate::store::{Consent, Created, StoreError};
use crate::telemetry::audit::{self, Route};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Response, StatusCode};
use log::error;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Which resource under `/v2/sequences` a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Collection,
    Sequence(String),
    Next(String),
    Lease(String),
    Restart(String),
}

impl Target {
    pub(super) fn parse(tail: &str) -> Option<Self> {
        let segments: Vec<&str> = tail.trim_end_matches('/').split('/').collect();
        let name = |raw: &str| query::decode(raw);
        Some(match segments.as_slice() {
            [""] => Target::Collection,
            [sequence] => Target::Sequence(name(sequence)),
            [sequence, "next"] => Target::Next(name(sequence)),
            [sequence, "lease"] => Target::Lease(name(sequence)),
            [sequence, "restart"] => Target::Restart(name(sequence)),
            _ => return None,
        })
    }

    fn allow(&self) -> &'static str {
        match self {
            Target::Collection => "GET, HEAD, OPTIONS",
            Target::Sequence(_) => "GET, HEAD, PUT, DELETE, OPTIONS",
            // No HEAD where a GET issues numbers: a probe must never use any.
            Target::Next(_) => "GET, POST, OPTIONS",
            Target::Lease(_) | Target::Restart(_) => "POST, OPTIONS",
        }
    }

    /// The path as the API document names it.
    fn template(&self) -> &'static str {
        match self {
            Target::Collection => "/v2/sequences",
            Target::Sequence(_) => "/v2/sequences/{name}",
            Target::Next(_) => "/v2/sequences/{name}/next",
            Target::Lease(_) => "/v2/sequences/{name}/lease",
            Target::Restart(_) => "/v2/sequences/{name}/restart",
        }
    }

    pub(super) fn name(&self) -> Option<&str> {
        match self {
            Target::Collection => None,
            Target::Sequence(n) | Target::Next(n) | Target::Lease(n) | Target::Restart(n) => {
                Some(n)
            }
        }
    }
}

/// Any request under `/v2/sequences`; `tail` is the path after it. `body`
/// reads the request body when awaited: only once the request is allowed.
pub async fn handle(
    tail: String,
    method: Method,
    query: Option<String>,
    headers: HeaderMap,
    body: impl Future<Output = Result<Vec<u8>, ApiError>>,
    app: Arc<App>,
) -> Answer {
    let path = if tail.is_empty() {
        "/v2/sequences".to_owned()
    } else {
        format!("/v2/sequences/{tail}")
    };
    let Some(target) = Target::parse(&tail) else {
        return super::handlers::not_found(&path);
    };
    let headers = RequestHeaders::of(&headers);
    respond(target, method, query.as_deref(), headers, body, &app)
        .await
        .unwrap_or_else(|e| e.into_response(Some(&path)))
}

/// The decoded name of a `/v2/sequences/{name}/next` path (a slash at
/// the end too), or `None` for any other path.
pub(super) fn next_of(path: &str) -> Option<String> {
    match Target::parse(path.strip_prefix("/v2/sequences/")?)? {
        Target::Next(name) => Some(name),
        _ => None,
    }
}

/// A GET or POST of `/v2/sequences/{name}/next` up to taking numbers, with
/// the checks [`handle`] makes, in its order: the token, the name, the
/// format, the count. The service calls it for the path [`next_of`]
/// finds, so that taking numbers of a named sequence skips warp's filters
/// (a copy of every header, the query and the path) and, while numbers
/// are on hand, a future.
pub(super) fn prepare_next(
    name: &str,
    query: Option<&str>,
    headers: RequestHeaders<'_>,
    app: &App,
) -> Result<(u64, Format), ApiError> {
    authorize(&app.access, Need::Dispense, headers.authorization())?;
    check_name(name).map_err(|e| ApiError::InvalidName {
        detail: e.to_string(),
    })?;
    read_next(query, headers, app)
}

/// The format and count of a `next`, once the request is allowed.
fn read_next(
    query: Option<&str>,
    headers: RequestHeaders<'_>,
    app: &App,
) -> Result<(u64, Format), ApiError> {
    let format = Format::negotiate(query, headers.accept())?;
    let count = count(query, app.max_count)?;
    Ok((count, format))
}

async fn respond(
    target: Target,
    method: Method,
    query: Option<&str>,
    headers: RequestHeaders<'_>,
    body: impl Future<Output = Result<Vec<u8>, ApiError>>,
    app: &App,
) -> Result<Answer, ApiError> {
    if method == Method::OPTIONS {
        return Ok(help(
            super::openapi::options::help(target.template(), app),
            target.allow(),
        ));
    }
    // HEAD reads as GET does (hyper leaves the body out).
    let reads = method == Method::GET || method == Method::HEAD;
    let allowed = matches!(
        (&target, &method),
        (Target::Collection, &Method::GET | &Method::HEAD)
            | (
                Target::Sequence(_),
                &Method::GET | &Method::HEAD | &Method::PUT | &Method::DELETE
            )
            | (Target::Next(_), &Method::GET | &Method::POST)
            | (Target::Lease(_), &Method::POST)
            | (Target::Restart(_), &Method::POST)
    );
    if !allowed {
        return Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            allow: target.allow(),
        });
    }
    let need = match target {
        Target::Next(_) => Need::Dispense,
        Target::Lease(_) => Need::Lease,
        _ => Need::Admin,
    };
    authorize(&app.access, need, headers.authorization())?;
    if let Some(name) = target.name() {
        check_name(name).map_err(|e| ApiError::InvalidName {
            detail: e.to_string(),
        })?;
    }
    match target {
        Target::Collection => {
            let all = describe(app).await?;
            let sequences: Vec<Value> = all.iter().map(|info| show(info, app)).collect();
            Ok(json(
                StatusCode::OK,
                json!({ "sequences": sequences }).to_string(),
            ))
        }
        Target::Sequence(name) if reads => {
            let info = find(app, &name).await?;
            Ok(json(StatusCode::OK, show(&info, app).to_string()))
        }
        Target::Sequence(name) if method == Method::PUT => create(app, &name, &body.await?).await,
        Target::Sequence(name) => {
            // Read for the log only: a failure here is the delete's to report.
            let before = find(app, &name).await.ok();
            app.dispenser
                .delete(&name)
                .await
                .map_err(|e| store_error(&name, e))?;
            audit::deleted(
                Route::AdminApi,
                &name,
                before
                    .as_ref()
                    .map(|info| (&info.spec, where_it_stands(info))),
            );
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = StatusCode::NO_CONTENT;
            Ok(response)
        }
        Target::Next(name) => {
            let (count, format) = read_next(query, headers, app)?;
            let runs = app
                .dispenser
                .next(&name, count)
                .await
                .map_err(|e| dispense_error(&name, count, e))?;
            Ok(format::list(&runs, count, format))
        }
        Target::Lease(name) => {
            let format = Format::negotiate(query, headers.accept())?;
            // Any count is read here: whether it is too large depends on the
            // sequence, and the answer names its limit.
            let count = query::count(query, u64::MAX).map_err(|given| ApiError::InvalidCount {
                given,
                max: app.max_lease,
            })?;
            let runs = app
                .dispenser
                .lease_range(&name, count, app.max_lease)
                .await
                .map_err(|e| dispense_error(&name, count, e))?;
            Ok(format::ranges(&runs, format))
        }
        Target::Restart(name) => {
            let restart: RestartBody = parse_body(&body.await?, false)?;
            let consent = Consent {
                backward: restart.allow_backward,
                early_wrap: restart.allow_early_wrap,
            };
            let before = find(app, &name).await.ok();
            app.dispenser
                .restart(&name, restart.value, consent)
                .await
                .map_err(|e| store_error(&name, e))?;
            audit::restarted(
                Route::AdminApi,
                &name,
                // The store's frontier, as `pez sequence restart` logs it:
                // other instances may have issued up to it, and a backward
                // restart below it is what can issue their numbers again.
                before.as_ref().map(|info| info.store_next),
                restart.value,
                consent,
            );
            Ok(json(
                StatusCode::OK,
                json!({ "name": name, "next": restart.value }).to_string(),
            ))
        }
    }
}

/// The body of a restart; anything else in it is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RestartBody {
    value: i64,
    #[serde(default)]
    allow_backward: bool,
    #[serde(default)]
    allow_early_wrap: bool,
}

/// The settings a PUT may give; anything else in the body is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SequenceSettings {
    direction: Option<Direction>,
    min: Option<i64>,
    max: Option<i64>,
    start: Option<i64>,
    cycle: Option<bool>,
    mode: Option<Mode>,
    max_lease: Option<i64>,
}

async fn create(app: &App, name: &str, body: &[u8]) -> Result<Answer, ApiError> {
    check_new_name(name).map_err(|e| ApiError::InvalidName {
        detail: e.to_string(),
    })?;
    let spec = spec_of(name, body)?;
    let created = app
        .dispenser
        .create(spec)
        .await
        .map_err(|e| store_error(name, e))?;
    let info = find(app, name).await?;
    audit::created(Route::AdminApi, &info.spec, created);
    let status = match created {
        Created::New => StatusCode::CREATED,
        Created::Existing => StatusCode::OK,
    };
    let mut response = json(status, show(&info, app).to_string());
    if let Ok(location) = HeaderValue::from_str(&format!("/v2/sequences/{name}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The sequence a PUT's body describes: 400 for a body that is not the
/// documented JSON object, or settings that do not make a sequence.
pub(super) fn spec_of(name: &str, body: &[u8]) -> Result<SequenceSpec, ApiError> {
    let settings: SequenceSettings = parse_body(body, true)?;
    SequenceSpec::new(
        name,
        settings.direction.unwrap_or(Direction::Ascending),
        settings.min.unwrap_or(MIN_VALUE),
        settings.max.unwrap_or(MAX_VALUE),
        settings.start,
        settings.cycle.unwrap_or(true),
        settings.mode.unwrap_or(Mode::Leased),
    )
    .and_then(|spec| spec.with_max_lease(settings.max_lease))
    .map_err(|e| ApiError::InvalidBody {
        detail: e.to_string(),
    })
}

/// Parses a JSON body; an empty body is `{}` when `empty_is_object`.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    empty_is_object: bool,
) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) && empty_is_object {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidBody {
        detail: format!("the body must be a JSON object of the documented fields: {e}"),
    })
}

async fn describe(app: &App) -> Result<Vec<SequenceInfo>, ApiError> {
    app.dispenser
        .describe()
        .await
        .map_err(|e| store_error("", e))
}

/// The next number a sequence issues, as this instance sees it: from what
/// it holds, else where the store stands (`None`: exhausted).
fn where_it_stands(info: &SequenceInfo) -> Option<i64> {
    info.next.or(info.store_next)
}

async fn find(app: &App, name: &str) -> Result<SequenceInfo, ApiError> {
    describe(app)
        .await?
        .into_iter()
        .find(|info| info.spec.name == name)
        .ok_or_else(|| ApiError::UnknownSequence {
            name: name.to_owned(),
        })
}

/// A sequence as the admin API shows it: `max_lease` is its own largest
/// range lease, `lease_limit` the one this server applies (PEZ_MAX_LEASE
/// caps it).
pub fn show(info: &SequenceInfo, app: &App) -> Value {
    let spec = &info.spec;
    json!({
        "name": spec.name,
        "direction": spec.direction,
        "min": spec.min,
        "max": spec.max,
        "start": spec.start,
        "cycle": spec.cycle,
        "mode": spec.mode,
        "max_lease": spec.max_lease,
        "lease_limit": spec.lease_limit(app.max_lease),
        "builtin": spec.is_builtin(),
        "next": info.next,
        "store_next": info.store_next,
        "on_hand": info.on_hand,
    })
}

fn store_error(name: &str, error: StoreError) -> ApiError {
    match error {
        StoreError::UnknownSequence(name) => ApiError::UnknownSequence { name },
        StoreError::Exhausted(sequence) => ApiError::Exhausted {
            sequence,
            remaining: 0,
        },
        StoreError::OutOfRange { .. } => ApiError::InvalidBody {
            detail: error.to_string(),
        },
        StoreError::Conflict(existing) => ApiError::Conflict {
            existing: json!({
                "direction": existing.direction,
                "min": existing.min,
                "max": existing.max,
                "start": existing.start,
                "cycle": existing.cycle,
                "mode": existing.mode,
                "max_lease": existing.max_lease,
            }),
        },
        StoreError::Builtin(name) => ApiError::Builtin { name },
        StoreError::Backward { .. } => ApiError::Backward {
            detail: error.to_string(),
        },
        StoreError::EarlyWrap { .. } => ApiError::EarlyWrap {
            detail: error.to_string(),
        },
        StoreError::Refused(cause) => {
            error!("{name}: the store refuses: {cause}");
            ApiError::Unavailable {
                reason: "The store refuses this instance; an operator must look at its log.",
            }
        }
        StoreError::Stale(_) => ApiError::Unavailable {
            reason: "The sequence changed in the store a moment ago; this instance is catching up.",
        },
        StoreError::Unavailable(cause) => {
            error!("{name}: store failed: {cause}");
            ApiError::Unavailable {
                reason: "The store cannot be reached right now.",
            }
        }
        StoreError::Ambiguous(cause) => {
            error!("{name}: store call ended in doubt: {cause}");
            ApiError::Unavailable {
                reason: "The store did not confirm the change in time: it may or may not have \
                         happened; look before you retry.",
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_resources() {
        assert_eq!(Target::parse(""), Some(Target::Collection));
        assert_eq!(
            Target::parse("orders"),
            Some(Target::Sequence("orders".into()))
        );
        assert_eq!(
            Target::parse("orders/"),
            Some(Target::Sequence("orders".into()))
        );
        assert_eq!(
            Target::parse("orders/next"),
            Some(Target::Next("orders".into()))
        );
        assert_eq!(
            Target::parse("orders/lease"),
            Some(Target::Lease("orders".into()))
        );
        assert_eq!(
            Target::parse("orders/restart"),
            Some(Target::Restart("orders".into()))
        );
        assert_eq!(Target::parse("%2e%2e"), Some(Target::Sequence("..".into())));
        assert_eq!(Target::parse("orders/next/more"), None);
        assert_eq!(Target::parse("orders/other"), None);
    }
}

//! The HTTP server loop: hyper driven directly (warp's `serve` hides the
//! knobs) so PEZ can bound what a hostile or broken client can take:
//!
//! - the request line and headers together: 8 KiB (hyper's smallest read
//!   buffer); more is answered 431;
//! - request bodies: `PEZ_MAX_BODY_BYTES` by Content-Length here (413),
//!   and while reading where a route reads a body;
//! - slow headers: a client gets `PEZ_HEADER_TIMEOUT_MS` to send them,
//!   then the connection is closed;
//! - connections: at most `PEZ_MAX_CONNECTIONS` at once; more wait in the
//!   kernel's accept queue until one closes; a connection that moves no byte
//!   for `PEZ_IDLE_TIMEOUT_MS` is closed (after its request in flight, if
//!   any), so idle keep-alive connections cannot hold every slot;
//! - each request: `PEZ_REQUEST_TIMEOUT_MS`, then 503.
//!
//! Every answered request is counted by route and status.

use super::problem::ApiError;
use crate::config::Limits;
use crate::telemetry::Metrics;
use crate::telemetry::metrics::Route;
use hyper::Body;
use hyper::server::conn::Http;
use hyper::service::Service;
use log::{debug, warn};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use warp::http::{Request, Response, header};

/// The request line and headers may take this much (hyper's minimum).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// A bound listener with its limits, ready to serve.
pub struct HttpServer {
    listener: TcpListener,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(
        addr: SocketAddr,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
            limits,
            metrics,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `service` until `shutdown` completes, then stops accepting,
    /// lets requests in flight finish and closes idle connections; returns
    /// once every connection is closed or `drain_for` has passed (false).
    pub async fn serve<S>(
        self,
        service: S,
        shutdown: impl Future<Output = ()>,
        drain_for: Duration,
    ) -> bool
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let slots = self.limits.max_connections;
        let connections = Arc::new(Semaphore::new(slots));
        let (stop, stopping) = watch::channel(false);
        let mut http = Http::new();
        http.http1_only(true)
            .max_buf_size(MAX_HEAD_BYTES)
            .http1_header_read_timeout(self.limits.header_timeout);
        let http = Arc::new(http);
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&connections).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: wait, do not spin.
                        warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let stream = Watched::new(stream);
            let last_io = stream.last_io();
            let idle_timeout = self.limits.idle_timeout;
            let guarded = Guarded {
                inner: service.clone(),
                limits: self.limits.clone(),
                metrics: Arc::clone(&self.metrics),
            };
            let (http, mut stopping) = (Arc::clone(&http), stopping.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let connection = http.serve_connection(stream, guarded);
                tokio::pin!(connection);
                // One timer per connection (not per request) looks for idleness.
                let mut checks = tokio::time::interval(idle_timeout / 2);
                checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut closing = false;
                let result = loop {
                    tokio::select! {
                        result = &mut connection => break result,
                        _ = stopping.changed(), if !closing => {
                            connection.as_mut().graceful_shutdown();
                            closing = true;
                        }
                        _ = checks.tick(), if !closing => {
                            if last_io.idle_for() >= idle_timeout {
                                debug!("connection from {peer}: idle for {idle_timeout:?}, closing");
                                connection.as_mut().graceful_shutdown();
                                closing = true;
                            }
                        }
                    }
                };
                if let Err(e) = result {
                    debug!("connection from {peer}: {e}");
                }
            });
        }
        drop(self.listener);
        let _ = stop.send(true);
        // Every connection holds a slot until it closes.
        let drained = tokio::time::timeout(drain_for, connections.acquire_many(slots as u32)).await;
        drained.is_ok()
    }
}

/// A TCP connection that remembers when it last moved a byte.
struct Watched {
    stream: TcpStream,
    last_io: LastIo,
}

/// When a connection last read or wrote, shared with its idle check.
#[derive(Clone)]
struct LastIo {
    since: Instant,
    millis: Arc<AtomicU64>,
}

impl LastIo {
    fn touch(&self) {
        let now = self.since.elapsed().as_millis() as u64;
        self.millis.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.millis.load(Ordering::Relaxed));
        self.since.elapsed().saturating_sub(last)
    }
}

impl Watched {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            last_io: LastIo {
                since: Instant::now(),
                millis: Arc::new(AtomicU64::new(0)),
            },
        }
    }

    fn last_io(&self) -> LastIo {
        self.last_io.clone()
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.last_io.touch();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.last_io.touch();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.last_io.touch();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The per-request guards around the routes: the body limit by
/// Content-Length, the request timeout, and the request metrics.
#[derive(Clone)]
struct Guarded<S> {
    inner: S,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request<Body>> for Guarded<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let route = route_of(request.uri().path());
        let path = request.uri().path().to_owned();
        let metrics = Arc::clone(&self.metrics);
        let limit = self.limits.max_body_bytes;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            let response = ApiError::BodyTooLarge { limit }.into_response(Some(&path));
            metrics.request(route, response.status().as_u16());
            return Box::pin(async move { Ok(response) });
        }
        let timeout = self.limits.request_timeout;
        let answer = self.inner.call(request);
        Box::pin(async move {
            // Most answers are ready at the first poll (numbers from
            // memory): they need no timer.
            let mut answer = std::pin::pin!(answer);
            if let Poll::Ready(Ok(response)) = futures_util::poll!(answer.as_mut()) {
                metrics.request(route, response.status().as_u16());
                return Ok(response);
            }
            let response = match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => {
                    warn!("{path}: no answer within {timeout:?}");
                    ApiError::Unavailable {
                        reason: "The request took too long.",
                    }
                    .into_response(Some(&path))
                }
            };
            metrics.request(route, response.status().as_u16());
            Ok(response)
        })
    }
}

/// The route of a path, for the request metrics.
pub fn route_of(path: &str) -> Route {
    match path {
        "/v1/forward" => Route::V1Forward,
        "/v1/reverse" => Route::V1Reverse,
        "/v2/forward" => Route::V2Forward,
        "/v2/reverse" => Route::V2Reverse,
        "/v2/sequences" | "/v2/sequences/" => Route::Sequences,
        "/" => Route::StatusPage,
        "/healthz" => Route::Healthz,
        "/readyz" => Route::Readyz,
        "/metrics" => Route::Metrics,
        "/version" => Route::Version,
        "/openapi.json" => Route::OpenApi,
        _ => match path.strip_prefix("/v2/sequences/") {
            Some(rest) => match rest.trim_end_matches('/').rsplit_once('/') {
                None => Route::Sequence,
                Some((_, "next")) => Route::Next,
                Some((_, "lease")) => Route::Lease,
                Some((_, "restart")) => Route::Restart,
                Some(_) => Route::Other,
            },
            None => Route::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn routes_are_few_whatever_the_path() {
        assert_eq!(route_of("/v1/forward").as_str(), "/v1/forward");
        assert_eq!(
            route_of("/v2/sequences/orders").as_str(),
            "/v2/sequences/{name}"
        );
        assert_eq!(
            route_of("/v2/sequences/orders/next").as_str(),
            "/v2/sequences/{name}/next"
        );
        assert_eq!(route_of("/v2/sequences/a/b/c").as_str(), "other");
        assert_eq!(route_of("/anything/else").as_str(), "other");
    }
}

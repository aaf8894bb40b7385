//! The HTTP server loop: hyper 1 driven directly (warp's `serve` installs
//! no timer, so hyper would ignore its header timeout) so PEZ can bound what
//! a hostile or broken client can take:
//!
//! - the request line and headers together: 8 KiB (hyper's smallest read
//!   buffer); more is answered 431 (with a problem+json body, as every
//!   answer hyper makes by itself: [`super::hyper_errors`]);
//! - slow headers: a client gets `PEZ_HEADER_TIMEOUT_MS` to send them,
//!   then the connection is closed (hyper's header read timeout);
//! - idle connections: hyper's header timeout also runs while a kept-alive
//!   connection waits for its next request; that wait gets
//!   `PEZ_IDLE_TIMEOUT_MS` ([`super::timer`]), so idle keep-alive
//!   connections cannot hold every slot;
//! - clients that stop reading: a write of an answer that takes no byte for
//!   `PEZ_IDLE_TIMEOUT_MS` fails and the connection is closed
//!   ([`super::write_deadline`]), so a client that pipelines requests and
//!   never reads the answers cannot hold a slot either; hyper reads no
//!   further request while it cannot write, and buffers at most 8 KiB of
//!   those it has not answered;
//! - connections: at most `PEZ_MAX_CONNECTIONS` at once; more wait in the
//!   kernel's accept queue until one closes.
//!
//! Request bodies, the request timeout and the request metrics are the
//! service's ([`super::Api`]). A graceful stop tells every connection
//! ([`super::shutdown`]): hyper finishes the request in flight, if any, and
//! closes it.

use super::hyper_errors::ProblemBodies;
use super::shutdown::Stop;
use super::timer::HeadTimer;
use super::write_deadline::WriteDeadline;
use crate::config::Limits;
use crate::telemetry::metrics::Route;
use hyper::Request;
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use log::{debug, warn};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The request line and headers may take this much (hyper's minimum).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// A bound listener with its limits, ready to serve.
pub struct HttpServer {
    listener: TcpListener,
    limits: Limits,
}

impl HttpServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, limits: Limits) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
            limits,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `service` until `shutdown` completes, then stops accepting,
    /// lets requests in flight finish and closes idle connections; returns
    /// once every connection is closed or `drain_for` has passed (false).
    pub async fn serve<S, B>(
        self,
        service: S,
        shutdown: impl Future<Output = ()>,
        drain_for: Duration,
    ) -> bool
    where
        S: Service<Request<Incoming>, Response = hyper::Response<B>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let slots = self.limits.max_connections;
        let connections = Arc::new(Semaphore::new(slots));
        let stop = Stop::new();
        let mut http = http1::Builder::new();
        http.max_buf_size(MAX_HEAD_BYTES)
            .header_read_timeout(self.limits.header_timeout);
        let mut shutdown = pin!(shutdown);
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
            let timer = HeadTimer::new(self.limits.header_timeout, self.limits.idle_timeout);
            let mut enforcer = timer.enforcer();
            let mut stopping = stop.watcher();
            let connection = http.clone().timer(timer).serve_connection(
                TokioIo::new(ProblemBodies::new(
                    WriteDeadline::new(stream, self.limits.idle_timeout),
                    MAX_HEAD_BYTES,
                )),
                service.clone(),
            );
            tokio::spawn(async move {
                let _permit = permit;
                let mut connection = pin!(connection);
                let mut closing = false;
                let result = std::future::poll_fn(|cx| {
                    if !closing && stopping.stopping(cx) {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    loop {
                        if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                            return Poll::Ready(result);
                        }
                        if !enforcer.check(cx) {
                            return Poll::Pending;
                        }
                    }
                })
                .await;
                if let Err(e) = result {
                    debug!("connection from {peer}: {e}");
                }
            });
        }
        drop(self.listener);
        stop.stop();
        // Every connection holds a slot until it closes.
        let drained = tokio::time::timeout(drain_for, connections.acquire_many(slots as u32)).await;
        drained.is_ok()
    }
}

/// The route of a path, for the request metrics. One slash at the end
/// names the same resource, as it does to the router.
pub fn route_of(path: &str) -> Route {
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
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
        assert_eq!(route_of("/v1/forward/").as_str(), "/v1/forward");
        assert_eq!(route_of("/healthz/").as_str(), "/healthz");
        assert_eq!(route_of("/").as_str(), "/");
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

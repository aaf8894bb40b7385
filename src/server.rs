//! The server's life: open the store, lease, serve, and stop gracefully.
//!
//! Built in two steps like mini-redis's `run(listener, shutdown)`, so tests
//! can bind port 0, learn the address, and stop the server when they like:
//! [`Server::start`] opens the store, leases the first blocks and binds;
//! [`Server::run_until`] serves until a shutdown future completes, drains
//! requests in flight (bounded by the shutdown timeout), then gives the
//! unissued numbers back to the store.

use crate::config::{Settings, StoreChoice};
use crate::dispenser::{Dispenser, DispenserSettings, ReturnReport};
use crate::http::{self, App};
use crate::store::{self, OpenError, StoreError};
use log::{info, warn};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// The store could not be opened (locked by another process, unreadable, ...).
    Open(OpenError),
    /// The store opened but the first leases failed.
    Store(StoreError),
    /// The listen address could not be bound.
    Bind(SocketAddr, String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Open(OpenError::Locked(e)) => {
                write!(f, "{e}; only one pez can use a data directory at a time")
            }
            StartError::Open(e) => e.fmt(f),
            StartError::Store(e) => write!(f, "cannot lease the first blocks: {e}"),
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A server that is bound and has numbers on hand, ready to run.
pub struct Server {
    addr: SocketAddr,
    dispenser: Arc<Dispenser>,
    serve: Pin<Box<dyn Future<Output = ()> + Send>>,
    stop_accepting: oneshot::Sender<()>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the store, leases the first block of every sequence
    /// and binds the listen address. Nothing is served until
    /// [`Self::run_until`].
    pub async fn start(settings: &Settings) -> Result<Self, StartError> {
        let opening = settings.clone();
        let store = tokio::task::spawn_blocking(move || store::open(&opening))
            .await
            .map_err(|e| StartError::Open(OpenError::Setup(e.to_string())))?
            .map_err(StartError::Open)?;
        info!("store: {}", store::describe(settings));
        let dispenser = Dispenser::start(
            store,
            DispenserSettings {
                block_min: settings.block_min,
                block_max: settings.block_max,
                lease_wait: settings.lease_wait,
                retry_max: Duration::from_secs(1),
                sync_interval: settings.sync_interval,
                strict_workers: match &settings.store {
                    // SQLite commits one transaction at a time anyway.
                    StoreChoice::Embedded => 1,
                    StoreChoice::Postgres(pg) => pg.pool_size as usize,
                },
            },
        )
        .await
        .map_err(StartError::Store)?;

        let app = Arc::new(App {
            dispenser: Arc::clone(&dispenser),
            max_count: settings.max_count,
            max_lease: settings.max_lease,
            access: settings.access.clone(),
        });
        let (stop_accepting, stopped) = oneshot::channel::<()>();
        let (addr, serve) = warp::serve(http::routes(app))
            .try_bind_with_graceful_shutdown(settings.listen, async {
                let _ = stopped.await;
            })
            .map_err(|e| StartError::Bind(settings.listen, e.to_string()))?;
        Ok(Self {
            addr,
            dispenser,
            serve: Box::pin(serve),
            stop_accepting,
            shutdown_timeout: settings.shutdown_timeout,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then stops gracefully: stops
    /// accepting, lets requests in flight finish (for at most the shutdown
    /// timeout), and gives back what was leased and not issued.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> ReturnReport {
        info!("listening on http://{}", self.addr);
        let mut serving = tokio::spawn(self.serve);
        tokio::select! {
            _ = &mut serving => warn!("the HTTP server stopped by itself"),
            _ = shutdown => {
                info!("stopping: finishing requests in flight");
                let _ = self.stop_accepting.send(());
                if tokio::time::timeout(self.shutdown_timeout, &mut serving).await.is_err() {
                    warn!(
                        "requests still open after {:?}; closing them",
                        self.shutdown_timeout
                    );
                    serving.abort();
                }
            }
        }
        // After this no request can take a number, so what is given back
        // below cannot also be issued.
        let report = self.dispenser.shutdown().await;
        info!(
            "stopped: {} unissued numbers given back, {} left as a gap",
            report.returned, report.abandoned
        );
        report
    }
}

/// Completes on Ctrl-C or SIGTERM (what `systemctl stop` and `kill` send).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                warn!("cannot watch for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

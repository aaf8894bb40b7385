//! The server's life: open the store, lease, serve, and stop gracefully.
//!
//! Built in two steps like mini-redis's `run(listener, shutdown)`, so tests
//! can bind port 0, learn the address, and stop the server when they like:
//! [`Server::start`] opens the store, leases the first blocks and binds;
//! [`Server::run_until`] serves until a shutdown future completes, drains
//! requests in flight (bounded by the shutdown timeout), then gives the
//! unissued numbers back to the store.

use crate::config::{Limits, Settings, StoreChoice};
use crate::dispenser::{Dispenser, DispenserSettings, ReturnReport};
use crate::http::serve::HttpServer;
use crate::http::{self, App};
use crate::store::{self, OpenError, StoreError};
use crate::telemetry::Metrics;
use log::{info, warn};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

impl StartError {
    /// Whether trying again may help: the store did not answer.
    pub fn is_transient(&self) -> bool {
        match self {
            StartError::Open(e) => e.is_transient(),
            StartError::Store(e) => e.is_outage(),
            StartError::Bind(..) => false,
        }
    }
}

/// Opens the store and starts serving from it (first blocks leased): one
/// attempt.
async fn start_dispenser(
    settings: &Settings,
    metrics: &Arc<Metrics>,
) -> Result<Arc<Dispenser>, StartError> {
    let opening = settings.clone();
    let store = tokio::task::spawn_blocking(move || store::open_to_serve(&opening))
        .await
        .map_err(|e| StartError::Open(OpenError::Setup(e.to_string())))?
        .map_err(StartError::Open)?;
    Dispenser::start(
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
        Arc::clone(metrics),
    )
    .await
    .map_err(StartError::Store)
}

/// A server that is bound and has numbers on hand, ready to run.
pub struct Server {
    addr: SocketAddr,
    app: Arc<App>,
    metrics: Arc<Metrics>,
    limits: Limits,
    http: HttpServer,
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
    /// Opens the store, leases the first block of every sequence and binds
    /// the listen address. Nothing is served until [`Self::run_until`].
    pub async fn start(settings: &Settings) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new(crate::VERSION));
        // The store may be starting, recovering or failing over: the whole
        // start (connect, migrate, read, first leases) is retried for the
        // startup timeout on failures worth retrying.
        let mut retry = store::StartupRetry::new(store::startup_timeout(settings));
        let dispenser = loop {
            match start_dispenser(settings, &metrics).await {
                Ok(dispenser) => break dispenser,
                Err(e) => match retry.after_failure(e.is_transient(), &e) {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => return Err(e),
                },
            }
        };
        let store_description = store::describe(settings);
        let http = match HttpServer::bind(settings.listen, settings.limits.clone()).await {
            Ok(http) => http,
            Err(e) => {
                // Nothing was served: give the first blocks back and stop
                // the dispenser's tasks (and, on the embedded store, its lock).
                dispenser
                    .shutdown(tokio::time::Instant::now() + settings.shutdown_timeout)
                    .await;
                return Err(StartError::Bind(settings.listen, e.to_string()));
            }
        };
        let addr = http
            .local_addr()
            .map_err(|e| StartError::Bind(settings.listen, e.to_string()))?;
        let limits = settings.limits.clone();
        let app = Arc::new(App {
            dispenser,
            max_count: settings.max_count,
            max_lease: settings.max_lease,
            access: settings.access.clone(),
            max_body_bytes: settings.limits.max_body_bytes,
            store_description,
            started: Instant::now(),
        });
        Ok(Self {
            addr,
            app,
            metrics,
            limits,
            http,
            shutdown_timeout: settings.shutdown_timeout,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The one line that says what runs where: the version, the address,
    /// the store (never its password), whether the admin API is on and how
    /// many tokens of each kind are set (never which).
    fn start_line(&self) -> String {
        let access = &self.app.access;
        format!(
            "pez {} listening on http://{} (store: {}; admin API {}; tokens: PEZ_TOKENS {}, \
             PEZ_LEASE_TOKENS {}, PEZ_METRICS_TOKENS {})",
            crate::VERSION,
            self.addr,
            self.app.store_description,
            if access.admin.is_some() { "on" } else { "off" },
            access.dispensing.len(),
            access.leasing.len(),
            access.metrics.len(),
        )
    }

    /// Serves until `shutdown` completes, then stops gracefully: stops
    /// accepting, lets requests in flight finish (for at most the shutdown
    /// timeout), and gives back what was leased and not issued.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> ReturnReport {
        info!("{}", self.start_line());
        let dispenser = Arc::clone(&self.app.dispenser);
        let sampler = tokio::spawn(sample_rates(Arc::clone(&dispenser)));
        let prober = tokio::spawn(probe_store(Arc::clone(&dispenser)));
        let service = http::api(self.app, self.metrics, self.limits);
        let drained = self
            .http
            .serve(
                service,
                async {
                    shutdown.await;
                    info!("stopping: finishing requests in flight");
                },
                self.shutdown_timeout,
            )
            .await;
        if !drained {
            warn!(
                "requests still open after {:?}; they get no more numbers",
                self.shutdown_timeout
            );
        }
        sampler.abort();
        prober.abort();
        // After this no request can take a number, so what is given back
        // below cannot also be issued. Give-backs get their own deadline:
        // a store that does not answer must not hold the stop hostage.
        let report = dispenser
            .shutdown(tokio::time::Instant::now() + self.shutdown_timeout)
            .await;
        info!(
            "stopped: {} unissued numbers given back, {} left as a gap",
            report.returned, report.abandoned
        );
        report
    }
}

/// Samples the issued counters once a second, for the status page's rates.
async fn sample_rates(dispenser: Arc<Dispenser>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticks.tick().await;
        dispenser
            .metrics()
            .sample(Instant::now(), &dispenser.names());
    }
}

/// How often the store is asked whether it takes writes, traffic or not.
/// Without it an outage that begins while no request comes is seen only by
/// the sync's reads, which a store can answer while refusing writes
/// (SQLite locked by another process), and is never logged. Five seconds:
/// an outage reaches the log and /readyz within one scrape interval of a
/// typical Prometheus or load balancer, and the probe is one short
/// transaction, nothing a store notices.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Probes the store every [`PROBE_INTERVAL`]; the store link logs an
/// outage once when it begins and once when it ends.
async fn probe_store(dispenser: Arc<Dispenser>) {
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // The outcome is recorded (and logged) by the store link.
        let _ = dispenser.probe().await;
    }
}

/// Completes on Ctrl-C or SIGTERM (what `systemctl stop` and `kill` send).
///
/// The handlers are installed when this is called, not when the future is
/// first polled: a SIGTERM that comes while the server starts (systemd
/// stopping it right after READY=1, say) is then held for the graceful
/// stop instead of killing the process the default way, which would leave
/// its first blocks as a gap. Call it inside the runtime, before starting.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    warn!("cannot watch for SIGTERM and SIGINT: {e}");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::{Service, service_fn};
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A data directory of its own, removed when dropped.
    struct ScratchDir(std::path::PathBuf);

    impl ScratchDir {
        fn new() -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir()
                .join(format!("pez-server-test-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("scratch directory");
            Self(dir)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// hyper may drop a request's future without polling it (a client that
    /// closed its end right after sending: hyper sees the end of input
    /// after it called the service). Such a request must take no number,
    /// or its numbers would be a gap and its 200 counted for an answer
    /// never written. Here a service calls PEZ's and drops the future
    /// unpolled, for both routes that take numbers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_whose_answer_is_never_polled_takes_no_numbers() {
        let dir = ScratchDir::new();
        let mut settings = Settings::with_data_dir(dir.0.clone());
        settings.listen = "127.0.0.1:0".parse().expect("address");
        let server = Server::start(&settings).await.expect("server starts");
        let dispenser = Arc::clone(&server.app.dispenser);
        let api = http::api(
            Arc::clone(&server.app),
            Arc::clone(&server.metrics),
            server.limits.clone(),
        );
        let dropping = service_fn(move |request| {
            drop(api.call(request));
            async { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new()))) }
        });
        let before = dispenser
            .next_on_hand("forward", 1)
            .expect("on hand")
            .expect("a number")[0]
            .first;
        let (mut client, connection) = tokio::io::duplex(64 * 1024);
        let serving = tokio::spawn(
            http1::Builder::new().serve_connection(TokioIo::new(connection), dropping),
        );
        client
            .write_all(
                b"GET /v2/forward?count=10 HTTP/1.1\r\nHost: x\r\n\r\n\
                  GET /v1/forward HTTP/1.1\r\nHost: x\r\n\r\n\
                  POST /v2/sequences/forward/next?count=10 HTTP/1.1\r\nHost: x\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
            .expect("requests");
        let mut answers = Vec::new();
        client.read_to_end(&mut answers).await.expect("answers");
        serving.await.expect("connection task").expect("connection");
        let answers = String::from_utf8_lossy(&answers);
        assert_eq!(answers.matches("HTTP/1.1 200").count(), 3, "{answers}");
        let after = dispenser
            .next_on_hand("forward", 1)
            .expect("on hand")
            .expect("a number")[0]
            .first;
        assert_eq!(
            after,
            before + 1,
            "numbers were taken for answers never polled"
        );
        dispenser
            .shutdown(tokio::time::Instant::now() + Duration::from_secs(5))
            .await;
    }
}

//! Prometheus metrics, through the `prometheus` crate (the exposition
//! format is not written by hand).
//!
//! Counters are bumped where things happen (requests in the HTTP layer,
//! leases in the dispenser); gauges that describe state (numbers on hand,
//! range used, numbers left, readiness) are set just before each scrape
//! from the dispenser's view.
//!
//! Every series whose labels can be known at start exists from the first
//! scrape, at zero: requests by route and status, store calls and errors by
//! operation, and each sequence's leases by outcome as soon as the
//! sequence is known. An alert on `rate(pez_store_errors_total[5m])` then
//! sees the first error, instead of a series that appears with it.

use super::process::ProcessCollector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every metric of one PEZ instance, in its own registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The request counters, found without hashing labels on the hot path:
    /// by route and status, every pair made at start.
    request_counters: Vec<IntCounter>,
    issued: IntCounterVec,
    leases: IntCounterVec,
    lease_seconds: HistogramVec,
    store_calls: IntCounterVec,
    store_errors: IntCounterVec,
    on_hand: IntGaugeVec,
    range_used: GaugeVec,
    remaining: GaugeVec,
    exhaustion_seconds: GaugeVec,
    ready: IntGauge,
    /// Samples of `issued` per sequence, one a second for a minute, for
    /// the rates of the status page.
    samples: Mutex<VecDeque<(Instant, HashMap<String, u64>)>>,
}

/// The outcomes `pez_leases_total` counts a lease by (its `outcome` label).
pub const LEASE_OUTCOMES: [&str; 3] = ["ok", "error", "exhausted"];

/// The store operations `pez_store_calls_total` and
/// `pez_store_errors_total` count (their `operation` label): every name
/// `StoreLink::call` is given, so each series exists from the start.
pub const STORE_OPERATIONS: [&str; 10] = [
    "reserve",
    "give_back",
    "list",
    "create",
    "delete",
    "restart",
    "heartbeat",
    "farewell",
    "generations",
    "probe",
];

/// What Prometheus needs to know of one sequence at a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceGauges {
    /// Its name.
    pub name: String,
    /// Leased numbers this instance holds, unissued.
    pub on_hand: u64,
    /// Fraction of its range used before it wraps or runs out.
    pub range_used: f64,
    /// Numbers left before it wraps or runs out (`SequenceSpec::remaining`).
    pub remaining: u64,
}

/// How long the status page's rates look back.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

fn registered<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: T,
) -> T {
    // Names are fixed and distinct, so registering cannot collide.
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

impl Metrics {
    /// A fresh set of metrics; `version` goes into `pez_build_info`.
    pub fn new(version: &str) -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let requests = counter(
            "pez_http_requests_total",
            "HTTP requests answered, by route and status code.",
            &["route", "status"],
        );
        let issued = counter(
            "pez_numbers_issued_total",
            "Numbers handed to clients, by sequence (range leases included).",
            &["sequence"],
        );
        let leases = counter(
            "pez_leases_total",
            "Leases of blocks from the store, by sequence and outcome (ok, error, exhausted).",
            &["sequence", "outcome"],
        );
        let store_calls = counter(
            "pez_store_calls_total",
            "Calls to the store, by operation (reserve, give_back, list, ...).",
            &["operation"],
        );
        let store_errors = counter(
            "pez_store_errors_total",
            "Store calls that failed or ended in doubt (the store did not answer), by operation.",
            &["operation"],
        );
        let lease_seconds = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "pez_lease_duration_seconds",
                    "How long leasing a block took.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
                &["sequence"],
            )
            .expect("valid metric"),
        );
        let on_hand = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "pez_numbers_on_hand",
                    "Leased numbers this instance holds, unissued.",
                ),
                &["sequence"],
            )
            .expect("valid metric"),
        );
        let gauge = |name: &str, help: &str| {
            registered(
                &registry,
                GaugeVec::new(Opts::new(name, help), &["sequence"]).expect("valid metric"),
            )
        };
        let remaining = gauge(
            "pez_sequence_remaining",
            "Numbers the sequence has left before it wraps (cycling) or runs out, counted \
             from the next number this instance issues.",
        );
        let exhaustion_seconds = gauge(
            "pez_sequence_exhaustion_seconds",
            "Seconds until the sequence wraps or runs out at the rate of the last minute on \
             this instance; +Inf when idle.",
        );
        let ready = registered(
            &registry,
            IntGauge::new(
                "pez_ready",
                "1 when the instance is ready for traffic (GET /readyz answers 200), 0 otherwise.",
            )
            .expect("valid metric"),
        );
        // The process_* metrics of every Prometheus client.
        let _ = registry.register(Box::new(ProcessCollector::new()));
        let range_used = registered(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "pez_sequence_range_used_ratio",
                    "Fraction of the sequence's range used before it wraps (or runs out): \
                     watch it to see a wrap coming.",
                ),
                &["sequence"],
            )
            .expect("valid metric"),
        );
        let build = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new("pez_build_info", "The running version."),
                &["version"],
            )
            .expect("valid metric"),
        );
        build.with_label_values(&[version]).set(1);
        // In the order `request` finds them: route, then status.
        let request_counters = Route::ALL
            .iter()
            .flat_map(|route| {
                STATUSES
                    .iter()
                    .map(|status| requests.with_label_values(&[route.as_str(), status]))
            })
            .collect();
        for operation in STORE_OPERATIONS {
            store_calls.with_label_values(&[operation]);
            store_errors.with_label_values(&[operation]);
        }
        Self {
            registry,
            request_counters,
            issued,
            leases,
            lease_seconds,
            store_calls,
            store_errors,
            on_hand,
            range_used,
            remaining,
            exhaustion_seconds,
            ready,
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// Counts one answered request. The counters are found by index, not by
    /// hashing labels: this runs for every request.
    pub fn request(&self, route: Route, status: u16) {
        self.request_counters[route as usize * STATUSES.len() + status_index(status)].inc();
    }

    /// Makes every series of `sequence` (its leases by outcome and their
    /// latency at zero), and returns the counter of numbers handed out of
    /// it, to keep and bump.
    pub fn register_sequence(&self, sequence: &str) -> IntCounter {
        for outcome in LEASE_OUTCOMES {
            self.leases.with_label_values(&[sequence, outcome]);
        }
        self.lease_seconds.with_label_values(&[sequence]);
        self.issued.with_label_values(&[sequence])
    }

    /// Records a lease and how long it took.
    pub fn lease(&self, sequence: &str, outcome: &str, took: Duration) {
        self.leases.with_label_values(&[sequence, outcome]).inc();
        self.lease_seconds
            .with_label_values(&[sequence])
            .observe(took.as_secs_f64());
    }

    /// Counts a store call, and whether the store failed to answer it.
    pub fn store_call(&self, operation: &str, failed: bool) {
        self.store_calls.with_label_values(&[operation]).inc();
        if failed {
            self.store_errors.with_label_values(&[operation]).inc();
        }
    }

    /// Drops every series of `sequence` (it was deleted): without this,
    /// each sequence that ever existed would stay in every scrape, and the
    /// exposition would only grow. A sequence created again under the name
    /// starts its counters from zero, which Prometheus reads as a reset.
    pub fn forget(&self, sequence: &str) {
        // Removing a series that was never made is an error to ignore.
        let _ = self.issued.remove_label_values(&[sequence]);
        for outcome in LEASE_OUTCOMES {
            let _ = self.leases.remove_label_values(&[sequence, outcome]);
        }
        let _ = self.lease_seconds.remove_label_values(&[sequence]);
        let _ = self.on_hand.remove_label_values(&[sequence]);
        let _ = self.range_used.remove_label_values(&[sequence]);
        let _ = self.remaining.remove_label_values(&[sequence]);
        let _ = self.exhaustion_seconds.remove_label_values(&[sequence]);
    }

    /// Sets the state gauges (before a scrape): whether the instance is
    /// ready, and for each sequence the numbers on hand, the fraction of
    /// its range used, the numbers left and the seconds until they run out
    /// at the last minute's rate. Sequences not listed (deleted ones)
    /// disappear.
    pub fn set_state(&self, ready: bool, states: &[SequenceGauges]) {
        self.ready.set(i64::from(ready));
        self.on_hand.reset();
        self.range_used.reset();
        self.remaining.reset();
        self.exhaustion_seconds.reset();
        for state in states {
            let name = [state.name.as_str()];
            self.on_hand
                .with_label_values(&name)
                .set(state.on_hand as i64);
            self.range_used
                .with_label_values(&name)
                .set(state.range_used);
            self.remaining
                .with_label_values(&name)
                .set(state.remaining as f64);
            self.exhaustion_seconds
                .with_label_values(&name)
                .set(seconds_until_exhausted(
                    state.remaining,
                    self.per_second(&state.name),
                ));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding our own well-formed metrics into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        let text = String::from_utf8(out).unwrap_or_default();
        // The encoder writes a value with Rust's `to_string`, so infinity
        // as `inf`; the exposition format spells it `+Inf` (`-Inf`, `NaN`).
        // A value is last on its line (no timestamps here), and a label
        // value ends with `"`: only values are rewritten.
        if !text.contains(" inf\n") && !text.contains(" -inf\n") && !text.contains(" NaN\n") {
            return text;
        }
        text.lines()
            .map(|line| {
                if let Some(series) = line.strip_suffix(" inf") {
                    format!("{series} +Inf\n")
                } else if let Some(series) = line.strip_suffix(" -inf") {
                    format!("{series} -Inf\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect()
    }

    /// Takes a sample of the issued counters of `sequences` (call once a
    /// second).
    pub fn sample(&self, now: Instant, sequences: &[String]) {
        let totals: HashMap<String, u64> = sequences
            .iter()
            .map(|name| (name.clone(), self.issued.with_label_values(&[name]).get()))
            .collect();
        let mut samples = crate::unpoisoned::lock(&self.samples);
        samples.push_back((now, totals));
        while samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > RATE_WINDOW)
        {
            samples.pop_front();
        }
    }

    /// Numbers per second `sequence` issued over the last minute (or since
    /// the first sample, when younger).
    pub fn per_second(&self, sequence: &str) -> f64 {
        let samples = crate::unpoisoned::lock(&self.samples);
        let (Some((first_at, first)), Some((last_at, last))) = (samples.front(), samples.back())
        else {
            return 0.0;
        };
        let seconds = last_at.saturating_duration_since(*first_at).as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        let before = first.get(sequence).copied().unwrap_or(0);
        let after = last.get(sequence).copied().unwrap_or(0);
        after.saturating_sub(before) as f64 / seconds
    }
}

/// Seconds until `remaining` numbers are gone at `per_second`: none left is
/// 0, none taken is +Inf (Prometheus writes it `+Inf`; `... < 30 * 86400`
/// is then false, as an idle sequence should be).
pub fn seconds_until_exhausted(remaining: u64, per_second: f64) -> f64 {
    if remaining == 0 {
        0.0
    } else if per_second > 0.0 {
        remaining as f64 / per_second
    } else {
        f64::INFINITY
    }
}

/// The routes requests are counted by: few, whatever paths clients send
/// (`http::serve::route_of` maps a path to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/v1/forward`
    V1Forward,
    /// `/v1/reverse`
    V1Reverse,
    /// `/v2/forward`
    V2Forward,
    /// `/v2/reverse`
    V2Reverse,
    /// `/v2/sequences`
    Sequences,
    /// `/v2/sequences/{name}`
    Sequence,
    /// `/v2/sequences/{name}/next`
    Next,
    /// `/v2/sequences/{name}/lease`
    Lease,
    /// `/v2/sequences/{name}/restart`
    Restart,
    /// `/`
    StatusPage,
    /// `/healthz`
    Healthz,
    /// `/readyz`
    Readyz,
    /// `/metrics`
    Metrics,
    /// `/version`
    Version,
    /// `/openapi.json`
    OpenApi,
    /// Anything else.
    Other,
}

impl Route {
    /// Every route, in the order of their discriminants (which index
    /// `Metrics::request_counters`).
    const ALL: [Route; 16] = [
        Route::V1Forward,
        Route::V1Reverse,
        Route::V2Forward,
        Route::V2Reverse,
        Route::Sequences,
        Route::Sequence,
        Route::Next,
        Route::Lease,
        Route::Restart,
        Route::StatusPage,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::Version,
        Route::OpenApi,
        Route::Other,
    ];

    /// The route as its label.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::V1Forward => "/v1/forward",
            Route::V1Reverse => "/v1/reverse",
            Route::V2Forward => "/v2/forward",
            Route::V2Reverse => "/v2/reverse",
            Route::Sequences => "/v2/sequences",
            Route::Sequence => "/v2/sequences/{name}",
            Route::Next => "/v2/sequences/{name}/next",
            Route::Lease => "/v2/sequences/{name}/lease",
            Route::Restart => "/v2/sequences/{name}/restart",
            Route::StatusPage => "/",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::Version => "/version",
            Route::OpenApi => "/openapi.json",
            Route::Other => "other",
        }
    }
}

/// The status codes PEZ answers, as labels; the last stands for any other.
const STATUSES: [&str; 15] = [
    "200", "201", "204", "400", "401", "403", "404", "405", "409", "413", "414", "431", "500",
    "503", "other",
];

/// The index of a status code in [`STATUSES`].
fn status_index(status: u16) -> usize {
    match status {
        200 => 0,
        201 => 1,
        204 => 2,
        400 => 3,
        401 => 4,
        403 => 5,
        404 => 6,
        405 => 7,
        409 => 8,
        413 => 9,
        414 => 10,
        431 => 11,
        500 => 12,
        503 => 13,
        _ => 14,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges(name: &str, on_hand: u64, range_used: f64, remaining: u64) -> SequenceGauges {
        SequenceGauges {
            name: name.into(),
            on_hand,
            range_used,
            remaining,
        }
    }

    #[test]
    fn each_route_is_at_its_index() {
        for (index, route) in Route::ALL.iter().enumerate() {
            assert_eq!(*route as usize, index, "{route:?}");
        }
    }

    /// Every operation the dispenser names in a store call is one whose
    /// series exist from the start.
    #[test]
    fn every_store_operation_in_the_code_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dispenser");
        let mut found = 0;
        for entry in std::fs::read_dir(dir).expect("src/dispenser") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
            for piece in text.split(".call(\"").skip(1) {
                let operation = piece.split('"').next().unwrap_or_default();
                assert!(STORE_OPERATIONS.contains(&operation), "{operation}");
                found += 1;
            }
        }
        assert!(found >= 10, "{found} store calls found");
    }

    #[test]
    fn time_to_exhaustion_is_remaining_over_the_rate() {
        assert_eq!(seconds_until_exhausted(600, 20.0), 30.0);
        assert_eq!(seconds_until_exhausted(0, 20.0), 0.0);
        assert_eq!(seconds_until_exhausted(0, 0.0), 0.0);
        assert_eq!(seconds_until_exhausted(5, 0.0), f64::INFINITY);
        // Through the rate of the last minute.
        let metrics = Metrics::new("x");
        let issued = metrics.register_sequence("s");
        let t0 = Instant::now();
        let names = ["s".to_owned()];
        metrics.sample(t0, &names);
        issued.inc_by(300);
        metrics.sample(t0 + Duration::from_secs(30), &names);
        metrics.set_state(false, &[gauges("s", 0, 0.5, 1000)]);
        let text = metrics.render();
        assert!(
            text.contains(r#"pez_sequence_exhaustion_seconds{sequence="s"} 100"#),
            "{text}"
        );
        assert!(text.contains("pez_ready 0"), "{text}");
    }

    #[test]
    fn counters_show_up_in_the_exposition() {
        let metrics = Metrics::new("1.2.3");
        metrics.request(Route::V1Forward, 200);
        metrics.request(Route::V1Forward, 200);
        metrics.register_sequence("forward").inc_by(100);
        metrics.lease("forward", "ok", Duration::from_millis(3));
        metrics.set_state(true, &[gauges("forward", 900, 0.25, 7)]);
        let text = metrics.render();
        for line in [
            r#"pez_http_requests_total{route="/v1/forward",status="200"} 2"#,
            r#"pez_numbers_issued_total{sequence="forward"} 100"#,
            r#"pez_leases_total{outcome="ok",sequence="forward"} 1"#,
            r#"pez_lease_duration_seconds_bucket{sequence="forward",le="0.005"} 1"#,
            r#"pez_numbers_on_hand{sequence="forward"} 900"#,
            r#"pez_sequence_range_used_ratio{sequence="forward"} 0.25"#,
            r#"pez_build_info{version="1.2.3"} 1"#,
            r#"pez_sequence_remaining{sequence="forward"} 7"#,
            r#"pez_sequence_exhaustion_seconds{sequence="forward"} +Inf"#,
            r#"pez_ready 1"#,
            r#"pez_store_errors_total{operation="reserve"} 0"#,
            r#"pez_http_requests_total{route="other",status="other"} 0"#,
            r#"pez_leases_total{outcome="error",sequence="forward"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }

    #[test]
    fn a_forgotten_sequence_leaves_no_series() {
        let metrics = Metrics::new("1.2.3");
        for name in ["gone", "kept"] {
            metrics.register_sequence(name).inc();
            for outcome in LEASE_OUTCOMES {
                metrics.lease(name, outcome, Duration::from_millis(1));
            }
        }
        metrics.set_state(
            true,
            &[gauges("gone", 1, 0.5, 1), gauges("kept", 1, 0.5, 1)],
        );
        metrics.forget("gone");
        metrics.forget("never-there");
        let text = metrics.render();
        assert!(!text.contains("\"gone\""), "{text}");
        assert!(text.contains(r#"pez_numbers_issued_total{sequence="kept"} 1"#));
        assert!(text.contains(r#"pez_leases_total{outcome="exhausted",sequence="kept"} 1"#));
    }

    #[test]
    fn rates_are_taken_over_the_last_minute() {
        let metrics = Metrics::new("x");
        let t0 = Instant::now();
        let names = ["forward".to_owned(), "reverse".to_owned()];
        metrics.sample(t0, &names);
        metrics.register_sequence("forward").inc_by(600);
        metrics.sample(t0 + Duration::from_secs(30), &names);
        assert_eq!(metrics.per_second("forward"), 20.0);
        metrics.sample(t0 + Duration::from_secs(90), &names);
        // The first sample is out of the window: nothing issued since the second.
        assert_eq!(metrics.per_second("forward"), 0.0);
        assert_eq!(metrics.per_second("reverse"), 0.0);
    }
}

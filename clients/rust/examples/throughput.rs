//! In-process numbers/s of the client: `cargo run --release -p pez-client
//! --example throughput -- [URL] [SEQUENCE] [SECONDS]` against a running
//! PEZ (default http://127.0.0.1:8000, forward, 3 s per run). `make
//! bench-client` (bench/bench-client.sh) starts a PEZ and runs it.
//!
//! First the baseline, measured in the same run: the same loop taking
//! numbers from a bare `AtomicI64::fetch_add`, the ceiling of any
//! in-process counter shared by the threads. Then the client on one
//! thread and on every core; the last line is
//! `client: N numbers/s on 1 thread, M numbers/s on T threads`; the line
//! before it gives the same with a `Local` per thread (`Client::local`).

use pez_client::Client;
use std::time::{Duration, Instant};

/// The numbers a `Local` claims at a time in this benchmark.
const CHUNK: u64 = 4096;

fn run(client: &Client, threads: usize, seconds: f64) -> f64 {
    measure(threads, seconds, || || client.next().expect("next"))
}

fn run_local(client: &Client, threads: usize, seconds: f64) -> f64 {
    measure(threads, seconds, || {
        let mut local = client.local(CHUNK);
        move || local.next().expect("local next")
    })
}

/// Numbers/s handed out on `threads` threads for `seconds`, each thread
/// taking them with the taker `each_thread` makes for it.
fn measure<T: FnMut() -> i64>(
    threads: usize,
    seconds: f64,
    each_thread: impl Fn() -> T + Sync,
) -> f64 {
    let started = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut take = each_thread();
                    let mut n = 0u64;
                    let mut sink = 0i64;
                    while started.elapsed().as_secs_f64() < seconds {
                        // Check the clock once per 4,096 numbers.
                        for _ in 0..4096 {
                            sink ^= take();
                        }
                        n += 4096;
                    }
                    std::hint::black_box(sink);
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let sequence = args.next().unwrap_or_else(|| "forward".into());
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let client = Client::builder()
        .urls([url])
        .sequence(sequence)
        .deadline(Duration::from_secs(5))
        .build()
        .expect("client");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let counter = std::sync::atomic::AtomicI64::new(1);
    let bare = || counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base_one = measure(1, seconds, || bare);
    let base_all = measure(threads, seconds, || bare);
    println!(
        "baseline (AtomicI64::fetch_add): {base_one:.0} numbers/s on 1 thread, \
         {base_all:.0} numbers/s on {threads} threads"
    );
    let one = run(&client, 1, seconds);
    let all = run(&client, threads, seconds);
    let local_one = run_local(&client, 1, seconds);
    let local_all = run_local(&client, threads, seconds);
    let stats = client.stats();
    println!(
        "client vs baseline: {:.2}x on 1 thread, {:.2}x on {threads} threads; {} leases, \
         lease limit {:?}",
        one / base_one,
        all / base_all,
        stats.leases,
        client.lease_limit()
    );
    println!(
        "client, a Local per thread ({CHUNK} numbers a claim): {local_one:.0} numbers/s on 1 thread, \
         {local_all:.0} numbers/s on {threads} threads"
    );
    println!("client: {one:.0} numbers/s on 1 thread, {all:.0} numbers/s on {threads} threads");
}

//! Uniqueness and order under concurrency, across many refetches.

use crate::harness::{ADMIN, Pez, assert_increasing, assert_unique};
use pez_client::Client;
use std::thread;
use std::time::Duration;

const THREADS: usize = 8;
const PER_THREAD: usize = 50_000;

/// `THREADS` threads taking `PER_THREAD` numbers each from `client`; each
/// thread's numbers in the order it got them.
fn take_from_threads(client: &Client) -> Vec<Vec<i64>> {
    on_threads(|_| {
        (0..PER_THREAD)
            .map(|_| client.next().expect("next"))
            .collect()
    })
}

/// `THREADS` threads, thread `i` running `take(i)`; what each returned.
fn on_threads(take: impl Fn(usize) -> Vec<i64> + Sync) -> Vec<Vec<i64>> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let take = &take;
                s.spawn(move || take(i))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    })
}

fn small_leases(url: &str, sequence: &str) -> Client {
    // Small first leases and a short target: many refetches in one test.
    Client::builder()
        .urls([url])
        .sequence(sequence)
        .initial_lease(64)
        .lease_target(Duration::from_millis(20))
        .deadline(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[test]
fn eight_threads_on_one_client_get_unique_numbers_each_in_increasing_order() {
    let pez = Pez::start(&[]);
    let client = small_leases(&pez.url(), "forward");
    let per_thread = take_from_threads(&client);
    for (i, numbers) in per_thread.iter().enumerate() {
        assert_increasing(numbers, &format!("thread {i}"));
    }
    let all: Vec<i64> = per_thread.concat();
    assert_eq!(all.len(), THREADS * PER_THREAD);
    assert_unique(&all);
    let stats = client.stats();
    assert!(stats.leases > 1, "one lease only: {stats:?}");
    assert!(stats.numbers_leased >= all.len() as u64, "{stats:?}");
}

/// Threads with a `Local` each (small chunks: many claims, across many
/// refetches) beside threads calling `next()` on the same client: no
/// number twice, each `Local` in order, either direction, and a `Local`
/// hands out every number of a chunk it claimed but the ones it holds at
/// the end.
#[test]
fn locals_beside_next_on_one_client_share_no_number_and_each_keeps_its_order() {
    let pez = Pez::start(&[]);
    for sequence in ["forward", "reverse"] {
        let client = small_leases(&pez.url(), sequence);
        let per_thread = on_threads(|i| {
            if i % 2 == 0 {
                let mut local = client.local(7 + i as u64 * 100);
                (0..PER_THREAD)
                    .map(|_| local.next().expect("local next"))
                    .collect()
            } else {
                (0..PER_THREAD)
                    .map(|_| client.next().expect("next"))
                    .collect()
            }
        });
        for (i, numbers) in per_thread.iter().enumerate() {
            let ordered: Vec<i64> = if sequence == "reverse" {
                numbers.iter().map(|n| -n).collect()
            } else {
                numbers.clone()
            };
            assert_increasing(&ordered, &format!("{sequence}: thread {i}"));
        }
        let all = per_thread.concat();
        assert_eq!(all.len(), THREADS * PER_THREAD);
        assert_unique(&all);
        assert!(
            client.stats().leases > 1,
            "{sequence}: {:?}",
            client.stats()
        );
    }
}

#[test]
fn two_clients_on_one_sequence_never_share_a_number() {
    let pez = Pez::start(&[]);
    let (a, b) = (
        small_leases(&pez.url(), "forward"),
        small_leases(&pez.url(), "forward"),
    );
    let (from_a, from_b) = thread::scope(|s| {
        let a = s.spawn(|| take_from_threads(&a));
        let b = s.spawn(|| take_from_threads(&b));
        (a.join().expect("a"), b.join().expect("b"))
    });
    for (i, numbers) in from_a.iter().chain(&from_b).enumerate() {
        assert_increasing(numbers, &format!("thread {i}"));
    }
    let all: Vec<i64> = from_a.concat().into_iter().chain(from_b.concat()).collect();
    assert_eq!(all.len(), 2 * THREADS * PER_THREAD);
    assert_unique(&all);
}

#[test]
fn a_descending_sequence_comes_out_decreasing_in_every_thread() {
    let pez = Pez::start(&[]);
    let client = small_leases(&pez.url(), "reverse");
    let per_thread = take_from_threads(&client);
    for (i, numbers) in per_thread.iter().enumerate() {
        let up: Vec<i64> = numbers.iter().map(|n| -n).collect();
        assert_increasing(&up, &format!("thread {i} (negated)"));
    }
    assert!(per_thread[0][0] > i64::MAX - 1_000_000);
    assert_unique(&per_thread.concat());
}

#[test]
fn one_thread_gets_one_unbroken_run_from_a_sequence_nobody_else_takes() {
    // A sequence of its own: the client is the only taker of ranges (the
    // server holds its own first block, unused), so every lease continues
    // the last: one run with no gap.
    let pez = Pez::start(&[]);
    pez.create_sequence("solo", r#"{"max_lease": 100000}"#);
    let client = small_leases(&pez.url(), "solo");
    let numbers: Vec<i64> = (0..30_000).map(|_| client.next().expect("next")).collect();
    let first = numbers[0];
    assert_eq!(numbers, (first..first + 30_000).collect::<Vec<i64>>());
}

#[test]
fn the_lease_size_grows_with_demand_up_to_the_limit_a_400_names() {
    // No admin token in the client: the limit is learned from the 400's
    // `maximum` (the sequence's max_lease, 5,000).
    let pez = Pez::start(&[]);
    pez.create_sequence("grow", r#"{"max_lease": 5000}"#);
    let client = Client::builder()
        .urls([pez.url()])
        .sequence("grow")
        .initial_lease(10)
        .build()
        .expect("client");
    for _ in 0..200_000 {
        client.next().expect("next");
    }
    let stats = client.stats();
    // At 10 a lease, 20,000 leases; doubling on demand, far fewer.
    assert!(stats.leases < 2_000, "{stats:?}");
    assert_eq!(client.lease_limit(), Some(5000), "{stats:?}");
}

#[test]
fn with_the_admin_token_the_limit_is_read_from_the_sequence() {
    let pez = Pez::start(&[]);
    pez.create_sequence("shown", r#"{"max_lease": 700}"#);
    let client = Client::builder()
        .urls([pez.url()])
        .sequence("shown")
        .token(ADMIN)
        .build()
        .expect("client");
    client.next().expect("next");
    // Asked right after the first lease, on the lease thread.
    let asked = std::time::Instant::now();
    while client.lease_limit().is_none() && asked.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(client.lease_limit(), Some(700));
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_async_hands_out_the_same_numbers_on_a_tokio_runtime() {
    let pez = Pez::start(&[]);
    pez.create_sequence("async", r#"{"max_lease": 100}"#);
    let client = small_leases(&pez.url(), "async");
    let mut numbers = Vec::new();
    for _ in 0..1_000 {
        numbers.push(client.next_async().await.expect("next_async"));
    }
    let first = numbers[0];
    assert_eq!(numbers, (first..first + 1_000).collect::<Vec<i64>>());
}

//! Named sequences: exhausted non-cycling ones, small cycling ones that
//! wrap inside a lease, unknown ones.

use crate::harness::{Pez, assert_increasing};
use pez_client::{Client, Error};
use std::time::Duration;

fn client(pez: &Pez, sequence: &str, initial: u64) -> Client {
    Client::builder()
        .urls([pez.url()])
        .sequence(sequence)
        .initial_lease(initial)
        .deadline(Duration::from_secs(5))
        .build()
        .expect("client")
}

#[test]
fn an_exhausted_sequence_hands_out_every_number_left_then_says_so() {
    let pez = Pez::start(&[]);
    // The server takes a first block of its own (1,000 numbers, or all of a
    // smaller sequence) when the sequence is made: the client gets the
    // rest, 1001..=1100, in leases of 30, 30, 30, then a 409 with
    // `remaining` 10, then those 10.
    pez.create_sequence(
        "last",
        r#"{"min": 1, "max": 1100, "cycle": false, "max_lease": 30}"#,
    );
    let client = client(&pez, "last", 30);
    let mut numbers = Vec::new();
    let error = loop {
        match client.next() {
            Ok(n) => numbers.push(n),
            Err(e) => break e,
        }
    };
    assert_eq!(numbers, (1001..=1100).collect::<Vec<i64>>());
    assert_eq!(
        error,
        Error::Exhausted {
            sequence: "last".into()
        }
    );
    assert!(error.to_string().contains("does not cycle"), "{error}");
    // And so it stays.
    assert!(matches!(client.next(), Err(Error::Exhausted { .. })));
}

/// Huge claims once a non-cycling sequence is exhausted: the used-up
/// range stays in place, and every call claims again. The review of
/// `take_range` found the numbers handed out again after two claims of
/// 2^63 (the claim counter wrapped).
#[test]
fn huge_claims_after_exhaustion_never_hand_a_number_out_again() {
    let pez = Pez::start(&[]);
    pez.create_sequence(
        "short",
        r#"{"min": 1, "max": 1005, "cycle": false, "max_lease": 5}"#,
    );
    let client = client(&pez, "short", 5);
    let mut local = client.local(1 << 62);
    let mut numbers = Vec::new();
    for _ in 0..20 {
        match client.take_range(1 << 63) {
            Ok(range) => numbers.extend(range.first()..=range.last()),
            Err(e) => assert!(matches!(e, Error::Exhausted { .. }), "{e}"),
        }
        match local.next() {
            Ok(n) => numbers.push(n),
            Err(e) => assert!(matches!(e, Error::Exhausted { .. }), "{e}"),
        }
        if let Ok(n) = client.next() {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1001..=1005).collect::<Vec<i64>>());
}

#[test]
fn a_second_client_on_an_exhausted_sequence_gets_the_error_at_once() {
    let pez = Pez::start(&[]);
    pez.create_sequence(
        "gone",
        r#"{"min": 1, "max": 1005, "cycle": false, "max_lease": 5}"#,
    );
    let first = client(&pez, "gone", 5);
    let numbers: Vec<i64> = (0..5).map(|_| first.next().expect("next")).collect();
    assert_eq!(numbers, vec![1001, 1002, 1003, 1004, 1005]);
    assert!(matches!(first.next(), Err(Error::Exhausted { .. })));
    let second = client(&pez, "gone", 5);
    assert!(matches!(second.next(), Err(Error::Exhausted { .. })));
}

#[test]
fn a_small_cycling_sequence_wraps_inside_leases_in_grant_order() {
    let pez = Pez::start(&[]);
    // 10 numbers, leases of 7: the second lease is 8..=10 then 1..=4.
    pez.create_sequence("ring", r#"{"min": 1, "max": 10, "max_lease": 7}"#);
    let client = client(&pez, "ring", 7);
    let numbers: Vec<i64> = (0..45).map(|_| client.next().expect("next")).collect();
    // The only taker: the laps follow each other with no gap.
    let expected: Vec<i64> = (0..45).map(|i| i % 10 + 1).collect();
    assert_eq!(numbers, expected);
    // Each lap in order on its own.
    for lap in numbers.split(|&n| n == 10) {
        assert_increasing(lap, "a lap");
    }
    let stats = client.stats();
    assert!(stats.ranges > stats.leases, "no lease wrapped: {stats:?}");
}

#[test]
fn a_sequence_the_server_does_not_have_is_a_clear_error() {
    let pez = Pez::start(&[]);
    let client = client(&pez, "nosuch", 10);
    let error = client.next().expect_err("a number of no sequence");
    assert_eq!(
        error,
        Error::UnknownSequence {
            sequence: "nosuch".into()
        }
    );
    assert!(error.to_string().contains("nosuch"), "{error}");
}

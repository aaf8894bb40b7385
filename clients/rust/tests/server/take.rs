//! `pez-take`: N numbers on stdout, one a line, and a line of statistics.

use crate::harness::{Pez, assert_increasing, assert_unique};
use std::process::Command;

fn pez_take(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pez-take"))
        .args(args)
        .output()
        .expect("run pez-take")
}

#[test]
fn pez_take_prints_n_unique_numbers_and_one_line_of_statistics() {
    let pez = Pez::start(&[("PEZ_LEASE_TOKENS", "leases")]);
    let urls = format!("{},{}", crate::harness::dead_url(), pez.url());
    let output = pez_take(&[
        "--url",
        &urls,
        "--sequence",
        "forward",
        "--count",
        "25000",
        "--token",
        "leases",
        "--deadline-ms",
        "5000",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let numbers: Vec<i64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.parse().expect("a number a line"))
        .collect();
    assert_eq!(numbers.len(), 25_000);
    assert_unique(&numbers);
    assert_increasing(&numbers, "pez-take");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("pez-take: 25000 numbers, ")
            && lines[0].contains("ranges leased")
            && lines[0].ends_with("numbers/s"),
        "{stderr}"
    );
}

#[test]
fn pez_take_refuses_bad_input_in_one_line() {
    for args in [
        &[
            "--url",
            "http://127.0.0.1:1",
            "--sequence",
            "forward",
            "--count",
            "x",
        ][..],
        &["--sequence", "forward", "--count", "1"],
        &["--url", "ftp://h", "--sequence", "forward", "--count", "1"],
        &[
            "--url",
            "http://127.0.0.1:1",
            "--sequence",
            "Forward",
            "--count",
            "1",
        ],
        &["--bogus"],
    ] {
        let output = pez_take(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn pez_take_stops_with_the_error_when_no_server_answers() {
    let output = pez_take(&[
        "--url",
        &crate::harness::dead_url(),
        "--sequence",
        "forward",
        "--count",
        "3",
        "--deadline-ms",
        "300",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped after 0 of 3 numbers"), "{stderr}");
    assert!(stderr.contains("every server failed"), "{stderr}");
}

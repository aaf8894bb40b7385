//! Issue 18, the operations kit (packaging/monitoring/): the alert rules
//! pass `promtool check rules` and the unit tests of `promtool test rules`,
//! every dashboard panel has a query, and
//! every metric they use is in a live /metrics, which `promtool check
//! metrics` accepts. promtool is Debian's `prometheus` package (.ci/run
//! installs it).

use crate::helpers::TestApp;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn kit(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/monitoring")
        .join(file)
}

/// Runs promtool with `args` and `stdin`; a missing promtool fails the test
/// with what to install.
fn promtool(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool: {e} (install Debian's prometheus package; .ci/run does)")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    child.wait_with_output().expect("promtool ran")
}

/// The names of PEZ's metrics (`pez_...`, `process_...`) a text mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices(['p']) {
        let rest = &text[at..];
        let starts_word = text[..at].chars().next_back().is_none_or(|c| !word(c));
        if starts_word && (rest.starts_with("pez_") || rest.starts_with("process_")) {
            let end = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
            names.insert(rest[..end].to_owned());
        }
    }
    names
}

#[test]
fn the_alert_rules_pass_promtool_check_rules() {
    let rules = kit("pez-alerts.yml");
    let out = promtool(&["check", "rules", &rules.to_string_lossy()], "");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    let text = std::fs::read_to_string(&rules).expect("rules");
    for alert in [
        "PezInstanceDown",
        "PezNotReady",
        "PezStoreErrors",
        "PezServiceUnavailable",
        "PezLeaseLatencyHigh",
        "PezCommitsWaitingForStandby",
        "PezSequenceExhaustedWithin30Days",
    ] {
        assert!(
            text.contains(&format!("alert: {alert}\n")),
            "{alert} missing"
        );
    }
}

/// tests/monitoring/pez-alerts.test.yml: each alert fires on the series
/// it is for (the standby proxy, a sequence running out within 30 days
/// over two instances, ...) and stays quiet on a healthy instance.
#[test]
fn the_alert_rules_fire_on_what_they_are_for_in_promtool_test_rules() {
    let tests =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/monitoring/pez-alerts.test.yml");
    let out = promtool(&["test", "rules", &tests.to_string_lossy()], "");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_dashboard_parses_and_every_panel_has_a_query() {
    let text = std::fs::read_to_string(kit("pez-dashboard.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut panels: Vec<&serde_json::Value> = Vec::new();
    let mut stack: Vec<&serde_json::Value> = vec![&dashboard];
    while let Some(node) = stack.pop() {
        for panel in node["panels"].as_array().into_iter().flatten() {
            // A row holds panels and has no query of its own.
            if panel["type"] == "row" {
                stack.push(panel);
            } else {
                panels.push(panel);
            }
        }
    }
    assert!(panels.len() >= 10, "{} panels", panels.len());
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "a panel without a title: {panel}");
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "{title}: an empty query");
        }
    }
}

/// Every metric the rules and the dashboard use is exposed by a fresh
/// server (so none is misspelt, and none is absent until something
/// happens), and promtool accepts the exposition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_kit_uses_is_in_a_live_scrape_that_promtool_accepts() {
    let app = TestApp::spawn_with(|_| {}).await;
    let exposition = app.get("/metrics").await.body;
    let exposed: BTreeSet<String> = exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let mut used = BTreeSet::new();
    for file in ["pez-alerts.yml", "pez-dashboard.json"] {
        let text = std::fs::read_to_string(kit(file)).expect("kit file");
        let names = metric_names(&text);
        assert!(names.len() >= 8, "{file}: only {names:?}");
        used.extend(names);
    }
    let missing: Vec<_> = used.difference(&exposed).collect();
    assert!(missing.is_empty(), "not exposed: {missing:?}\n{exposition}");
    let out = promtool(&["check", "metrics"], &exposition);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metric_names_are_found_as_whole_words() {
    let names = metric_names("rate(pez_leases_total[5m]) + xpez_no + process_open_fds{a=\"b\"}");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["pez_leases_total", "process_open_fds"]
    );
}

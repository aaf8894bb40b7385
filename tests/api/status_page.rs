//! The status page (`GET /`) in a real browser: Debian's Chromium, headless,
//! reads the page from a running PEZ, and takes a phone-sized screenshot
//! that is kept in `target/test-artifacts/` for a person to look at.

use crate::helpers::{MAX, TempDir, TestApp};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Chromium (`apt-get install chromium`; .ci/run installs it);
/// `PEZ_TEST_CHROMIUM` names another Chromium or Chrome binary.
const CHROMIUM: &str = "/usr/bin/chromium";

/// An iPhone 12 to 15 held upright, in CSS pixels.
const PHONE: (u32, u32) = (390, 844);

/// Longest a Chromium run may take before it is killed and the test fails.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(60);

/// A screenshot of a blank page at phone size is about 3.5 KB; the status
/// page with its cards is over 40 KB.
const MIN_SCREENSHOT_BYTES: u64 = 10 * 1024;

/// Longest the page may take to show traffic in its rates (they are
/// sampled once a second).
const RATE_WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_shows_each_sequence_with_the_number_the_api_issues_next() {
    let app = TestApp::spawn_with(|_| {}).await;
    let mut forward = Vec::new();
    for _ in 0..3 {
        forward.extend(app.numbers("/v2/forward?count=100").await);
    }
    let mut reverse = Vec::new();
    for _ in 0..2 {
        reverse.extend(app.numbers("/v2/reverse?count=100").await);
    }
    assert_eq!((forward.len(), reverse.len()), (300, 200));

    // Rates come from counters sampled once a second: wait for the sample
    // that sees this traffic.
    let waiting = Instant::now();
    loop {
        let page = app.get("/").await;
        assert_eq!(page.status, 200, "body: {}", page.body);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let rates = ["forward", "reverse"]
            .map(|name| attribute(row(&page.body, name), "rate", "data-per-second"));
        if rates.iter().all(|rate| rate != "0") {
            break;
        }
        assert!(
            waiting.elapsed() < RATE_WAIT,
            "rates still {rates:?} after {RATE_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let url = format!("http://{}/", app.http.addr());
    let dom = tokio::task::spawn_blocking(move || {
        let run = chromium(&["--dump-dom".to_owned()], &url);
        String::from_utf8(run).expect("the DOM is UTF-8")
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    assert!(dom.contains("<title>PEZ status</title>"), "{dom}");
    // Ready, and why one may believe it: the store answers and leased lately.
    assert_eq!(attr_of(&dom, "ready", "data-ready"), "true");
    assert_eq!(text_of(&dom, "ready"), "ready");
    assert_eq!(attr_of(&dom, "store-reachable", "data-reachable"), "true");
    assert!(!dom.contains("id=\"down-since\""), "{dom}");
    let leased_ago: u64 = attr_of(&dom, "last-reservation", "data-seconds")
        .parse()
        .expect("a reservation's age");
    assert!(leased_ago < 600, "{leased_ago}");
    assert!(text_of(&dom, "store").starts_with("sqlite at "), "{dom}");
    assert_eq!(text_of(&dom, "last-error"), "none since the start");
    for link in ["/metrics", "/openapi.json", "/healthz", "/readyz"] {
        assert!(
            dom.contains(&format!("<a href=\"{link}\">")),
            "{link}: {dom}"
        );
    }
    assert!(dom.contains("Issued/s, last minute"), "{dom}");
    let forward_row = row(&dom, "forward");
    let reverse_row = row(&dom, "reverse");
    let forward_next = next_number(forward_row);
    let reverse_next = next_number(reverse_row);
    assert_eq!(forward_next, forward[forward.len() - 1] + 1);
    assert_eq!(reverse_next, reverse[reverse.len() - 1] - 1);
    assert_eq!(reverse_next, MAX - 200);
    assert_eq!(cell(forward_row, "direction"), "ascending");
    assert_eq!(cell(reverse_row, "direction"), "descending");
    for sequence in [forward_row, reverse_row] {
        assert_eq!(cell(sequence, "mode"), "leased");
        // A few hundred of 2^63-1: used, but far below a hundredth of a percent.
        assert_eq!(cell(sequence, "used"), "< 0.01%");
        let rate = cell(sequence, "rate");
        assert!(rate.ends_with("/s") && rate != "0/s", "rate {rate:?}");
        let per_second: f64 = attribute(sequence, "rate", "data-per-second")
            .parse()
            .expect("data-per-second is a number");
        assert!(per_second > 0.0, "{per_second}");
    }
    // The numbers on hand: what is left of the first block of each.
    for sequence in [forward_row, reverse_row] {
        let on_hand: u64 = attribute(sequence, "on-hand", "data-value")
            .parse()
            .expect("on hand is a number");
        assert!(on_hand > 0, "{on_hand}");
        assert_eq!(
            cell(sequence, "on-hand").replace(',', ""),
            on_hand.to_string()
        );
    }
    // What the page says comes next is what the API hands out next.
    assert_eq!(app.numbers("/v1/forward").await, vec![forward_next]);
    assert_eq!(app.numbers("/v1/reverse").await, vec![reverse_next]);

    let screenshot = artifact("status-page-phone.png");
    let _ = std::fs::remove_file(&screenshot);
    let url = format!("http://{}/", app.http.addr());
    let taken = screenshot.clone();
    tokio::task::spawn_blocking(move || {
        chromium(
            &[
                format!("--screenshot={}", taken.display()),
                format!("--window-size={},{}", PHONE.0, PHONE.1),
                "--hide-scrollbars".to_owned(),
            ],
            &url,
        )
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let png = std::fs::read(&screenshot)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}", screenshot.display()));
    assert_eq!(png_size(&png), PHONE, "{}", screenshot.display());
    assert!(
        png.len() as u64 > MIN_SCREENSHOT_BYTES,
        "{} is {} bytes: a blank page?",
        screenshot.display(),
        png.len()
    );
}

/// With the store gone (another process holds SQLite's write lock, so no
/// lease can be made), a person sees at once that the instance is not
/// ready and why: the store does not answer, since when, its last error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_shows_a_store_that_is_gone_as_not_ready_with_why_and_since_when() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};
    let app = TestApp::spawn_with(|s| {
        s.store_timeout = Duration::from_millis(100);
    })
    .await;
    let mut blocker = SqliteConnection::establish(&app.database_file().to_string_lossy())
        .expect("open the store's file");
    blocker
        .batch_execute("BEGIN IMMEDIATE")
        .expect("take the write lock");
    // The background probe finds it within a few seconds, with no traffic.
    let waiting = Instant::now();
    while app.get("/readyz").await.status != 503 {
        assert!(
            waiting.elapsed() < pez::server::PROBE_INTERVAL * 3,
            "still ready with the store locked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("http://{}/", app.http.addr());
    let dom = tokio::task::spawn_blocking(move || {
        String::from_utf8(chromium(&["--dump-dom".to_owned()], &url)).expect("UTF-8")
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    assert_eq!(attr_of(&dom, "ready", "data-ready"), "false", "{dom}");
    assert_eq!(text_of(&dom, "ready"), "not ready");
    assert_eq!(text_of(&dom, "reasons"), "store unavailable");
    assert_eq!(attr_of(&dom, "store-reachable", "data-reachable"), "false");
    assert!(
        text_of(&dom, "store-reachable").starts_with("no, for"),
        "{dom}"
    );
    let down: u64 = attr_of(&dom, "down-since", "data-seconds")
        .parse()
        .expect("seconds down");
    assert!(down < 60, "{down}");
    assert!(text_of(&dom, "last-error").contains("locked"), "{dom}");
    // Each sequence still shows, with what is on hand.
    assert!(!cell(row(&dom, "forward"), "on-hand").is_empty());

    let screenshot = artifact("status-page-store-gone-phone.png");
    let _ = std::fs::remove_file(&screenshot);
    let url = format!("http://{}/", app.http.addr());
    let taken = screenshot.clone();
    tokio::task::spawn_blocking(move || {
        chromium(
            &[
                format!("--screenshot={}", taken.display()),
                format!("--window-size={},{}", PHONE.0, PHONE.1),
                "--hide-scrollbars".to_owned(),
            ],
            &url,
        )
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert_eq!(png_size(&png), PHONE);
    assert!(png.len() as u64 > MIN_SCREENSHOT_BYTES, "a blank page?");

    blocker.batch_execute("ROLLBACK").expect("release the lock");
    drop(blocker);
    let waiting = Instant::now();
    while app.get("/readyz").await.status != 200 {
        assert!(
            waiting.elapsed() < pez::server::PROBE_INTERVAL * 3,
            "not ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = app.get("/").await.body;
    assert_eq!(attr_of(&page, "ready", "data-ready"), "true");
    assert_eq!(attr_of(&page, "store-reachable", "data-reachable"), "true");
    // The last error stays on the page after the recovery.
    assert!(text_of(&page, "last-error").contains("locked"), "{page}");
}

/// Once tokens are set, the store and its errors are for the admin token
/// and the metrics tokens only; readiness and the links are for anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_its_errors_show_only_to_the_admin_and_metrics_tokens() {
    use hyper::Method;
    use pez::config::Secret;
    let app = TestApp::spawn_with(|s| {
        s.access.admin = Some(Secret::new("page-admin".into()));
        s.access.metrics = vec![Secret::new("page-metrics".into())];
    })
    .await;
    let page = |token: Option<&'static str>| {
        let http = app.http.clone();
        async move {
            let headers: Vec<(&str, String)> = token
                .map(|t| vec![("authorization", format!("Bearer {t}"))])
                .unwrap_or_default();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let answer = http.send(Method::GET, "/", &headers, None).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            answer.body
        }
    };
    for hidden in [page(None).await, page(Some("wrong")).await] {
        assert_eq!(attr_of(&hidden, "ready", "data-ready"), "true");
        assert!(hidden.contains("<a href=\"/readyz\">"), "{hidden}");
        for detail in ["store-health", "last-error", "sqlite", "data-sequence"] {
            assert!(!hidden.contains(detail), "{detail} shown: {hidden}");
        }
    }
    for token in ["page-admin", "page-metrics"] {
        let shown = page(Some(token)).await;
        assert!(
            text_of(&shown, "store").starts_with("sqlite at "),
            "{token}"
        );
        assert_eq!(text_of(&shown, "last-error"), "none since the start");
        assert!(shown.contains("data-sequence=\"forward\""), "{token}");
    }
}

/// The opening tag of the element with `id`, and its text up to the next tag.
fn element<'a>(dom: &'a str, id: &str) -> (&'a str, &'a str) {
    let at = dom
        .find(&format!(" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {dom}"));
    let start = dom[..at].rfind('<').expect("tag starts");
    let open = at + dom[at..].find('>').expect("tag ends") + 1;
    let close = open + dom[open..].find('<').unwrap_or(dom.len() - open);
    (&dom[start..open], &dom[open..close])
}

/// The text of the element with `id`, entities decoded.
fn text_of(dom: &str, id: &str) -> String {
    element(dom, id)
        .1
        .replace("&nbsp;", "\u{a0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .replace('\u{a0}', " ")
        .trim()
        .to_owned()
}

/// An attribute of the element with `id`.
fn attr_of(dom: &str, id: &str, name: &str) -> String {
    let tag = element(dom, id).0;
    let start = tag
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + name.len()
        + 3;
    let end = start + tag[start..].find('"').expect("attribute ends");
    tag[start..end].to_owned()
}

/// Runs headless Chromium on `url` with `args`; returns what it printed.
/// Fails the test if Chromium fails or takes longer than [`CHROMIUM_LIMIT`].
fn chromium(args: &[String], url: &str) -> Vec<u8> {
    let binary = std::env::var("PEZ_TEST_CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned());
    assert!(
        Path::new(&binary).exists(),
        "{binary} is missing: apt-get install chromium (.ci/run installs it), \
         or set PEZ_TEST_CHROMIUM"
    );
    let scratch = TempDir::new();
    let profile = scratch.path().join("profile");
    let stdout = scratch.path().join("stdout");
    let stderr = scratch.path().join("stderr");
    let mut child = Command::new(&binary)
        .args([
            "--headless",
            // Root in a container: Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            // No calls home: this network refuses them, and a test should
            // not depend on them anyway.
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--timeout=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("stdout file"))
        .stderr(File::create(&stderr).expect("stderr file"))
        // Its own process group, so that its helper processes (zygote,
        // renderer) can be ended together with it.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    let group = child.id();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break Some(status);
        }
        if started.elapsed() > CHROMIUM_LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever of the group is left, hung or lingering, goes before its
    // profile directory is removed.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    match status {
        None => panic!("chromium {args:?} did not finish within {CHROMIUM_LIMIT:?}: {log}"),
        Some(status) => assert!(status.success(), "chromium {args:?}: {status}: {log}"),
    }
    std::fs::read(&stdout).expect("chromium's output")
}

/// `target/test-artifacts/NAME`: kept after the run, for a person to see.
fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir.join(name)
}

/// Width and height from a PNG's header (the IHDR chunk comes first).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG"
    );
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

/// The row of sequence `name` in the DOM, up to its `</tr>`.
fn row<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = dom
        .find(&format!("data-sequence=\"{name}\""))
        .unwrap_or_else(|| panic!("no row for {name}: {dom}"));
    let end = dom[start..]
        .find("</tr>")
        .map(|end| start + end)
        .unwrap_or_else(|| panic!("the row of {name} does not end"));
    &dom[start..end]
}

/// The opening tag and the content of the `<td class="class">` of `row`.
fn td<'a>(row: &'a str, class: &str) -> (&'a str, &'a str) {
    let start = row
        .find(&format!("<td class=\"{class}\""))
        .unwrap_or_else(|| panic!("no .{class} in {row}"));
    let open = start + row[start..].find('>').expect("tag ends") + 1;
    let close = open + row[open..].find("</td>").expect("cell ends");
    (&row[start..open], &row[open..close])
}

/// The text of a cell, tags removed and entities decoded.
fn cell(row: &str, class: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in td(row, class).1.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&nbsp;", "\u{a0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

/// An attribute of a cell's `<td>`.
fn attribute(row: &str, class: &str, name: &str) -> String {
    let tag = td(row, class).0;
    let start = tag
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + name.len()
        + 3;
    let end = start + tag[start..].find('"').expect("attribute ends");
    tag[start..end].to_owned()
}

/// The next number a row shows, read as a person reads it (its text), and
/// checked against its `data-value`.
fn next_number(row: &str) -> i64 {
    let text = cell(row, "next");
    let shown: i64 = text
        .parse()
        .unwrap_or_else(|_| panic!("next is not a number: {text:?}"));
    assert_eq!(attribute(row, "next", "data-value"), text);
    shown
}

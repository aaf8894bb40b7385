//! Clients that try to take the server down without a token: ones that
//! stop reading their answers, that declare a body and never send it, that
//! send paths made to spoil the log.

use crate::helpers::{PezProcess, TempDir, read_response};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream as AsyncTcpStream};
use tokio::sync::oneshot;

/// Connects with a small receive buffer and pipelines requests for as long
/// as the server reads them, never reading an answer. Says when the server
/// has stopped taking requests (its answers fill both ends' buffers), then
/// keeps the connection open until the test ends.
async fn pipeline_without_reading(addr: SocketAddr, stalled: oneshot::Sender<()>) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("receive buffer");
    let mut stream: AsyncTcpStream = socket.connect(addr).await.expect("connect");
    let requests = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
    loop {
        let sent = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&requests)).await;
        match sent {
            Ok(Ok(())) => continue,
            // A second without taking a byte, or closed: the server is stuck
            // writing answers nobody reads.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let _ = stalled.send(());
    // Holds the connection (if the server still does) until the test ends.
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_their_answers_are_closed_and_free_their_slots() {
    let dir = TempDir::new();
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_MAX_CONNECTIONS", "5"),
            ("PEZ_HEADER_TIMEOUT_MS", "2000"),
            ("PEZ_IDLE_TIMEOUT_MS", "2000"),
            ("PEZ_REQUEST_TIMEOUT_MS", "2000"),
        ],
    );
    let addr = pez.http.addr();
    let mut readers = Vec::new();
    let mut stalls = Vec::new();
    for _ in 0..5 {
        let (stalled, stall) = oneshot::channel();
        readers.push(tokio::spawn(pipeline_without_reading(addr, stalled)));
        stalls.push(stall);
    }
    // Every slot is held by a client the server is writing to in vain.
    for stall in stalls {
        tokio::time::timeout(Duration::from_secs(30), stall)
            .await
            .expect("the server stopped taking requests from a client that does not read")
            .expect("reader");
    }
    let probe = std::thread::spawn(move || {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("request");
        (read_response(&mut stream), started.elapsed())
    });
    let (answer, waited) = tokio::task::spawn_blocking(move || probe.join().expect("probe"))
        .await
        .expect("probe");
    // The stuck connections are closed once their answers have moved no
    // byte for the idle timeout, and /healthz gets a slot.
    assert!(answer.starts_with("HTTP/1.1 200"), "no answer: {answer:?}");
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    for reader in readers {
        reader.abort();
    }
}

/// Sends `head` (a request that declares a body of 100 bytes and sends
/// none) and returns the answer's status line and how long it took.
fn declared_body_never_sent(addr: SocketAddr, head: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("head");
    let answer = read_response(&mut stream);
    let status = answer.lines().next().unwrap_or_default().to_owned();
    (status, started.elapsed())
}

fn head(method: &str, path: &str, authorization: Option<&str>) -> String {
    let authorization = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n{authorization}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_the_right_token_is_refused_before_its_body_arrives() {
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(6);
    let dir = TempDir::new();
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_ADMIN_TOKEN", "admin-token"),
            ("PEZ_TOKENS", "client-token"),
            ("PEZ_REQUEST_TIMEOUT_MS", "6000"),
        ],
    );
    let addr = pez.http.addr();
    let requests = [
        ("PUT", "/v2/sequences/x"),
        ("POST", "/v2/sequences/x/restart"),
        ("POST", "/v2/sequences/x/next"),
        ("POST", "/v2/sequences/x/lease"),
    ];
    for (method, path) in requests {
        for authorization in [None, Some("Bearer wrong-token")] {
            let (status, took) = declared_body_never_sent(addr, &head(method, path, authorization));
            assert!(
                status.starts_with("HTTP/1.1 401"),
                "{method} {path} with {authorization:?}: {status}"
            );
            assert!(
                took < REQUEST_TIMEOUT / 2,
                "{method} {path} with {authorization:?} waited {took:?} for a body"
            );
        }
    }
    // A taking token does not open the admin API either.
    let (status, took) = declared_body_never_sent(
        addr,
        &head("PUT", "/v2/sequences/x", Some("Bearer client-token")),
    );
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert!(took < REQUEST_TIMEOUT / 2, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_admin_api_off_a_request_is_refused_before_its_body_arrives() {
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(6);
    let dir = TempDir::new();
    let pez = PezProcess::start(dir.path(), &[("PEZ_REQUEST_TIMEOUT_MS", "6000")]);
    for authorization in [None, Some("Bearer anything")] {
        let (status, took) = declared_body_never_sent(
            pez.http.addr(),
            &head("PUT", "/v2/sequences/x", authorization),
        );
        assert!(status.starts_with("HTTP/1.1 403"), "{status}");
        assert!(took < REQUEST_TIMEOUT / 2, "{took:?}");
    }
}

/// A path of about 7 KB naming one sequence: C1 control characters sent as
/// raw UTF-8 (hyper takes them; one is a terminal's CSI, one a newline to
/// some readers), and percent-encoded C0 ones.
fn hostile_path() -> String {
    let mut path = String::from("/v2/sequences/x");
    while path.len() < 7000 {
        path.push_str("\u{9b}31m\u{85}%0A%1B[2J%00");
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_request_puts_in_the_log_is_one_line_escaped_and_short() {
    let dir = TempDir::new();
    // At the most verbose level, so that no line anywhere carries the path
    // as it came.
    let mut pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_ADMIN_TOKEN", "admin-token"),
            ("PEZ_REQUEST_TIMEOUT_MS", "1000"),
            ("PEZ_LOG", "trace"),
        ],
    );
    let addr = pez.http.addr();
    // Refused at once, and with nothing to log.
    let (status, _) = declared_body_never_sent(addr, &head("PUT", &hostile_path(), None));
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    // Allowed, and the body never comes: the request times out, and its
    // 7 KB path is logged.
    let long = format!("/v2/sequences/x{}", "/".repeat(7000));
    let (status, _) =
        declared_body_never_sent(addr, &head("PUT", &long, Some("Bearer admin-token")));
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    pez.terminate();
    pez.wait_exit(Duration::from_secs(10));
    let log = pez.log();
    let timeouts: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("no answer within"))
        .collect();
    assert_eq!(timeouts.len(), 1, "{timeouts:?}");
    for line in &log {
        assert!(line.len() < 1024, "a line of {} bytes", line.len());
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
}

/// What hyper answers by itself (the request never reaches PEZ's service)
/// is problem+json too, like every other error: a request line and headers
/// over 8 KiB get 431, a request that is not HTTP gets 400, each with a
/// body that says so, and the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_the_http_stack_makes_itself_are_problem_json() {
    let app = crate::helpers::TestApp::spawn_with(|_| {}).await;
    let addr = app.http.addr();
    let oversized = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (oversized.into_bytes(), 431),
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(), 400),
    ];
    for (request, status) in cases {
        let (answer, closed) = tokio::task::spawn_blocking(move || {
            crate::helpers::raw_exchange(addr, &request, Duration::from_secs(5))
        })
        .await
        .expect("exchange");
        assert!(closed.is_some(), "the connection stays open: {answer}");
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains("\r\ncontent-type: application/problem+json\r\n"),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{head}"
        );
        let problem: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
        assert_eq!(problem["status"], status, "{problem}");
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:pez:problem:")),
            "{problem}"
        );
        assert!(
            problem["detail"].as_str().is_some_and(|d| d.len() > 10),
            "{problem}"
        );
    }
    // The server goes on answering.
    assert_eq!(app.get("/healthz").await.status, 200);
}

/// A client that closes its end right after its request (as `nc -q0`
/// does) often gets no answer: hyper sees the end of input before it polls
/// the request. Numbers are taken at that first poll, not when hyper calls
/// the service, so a request never answered takes none: no gap, and no
/// 200 counted for an answer never written. (Taken at the call, 470 of
/// 500 numbers were skipped this way in the review of the change.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_closed_its_end_takes_numbers_only_if_answered() {
    let dir = TempDir::new();
    let app = PezProcess::start(dir.path(), &[]);
    let addr = app.http.addr();
    let before = app.http.numbers("/v1/forward").await[0];
    let answered = tokio::task::spawn_blocking(move || {
        let mut answered = 0;
        for path in [
            "/v2/forward?count=10",
            "/v2/sequences/forward/next?count=10",
        ] {
            for _ in 0..50 {
                let mut stream = TcpStream::connect(addr).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                stream
                    .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                    .expect("request");
                stream.shutdown(Shutdown::Write).expect("half-close");
                if read_response(&mut stream).starts_with("HTTP/1.1 200") {
                    answered += 1;
                }
            }
        }
        answered
    })
    .await
    .expect("clients");
    let after = app.http.numbers("/v1/forward").await[0];
    assert_eq!(
        after,
        before + 1 + 10 * answered,
        "{answered} of 100 half-closed requests were answered"
    );
}

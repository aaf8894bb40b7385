//! The sd_notify protocol as a `Type=notify` unit sees it, with a fake
//! NOTIFY_SOCKET: READY=1 only once the store answered and the first blocks
//! are leased, WATCHDOG=1 pings, STOPPING=1 at a graceful stop.

use crate::helpers::{PezProcess, TempDir};
use crate::postgres_support::{Cluster, ClusterOptions, TestDatabase};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Waits up to `limit` for a datagram containing `wanted`; returns all
/// messages seen until then.
fn wait_for(
    socket: &UnixDatagram,
    wanted: &str,
    limit: Duration,
) -> Result<Vec<String>, Vec<String>> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .expect("timeout");
        match socket.recv(&mut buffer) {
            Ok(n) => {
                let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
                let found = message.contains(wanted);
                seen.push(message);
                if found {
                    return Ok(seen);
                }
            }
            Err(_) => break,
        }
    }
    Err(seen)
}

#[tokio::test]
async fn ready_waits_for_the_first_leases_then_watchdog_pings_and_stopping_is_announced() {
    let cluster = Cluster::start(ClusterOptions::default());
    let database = TestDatabase::create_on(&cluster.admin_url);
    cluster.stop("fast");
    let dir = TempDir::new();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");

    let data_dir = dir.path().to_owned();
    let (url, notify) = (
        database.url.clone(),
        socket_path.to_string_lossy().into_owned(),
    );
    let starting = std::thread::spawn(move || {
        PezProcess::start(
            &data_dir,
            &[
                ("PEZ_DATABASE_URL", url.as_str()),
                ("NOTIFY_SOCKET", notify.as_str()),
                ("WATCHDOG_USEC", "200000"),
                // The first leases are logged at debug.
                ("PEZ_LOG", "info,pez::dispenser::leaser=debug"),
            ],
        )
    });

    // The store does not answer yet: no READY.
    let early = wait_for(&socket, "READY=1", Duration::from_millis(1500));
    assert!(early.is_err(), "READY before the store answered: {early:?}");

    cluster.restart();
    let ready = wait_for(&socket, "READY=1", Duration::from_secs(20))
        .expect("READY=1 once the store answers");
    let pez = starting.join().expect("pez started");
    let mainpid = format!("MAINPID={}", pez.pid());
    assert!(ready.iter().any(|m| m.contains(&mainpid)), "{ready:?}");
    // `systemctl status` shows where pez serves.
    let status = format!("STATUS=serving on http://{}", pez.http.addr());
    assert!(ready.iter().any(|m| m.contains(&status)), "{ready:?}");
    let log = pez.log();
    let listening = log
        .iter()
        .position(|l| l.contains("listening on"))
        .expect("listening");
    for sequence in ["forward", "reverse"] {
        let leased = log
            .iter()
            .position(|l| l.contains(&format!("{sequence}: leased")))
            .unwrap_or_else(|| panic!("no lease of {sequence}: {log:?}"));
        assert!(
            leased < listening,
            "{sequence} leased after serving began: {log:?}"
        );
    }
    assert_eq!(pez.http.numbers("/v1/forward").await, vec![1]);

    // Watchdog pings every 100 ms (half of WATCHDOG_USEC).
    let started = Instant::now();
    for _ in 0..3 {
        wait_for(&socket, "WATCHDOG=1", Duration::from_secs(2)).expect("WATCHDOG=1");
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    pez.terminate();
    wait_for(&socket, "STOPPING=1", Duration::from_secs(5)).expect("STOPPING=1 at SIGTERM");
    drop(cluster);
}

/// An unusable NOTIFY_SOCKET is logged, and does not stop `pez`.
#[test]
fn a_broken_notify_socket_does_not_stop_pez() {
    let dir = TempDir::new();
    let pez = PezProcess::start(dir.path(), &[("NOTIFY_SOCKET", "/nonexistent/dir/sock")]);
    assert!(pez.log().iter().any(|l| l.contains("listening on")));
}

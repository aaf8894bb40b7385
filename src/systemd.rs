//! The sd_notify protocol, for `Type=notify` units: one datagram per state
//! change to the socket in `$NOTIFY_SOCKET`. Written here (a dozen lines on
//! `std::os::unix::net::UnixDatagram`) rather than taken from a crate.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing.

use log::warn;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Tells systemd how the service is doing.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET` (a path, or `@name` for an abstract
    /// socket), or a silent one when it is unset or unusable.
    pub fn from_env() -> Self {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|socket| {
            let socket = socket.to_string_lossy().into_owned();
            let address = match socket.strip_prefix('@') {
                Some(name) => abstract_address(name),
                None => SocketAddr::from_pathname(&socket).ok(),
            };
            let connected = address.zip(UnixDatagram::unbound().ok());
            if connected.is_none() {
                warn!("NOTIFY_SOCKET={socket} is not usable; systemd will not hear from pez");
            }
            connected.map(|(address, datagram)| (datagram, address))
        });
        Self { target }
    }

    /// READY=1: the store answers, the first blocks are leased, the port is
    /// bound. systemd starts the units that wait for PEZ only now, and
    /// `systemctl status` shows `status` (e.g. where PEZ serves).
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS={status}",
            std::process::id()
        ));
    }

    /// STOPPING=1: a graceful stop has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping: finishing requests, giving numbers back");
    }

    /// WATCHDOG=1: still alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    fn send(&self, state: &str) {
        if let Some((datagram, address)) = &self.target
            && let Err(e) = datagram.send_to_addr(state.as_bytes(), address)
        {
            warn!("cannot notify systemd: {e}");
        }
    }
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &str) -> Option<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes()).ok()
}

#[cfg(not(target_os = "linux"))]
fn abstract_address(_name: &str) -> Option<SocketAddr> {
    None
}

/// How often to send WATCHDOG=1: half of `$WATCHDOG_USEC`, when systemd
/// set it for this process (`$WATCHDOG_PID`, if present, is our pid).
pub fn watchdog_interval() -> Option<Duration> {
    let for_us = std::env::var("WATCHDOG_PID")
        .map(|pid| pid == std::process::id().to_string())
        .unwrap_or(true);
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (for_us && usec > 0).then(|| Duration::from_micros(usec / 2))
}

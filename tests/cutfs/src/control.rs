//! The control socket: one command per line, one reply line per command.
//! Each command runs under the state's lock, atomically with respect to the
//! FUSE requests.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

use crate::model::State;

/// Run one command against the state; the reply line, without newline.
pub fn command(state: &Mutex<State>, line: &str) -> String {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["freeze"] => {
            s.frozen = true;
            "ok frozen".to_owned()
        }
        ["cut"] => {
            let r = s.cut(false);
            format!(
                "ok cut: dropped {} writes ({} bytes) in {} files, {} directory changes",
                r.ops, r.bytes, r.files, r.dir_changes
            )
        }
        ["cut", "torn"] => {
            let r = s.cut(true);
            format!(
                "ok cut torn: dropped {} writes ({} bytes) in {} files, {} directory changes; \
                 {} files torn, {} writes kept",
                r.ops, r.bytes, r.files, r.dir_changes, r.torn_files, r.kept_ops
            )
        }
        ["enospc", on @ ("on" | "off")] => {
            s.enospc = *on == "on";
            format!("ok enospc {on}")
        }
        ["eio", on @ ("on" | "off")] => {
            s.eio = *on == "on";
            format!("ok eio {on}")
        }
        ["fsync-eio", on @ ("on" | "off")] => {
            s.fsync_eio = *on == "on";
            format!("ok fsync-eio {on}")
        }
        ["stats"] => {
            let (ops, bytes) = s.pending();
            let c = &s.counters;
            format!(
                "ok writes={} fsyncs={} fsyncdirs={} fsync_errors={} pending_ops={} \
                 pending_bytes={} cuts={} frozen={} enospc={} eio={}",
                c.writes,
                c.fsyncs,
                c.fsyncdirs,
                c.fsync_errors,
                ops,
                bytes,
                c.cuts,
                s.frozen as u8,
                s.enospc as u8,
                s.eio as u8
            )
        }
        ["ping"] => "ok pong".to_owned(),
        _ => format!("err unknown command: {}", line.trim()),
    }
}

fn serve(state: &Mutex<State>, stream: UnixStream) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = command(state, &line);
        log::info!("control: {} -> {}", line.trim(), reply);
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}

/// Accept connections forever, one thread each.
pub fn run(state: Arc<Mutex<State>>, listener: UnixListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let state = state.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(&state, stream) {
                        log::warn!("control connection: {e}");
                    }
                });
            }
            Err(e) => log::warn!("control accept: {e}"),
        }
    }
}

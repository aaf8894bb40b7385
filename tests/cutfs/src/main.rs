//! cutfs: a FUSE file system that loses what was not synced.
//!
//! A test tool for PEZ's embedded store (SQLite in WAL mode,
//! synchronous=FULL): it lets a harness cut the power under a running
//! service and check what a reboot would find.
//!
//! ```text
//! cutfs MOUNTPOINT --control SOCKET_PATH [--seed N]
//! ```
//!
//! mounts the file system (fsname=cutfs, default_permissions, allow_other,
//! auto_unmount through fusermount3), listens on the Unix stream socket
//! SOCKET_PATH, prints `ready` on stdout once both are up, and on SIGTERM or
//! SIGINT unmounts and exits 0.
//!
//! # The model
//!
//! Everything lives in the process's memory: nothing is written to a backing
//! disk. Each inode has a *current* state (what reads see) and a *durable*
//! state (what survives a cut).
//!
//! - A regular file has current data, durable data, and the list of
//!   *pending* operations since its last successful fsync (`Write{offset,
//!   bytes}`, `SetLen(len)`). write, truncate and fallocate change the current
//!   data and append to the pending list. fsync or fdatasync of the file
//!   applies the pending operations, in order, to the durable data and clears
//!   the list. It does not copy the current data (see fsyncgate below).
//! - A directory has current entries (name -> inode) and durable entries.
//!   create, mknod, mkdir, symlink, link, unlink, rmdir and rename change only
//!   the current entries. fsync of the directory (FUSE FSYNCDIR) copies its
//!   current entries into its durable ones. Strict POSIX: fsync of a file
//!   does not make its name durable; a rename between two directories is
//!   durable in each directory only once that directory is synced (a cut
//!   can thus find a file under both names, or under neither).
//! - Symlink targets and mknod nodes are durable with their inode; whether
//!   the name is, is up to the directory.
//! - Mode, owner and times are kept, not modelled: they apply at once to
//!   both states. New inodes belong to the requesting uid/gid, with mode &
//!   !umask. nlink is 2 for directories, and for other inodes the number of
//!   current entries naming them (1, or 0 once unlinked while open).
//! - The kernel caches nothing: entry and attribute TTLs are 0, open does not
//!   set FOPEN_KEEP_CACHE (the kernel drops an inode's page cache at each
//!   open), no writeback cache, no direct_io (SQLite maps its -shm file
//!   MAP_SHARED). Locks (flock, POSIX fcntl, OFD) are left to the kernel,
//!   which handles them locally since cutfs asks for neither FUSE_POSIX_LOCKS
//!   nor FUSE_FLOCK_LOCKS.
//! - A cut is meant to follow the end of every process using the file
//!   system (the harness SIGKILLs the service after `freeze`): a descriptor
//!   or mapping kept open across a cut may still see the kernel's cached
//!   pages of the lost data; opening the file again does not.
//! - An inode number is never reused. A file unlinked while open works until
//!   its last close. Freed inodes answer ESTALE.
//!
//! # The control socket
//!
//! One command per line, one reply line per command (`ok ...` or `err ...`),
//! several commands per connection. Each command takes the file system's
//! lock, so it is atomic with respect to FUSE requests.
//!
//! - `freeze`: the power is cut now. Every mutating operation (write,
//!   setattr, create, mknod, mkdir, unlink, rmdir, rename, link, symlink,
//!   fallocate) and every fsync and fsyncdir fails with EIO and changes
//!   nothing, until `cut`. Reads still work. Reply `ok frozen`.
//! - `cut`: the reboot. Every directory's current entries become its durable
//!   entries, every file's current data its durable data, pending lists are
//!   cleared; inodes no longer reachable from the root through the entries
//!   are freed (their numbers stay allocated: ESTALE). Unfreezes (and freezes
//!   first: it is atomic). Reply `ok cut: dropped W writes (B bytes) in F
//!   files, E directory changes`, W counting the pending operations thrown
//!   away (writes and truncations), B the bytes of those writes, E the
//!   directory entries that were added, removed or replaced since the
//!   directory's last fsync.
//! - `cut torn`: as `cut`, but first, for each file with pending operations,
//!   a random prefix of them is made durable: k uniform in 0..=len, operations
//!   0..k applied fully and, when k < len, operation k applied torn (a write
//!   keeps its first r bytes, r uniform in 0..len(bytes); a truncation is
//!   applied or not). The generator is a seeded xorshift64* (`--seed`, 0 by
//!   default: runs are reproducible). Reply `ok cut torn: dropped W writes (B
//!   bytes) in F files, E directory changes; T files torn, K writes kept`, T
//!   the files for which k < len.
//! - `enospc on|off`: while on, a write reaching beyond the file's current
//!   size, fallocate, create, mknod, mkdir, symlink and link fail with ENOSPC;
//!   overwrites within the size, truncation, reads, fsync, unlink and rename
//!   work (a full disk with the blocks already allocated). statfs shows no
//!   free block.
//! - `eio on|off`: while on, read, write, truncation, fsync and fsyncdir fail
//!   with EIO. Linux's "fsyncgate" is modelled: an fsync of a file that fails
//!   with EIO discards that file's pending operations. They stay in the
//!   current data (reads still see them) but never become durable, neither
//!   by a later successful fsync nor by `cut torn`: only a rewrite does.
//! - `fsync-eio on|off`: while on, only fsync and fsyncdir fail with EIO
//!   (discarding, as above); reads and writes work. Linux reports a failed
//!   write-back this way, at the next fsync, while the page cache keeps
//!   serving the data.
//! - `stats`: `ok writes=N fsyncs=N fsyncdirs=N fsync_errors=N pending_ops=N
//!   pending_bytes=N cuts=N frozen=0|1 enospc=0|1 eio=0|1` (successful
//!   writes, fsyncs and fsyncdirs; failed fsyncs and fsyncdirs).
//! - `ping`: `ok pong`.
//! - Anything else: `err unknown command: ...`.

mod control;
mod fuse;
mod model;

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fuser::{Config, MountOption, Session, SessionACL};

struct Args {
    mountpoint: PathBuf,
    control: PathBuf,
    seed: u64,
}

fn usage() -> ! {
    eprintln!("usage: cutfs MOUNTPOINT --control SOCKET_PATH [--seed N]");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut mountpoint = None;
    let mut control = None;
    let mut seed = 0;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--control") => {
                control = Some(PathBuf::from(args.next().unwrap_or_else(|| usage())))
            }
            Some("--seed") => {
                seed = args
                    .next()
                    .and_then(|s| s.to_str().and_then(|s| s.parse().ok()))
                    .unwrap_or_else(|| usage())
            }
            Some("-h" | "--help") => usage(),
            Some(s) if s.starts_with('-') => usage(),
            _ if mountpoint.is_none() => mountpoint = Some(PathBuf::from(a)),
            _ => usage(),
        }
    }
    match (mountpoint, control) {
        (Some(mountpoint), Some(control)) => Args {
            mountpoint,
            control,
            seed,
        },
        _ => usage(),
    }
}

/// Block SIGTERM and SIGINT in this thread and every thread it starts, to
/// take them with sigtimedwait.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Wait up to `timeout` for one of `set`'s signals.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: valid pointers to a sigset_t and a timespec.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

/// Lazy unmount: umount2(MNT_DETACH), else `fusermount3 -u -z`.
fn unmount(mountpoint: &Path) {
    let Ok(c) = CString::new(mountpoint.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return;
    }
    let e = std::io::Error::last_os_error();
    log::info!("umount2 {}: {e}; trying fusermount3", mountpoint.display());
    let _ = std::process::Command::new("fusermount3")
        .args(["-u", "-z", "--"])
        .arg(mountpoint)
        .status();
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = parse_args();
    let signals = block_signals();
    let state = Arc::new(Mutex::new(model::State::new(args.seed)));

    if std::fs::symlink_metadata(&args.control)
        .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        .unwrap_or(false)
    {
        let _ = std::fs::remove_file(&args.control);
    }
    let listener = UnixListener::bind(&args.control).unwrap_or_else(|e| {
        eprintln!("cutfs: {}: {e}", args.control.display());
        std::process::exit(1);
    });

    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("cutfs".to_owned()),
        MountOption::DefaultPermissions,
        MountOption::AutoUnmount,
    ];
    // auto_unmount needs allow_other; default_permissions keeps the modes.
    config.acl = SessionACL::All;
    let mountpoint = args
        .mountpoint
        .canonicalize()
        .unwrap_or_else(|_| args.mountpoint.clone());
    let fs = fuse::CutFs {
        state: state.clone(),
    };
    let session = Session::new(fs, &args.mountpoint, &config)
        .and_then(Session::spawn)
        .unwrap_or_else(|e| {
            eprintln!("cutfs: mount {}: {e}", args.mountpoint.display());
            let _ = std::fs::remove_file(&args.control);
            std::process::exit(1);
        });

    {
        let state = state.clone();
        std::thread::spawn(move || control::run(state, listener));
    }
    println!("ready");
    let _ = std::io::stdout().flush();

    let code = loop {
        if let Some(sig) = wait_signal(&signals, Duration::from_millis(200)) {
            log::info!("signal {sig}: unmounting");
            break 0;
        }
        if session.guard.is_finished() {
            eprintln!("cutfs: the file system was unmounted");
            break 0;
        }
    };
    // fusermount3's auto_unmount only acts once this process is gone (it
    // checks for ENOTCONN): unmount here (lazily, as root; else through
    // fusermount3 -u -z), then wait a little for the session to end. A file
    // still open would keep it alive, and exiting closes /dev/fuse anyway.
    unmount(&mountpoint);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(session.umount_and_join());
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Err(e)) => log::warn!("unmount: {e}"),
        Err(_) => log::warn!("unmount: session still running after 5 s"),
        Ok(Ok(())) => {}
    }
    let _ = std::fs::remove_file(&args.control);
    std::process::exit(code);
}

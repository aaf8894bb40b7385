//! A cutfs mounted on a temporary directory for one test, unmounted on drop
//! (even when the test fails).

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct Cutfs {
    child: Child,
    dir: PathBuf,
    pub mnt: PathBuf,
    ctl: BufReader<UnixStream>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Cutfs {
    /// Mount a fresh cutfs with `--seed seed`.
    pub fn mount(name: &str, seed: u64) -> Cutfs {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/cutfs-test-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        let mnt = dir.join("mnt");
        let sock = dir.join("ctl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cutfs"))
            .arg(&mnt)
            .arg("--control")
            .arg(&sock)
            .arg("--seed")
            .arg(seed.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start cutfs");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cutfs did not print ready: {line:?}");
        }
        let ctl = BufReader::new(UnixStream::connect(&sock).expect("connect control"));
        Cutfs {
            child,
            dir,
            mnt,
            ctl,
        }
    }

    /// Send a control command, return its reply line.
    pub fn cmd(&mut self, c: &str) -> String {
        writeln!(self.ctl.get_mut(), "{c}").unwrap();
        let mut line = String::new();
        self.ctl.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// A command that must succeed.
    pub fn ok(&mut self, c: &str) -> String {
        let r = self.cmd(c);
        assert!(r.starts_with("ok"), "{c}: {r}");
        r
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.mnt.join(p)
    }
}

impl Drop for Cutfs {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if is_mounted(&self.mnt) {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.mnt)
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn is_mounted(mnt: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let m = mnt.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(&*m))
}

/// Create or overwrite `p` with `data`, fsynced if `sync`.
pub fn put(p: &Path, data: &[u8], sync: bool) {
    let mut f = File::create(p).unwrap();
    f.write_all(data).unwrap();
    if sync {
        f.sync_all().unwrap();
    }
}

/// Append to `p`, fsynced if `sync`.
pub fn append(p: &Path, data: &[u8], sync: bool) {
    let mut f = OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(data).unwrap();
    if sync {
        f.sync_all().unwrap();
    }
}

pub fn read(p: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    File::open(p).unwrap().read_to_end(&mut v).unwrap();
    v
}

/// fsync a directory.
pub fn sync_dir(p: &Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

/// fsync a directory, returning the error.
pub fn try_sync_dir(p: &Path) -> std::io::Result<()> {
    File::open(p)?.sync_all()
}

pub fn open_rw(p: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(0)
        .open(p)
        .unwrap()
}

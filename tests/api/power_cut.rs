//! Power cuts of the host under the embedded store, on cutfs (tests/cutfs):
//! a FUSE file system that keeps only what was synced, and on command
//! drops the rest, as a machine that loses power does. `kill -9` alone
//! cannot show a missing fsync: the kernel's page cache still writes out
//! everything a killed process wrote. `make power-cut` runs the long form
//! of this under load; these are the cases each fix was made for.

use crate::helpers::{PezProcess, TempDir, pez_command};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// cutfs mounted on a fresh directory, unmounted on drop.
struct CutFs {
    child: Child,
    mount: PathBuf,
    control: BufReader<UnixStream>,
    _dir: TempDir,
}

impl CutFs {
    fn mount() -> Self {
        // Built beside pez by `cargo nextest run --workspace` (make test).
        let binary = Path::new(env!("CARGO_BIN_EXE_pez")).with_file_name("cutfs");
        assert!(
            binary.exists(),
            "{} is missing: build the workspace (make test does: cargo build -p cutfs)",
            binary.display()
        );
        let dir = TempDir::new();
        let mount = dir.path().join("mnt");
        let socket = dir.path().join("control.sock");
        std::fs::create_dir(&mount).expect("mount point");
        let mut child = Command::new(&binary)
            .arg(&mount)
            .arg("--control")
            .arg(&socket)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start cutfs");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("cutfs says ready");
        assert_eq!(
            ready.trim(),
            "ready",
            "cutfs did not mount (needs /dev/fuse)"
        );
        let control = BufReader::new(UnixStream::connect(&socket).expect("control socket"));
        Self {
            child,
            mount,
            control,
            _dir: dir,
        }
    }

    fn command(&mut self, command: &str) -> String {
        writeln!(self.control.get_mut(), "{command}").expect("send to cutfs");
        let mut reply = String::new();
        self.control.read_line(&mut reply).expect("cutfs answers");
        assert!(reply.starts_with("ok"), "cutfs {command}: {reply}");
        reply
    }

    /// The power cut: nothing more is acknowledged from this instant, pez
    /// dies, and what was not synced is gone.
    fn cut_power(&mut self, pez: &mut PezProcess) -> String {
        self.command("freeze");
        pez.kill_9();
        self.command("cut")
    }
}

impl Drop for CutFs {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.mount)
            .output();
    }
}

/// pez on `data_dir`, run from the mount (the data directory may not
/// exist yet), with small blocks so that leases happen often.
fn start(fs: &CutFs, data_dir: &Path) -> PezProcess {
    let mut command = pez_command(data_dir);
    command.current_dir(&fs.mount);
    PezProcess::start_command(command, &[("PEZ_BLOCK_SIZE", "200")])
}

#[tokio::test]
async fn a_store_made_just_before_a_power_cut_is_still_there_after_it() {
    let mut fs = CutFs::mount();
    // Two levels PEZ must make: each new directory must be fsynced into
    // its parent, or the cut takes the whole store away.
    let data_dir = fs.mount.join("var").join("pez");
    let mut pez = start(&fs, &data_dir);
    let before = pez.http.numbers("/v2/forward?count=5").await;
    let reverse = pez.http.numbers("/v2/reverse?count=5").await;
    fs.cut_power(&mut pez);

    assert!(
        data_dir.join("pez.sqlite3").exists(),
        "the store is gone after the power cut"
    );
    let pez = start(&fs, &data_dir);
    let after = pez.http.numbers("/v2/forward?count=5").await;
    let reverse_after = pez.http.numbers("/v2/reverse?count=5").await;
    assert!(after[0] > before[4], "{after:?} after {before:?}");
    assert!(
        reverse_after[0] < reverse[4],
        "{reverse_after:?} after {reverse:?}"
    );
}

#[tokio::test]
async fn every_lease_served_before_a_power_cut_stays_leased_after_it() {
    let mut fs = CutFs::mount();
    let data_dir = fs.mount.join("data");
    let mut served = Vec::new();
    for round in 0..5 {
        let mut pez = start(&fs, &data_dir);
        // Several blocks each round: each lease is a commit that must be
        // durable before its numbers leave.
        for _ in 0..4 {
            served.extend(pez.http.numbers("/v2/forward?count=100").await);
        }
        let reply = fs.cut_power(&mut pez);
        assert!(reply.contains("dropped"), "round {round}: {reply}");
    }
    let pez = start(&fs, &data_dir);
    let next = pez.http.numbers("/v1/forward").await[0];
    let highest = served.iter().max().copied().unwrap_or_default();
    assert!(next > highest, "{next} after {highest} was served");
    let mut sorted = served.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), served.len(), "a number was served twice");
}

#[tokio::test]
async fn a_power_cut_during_the_first_start_leaves_a_store_that_starts() {
    // Cut at several moments of the first start (directory, database,
    // WAL, migrations): whatever is left must open, or be made again
    // when nothing of it was durable yet.
    for delay_ms in [0u64, 5, 20, 60] {
        let mut fs = CutFs::mount();
        let data_dir = fs.mount.join("data");
        let mut command = pez_command(&data_dir);
        command
            .current_dir(&fs.mount)
            .env("PEZ_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("spawn pez");
        std::thread::sleep(Duration::from_millis(delay_ms));
        fs.command("freeze");
        let _ = child.kill();
        let _ = child.wait();
        fs.command("cut torn");
        let pez = start(&fs, &data_dir);
        let numbers = pez.http.numbers("/v2/forward?count=3").await;
        assert_eq!(
            numbers.len(),
            3,
            "after a cut {delay_ms} ms into the first start"
        );
    }
}

#[tokio::test]
async fn numbers_served_after_a_failed_fsync_survive_a_power_cut() {
    let mut fs = CutFs::mount();
    let data_dir = fs.mount.join("data");
    let mut pez = start(&fs, &data_dir);
    let mut served = pez.http.numbers("/v2/forward?count=100").await;
    // The disk's write-back fails: fsync says EIO, once, and what it was
    // to write is never written (Linux marks the pages clean), though the
    // page cache still serves it to every reader.
    fs.command("fsync-eio on");
    for _ in 0..6 {
        let answer = pez.http.get("/v2/forward?count=100").await;
        match answer.status.as_u16() {
            200 => served.extend(answer.numbers()),
            503 => {}
            other => panic!("{other} while fsyncs fail"),
        }
    }
    fs.command("fsync-eio off");
    // It serves again by itself, from leases written after the failure.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut after = 0;
    while after < 1000 {
        let answer = pez.http.get("/v2/forward?count=100").await;
        if answer.status.as_u16() == 200 {
            served.extend(answer.numbers());
            after += 100;
        } else {
            assert!(std::time::Instant::now() < deadline, "no recovery");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    fs.cut_power(&mut pez);

    let pez = start(&fs, &data_dir);
    let next = pez.http.numbers("/v1/forward").await[0];
    let highest = served.iter().max().copied().unwrap_or_default();
    assert!(
        next > highest,
        "after the power cut forward issues {next} again: {highest} was served"
    );
}

#[tokio::test]
async fn a_crash_after_a_failed_fsync_then_a_power_cut_issues_nothing_again() {
    let mut fs = CutFs::mount();
    let data_dir = fs.mount.join("data");
    let mut pez = start(&fs, &data_dir);
    let mut served = pez.http.numbers("/v2/forward?count=100").await;
    fs.command("fsync-eio on");
    for _ in 0..6 {
        let answer = pez.http.get("/v2/forward?count=100").await;
        if answer.status.as_u16() == 200 {
            served.extend(answer.numbers());
        }
    }
    fs.command("fsync-eio off");
    // A crash, not a power cut: the page cache, with what the failed fsync
    // never wrote, is what the next start reads.
    pez.kill_9();
    let mut pez = start(&fs, &data_dir);
    for _ in 0..10 {
        served.extend(pez.http.numbers("/v2/forward?count=100").await);
    }
    fs.cut_power(&mut pez);

    let pez = start(&fs, &data_dir);
    let next = pez.http.numbers("/v1/forward").await[0];
    let highest = served.iter().max().copied().unwrap_or_default();
    assert!(
        next > highest,
        "after the power cut forward issues {next} again: {highest} was served"
    );
}

#[tokio::test]
async fn a_short_read_during_a_start_after_a_crash_does_not_keep_the_server_out() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let dir = TempDir::new();
    let mut pez = PezProcess::start(dir.path(), &[]);
    let before = pez.http.numbers("/v2/forward?count=5").await;
    // A crash leaves the log full, so the start writes the store out
    // again; a read (`pez sequence list`, a `sqlite3` query) holding a
    // snapshot of the log meanwhile makes that wait for it, not fail.
    pez.kill_9();
    let mut reader = diesel::SqliteConnection::establish(
        &dir.path().join(pez::store::DATABASE_FILE).to_string_lossy(),
    )
    .expect("open the store file");
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM sequences;")
        .expect("a read transaction");
    let reading = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        reader.batch_execute("COMMIT").expect("the reader lets go");
    });
    let pez = PezProcess::start(dir.path(), &[]);
    reading.join().expect("reader");
    let after = pez.http.numbers("/v2/forward?count=5").await;
    assert!(after[0] > before[4], "{after:?} after {before:?}");
}

#[tokio::test]
async fn a_data_directory_made_by_someone_else_is_made_durable_too() {
    let mut fs = CutFs::mount();
    // systemd's StateDirectory=, the package's `install -d` or an
    // operator's `mkdir -p` made it, and none fsyncs the directories above.
    let data_dir = fs.mount.join("srv").join("pez");
    std::fs::create_dir_all(&data_dir).expect("make the data directory");
    let mut pez = start(&fs, &data_dir);
    let before = pez.http.numbers("/v2/forward?count=5").await;
    fs.cut_power(&mut pez);
    assert!(
        data_dir.exists(),
        "the data directory is gone after the cut"
    );
    let pez = start(&fs, &data_dir);
    let after = pez.http.numbers("/v2/forward?count=5").await;
    assert!(after[0] > before[4], "{after:?} after {before:?}");
}

#[tokio::test]
async fn a_reader_holding_the_store_does_not_keep_a_server_from_starting_after_a_clean_stop() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let dir = TempDir::new();
    let mut pez = PezProcess::start(dir.path(), &[]);
    let before = pez.http.numbers("/v2/forward?count=5").await;
    pez.terminate();
    assert_eq!(pez.wait_exit(Duration::from_secs(15)).0, Some(0));
    // A `sqlite3` shell (or a backup tool) in a read transaction, for as
    // long as the server takes to start and serve.
    let mut reader = diesel::SqliteConnection::establish(
        &dir.path().join(pez::store::DATABASE_FILE).to_string_lossy(),
    )
    .expect("open the store file");
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM sequences;")
        .expect("a read transaction");
    let pez = PezProcess::start(dir.path(), &[]);
    let after = pez.http.numbers("/v2/forward?count=5").await;
    assert_eq!(after[0], before[4] + 1, "a clean stop leaves no gap");
    reader.batch_execute("COMMIT").expect("the reader lets go");
}

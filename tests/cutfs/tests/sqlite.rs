//! SQLite (WAL mode, synchronous=FULL, as PEZ's store) on cutfs, through the
//! sqlite3 command-line shell (Debian: apt-get install -y sqlite3).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn sqlite(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .args(["-cmd", ".timeout 10000"])
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 (apt-get install -y sqlite3)");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A sqlite3 shell, SIGKILLed and reaped when dropped (the power cut as
/// the service sees it).
struct Shell(Child);

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start a sqlite3 shell on `db` and commit `rows` one-row transactions in
/// WAL mode with synchronous=FULL; return once another connection sees them
/// all, with the shell still running (its connection open, nothing
/// checkpointed at close).
fn commit_rows(db: &Path, rows: u32) -> Shell {
    // Busy timeouts on both sides: the polling reader and the writer
    // contend for the locks while the database is being set up.
    let mut shell = Shell(
        Command::new("sqlite3")
            .args(["-cmd", ".timeout 10000"])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("sqlite3 (apt-get install -y sqlite3)"),
    );
    let stdin = shell.0.stdin.as_mut().unwrap();
    writeln!(
        stdin,
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
    )
    .unwrap();
    for i in 1..=rows {
        writeln!(stdin, "BEGIN; INSERT INTO t(v) VALUES('row {i}'); COMMIT;").unwrap();
    }
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("sqlite3")
            .args(["-cmd", ".timeout 10000"])
            .arg(db)
            .arg("SELECT count(*) FROM t")
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == rows.to_string() {
            return shell;
        }
        assert!(Instant::now() < deadline, "rows never committed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn committed_rows_survive_a_cut_under_a_killed_writer() {
    let mut fs = Cutfs::mount("sqlite", 7);
    std::fs::create_dir(fs.path("data")).unwrap();
    sync_dir(&fs.mnt);
    let db = fs.path("data/pez.db");

    // Phase 1: the writer is killed after the freeze, its WAL never
    // checkpointed. Every committed row comes back from the WAL.
    let shell = commit_rows(&db, 20);
    eprintln!(
        "before cut: {:?} {}",
        names(&fs.path("data")),
        fs.ok("stats")
    );
    fs.ok("freeze");
    drop(shell);
    let r = fs.ok("cut");
    eprintln!("{r}");
    eprintln!("after cut: {:?}", names(&fs.path("data")));
    assert!(db.exists(), "the main database file did not survive");
    assert_eq!(sqlite(&db, "SELECT count(*) FROM t"), "20");
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok");
    assert_eq!(sqlite(&db, "PRAGMA journal_mode"), "wal");

    // Phase 2: one-shot connections, each the last to close: checkpoint
    // into the main file (fsynced) and delete the WAL (name not synced).
    for i in 21..=30 {
        sqlite(
            &db,
            &format!("PRAGMA synchronous=FULL; INSERT INTO t(v) VALUES('row {i}');"),
        );
    }
    eprintln!("before cut 2: {:?}", names(&fs.path("data")));
    let r = fs.ok("cut torn");
    eprintln!("{r}");
    eprintln!("after cut 2: {:?}", names(&fs.path("data")));
    assert_eq!(sqlite(&db, "SELECT count(*) FROM t"), "30");
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok");
}

#[test]
fn a_database_in_a_directory_never_synced_is_lost_whole() {
    // What the service must avoid: it creates its data directory, and
    // SQLite syncs only the directory holding the database, not the
    // directory's own entry in its parent.
    let mut fs = Cutfs::mount("sqlite-nodir", 7);
    std::fs::create_dir(fs.path("data")).unwrap();
    let db = fs.path("data/pez.db");
    let shell = commit_rows(&db, 5);
    fs.ok("freeze");
    drop(shell);
    fs.ok("cut");
    assert!(!fs.path("data").exists());
}

//! cutfs mounted for real, driven through std::fs, libc and the control
//! socket. Needs root (or a fusermount3 that lets this user mount with
//! allow_other) and /dev/fuse.

mod common;

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};

use common::*;

#[test]
fn fsync_and_fsyncdir_decide_what_survives_a_cut() {
    let mut fs = Cutfs::mount("basics", 1);
    // Synced data, synced name.
    put(&fs.path("synced"), b"synced content", true);
    // Old content synced, new content not.
    put(&fs.path("old"), b"old content", true);
    // Synced name, data never synced.
    put(&fs.path("empty"), b"never synced", false);
    sync_dir(&fs.mnt);
    put(&fs.path("old"), b"NEW CONTENT, longer", false);
    append(&fs.path("synced"), b" + unsynced tail", false);
    // Data synced, name never.
    put(&fs.path("nameless"), b"data synced", true);
    assert_eq!(read(&fs.path("old")), b"NEW CONTENT, longer");

    let r = fs.ok("cut");
    assert!(r.starts_with("ok cut: dropped "), "{r}");
    assert!(r.contains("1 directory changes"), "{r}");

    assert_eq!(read(&fs.path("synced")), b"synced content");
    assert_eq!(read(&fs.path("old")), b"old content");
    assert_eq!(read(&fs.path("empty")), b"");
    assert_eq!(
        fs::metadata(fs.path("nameless")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let mut names: Vec<_> = fs::read_dir(&fs.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["empty", "old", "synced"]);
    // The file system keeps working after a cut.
    put(&fs.path("after"), b"x", true);
    sync_dir(&fs.mnt);
    fs.ok("cut");
    assert_eq!(read(&fs.path("after")), b"x");
}

#[test]
fn an_unsynced_rename_and_an_unsynced_subtree_are_undone() {
    let mut fs = Cutfs::mount("rename", 1);
    put(&fs.path("a"), b"content of a", true);
    put(&fs.path("c"), b"c", true);
    fs::create_dir(fs.path("dir")).unwrap();
    sync_dir(&fs.mnt);
    fs::rename(fs.path("a"), fs.path("b")).unwrap();
    // Moved into a synced directory, the source directory not synced.
    fs::rename(fs.path("c"), fs.path("dir/c")).unwrap();
    sync_dir(&fs.path("dir"));
    // A whole subtree whose top was never named durably.
    fs::create_dir(fs.path("sub")).unwrap();
    fs::create_dir(fs.path("sub/deeper")).unwrap();
    put(&fs.path("sub/deeper/f"), b"f", true);
    sync_dir(&fs.path("sub/deeper"));
    sync_dir(&fs.path("sub"));
    assert!(fs.path("b").exists() && !fs.path("a").exists());

    fs.ok("cut");
    assert_eq!(read(&fs.path("a")), b"content of a");
    assert!(!fs.path("b").exists());
    assert!(!fs.path("sub").exists());
    // Strict POSIX: the rename is durable in dir, not in the root.
    assert_eq!(read(&fs.path("c")), b"c");
    assert_eq!(read(&fs.path("dir/c")), b"c");
    // A rename followed by a sync of its directory stays.
    fs::rename(fs.path("a"), fs.path("b")).unwrap();
    sync_dir(&fs.mnt);
    fs.ok("cut");
    assert_eq!(read(&fs.path("b")), b"content of a");
    assert!(!fs.path("a").exists());
}

#[test]
fn after_freeze_nothing_changes_and_nothing_is_acknowledged() {
    let mut fs = Cutfs::mount("freeze", 1);
    put(&fs.path("f"), b"durable", true);
    sync_dir(&fs.mnt);
    let mut f = open_rw(&fs.path("f"));
    f.write_all(b"pending").unwrap();
    assert_eq!(fs.ok("freeze"), "ok frozen");
    let e = f.write_all(b"after freeze").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = f.sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = f.sync_data().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = try_sync_dir(&fs.mnt).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = File::create(fs.path("new")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = fs::rename(fs.path("f"), fs.path("g")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = fs::remove_file(fs.path("f")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = fs::set_permissions(fs.path("f"), fs::Permissions::from_mode(0o600)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    // Reads still work (and see what was written before the freeze).
    assert_eq!(read(&fs.path("f")), b"pending");
    drop(f);
    let r = fs.ok("cut");
    assert_eq!(
        r,
        "ok cut: dropped 1 writes (7 bytes) in 1 files, 0 directory changes"
    );
    assert_eq!(read(&fs.path("f")), b"durable");
    assert!(fs.ok("stats").contains("frozen=0"));
    // Unfrozen by the cut.
    append(&fs.path("f"), b"!", true);
    assert_eq!(read(&fs.path("f")), b"durable!");
}

#[test]
fn a_torn_cut_keeps_a_prefix_of_the_unsynced_writes() {
    let mut fs = Cutfs::mount("torn", 42);
    put(&fs.path("f"), b"", true);
    sync_dir(&fs.mnt);
    let mut durable: Vec<u8> = b"base:".to_vec();
    put(&fs.path("f"), &durable, true);
    let mut partial = 0;
    let mut none = 0;
    let mut all = 0;
    for round in 0..30u8 {
        // Three unsynced writes of distinct bytes after the durable part.
        let mut full = durable.clone();
        {
            let mut f = open_rw(&fs.path("f"));
            f.seek(SeekFrom::End(0)).unwrap();
            for w in 0..3u8 {
                let chunk: Vec<u8> = (0..100u8)
                    .map(|i| b'a' + (round * 3 + w + i) % 26)
                    .collect();
                f.write_all(&chunk).unwrap();
                full.extend_from_slice(&chunk);
            }
        }
        let r = fs.ok("cut torn");
        assert!(r.starts_with("ok cut torn: dropped "), "{r}");
        let got = read(&fs.path("f"));
        assert!(
            got.len() >= durable.len() && full.starts_with(&got),
            "round {round}: {} bytes, not durable ({}) + a prefix of the {} unsynced: {r}",
            got.len(),
            durable.len(),
            full.len() - durable.len()
        );
        match got.len() - durable.len() {
            0 => none += 1,
            300 => all += 1,
            _ => partial += 1,
        }
        durable = got;
    }
    // A plain cut would keep none, a copy of the current data all.
    assert!(partial > 0, "none {none} all {all} partial {partial}");
}

#[test]
fn enospc_refuses_growth_only() {
    let mut fs = Cutfs::mount("enospc", 1);
    put(&fs.path("f"), &[b'x'; 100], true);
    sync_dir(&fs.mnt);
    assert_eq!(fs.ok("enospc on"), "ok enospc on");
    let mut f = open_rw(&fs.path("f"));
    f.seek(SeekFrom::End(0)).unwrap();
    let e = f.write_all(b"more").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StorageFull, "{e}");
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
    f.seek(SeekFrom::Start(10)).unwrap();
    f.write_all(b"overwrite").unwrap();
    f.sync_all().unwrap();
    let e = File::create(fs.path("new")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    let e = fs::create_dir(fs.path("newdir")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    // SAFETY: fallocate on an open fd.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 4096) };
    assert_eq!(rc, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOSPC)
    );
    let c = CString::new(fs.mnt.as_os_str().as_bytes()).unwrap();
    // SAFETY: statvfs into a zeroed struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    assert_eq!(st.f_bfree, 0);
    assert_eq!(st.f_bavail, 0);
    assert_eq!(fs.ok("enospc off"), "ok enospc off");
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(b"more").unwrap();
    f.sync_all().unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 8192) }, 0);
    assert_eq!(f.metadata().unwrap().len(), 8192);
    // SAFETY: as above; KEEP_SIZE is not supported.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 9000) };
    assert_eq!(rc, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EOPNOTSUPP)
    );
    drop(f);
    fs.ok("cut");
    let got = read(&fs.path("f"));
    assert_eq!(got.len(), 104);
    assert_eq!(&got[10..19], b"overwrite");
    assert_eq!(&got[100..], b"more");
}

#[test]
fn a_failed_fsync_loses_its_writes_for_good() {
    let mut fs = Cutfs::mount("eio", 1);
    put(&fs.path("f"), b"old", true);
    sync_dir(&fs.mnt);
    let mut f = open_rw(&fs.path("f"));
    f.write_all(b"new").unwrap();
    assert_eq!(fs.ok("eio on"), "ok eio on");
    let e = f.write_all(b"more").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = f.sync_all().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let e = try_sync_dir(&fs.mnt).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    let mut buf = Vec::new();
    let e = File::open(fs.path("f"))
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert!(fs.ok("stats").contains("fsync_errors=2"));
    assert_eq!(fs.ok("eio off"), "ok eio off");
    // The write is still in the current data, and a later fsync succeeds...
    assert_eq!(read(&fs.path("f")), b"new");
    f.sync_all().unwrap();
    drop(f);
    // ...but it never becomes durable (fsyncgate).
    fs.ok("cut torn");
    assert_eq!(read(&fs.path("f")), b"old");
    // Writes after the failure are made durable as usual.
    put(&fs.path("f"), b"newer", true);
    fs.ok("cut");
    assert_eq!(read(&fs.path("f")), b"newer");
}

fn flock_nb(f: &File) -> Result<(), i32> {
    // SAFETY: flock on an open fd.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    }
}

fn fcntl_lock(f: &File, cmd: libc::c_int) -> Result<(), i32> {
    // SAFETY: a zeroed flock struct filled in, fcntl on an open fd.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    let rc = unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    }
}

#[test]
fn flock_and_fcntl_locks_exclude() {
    let fs = Cutfs::mount("locks", 1);
    let p = fs.path("lock");
    put(&p, b"", true);
    // flock: two open file descriptions in this process.
    let a = open_rw(&p);
    let b = open_rw(&p);
    assert_eq!(flock_nb(&a), Ok(()));
    assert_eq!(flock_nb(&b), Err(libc::EWOULDBLOCK));
    drop(a);
    assert_eq!(flock_nb(&b), Ok(()));
    drop(b);
    // OFD locks: two open file descriptions in this process.
    let a = open_rw(&p);
    let b = open_rw(&p);
    assert_eq!(fcntl_lock(&a, libc::F_OFD_SETLK), Ok(()));
    assert_eq!(fcntl_lock(&b, libc::F_OFD_SETLK), Err(libc::EAGAIN));
    drop(a);
    assert_eq!(fcntl_lock(&b, libc::F_OFD_SETLK), Ok(()));
    drop(b);
    // POSIX locks and flock between two processes: the child tries what
    // the parent holds and exits with the errno it got (0: it got the lock).
    let a = open_rw(&p);
    assert_eq!(fcntl_lock(&a, libc::F_SETLK), Ok(()));
    assert_eq!(flock_nb(&a), Ok(()));
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let child_errno = |use_flock: bool| -> i32 {
        // SAFETY: the child only calls async-signal-safe functions (open,
        // fcntl, flock, _exit) on memory prepared before the fork.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                let fd = libc::open(c.as_ptr(), libc::O_RDWR);
                if fd < 0 {
                    libc::_exit(100);
                }
                let rc = if use_flock {
                    libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB)
                } else {
                    let mut fl: libc::flock = std::mem::zeroed();
                    fl.l_type = libc::F_WRLCK as _;
                    fl.l_whence = libc::SEEK_SET as _;
                    libc::fcntl(fd, libc::F_SETLK, &mut fl)
                };
                libc::_exit(if rc == 0 {
                    0
                } else {
                    *libc::__errno_location()
                });
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            assert!(libc::WIFEXITED(status));
            libc::WEXITSTATUS(status)
        }
    };
    assert_eq!(child_errno(false), libc::EAGAIN);
    assert_eq!(child_errno(true), libc::EWOULDBLOCK);
    drop(a);
    assert_eq!(child_errno(false), 0);
    assert_eq!(child_errno(true), 0);
}

#[test]
fn posix_details_that_sqlite_and_std_rely_on() {
    let mut fs = Cutfs::mount("posix", 1);
    let root = fs::metadata(&fs.mnt).unwrap();
    assert_eq!(
        (root.uid(), root.gid(), root.mode() & 0o7777),
        (0, 0, 0o755)
    );
    // O_EXCL on an existing name.
    put(&fs.path("f"), b"data", true);
    let e = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(fs.path("f"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    // Modes and owners (the service wants 0700 directories, 0600 files).
    fs::create_dir(fs.path("d")).unwrap();
    fs::set_permissions(fs.path("d"), fs::Permissions::from_mode(0o700)).unwrap();
    File::create(fs.path("d/g")).unwrap();
    fs::set_permissions(fs.path("d/g"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(fs.path("d/g"), Some(1), Some(2)).unwrap();
    let m = fs::metadata(fs.path("d/g")).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.nlink()),
        (0o600, 1, 2, 1)
    );
    let m = fs::metadata(fs.path("d")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.nlink()), (0o700, 2));
    assert!(m.is_dir());
    // Symlinks: readlink, and O_NOFOLLOW gives ELOOP.
    std::os::unix::fs::symlink("f", fs.path("link")).unwrap();
    assert_eq!(fs::read_link(fs.path("link")).unwrap().as_os_str(), "f");
    assert_eq!(read(&fs.path("link")), b"data");
    let e = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(fs.path("link"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    // Hard links share data.
    fs::hard_link(fs.path("f"), fs.path("f2")).unwrap();
    assert_eq!(fs::metadata(fs.path("f")).unwrap().nlink(), 2);
    append(&fs.path("f2"), b"+", false);
    assert_eq!(read(&fs.path("f")), b"data+");
    // Truncation.
    OpenOptions::new()
        .write(true)
        .open(fs.path("f"))
        .unwrap()
        .set_len(2)
        .unwrap();
    assert_eq!(read(&fs.path("f2")), b"da");
    // An unlinked file keeps working while open.
    let mut u = open_rw(&fs.path("d/g"));
    fs::remove_file(fs.path("d/g")).unwrap();
    u.write_all(b"still here").unwrap();
    u.sync_all().unwrap();
    u.seek(SeekFrom::Start(0)).unwrap();
    let mut s = String::new();
    u.read_to_string(&mut s).unwrap();
    assert_eq!(s, "still here");
    assert_eq!(u.metadata().unwrap().nlink(), 0);
    drop(u);
    // rmdir of a non-empty directory, rename over a directory.
    File::create(fs.path("d/h")).unwrap();
    let e = fs::remove_dir(fs.path("d")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
    fs::remove_file(fs.path("d/h")).unwrap();
    fs::remove_dir(fs.path("d")).unwrap();
    assert!(!fs.path("d").exists());
    // Unknown commands are refused.
    assert_eq!(fs.cmd("reboot"), "err unknown command: reboot");
    assert_eq!(fs.ok("ping"), "ok pong");
}

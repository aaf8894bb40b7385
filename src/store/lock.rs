//! One process per embedded store.
//!
//! SQLite would let two PEZ processes share a database file, and each would
//! lease correctly, but a graceful stop hands back numbers on the assumption
//! that this process alone moves the sequences, and `pez sequence restart`
//! must not move a sequence under a running server. An advisory lock on a
//! file in the data directory, held for the life of the process, makes that
//! assumption true. The kernel drops it when the process dies, even by
//! kill -9, so a crash never leaves a stale lock behind.
//!
//! The lock file is written (our pid), so it is opened as
//! [`trusted::private_file`] opens PEZ's own files: never through a link,
//! made 0600, and checked to be a regular file of root's or PEZ's own before
//! anything is truncated or written.

use crate::trusted::{self, Untrusted};
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::{fmt, io};

/// The exclusive hold on a data directory; released on drop.
#[derive(Debug)]
pub struct DataDirLock {
    // Kept open only for the lock it carries.
    _file: File,
}

/// Why the data directory could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; `holder` is the pid it wrote, if readable.
    Held {
        /// The directory.
        dir: PathBuf,
        /// What the holder wrote into the lock file (its pid).
        holder: Option<String>,
    },
    /// The lock file could not be created or locked.
    Io(PathBuf, io::Error),
    /// The lock file is a link, or not PEZ's (another user could have
    /// planted it).
    Untrusted(Untrusted),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { dir, holder } => {
                write!(f, "another pez process")?;
                if let Some(pid) = holder {
                    write!(f, " (pid {pid})")?;
                }
                write!(f, " is using the store in {}", dir.display())
            }
            LockError::Io(path, err) => write!(f, "cannot lock {}: {err}", path.display()),
            LockError::Untrusted(why) => why.fmt(f),
        }
    }
}

impl std::error::Error for LockError {}

impl DataDirLock {
    /// Takes the lock of `dir` without waiting, and records our pid in it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join("pez.lock");
        let io_err = |e| LockError::Io(path.clone(), e);
        let mut file =
            trusted::private_file("the lock file", &path).map_err(LockError::Untrusted)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = Some(holder.trim().to_owned()).filter(|h| !h.is_empty());
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(Self { _file: file })
    }
}

/// The pid a process holding `dir`'s lock wrote, if that process still
/// runs: read without taking the lock (a command that only looks must never
/// keep a server from starting). A hint: pids are reused.
pub fn holder(dir: &Path) -> Option<String> {
    let mut pid = String::new();
    trusted::private_file_to_read(&dir.join("pez.lock"))?
        .read_to_string(&mut pid)
        .ok()?;
    let pid = pid.trim();
    (!pid.is_empty() && Path::new("/proc").join(pid).exists()).then(|| pid.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("pez-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = DataDirLock::acquire(&dir).unwrap();
        let err = DataDirLock::acquire(&dir).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&std::process::id().to_string()),
            "{message}"
        );
        assert!(message.contains("another pez process"), "{message}");
        drop(first);
        DataDirLock::acquire(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Directory entries that outlive a power cut.
//!
//! An fsync of a file makes its data durable, not its name: on Linux, a
//! file or directory that was just made exists after a power cut only once
//! the directory holding it was fsynced too. SQLite does that for the WAL
//! and the rollback journal it makes, but not for the database file (PEZ
//! makes it, see [`super::sqlite`]), and nobody does it for the data
//! directory. Without these, a power cut soon after the first start could
//! take the whole store away while clients hold its numbers, and the next
//! start would make a new one and issue them all again.
//!
//! `make power-cut` (tests/power-cut) finds exactly this on a file system
//! that forgets what was not synced.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// Makes every name in `dir` as durable as its parent's fsync makes it:
/// files and directories made in it so far survive a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir)?.sync_all() {
        // A file system that cannot fsync a directory (some network ones
        // answer EINVAL) gives no stronger promise to anyone; PostgreSQL's
        // fsync_fname accepts that too.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// Makes the name of `path` in its parent durable: [`sync_dir`] of the
/// directory holding it (`.` for a bare name).
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// Makes the names of `dir` and of every directory above it durable, up to
/// the root: whoever made them (an operator's `mkdir -p`, systemd, a
/// package) may not have fsynced them, and a power cut that takes one of
/// them takes the store inside. The parent must succeed (unless it is on a
/// read-only file system, where no name can have changed); above it, a
/// directory that cannot be synced (this user may not open it, a read-only
/// root) is passed over: nothing can be done about it from here.
pub fn sync_ancestors(dir: &Path) -> io::Result<()> {
    let dir = fs::canonicalize(dir)?;
    match sync_parent(&dir) {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => {}
        other => other?,
    }
    for ancestor in dir.ancestors().skip(2) {
        let _ = sync_dir(ancestor);
    }
    Ok(())
}

/// Makes `dir` and every missing parent with `mode` (before the umask), as
/// `mkdir -p` does, and fsyncs the parent of each one made, so that none
/// of them vanishes in a power cut. What already exists is left alone.
pub fn create_dir_all(dir: &Path, mode: u32) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut here = dir;
    while fs::symlink_metadata(here).is_err() {
        missing.push(here);
        match here.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => here = parent,
            _ => break,
        }
    }
    for new in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(mode).create(new) {
            Ok(()) => {}
            // Made meanwhile by someone else: theirs to make durable, but
            // syncing the parent again costs nothing and leaves no doubt.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        sync_parent(new)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn makes_every_missing_parent_with_the_mode_and_leaves_what_exists() {
        let base = std::env::temp_dir().join(format!("pez-durable-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        let deep = base.join("a").join("b");
        create_dir_all(&deep, 0o700).unwrap();
        assert!(deep.is_dir());
        assert_eq!(
            fs::metadata(base.join("a")).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // Again: nothing to make, no error; the base keeps its mode.
        create_dir_all(&deep, 0o700).unwrap();
        assert_eq!(
            fs::metadata(&base).unwrap().permissions().mode() & 0o777,
            0o755
        );
        sync_dir(&deep).unwrap();
        fs::remove_dir_all(&base).unwrap();
    }
}

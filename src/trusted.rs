//! Files that another local user must not control.
//!
//! PEZ often runs as root or as a service user in directories it did not
//! make (`cd /tmp/shared && pez sequence restart ...`). A directory another
//! user owns or can write is one where they can plant a symbolic link that
//! PEZ would then write through with its own rights; a token file, `.env`
//! or `--to-file` they can change lets them add a token of their own or
//! point PEZ at a database of theirs. So every such path must belong to
//! root or to the user PEZ runs as, and no group or other user may write
//! it; and the files PEZ makes in its data directory are opened without
//! following a link, and made 0700 (the directory) or 0600 (the files),
//! whatever the umask.
//!
//! Each check reads the file it is about to use (its open descriptor, where
//! there is one), so nothing can be swapped in between the check and the
//! use. Outside the data directory a link is followed (a token file may be
//! a link, as Kubernetes mounts its secrets), and what it leads to is
//! checked, as is every link on the way: each must be root's or PEZ's own.
#![allow(unsafe_code)]

use crate::durable;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::{fmt, fs::Permissions};

/// The mode of a directory PEZ makes: only its owner may enter it.
const PRIVATE_DIR: u32 = 0o700;
/// The mode of a file PEZ makes: only its owner may read or write it.
const PRIVATE_FILE: u32 = 0o600;
/// The permission bits that let a group or other users write.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// The effective user id PEZ runs as: the one user besides root whose
/// files it trusts.
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no argument, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why a path was not used; one line that names the path, what is wrong
/// and what to do.
#[derive(Debug)]
pub struct Untrusted {
    /// What the path is to PEZ ("the data directory", "the token file").
    what: &'static str,
    path: PathBuf,
    why: Why,
}

#[derive(Debug)]
enum Why {
    /// Owned by a user other than root and PEZ's own.
    Owner(u32),
    /// Its group or other users may write it (its mode).
    Writable(u32),
    /// A symbolic link where PEZ makes its own files.
    Link,
    /// The path leads through a link another user owns (and so may point
    /// anywhere, at a file of root's among others).
    LinkOwner {
        /// The link.
        link: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// Not the kind of file expected (a directory, a device...).
    Kind {
        /// What it should be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// It could not be read or made.
    Io(io::Error),
}

impl Why {
    /// Not `expected` but what `meta` says it is.
    fn kind(expected: &'static str, meta: &Metadata) -> Self {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        let found = if kind.is_dir() {
            "a directory"
        } else if kind.is_file() {
            "a file"
        } else if kind.is_symlink() {
            "a symbolic link"
        } else if kind.is_fifo() {
            "a pipe"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_block_device() || kind.is_char_device() {
            "a device"
        } else {
            "something else"
        };
        Why::Kind { expected, found }
    }
}

impl Untrusted {
    fn new(what: &'static str, path: &Path, why: Why) -> Self {
        Self {
            what,
            path: path.to_owned(),
            why,
        }
    }

    /// Why the path could not be opened or read, when that is what went
    /// wrong (rather than who owns it); a missing `.env` is no error.
    pub fn could_not_read(&self) -> Option<&io::Error> {
        match &self.why {
            Why::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { what, path, why } = self;
        let path = path.display();
        match why {
            Why::Owner(uid) => write!(
                f,
                "{what} {path} belongs to uid {uid}, but pez (uid {me}) trusts only root's \
                 files and its own: chown {me} {path}, or run pez as uid {uid}",
                me = euid()
            ),
            Why::Writable(mode) => write!(
                f,
                "{what} {path} can be changed by other users (mode {mode:04o}): chmod go-w {path}"
            ),
            Why::Link => write!(
                f,
                "{what} {path} is a symbolic link, which pez never writes through: remove it"
            ),
            Why::LinkOwner { link, uid } => write!(
                f,
                "{what} {path} leads through the link {link}, which belongs to uid {uid}; pez \
                 (uid {me}) follows only root's links and its own: remove it, or name the file \
                 itself",
                link = link.display(),
                me = euid()
            ),
            // Not "remove it": the path may be an operator's typo for a
            // file of theirs (PEZ_DATA_DIR=/etc/passwd).
            Why::Kind { expected, found } => write!(
                f,
                "{what} {path} is {found}, not {expected}: name {expected} there, or move it \
                 away"
            ),
            Why::Io(e) => write!(f, "cannot open {what} {path}: {e}"),
        }
    }
}

impl std::error::Error for Untrusted {}

/// Refuses what another user owns or may write.
fn check(what: &'static str, path: &Path, meta: &Metadata) -> Result<(), Untrusted> {
    let owner = meta.uid();
    if owner != 0 && owner != euid() {
        return Err(Untrusted::new(what, path, Why::Owner(owner)));
    }
    let mode = meta.mode() & 0o7777;
    // A sticky bit does not help: another user could still put a link
    // under a name PEZ has not made yet.
    if mode & WRITABLE_BY_OTHERS != 0 {
        return Err(Untrusted::new(what, path, Why::Writable(mode)));
    }
    Ok(())
}

/// Reads a file that holds settings or secrets (a token file, `.env`,
/// `--to-file`), after checking who may change it. A link is followed;
/// the file it leads to is what is checked, through the descriptor that
/// is then read.
pub fn read_to_string(what: &'static str, path: &Path) -> Result<String, Untrusted> {
    let io = |e| Untrusted::new(what, path, Why::Io(e));
    links_are_trusted(what, path)?;
    let mut file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Untrusted::new(
            what,
            path,
            Why::kind("a regular file", &meta),
        ));
    }
    check(what, path, &meta)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    Ok(text)
}

/// Refuses a path that leads through a symbolic link another user owns.
/// Checking only the file a path ends at is not enough: whoever owns a
/// link (or a directory on the way, where they can make one) chooses where
/// it leads, and can point it at any file of root's whose lines they know
/// (`/etc/hostname` as a token file). Links cannot be given away, so a
/// link of root's or PEZ's own was made by one of them. The path is walked
/// as the kernel walks it, link by link; a missing part is left to the
/// open that follows to report.
fn links_are_trusted(what: &'static str, path: &Path) -> Result<(), Untrusted> {
    use std::collections::VecDeque;
    use std::path::Component;
    // The kernel's own limit on links followed in one lookup.
    const MAX_LINKS: usize = 40;
    let mut ahead: VecDeque<PathBuf> = path
        .components()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut here = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().map_err(|e| Untrusted::new(what, path, Why::Io(e)))?
    };
    let mut followed = 0;
    while let Some(part) = ahead.pop_front() {
        match part.components().next() {
            Some(Component::RootDir) => here = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                here.pop();
            }
            Some(Component::Normal(name)) => {
                let next = here.join(name);
                let Ok(meta) = fs::symlink_metadata(&next) else {
                    return Ok(());
                };
                if !meta.file_type().is_symlink() {
                    here = next;
                    continue;
                }
                let uid = meta.uid();
                if uid != 0 && uid != euid() {
                    return Err(Untrusted::new(
                        what,
                        path,
                        Why::LinkOwner { link: next, uid },
                    ));
                }
                followed += 1;
                let Ok(target) = fs::read_link(&next) else {
                    return Ok(());
                };
                if followed > MAX_LINKS {
                    return Ok(());
                }
                for component in target.components().rev() {
                    ahead.push_front(PathBuf::from(component.as_os_str()));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Makes `dir` (and any missing parent) 0700 if it is missing, then checks
/// it: a directory, root's or PEZ's own, that no one else may write. A
/// link to a directory is followed (operators move data to another disk
/// that way); the directory it leads to is checked. One that exists keeps
/// its mode: a store made before PEZ made its directories 0700, or one an
/// operator opened to a group, is left as it is.
pub fn private_dir(what: &'static str, dir: &Path) -> Result<(), Untrusted> {
    let io = |e| Untrusted::new(what, dir, Why::Io(e));
    if fs::symlink_metadata(dir).is_err() {
        // Each directory made is fsynced into its parent: a data directory
        // lost in a power cut would be made again, empty, at the next start.
        durable::create_dir_all(dir, PRIVATE_DIR).map_err(io)?;
        // The umask may have taken bits PEZ needs; none it would add back.
        fs::set_permissions(dir, Permissions::from_mode(PRIVATE_DIR)).map_err(io)?;
    }
    links_are_trusted(what, dir)?;
    let meta = fs::metadata(dir).map_err(io)?;
    if !meta.is_dir() {
        return Err(Untrusted::new(what, dir, Why::kind("a directory", &meta)));
    }
    check(what, dir, &meta)
}

/// Refuses `dir` if something other than a directory is there; a missing
/// one is no error (for a command that only reads, and makes nothing).
pub fn dir_if_present(what: &'static str, dir: &Path) -> Result<(), Untrusted> {
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            Err(Untrusted::new(what, dir, Why::kind("a directory", &meta)))
        }
        _ => Ok(()),
    }
}

/// Opens (making it 0600 if missing) a file of PEZ's own in its data
/// directory, for reading and writing, never through a link, and checks
/// it before anything is written: a regular file, root's or PEZ's own,
/// that no one else may write. Nothing is truncated here; the caller does
/// that once this has said the file is PEZ's.
pub fn private_file(what: &'static str, path: &Path) -> Result<File, Untrusted> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| refused_open(what, path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| Untrusted::new(what, path, Why::Io(e)))?;
    if !meta.is_file() {
        return Err(Untrusted::new(
            what,
            path,
            Why::kind("a regular file", &meta),
        ));
    }
    check(what, path, &meta)?;
    Ok(file)
}

/// Opens a file of PEZ's own for reading only, never through a link:
/// `None` when it is not there or not PEZ's to read.
pub fn private_file_to_read(path: &Path) -> Option<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && check("", path, &meta).is_ok()).then_some(file)
}

/// Checks a file someone else (SQLite) will open by name in the data
/// directory: if it is there, it is a regular file, not a link, that is
/// root's or PEZ's own and that no one else may write.
pub fn not_a_link(what: &'static str, path: &Path) -> Result<(), Untrusted> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Untrusted::new(what, path, Why::Io(e))),
    };
    if meta.file_type().is_symlink() {
        return Err(Untrusted::new(what, path, Why::Link));
    }
    if !meta.is_file() {
        return Err(Untrusted::new(
            what,
            path,
            Why::kind("a regular file", &meta),
        ));
    }
    check(what, path, &meta)
}

/// O_NOFOLLOW's refusal of a link is ELOOP, which would read as "too many
/// levels of symbolic links": say what it means here.
fn refused_open(what: &'static str, path: &Path, e: io::Error) -> Untrusted {
    let why = if e.raw_os_error() == Some(libc::ELOOP) {
        Why::Link
    } else {
        Why::Io(e)
    };
    Untrusted::new(what, path, why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, symlink};

    /// A fresh directory under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pez-trusted-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_missing_data_directory_is_made_0700_whatever_the_umask_took() {
        let base = scratch("made");
        let dir = base.join("a/b");
        private_dir("the data directory", &dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_file_made_in_the_data_directory_is_0600_and_one_through_a_link_is_refused() {
        let base = scratch("files");
        let file = private_file("the lock file", &base.join("mine")).unwrap();
        assert_eq!(file.metadata().unwrap().mode() & 0o7777, 0o600);
        let target = base.join("elsewhere");
        fs::write(&target, "kept").unwrap();
        symlink(&target, base.join("link")).unwrap();
        let err = private_file("the lock file", &base.join("link")).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(not_a_link("the WAL", &base.join("link")).is_err());
        assert!(not_a_link("the WAL", &base.join("absent")).is_ok());
        assert_eq!(fs::read_to_string(target).unwrap(), "kept");
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_file_another_user_owns_or_may_write_is_refused_with_what_to_do() {
        // chown to a uid no one uses needs root, which the tests run as.
        let base = scratch("owners");
        let path = base.join("tokens");
        fs::write(&path, "t0ken\n").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_to_string("the token file", &path).unwrap(), "t0ken\n");
        fs::set_permissions(&path, Permissions::from_mode(0o620)).unwrap();
        let err = read_to_string("the token file", &path).unwrap_err();
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
        chown(&path, Some(4242), None).expect("chown needs root");
        let err = read_to_string("the token file", &path).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("uid 4242"), "{message}");
        assert!(message.contains(&format!("chown {}", euid())), "{message}");
        fs::remove_dir_all(base).unwrap();
    }
}

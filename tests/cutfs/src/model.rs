//! The in-memory file system and its power-cut model (see the crate's top
//! comment). Pure logic, no FUSE: every operation takes `&mut State` and
//! returns `Result<_, Errno>`; `fuse.rs` only translates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

use fuser::{Errno, FileType};

/// The root directory's inode number (FUSE_ROOT_ID).
pub const ROOT: u64 = 1;

/// Largest file size accepted (a test file system held in memory).
const MAX_FILE_SIZE: u64 = 1 << 30;

/// Block size reported by statfs and used for the block counts.
pub const BLOCK: u64 = 4096;

/// Size of the file system as statfs reports it, in blocks (4 GiB).
const TOTAL_BLOCKS: u64 = 1 << 20;

/// A change to a file's data not yet made durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Bytes written at an offset (zero-filling any hole before it).
    Write { offset: u64, bytes: Vec<u8> },
    /// The file truncated or extended to a length.
    SetLen(u64),
}

impl Op {
    fn apply(&self, data: &mut Vec<u8>) {
        match self {
            Op::Write { offset, bytes } => write_at(data, *offset, bytes),
            Op::SetLen(len) => data.resize(*len as usize, 0),
        }
    }
}

fn write_at(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[start..end].copy_from_slice(bytes);
}

/// What an inode holds, with its current and durable states.
#[derive(Debug)]
pub enum Body {
    File {
        cur: Vec<u8>,
        dur: Vec<u8>,
        pending: Vec<Op>,
    },
    Dir {
        cur: BTreeMap<OsString, u64>,
        dur: BTreeMap<OsString, u64>,
        /// The current parent, for "..".
        parent: u64,
    },
    /// A symbolic link: its target is durable with the inode.
    Symlink(OsString),
    /// A fifo, socket or device node made by mknod (no data).
    Special { kind: FileType, rdev: u32 },
}

/// One inode.
#[derive(Debug)]
pub struct Inode {
    pub body: Body,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub crtime: SystemTime,
    /// Entries naming it in current directory states.
    pub links: u32,
    /// Entries naming it in durable directory states.
    pub dur_links: u32,
    /// Open file handles (open/create .. release, opendir .. releasedir).
    pub opens: u32,
    /// Freed: unreachable after a cut, or unlinked, closed and not durably
    /// named. The number stays allocated (never reused) and answers ESTALE.
    pub gone: bool,
}

impl Inode {
    pub fn kind(&self) -> FileType {
        match &self.body {
            Body::File { .. } => FileType::RegularFile,
            Body::Dir { .. } => FileType::Directory,
            Body::Symlink(_) => FileType::Symlink,
            Body::Special { kind, .. } => *kind,
        }
    }

    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File { cur, .. } => cur.len() as u64,
            Body::Dir { cur, .. } => cur.len() as u64,
            Body::Symlink(t) => t.len() as u64,
            Body::Special { .. } => 0,
        }
    }

    pub fn nlink(&self) -> u32 {
        match &self.body {
            Body::Dir { .. } => 2,
            _ => self.links,
        }
    }

    pub fn rdev(&self) -> u32 {
        match &self.body {
            Body::Special { rdev, .. } => *rdev,
            _ => 0,
        }
    }
}

/// Counters reported by `stats`.
#[derive(Debug, Default)]
pub struct Counters {
    pub writes: u64,
    pub fsyncs: u64,
    pub fsyncdirs: u64,
    pub fsync_errors: u64,
    pub cuts: u64,
}

/// The whole file system: every inode, the fault flags, the counters.
#[derive(Debug)]
pub struct State {
    pub inodes: HashMap<u64, Inode>,
    next_ino: u64,
    next_fh: u64,
    /// Open directory handles: a snapshot of the entries taken at offset 0.
    dir_handles: HashMap<u64, Vec<(u64, FileType, OsString)>>,
    pub frozen: bool,
    pub enospc: bool,
    pub eio: bool,
    /// Only fsyncs fail (EIO), dropping what they would have made durable;
    /// reads and writes work: a disk whose write-back fails behind the
    /// page cache, which Linux reports at the next fsync only.
    pub fsync_eio: bool,
    pub counters: Counters,
    rng: u64,
}

/// What a cut threw away, for its reply.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Pending operations not (fully) made durable.
    pub ops: u64,
    /// Bytes of pending writes not made durable.
    pub bytes: u64,
    /// Files that had such operations.
    pub files: u64,
    /// Directory entries whose current state differed from the durable one.
    pub dir_changes: u64,
    /// `cut torn` only: files of which a strict prefix of the pending
    /// operations was kept (the last one kept possibly torn).
    pub torn_files: u64,
    /// `cut torn` only: pending operations made durable (a torn one counts).
    pub kept_ops: u64,
}

type Res<T> = Result<T, Errno>;

impl State {
    /// An empty file system: a root directory owned by root, mode 0755.
    pub fn new(seed: u64) -> State {
        let now = SystemTime::now();
        let mut inodes = HashMap::new();
        inodes.insert(
            ROOT,
            Inode {
                body: Body::Dir {
                    cur: BTreeMap::new(),
                    dur: BTreeMap::new(),
                    parent: ROOT,
                },
                perm: 0o755,
                uid: 0,
                gid: 0,
                atime: now,
                mtime: now,
                ctime: now,
                crtime: now,
                links: 1,
                dur_links: 1,
                opens: 0,
                gone: false,
            },
        );
        State {
            inodes,
            next_ino: ROOT + 1,
            next_fh: 1,
            dir_handles: HashMap::new(),
            frozen: false,
            enospc: false,
            eio: false,
            fsync_eio: false,
            counters: Counters::default(),
            rng: splitmix64(seed),
        }
    }

    /// The live inode `ino`: ESTALE if freed, ENOENT if never allocated.
    pub fn get(&self, ino: u64) -> Res<&Inode> {
        match self.inodes.get(&ino) {
            Some(i) if i.gone => Err(Errno::ESTALE),
            Some(i) => Ok(i),
            None => Err(Errno::ENOENT),
        }
    }

    fn get_mut(&mut self, ino: u64) -> Res<&mut Inode> {
        match self.inodes.get_mut(&ino) {
            Some(i) if i.gone => Err(Errno::ESTALE),
            Some(i) => Ok(i),
            None => Err(Errno::ENOENT),
        }
    }

    fn dir_cur(&self, ino: u64) -> Res<&BTreeMap<OsString, u64>> {
        match &self.get(ino)?.body {
            Body::Dir { cur, .. } => Ok(cur),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn dir_cur_mut(&mut self, ino: u64) -> Res<&mut BTreeMap<OsString, u64>> {
        match &mut self.get_mut(ino)?.body {
            Body::Dir { cur, .. } => Ok(cur),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn check_mutable(&self) -> Res<()> {
        if self.frozen { Err(Errno::EIO) } else { Ok(()) }
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> Res<u64> {
        let ino = *self.dir_cur(parent)?.get(name).ok_or(Errno::ENOENT)?;
        self.get(ino)?;
        Ok(ino)
    }

    /// Make a new inode named `name` in `parent` (current state only).
    pub fn make(
        &mut self,
        parent: u64,
        name: &OsStr,
        body: Body,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Res<u64> {
        self.check_mutable()?;
        if self.enospc {
            return Err(Errno::ENOSPC);
        }
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        if self.dir_cur(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let body = match body {
            Body::Dir { cur, dur, .. } => Body::Dir { cur, dur, parent },
            b => b,
        };
        let now = SystemTime::now();
        self.inodes.insert(
            ino,
            Inode {
                body,
                perm: perm & 0o7777,
                uid,
                gid,
                atime: now,
                mtime: now,
                ctime: now,
                crtime: now,
                links: 1,
                dur_links: 0,
                opens: 0,
                gone: false,
            },
        );
        self.dir_cur_mut(parent)?.insert(name.to_owned(), ino);
        self.touch(parent);
        Ok(ino)
    }

    fn touch(&mut self, ino: u64) {
        if let Some(i) = self.inodes.get_mut(&ino) {
            let now = SystemTime::now();
            i.mtime = now;
            i.ctime = now;
        }
    }

    pub fn open(&mut self, ino: u64) -> Res<u64> {
        self.get_mut(ino)?.opens += 1;
        let fh = self.next_fh;
        self.next_fh += 1;
        Ok(fh)
    }

    pub fn release(&mut self, ino: u64, fh: u64) {
        self.dir_handles.remove(&fh);
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.opens = i.opens.saturating_sub(1);
        }
        self.collect(ino);
    }

    /// Free a file, symlink or node no longer named (currently or durably)
    /// nor open. Directories are only freed by a cut.
    fn collect(&mut self, ino: u64) {
        if ino == ROOT {
            return;
        }
        if let Some(i) = self.inodes.get_mut(&ino)
            && !i.gone
            && i.links == 0
            && i.dur_links == 0
            && i.opens == 0
            && !matches!(i.body, Body::Dir { .. })
        {
            free(i);
        }
    }

    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Res<Vec<u8>> {
        if self.eio {
            return Err(Errno::EIO);
        }
        match &self.get(ino)?.body {
            Body::File { cur, .. } => {
                let start = (offset as usize).min(cur.len());
                let end = (start + size as usize).min(cur.len());
                Ok(cur[start..end].to_vec())
            }
            Body::Dir { .. } => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Apply a data change to a file's current state and queue it.
    fn change(&mut self, ino: u64, op: Op) -> Res<()> {
        let inode = self.get_mut(ino)?;
        match &mut inode.body {
            Body::File { cur, pending, .. } => {
                op.apply(cur);
                pending.push(op);
            }
            Body::Dir { .. } => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        let now = SystemTime::now();
        inode.mtime = now;
        inode.ctime = now;
        Ok(())
    }

    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Res<u32> {
        self.check_mutable()?;
        if self.eio {
            return Err(Errno::EIO);
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        if self.enospc && end > self.get(ino)?.size() {
            return Err(Errno::ENOSPC);
        }
        self.change(
            ino,
            Op::Write {
                offset,
                bytes: data.to_vec(),
            },
        )?;
        self.counters.writes += 1;
        Ok(data.len() as u32)
    }

    pub fn fallocate(&mut self, ino: u64, offset: u64, length: u64, mode: i32) -> Res<()> {
        self.check_mutable()?;
        if mode != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if self.enospc {
            return Err(Errno::ENOSPC);
        }
        let end = offset.checked_add(length).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let size = self.get(ino)?.size();
        if !matches!(self.get(ino)?.body, Body::File { .. }) {
            return Err(Errno::ENODEV);
        }
        if end > size {
            self.change(
                ino,
                Op::Write {
                    offset: size,
                    bytes: vec![0; (end - size) as usize],
                },
            )?;
        }
        Ok(())
    }

    /// chmod, chown, truncate, utimes. Ownership and times apply to both
    /// states at once (they are kept, not modelled).
    #[allow(clippy::too_many_arguments)]
    pub fn setattr(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> Res<()> {
        self.check_mutable()?;
        self.get(ino)?;
        if let Some(size) = size {
            if self.eio {
                return Err(Errno::EIO);
            }
            if size > MAX_FILE_SIZE {
                return Err(Errno::EFBIG);
            }
            self.change(ino, Op::SetLen(size))?;
        }
        let inode = self.get_mut(ino)?;
        let now = SystemTime::now();
        if let Some(mode) = mode {
            inode.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = uid {
            inode.uid = uid;
        }
        if let Some(gid) = gid {
            inode.gid = gid;
        }
        if let Some(t) = atime {
            inode.atime = t;
        }
        if let Some(t) = mtime {
            inode.mtime = t;
        }
        inode.ctime = now;
        Ok(())
    }

    /// fsync/fdatasync of a file: its pending operations, in order, onto
    /// its durable data. Under `eio`, fails and discards them (fsyncgate).
    pub fn fsync(&mut self, ino: u64) -> Res<()> {
        self.check_mutable()?;
        let eio = self.eio || self.fsync_eio;
        let inode = self.get_mut(ino)?;
        if let Body::File { dur, pending, .. } = &mut inode.body {
            if eio {
                pending.clear();
            } else {
                for op in pending.drain(..) {
                    op.apply(dur);
                }
            }
        }
        if eio {
            self.counters.fsync_errors += 1;
            return Err(Errno::EIO);
        }
        self.counters.fsyncs += 1;
        Ok(())
    }

    /// fsync of a directory: its current entries become its durable ones.
    pub fn fsyncdir(&mut self, ino: u64) -> Res<()> {
        self.check_mutable()?;
        if self.eio || self.fsync_eio {
            self.counters.fsync_errors += 1;
            return Err(Errno::EIO);
        }
        let (old, new) = match &mut self.get_mut(ino)?.body {
            Body::Dir { cur, dur, .. } => {
                let old = std::mem::replace(dur, cur.clone());
                (old, cur.clone())
            }
            _ => return Err(Errno::ENOTDIR),
        };
        for i in new.values() {
            if let Some(n) = self.inodes.get_mut(i) {
                n.dur_links += 1;
            }
        }
        for i in old.values() {
            if let Some(n) = self.inodes.get_mut(i) {
                n.dur_links = n.dur_links.saturating_sub(1);
            }
            self.collect(*i);
        }
        self.counters.fsyncdirs += 1;
        Ok(())
    }

    /// Remove the entry `name` (a non-directory unless `dir`).
    pub fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Res<()> {
        self.check_mutable()?;
        let ino = self.lookup(parent, name)?;
        match (&self.get(ino)?.body, dir) {
            (Body::Dir { cur, .. }, true) => {
                if !cur.is_empty() {
                    return Err(Errno::ENOTEMPTY);
                }
            }
            (Body::Dir { .. }, false) => return Err(Errno::EISDIR),
            (_, true) => return Err(Errno::ENOTDIR),
            (_, false) => {}
        }
        self.dir_cur_mut(parent)?.remove(name);
        self.touch(parent);
        let inode = self.get_mut(ino)?;
        inode.links = inode.links.saturating_sub(1);
        inode.ctime = SystemTime::now();
        self.collect(ino);
        Ok(())
    }

    pub fn link(&mut self, ino: u64, parent: u64, name: &OsStr) -> Res<()> {
        self.check_mutable()?;
        if self.enospc {
            return Err(Errno::ENOSPC);
        }
        if matches!(self.get(ino)?.body, Body::Dir { .. }) {
            return Err(Errno::EPERM);
        }
        if self.dir_cur(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        self.dir_cur_mut(parent)?.insert(name.to_owned(), ino);
        self.touch(parent);
        let inode = self.get_mut(ino)?;
        inode.links += 1;
        inode.ctime = SystemTime::now();
        Ok(())
    }

    /// rename(2), with RENAME_NOREPLACE and RENAME_EXCHANGE.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        noreplace: bool,
        exchange: bool,
    ) -> Res<()> {
        self.check_mutable()?;
        let src = self.lookup(parent, name)?;
        let dst = match self.lookup(newparent, newname) {
            Ok(d) => Some(d),
            Err(e) if e == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        let src_dir = matches!(self.get(src)?.body, Body::Dir { .. });
        if exchange {
            let dst = dst.ok_or(Errno::ENOENT)?;
            self.dir_cur_mut(parent)?.insert(name.to_owned(), dst);
            self.dir_cur_mut(newparent)?.insert(newname.to_owned(), src);
            self.set_parent(src, newparent);
            self.set_parent(dst, parent);
            self.touch(parent);
            self.touch(newparent);
            return Ok(());
        }
        if let Some(dst) = dst {
            if noreplace {
                return Err(Errno::EEXIST);
            }
            if dst == src {
                return Ok(());
            }
            match (&self.get(dst)?.body, src_dir) {
                (Body::Dir { cur, .. }, true) => {
                    if !cur.is_empty() {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
                (Body::Dir { .. }, false) => return Err(Errno::EISDIR),
                (_, true) => return Err(Errno::ENOTDIR),
                (_, false) => {}
            }
        }
        self.dir_cur_mut(parent)?.remove(name);
        self.dir_cur_mut(newparent)?.insert(newname.to_owned(), src);
        self.set_parent(src, newparent);
        self.touch(parent);
        self.touch(newparent);
        if let Some(dst) = dst {
            let inode = self.get_mut(dst)?;
            inode.links = inode.links.saturating_sub(1);
            self.collect(dst);
        }
        Ok(())
    }

    fn set_parent(&mut self, ino: u64, new: u64) {
        if let Some(Inode {
            body: Body::Dir { parent, .. },
            ..
        }) = self.inodes.get_mut(&ino)
        {
            *parent = new;
        }
    }

    /// Directory entries from `offset` on ("." and ".." first), snapshot
    /// taken per handle at offset 0.
    pub fn readdir(
        &mut self,
        ino: u64,
        fh: u64,
        offset: u64,
    ) -> Res<Vec<(u64, FileType, OsString)>> {
        if offset == 0 || !self.dir_handles.contains_key(&fh) {
            let (cur, parent) = match &self.get(ino)?.body {
                Body::Dir { cur, parent, .. } => (cur, *parent),
                _ => return Err(Errno::ENOTDIR),
            };
            let mut list = vec![
                (ino, FileType::Directory, OsString::from(".")),
                (parent, FileType::Directory, OsString::from("..")),
            ];
            for (name, i) in cur {
                if let Ok(inode) = self.get(*i) {
                    list.push((*i, inode.kind(), name.clone()));
                }
            }
            self.dir_handles.insert(fh, list);
        }
        let list = &self.dir_handles[&fh];
        Ok(list.iter().skip(offset as usize).cloned().collect())
    }

    /// statfs: (blocks, free blocks, files, free files).
    pub fn statfs(&self) -> (u64, u64, u64, u64) {
        let used: u64 = self
            .inodes
            .values()
            .filter(|i| !i.gone)
            .map(|i| match &i.body {
                Body::File { cur, dur, .. } => (cur.len().max(dur.len()) as u64).div_ceil(BLOCK),
                _ => 0,
            })
            .sum();
        let free = if self.enospc {
            0
        } else {
            TOTAL_BLOCKS.saturating_sub(used)
        };
        let files = self.inodes.values().filter(|i| !i.gone).count() as u64;
        (
            TOTAL_BLOCKS,
            free,
            1 << 20,
            (1u64 << 20).saturating_sub(files),
        )
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..=n (modulo bias is irrelevant here).
    fn below_or_eq(&mut self, n: u64) -> u64 {
        self.next_random() % (n + 1)
    }

    /// The power comes back: see `cut` and `cut torn` in the crate doc.
    pub fn cut(&mut self, torn: bool) -> CutReport {
        self.frozen = true;
        let mut report = CutReport::default();
        let mut inos: Vec<u64> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in &inos {
            let mut pending = match &mut self.inodes.get_mut(ino).unwrap().body {
                Body::File { pending, .. } if !pending.is_empty() => std::mem::take(pending),
                _ => continue,
            };
            let mut keep: Vec<Op> = Vec::new();
            if torn {
                let n = pending.len() as u64;
                let k = self.below_or_eq(n) as usize;
                keep.extend(pending.drain(..k));
                if !pending.is_empty() {
                    report.torn_files += 1;
                    let torn_op = match pending[0].clone() {
                        Op::Write { offset, bytes } => {
                            let r = (self.next_random() % bytes.len().max(1) as u64) as usize;
                            let kept = bytes[..r].to_vec();
                            let rest = bytes[r..].to_vec();
                            pending[0] = Op::Write {
                                offset: offset + r as u64,
                                bytes: rest,
                            };
                            (r > 0).then_some(Op::Write {
                                offset,
                                bytes: kept,
                            })
                        }
                        Op::SetLen(len) => {
                            let applied = self.next_random() & 1 == 1;
                            let op = Op::SetLen(len);
                            if applied {
                                pending.remove(0);
                            }
                            applied.then_some(op)
                        }
                    };
                    if let Some(op) = torn_op {
                        keep.push(op);
                        report.kept_ops += 1;
                    }
                }
                report.kept_ops += k as u64;
            }
            if let Body::File { dur, .. } = &mut self.inodes.get_mut(ino).unwrap().body {
                for op in &keep {
                    op.apply(dur);
                }
            }
            if !pending.is_empty() {
                report.files += 1;
                report.ops += pending.len() as u64;
                report.bytes += pending
                    .iter()
                    .map(|op| match op {
                        Op::Write { bytes, .. } => bytes.len() as u64,
                        Op::SetLen(_) => 0,
                    })
                    .sum::<u64>();
            }
        }
        for inode in self.inodes.values_mut() {
            if inode.gone {
                continue;
            }
            match &mut inode.body {
                Body::File { cur, dur, .. } => *cur = dur.clone(),
                Body::Dir { cur, dur, .. } => {
                    for (name, i) in cur.iter() {
                        if dur.get(name) != Some(i) {
                            report.dir_changes += 1;
                        }
                    }
                    report.dir_changes +=
                        dur.keys().filter(|n| !cur.contains_key(*n)).count() as u64;
                    *cur = dur.clone();
                }
                _ => {}
            }
        }
        // Reachability from the root through the (now equal) entries.
        for inode in self.inodes.values_mut() {
            inode.links = 0;
            inode.dur_links = 0;
        }
        let mut seen = HashSet::from([ROOT]);
        let mut todo = vec![ROOT];
        while let Some(dir) = todo.pop() {
            let children: Vec<u64> = match &self.inodes[&dir].body {
                Body::Dir { cur, .. } => cur.values().copied().collect(),
                _ => continue,
            };
            for c in children {
                let Some(child) = self.inodes.get_mut(&c) else {
                    continue;
                };
                child.links += 1;
                child.dur_links += 1;
                if seen.insert(c) {
                    if let Body::Dir { parent, .. } = &mut child.body {
                        *parent = dir;
                    }
                    todo.push(c);
                }
            }
        }
        let root = self.inodes.get_mut(&ROOT).unwrap();
        root.links = 1;
        root.dur_links = 1;
        for (ino, inode) in self.inodes.iter_mut() {
            if !seen.contains(ino) && !inode.gone {
                free(inode);
            }
        }
        self.dir_handles.clear();
        self.counters.cuts += 1;
        self.frozen = false;
        report
    }

    /// (pending operations, pending bytes) over all files.
    pub fn pending(&self) -> (u64, u64) {
        let mut ops = 0;
        let mut bytes = 0;
        for i in self.inodes.values() {
            if let Body::File { pending, .. } = &i.body {
                ops += pending.len() as u64;
                for op in pending {
                    if let Op::Write { bytes: b, .. } = op {
                        bytes += b.len() as u64;
                    }
                }
            }
        }
        (ops, bytes)
    }
}

fn free(inode: &mut Inode) {
    inode.gone = true;
    match &mut inode.body {
        Body::File { cur, dur, pending } => {
            *cur = Vec::new();
            *dur = Vec::new();
            *pending = Vec::new();
        }
        Body::Dir { cur, dur, .. } => {
            *cur = BTreeMap::new();
            *dur = BTreeMap::new();
        }
        _ => {}
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let z = z ^ (z >> 31);
    if z == 0 { 1 } else { z }
}

/// An empty regular file.
pub fn new_file() -> Body {
    Body::File {
        cur: Vec::new(),
        dur: Vec::new(),
        pending: Vec::new(),
    }
}

/// An empty directory (its parent is set by `make`).
pub fn new_dir() -> Body {
    Body::Dir {
        cur: BTreeMap::new(),
        dur: BTreeMap::new(),
        parent: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(s: &mut State, name: &str) -> u64 {
        s.make(ROOT, OsStr::new(name), new_file(), 0o644, 0, 0)
            .unwrap()
    }

    fn cur(s: &State, ino: u64) -> Vec<u8> {
        s.read(ino, 0, u32::MAX).unwrap()
    }

    #[test]
    fn fsync_makes_data_durable_and_fsyncdir_the_name() {
        let mut s = State::new(1);
        let f = file(&mut s, "a");
        s.write(f, 0, b"hello").unwrap();
        s.fsync(f).unwrap();
        s.write(f, 5, b" world").unwrap();
        s.fsyncdir(ROOT).unwrap();
        let r = s.cut(false);
        assert_eq!(r.ops, 1);
        assert_eq!(r.bytes, 6);
        assert_eq!(s.lookup(ROOT, OsStr::new("a")).unwrap(), f);
        assert_eq!(cur(&s, f), b"hello");
    }

    #[test]
    fn unsynced_name_is_lost_and_inode_stale() {
        let mut s = State::new(1);
        let f = file(&mut s, "a");
        s.write(f, 0, b"x").unwrap();
        s.fsync(f).unwrap();
        let r = s.cut(false);
        assert_eq!(r.dir_changes, 1);
        assert_eq!(s.lookup(ROOT, OsStr::new("a")), Err(Errno::ENOENT));
        assert_eq!(s.get(f).err(), Some(Errno::ESTALE));
    }

    #[test]
    fn torn_cut_keeps_a_prefix() {
        for seed in 0..200 {
            let mut s = State::new(seed);
            let f = file(&mut s, "a");
            s.fsyncdir(ROOT).unwrap();
            s.write(f, 0, b"base").unwrap();
            s.fsync(f).unwrap();
            s.write(f, 4, b"0123456789").unwrap();
            s.write(f, 14, b"abcdefghij").unwrap();
            s.cut(true);
            let got = cur(&s, f);
            let full = b"base0123456789abcdefghij";
            assert!(
                got.len() >= 4 && full.starts_with(&got),
                "seed {seed}: {got:?}"
            );
        }
    }

    #[test]
    fn failed_fsync_discards_pending() {
        let mut s = State::new(1);
        let f = file(&mut s, "a");
        s.fsyncdir(ROOT).unwrap();
        s.write(f, 0, b"old").unwrap();
        s.fsync(f).unwrap();
        s.write(f, 0, b"new").unwrap();
        s.eio = true;
        assert_eq!(s.fsync(f), Err(Errno::EIO));
        s.eio = false;
        assert_eq!(cur(&s, f), b"new");
        s.fsync(f).unwrap();
        s.cut(true);
        assert_eq!(cur(&s, f), b"old");
    }

    #[test]
    fn unlinked_file_stays_until_durable_unlink_and_close() {
        let mut s = State::new(1);
        let f = file(&mut s, "a");
        s.fsyncdir(ROOT).unwrap();
        let fh = s.open(f).unwrap();
        s.remove(ROOT, OsStr::new("a"), false).unwrap();
        s.fsyncdir(ROOT).unwrap();
        assert!(s.get(f).is_ok());
        s.write(f, 0, b"x").unwrap();
        s.release(f, fh);
        assert_eq!(s.get(f).err(), Some(Errno::ESTALE));
    }

    #[test]
    fn frozen_changes_nothing() {
        let mut s = State::new(1);
        let f = file(&mut s, "a");
        s.frozen = true;
        assert_eq!(s.write(f, 0, b"x"), Err(Errno::EIO));
        assert_eq!(s.fsync(f), Err(Errno::EIO));
        assert_eq!(s.fsyncdir(ROOT), Err(Errno::EIO));
        assert_eq!(
            s.make(ROOT, OsStr::new("b"), new_file(), 0o644, 0, 0),
            Err(Errno::EIO)
        );
        assert_eq!(cur(&s, f), b"");
    }
}

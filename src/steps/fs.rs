//! The filesystem view (a prepared [`FsSpec`]): the sources opened as detached mount trees,
//! the base, the mounts in order, and for an empty root the pivot. Async-signal-safe: every
//! path was prepared, the trees' fds go into slots the plan allocated, and paths are joined
//! in stack buffers.
//!
//! A [`StepError`]'s `detail` says what failed: the op's index, or [`SOURCE`] plus the
//! source's index.

use std::cell::Cell;
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags,
};

use super::{Step, StepError};
use crate::fs::{self as view, Base, FsSpec, Kind, PreparedOp};

/// `detail` of an error in opening a source.
pub(crate) const SOURCE: u32 = 0x8000_0000;

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

fn err(detail: u32) -> impl Fn(Errno) -> StepError {
    move |e| StepError {
        step: Step::Filesystem,
        errno: e.raw_os_error(),
        detail,
    }
}

fn err_raw(detail: u32, errno: i32) -> StepError {
    StepError {
        step: Step::Filesystem,
        errno,
        detail,
    }
}

/// A path joined from parts in a stack buffer.
struct Buf {
    buf: [u8; 4096],
    len: usize,
}

impl Buf {
    fn new() -> Self {
        Buf {
            buf: [0; 4096],
            len: 0,
        }
    }
    fn push(&mut self, part: &[u8]) -> Result<&mut Self, i32> {
        if self.len + part.len() + 1 > self.buf.len() {
            return Err(libc::ENAMETOOLONG);
        }
        self.buf[self.len..self.len + part.len()].copy_from_slice(part);
        self.len += part.len();
        self.buf[self.len] = 0;
        Ok(self)
    }
    fn c_str(&self) -> &CStr {
        // The buffer holds a NUL at `len` and none before (parts are C strings' bytes).
        CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }
}

/// Open every source as a detached copy of its mount tree (recursive), with the op's
/// attributes: read-only, nodev unless a device bind. Done first, before any mount could
/// hide a source.
fn open_sources(fs: &FsSpec, slots: &[Cell<i32>]) -> Result<(), StepError> {
    for (i, src) in fs.sources.iter().enumerate() {
        let detail = SOURCE | i as u32;
        let user = fs.ops.iter().find(|o| {
            o.source >= 0
                && (o.source as usize == i
                    || (o.kind == Kind::Dev
                        && (o.source as usize..o.source as usize + view::DEVICES.len())
                            .contains(&i)))
        });
        let flags = user.map_or(0, |o| o.flags);
        let dev_node = user.is_some_and(|o| matches!(o.kind, Kind::Dev | Kind::Hide));
        // The parent made the path canonical: a symlink in it now was swapped in since
        // (a race against the sandbox's own earlier actions), so none is followed.
        let tree = match rustix::fs::openat2(
            CWD,
            src.as_c_str(),
            OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            rustix::fs::ResolveFlags::NO_SYMLINKS | rustix::fs::ResolveFlags::NO_MAGICLINKS,
        )
        .and_then(|fd| {
            rustix::mount::open_tree(
                &fd,
                c"",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_RECURSIVE
                    | OpenTreeFlags::AT_EMPTY_PATH,
            )
        }) {
            Ok(t) => t,
            Err(Errno::NOENT) if flags & view::TRY != 0 => {
                slots[i].set(-1);
                continue;
            }
            Err(e) => return Err(err(detail)(e)),
        };
        // Every bind is nosuid, as bubblewrap's: a setuid program from the host never gains
        // its privileges inside.
        let mut set = MOUNT_ATTR_NOSUID;
        // A minimal /dev's nodes are read-only mounts too: reading and writing a device is
        // not changing its inode, which is the host's (a root orchestrator's sandbox owns
        // it: it could chmod the host's /dev/null, or set its times).
        if flags & view::READ_ONLY != 0
            || user.is_some_and(|o| matches!(o.kind, Kind::Hide | Kind::Dev))
        {
            set |= MOUNT_ATTR_RDONLY;
        }
        if flags & view::DEV == 0 && !dev_node {
            set |= MOUNT_ATTR_NODEV;
        }
        crate::sys::mount_setattr_fd(tree.as_fd(), c"", true, set, 0)
            .map_err(|e| err_raw(detail, e))?;
        slots[i].set(std::os::fd::IntoRawFd::into_raw_fd(tree));
    }
    Ok(())
}

/// Take the tree in slot `i` (its fd is closed when the OwnedFd drops).
fn take(slots: &[Cell<i32>], i: i32) -> Option<OwnedFd> {
    let fd = slots.get(usize::try_from(i).ok()?)?.replace(-1);
    // SAFETY: the slot held an fd open_tree returned, owned by nothing else; it is taken
    // out of the slot once.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Close the trees left in the slots (skipped ops, or after a failure).
pub(crate) fn close_sources(slots: &[Cell<i32>]) {
    for i in 0..slots.len() {
        drop(take(slots, i as i32));
    }
}

/// What to create at a missing destination.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Create {
    No,
    Dir,
    File,
}

/// Resolve `dst` (absolute, normalized) under `root`, never through a symlink, creating what
/// is missing: an O_PATH fd of the destination itself (never a symlink).
///
/// First the whole path in one openat2(2) (RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH): a view of a
/// dozen mounts resolves some fifty paths, and a walk costs two calls and a close per
/// component. Where that fails (something to create, or an error to name), one component at
/// a time.
fn resolve(root: BorrowedFd<'_>, dst: &CStr, create: Create) -> Result<OwnedFd, Errno> {
    let b = dst.to_bytes();
    let rel = &b[b.iter().take_while(|&&c| c == b'/').count()..];
    let mut p = Buf::new();
    if p.push(if rel.is_empty() { b"." } else { rel }).is_ok()
        && let Ok(fd) = rustix::fs::openat2(
            root,
            p.c_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            rustix::fs::ResolveFlags::NO_SYMLINKS
                | rustix::fs::ResolveFlags::NO_MAGICLINKS
                | rustix::fs::ResolveFlags::BENEATH,
        )
    {
        // The last component may be a symlink (opened as itself): the walk below refuses it.
        let st = rustix::fs::fstat(&fd)?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Symlink {
            return Ok(fd);
        }
    }
    resolve_walk(root, dst, create).map(|(_, fd)| fd)
}

/// [`resolve`] one component at a time: the parent directory and the destination.
fn resolve_walk(
    root: BorrowedFd<'_>,
    dst: &CStr,
    create: Create,
) -> Result<(OwnedFd, OwnedFd), Errno> {
    let path = dst.to_bytes();
    let mut parent = rustix::fs::openat(
        root,
        c".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let comps = path.split(|&b| b == b'/').filter(|c| !c.is_empty());
    let n = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).count();
    if n == 0 {
        let me = rustix::fs::openat(
            root,
            c".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        return Ok((parent, me));
    }
    for (k, comp) in comps.enumerate() {
        let mut name = Buf::new();
        name.push(comp).map_err(Errno::from_raw_os_error)?;
        let name = name.c_str();
        let last = k + 1 == n;
        let want = if last { create } else { Create::Dir };
        let open = |p: BorrowedFd<'_>| {
            rustix::fs::openat(
                p,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        let fd = match open(parent.as_fd()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if want != Create::No => {
                match want {
                    Create::Dir => {
                        match rustix::fs::mkdirat(parent.as_fd(), name, Mode::from_raw_mode(0o755))
                        {
                            Ok(()) | Err(Errno::EXIST) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    _ => {
                        let f = rustix::fs::openat(
                            parent.as_fd(),
                            name,
                            OFlags::CREATE
                                | OFlags::EXCL
                                | OFlags::WRONLY
                                | OFlags::NOFOLLOW
                                | OFlags::CLOEXEC,
                            Mode::from_raw_mode(0o644),
                        )?;
                        drop(f);
                    }
                }
                open(parent.as_fd())?
            }
            Err(e) => return Err(e),
        };
        let st = rustix::fs::fstat(&fd)?;
        let ty = rustix::fs::FileType::from_raw_mode(st.st_mode);
        if ty == rustix::fs::FileType::Symlink {
            return Err(Errno::LOOP);
        }
        if last {
            return Ok((parent, fd));
        }
        if ty != rustix::fs::FileType::Directory {
            return Err(Errno::NOTDIR);
        }
        parent = fd;
    }
    Err(Errno::INVAL)
}

/// The last component of `dst`, for *at calls on its parent.
fn last_name(dst: &CStr, out: &mut Buf) -> Result<(), Errno> {
    let b = dst.to_bytes();
    let name = b
        .rsplit(|&c| c == b'/')
        .find(|c| !c.is_empty())
        .unwrap_or(b".");
    out.push(name).map_err(Errno::from_raw_os_error)?;
    Ok(())
}

/// Attach the detached `tree` at `target` (an O_PATH fd).
fn attach(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<(), Errno> {
    rustix::mount::move_mount(
        tree,
        c"",
        target,
        c"",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
}

/// A fresh filesystem of `fstype` with `options` (`key=value,...` or empty), attached at
/// `target`.
fn mount_new(
    fstype: &CStr,
    options: &[u8],
    attrs: MountAttrFlags,
    target: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    for opt in options
        .split(|&b| b == b',')
        .filter(|o| !o.is_empty() && *o != b"\0")
    {
        let opt = opt.strip_suffix(b"\0").unwrap_or(opt);
        let (k, v) = match opt.iter().position(|&b| b == b'=') {
            Some(i) => (&opt[..i], Some(&opt[i + 1..])),
            None => (opt, None),
        };
        let mut key = Buf::new();
        key.push(k).map_err(Errno::from_raw_os_error)?;
        match v {
            Some(v) => {
                let mut val = Buf::new();
                val.push(v).map_err(Errno::from_raw_os_error)?;
                rustix::mount::fsconfig_set_string(&fs, key.c_str(), val.c_str())?;
            }
            None => rustix::mount::fsconfig_set_flag(&fs, key.c_str())?,
        }
    }
    rustix::mount::fsconfig_create(&fs)?;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    attach(mnt.as_fd(), target)
}

const SAFE: MountAttrFlags =
    MountAttrFlags::MOUNT_ATTR_NOSUID.union(MountAttrFlags::MOUNT_ATTR_NODEV);

/// Apply one op under `root`.
fn apply(
    root: BorrowedFd<'_>,
    op: &PreparedOp,
    slots: &[Cell<i32>],
    fs: &FsSpec,
    index: usize,
) -> Result<(), Errno> {
    // On the host's own view nothing is created behind the caller's back: a mount point (or
    // a new file's directory) must exist; `dir` creates on purpose.
    let mount_point = |c: Create| if fs.base == Base::Host { Create::No } else { c };
    match op.kind {
        Kind::Bind => {
            let Some(tree) = take(slots, op.source) else {
                return Ok(()); // a tried bind whose source is missing
            };
            let create = if op.flags & view::SRC_DIR != 0 {
                Create::Dir
            } else {
                Create::File
            };
            let target = resolve(root, &op.dst, mount_point(create))?;
            attach(tree.as_fd(), target.as_fd())
        }
        Kind::Tmpfs => {
            let target = resolve(root, &op.dst, mount_point(Create::Dir))?;
            mount_new(c"tmpfs", &op.data, SAFE, target.as_fd())
        }
        Kind::Proc => {
            let target = resolve(root, &op.dst, mount_point(Create::Dir))?;
            mount_new(
                c"proc",
                b"",
                SAFE | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                target.as_fd(),
            )
        }
        Kind::Sysfs => {
            let target = resolve(root, &op.dst, mount_point(Create::Dir))?;
            mount_new(
                c"sysfs",
                b"",
                SAFE | MountAttrFlags::MOUNT_ATTR_NOEXEC | MountAttrFlags::MOUNT_ATTR_RDONLY,
                target.as_fd(),
            )
        }
        Kind::Mqueue => {
            let target = resolve(root, &op.dst, mount_point(Create::Dir))?;
            // Flags as bubblewrap's.
            mount_new(c"mqueue", b"", MountAttrFlags::empty(), target.as_fd())
        }
        Kind::Dev => {
            let target = resolve(root, &op.dst, mount_point(Create::Dir))?;
            mount_new(c"tmpfs", b"mode=755", SAFE, target.as_fd())?;
            // The fd names the covered directory: resolve again to get the new tmpfs.
            let dev = resolve(root, &op.dst, Create::No)?;
            for (k, name) in view::DEVICES.iter().enumerate() {
                let Some(tree) = take(slots, op.source + k as i32) else {
                    continue;
                };
                let mut n = Buf::new();
                n.push(name.as_bytes()).map_err(Errno::from_raw_os_error)?;
                let node = resolve(dev.as_fd(), n.c_str(), Create::File)?;
                attach(tree.as_fd(), node.as_fd())?;
            }
            rustix::fs::mkdirat(&dev, c"pts", Mode::from_raw_mode(0o755))?;
            let pts = resolve(dev.as_fd(), c"pts", Create::No)?;
            mount_new(
                c"devpts",
                b"newinstance,ptmxmode=0666,mode=620",
                MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                pts.as_fd(),
            )?;
            rustix::fs::symlinkat(c"pts/ptmx", &dev, c"ptmx")?;
            rustix::fs::mkdirat(&dev, c"shm", Mode::from_raw_mode(0o1777))?;
            let shm = resolve(dev.as_fd(), c"shm", Create::No)?;
            // A tmpfs of its own (bubblewrap leaves a directory of /dev's): shm_open works
            // for any uid, and nothing is shared with the host.
            mount_new(c"tmpfs", b"mode=1777", SAFE, shm.as_fd())?;
            for (target, name) in [
                (c"/proc/self/fd", c"fd"),
                (c"/proc/self/fd/0", c"stdin"),
                (c"/proc/self/fd/1", c"stdout"),
                (c"/proc/self/fd/2", c"stderr"),
                (c"/proc/kcore", c"core"),
            ] {
                rustix::fs::symlinkat(target, &dev, name)?;
            }
            Ok(())
        }
        Kind::Dir => {
            let dir = resolve(root, &op.dst, Create::Dir)?;
            chmod_fd(dir.as_fd(), op.mode)
        }
        Kind::Symlink => {
            let target = CStr::from_bytes_with_nul(&op.data).map_err(|_| Errno::INVAL)?;
            // The parent directories, then the link itself.
            let (parent, _) = resolve_parent(root, &op.dst, mount_point(Create::Dir))?;
            let mut name = Buf::new();
            last_name(&op.dst, &mut name)?;
            match rustix::fs::symlinkat(target, &parent, name.c_str()) {
                Err(Errno::EXIST) => {
                    // The same link already there is fine (bubblewrap's rule).
                    let mut buf = [0u8; 4096];
                    let n = rustix::fs::readlinkat_raw(&parent, name.c_str(), &mut buf[..])?;
                    if &buf[..n] == target.to_bytes() {
                        Ok(())
                    } else {
                        Err(Errno::EXIST)
                    }
                }
                r => r,
            }
        }
        Kind::File => {
            let (parent, _) = resolve_parent(root, &op.dst, mount_point(Create::Dir))?;
            let mut name = Buf::new();
            last_name(&op.dst, &mut name)?;
            let f = rustix::fs::openat(
                &parent,
                name.c_str(),
                OFlags::CREATE
                    | OFlags::WRONLY
                    | OFlags::TRUNC
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC,
                Mode::from_raw_mode(op.mode & 0o7777),
            )?;
            let mut off = 0;
            while off < op.data.len() {
                match rustix::io::write(&f, &op.data[off..]) {
                    Ok(n) => off += n,
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(e),
                }
            }
            rustix::fs::fchmod(&f, Mode::from_raw_mode(op.mode & 0o7777))?;
            drop(f);
            if op.flags & view::READ_ONLY != 0 {
                let tree = rustix::mount::open_tree(
                    &parent,
                    name.c_str(),
                    OpenTreeFlags::OPEN_TREE_CLONE
                        | OpenTreeFlags::OPEN_TREE_CLOEXEC
                        | OpenTreeFlags::AT_SYMLINK_NOFOLLOW,
                )?;
                crate::sys::mount_setattr_fd(tree.as_fd(), c"", false, MOUNT_ATTR_RDONLY, 0)
                    .map_err(Errno::from_raw_os_error)?;
                let target = resolve(root, &op.dst, Create::No)?;
                attach(tree.as_fd(), target.as_fd())?;
            }
            Ok(())
        }
        Kind::RemountRo => {
            let target = resolve(root, &op.dst, Create::No)?;
            crate::sys::mount_setattr_fd(target.as_fd(), c"", true, MOUNT_ATTR_RDONLY, 0)
                .map_err(Errno::from_raw_os_error)
        }
        Kind::Overlay => {
            let target = resolve(root, &op.dst, mount_point(Create::Dir))?;
            if op.flags & view::TMP_UPPER != 0 {
                // Upper and work directories in the staging tmpfs, outside the root.
                let mut dir = Buf::new();
                dir.push(fs.staging.to_bytes())
                    .and_then(|d| d.push(b"/.overlay-"))
                    .map_err(Errno::from_raw_os_error)?;
                let mut num = [0u8; 10];
                let digits = decimal(index as u32, &mut num);
                dir.push(digits).map_err(Errno::from_raw_os_error)?;
                rustix::fs::mkdir(dir.c_str(), Mode::from_raw_mode(0o700))?;
                let mut opts = Buf::new();
                let base_len = op.data.len().saturating_sub(1);
                opts.push(&op.data[..base_len])
                    .map_err(Errno::from_raw_os_error)?;
                for (key, sub) in [
                    (&b",upperdir="[..], &b"/upper"[..]),
                    (b",workdir=", b"/work"),
                ] {
                    let mut d = Buf::new();
                    d.push(dir.c_str().to_bytes())
                        .and_then(|d| d.push(sub))
                        .map_err(Errno::from_raw_os_error)?;
                    rustix::fs::mkdir(d.c_str(), Mode::from_raw_mode(0o755))?;
                    opts.push(key)
                        .and_then(|o| o.push(d.c_str().to_bytes()))
                        .map_err(Errno::from_raw_os_error)?;
                }
                mount_overlay(opts.c_str().to_bytes(), target.as_fd())
            } else {
                mount_overlay(&op.data[..op.data.len().saturating_sub(1)], target.as_fd())
            }
        }
        Kind::Hide => {
            let target = resolve(root, &op.dst, Create::No)?;
            let st = rustix::fs::fstat(&target)?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
                drop(take(slots, op.source));
                mount_new(
                    c"tmpfs",
                    b"mode=755",
                    SAFE | MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NOEXEC,
                    target.as_fd(),
                )
            } else {
                let tree = take(slots, op.source).ok_or(Errno::NOENT)?;
                attach(tree.as_fd(), target.as_fd())
            }
        }
        Kind::Chmod => {
            let target = resolve(root, &op.dst, Create::No)?;
            chmod_fd(target.as_fd(), op.mode)
        }
    }
}

/// Overlay options are comma-separated with `:`-separated lowers; fsconfig takes them one
/// key at a time.
fn mount_overlay(opts: &[u8], target: BorrowedFd<'_>) -> Result<(), Errno> {
    mount_new(c"overlay", opts, MountAttrFlags::MOUNT_ATTR_NOSUID, target)
}

/// chmod through the O_PATH fd `resolve` returned (never through a path, where a symlink
/// swapped in after the check would be followed: fchmodat follows the last component).
fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    crate::sys::fchmod_o_path(fd, mode & 0o7777).map_err(Errno::from_raw_os_error)
}

/// The parent of `dst`, its missing directories created as `create` says.
fn resolve_parent(
    root: BorrowedFd<'_>,
    dst: &CStr,
    create: Create,
) -> Result<(OwnedFd, ()), Errno> {
    let b = dst.to_bytes();
    let cut = b.iter().rposition(|&c| c == b'/').unwrap_or(0);
    let mut p = Buf::new();
    p.push(if cut == 0 { b"/" } else { &b[..cut] })
        .map_err(Errno::from_raw_os_error)?;
    let dir = resolve(root, p.c_str(), create)?;
    let st = rustix::fs::fstat(&dir)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
        return Err(Errno::NOTDIR);
    }
    // O_PATH directory fds work as dirfds for *at calls.
    Ok((dir, ()))
}

fn decimal(mut v: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// Build the view: sources, base, ops. For an empty root, the new root is left at
/// `staging/root` for [`pivot`] (after the fresh /proc and the kernel's files are protected
/// under it).
pub(crate) fn build(fs: &FsSpec, slots: &[Cell<i32>]) -> Result<(), StepError> {
    let r = build_inner(fs, slots);
    close_sources(slots);
    r
}

fn build_inner(fs: &FsSpec, slots: &[Cell<i32>]) -> Result<(), StepError> {
    open_sources(fs, slots)?;
    let base_err = err(u32::MAX);
    let root = match fs.base {
        Base::Host => open_dir(c"/").map_err(&base_err)?,
        Base::HostReadOnly => {
            crate::sys::mount_setattr_read_only(c"/", true).map_err(|e| err_raw(u32::MAX, e))?;
            open_dir(c"/").map_err(&base_err)?
        }
        Base::Empty => {
            let staging = open_dir(&fs.staging).map_err(&base_err)?;
            mount_new(c"tmpfs", b"mode=755", SAFE, staging.as_fd()).map_err(&base_err)?;
            let staging = open_dir(&fs.staging).map_err(&base_err)?;
            rustix::fs::mkdirat(&staging, c"root", Mode::from_raw_mode(0o755))
                .map_err(&base_err)?;
            // An empty read-only file outside the root, to hide files with (protect_kernel).
            drop(
                rustix::fs::openat(
                    &staging,
                    c"empty",
                    OFlags::CREATE | OFlags::EXCL | OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o444),
                )
                .map_err(&base_err)?,
            );
            // The root must be a mount point of its own for pivot_root.
            let tree = rustix::mount::open_tree(
                &staging,
                c"root",
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .map_err(&base_err)?;
            let at = resolve(staging.as_fd(), c"/root", Create::No).map_err(&base_err)?;
            attach(tree.as_fd(), at.as_fd()).map_err(&base_err)?;
            let root = root_path(fs).map_err(|e| err_raw(u32::MAX, e))?;
            open_dir(root.c_str()).map_err(&base_err)?
        }
    };
    for (i, op) in fs.ops.iter().enumerate() {
        apply(root.as_fd(), op, slots, fs, i).map_err(err(i as u32))?;
    }
    if fs.base == Base::HostReadOnly && fs.make_private {
        make_private(c"/").map_err(&base_err)?;
    }
    Ok(())
}

/// Make every mount under `path` private. A view is read-only only if no mount can arrive in
/// it later: with slave propagation a mount made on the host afterwards (an automount, a USB
/// stick) would appear inside with its own flags, writable.
fn make_private(path: &CStr) -> Result<(), Errno> {
    use rustix::mount::MountPropagationFlags as P;
    rustix::mount::mount_change(path, P::PRIVATE | P::REC)
}

fn open_dir(p: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        p,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `staging/root`.
fn root_path(fs: &FsSpec) -> Result<Buf, i32> {
    let mut p = Buf::new();
    p.push(fs.staging.to_bytes())?.push(b"/root")?;
    Ok(p)
}

/// The path of `abs` (an absolute path) inside the view being built: itself for a host base,
/// under `staging/root` for an empty one.
pub(crate) fn in_view(fs: Option<&FsSpec>, abs: &CStr, out: &mut [u8; 4096]) -> Result<usize, i32> {
    let mut p = Buf::new();
    if let Some(fs) = fs.filter(|f| f.base == Base::Empty) {
        p.push(fs.staging.to_bytes())?.push(b"/root")?;
    }
    p.push(abs.to_bytes())?;
    out[..=p.len].copy_from_slice(&p.buf[..=p.len]);
    Ok(p.len)
}

/// What hides a file: `/dev/null`, or for an empty root (which may have no /dev) an empty
/// file outside it, in the staging tmpfs.
pub(crate) fn mask_source(fs: Option<&FsSpec>, out: &mut [u8; 4096]) -> Result<usize, i32> {
    let mut p = Buf::new();
    match fs.filter(|f| f.base == Base::Empty) {
        Some(fs) => p.push(fs.staging.to_bytes())?.push(b"/empty")?,
        None => p.push(b"/dev/null")?,
    };
    out[..=p.len].copy_from_slice(&p.buf[..=p.len]);
    Ok(p.len)
}

/// Make `staging/root` the root (pivot_root), detach the host's, and go to `/`.
pub(crate) fn pivot(fs: &FsSpec) -> Result<(), StepError> {
    let e = err(u32::MAX - 1);
    let root = root_path(fs).map_err(|x| err_raw(u32::MAX - 1, x))?;
    rustix::process::chdir(root.c_str()).map_err(&e)?;
    rustix::process::pivot_root(c".", c".").map_err(&e)?;
    // The old root is now stacked on the new one: detach it.
    rustix::mount::unmount(c".", UnmountFlags::DETACH).map_err(&e)?;
    rustix::process::chdir(c"/").map_err(&e)?;
    if fs.make_private {
        make_private(c"/").map_err(&e)?;
    }
    Ok(())
}

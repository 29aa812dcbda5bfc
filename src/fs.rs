//! The filesystem a sandbox sees (see [`Filesystem`]), and its prepared form ([`FsSpec`]),
//! which the init's mount steps (`steps::fs`) carry out.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::steps::Step;

/// What the root of a sandbox's filesystem starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    /// The host's mounts, writable as the caller's permissions allow.
    Host,
    /// The host's mounts, every one read-only (recursively).
    HostReadOnly,
    /// A fresh tmpfs, built only from the mounts given, then made the root (pivot_root); the
    /// host's root is detached.
    Empty,
}

/// The filesystem view of a sandbox: a base and mounts applied in the order given.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use nsbox::{Filesystem, Namespaces, Sandbox};
/// // A hermetic compile: /usr and the sources read-only, only the output directory writable.
/// let mut fs = Filesystem::empty();
/// fs.ro_bind("/usr", "/usr")
///     .symlink("usr/bin", "/bin")
///     .symlink("usr/lib", "/lib")
///     .symlink("usr/lib64", "/lib64")
///     .ro_bind("/src/project", "/src")
///     .bind("/build/out", "/out")
///     .dev("/dev")
///     .tmpfs("/tmp");
/// let mut sb = Sandbox::new("cc");
/// sb.args(["-c", "/src/a.c", "-o", "/out/a.o"])
///     .namespaces(Namespaces::all())
///     .filesystem(fs);
/// assert!(sb.status().await?.success());
/// # Ok(()) }
/// ```
///
/// The three bases:
///
/// - [`Filesystem::host`]: the host's mounts as they are, writable where the caller's
///   permissions allow (nsbox's view before this type existed);
/// - [`Filesystem::host_read_only`]: every host mount read-only, recursively (with
///   mount_setattr(2)), then the paths named [`writable`](Filesystem::writable) and the
///   mounts given: the model of Bazel's linux-sandbox;
/// - [`Filesystem::empty`]: a fresh tmpfs holding only the mounts given, made the root with
///   pivot_root(2), the host's root detached: bubblewrap's model.
///
/// Paths: sources are the caller's (resolved when the sandbox is created, in its mount
/// namespace); destinations are absolute paths inside the view. Destinations are resolved one
/// component at a time inside the view and never through a symlink (a destination that is a
/// symlink, or has one on the way, is refused with ELOOP or ENOTDIR), so a mount can never
/// land outside the root. Missing destination directories and files are created where the
/// view may write: in an empty root, in a tmpfs the view made, in a writable path (in the
/// read-only host they cannot be: EROFS). On [`Filesystem::host`] nothing is created behind
/// the caller's back: a mount point must exist (ENOENT), and only [`dir`](Self::dir) makes
/// one. Binds are recursive and nosuid; a bind that is not a device bind is also nodev.
#[derive(Clone, Debug)]
pub struct Filesystem {
    pub(crate) base: Base,
    pub(crate) ops: Vec<Op>,
}

/// One mount (or file-tree change) of a [`Filesystem`], as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Bind {
        src: PathBuf,
        dst: PathBuf,
        read_only: bool,
        dev: bool,
        try_: bool,
    },
    Writable(PathBuf),
    Tmpfs {
        dst: PathBuf,
        size: Option<u64>,
        mode: Option<u32>,
    },
    Dev(PathBuf),
    Proc(PathBuf),
    Mqueue(PathBuf),
    Sysfs(PathBuf),
    Dir {
        dst: PathBuf,
        mode: u32,
    },
    Symlink {
        target: PathBuf,
        dst: PathBuf,
    },
    File {
        dst: PathBuf,
        data: Vec<u8>,
        mode: u32,
        read_only: bool,
    },
    RemountRo(PathBuf),
    Overlay {
        lowers: Vec<PathBuf>,
        upper: Upper,
        dst: PathBuf,
    },
    Hide(PathBuf),
    Chmod {
        dst: PathBuf,
        mode: u32,
    },
}

/// The writable layer of an overlay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upper {
    /// An upper and a work directory of the caller's (on the same filesystem): changes are
    /// kept there.
    ///
    /// With root mapped to host root (a root orchestrator), opening a setuid file of a lower
    /// layer for writing copies it up with its setuid bit, and a write through a shared
    /// mapping keeps the bit: a setuid-root program of the sandbox's making, in the upper
    /// directory on the host. Put the upper directory on a `nosuid` mount, or where only
    /// root can reach it (see the README's security section).
    Dir {
        /// The upper directory.
        upper: PathBuf,
        /// The work directory (empty, on the upper's filesystem).
        work: PathBuf,
    },
    /// A tmpfs: changes vanish with the sandbox. Needs [`Filesystem::empty`].
    Tmpfs,
    /// No upper: the overlay is read-only (at least two lower directories).
    ReadOnly,
}

impl Filesystem {
    /// The host's mounts as they are.
    pub fn host() -> Self {
        Filesystem {
            base: Base::Host,
            ops: Vec::new(),
        }
    }
    /// Every host mount read-only, then the writable paths and mounts given.
    pub fn host_read_only() -> Self {
        Filesystem {
            base: Base::HostReadOnly,
            ops: Vec::new(),
        }
    }
    /// An empty tmpfs root, built only from the mounts given.
    pub fn empty() -> Self {
        Filesystem {
            base: Base::Empty,
            ops: Vec::new(),
        }
    }
    /// The default view of a [`Sandbox`](crate::Sandbox) with a mount namespace: the host
    /// read-only, with a fresh tmpfs on `/tmp`, and one on `/run` (where it exists): a
    /// read-only mount does not stop connect(2), and the host's daemons listen there (docker,
    /// systemd, D-Bus).
    pub fn sandbox_default() -> Self {
        let mut fs = Filesystem::host_read_only();
        // Only over real directories: a destination is never reached through a symlink.
        for d in ["/tmp", "/run"] {
            if real_dir(d) {
                fs.tmpfs(d);
            }
        }
        fs
    }

    fn push(&mut self, op: Op) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Keep the host path `path` writable (a recursive bind of it onto itself, read-write).
    pub fn writable(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.push(Op::Writable(path.into()))
    }
    /// Bind `src` at `dst`, read-write.
    pub fn bind(&mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.bind_op(src, dst, false, false, false)
    }
    /// [`bind`](Self::bind), skipped when `src` does not exist.
    pub fn bind_try(&mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.bind_op(src, dst, false, false, true)
    }
    /// Bind `src` at `dst`, read-only (recursively).
    pub fn ro_bind(&mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.bind_op(src, dst, true, false, false)
    }
    /// [`ro_bind`](Self::ro_bind), skipped when `src` does not exist.
    pub fn ro_bind_try(&mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.bind_op(src, dst, true, false, true)
    }
    /// Bind `src` at `dst`, read-write, with device nodes usable.
    pub fn dev_bind(&mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.bind_op(src, dst, false, true, false)
    }
    /// [`dev_bind`](Self::dev_bind), skipped when `src` does not exist.
    pub fn dev_bind_try(&mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.bind_op(src, dst, false, true, true)
    }
    fn bind_op(
        &mut self,
        src: impl Into<PathBuf>,
        dst: impl Into<PathBuf>,
        read_only: bool,
        dev: bool,
        try_: bool,
    ) -> &mut Self {
        self.push(Op::Bind {
            src: src.into(),
            dst: dst.into(),
            read_only,
            dev,
            try_,
        })
    }
    /// A fresh tmpfs at `dst` (mode 0755, nosuid, nodev).
    pub fn tmpfs(&mut self, dst: impl Into<PathBuf>) -> &mut Self {
        self.tmpfs_with(dst, None, None)
    }
    /// A fresh tmpfs at `dst` with a size limit in bytes and a mode.
    pub fn tmpfs_with(
        &mut self,
        dst: impl Into<PathBuf>,
        size: Option<u64>,
        mode: Option<u32>,
    ) -> &mut Self {
        self.push(Op::Tmpfs {
            dst: dst.into(),
            size,
            mode,
        })
    }
    /// A minimal `/dev` at `dst`: null, zero, full, random, urandom and tty bound from the
    /// host, a private devpts with `ptmx`, a fresh tmpfs on `shm`, and the `fd`, `stdin`,
    /// `stdout`, `stderr` symlinks.
    pub fn dev(&mut self, dst: impl Into<PathBuf>) -> &mut Self {
        self.push(Op::Dev(dst.into()))
    }
    /// A fresh procfs at `dst` (needs a new pid namespace).
    pub fn proc(&mut self, dst: impl Into<PathBuf>) -> &mut Self {
        self.push(Op::Proc(dst.into()))
    }
    /// A fresh mqueue filesystem at `dst` (needs a new IPC namespace).
    pub fn mqueue(&mut self, dst: impl Into<PathBuf>) -> &mut Self {
        self.push(Op::Mqueue(dst.into()))
    }
    /// A fresh sysfs at `dst`, read-only (needs a new network namespace: it then shows only
    /// that namespace's interfaces).
    pub fn sysfs(&mut self, dst: impl Into<PathBuf>) -> &mut Self {
        self.push(Op::Sysfs(dst.into()))
    }
    /// A directory at `dst` (and its parents) with `mode`.
    pub fn dir(&mut self, dst: impl Into<PathBuf>, mode: u32) -> &mut Self {
        self.push(Op::Dir {
            dst: dst.into(),
            mode,
        })
    }
    /// A symlink at `dst` pointing to `target`.
    pub fn symlink(&mut self, target: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.push(Op::Symlink {
            target: target.into(),
            dst: dst.into(),
        })
    }
    /// A file at `dst` holding `data`, with `mode`.
    pub fn file(
        &mut self,
        dst: impl Into<PathBuf>,
        data: impl Into<Vec<u8>>,
        mode: u32,
    ) -> &mut Self {
        self.push(Op::File {
            dst: dst.into(),
            data: data.into(),
            mode,
            read_only: false,
        })
    }
    /// [`file`](Self::file), bound read-only.
    pub fn ro_file(
        &mut self,
        dst: impl Into<PathBuf>,
        data: impl Into<Vec<u8>>,
        mode: u32,
    ) -> &mut Self {
        self.push(Op::File {
            dst: dst.into(),
            data: data.into(),
            mode,
            read_only: true,
        })
    }
    /// Make the mount at `dst` read-only (recursively).
    pub fn remount_ro(&mut self, dst: impl Into<PathBuf>) -> &mut Self {
        self.push(Op::RemountRo(dst.into()))
    }
    /// An overlay at `dst` of `lowers` (the first is the top layer) with `upper`.
    pub fn overlay(
        &mut self,
        lowers: impl IntoIterator<Item = impl Into<PathBuf>>,
        upper: Upper,
        dst: impl Into<PathBuf>,
    ) -> &mut Self {
        self.push(Op::Overlay {
            lowers: lowers.into_iter().map(Into::into).collect(),
            upper,
            dst: dst.into(),
        })
    }
    /// Hide `dst`: an empty read-only tmpfs over a directory, `/dev/null` over a file.
    pub fn hide(&mut self, dst: impl Into<PathBuf>) -> &mut Self {
        self.push(Op::Hide(dst.into()))
    }
    /// Change the mode of `dst` (inside the view).
    pub fn chmod(&mut self, dst: impl Into<PathBuf>, mode: u32) -> &mut Self {
        self.push(Op::Chmod {
            dst: dst.into(),
            mode,
        })
    }
}

/// Whether `p` is a directory itself, not a symlink to one.
pub(crate) fn real_dir(p: &str) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// What a prepared op does (the wire code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Bind = 1,
    Tmpfs,
    Dev,
    Proc,
    Mqueue,
    Dir,
    Symlink,
    File,
    RemountRo,
    Overlay,
    Hide,
    Chmod,
    Sysfs,
}

impl Kind {
    pub(crate) fn from_code(c: u8) -> Option<Kind> {
        use Kind::*;
        [
            Bind, Tmpfs, Dev, Proc, Mqueue, Dir, Symlink, File, RemountRo, Overlay, Hide, Chmod,
            Sysfs,
        ]
        .into_iter()
        .find(|k| *k as u8 == c)
    }
}

/// Op flags.
pub(crate) const READ_ONLY: u32 = 1;
pub(crate) const DEV: u32 = 2;
/// A bind whose source may be missing.
pub(crate) const TRY: u32 = 4;
/// The source is a directory (the destination to create is one).
pub(crate) const SRC_DIR: u32 = 8;
/// An overlay with a tmpfs upper.
pub(crate) const TMP_UPPER: u32 = 16;

/// One prepared op: C strings and numbers, for the async-signal-safe mount steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PreparedOp {
    pub kind: Kind,
    /// The index of its source tree in [`FsSpec::sources`] (binds, hide of a file); -1: none.
    pub source: i32,
    /// Absolute, normalized (no `.`, `..` or empty components).
    pub dst: CString,
    pub flags: u32,
    pub mode: u32,
    /// File contents; tmpfs and overlay options; a symlink's target.
    pub data: Vec<u8>,
}

/// A prepared filesystem view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FsSpec {
    pub base: Base,
    /// Paths opened as detached mount trees (open_tree) before anything is mounted, so later
    /// mounts cannot hide them: bind sources, the minimal /dev's devices, /dev/null.
    pub sources: Vec<CString>,
    pub ops: Vec<PreparedOp>,
    /// Where the empty root's tmpfs is built (a directory that holds no overlay layer).
    pub staging: CString,
    /// Make the view private at the end (false when `/` was made private from the start, so
    /// that every tree cloned from it is private already: one walk of the mount table less).
    pub make_private: bool,
}

impl FsSpec {
    /// The error of a failed mount step, naming the mount and its path.
    pub(crate) fn error(&self, e: crate::steps::StepError) -> io::Error {
        use crate::steps::fs::SOURCE;
        let err = Error::from(e);
        let err = if e.detail == u32::MAX {
            err.with_context("(the base)")
        } else if e.detail == u32::MAX - 1 {
            err.with_context("(pivot_root)")
        } else if e.detail & SOURCE != 0 {
            match self.sources.get((e.detail & !SOURCE) as usize) {
                Some(s) => err.with_context("(source)").with_path(bytes_path(s)),
                None => err,
            }
        } else {
            match self.ops.get(e.detail as usize) {
                Some(op) => err
                    .with_context(format!("({})", op.kind.name()))
                    .with_path(bytes_path(&op.dst)),
                None => err,
            }
        };
        err.into()
    }
}

fn bytes_path(c: &CString) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(c.as_bytes()))
}

impl Kind {
    /// The mount's name in an error.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Tmpfs => "tmpfs",
            Kind::Dev => "dev",
            Kind::Proc => "proc",
            Kind::Mqueue => "mqueue",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::File => "file",
            Kind::RemountRo => "remount-ro",
            Kind::Overlay => "overlay",
            Kind::Hide => "hide",
            Kind::Chmod => "chmod",
            Kind::Sysfs => "sysfs",
        }
    }
}

/// The host devices of the minimal /dev.
pub(crate) const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

fn bad(msg: String) -> io::Error {
    Error::invalid(Step::Filesystem, msg).into()
}

/// `p` as an absolute, normalized destination.
fn destination(p: &Path) -> io::Result<CString> {
    if !p.is_absolute() {
        return Err(bad(format!("destination {} is not absolute", p.display())));
    }
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => {
                out.push(b'/');
                out.extend_from_slice(n.as_bytes());
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(bad(format!("destination {} has a `..`", p.display())));
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    CString::new(out).map_err(|_| bad(format!("destination {} has a NUL", p.display())))
}

fn cstring(what: &str, b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| bad(format!("{what} {:?} has a NUL", OsStr::from_bytes(b))))
}

/// A writable source: [`source`], refusing a path through a symlink. What the sandbox may
/// write is what the caller named, never where a symlink (one an earlier sandbox may have
/// planted in a directory it could write) leads.
fn writable_source(p: &Path) -> io::Result<Option<(PathBuf, bool)>> {
    let abs = std::path::absolute(p)
        .map_err(|e| io::Error::from(Error::from_std(Step::Filesystem, &e).with_path(p)))?;
    let mut at = PathBuf::new();
    for c in abs.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::os(Step::Filesystem, libc::ELOOP)
                    .with_context("(a writable source through a symlink)")
                    .with_path(&at)
                    .with_hint(
                        "give the real path: what a sandbox may write is never where a symlink \
                         leads",
                    )
                    .into());
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::from_std(Step::Filesystem, &e).with_path(&at).into()),
        }
    }
    source(&abs)
}

/// The caller's path `p`, made absolute and canonical (symlinks resolved now); `None` when
/// it does not exist.
fn source(p: &Path) -> io::Result<Option<(PathBuf, bool)>> {
    match std::fs::canonicalize(p) {
        Ok(c) => {
            let dir = std::fs::metadata(&c).map(|m| m.is_dir()).unwrap_or(false);
            Ok(Some((c, dir)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::from_std(Step::Filesystem, &e).with_path(p).into()),
    }
}

impl Filesystem {
    /// Check and prepare everything the mount steps need.
    pub(crate) fn prepare(&self) -> io::Result<FsSpec> {
        let mut sources: Vec<CString> = Vec::new();
        let add_source = |sources: &mut Vec<CString>, p: &[u8]| -> io::Result<i32> {
            sources.push(cstring("source", p)?);
            Ok(sources.len() as i32 - 1)
        };
        let mut ops = Vec::new();
        let mut layers: Vec<PathBuf> = Vec::new();
        let mut op = |kind, source, dst: &Path, flags, mode, data: Vec<u8>| -> io::Result<()> {
            ops.push(PreparedOp {
                kind,
                source,
                dst: destination(dst)?,
                flags,
                mode,
                data,
            });
            Ok(())
        };
        for o in &self.ops {
            match o {
                Op::Bind {
                    src,
                    dst,
                    read_only,
                    dev,
                    try_,
                } => {
                    let found = if *read_only {
                        source(src)?
                    } else {
                        writable_source(src)?
                    };
                    let Some((canon, dir)) = found else {
                        if *try_ {
                            continue;
                        }
                        return Err(Error::os(Step::Filesystem, libc::ENOENT)
                            .with_context(format!("(bind source of {})", dst.display()))
                            .with_path(src)
                            .into());
                    };
                    let s = add_source(&mut sources, canon.as_os_str().as_bytes())?;
                    let mut flags = if *try_ { TRY } else { 0 };
                    flags |= if *read_only { READ_ONLY } else { 0 };
                    flags |= if *dev { DEV } else { 0 };
                    flags |= if dir { SRC_DIR } else { 0 };
                    op(Kind::Bind, s, dst, flags, 0, Vec::new())?;
                }
                Op::Writable(p) => {
                    let Some((canon, dir)) = writable_source(p)? else {
                        return Err(Error::os(Step::Filesystem, libc::ENOENT)
                            .with_context("(writable path)")
                            .with_path(p)
                            .into());
                    };
                    let s = add_source(&mut sources, canon.as_os_str().as_bytes())?;
                    let flags = if dir { SRC_DIR } else { 0 };
                    op(Kind::Bind, s, &canon, flags, 0, Vec::new())?;
                }
                Op::Tmpfs { dst, size, mode } => {
                    let mut opts = format!("mode={:o}", mode.unwrap_or(0o755));
                    if let Some(s) = size {
                        opts.push_str(&format!(",size={s}"));
                    }
                    op(Kind::Tmpfs, -1, dst, 0, 0, opts.into_bytes())?;
                }
                Op::Dev(dst) => {
                    let first = sources.len() as i32;
                    for d in DEVICES {
                        add_source(&mut sources, format!("/dev/{d}").as_bytes())?;
                    }
                    op(Kind::Dev, first, dst, 0, 0, Vec::new())?;
                }
                Op::Proc(dst) => op(Kind::Proc, -1, dst, 0, 0, Vec::new())?,
                Op::Mqueue(dst) => op(Kind::Mqueue, -1, dst, 0, 0, Vec::new())?,
                Op::Sysfs(dst) => op(Kind::Sysfs, -1, dst, 0, 0, Vec::new())?,
                Op::Dir { dst, mode } => op(Kind::Dir, -1, dst, 0, *mode, Vec::new())?,
                Op::Symlink { target, dst } => {
                    let t = cstring("symlink target", target.as_os_str().as_bytes())?;
                    op(Kind::Symlink, -1, dst, 0, 0, t.into_bytes_with_nul())?;
                }
                Op::File {
                    dst,
                    data,
                    mode,
                    read_only,
                } => {
                    let flags = if *read_only { READ_ONLY } else { 0 };
                    op(Kind::File, -1, dst, flags, *mode, data.clone())?;
                }
                Op::RemountRo(dst) => op(Kind::RemountRo, -1, dst, 0, 0, Vec::new())?,
                Op::Overlay { lowers, upper, dst } => {
                    let mut opts = overlay_options(lowers, upper, &mut layers)?;
                    let flags = if *upper == Upper::Tmpfs {
                        if self.base != Base::Empty {
                            return Err(bad(format!(
                                "the overlay at {}: a tmpfs upper needs Filesystem::empty()",
                                dst.display()
                            )));
                        }
                        TMP_UPPER
                    } else {
                        0
                    };
                    opts.push(0);
                    op(Kind::Overlay, -1, dst, flags, 0, opts)?;
                }
                Op::Hide(dst) => {
                    let s = add_source(&mut sources, b"/dev/null")?;
                    op(Kind::Hide, s, dst, 0, 0, Vec::new())?;
                }
                Op::Chmod { dst, mode } => op(Kind::Chmod, -1, dst, 0, *mode, Vec::new())?,
            }
        }
        let staging = ["/tmp", "/mnt", "/media", "/srv", "/opt", "/var/tmp", "/run"]
            .into_iter()
            .map(Path::new)
            .find(|c| c.is_dir() && !layers.iter().any(|l| l.starts_with(c)))
            .ok_or_else(|| {
                bad(
                    "no directory to build the root in: /tmp, /mnt, /media, /srv, /opt, \
                     /var/tmp and /run are missing or hold overlay layers"
                        .into(),
                )
            })?;
        Ok(FsSpec {
            base: self.base,
            sources,
            ops,
            staging: cstring("staging", staging.as_os_str().as_bytes())?,
            make_private: true,
        })
    }
}

/// The overlay's mount options, without the tmpfs upper's directories (the init adds them).
fn overlay_options(
    lowers: &[PathBuf],
    upper: &Upper,
    layers: &mut Vec<PathBuf>,
) -> io::Result<Vec<u8>> {
    let mut canon = Vec::new();
    for l in lowers {
        let Some((c, true)) = source(l)? else {
            return Err(bad(format!(
                "overlay lower {} is not a directory",
                l.display()
            )));
        };
        let b = c.as_os_str().as_bytes();
        if b.iter().any(|&x| x == b':' || x == b',' || x == b'\\') {
            return Err(bad(format!(
                "overlay lower {} has a ':', ',' or '\\'",
                c.display()
            )));
        }
        layers.push(c.clone());
        canon.push(c);
    }
    let need = if *upper == Upper::ReadOnly { 2 } else { 1 };
    if canon.len() < need {
        return Err(bad(format!(
            "an overlay needs at least {need} lower directories"
        )));
    }
    let mut opts = b"lowerdir=".to_vec();
    for (i, c) in canon.iter().enumerate() {
        if i > 0 {
            opts.push(b':');
        }
        opts.extend_from_slice(c.as_os_str().as_bytes());
    }
    if let Upper::Dir { upper, work } = upper {
        for (key, p) in [("upperdir", upper), ("workdir", work)] {
            let Some((c, true)) = source(p)? else {
                return Err(bad(format!(
                    "overlay {key} {} is not a directory",
                    p.display()
                )));
            };
            layers.push(c.clone());
            opts.extend_from_slice(format!(",{key}=").as_bytes());
            opts.extend_from_slice(c.as_os_str().as_bytes());
        }
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_normalized_and_must_stay_inside() {
        assert_eq!(
            destination(Path::new("/a/./b//c")).unwrap().as_bytes(),
            b"/a/b/c"
        );
        assert_eq!(destination(Path::new("/")).unwrap().as_bytes(), b"/");
        assert!(destination(Path::new("a/b")).is_err());
        assert!(destination(Path::new("/a/../../etc")).is_err());
    }

    #[test]
    fn a_missing_source_is_an_error_unless_tried() {
        let mut fs = Filesystem::empty();
        fs.bind_try("/no/such/source", "/x").tmpfs("/tmp");
        let spec = fs.prepare().unwrap();
        assert_eq!(spec.ops.len(), 1);
        assert_eq!(spec.ops[0].kind, Kind::Tmpfs);
        let mut fs = Filesystem::empty();
        fs.ro_bind("/no/such/source", "/x");
        let err = fs.prepare().unwrap_err();
        assert!(err.to_string().contains("/no/such/source"), "{err}");
    }

    #[test]
    fn sources_are_canonical_and_dev_adds_its_devices() {
        let mut fs = Filesystem::empty();
        fs.ro_bind("/usr/../usr", "/usr").dev("/dev");
        let spec = fs.prepare().unwrap();
        assert_eq!(spec.sources[0].as_bytes(), b"/usr");
        assert_eq!(
            spec.ops[0].flags & (READ_ONLY | SRC_DIR),
            READ_ONLY | SRC_DIR
        );
        assert_eq!(spec.ops[1].source, 1);
        assert_eq!(spec.sources.len(), 1 + DEVICES.len());
    }
}

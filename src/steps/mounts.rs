//! Mounts of a new mount namespace: the propagation of `/`, the fresh `/proc`, the lock.

use std::ffi::CStr;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::thread::LinkNameSpaceType;

use super::{Step, StepError, fail};
use crate::ns::kind::Propagation;

/// Make `/` and everything under it slave (events flow in from the host, never out) or
/// private. Right after a new mount namespace: many distributions make `/` shared, and a
/// mount made inside would otherwise appear on the host.
pub fn root_propagation(p: Propagation) -> Result<(), StepError> {
    let kind = match p {
        Propagation::Slave => MountPropagationFlags::DOWNSTREAM,
        Propagation::Private => MountPropagationFlags::PRIVATE,
    };
    rustix::mount::mount_change(c"/", kind | MountPropagationFlags::REC)
        .map_err(fail(Step::RootPropagation))
}

/// Mount a fresh procfs on `/proc` (nosuid, nodev, noexec). Only ever called in a mount
/// namespace the caller made itself, so it can never cover the host's `/proc`.
pub fn mount_proc() -> Result<(), StepError> {
    mount_proc_in(None)
}

/// [`mount_proc`] in the view being built (under an empty root's staging directory).
pub(crate) fn mount_proc_in(fs: Option<&crate::fs::FsSpec>) -> Result<(), StepError> {
    let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let mut buf = [0u8; 4096];
    let at = view_path(fs, c"/proc", &mut buf).map_err(|e| StepError::new(Step::MountProc, e))?;
    rustix::mount::mount(c"proc", at, c"proc", flags, None).map_err(fail(Step::MountProc))
}

/// Files and directories of `/proc` made read-only: the kernel's settings (host-wide ones
/// included, which a root orchestrator's sandbox could otherwise write), the SysRq trigger,
/// IRQ affinities, bus and filesystem settings.
const PROC_READ_ONLY: &[&CStr] = &[
    c"/proc/sys",
    c"/proc/sysrq-trigger",
    c"/proc/irq",
    c"/proc/bus",
    c"/proc/fs",
];

/// Files hidden under `/dev/null`: kernel memory and symbol addresses, the keyring, timers
/// and scheduler internals, page and slab tables (information leaks).
const MASKED_FILES: &[&CStr] = &[
    c"/proc/kcore",
    c"/proc/kallsyms",
    c"/proc/keys",
    c"/proc/key-users",
    c"/proc/timer_list",
    c"/proc/sched_debug",
    c"/proc/latency_stats",
    c"/proc/kpagecount",
    c"/proc/kpageflags",
    c"/proc/kpagecgroup",
    c"/proc/slabinfo",
    c"/proc/vmallocinfo",
    c"/proc/pagetypeinfo",
];

/// Directories hidden under an empty read-only tmpfs: ACPI and SCSI controls, firmware
/// tables and energy counters (a side channel).
const MASKED_DIRS: &[&CStr] = &[
    c"/proc/acpi",
    c"/proc/scsi",
    c"/sys/firmware",
    c"/sys/devices/virtual/powercap",
];

/// Protect the kernel's files in a new mount namespace: the paths of [`PROC_READ_ONLY`]
/// read-only, [`MASKED_FILES`] and [`MASKED_DIRS`] hidden, then all of `/sys` read-only, the
/// cgroup filesystems under it included (so that a sandbox cannot move itself out of its
/// cgroup or raise its limits). Missing paths are skipped. After the fresh `/proc` (which
/// would cover the protections) and before the lock (which makes them impossible to undo).
///
/// Cheap by construction, since every sandbox pays it: no path is looked up beforehand (a
/// missing one fails the mount with ENOENT), and only the first hider of each kind is made
/// read-only: a bind mount takes the flags of its source, so the others are binds of that
/// first, read-only one (one mount(2) each).
///
/// `fs` is the view being built: for an empty root the paths are under its staging
/// directory (before the pivot).
pub(crate) fn protect_kernel(fs: Option<&crate::fs::FsSpec>) -> Result<(), StepError> {
    let fail = |e| StepError::new(Step::ProtectKernel, e);
    let mut null = [0u8; 4096];
    let n = super::fs::mask_source(fs, &mut null).map_err(fail)?;
    let null = CStr::from_bytes_with_nul(&null[..=n]).map_err(|_| fail(libc::EINVAL))?;
    let mut buf = [0u8; 4096];
    for (list, dir) in [(MASKED_FILES, false), (MASKED_DIRS, true)] {
        // The first hider of this kind, read-only, whose binds hide the rest.
        let mut first = [0u8; 4096];
        let mut first_len = None;
        for &path in list {
            let at = view_path(fs, path, &mut buf).map_err(fail)?;
            let src = match first_len {
                Some(len) => Some(
                    CStr::from_bytes_with_nul(&first[..=len]).map_err(|_| fail(libc::EINVAL))?,
                ),
                None => None,
            };
            let hidden = hide(at, dir, src, null).map_err(fail)?;
            if hidden == Hidden::AsListed && first_len.is_none() {
                first_len = Some(copy_path(at, &mut first));
            }
        }
    }
    for &path in PROC_READ_ONLY {
        match bind_read_only(view_path(fs, path, &mut buf).map_err(fail)?) {
            Ok(()) | Err(libc::ENOENT) => {}
            Err(e) => return Err(fail(e)),
        }
    }
    match read_only(view_path(fs, c"/sys", &mut buf).map_err(fail)?, true) {
        Ok(()) | Err(libc::ENOENT) | Err(libc::EINVAL) => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

/// Copy `path` with its NUL into `out`; its length.
fn copy_path(path: &CStr, out: &mut [u8; 4096]) -> usize {
    let b = path.to_bytes_with_nul();
    out[..b.len()].copy_from_slice(b);
    b.len() - 1
}

/// `path` inside the view being built, in `buf`.
fn view_path<'a>(
    fs: Option<&crate::fs::FsSpec>,
    path: &CStr,
    buf: &'a mut [u8; 4096],
) -> Result<&'a CStr, i32> {
    let n = super::fs::in_view(fs, path, buf)?;
    CStr::from_bytes_with_nul(&buf[..=n]).map_err(|_| libc::EINVAL)
}

/// What [`hide`] did.
#[derive(PartialEq)]
enum Hidden {
    /// Nothing there (or nothing we may reach).
    Absent,
    /// Hidden as its list says (a file under a file, a directory under a tmpfs).
    AsListed,
    /// Of the other kind on this kernel, hidden that way.
    OtherKind,
}

/// Hide `path`, a directory if `dir` (under an empty read-only tmpfs), else a file (under a
/// read-only bind of `null`: in an empty root that is an ordinary file, and even `/dev/null`
/// must not be chmod'ed through it). With `first`, a read-only hider of the same kind made
/// before, `path` is hidden under a bind of that (a bind takes its source's flags): one
/// mount(2). A path of the other kind is hidden the other way, from scratch.
fn hide(path: &CStr, dir: bool, first: Option<&CStr>, null: &CStr) -> Result<Hidden, i32> {
    use rustix::io::Errno;
    // The mount's error (which may mean "nothing there"), or a failure after it (a hider
    // mounted but not made read-only), which is always fatal: it must not stay writable.
    enum Failed {
        Mount(Errno),
        After(i32),
    }
    let fresh = |dir: bool| -> Result<(), Failed> {
        if dir {
            let flags =
                MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
            rustix::mount::mount(c"tmpfs", path, c"tmpfs", flags, Some(c"size=4k,mode=555"))
                .map_err(Failed::Mount)
        } else {
            rustix::mount::mount_bind(null, path).map_err(Failed::Mount)?;
            read_only(path, false).map_err(Failed::After)
        }
    };
    let r = match first {
        Some(src) => rustix::mount::mount_bind(src, path).map_err(Failed::Mount),
        None => fresh(dir),
    };
    match r {
        Ok(()) => Ok(Hidden::AsListed),
        Err(Failed::After(e)) => Err(e),
        Err(Failed::Mount(e)) if e == Errno::NOENT || e == Errno::ACCESS => Ok(Hidden::Absent),
        // The kernel refuses a mount of a file on a directory, and the reverse, with ENOTDIR.
        Err(Failed::Mount(e)) if e == Errno::NOTDIR => match fresh(!dir) {
            Ok(()) => Ok(Hidden::OtherKind),
            Err(Failed::After(e)) => Err(e),
            // Not the kind either: a component of the path is not a directory.
            Err(Failed::Mount(e)) if e == Errno::NOTDIR || e == Errno::NOENT => Ok(Hidden::Absent),
            Err(Failed::Mount(e)) => Err(e.raw_os_error()),
        },
        Err(Failed::Mount(e)) => Err(e.raw_os_error()),
    }
}

/// Bind `path` onto itself (making it a mount of its own), then make it read-only.
fn bind_read_only(path: &CStr) -> Result<(), i32> {
    rustix::mount::mount_bind_recursive(path, path).map_err(|e| e.raw_os_error())?;
    read_only(path, true)
}

/// Make the mount at `path` read-only (recursively), keeping its other flags: with
/// mount_setattr(2) where the kernel has it, else with a bind remount that repeats the
/// flags the mount has (a user namespace locks nosuid, nodev, noexec and the atime flags:
/// a remount without them fails with EPERM). The fallback changes one mount: for a
/// recursive change on a kernel without mount_setattr (before 5.12) it fails with ENOSYS
/// rather than leave the mounts under `path` writable unsaid.
pub(crate) fn read_only(path: &CStr, recursive: bool) -> Result<(), i32> {
    match crate::sys::mount_setattr_read_only(path, recursive) {
        Err(libc::ENOSYS) if recursive => return Err(libc::ENOSYS),
        Err(libc::ENOSYS) => {}
        r => return r,
    }
    let st = rustix::fs::statvfs(path).map_err(|e| e.raw_os_error())?;
    use rustix::fs::StatVfsMountFlags as F;
    let mut flags = MountFlags::RDONLY | MountFlags::BIND;
    for (have, keep) in [
        (F::NOSUID, MountFlags::NOSUID),
        (F::NODEV, MountFlags::NODEV),
        (F::NOEXEC, MountFlags::NOEXEC),
        (F::NOATIME, MountFlags::NOATIME),
        (F::NODIRATIME, MountFlags::NODIRATIME),
        (F::RELATIME, MountFlags::RELATIME),
    ] {
        if st.f_flag.contains(have) {
            flags |= keep;
        }
    }
    rustix::mount::mount_remount(path, flags, c"").map_err(|e| e.raw_os_error())
}

/// Open `ns_last_pid` for [`lock_mounts`], before `protect_kernel` makes `/proc/sys`
/// read-only. `None` when it cannot matter (our pid is not a single digit) or cannot be
/// opened.
pub fn open_last_pid() -> Option<rustix::fd::OwnedFd> {
    open_last_pid_in(None)
}

/// [`open_last_pid`] in the view being built.
pub(crate) fn open_last_pid_in(fs: Option<&crate::fs::FsSpec>) -> Option<rustix::fd::OwnedFd> {
    if rustix::process::getpid().as_raw_nonzero().get() >= 10 {
        return None;
    }
    let mut buf = [0u8; 4096];
    let n = super::fs::in_view(fs, c"/proc/sys/kernel/ns_last_pid", &mut buf).ok()?;
    rustix::fs::open(
        CStr::from_bytes_with_nul(&buf[..=n]).ok()?,
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Lock every mount of the calling process's mount namespace, the fresh `/proc` included.
///
/// A `/proc` mounted inside a new mount namespace lies on top of the host's `/proc` (locked
/// there, but visible once the new one is gone): root inside could `umount /proc` and read
/// every host process's command line. Mounts are locked (MNT_LOCKED: they cannot be unmounted
/// or moved) when a mount namespace is copied into a new user namespace. So a helper makes a
/// new user namespace and a copy of our mount namespace (`sys::open_locked_mount_ns`),
/// and we join that copy: we hold every capability in the helper's user namespace (we own
/// it, one level up) while staying in our own user namespace, which keeps owning the UTS,
/// network and IPC namespaces, so the command stays root over those. The working directory
/// is kept (by path, resolved in the copy).
///
/// For a single-threaded caller (the init, or pid 1 after `enter`).
/// `last_pid` is `ns_last_pid`, opened beforehand ([`open_last_pid`]).
pub fn lock_mounts(last_pid: Option<&rustix::fd::OwnedFd>) -> Result<(), StepError> {
    let step = fail(Step::LockMounts);
    let mut cwd = [0u8; 4096];
    let cwd = crate::sys::getcwd(&mut cwd);
    let ns = crate::sys::open_locked_mount_ns().map_err(|e| StepError::new(Step::LockMounts, e))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&ns),
        Some(LinkNameSpaceType::Mount),
    )
    .map_err(&step)?;
    drop(ns);
    if let Some(fd) = last_pid {
        reset_last_pid(fd);
    }
    if let Some(cwd) = cwd {
        // setns(CLONE_NEWNS) moved us to the namespace's root; go back where we were.
        let _ = rustix::process::chdir(cwd);
    }
    Ok(())
}

/// The lock's helper took the pid after ours; hand it back, so that the command is still
/// pid 2 (best effort: needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over the pid namespace,
/// and only matters while our pid is a single digit).
fn reset_last_pid(fd: &rustix::fd::OwnedFd) {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    if pid < 10 {
        let _ = rustix::io::write(fd, &[b'0' + pid as u8]);
    }
}

//! Mounts of a new mount namespace: the propagation of `/`, the fresh `/proc`, the lock.

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
    let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    rustix::mount::mount(c"proc", c"/proc", c"proc", flags, None).map_err(fail(Step::MountProc))
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
pub fn lock_mounts() -> Result<(), StepError> {
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
    reset_last_pid();
    if let Some(cwd) = cwd {
        // setns(CLONE_NEWNS) moved us to the namespace's root; go back where we were.
        let _ = rustix::process::chdir(cwd);
    }
    Ok(())
}

/// The lock's helper took the pid after ours; hand it back, so that the command is still
/// pid 2 (best effort: needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over the pid namespace,
/// and only matters while our pid is a single digit).
fn reset_last_pid() {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    if pid >= 10 {
        return;
    }
    if let Ok(fd) = rustix::fs::open(
        c"/proc/sys/kernel/ns_last_pid",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        let _ = rustix::io::write(&fd, &[b'0' + pid as u8]);
    }
}

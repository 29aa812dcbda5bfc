//! Creating a sandbox's init: through the launcher when one runs, by a direct clone
//! otherwise; and the errors of both.

use std::io;
use std::os::fd::{OwnedFd, RawFd};

use crate::error::{Error, errno_of};
use crate::ns::{Namespace, NamespaceSet};
use crate::proto::{Plan, Spec};
use crate::steps::Step;

/// Clone an init from `spec` and its `fds` with `extra_flags` (the launcher adds
/// CLONE_PARENT): the plan is built here, before the clone; the child runs only
/// [`crate::child::init::run`].
pub(crate) fn clone_init(
    spec: Spec,
    fds: &[RawFd],
    extra_flags: u64,
) -> io::Result<(i32, OwnedFd)> {
    let flags = spec.namespaces.clone_flags() as u64 | extra_flags;
    // The cgroup leaf's directory comes right after the init's own fixed fds and joins.
    let cgroup = spec
        .cgroup
        .then(|| {
            fds.get(crate::proto::plan::OWN_FIXED + spec.join_types.len())
                .copied()
        })
        .flatten();
    let plan = Plan::new(spec, fds).ok_or_else(|| {
        io::Error::from(Error::failed(
            Step::Fds,
            io::ErrorKind::InvalidData,
            "the fd count does not match the plan",
        ))
    })?;
    // Block every signal around the clone so that none of the caller's handlers can run in
    // the child before it resets them.
    let old = crate::signals::mask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        &nix::sys::signal::SigSet::all(),
    );
    // SAFETY: the child only runs `child::init::run`, which is async-signal-safe and leaves
    // by exec or _exit.
    let r = unsafe { crate::sys::clone_pidfd(flags, cgroup) };
    match r {
        Ok(crate::sys::Cloned::Child { in_cgroup }) => {
            // SAFETY: we are the child of the clone and the plan was built for it.
            unsafe {
                crate::child::init::run(
                    &plan,
                    in_cgroup,
                    extra_flags & libc::CLONE_PARENT as u64 != 0,
                )
            }
        }
        Ok(crate::sys::Cloned::Parent(pid, pidfd)) => {
            crate::signals::mask(nix::sys::signal::SigmaskHow::SIG_SETMASK, &old);
            Ok((pid, pidfd))
        }
        Ok(crate::sys::Cloned::Unreaped { pid, errno }) => {
            crate::signals::mask(nix::sys::signal::SigmaskHow::SIG_SETMASK, &old);
            Err(io::Error::new(
                io::Error::from_raw_os_error(errno).kind(),
                Unreaped { pid, errno },
            ))
        }
        Err(e) => {
            crate::signals::mask(nix::sys::signal::SigmaskHow::SIG_SETMASK, &old);
            Err(e)
        }
    }
}

/// A clone with `CLONE_PARENT` (the launcher's) whose pidfd_open failed: the init was
/// SIGKILLed and is the orchestrator's child to reap, by pid.
#[derive(Debug)]
pub(crate) struct Unreaped {
    pub pid: i32,
    pub errno: i32,
}

impl std::fmt::Display for Unreaped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pidfd_open of the new init (pid {}) failed with errno {}",
            self.pid, self.errno
        )
    }
}

impl std::error::Error for Unreaped {}

/// The error for a failed clone, naming the namespaces and the likely culprit.
pub(crate) fn clone_error(e: io::Error, kinds: NamespaceSet) -> io::Error {
    if Error::from_io(&e).is_some() {
        return e;
    }
    let errno = errno_of(&e).unwrap_or(libc::EIO);
    let mut err = Error::os(Step::Clone, errno);
    if kinds.is_empty() {
        return err.into();
    }
    err = err.with_context(format!("with new {kinds} namespaces"));
    if errno == libc::EINVAL {
        // clone3 has no single-thread rule (unshare has): an unknown flag is the likely cause.
        return err
            .with_hint("this kernel may lack one of these kinds of namespaces")
            .into();
    }
    if matches!(errno, libc::ENOSPC | libc::EUSERS) && kinds.iter().count() > 1 {
        // clone3 does not say which kind hit its limit: name every kind's sysctl (blaming
        // the user namespace sent people to the wrong one).
        let files: Vec<String> = kinds.iter().map(Namespace::limit_file).collect();
        return err
            .with_hint(format!(
                "the limit of one of these kinds of namespaces was reached: see {}",
                files.join(", ")
            ))
            .into();
    }
    // The user namespace is the usual culprit when it is asked for; else the first kind.
    let culprit = if kinds.contains(Namespace::User) {
        Namespace::User
    } else {
        kinds.iter().next().unwrap_or(Namespace::Mount)
    };
    match Step::Unshare.hint(errno, Some(culprit)) {
        Some(h) => err.with_hint(h).into(),
        None => err.into(),
    }
}

//! Code that runs in a child between fork/clone and exec, and the sandbox's pid-1 init.
//!
//! # The rule
//!
//! Everything in this module may run in the child of a multi-threaded process. Between the
//! clone and the exec (or `_exit`) only async-signal-safe code may run: no allocation, no
//! locks, no panics, no Drop-based cleanup, no logging, no `format!`. Every buffer the child
//! needs (paths, argv, envp, map lines) is built before the clone, in a plan struct; the child
//! only makes system calls through `libc` and leaves only by exec or `_exit`. Errors go back
//! to the parent as a fixed-size message `{step, errno}` on a pipe.

pub(crate) mod init;

use std::io;
use std::os::fd::{OwnedFd, RawFd};

use nix::unistd::Pid;

use init::{Plan, Spec};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Make `cmd`, once in its own process group, take the terminal's foreground (on `tty`)
/// before it execs. Only call it when this process's group holds the foreground
/// ([`Foreground::claim`](crate::tty::Foreground::claim)); set `process_group(0)` too.
pub(crate) fn take_foreground_before_exec(cmd: &mut Command, tty: RawFd) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (sigprocmask, getpid, tcsetpgrp) on values captured before the
    // fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTTOU);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
            libc::tcsetpgrp(tty, libc::getpid());
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// Clone an init from `spec` with `extra_flags` (the launcher adds CLONE_PARENT).
pub(crate) fn clone_init(
    spec: Spec,
    fds: &[RawFd],
    extra_flags: u64,
) -> io::Result<(Pid, OwnedFd)> {
    let flags = spec.flags | extra_flags;
    let plan = Plan::new(spec, fds)
        .ok_or_else(|| crate::error::invalid("spawn", "fd count does not match the plan"))?;
    // Block every signal around the clone so that none of the caller's handlers can run in
    // the child before it resets them.
    let old = crate::sys::block_all_signals();
    // SAFETY: the child only runs `child::init::run`, which is async-signal-safe and leaves
    // by exec or _exit.
    let r = unsafe { crate::sys::clone_pidfd(flags) };
    match r {
        Ok(crate::sys::Cloned::Child) => {
            // SAFETY: we are the child of the clone and the plan was built for it.
            unsafe { crate::child::init::run(&plan) }
        }
        Ok(crate::sys::Cloned::Parent(pid, pidfd)) => {
            crate::sys::restore_sigmask(&old);
            Ok((pid, pidfd))
        }
        Err(e) => {
            crate::sys::restore_sigmask(&old);
            Err(e)
        }
    }
}

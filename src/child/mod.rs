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

use std::os::fd::RawFd;
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

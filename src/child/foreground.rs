//! The Supervisor's pre-exec hooks: taking the terminal's foreground in a forked child before
//! it execs, and giving it the signal state it starts with.

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Make `cmd`, once in its own process group, take the terminal's foreground (on `tty`)
/// before it execs. Only call it when this process's group holds the foreground; set
/// `process_group(0)` too.
pub(crate) fn take_foreground_before_exec(cmd: &mut Command, tty: RawFd) {
    use nix::sys::signal::SigmaskHow;
    let ttou = crate::signals::set_of(&[libc::SIGTTOU]);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (sigprocmask, getpid, tcsetpgrp) on values captured before the
    // fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let old = crate::signals::mask(SigmaskHow::SIG_BLOCK, &ttou);
            libc::tcsetpgrp(tty, libc::getpid());
            crate::signals::mask(SigmaskHow::SIG_SETMASK, &old);
            Ok(())
        });
    }
}

/// Make `cmd` start with exactly this signal state: SIG_IGN for the signals of `ignored`
/// (bits, signal n at bit n-1), the default action for every other one, and `blocked` as its
/// mask. Runs after std's own reset (SIGPIPE to its default) and after any hook added before.
pub(crate) fn signal_state_before_exec(cmd: &mut Command, ignored: u64, blocked: u64) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (sigaction, sigprocmask) on values captured before the fork; it
    // allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            crate::signals::start_state_all(ignored, blocked);
            Ok(())
        });
    }
}

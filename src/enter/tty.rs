//! Terminal foreground hand-over and restore.
//!
//! A process may give the terminal's foreground to another process group only while its own
//! group holds it; otherwise tcsetpgrp(3) stops the whole group with SIGTTOU. So ownership is checked once, before the child exists ([`Foreground::claim`]),
//! and both sides then set the foreground (as job-control shells do): the child before it
//! execs, so it never touches the terminal from the background, and the parent after, so the
//! order does not matter. On the way back the parent is in the background, so SIGTTOU is
//! blocked around the call. bubblewrap issues 343 and 744 are what happens when the restore
//! is forgotten: the shell is left without its terminal.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::unistd::{Pid, getpgrp, isatty, tcgetpgrp, tcsetpgrp};

/// A terminal whose foreground process group is this process's group.
#[derive(Debug)]
pub(crate) struct Foreground {
    fd: BorrowedFd<'static>,
    original: Pid,
}

impl Foreground {
    /// The first of stdin, stdout, stderr that is a terminal whose foreground group is ours;
    /// `None` when there is none (then nothing is ever changed).
    pub(crate) fn claim() -> Option<Foreground> {
        let original = getpgrp();
        (0..=2)
            .filter_map(crate::sys::std_stream)
            .find(|fd| isatty(fd).unwrap_or(false) && tcgetpgrp(fd).is_ok_and(|fg| fg == original))
            .map(|fd| Foreground { fd, original })
    }

    /// The terminal's fd number, for the child side.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Make `pgrp` the foreground group.
    pub(crate) fn give_to(&self, pgrp: Pid) {
        use nix::sys::signal::SigmaskHow;
        let ttou = crate::signals::set_of(&[libc::SIGTTOU]);
        let old = crate::signals::mask(SigmaskHow::SIG_BLOCK, &ttou);
        let _ = tcsetpgrp(self.fd, pgrp);
        crate::signals::mask(SigmaskHow::SIG_SETMASK, &old);
    }

    /// Take the foreground back for the group that had it, keeping the hand-over (job control:
    /// the job inside stopped, and may be continued).
    pub(crate) fn reclaim(&self) {
        self.give_to(self.original);
    }

    /// Give the foreground back to the group that had it. SIGTTOU is blocked around the call,
    /// since the caller is in the background by now.
    pub(crate) fn restore(self) {
        self.give_to(self.original);
    }
}

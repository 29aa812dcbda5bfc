//! Terminal foreground hand-over and restore.
//!
//! A process may give the terminal's foreground to another process group only while its own
//! group holds it; otherwise tcsetpgrp(3) stops the whole group with SIGTTOU, or, with SIGTTOU
//! blocked (as here), succeeds and takes the terminal from whoever had it. So the foreground is
//! handed inside only when our group holds it *now*: at the start, if we were started in the
//! foreground, and whenever we are continued while holding it (the shell's `fg` gives the
//! terminal to our group, then sends SIGCONT). A SIGCONT alone (the shell's `bg`) hands
//! nothing: the shell keeps its terminal. Both sides set the foreground (as job-control shells
//! do): the child before it execs, so it never touches the terminal from the background, and
//! the parent after, so the order does not matter. What was handed is taken back when the job
//! inside stops, and given back when it ends; what was never handed is never touched.
//! bubblewrap issues 343 and 744 are what happens when the restore is forgotten: the shell is
//! left without its terminal.
//!
//! `fg` of a job that runs in the background sends no signal: the shell only gives the
//! terminal to our group. The inside learns it when it next reads or writes the terminal and
//! is stopped by SIGTTIN or SIGTTOU: seeing our group in the foreground then, we hand the
//! terminal inside and continue the job instead of reporting a stop
//! ([`Foreground::wanted_by`]). Until then, what is typed at the terminal (^C, ^Z) reaches
//! our group, which forwards it.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::unistd::{Pid, getpgrp, isatty, tcgetpgrp, tcsetpgrp};

/// This process's controlling terminal, and whether we handed its foreground inside.
#[derive(Debug)]
pub(crate) struct Foreground {
    fd: BorrowedFd<'static>,
    /// Our own process group (the job the shell knows).
    own: Pid,
    /// Whether the foreground is inside, given by us.
    handed: AtomicBool,
}

impl Foreground {
    /// The first of stdin, stdout, stderr that is this process's controlling terminal
    /// (tcgetpgrp(3) fails on any other terminal), whoever holds its foreground now; `None`
    /// when there is none (then nothing is ever changed).
    pub(crate) fn find() -> Option<Foreground> {
        (0..=2)
            .filter_map(crate::sys::std_stream)
            .find(|fd| isatty(fd).unwrap_or(false) && tcgetpgrp(fd).is_ok())
            .map(|fd| Foreground {
                fd,
                own: getpgrp(),
                handed: AtomicBool::new(false),
            })
    }

    /// Whether our own process group holds the foreground now.
    pub(crate) fn ours(&self) -> bool {
        tcgetpgrp(self.fd).is_ok_and(|fg| fg == self.own)
    }

    /// The terminal's fd number, for the child side.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Hand the foreground to `pgrp` if our group holds it now (at the start, or continued
    /// by `fg`). True when it was handed.
    pub(crate) fn hand_if_ours(&self, pgrp: Pid) -> bool {
        if !self.ours() {
            return false;
        }
        self.hand(pgrp);
        true
    }

    /// Hand the foreground to `pgrp`, which our group held when the caller checked
    /// ([`ours`](Self::ours)) before the child took it itself.
    pub(crate) fn hand(&self, pgrp: Pid) {
        self.set(pgrp);
        self.handed.store(true, Ordering::SeqCst);
    }

    /// Whether the job inside stopped only for want of the terminal (SIGTTIN or SIGTTOU: it
    /// read or wrote from the background) while our group holds the foreground and never
    /// handed it: the shell brought the job to the foreground while it ran (`fg` of a running
    /// job sends no SIGCONT). Then the terminal goes inside and the job goes on, instead of a
    /// stop.
    pub(crate) fn wanted_by(&self, stop_signal: i32) -> bool {
        matches!(stop_signal, libc::SIGTTIN | libc::SIGTTOU)
            && !self.handed.load(Ordering::SeqCst)
            && self.ours()
    }

    /// Take the foreground back for our group if it was handed (the job inside stopped, and
    /// may be continued).
    pub(crate) fn reclaim(&self) {
        if self.handed.swap(false, Ordering::SeqCst) {
            self.set(self.own);
        }
    }

    /// Give the foreground back to our group if it is inside (the job inside ended).
    pub(crate) fn restore(self) {
        self.reclaim();
    }

    /// Make `pgrp` the foreground group, with SIGTTOU blocked (the caller may be in the
    /// background by now).
    fn set(&self, pgrp: Pid) {
        use nix::sys::signal::SigmaskHow;
        let ttou = crate::signals::set_of(&[libc::SIGTTOU]);
        let old = crate::signals::mask(SigmaskHow::SIG_BLOCK, &ttou);
        let _ = tcsetpgrp(self.fd, pgrp);
        crate::signals::mask(SigmaskHow::SIG_SETMASK, &old);
    }
}

//! The signal-forwarding policy shared by every mode.

/// The signals nsbox forwards to the main command: the ones a user or a supervisor sends to
/// ask a program to do something (tini forwards all but SIGCHLD and the fault and terminal
/// signals; these are the ones that matter in practice).
pub const FORWARDED: [i32; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

/// Whether `sig` is forwarded.
pub fn is_forwarded(sig: i32) -> bool {
    FORWARDED.contains(&sig)
}

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

/// The signal set of `sigs` (numbers that name no signal are left out). Async-signal-safe.
pub(crate) fn set_of(sigs: &[i32]) -> SigSet {
    let mut set = SigSet::empty();
    for &n in sigs {
        if let Ok(sig) = Signal::try_from(n) {
            set.add(sig);
        }
    }
    set
}

/// Change the calling thread's signal mask (sigprocmask(2)); returns the previous mask.
/// Async-signal-safe.
pub(crate) fn mask(how: SigmaskHow, set: &SigSet) -> SigSet {
    let mut old = SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(how, Some(set), Some(&mut old));
    old
}

/// A signalfd for `set` (which the caller keeps blocked), close-on-exec and non-blocking.
/// Async-signal-safe.
pub(crate) fn signalfd(set: &SigSet) -> Result<nix::sys::signalfd::SignalFd, i32> {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| e as i32)
}

/// The next pending signal of a signalfd, or `None`. Async-signal-safe.
pub(crate) fn next_signal(sfd: &nix::sys::signalfd::SignalFd) -> Option<i32> {
    match sfd.read_signal() {
        Ok(Some(info)) => Some(info.ssi_signo as i32),
        _ => None,
    }
}

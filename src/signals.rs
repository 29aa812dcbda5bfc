//! The signal policy shared by every mode: which signals are forwarded to the main command
//! ([`FORWARDED`]), and sets of signals ([`SignalSet`]) for what a command starts with (the
//! signals it ignores, its signal mask).

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::error::Error;
use crate::steps::Step;

const fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// What no program can ignore or block (SIGKILL, SIGSTOP), and the two numbers glibc keeps
/// for its threads (32 and 33).
const UNUSABLE: u64 = bit(libc::SIGKILL) | bit(libc::SIGSTOP) | bit(32) | bit(33);

/// The synchronous faults. Raised by the kernel (a bad access, a bad instruction), they are
/// forced on the faulting thread, blocked or not, and kill it with its default action: they
/// never reach a signalfd, so only the ones sent with kill(2) are forwarded.
pub(crate) const FAULTS: u64 = bit(libc::SIGSEGV)
    | bit(libc::SIGBUS)
    | bit(libc::SIGILL)
    | bit(libc::SIGFPE)
    | bit(libc::SIGTRAP)
    | bit(libc::SIGSYS);

/// The stop signals a job can be stopped by from a terminal or with kill(2).
pub(crate) const JOB_STOPS: u64 = bit(libc::SIGTSTP) | bit(libc::SIGTTIN) | bit(libc::SIGTTOU);

/// The signals nsbox forwards to the main command, as tini does: every signal but SIGCHLD,
/// SIGKILL and SIGSTOP (which cannot be caught) and glibc's two reserved numbers (32 and 33);
/// realtime signals included. The synchronous faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
/// SIGTRAP, SIGSYS) are forwarded when they were sent with kill(2); raised by the kernel in
/// nsbox's own process they kill it, as they should. A signal the command starts ignoring
/// (see [`SignalSet::inherited_ignored`]) is not forwarded.
pub const FORWARDED: SignalSet = SignalSet {
    bits: !(UNUSABLE | bit(libc::SIGCHLD)),
    bad: 0,
};

/// Whether `sig` is forwarded (in [`FORWARDED`]).
pub fn is_forwarded(sig: i32) -> bool {
    FORWARDED.contains(sig)
}

/// A set of signals by number (1 to 64, realtime signals included): the signals a command
/// starts ignoring, or its signal mask ([`Sandbox::ignored_signals`](crate::Sandbox::ignored_signals),
/// [`Supervisor::blocked_signals`](crate::Supervisor::blocked_signals), ...).
///
/// ```
/// let mut set = nsbox::SignalSet::empty();
/// set.insert(libc::SIGINT).insert(libc::SIGHUP);
/// assert!(set.contains(libc::SIGHUP));
/// assert_eq!(set.iter().collect::<Vec<_>>(), [libc::SIGHUP, libc::SIGINT]);
/// ```
///
/// Building a set never fails; a number outside 1 to 64, SIGKILL, SIGSTOP (which nothing can
/// ignore or block) or glibc's reserved 32 and 33 is reported by the spawn (or the
/// supervisor's run) that gets the set, as an `InvalidInput` error.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SignalSet {
    bits: u64,
    /// The first number given that names no signal (0: none).
    bad: i32,
}

/// What [`enter()`](crate::enter()) found when it began, before it changed anything.
static INHERITED_SET: AtomicBool = AtomicBool::new(false);
static INHERITED_IGNORED: AtomicU64 = AtomicU64::new(0);
static INHERITED_BLOCKED: AtomicU64 = AtomicU64::new(0);

impl SignalSet {
    /// No signal.
    pub const fn empty() -> SignalSet {
        SignalSet { bits: 0, bad: 0 }
    }

    /// Add `sig`.
    pub fn insert(&mut self, sig: i32) -> &mut Self {
        if (1..=64).contains(&sig) {
            self.bits |= bit(sig);
        } else if self.bad == 0 {
            self.bad = if sig == 0 { i32::MIN } else { sig };
        }
        self
    }

    /// Remove `sig`.
    pub fn remove(&mut self, sig: i32) -> &mut Self {
        if (1..=64).contains(&sig) {
            self.bits &= !bit(sig);
        }
        self
    }

    /// Whether `sig` is in the set.
    pub fn contains(&self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.bits & bit(sig) != 0
    }

    /// Whether the set holds no signal.
    pub fn is_empty(&self) -> bool {
        self.bits == 0 && self.bad == 0
    }

    /// The signals, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = i32> + '_ {
        (1..=64).filter(|&s| self.contains(s))
    }

    /// The signals this process ignores now (disposition SIG_IGN). SIGPIPE is never counted:
    /// Rust's runtime ignores it before `main` runs, so whether the caller did cannot be told,
    /// and programs start with its default action, as `std::process::Command` gives them.
    pub fn ignored_now() -> SignalSet {
        SignalSet::from_bits(ignored_bits())
    }

    /// The calling thread's signal mask now.
    pub fn blocked_now() -> SignalSet {
        SignalSet::from_bits(blocked_bits())
    }

    /// The signals this process's caller left ignored: as [`enter()`](crate::enter()) found
    /// them when it began (before it changed anything), or, if `enter` was not called,
    /// [`ignored_now`](Self::ignored_now). What tini, bwrap and unshare(1) pass on, and what
    /// a [`Supervisor`](crate::Supervisor) gives its command by default.
    pub fn inherited_ignored() -> SignalSet {
        if INHERITED_SET.load(Ordering::SeqCst) {
            SignalSet::from_bits(INHERITED_IGNORED.load(Ordering::SeqCst))
        } else {
            SignalSet::ignored_now()
        }
    }

    /// The signal mask this process's caller gave it: as [`enter()`](crate::enter()) found it
    /// when it began, or, if `enter` was not called, [`blocked_now`](Self::blocked_now).
    pub fn inherited_blocked() -> SignalSet {
        if INHERITED_SET.load(Ordering::SeqCst) {
            SignalSet::from_bits(INHERITED_BLOCKED.load(Ordering::SeqCst))
        } else {
            SignalSet::blocked_now()
        }
    }

    pub(crate) const fn from_bits(bits: u64) -> SignalSet {
        SignalSet { bits, bad: 0 }
    }

    /// The set as bits (bit n-1 for signal n).
    pub(crate) fn bits(&self) -> u64 {
        self.bits
    }

    /// The bits of a set a program can start with, or the InvalidInput error that says why
    /// not; `what` names the option (`ignored_signals`).
    pub(crate) fn check(&self, what: &str) -> io::Result<u64> {
        if self.bad != 0 {
            let n = if self.bad == i32::MIN { 0 } else { self.bad };
            return Err(Error::invalid(
                Step::Input,
                format!("{what}: {n} is not a signal number (1 to 64)"),
            )
            .into());
        }
        if let Some(s) = SignalSet::from_bits(self.bits & UNUSABLE).iter().next() {
            let why = if s == libc::SIGKILL || s == libc::SIGSTOP {
                "cannot be ignored or blocked"
            } else {
                "is reserved by the C library for its threads"
            };
            return Err(Error::invalid(Step::Input, format!("{what}: {} {why}", name(s))).into());
        }
        Ok(self.bits)
    }
}

impl FromIterator<i32> for SignalSet {
    fn from_iter<I: IntoIterator<Item = i32>>(iter: I) -> Self {
        let mut set = SignalSet::empty();
        set.extend(iter);
        set
    }
}

impl Extend<i32> for SignalSet {
    fn extend<I: IntoIterator<Item = i32>>(&mut self, iter: I) {
        for s in iter {
            self.insert(s);
        }
    }
}

impl fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut set = f.debug_set();
        for s in self.iter() {
            set.entry(&format_args!("{}", name(s)));
        }
        if self.bad != 0 {
            set.entry(&format_args!("invalid {}", self.bad));
        }
        set.finish()
    }
}

/// `SIGINT` for 2, `signal 40` for a number without a name.
fn name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}

fn ignored_bits() -> u64 {
    let mut bits = 0;
    for sig in 1..=64 {
        if sig != libc::SIGPIPE && crate::sys::is_ignored(sig) {
            bits |= bit(sig);
        }
    }
    bits & !UNUSABLE
}

fn blocked_bits() -> u64 {
    let mut old = SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, None, Some(&mut old));
    crate::sys::sigset_bits(&old) & !UNUSABLE
}

/// Remember what the caller gave this process (its ignored signals and mask), once: the first
/// call wins. enter() calls it before it changes anything.
pub(crate) fn record_inherited() {
    if INHERITED_SET.load(Ordering::SeqCst) {
        return;
    }
    INHERITED_IGNORED.store(ignored_bits(), Ordering::SeqCst);
    INHERITED_BLOCKED.store(blocked_bits(), Ordering::SeqCst);
    INHERITED_SET.store(true, Ordering::SeqCst);
}

/// The signal set of `sigs` (numbers that name no signal are left out). Async-signal-safe.
pub(crate) fn set_of(sigs: &[i32]) -> SigSet {
    let mut bits = 0;
    for &n in sigs {
        if (1..=64).contains(&n) {
            bits |= bit(n);
        }
    }
    crate::sys::sigset_of_bits(bits)
}

/// Change the calling thread's signal mask (sigprocmask(2)); returns the previous mask.
/// Async-signal-safe.
pub(crate) fn mask(how: SigmaskHow, set: &SigSet) -> SigSet {
    let mut old = SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(how, Some(set), Some(&mut old));
    old
}

/// Give a command about to exec the signal state it starts with: SIG_IGN for the signals of
/// `ignored` and `blocked` as its mask; every other disposition is left as it is (the default
/// action, in a sandbox's init). Async-signal-safe: for the child side of a fork, before exec
/// (which resets every handled signal to its default action and keeps ignored ones and the
/// mask).
pub(crate) fn start_state(ignored: u64, blocked: u64) {
    for sig in SignalSet::from_bits(ignored & !UNUSABLE).iter() {
        crate::sys::ignore_signal(sig);
    }
    mask(
        SigmaskHow::SIG_SETMASK,
        &crate::sys::sigset_of_bits(blocked & !UNUSABLE),
    );
}

/// The signals a signalfd of the init takes: SIGCHLD and the forwarded ones but `except` (the
/// signals the command starts ignoring). Async-signal-safe.
pub(crate) fn forwarded_and_sigchld(except: u64) -> SigSet {
    crate::sys::sigset_of_bits((FORWARDED.bits & !except) | bit(libc::SIGCHLD))
}

/// [`start_state`], and the default action for every signal not in `ignored`: for a child
/// forked from a process with handlers or ignored signals of its own. Async-signal-safe.
pub(crate) fn start_state_all(ignored: u64, blocked: u64) {
    // glibc's reserved 32 and 33 included: they always start with their default action.
    for sig in SignalSet::from_bits(!ignored & !(bit(libc::SIGKILL) | bit(libc::SIGSTOP))).iter() {
        crate::sys::set_default_action(sig);
    }
    start_state(ignored, blocked);
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

/// The next pending signal of a signalfd given as a plain fd (non-blocking), or `None`.
pub(crate) fn next_signal_of(fd: std::os::fd::BorrowedFd<'_>) -> Option<i32> {
    // struct signalfd_siginfo is 128 bytes; ssi_signo is its first u32.
    let mut buf = [0u8; 128];
    match rustix::io::read(fd, &mut buf) {
        Ok(128) => Some(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_set_is_every_signal_but_the_ones_that_cannot_be() {
        for sig in 1..=64 {
            let not = [libc::SIGCHLD, libc::SIGKILL, libc::SIGSTOP, 32, 33];
            assert_eq!(is_forwarded(sig), !not.contains(&sig), "signal {sig}");
        }
        assert!(!is_forwarded(0) && !is_forwarded(65));
    }

    #[test]
    fn bad_numbers_are_reported_not_dropped() {
        let mut set = SignalSet::empty();
        set.insert(libc::SIGINT).insert(65);
        let e = set.check("ignored_signals").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("65 is not a signal number"), "{e}");
        let e = [libc::SIGKILL].into_iter().collect::<SignalSet>();
        let e = e.check("blocked_signals").unwrap_err();
        assert!(e.to_string().contains("SIGKILL cannot be"), "{e}");
        let ok: SignalSet = [libc::SIGINT, 40].into_iter().collect();
        assert_eq!(ok.check("x").unwrap(), bit(libc::SIGINT) | bit(40));
        assert_eq!(format!("{ok:?}"), "{SIGINT, signal 40}");
    }
}

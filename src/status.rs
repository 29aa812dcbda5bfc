//! Raw wait statuses, [`std::process::ExitStatus`], and [`exit_as_status`].
//!
//! nsbox keeps wait statuses raw (the `int` of wait(2)) everywhere and converts at the edge,
//! so `code()`, `signal()` and `core_dumped()` work as users expect. It never folds a signal
//! death into `128 + n` inside the library.
//!
//! ```
//! use std::os::unix::process::ExitStatusExt;
//! let s = nsbox::status::from_raw(nsbox::status::raw_signaled(libc::SIGTERM, false));
//! assert_eq!(s.signal(), Some(libc::SIGTERM));
//! assert_eq!(nsbox::status::from_raw(nsbox::status::raw_exited(3)).code(), Some(3));
//! ```

use std::os::fd::RawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};

/// An [`ExitStatus`] from a raw wait status.
pub fn from_raw(raw: i32) -> ExitStatus {
    ExitStatus::from_raw(raw)
}

/// The raw wait status of a normal exit with `code` (0..=255).
pub const fn raw_exited(code: u8) -> i32 {
    (code as i32) << 8
}

/// The raw wait status of a death by `signal`, with or without a core dump.
pub const fn raw_signaled(signal: i32, core_dumped: bool) -> i32 {
    (signal & 0x7f) | if core_dumped { 0x80 } else { 0 }
}

/// The raw wait status from a `siginfo_t` filled by waitid(2) (`si_code`, `si_status`).
pub(crate) fn raw_from_siginfo(code: i32, status: i32) -> i32 {
    match code {
        libc::CLD_EXITED => raw_exited(status as u8),
        libc::CLD_KILLED => raw_signaled(status, false),
        libc::CLD_DUMPED => raw_signaled(status, true),
        // Stopped/continued do not end a process; keep a recognizable encoding.
        libc::CLD_STOPPED | libc::CLD_TRAPPED => (status << 8) | 0x7f,
        _ => 0xffff,
    }
}

/// The process-wide channel that carries the raw status of pid 1 out of a pid namespace made
/// by [`enter`](crate::enter()); -1 when there is none.
static PID1_STATUS_FD: AtomicI32 = AtomicI32::new(-1);

pub(crate) fn set_pid1_status_fd(fd: RawFd) {
    PID1_STATUS_FD.store(fd, Ordering::SeqCst);
}

/// Tell the process outside that the main command stopped by `sig` (job control), when this is
/// pid 1 of a pid namespace made by [`enter()`](crate::enter()). Returns false when there is
/// nobody to tell.
pub(crate) fn report_stopped(sig: i32) -> bool {
    let fd = PID1_STATUS_FD.load(Ordering::SeqCst);
    if fd < 0 {
        return false;
    }
    crate::sys::write_all_raw(fd, &(((sig & 0xff) << 8) | 0x7f).to_ne_bytes());
    true
}

/// Exit the calling process exactly as `status` says: with the same exit code, or by the same
/// signal (reset to its default action, unblocked), with the same core flag: without one,
/// `RLIMIT_CORE` is set to 0 so no second core is dumped; with one, the kernel only sets the
/// flag if a dump succeeds, so a one-page core of this process is written into a fresh
/// `$TMPDIR/nsbox-core.PID` directory (never over the program's own core file).
///
/// Inside a pid namespace made by [`enter`](crate::enter()) the process is pid 1 and cannot die
/// by its own signal; there the raw status is written to the process outside, which then
/// reproduces it (and this process exits with `128 + n`, which nobody sees). Where a signal's
/// default action does not kill (SIGCHLD, SIGWINCH, SIGCONT, stop signals), the process exits
/// with `128 + n`.
pub fn exit_as_status(status: ExitStatus) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let raw = status.into_raw();
    let fd = PID1_STATUS_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        crate::sys::write_all_raw(fd, &raw.to_ne_bytes());
    }
    if let Some(code) = status.code() {
        crate::sys::exit_now(code);
    }
    if let Some(sig) = status.signal() {
        // pid 1 ignores the signals it sends itself: there the waiter outside reproduces the
        // death from the raw status written above.
        if fd < 0 {
            crate::sys::die_by_signal(sig, status.core_dumped());
        }
        crate::sys::exit_now(128 + sig);
    }
    // Stopped or continued: not an end; report failure.
    crate::sys::exit_now(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_code_round_trips() {
        for code in 0..=255u8 {
            let s = from_raw(raw_exited(code));
            assert_eq!(s.code(), Some(code as i32));
            assert_eq!(s.signal(), None);
        }
    }

    #[test]
    fn signal_deaths_keep_the_signal_and_core_flag() {
        for sig in 1..=64 {
            for core in [false, true] {
                let s = from_raw(raw_signaled(sig, core));
                assert_eq!(s.code(), None);
                assert_eq!(s.signal(), Some(sig));
                assert_eq!(s.core_dumped(), core);
            }
        }
    }

    #[test]
    fn siginfo_codes_map_to_raw_statuses() {
        assert_eq!(raw_from_siginfo(libc::CLD_EXITED, 7), raw_exited(7));
        assert_eq!(
            raw_from_siginfo(libc::CLD_KILLED, 9),
            raw_signaled(9, false)
        );
        assert!(from_raw(raw_from_siginfo(libc::CLD_DUMPED, 11)).core_dumped());
    }
}

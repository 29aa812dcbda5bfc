//! Raw wait statuses and [`std::process::ExitStatus`].
//!
//! nsbox keeps wait statuses raw (the `int` of wait(2)) everywhere and converts at the edge,
//! so `code()`, `signal()` and `core_dumped()` work as users expect. It never folds a signal
//! death into `128 + n` inside the library.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// An [`ExitStatus`] from a raw wait status.
pub(crate) fn from_raw(raw: i32) -> ExitStatus {
    ExitStatus::from_raw(raw)
}

/// The raw wait status of a normal exit with `code` (0..=255).
pub(crate) const fn raw_exited(code: u8) -> i32 {
    (code as i32) << 8
}

/// The raw wait status of a death by `signal`, with or without a core dump.
pub(crate) const fn raw_signaled(signal: i32, core_dumped: bool) -> i32 {
    (signal & 0x7f) | if core_dumped { 0x80 } else { 0 }
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
        use crate::sys::raw_status_from_siginfo as raw;
        assert_eq!(raw(libc::CLD_EXITED, 7), raw_exited(7));
        assert_eq!(raw(libc::CLD_KILLED, 9), raw_signaled(9, false));
        assert!(from_raw(raw(libc::CLD_DUMPED, 11)).core_dumped());
    }
}

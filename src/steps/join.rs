//! Joining an existing namespace.

use std::os::fd::BorrowedFd;

use rustix::thread::ThreadNameSpaceType;

use super::{Step, StepError};

/// setns(2) into the namespace behind `fd` (a namespace file, or a pidfd with several
/// kinds). `nstype` is the expected `CLONE_NEW*` kind (0 accepts any) or, with a pidfd, the
/// kinds to join; `index` numbers the join for the error.
pub fn setns(fd: BorrowedFd<'_>, nstype: u32, index: u32) -> Result<(), StepError> {
    rustix::thread::move_into_thread_name_spaces(fd, ThreadNameSpaceType::from_bits_retain(nstype))
        .map_err(|e| StepError {
            step: Step::Join,
            errno: e.raw_os_error(),
            detail: index,
        })
}

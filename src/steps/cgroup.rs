//! The init's join of its cgroup v2 leaf, where clone3 could not create it there
//! (`CLONE_INTO_CGROUP` is missing before Linux 5.7).

use std::os::fd::BorrowedFd;

use super::{Step, StepError};

/// Write `0` (the writing process) to the leaf's `cgroup.procs`, opened by the orchestrator
/// (the kernel checks the opener's permissions). One write, no allocation.
pub fn join(procs: BorrowedFd<'_>) -> Result<(), StepError> {
    loop {
        match rustix::io::write(procs, b"0") {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(StepError::new(Step::CgroupJoin, e.raw_os_error())),
        }
    }
}

//! The network namespace: `lo` up, with an ioctl (no `ip` program), as Bazel's
//! linux-sandbox and nsjail do.

use super::{Step, StepError};

/// Bring `lo` up in the calling process's network namespace.
pub fn loopback_up() -> Result<(), StepError> {
    crate::sys::loopback_up().map_err(|e| StepError::new(Step::Loopback, e))
}

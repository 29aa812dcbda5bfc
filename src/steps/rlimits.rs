//! The command's resource limits, set in its own process just before its exec.

use super::{Step, StepError};
use crate::limits::Resource;

/// Set each `(resource, soft, hard)` with setrlimit(2) (rustix's raw prlimit64 call: no
/// allocation), in order. The error's detail is the index of the limit that failed.
pub fn set_rlimits(limits: &[(Resource, u64, u64)]) -> Result<(), StepError> {
    for (i, &(res, soft, hard)) in limits.iter().enumerate() {
        let value = |v: u64| (v != Resource::INFINITY).then_some(v);
        let new = rustix::process::Rlimit {
            current: value(soft),
            maximum: value(hard),
        };
        rustix::process::setrlimit(res.rustix(), new).map_err(|e| StepError {
            step: Step::Rlimit,
            errno: e.raw_os_error(),
            detail: i as u32,
        })?;
    }
    Ok(())
}

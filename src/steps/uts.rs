//! Hostname and NIS domain name of a UTS namespace.

use super::{Step, StepError, fail};

/// sethostname(2) with `name` (checked beforehand: at most 64 bytes, no NUL).
pub fn sethostname(name: &[u8]) -> Result<(), StepError> {
    rustix::system::sethostname(name).map_err(fail(Step::Sethostname))
}

/// setdomainname(2) with `name` (checked beforehand).
pub fn setdomainname(name: &[u8]) -> Result<(), StepError> {
    rustix::system::setdomainname(name).map_err(fail(Step::Setdomainname))
}

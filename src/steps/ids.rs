//! The id maps of a new user namespace (user_namespaces(7)): `deny` to setgroups, then one
//! write each of uid_map and gid_map. An unprivileged process may map only its own id, once,
//! after setgroups is denied; several ranges need newuidmap/newgidmap (a setup hook).

use std::ffi::CStr;

use rustix::fs::{Mode, OFlags};

use super::{Step, StepError, fail};

/// Write `data` to the file at `path` in one write(2), as `step`.
fn write_proc(step: Step, path: &CStr, data: &[u8]) -> Result<(), StepError> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(fail(step))?;
    rustix::io::write(&fd, data).map_err(fail(step))?;
    Ok(())
}

/// Write `deny` to `/proc/self/setgroups`. Kernels before 3.19 lack the file: not an error.
pub fn deny_setgroups() -> Result<(), StepError> {
    match write_proc(Step::Setgroups, c"/proc/self/setgroups", b"deny") {
        Err(e) if e.errno == libc::ENOENT => Ok(()),
        r => r,
    }
}

/// Deny setgroups, then write `uid_map` and `gid_map` lines (`inside outside count\n`, built
/// beforehand) for the calling process's new user namespace.
pub fn map_ids(uid_map: &[u8], gid_map: &[u8]) -> Result<(), StepError> {
    deny_setgroups()?;
    write_proc(Step::UidMap, c"/proc/self/uid_map", uid_map)?;
    write_proc(Step::GidMap, c"/proc/self/gid_map", gid_map)
}

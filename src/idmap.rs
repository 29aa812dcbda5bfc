//! uid/gid maps and `setgroups` for a new user namespace (user_namespaces(7)).
//!
//! An unprivileged process may write one line mapping its own id, once per file, and must
//! write `deny` to `setgroups` before `gid_map`. Several ranges need newuidmap/newgidmap
//! (see the spawn hook).

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::unistd::Pid;

use crate::error::{Error, errno_of};

/// One line of a uid or gid map: `inside outside count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id outside (in the parent user namespace).
    pub outside: u32,
    /// Number of ids.
    pub count: u32,
}

impl IdMap {
    /// Map the single id `outside` to `inside`.
    pub fn single(inside: u32, outside: u32) -> Self {
        IdMap {
            inside,
            outside,
            count: 1,
        }
    }

    /// The line written to the map file.
    pub fn line(&self) -> String {
        format!("{} {} {}\n", self.inside, self.outside, self.count)
    }
}

fn proc_file(pid: Option<Pid>, name: &str) -> PathBuf {
    match pid {
        Some(p) => PathBuf::from(format!("/proc/{p}/{name}")),
        None => PathBuf::from(format!("/proc/self/{name}")),
    }
}

fn write_proc(path: PathBuf, data: &str, step: &'static str) -> io::Result<()> {
    std::fs::write(&path, data).map_err(|e| {
        let errno = errno_of(&e).unwrap_or(Errno::EIO);
        let mut err = Error::new(step, Some(&path), errno);
        if errno == Errno::EPERM {
            err = err.with_hint(
                "an unprivileged process may map only its own id, once, after setgroups is denied",
            );
        }
        err.into_io()
    })
}

/// Write `deny` to `/proc/PID/setgroups` (`None`: the calling process). Kernels before 3.19
/// lack the file; that is not an error.
pub fn deny_setgroups(pid: Option<Pid>) -> io::Result<()> {
    match write_proc(proc_file(pid, "setgroups"), "deny", "write setgroups") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Write the uid map of `pid` (`None`: the calling process).
pub fn write_uid_map(pid: Option<Pid>, map: IdMap) -> io::Result<()> {
    write_proc(proc_file(pid, "uid_map"), &map.line(), "write uid_map")
}

/// Write the gid map of `pid` (`None`: the calling process). Deny setgroups first when
/// unprivileged.
pub fn write_gid_map(pid: Option<Pid>, map: IdMap) -> io::Result<()> {
    write_proc(proc_file(pid, "gid_map"), &map.line(), "write gid_map")
}

/// The default for a new user namespace: deny setgroups, then map the caller's uid and gid
/// (given, since they must be read before the unshare) to `uid_inside` and `gid_inside`.
pub fn map_single(
    pid: Option<Pid>,
    uid: u32,
    gid: u32,
    uid_inside: u32,
    gid_inside: u32,
) -> io::Result<()> {
    deny_setgroups(pid)?;
    write_uid_map(pid, IdMap::single(uid_inside, uid))?;
    write_gid_map(pid, IdMap::single(gid_inside, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_line_has_three_fields_and_a_newline() {
        assert_eq!(IdMap::single(0, 1000).line(), "0 1000 1\n");
    }
}

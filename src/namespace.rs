//! Namespace kinds, the [`Namespaces`] configuration, and unshare/setns.
//!
//! ```
//! use nsbox::{Namespace, Namespaces};
//! let ns = Namespaces::all().hostname("build");
//! assert!(ns.kinds().contains(Namespace::Uts));
//! assert!(ns.kinds().contains(Namespace::User));
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sched::CloneFlags;

use crate::error::{Error, invalid};

/// One kind of Linux namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// User namespace (`CLONE_NEWUSER`): ids and capabilities.
    User,
    /// Mount namespace (`CLONE_NEWNS`).
    Mount,
    /// UTS namespace (`CLONE_NEWUTS`): hostname and domain name.
    Uts,
    /// IPC namespace (`CLONE_NEWIPC`): System V IPC and POSIX message queues.
    Ipc,
    /// Network namespace (`CLONE_NEWNET`).
    Net,
    /// PID namespace (`CLONE_NEWPID`).
    Pid,
    /// Cgroup namespace (`CLONE_NEWCGROUP`).
    Cgroup,
}

impl Namespace {
    /// Every kind, in the order nsbox creates them (the seed's order; cgroup last).
    pub const ALL: [Namespace; 7] = [
        Namespace::User,
        Namespace::Mount,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::Pid,
        Namespace::Cgroup,
    ];

    /// The `CLONE_NEW*` flag of this kind.
    pub fn clone_flag(self) -> CloneFlags {
        match self {
            Namespace::User => CloneFlags::CLONE_NEWUSER,
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        }
    }

    /// The name used in `/proc/PID/ns/` (`user`, `mnt`, `uts`, `ipc`, `net`, `pid`, `cgroup`).
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mnt",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Pid => "pid",
            Namespace::Cgroup => "cgroup",
        }
    }

    /// Parse a kind from its `/proc/PID/ns` name or its long name (`mount`, `network`).
    pub fn from_name(name: &str) -> Option<Namespace> {
        Some(match name {
            "user" => Namespace::User,
            "mnt" | "mount" => Namespace::Mount,
            "uts" => Namespace::Uts,
            "ipc" => Namespace::Ipc,
            "net" | "network" => Namespace::Net,
            "pid" => Namespace::Pid,
            "cgroup" => Namespace::Cgroup,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Namespace::Mount => "mount",
            other => other.proc_name(),
        })
    }
}

/// A set of namespace kinds.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NamespaceSet(u8);

impl NamespaceSet {
    /// The empty set.
    pub const fn empty() -> Self {
        NamespaceSet(0)
    }

    /// Add a kind.
    pub fn insert(&mut self, kind: Namespace) {
        self.0 |= kind.bit();
    }

    /// Remove a kind.
    pub fn remove(&mut self, kind: Namespace) {
        self.0 &= !kind.bit();
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: Namespace) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in creation order.
    pub fn iter(self) -> impl Iterator<Item = Namespace> {
        Namespace::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }

    /// The union of the kinds' `CLONE_NEW*` flags.
    pub fn clone_flags(self) -> CloneFlags {
        self.iter()
            .fold(CloneFlags::empty(), |acc, k| acc | k.clone_flag())
    }
}

impl FromIterator<Namespace> for NamespaceSet {
    fn from_iter<I: IntoIterator<Item = Namespace>>(iter: I) -> Self {
        let mut set = NamespaceSet::empty();
        for k in iter {
            set.insert(k);
        }
        set
    }
}

impl fmt::Debug for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for k in self.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{k}")?;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Propagation given to `/` in a new mount namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Recursively slave: mount events flow in from the host, never out (the default).
    #[default]
    Slave,
    /// Recursively private: no events in either direction.
    Private,
}

/// Where a namespace to join comes from.
#[derive(Clone, Debug)]
pub enum JoinSource {
    /// A namespace file: `/proc/PID/ns/net`, `/run/netns/NAME`, a bind mount of one.
    Path(PathBuf),
    /// An open namespace file descriptor.
    Fd(Arc<OwnedFd>),
    /// A pidfd: joins the given kinds of that process's namespaces at once.
    Pidfd(Arc<OwnedFd>, NamespaceSet),
}

/// A namespace to join before new namespaces are made.
#[derive(Clone, Debug)]
pub struct Join {
    /// The expected kind; `None` accepts any kind (setns with nstype 0).
    pub kind: Option<Namespace>,
    /// Where it comes from.
    pub source: JoinSource,
}

/// What namespaces to create or join, and how to set them up.
///
/// A builder; nothing is checked until [`enter`](crate::enter()) or a sandbox spawn uses it,
/// and every problem comes back from there as an [`io::Error`].
#[derive(Clone, Debug, Default)]
pub struct Namespaces {
    pub(crate) kinds: NamespaceSet,
    pub(crate) hostname: Option<OsString>,
    pub(crate) domainname: Option<OsString>,
    pub(crate) uid_inside: u32,
    pub(crate) gid_inside: u32,
    pub(crate) best_effort: bool,
    pub(crate) joins: Vec<Join>,
    pub(crate) propagation: Propagation,
    pub(crate) mount_proc: bool,
    pub(crate) lock_mounts: bool,
}

impl Namespaces {
    /// No namespaces at all.
    pub fn new() -> Self {
        Namespaces {
            mount_proc: true,
            lock_mounts: true,
            ..Default::default()
        }
    }

    /// user, mount, uts, ipc, net and pid: everything the seed knows.
    pub fn all() -> Self {
        Namespaces::new()
            .user(true)
            .mount(true)
            .uts(true)
            .ipc(true)
            .net(true)
            .pid(true)
    }

    fn set(mut self, kind: Namespace, on: bool) -> Self {
        if on {
            self.kinds.insert(kind);
        } else {
            self.kinds.remove(kind);
        }
        self
    }

    /// A new user namespace; the caller's uid and gid are mapped to the inside ids (0 by default).
    pub fn user(self, on: bool) -> Self {
        self.set(Namespace::User, on)
    }
    /// A new mount namespace with `/` made recursively slave (see [`propagation`](Self::propagation)).
    pub fn mount(self, on: bool) -> Self {
        self.set(Namespace::Mount, on)
    }
    /// A new UTS namespace.
    pub fn uts(self, on: bool) -> Self {
        self.set(Namespace::Uts, on)
    }
    /// A new IPC namespace.
    pub fn ipc(self, on: bool) -> Self {
        self.set(Namespace::Ipc, on)
    }
    /// A new network namespace holding only `lo`, which is brought up.
    pub fn net(self, on: bool) -> Self {
        self.set(Namespace::Net, on)
    }
    /// A new PID namespace. With a new mount namespace too, a fresh `/proc` is mounted.
    pub fn pid(self, on: bool) -> Self {
        self.set(Namespace::Pid, on)
    }
    /// A new cgroup namespace.
    pub fn cgroup(self, on: bool) -> Self {
        self.set(Namespace::Cgroup, on)
    }
    /// Set the hostname inside; implies a UTS namespace.
    pub fn hostname(mut self, name: impl Into<OsString>) -> Self {
        self.hostname = Some(name.into());
        self.set(Namespace::Uts, true)
    }
    /// Set the NIS domain name inside; implies a UTS namespace.
    pub fn domainname(mut self, name: impl Into<OsString>) -> Self {
        self.domainname = Some(name.into());
        self.set(Namespace::Uts, true)
    }
    /// The uid the caller becomes inside a new user namespace (default 0).
    pub fn map_user(mut self, inside: u32) -> Self {
        self.uid_inside = inside;
        self
    }
    /// The gid the caller becomes inside a new user namespace (default 0).
    pub fn map_group(mut self, inside: u32) -> Self {
        self.gid_inside = inside;
        self
    }
    /// Skip the kinds this kernel lacks (EINVAL from unshare) instead of failing; the report
    /// names them. Every other error still fails.
    pub fn best_effort(mut self, on: bool) -> Self {
        self.best_effort = on;
        self
    }
    /// Propagation of `/` in a new mount namespace.
    pub fn propagation(mut self, p: Propagation) -> Self {
        self.propagation = p;
        self
    }
    /// Whether to mount a fresh `/proc` when both a pid and a mount namespace are new
    /// (default true). `/proc` is never remounted without a new mount namespace.
    pub fn mount_proc(mut self, on: bool) -> Self {
        self.mount_proc = on;
        self
    }
    /// Lock every mount after the fresh `/proc` is mounted (default true), so that root inside
    /// cannot unmount `/proc` and see the host's `/proc` beneath it. It costs a nested user
    /// namespace and a copy of the mount tree (about 0.2 to 0.4 ms per sandbox here): turn it
    /// off only for trusted commands. The command stays root over its UTS, network and IPC
    /// namespaces either way.
    pub fn lock_mounts(mut self, on: bool) -> Self {
        self.lock_mounts = on;
        self
    }
    /// Join the namespace at `path` (of `kind`, or of any kind with `None`) before new ones are made.
    pub fn join_path(mut self, kind: Option<Namespace>, path: impl Into<PathBuf>) -> Self {
        self.joins.push(Join {
            kind,
            source: JoinSource::Path(path.into()),
        });
        self
    }
    /// Join the namespace behind an open fd.
    pub fn join_fd(mut self, kind: Option<Namespace>, fd: OwnedFd) -> Self {
        self.joins.push(Join {
            kind,
            source: JoinSource::Fd(Arc::new(fd)),
        });
        self
    }
    /// Join several namespaces of the process behind a pidfd at once.
    pub fn join_pidfd(mut self, pidfd: OwnedFd, kinds: NamespaceSet) -> Self {
        self.joins.push(Join {
            kind: None,
            source: JoinSource::Pidfd(Arc::new(pidfd), kinds),
        });
        self
    }

    /// The kinds that will be created.
    pub fn kinds(&self) -> NamespaceSet {
        self.kinds
    }

    /// Check what can be checked without touching the kernel.
    pub(crate) fn validate(&self) -> io::Result<()> {
        for (step, name) in [
            ("sethostname", &self.hostname),
            ("setdomainname", &self.domainname),
        ] {
            if let Some(name) = name {
                check_uts_name(step, name)?;
            }
        }
        Ok(())
    }
}

/// The kernel's limit for a hostname or domain name (`__NEW_UTS_LEN`).
pub const UTS_NAME_MAX: usize = 64;

fn check_uts_name(step: &'static str, name: &OsStr) -> io::Result<()> {
    let bytes = name.as_bytes();
    if bytes.contains(&0) {
        return Err(invalid(step, format!("{name:?} contains a NUL byte")));
    }
    if bytes.len() > UTS_NAME_MAX {
        return Err(invalid(
            step,
            format!(
                "{name:?} is {} bytes long; the kernel allows at most {UTS_NAME_MAX}",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// The hint for a failure to create a namespace of `kind`.
pub(crate) fn unshare_hint(kind: Namespace, errno: Errno) -> Option<String> {
    Some(match errno {
        Errno::EPERM if kind == Namespace::User => "user namespaces may be disabled \
            (sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces, or an \
            AppArmor/SELinux policy such as kernel.apparmor_restrict_unprivileged_userns)"
            .into(),
        Errno::EPERM => format!(
            "creating a {kind} namespace needs CAP_SYS_ADMIN: run as root, or add a user \
             namespace (Namespaces::user / --user)"
        ),
        Errno::ENOSPC | Errno::EUSERS => format!(
            "the limit of {kind} namespaces was reached: see /proc/sys/user/max_{}_namespaces",
            match kind {
                Namespace::Mount => "mnt",
                k => k.proc_name(),
            }
        ),
        Errno::EINVAL if kind == Namespace::User => "the process is multi-threaded \
            (unshare(CLONE_NEWUSER) needs a single thread), or the kernel lacks user namespaces"
            .into(),
        Errno::EINVAL => {
            format!("this kernel may lack {kind} namespaces (use best_effort to skip them)")
        }
        _ => return None,
    })
}

/// An error for creating a namespace of `kind`.
pub(crate) fn unshare_error(kind: Namespace, errno: Errno) -> io::Error {
    let mut e = Error::new(format!("unshare {kind} namespace"), None, errno);
    if let Some(h) = unshare_hint(kind, errno) {
        e = e.with_hint(h);
    }
    e.into_io()
}

/// Create new namespaces of each kind in `kinds` for the calling process, one at a time in
/// creation order, so an error names the kind that failed.
///
/// With [`Namespace::Pid`] only the process's future children are in the new pid namespace.
/// A new user namespace needs a single-threaded process (unshare(2)).
///
/// # Errors
///
/// `unshare {kind} namespace: {errno}` with a hint; see [`Error`].
pub fn unshare(kinds: NamespaceSet) -> io::Result<()> {
    for kind in kinds.iter() {
        nix::sched::unshare(kind.clone_flag()).map_err(|e| unshare_error(kind, e))?;
    }
    Ok(())
}

pub(crate) fn join_error_for(
    kind: Option<Namespace>,
    path: Option<&Path>,
    errno: Errno,
) -> io::Error {
    let step = match kind {
        Some(k) => format!("join {k} namespace"),
        None => "join namespace".to_string(),
    };
    let mut e = Error::new(step, path, errno);
    let hint = match errno {
        Errno::EINVAL => Some(
            "the file is not a namespace, or not of the expected kind, or the caller cannot \
             join it (a multi-threaded process cannot join a user namespace)",
        ),
        Errno::EPERM => {
            Some("joining needs CAP_SYS_ADMIN in the namespace's owning user namespace")
        }
        _ => None,
    };
    if let Some(h) = hint {
        e = e.with_hint(h);
    }
    e.into_io()
}

/// Join the namespace behind `fd` (setns(2)). `kind` checks the namespace's kind; `None`
/// accepts any.
pub fn setns_fd(fd: BorrowedFd<'_>, kind: Option<Namespace>) -> io::Result<()> {
    let flags = kind.map_or(CloneFlags::empty(), Namespace::clone_flag);
    nix::sched::setns(fd, flags).map_err(|e| join_error_for(kind, None, e))
}

/// Open the namespace file at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`) and join it.
pub fn setns_path(path: &Path, kind: Option<Namespace>) -> io::Result<()> {
    let fd = open_namespace(path, kind)?;
    let flags = kind.map_or(CloneFlags::empty(), Namespace::clone_flag);
    nix::sched::setns(fd.as_fd(), flags).map_err(|e| join_error_for(kind, Some(path), e))
}

/// Join the `kinds` namespaces of the process behind `pidfd` at once (setns(2) with a pidfd,
/// Linux 5.8).
pub fn setns_pidfd(pidfd: BorrowedFd<'_>, kinds: NamespaceSet) -> io::Result<()> {
    nix::sched::setns(pidfd, kinds.clone_flags())
        .map_err(|e| join_error_for(None, Some(Path::new("<pidfd>")), e))
}

/// Open a namespace file for a later setns, with an error that names the path.
pub(crate) fn open_namespace(path: &Path, kind: Option<Namespace>) -> io::Result<OwnedFd> {
    std::fs::File::open(path).map(OwnedFd::from).map_err(|e| {
        join_error_for(
            kind,
            Some(path),
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })
}

/// Join every namespace in `joins`, in order.
pub(crate) fn join_all(joins: &[Join]) -> io::Result<()> {
    for j in joins {
        match &j.source {
            JoinSource::Path(p) => setns_path(p, j.kind)?,
            JoinSource::Fd(fd) => setns_fd(fd.as_fd(), j.kind)?,
            JoinSource::Pidfd(fd, kinds) => setns_pidfd(fd.as_fd(), *kinds)?,
        }
    }
    Ok(())
}

/// The number of threads of the calling process, from `/proc/self/status`.
pub fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
        crate::error::step_err(
            "read",
            Some(Path::new("/proc/self/status")),
            crate::error::errno_of(&e).unwrap_or(Errno::EIO),
        )
    })?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| invalid("read /proc/self/status", "no Threads: line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_iterates_in_creation_order() {
        let set: NamespaceSet = [Namespace::Pid, Namespace::User, Namespace::Net]
            .into_iter()
            .collect();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Namespace::User, Namespace::Net, Namespace::Pid]
        );
        assert_eq!(set.to_string(), "user,net,pid");
    }

    #[test]
    fn a_hostname_over_64_bytes_is_rejected() {
        let err = Namespaces::new()
            .hostname("x".repeat(65))
            .validate()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("sethostname"), "{err}");
        assert!(
            Namespaces::new()
                .hostname("x".repeat(64))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn a_hostname_with_a_nul_is_rejected() {
        let err = Namespaces::new().hostname("a\0b").validate().unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    }

    #[test]
    fn names_parse_both_ways() {
        for k in Namespace::ALL {
            assert_eq!(Namespace::from_name(k.proc_name()), Some(k));
            assert_eq!(Namespace::from_name(&k.to_string()), Some(k));
        }
        assert_eq!(Namespace::from_name("bogus"), None);
    }

    #[test]
    fn a_user_namespace_eperm_hint_mentions_the_sysctl() {
        let h = unshare_hint(Namespace::User, Errno::EPERM).unwrap();
        assert!(h.contains("max_user_namespaces"));
        let h = unshare_hint(Namespace::Net, Errno::ENOSPC).unwrap();
        assert!(h.contains("max_net_namespaces"));
    }
}

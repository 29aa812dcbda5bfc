//! Namespace kinds, the [`Namespaces`] configuration, and unshare/setns.
//!
//! ```
//! use nsbox::{Namespace, Namespaces};
//! let mut ns = Namespaces::all();
//! ns.hostname("build");
//! assert!(ns.kinds().contains(Namespace::Uts));
//! assert!(ns.kinds().contains(Namespace::User));
//! ```

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) mod kind;

pub use kind::{Namespace, NamespaceSet, Propagation};

use crate::error::{Error, errno_of};
use crate::steps::{Step, StepError};

/// Where a namespace to join comes from.
#[derive(Clone, Debug)]
pub(crate) enum JoinSource {
    /// A namespace file: `/proc/PID/ns/net`, `/run/netns/NAME`, a bind mount of one.
    Path(PathBuf),
    /// An open namespace file descriptor.
    Fd(Arc<OwnedFd>),
    /// A pidfd: joins the given kinds of that process's namespaces at once.
    Pidfd(Arc<OwnedFd>, NamespaceSet),
}

/// A namespace to join before new namespaces are made.
#[derive(Clone, Debug)]
pub(crate) struct Join {
    /// The expected kind; `None` accepts any kind (setns with nstype 0).
    pub kind: Option<Namespace>,
    /// Where it comes from.
    pub source: JoinSource,
}

impl Join {
    /// The nstype argument of setns(2) for this join.
    pub(crate) fn nstype(&self) -> u32 {
        match &self.source {
            JoinSource::Pidfd(_, kinds) => kinds.clone_flags(),
            _ => self.kind.map_or(0, Namespace::clone_flag),
        }
    }

    /// The path, for errors.
    pub(crate) fn path(&self) -> Option<&Path> {
        match &self.source {
            JoinSource::Path(p) => Some(p),
            JoinSource::Pidfd(..) => Some(Path::new("<pidfd>")),
            JoinSource::Fd(_) => None,
        }
    }

    /// The error of this join failing with `e` (from the init's report or from enter()).
    pub(crate) fn error(&self, errno: i32) -> io::Error {
        let mut e = Error::os(Step::Join, errno).with_namespace(self.kind);
        if let Some(p) = self.path() {
            e = e.with_path(p);
        }
        e.into()
    }

    /// An fd for the join: the namespace file opened, or the fd given.
    ///
    /// A path is opened non-blocking (a FIFO given by mistake must not block the caller, a
    /// tokio worker in spawn mode) and must be a namespace file, of the expected kind when one
    /// is given (ioctl NS_GET_NSTYPE): anything else is refused here, before any process is
    /// made, as EINVAL with a hint.
    pub(crate) fn open(&self) -> io::Result<Arc<OwnedFd>> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = match &self.source {
            JoinSource::Path(p) => p,
            JoinSource::Fd(fd) | JoinSource::Pidfd(fd, _) => return Ok(fd.clone()),
        };
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(p)
            .map(OwnedFd::from)
            .map_err(|e| self.error(errno_of(&e).unwrap_or(libc::EIO)))?;
        match crate::sys::ns_get_nstype(fd.as_fd()) {
            Ok(t) if self.kind.is_none_or(|k| k.clone_flag() == t) => Ok(Arc::new(fd)),
            Ok(t) => {
                let found = Namespace::ALL
                    .into_iter()
                    .find(|k| k.clone_flag() == t)
                    .map_or_else(|| format!("{t:#x}"), |k| k.to_string());
                Err(self.refused(format!("it is a {found} namespace")))
            }
            Err(_) => Err(self.refused("it is not a namespace file".to_string())),
        }
    }

    /// The error for a path that is no namespace (of the expected kind).
    fn refused(&self, why: String) -> io::Error {
        let mut e = Error::os(Step::Join, libc::EINVAL)
            .with_namespace(self.kind)
            .with_hint(format!(
                "{why}: give a namespace file such as /proc/PID/ns/net or /run/netns/NAME"
            ));
        if let Some(p) = self.path() {
            e = e.with_path(p);
        }
        e.into()
    }
}

/// What namespaces to create or join, and how to set them up.
///
/// A builder in the style of [`std::process::Command`] (and of [`Sandbox`](crate::Sandbox)):
/// every method takes and returns `&mut Self`, so a value can be configured step by step,
/// in a loop or under a condition, without being moved. Nothing is checked until
/// [`enter`](crate::enter()) or a sandbox spawn uses it; every problem comes back from there
/// as an [`io::Error`].
///
/// ```
/// let mut ns = nsbox::Namespaces::new();
/// ns.user(true).pid(true).mount(true);
/// if std::env::var_os("OFFLINE").is_some() {
///     ns.net(true);
/// }
/// ```
#[derive(Clone, Debug)]
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
    pub(crate) protect_kernel: bool,
    pub(crate) filesystem: Option<crate::fs::Filesystem>,
    /// enter() with a pid namespace: where the waiter writes bubblewrap's JSON status.
    pub(crate) status_fd: Option<Arc<OwnedFd>>,
    pub(crate) info_fd: Option<Arc<OwnedFd>>,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces::new()
    }
}

impl From<&Namespaces> for Namespaces {
    fn from(ns: &Namespaces) -> Self {
        ns.clone()
    }
}

impl From<&mut Namespaces> for Namespaces {
    fn from(ns: &mut Namespaces) -> Self {
        ns.clone()
    }
}

/// `enter(&Namespaces::all().hostname("x"))`: a reference to a builder chain.
impl From<&&mut Namespaces> for Namespaces {
    fn from(ns: &&mut Namespaces) -> Self {
        (**ns).clone()
    }
}

impl Namespaces {
    /// No namespaces at all.
    pub fn new() -> Self {
        Namespaces {
            kinds: NamespaceSet::empty(),
            hostname: None,
            domainname: None,
            uid_inside: 0,
            gid_inside: 0,
            best_effort: false,
            joins: Vec::new(),
            propagation: Propagation::Slave,
            mount_proc: true,
            lock_mounts: true,
            protect_kernel: true,
            filesystem: None,
            status_fd: None,
            info_fd: None,
        }
    }

    /// user, mount, uts, ipc, net and pid.
    pub fn all() -> Self {
        let mut ns = Namespaces::new();
        ns.user(true)
            .mount(true)
            .uts(true)
            .ipc(true)
            .net(true)
            .pid(true);
        ns
    }

    fn set(&mut self, kind: Namespace, on: bool) -> &mut Self {
        if on {
            self.kinds.insert(kind);
        } else {
            self.kinds.remove(kind);
        }
        self
    }

    /// A new user namespace; the caller's uid and gid are mapped to the inside ids (0 by default).
    pub fn user(&mut self, on: bool) -> &mut Self {
        self.set(Namespace::User, on)
    }
    /// A new mount namespace with `/` made recursively slave (see [`propagation`](Self::propagation)).
    pub fn mount(&mut self, on: bool) -> &mut Self {
        self.set(Namespace::Mount, on)
    }
    /// A new UTS namespace.
    pub fn uts(&mut self, on: bool) -> &mut Self {
        self.set(Namespace::Uts, on)
    }
    /// A new IPC namespace.
    pub fn ipc(&mut self, on: bool) -> &mut Self {
        self.set(Namespace::Ipc, on)
    }
    /// A new network namespace holding only `lo`, which is brought up.
    pub fn net(&mut self, on: bool) -> &mut Self {
        self.set(Namespace::Net, on)
    }
    /// A new PID namespace. With a new mount namespace too, a fresh `/proc` is mounted.
    pub fn pid(&mut self, on: bool) -> &mut Self {
        self.set(Namespace::Pid, on)
    }
    /// A new cgroup namespace.
    pub fn cgroup(&mut self, on: bool) -> &mut Self {
        self.set(Namespace::Cgroup, on)
    }
    /// Set the hostname inside; implies a UTS namespace.
    pub fn hostname(&mut self, name: impl Into<OsString>) -> &mut Self {
        self.hostname = Some(name.into());
        self.set(Namespace::Uts, true)
    }
    /// Set the NIS domain name inside; implies a UTS namespace.
    pub fn domainname(&mut self, name: impl Into<OsString>) -> &mut Self {
        self.domainname = Some(name.into());
        self.set(Namespace::Uts, true)
    }
    /// The uid the caller becomes inside a new user namespace (default 0).
    pub fn map_user(&mut self, inside: u32) -> &mut Self {
        self.uid_inside = inside;
        self
    }
    /// The gid the caller becomes inside a new user namespace (default 0).
    pub fn map_group(&mut self, inside: u32) -> &mut Self {
        self.gid_inside = inside;
        self
    }
    /// Skip the kinds this kernel lacks (EINVAL from unshare) instead of failing; the report
    /// names them. Every other error still fails. (enter mode only: a sandbox's clone makes
    /// every namespace at once.)
    pub fn best_effort(&mut self, on: bool) -> &mut Self {
        self.best_effort = on;
        self
    }
    /// Propagation of `/` in a new mount namespace.
    pub fn propagation(&mut self, p: Propagation) -> &mut Self {
        self.propagation = p;
        self
    }
    /// Whether to mount a fresh `/proc` when both a pid and a mount namespace are new
    /// (default true). `/proc` is never remounted without a new mount namespace.
    pub fn mount_proc(&mut self, on: bool) -> &mut Self {
        self.mount_proc = on;
        self
    }
    /// Lock every mount after the fresh `/proc` is mounted (default true), so that root inside
    /// cannot unmount `/proc` and see the host's `/proc` beneath it. A sandbox's command that
    /// keeps no CAP_SYS_ADMIN (the default, see [`Sandbox::capabilities`](crate::Sandbox::capabilities))
    /// cannot unmount anything: its sandbox skips the lock and its cost. It costs a nested user
    /// namespace and a copy of the mount tree (about 0.2 to 0.4 ms per sandbox here): turn it
    /// off only for trusted commands. The command stays root over its UTS, network and IPC
    /// namespaces either way.
    pub fn lock_mounts(&mut self, on: bool) -> &mut Self {
        self.lock_mounts = on;
        self
    }
    /// Protect the kernel's files in a new mount namespace (default true): `/proc/sys`,
    /// `/proc/sysrq-trigger`, `/proc/irq`, `/proc/bus` and `/proc/fs` read-only;
    /// `/proc/kcore`, `/proc/kallsyms`, `/proc/keys`, `/proc/timer_list` and the like hidden
    /// (under `/dev/null` or an empty read-only tmpfs); `/sys` read-only, with the cgroup
    /// filesystems under it. As container runtimes do: a sandbox mapped to host root (a root
    /// caller) could otherwise change host-wide sysctls (`kernel.core_pattern` runs a program
    /// as real root at the next crash), write `/sys/power/state`, or move itself out of its
    /// cgroup and raise its limits. Applied after the fresh `/proc` and before the mount
    /// lock, which makes it impossible to undo; without the lock, a command that kept
    /// CAP_SYS_ADMIN could unmount it. Without a new mount namespace nothing is protected.
    pub fn protect_kernel(&mut self, on: bool) -> &mut Self {
        self.protect_kernel = on;
        self
    }
    /// The filesystem view of a new mount namespace (see [`Filesystem`](crate::Filesystem)).
    /// For [`enter`](crate::enter()) the default is the host's mounts as they are; a
    /// [`Sandbox`](crate::Sandbox) takes [`Sandbox::filesystem`](crate::Sandbox::filesystem)
    /// first, then this, then its own default (the host read-only, a fresh /tmp). In
    /// enter(), the fresh `/proc` of a new pid namespace is mounted by pid 1 after its fork:
    /// a `proc` mount in the view is refused there.
    pub fn filesystem(&mut self, fs: crate::fs::Filesystem) -> &mut Self {
        self.filesystem = Some(fs);
        self
    }
    /// [`enter`](crate::enter()) with a new pid namespace: the process that waits outside
    /// writes bubblewrap's JSON status to `fd` (its `--json-status-fd`): once the namespaces
    /// exist, `{ "child-pid": PID, "cgroup-namespace": INODE, ... }` with the host pid of pid 1
    /// and the inode of each namespace, and at the end `{ "exit-code": N }`, where N is the
    /// command's exit code or 128 plus its signal, with `"exit-signal": SIG` and
    /// `"core-dumped": true` when a signal killed it (bubblewrap says only 128+SIG). Each object
    /// is one line. The fd is made close-on-exec; the sandbox never holds it.
    pub fn json_status_fd(&mut self, fd: OwnedFd) -> &mut Self {
        let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC);
        self.status_fd = Some(Arc::new(fd));
        self
    }
    /// [`enter`](crate::enter()) with a new pid namespace: write the first object of
    /// [`json_status_fd`](Self::json_status_fd) to `fd` and close it (bubblewrap's
    /// `--info-fd`).
    pub fn info_fd(&mut self, fd: OwnedFd) -> &mut Self {
        let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC);
        self.info_fd = Some(Arc::new(fd));
        self
    }
    /// Join the namespace at `path` (of `kind`, or of any kind with `None`) before new ones are made.
    pub fn join_path(&mut self, kind: Option<Namespace>, path: impl Into<PathBuf>) -> &mut Self {
        self.joins.push(Join {
            kind,
            source: JoinSource::Path(path.into()),
        });
        self
    }
    /// Join the namespace behind an open fd.
    pub fn join_fd(&mut self, kind: Option<Namespace>, fd: OwnedFd) -> &mut Self {
        self.joins.push(Join {
            kind,
            source: JoinSource::Fd(Arc::new(fd)),
        });
        self
    }
    /// Join several namespaces of the process behind a pidfd at once.
    pub fn join_pidfd(&mut self, pidfd: OwnedFd, kinds: NamespaceSet) -> &mut Self {
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
            (Step::Sethostname, &self.hostname),
            (Step::Setdomainname, &self.domainname),
        ] {
            if let Some(name) = name {
                check_uts_name(step, name)?;
            }
        }
        Ok(())
    }

    /// A fresh `/proc` is mounted when a pid and a mount namespace are both new.
    pub(crate) fn wants_proc(&self) -> bool {
        self.mount_proc
            && self.kinds.contains(Namespace::Mount)
            && self.kinds.contains(Namespace::Pid)
    }

    /// The uid_map and gid_map lines mapping the caller's own ids (read now) to the inside ids.
    pub(crate) fn single_id_maps(&self) -> (Vec<u8>, Vec<u8>) {
        let (uid, gid) = (rustix::process::getuid(), rustix::process::getgid());
        (
            format!("{} {} 1\n", self.uid_inside, uid.as_raw()).into_bytes(),
            format!("{} {} 1\n", self.gid_inside, gid.as_raw()).into_bytes(),
        )
    }
}

/// The kernel's limit for a hostname or domain name (`__NEW_UTS_LEN`).
pub const UTS_NAME_MAX: usize = 64;

fn check_uts_name(step: Step, name: &OsStr) -> io::Result<()> {
    let bytes = name.as_bytes();
    if bytes.contains(&0) {
        return Err(Error::invalid(step, format!("{name:?} contains a NUL byte")).into());
    }
    if bytes.len() > UTS_NAME_MAX {
        return Err(Error::invalid(
            step,
            format!(
                "{name:?} is {} bytes long; the kernel allows at most {UTS_NAME_MAX}",
                bytes.len()
            ),
        )
        .into());
    }
    Ok(())
}

/// The error for creating a namespace of `kind` failing with `errno`.
pub(crate) fn unshare_error(kind: Namespace, errno: i32) -> io::Error {
    Error::os(Step::Unshare, errno)
        .with_namespace(Some(kind))
        .into()
}

/// unshare(2) for one kind, as a step.
pub(crate) fn unshare_one(kind: Namespace) -> Result<(), i32> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_truncate(
        kind.clone_flag() as i32,
    ))
    .map_err(|e| e as i32)
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
        unshare_one(kind).map_err(|e| unshare_error(kind, e))?;
    }
    Ok(())
}

fn join_now(join: &Join, fd: BorrowedFd<'_>) -> io::Result<()> {
    crate::steps::join::setns(fd, join.nstype(), 0).map_err(|e: StepError| join.error(e.errno))
}

/// Join the namespace behind `fd` (setns(2)). `kind` checks the namespace's kind; `None`
/// accepts any.
pub fn setns_fd(fd: BorrowedFd<'_>, kind: Option<Namespace>) -> io::Result<()> {
    let join = Join {
        kind,
        source: JoinSource::Path(PathBuf::new()),
    };
    crate::steps::join::setns(fd, join.nstype(), 0)
        .map_err(|e| Error::os(Step::Join, e.errno).with_namespace(kind).into())
}

/// Open the namespace file at `path` (`/proc/PID/ns/net`, `/run/netns/NAME`) and join it.
pub fn setns_path(path: &Path, kind: Option<Namespace>) -> io::Result<()> {
    let join = Join {
        kind,
        source: JoinSource::Path(path.to_path_buf()),
    };
    let fd = join.open()?;
    join_now(&join, fd.as_fd())
}

/// Join the `kinds` namespaces of the process behind `pidfd` at once (setns(2) with a pidfd,
/// Linux 5.8).
pub fn setns_pidfd(pidfd: BorrowedFd<'_>, kinds: NamespaceSet) -> io::Result<()> {
    crate::steps::join::setns(pidfd, kinds.clone_flags(), 0)
        .map_err(|e| Error::os(Step::Join, e.errno).with_path("<pidfd>").into())
}

/// Join every namespace in `joins`, in order.
pub(crate) fn join_all(joins: &[Join]) -> io::Result<()> {
    for j in joins {
        let fd = j.open()?;
        join_now(j, fd.as_fd())?;
    }
    Ok(())
}

/// The number of threads of the calling process, from `/proc/self/status`.
pub fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Error::from_std(Step::Threads, &e).with_path("/proc/self/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            Error::failed(Step::Threads, io::ErrorKind::Other, "no Threads: line")
                .with_path("/proc/self/status")
                .into()
        })
}

/// Refuse to go on unless the process has one thread: `what` (enter, start the launcher)
/// forks or unshares, which needs that.
pub(crate) fn require_single_thread(what: &str) -> io::Result<()> {
    let threads = thread_count()?;
    if threads > 1 {
        return Err(Error::failed(
            Step::Threads,
            io::ErrorKind::Other,
            format!("{what} needs a single-threaded process, and this one has {threads} threads"),
        )
        .with_hint(Step::Threads.hint(libc::EINVAL, None).unwrap_or_default())
        .into());
    }
    Ok(())
}

/// fork(2) for a process that has one thread, checked first: then the child may run any
/// code. `what` names the caller for the error.
pub(crate) fn fork_single_threaded(
    what: &str,
    context: &'static str,
) -> io::Result<nix::unistd::ForkResult> {
    require_single_thread(what)?;
    // SAFETY: the process has a single thread (checked just above; nsbox starts none in
    // between), so the child may run any code.
    unsafe { nix::unistd::fork() }
        .map_err(|e| Error::os(Step::Fork, e as i32).with_context(context).into())
}

/// fork(2) for a caller that checked, with [`require_single_thread`], that the process has
/// a single thread, and started none since: enter(), whose filesystem view may have left no
/// /proc to check again.
pub(crate) fn fork_checked(context: &'static str) -> io::Result<nix::unistd::ForkResult> {
    // SAFETY: the caller checked that the process has a single thread and started none.
    unsafe { nix::unistd::fork() }
        .map_err(|e| Error::os(Step::Fork, e as i32).with_context(context).into())
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
}

//! The [`Spec`]: what a sandbox is made of.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::ns::kind::{Namespace, NamespaceSet, Propagation};

/// What a sandbox is made of, in owned, sendable form: built by the orchestrator, turned into
/// a [`Plan`](super::Plan) by whoever clones (the orchestrator itself, or the launcher after receiving it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spec {
    /// The namespaces the clone creates.
    pub namespaces: NamespaceSet,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Paths to try with execve, in order (a PATH search prepared beforehand).
    pub exec_paths: Vec<CString>,
    pub cwd: Option<CString>,
    /// `cwd` is the orchestrator's own working directory, taken by path because a view may
    /// hide it: where the view has no such directory the command starts in `/` (as with
    /// bubblewrap) rather than fail.
    pub cwd_soft: bool,
    pub hostname: Option<Vec<u8>>,
    pub domainname: Option<Vec<u8>>,
    /// Lines for uid_map and gid_map; `None`: no user namespace, or a hook writes them.
    pub id_maps: Option<(Vec<u8>, Vec<u8>)>,
    /// The propagation of `/`; `None` without a mount namespace.
    pub propagation: Option<Propagation>,
    pub mount_proc: bool,
    /// Lock the mounts after mounting `/proc`.
    pub lock_mounts: bool,
    /// setns(2) nstype of each namespace to join, in order.
    pub join_types: Vec<u32>,
    /// Target fd numbers of the command's fds (stdio first, then passed fds).
    pub targets: Vec<RawFd>,
    pub wait_for_go: bool,
    pub die_with_parent: bool,
    pub wait_all: bool,
    pub no_new_privs: bool,
    /// The command starts a new session (setsid), without a controlling terminal; false:
    /// only a new process group in the caller's session.
    pub new_session: bool,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    /// The signals the command starts ignoring (bit n-1 for signal n); not forwarded to it.
    pub ignored_signals: u64,
    /// The command's signal mask at its exec (bit n-1 for signal n).
    pub blocked_signals: u64,
    /// When the command has ended: what is left gets SIGTERM, then SIGKILL this much later
    /// (zero: SIGKILL at once).
    pub exit_grace: Duration,
    /// What the sandbox may not do.
    pub restrict: Restrictions,
    /// The filesystem view; `None`: the host's mounts as they are.
    pub fs: Option<crate::fs::FsSpec>,
    /// The command's rlimits (resource, soft, hard), set just before its exec.
    pub rlimits: Vec<(crate::limits::Resource, u64, u64)>,
    /// A cgroup v2 leaf: its directory and cgroup.procs come after the joins' fds.
    pub cgroup: bool,
}

/// What a sandbox may not do, beyond its namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Restrictions {
    /// In a new mount namespace: `/proc/sys` and the like read-only, `/proc/kcore` and the
    /// like hidden, `/sys` read-only.
    pub protect_kernel: bool,
    /// The mask of capabilities the command keeps; `None`: all.
    pub keep_caps: Option<u64>,
    /// Install nsbox's default syscall filter.
    pub default_filter: bool,
    /// The default filter lets the command make new user namespaces.
    pub user_namespaces: bool,
    /// The caller's own seccomp programs (checked [`SeccompProgram`](crate::SeccompProgram)
    /// bytes), installed after the default one.
    pub filters: Vec<Vec<u8>>,
}

impl Default for Restrictions {
    /// The safe defaults.
    fn default() -> Self {
        Restrictions {
            protect_kernel: true,
            keep_caps: Some(0),
            default_filter: true,
            user_namespaces: false,
            filters: Vec::new(),
        }
    }
}

/// `d` in whole milliseconds, saturating at u64::MAX: the one conversion of the spec's
/// durations, used by the wire form and by the init.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Spec {
    /// The timeout in milliseconds.
    pub(crate) fn timeout_ms(&self) -> Option<u64> {
        self.timeout.map(millis)
    }

    /// Whether the init is pid 1 of a new pid namespace.
    pub(crate) fn pidns(&self) -> bool {
        self.namespaces.contains(Namespace::Pid)
    }

    /// Whether a new network namespace needs its loopback brought up.
    pub(crate) fn net(&self) -> bool {
        self.namespaces.contains(Namespace::Net)
    }
}

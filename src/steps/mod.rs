//! Every setup step, implemented once, and the one table of what each step is called and
//! what to do when it fails.
//!
//! Both modes run the same functions: [`enter`](crate::enter()) in its own process, the
//! sandbox's init right after the clone. So each step here is async-signal-safe: it works on
//! buffers prepared beforehand (C strings, map lines), makes its system calls through rustix
//! or `crate::sys`, allocates nothing, and returns a [`StepError`] (`Copy`, no heap) that
//! either mode turns into an [`Error`](crate::Error) through [`Step`]'s table:
//!
//! - [`ids`]: setgroups deny and the uid/gid maps;
//! - [`mounts`]: root propagation, the fresh `/proc`, the mount lock;
//! - [`uts`]: hostname and domain name;
//! - [`net`]: loopback up;
//! - [`join`]: setns into a namespace given as an fd;
//! - [`process`]: the init's own process settings (subreaper, no_new_privs, dumpable);
//! - [`restrict`]: what the command gives up before its exec (seccomp filters, capabilities);
//! - [`rlimits`]: the command's resource limits, set before its exec;
//! - [`cgroup`]: the init's join of its cgroup leaf where the clone could not place it.
//!
//! Later steps (mounts of a filesystem view, cgroups, rlimits, seccomp, capabilities) go
//! here too, with their rows in the table.

pub mod cgroup;
pub(crate) mod fs;
pub mod ids;
pub mod join;
pub mod mounts;
pub mod net;
pub mod process;
pub mod restrict;
pub mod rlimits;
pub mod uts;

use std::borrow::Cow;

use crate::ns::kind::Namespace;

/// Declares [`Step`] and [`Step::ALL`] from one list, so no step can be missing from the
/// decoder of the child's reports.
macro_rules! steps {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A step of sandbox setup or process creation: what failed, in an
        /// [`Error`](crate::Error). Match on it to handle one failure specially.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Step {
            $($(#[$doc])* $name,)*
        }

        impl Step {
            /// Every step, in declaration order.
            pub const ALL: &'static [Step] = &[$(Step::$name),*];
        }
    };
}

steps! {
    /// Checking the caller's input (a bad argument, environment variable, fd number...).
    Input,
    /// Creating a namespace with unshare(2); [`Error::namespace`](crate::Error::namespace)
    /// says which kind.
    Unshare,
    /// Creating the sandbox's init with clone3(2) and its namespaces.
    Clone,
    /// Joining a namespace with setns(2).
    Join,
    /// Writing `deny` to `/proc/self/setgroups`.
    Setgroups,
    /// Writing `/proc/self/uid_map`.
    UidMap,
    /// Writing `/proc/self/gid_map`.
    GidMap,
    /// Making `/` recursively slave or private.
    RootPropagation,
    /// Mounting a fresh `/proc`.
    MountProc,
    /// Building the filesystem view (a [`Filesystem`](crate::Filesystem)): a mount, a
    /// source, the base or the pivot.
    Filesystem,
    /// Locking every mount (a nested user and mount namespace).
    LockMounts,
    /// Making the kernel's files read-only (`/proc/sys` and the like, `/sys`) and hiding
    /// others (`/proc/kcore` and the like).
    ProtectKernel,
    /// sethostname(2).
    Sethostname,
    /// setdomainname(2).
    Setdomainname,
    /// Bringing the loopback interface up.
    Loopback,
    /// Becoming a child subreaper (no pid namespace).
    Subreaper,
    /// Opening the init's list of children (no pid namespace), before the command runs.
    Children,
    /// Setting `PR_SET_NO_NEW_PRIVS` for the command.
    NoNewPrivs,
    /// Creating the init's signalfd.
    Signalfd,
    /// Creating a pipe.
    Pipe,
    /// Forking the command (or, in enter mode, into the pid namespace).
    Fork,
    /// Moving the command's file descriptors into place.
    Fds,
    /// Waiting for the parent's setup hook.
    WaitGo,
    /// The parent's setup hook (newuidmap, newgidmap, a hook of the caller's).
    Hook,
    /// Changing to the command's working directory.
    Chdir,
    /// Starting a new session (setsid) for the command.
    Setsid,
    /// Installing a seccomp filter for the command.
    Seccomp,
    /// Dropping the command's capabilities.
    Capabilities,
    /// Executing the command.
    Exec,
    /// Counting the process's threads (enter and the launcher need one).
    Threads,
    /// Starting or asking the launcher.
    Launcher,
    /// The sandbox's init died during setup, before it reported a step.
    Spawn,
    /// Waiting for the sandbox.
    Wait,
    /// Sending a signal to the sandbox.
    Signal,
    /// Becoming the process that waits outside (enter mode: signalfd, terminal).
    Waiter,
    /// Setting one of the command's rlimits ([`Sandbox::rlimit`](crate::Sandbox::rlimit)).
    Rlimit,
    /// Making or setting up the sandbox's cgroup v2 leaf
    /// ([`Sandbox::cgroup`](crate::Sandbox::cgroup)), in the orchestrator.
    Cgroup,
    /// The init joining its cgroup leaf (writing `cgroup.procs`) where the clone could not
    /// place it there.
    CgroupJoin,
}

impl Step {
    /// The step's wire code (1-based), for the init's reports.
    pub(crate) fn code(self) -> u32 {
        self as u32 + 1
    }

    /// The step of a wire code.
    pub(crate) fn from_code(code: u32) -> Option<Step> {
        Step::ALL.get((code as usize).checked_sub(1)?).copied()
    }

    /// What the step is, as the first words of an error message. `ns` names the namespace
    /// kind of [`Unshare`](Step::Unshare) and [`Join`](Step::Join).
    pub(crate) fn text(self, ns: Option<Namespace>) -> Cow<'static, str> {
        use Step::*;
        Cow::Borrowed(match self {
            Input => "invalid input",
            Unshare => return Cow::Owned(format!("unshare {} namespace", kind_name(ns))),
            Clone => "clone3",
            Join => {
                return match ns {
                    Some(k) => Cow::Owned(format!("join {k} namespace")),
                    None => Cow::Borrowed("join namespace"),
                };
            }
            Setgroups => "write setgroups",
            UidMap => "write uid_map",
            GidMap => "write gid_map",
            RootPropagation => "make / recursively slave or private",
            MountProc => "mount proc on",
            LockMounts => "lock the mounts (nested user and mount namespace)",
            Filesystem => "filesystem view",
            ProtectKernel => "protect the kernel's files (/proc/sys read-only, /sys read-only)",
            Sethostname => "sethostname",
            Setdomainname => "setdomainname",
            Loopback => "bring loopback up (SIOCSIFFLAGS lo)",
            Subreaper => "prctl PR_SET_CHILD_SUBREAPER",
            Children => "open",
            NoNewPrivs => "prctl PR_SET_NO_NEW_PRIVS",
            Signalfd => "signalfd",
            Pipe => "pipe",
            Fork => "fork",
            Fds => "arrange file descriptors",
            WaitGo => "wait for the setup hook",
            Hook => "setup hook",
            Chdir => "chdir",
            Setsid => "start a new session",
            Seccomp => "install the syscall filter",
            Capabilities => "drop capabilities",
            Exec => "exec",
            Threads => "check for a single thread",
            Launcher => "launcher",
            Spawn => "spawn",
            Wait => "wait",
            Signal => "signal the sandbox",
            Waiter => "wait outside the pid namespace",
            Rlimit => "setrlimit",
            Cgroup => "cgroup",
            CgroupJoin => "join the sandbox's cgroup (write cgroup.procs)",
        })
    }

    /// The path a step always works on, when it has one.
    pub(crate) fn fixed_path(self) -> Option<&'static str> {
        Some(match self {
            Step::Setgroups => "/proc/self/setgroups",
            Step::UidMap => "/proc/self/uid_map",
            Step::GidMap => "/proc/self/gid_map",
            Step::MountProc => "/proc",
            Step::Children => "/proc/thread-self/children",
            _ => return None,
        })
    }

    /// What to do about `errno` in this step, when there is something to say.
    pub(crate) fn hint(self, errno: i32, ns: Option<Namespace>) -> Option<Cow<'static, str>> {
        use Step::*;
        let s: &'static str = match (self, errno) {
            (Unshare, e) => return unshare_hint(ns.unwrap_or(Namespace::User), e),
            // clone_error picks the culprit kind itself.
            (Clone, libc::EAGAIN) => {
                "the process limit was reached (RLIMIT_NPROC, or the pids controller of the cgroup)"
            }
            (Join, libc::EINVAL) => {
                "the file is not a namespace, or not of the expected kind, or the caller cannot \
                 join it (a multi-threaded process cannot join a user namespace)"
            }
            (Join, libc::EPERM) => {
                "joining needs CAP_SYS_ADMIN in the namespace's owning user namespace"
            }
            (Setgroups | UidMap | GidMap, libc::EPERM) => {
                "an unprivileged process may map only its own id, once, after setgroups is denied"
            }
            (MountProc, libc::EPERM) => {
                "the host's /proc has locked submounts or the pid namespace is not owned by \
                 the current user namespace"
            }
            (LockMounts, libc::ENOSPC | libc::EUSERS) => {
                "the limit of user or mount namespaces was reached: see \
                 /proc/sys/user/max_user_namespaces and max_mnt_namespaces"
            }
            (ProtectKernel | Filesystem, libc::ENOSYS) => {
                "a recursive read-only view needs mount_setattr(2), Linux 5.12 or later: use an \
                 empty root (Filesystem::empty) with read-only binds, or Filesystem::host()"
            }
            (ProtectKernel, libc::EPERM) => {
                "turn the protection off with Namespaces::protect_kernel(false) (nsrun \
                 --no-protect-kernel) if this kernel or a security module refuses the mounts"
            }
            (Seccomp, libc::EINVAL) => {
                "the kernel refused the filter program (malformed BPF, or seccomp is not \
                 built in)"
            }
            (Capabilities, libc::EPERM) => {
                "a kept capability is not in the permitted set, or securebits forbid the \
                 ambient set"
            }
            (Fds, libc::EBADF) => {
                "the fd limit (RLIMIT_NOFILE) was hit: every fd number the sandbox needs must be \
                 below its soft limit, the command's (Sandbox::pass_fd targets) and the init's \
                 own, which go just above the highest fd the request uses; raise the soft limit \
                 (setrlimit, ulimit -n) or use lower fd numbers"
            }
            (Pipe | Fds | Launcher, libc::EMFILE) => {
                "the fd limit (RLIMIT_NOFILE) was hit: this process has as many fds open as its \
                 soft limit allows; raise it (setrlimit, ulimit -n) or close fds"
            }
            (Pipe | Fds | Launcher, libc::ENFILE) => {
                "the system-wide limit of open files (fs.file-max) was hit"
            }
            (Rlimit, libc::EPERM) => {
                "raising a hard limit above the caller's needs CAP_SYS_RESOURCE in the initial \
                 user namespace (host root without a new user namespace), and RLIMIT_NOFILE can \
                 never exceed fs.nr_open (/proc/sys/fs/nr_open): lower the hard limit"
            }
            (CgroupJoin, libc::EACCES | libc::EPERM | libc::ENOENT) => {
                "moving a process needs write access to cgroup.procs of the common ancestor of \
                 its old and new cgroup: the orchestrator's cgroup and the parent must be in the \
                 same delegated subtree (or use a kernel with clone3's CLONE_INTO_CGROUP, 5.7)"
            }
            (CgroupJoin, libc::EBUSY) => {
                "the leaf has controllers enabled for children of its own, or is not a leaf"
            }
            (Cgroup, libc::EACCES | libc::EPERM) => {
                "the parent cgroup is not delegated to this user: name one that is \
                 (Cgroup::under), e.g. made by systemd-run --user --scope -p Delegate=yes"
            }
            (Rlimit, libc::EINVAL) => "the soft limit is above the hard limit",
            (Exec, libc::ENOMEM | libc::E2BIG) => {
                "the command's RLIMIT_AS or RLIMIT_STACK (Sandbox::rlimit) may be too small for \
                 the program to be loaded"
            }
            (Exec, libc::ENOENT) => "no such program at that path or on PATH",
            (Exec, libc::EACCES) => {
                "the program is not executable (or a directory on the way is not searchable)"
            }
            (Threads, _) => {
                "call it first thing in main, before starting a runtime or any thread; from a \
                 running runtime use Sandbox::spawn"
            }
            (Launcher, libc::EPIPE | libc::ECONNRESET | libc::EPROTO) => {
                "the launcher process is gone (killed?); sandboxes cannot be created through it"
            }
            _ => return None,
        };
        Some(Cow::Borrowed(s))
    }
}

fn kind_name(ns: Option<Namespace>) -> String {
    ns.map_or_else(|| "a".to_string(), |k| k.to_string())
}

/// The hint for a failure to create a namespace of `kind`.
fn unshare_hint(kind: Namespace, errno: i32) -> Option<Cow<'static, str>> {
    Some(match errno {
        libc::EPERM if kind == Namespace::User => Cow::Borrowed(
            "user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone, \
             user.max_user_namespaces, or an AppArmor/SELinux policy such as \
             kernel.apparmor_restrict_unprivileged_userns)",
        ),
        libc::EPERM => Cow::Owned(format!(
            "creating a {kind} namespace needs CAP_SYS_ADMIN: run as root, or add a user \
             namespace (Namespaces::user / --user)"
        )),
        libc::ENOSPC | libc::EUSERS => Cow::Owned(format!(
            "the limit of {kind} namespaces was reached: see {}",
            kind.limit_file()
        )),
        libc::EINVAL if kind == Namespace::User => Cow::Borrowed(
            "the process is multi-threaded (unshare(CLONE_NEWUSER) needs a single thread), or \
             the kernel lacks user namespaces",
        ),
        libc::EINVAL => Cow::Owned(format!(
            "this kernel may lack {kind} namespaces (use best_effort to skip them)"
        )),
        _ => return None,
    })
}

/// A failed step, as the async-signal-safe code reports it: the step, the errno, and a
/// step-specific detail (the index of the namespace to join). `Copy`, no heap: the init
/// sends it over its report pipe, and enter() turns it into an [`Error`](crate::Error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepError {
    /// The step.
    pub step: Step,
    /// The errno.
    pub errno: i32,
    /// Which one, for steps done several times (the index of a namespace to join).
    pub detail: u32,
}

impl StepError {
    /// `errno` in `step`.
    pub(crate) const fn new(step: Step, errno: i32) -> StepError {
        StepError {
            step,
            errno,
            detail: 0,
        }
    }
}

/// Turn rustix's errno into a step error.
pub(crate) fn fail(step: Step) -> impl Fn(rustix::io::Errno) -> StepError {
    move |e| StepError::new(step, e.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_decodes_from_its_code() {
        for &step in Step::ALL {
            assert_eq!(Step::from_code(step.code()), Some(step));
        }
        assert_eq!(Step::from_code(0), None);
        assert_eq!(Step::from_code(Step::ALL.len() as u32 + 1), None);
    }

    #[test]
    fn every_step_has_a_text() {
        for &step in Step::ALL {
            assert!(!step.text(Some(Namespace::Net)).is_empty(), "{step:?}");
        }
    }

    #[test]
    fn a_user_namespace_eperm_hint_mentions_the_sysctl() {
        let h = Step::Unshare
            .hint(libc::EPERM, Some(Namespace::User))
            .unwrap();
        assert!(h.contains("max_user_namespaces"));
        let h = Step::Unshare
            .hint(libc::ENOSPC, Some(Namespace::Net))
            .unwrap();
        assert!(h.contains("max_net_namespaces"));
    }
}

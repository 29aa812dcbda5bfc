//! Enter mode: the calling process moves itself into new namespaces at start-up, and a
//! [`Supervisor`](crate::Supervisor) runs its main command.
//!
//! - [`enter()`]: join, unshare and set up, in this process (the same setup steps as a
//!   sandbox's init runs, from [`crate::steps`]); with a pid namespace, fork;
//! - `waiter`: the process that stays outside the pid namespace;
//! - [`supervisor`]: the async reaper and signal forwarder of the inside;
//! - `tty`: the terminal's foreground hand-over.

mod restrict;
pub(crate) mod supervisor;
pub(crate) mod tty;
mod waiter;

use std::io;

use nix::sys::signal::SigmaskHow;
use nix::unistd::{ForkResult, Pid, setpgid};

use crate::error::Error;
use crate::ns::{Namespace, NamespaceSet, Namespaces, join_all, unshare_error, unshare_one};
use crate::steps::{self, Step};

/// What [`enter()`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entered {
    created: NamespaceSet,
    skipped: NamespaceSet,
    joined: usize,
    pid1: bool,
    proc_mounted: bool,
}

impl Entered {
    /// The namespaces that were created.
    pub fn created(&self) -> NamespaceSet {
        self.created
    }
    /// The namespaces skipped in best-effort mode because the kernel lacks them.
    pub fn skipped(&self) -> NamespaceSet {
        self.skipped
    }
    /// How many namespaces were joined.
    pub fn joined(&self) -> usize {
        self.joined
    }
    /// Whether the caller is now pid 1 of a new pid namespace.
    pub fn is_pid1(&self) -> bool {
        self.pid1
    }
    /// Whether a fresh `/proc` was mounted.
    pub fn proc_mounted(&self) -> bool {
        self.proc_mounted
    }

    /// unshare(2) `kind`: true when it was created, false when skipped (best effort, EINVAL).
    fn unshare(&mut self, ns: &Namespaces, kind: Namespace) -> io::Result<bool> {
        if !ns.kinds.contains(kind) {
            return Ok(false);
        }
        match unshare_one(kind) {
            Ok(()) => {
                self.created.insert(kind);
                Ok(true)
            }
            Err(libc::EINVAL) if ns.best_effort => {
                self.skipped.insert(kind);
                Ok(false)
            }
            Err(e) => Err(unshare_error(kind, e)),
        }
    }
}

/// Move the calling process into the namespaces `ns` (a [`Namespaces`] or a reference to one)
/// describes: join the namespaces to join,
/// then create user, mount, uts, ipc, net, cgroup and pid namespaces in that order, mapping
/// ids, making `/` slave, setting the hostname and domain name, bringing loopback up and,
/// with a pid namespace, forking as described below. Each of these
/// steps is the same code a sandbox's init runs.
///
/// Call it first thing in `main`, before any thread (so before a tokio runtime) exists.
///
/// ```no_run
/// use nsbox::{Namespaces, Supervisor, enter, exit_as_status};
/// fn main() -> std::io::Result<()> {
///     // First thing in main: no thread may exist yet.
///     let entered = enter(Namespaces::all().hostname("demo"))?;
///     assert!(entered.is_pid1());
///     let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
///     let status = rt.block_on(Supervisor::new().run(std::process::Command::new("sh")))?;
///     exit_as_status(status)
/// }
/// ```
///
/// # The process tree
///
/// Without a pid namespace, `enter` changes the calling process's namespaces and returns.
/// With one, it forks once: the original process stays outside as the *waiter* (it never
/// returns from `enter`), and the child returns as pid 1 of the new namespace.
///
/// ```text
/// shell ── nsrun (waiter, outside) ── nsrun (pid 1, returns from enter) ── PROGRAM
/// ```
///
/// The waiter puts the child in its own process group (both sides call setpgid, so the group
/// exists whichever runs first), hands it the terminal's foreground if the waiter's group
/// holds it, and only then lets the child go on (a byte on a pipe), so the inside never
/// touches the terminal before it is its own. It forwards the [`FORWARDED`](crate::FORWARDED)
/// signals (but those the caller left ignored, which stay ignored) to pid 1, hands the
/// terminal inside again when the shell continues it in the foreground (`fg`, not `bg`),
/// gives the terminal back when the child ends, and exits exactly as the
/// inside did: the child writes its main command's raw wait status on a pipe before it exits
/// ([`exit_as_status`](crate::exit_as_status) does that), since pid 1 cannot die by its own
/// signal.
///
/// The forwarded signals are blocked before the fork and stay blocked in the child when
/// `enter` returns, so a signal that arrives before the program installs its handlers stays
/// pending instead of being dropped (pid 1 ignores signals it has no handler for).
/// [`Supervisor::run`](crate::Supervisor::run) installs the handlers, then unblocks them.
/// If the waiter is killed, the kernel kills pid 1 (PR_SET_PDEATHSIG; the waiter is
/// single-threaded, so the parent thread is the parent process) and with it the namespace.
///
/// # Errors
///
/// Strict by default: any namespace that cannot be made is an error naming the kind, the
/// errno and a hint. With [`Namespaces::best_effort`], kinds the kernel lacks (EINVAL) are
/// skipped and listed in [`Entered::skipped`]. A process with more than one thread is refused
/// up front (unshare(CLONE_NEWUSER) would fail with EINVAL, and a new pid namespace would
/// break later thread creation). On error nothing is left running; namespaces already
/// entered by this process stay entered (they cannot be left).
pub fn enter(ns: impl Into<Namespaces>) -> io::Result<Entered> {
    // What the caller gave this process, for the main command (see SignalSet::inherited_*).
    crate::signals::record_inherited();
    let ns = &ns.into();
    ns.validate()?;
    let mut out = Entered {
        created: NamespaceSet::empty(),
        skipped: NamespaceSet::empty(),
        joined: 0,
        pid1: false,
        proc_mounted: false,
    };
    if ns.kinds.is_empty() && ns.joins.is_empty() {
        return Ok(out);
    }
    crate::ns::require_single_thread("enter")?;
    join_all(&ns.joins)?;
    out.joined = ns.joins.len();
    // Read before the unshare: inside, the caller's ids are not mapped yet.
    let (uid_map, gid_map) = ns.single_id_maps();
    if out.unshare(ns, Namespace::User)? {
        steps::ids::map_ids(&uid_map, &gid_map)?;
    }
    // The kernel's files are protected after the fresh /proc, when pid 1 mounts one.
    let mut protect = false;
    let proc_later = ns.mount_proc && ns.kinds.contains(Namespace::Pid);
    let view = enter_view(ns, proc_later)?;
    let mount = out.unshare(ns, Namespace::Mount)?;
    if mount {
        steps::mounts::root_propagation(ns.propagation)?;
        protect = ns.protect_kernel;
    }
    if out.unshare(ns, Namespace::Uts)? {
        if let Some(h) = &ns.hostname {
            steps::uts::sethostname(std::os::unix::ffi::OsStrExt::as_bytes(h.as_os_str()))?;
        }
        if let Some(d) = &ns.domainname {
            steps::uts::setdomainname(std::os::unix::ffi::OsStrExt::as_bytes(d.as_os_str()))?;
        }
    }
    out.unshare(ns, Namespace::Ipc)?;
    if out.unshare(ns, Namespace::Net)? {
        steps::net::loopback_up()?;
    }
    out.unshare(ns, Namespace::Cgroup)?;
    // The view after the other namespaces (an mqueue mount needs the new IPC namespace).
    if mount {
        if let Some((fs, slots)) = &view {
            steps::fs::build(fs, slots).map_err(|e| fs.error(e))?;
            // With a fresh /proc to come, pid 1 pivots after mounting it: the kernel mounts a
            // procfs in a user namespace only while another one is fully visible, which the
            // host's stops being once the old root is detached.
            if fs.base == crate::fs::Base::Empty && !proc_later {
                if protect {
                    steps::mounts::protect_kernel(Some(fs))?;
                    protect = false;
                }
                steps::fs::pivot(fs)?;
            }
        }
        if protect && !proc_later {
            steps::mounts::protect_kernel(None)?;
            protect = false;
        }
    }
    if out.unshare(ns, Namespace::Pid)? {
        out.pid1 = true;
        let mount_proc = ns.mount_proc && out.created.contains(Namespace::Mount);
        let empty = view
            .as_ref()
            .map(|(fs, _)| fs)
            .filter(|fs| fs.base == crate::fs::Base::Empty && mount);
        let report = waiter::Report {
            info: ns.info_fd.clone(),
            status: ns.status_fd.clone(),
            created: out.created,
        };
        fork_pid1(mount_proc, ns.lock_mounts, protect, empty, report)?;
        out.proc_mounted = mount_proc;
    } else if protect {
        // The pid namespace was skipped (best effort): no fresh /proc will come.
        steps::mounts::protect_kernel(None)?;
    }
    Ok(out)
}

/// The prepared view of `ns` for enter(), with the slots its sources go into; `None` for the
/// host's mounts as they are.
#[allow(clippy::type_complexity)]
fn enter_view(
    ns: &Namespaces,
    proc_later: bool,
) -> io::Result<Option<(crate::fs::FsSpec, Vec<std::cell::Cell<i32>>)>> {
    let Some(fs) = &ns.filesystem else {
        return Ok(None);
    };
    if !ns.kinds.contains(Namespace::Mount) {
        if fs.base == crate::fs::Base::Host && fs.ops.is_empty() {
            return Ok(None);
        }
        return Err(Error::invalid(
            Step::Filesystem,
            "a filesystem view needs a new mount namespace (Namespaces::mount)",
        )
        .into());
    }
    let mut fs = fs.clone();
    if fs.ops.iter().any(|o| matches!(o, crate::fs::Op::Proc(_))) {
        return Err(Error::invalid(
            Step::Filesystem,
            "enter() mounts the fresh /proc itself, in pid 1 after its fork: drop the view's \
             proc mount (Namespaces::mount_proc decides)",
        )
        .into());
    }
    if fs.base == crate::fs::Base::Empty && proc_later {
        fs.dir("/proc", 0o555);
    }
    let spec = fs.prepare()?;
    let slots = (0..spec.sources.len())
        .map(|_| std::cell::Cell::new(-1))
        .collect();
    Ok(Some((spec, slots)))
}

/// Fork into the new pid namespace. Returns only in the child (pid 1); the parent becomes the
/// waiter and exits as the child did.
/// `empty`: an empty root built but not yet made the root, which pid 1 pivots into after
/// mounting the fresh /proc in it.
fn fork_pid1(
    mount_proc: bool,
    lock_mounts: bool,
    protect: bool,
    empty: Option<&crate::fs::FsSpec>,
    report: waiter::Report,
) -> io::Result<()> {
    let pipe = |what: &'static str| {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
            io::Error::from(
                Error::os(Step::Pipe, e.raw_os_error()).with_context(format!("({what})")),
            )
        })
    };
    let (status_r, status_w) = pipe("status")?;
    let (ready_r, ready_w) = pipe("ready")?;
    // Block the forwarded signals and SIGCHLD before the fork: the waiter takes them from a
    // signalfd, and the child keeps the forwarded ones pending until its handlers exist. A
    // signal the caller ignored stays ignored and unblocked, so the kernel drops it, as it
    // would for the command run directly. SIGCHLD must not be ignored, or the kernel would
    // reap pid 1 (and pid 1 its children) before anyone saw a status.
    crate::sys::set_default_action(libc::SIGCHLD);
    let inherited = crate::signals::SignalSet::inherited_ignored();
    let waited_set = crate::signals::forwarded_and_sigchld(inherited.bits());
    let old_mask = crate::signals::mask(SigmaskHow::SIG_BLOCK, &waited_set);
    // Made before the fork, so that the waiter can never be left without it.
    let sfd = match crate::signals::signalfd(&waited_set) {
        Ok(fd) => fd,
        Err(e) => {
            crate::signals::mask(SigmaskHow::SIG_SETMASK, &old_mask);
            return Err(Error::os(Step::Signalfd, e).into());
        }
    };
    match crate::ns::fork_checked("into the pid namespace") {
        Err(e) => {
            crate::signals::mask(SigmaskHow::SIG_SETMASK, &old_mask);
            Err(e)
        }
        Ok(ForkResult::Child) => {
            drop((status_r, ready_w, sfd, report));
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            // If the waiter dies, so does the namespace. Set before the handshake, so a waiter
            // that died earlier is seen as EOF below.
            steps::process::die_with_parent_thread();
            let mut byte = [0u8; 1];
            loop {
                match rustix::io::read(&ready_r, &mut byte) {
                    Ok(1) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    _ => std::process::exit(125),
                }
            }
            drop(ready_r);
            // Unblock SIGCHLD only; the forwarded signals stay blocked (see the module docs).
            crate::signals::mask(
                SigmaskHow::SIG_UNBLOCK,
                &crate::signals::set_of(&[libc::SIGCHLD]),
            );
            if mount_proc {
                steps::mounts::mount_proc_in(empty)?;
                let last_pid = steps::mounts::open_last_pid_in(empty);
                if protect {
                    steps::mounts::protect_kernel(empty)?;
                }
                if let Some(fs) = empty {
                    steps::fs::pivot(fs)?;
                }
                // Lock it, so that root inside cannot unmount it and see the host's /proc.
                if lock_mounts {
                    steps::mounts::lock_mounts(last_pid.as_ref())?;
                }
            }
            // pid 1 holds the status pipe to the waiter and runs the user's program's
            // runtime: nothing inside may ptrace it, read its memory or environment, or open
            // its fds through /proc/1 (a forged stop report would stop the waiter forever).
            // Its memory belongs to the user namespace it was exec'd in, the caller's, where
            // the sandboxed command has no capability.
            steps::process::not_dumpable();
            crate::exit::set_pid1_status_fd(status_w);
            Ok(())
        }
        Ok(ForkResult::Parent { child }) => {
            drop((status_w, ready_r));
            waiter::wait_outside(child, status_r, ready_w, sfd, report)
        }
    }
}

//! Process-level entry: the seed's `simple_unshare` plus `create_pidns`, without its bugs.
//!
//! ```no_run
//! use nsbox::{Namespaces, Supervisor, enter, exit_as_status};
//! fn main() -> std::io::Result<()> {
//!     // First thing in main: no thread may exist yet.
//!     let entered = enter(&Namespaces::all().hostname("demo"))?;
//!     assert!(entered.is_pid1());
//!     let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//!     let status = rt.block_on(Supervisor::new().run(std::process::Command::new("sh")))?;
//!     exit_as_status(status)
//! }
//! ```
//!
//! # The process tree
//!
//! Without a pid namespace, `enter` changes the calling process's namespaces and returns.
//! With one, it forks once: the original process stays outside as the *waiter* (it never
//! returns from `enter`), and the child returns as pid 1 of the new namespace.
//!
//! ```text
//! shell ── nsrun (waiter, outside) ── nsrun (pid 1, returns from enter) ── PROGRAM
//! ```
//!
//! The waiter puts the child in its own process group (both sides call setpgid, so the group
//! exists whichever runs first), hands it the terminal's foreground if the waiter's group
//! holds it, and only then lets the child go on (a byte on a pipe), so the inside never
//! touches the terminal before it is its own. It forwards [`FORWARDED`]
//! signals to pid 1, gives the terminal back when the child ends, and exits exactly as the
//! inside did: the child writes its main command's raw wait status on a pipe before it exits
//! ([`exit_as_status`](crate::exit_as_status) does that), since pid 1 cannot die by its own
//! signal.
//!
//! The forwarded signals are blocked before the fork and stay blocked in the child when
//! `enter` returns, so a signal that arrives before the program installs its handlers stays
//! pending instead of being dropped (pid 1 ignores signals it has no handler for).
//! [`Supervisor::run`](crate::Supervisor::run) installs the handlers, then unblocks them.
//! If the waiter is killed, the kernel kills pid 1 (PR_SET_PDEATHSIG; the waiter is
//! single-threaded, so the parent thread is the parent process) and with it the namespace.

use std::io;
use std::os::fd::IntoRawFd;

use nix::errno::Errno;
use nix::unistd::{Pid, getgid, getpid, getuid, setpgid};

use crate::error::Error;
use crate::namespace::{
    Namespace, NamespaceSet, Namespaces, join_all, thread_count, unshare_error,
};
use crate::signals::FORWARDED;

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
}

/// Move the calling process into the namespaces `ns` describes: join the namespaces to join,
/// then create user, mount, uts, ipc, net and pid namespaces in that order, mapping ids,
/// making `/` slave, setting the hostname and domain name, bringing loopback up and, with a
/// pid namespace, forking as described in the [module docs](self).
///
/// Call it first thing in `main`, before any thread (so before a tokio runtime) exists.
///
/// # Errors
///
/// Strict by default: any namespace that cannot be made is an error naming the kind, the
/// errno and a hint. With [`Namespaces::best_effort`], kinds the kernel lacks (EINVAL) are
/// skipped and listed in [`Entered::skipped`]. A process with more than one thread is refused
/// up front (unshare(CLONE_NEWUSER) would fail with EINVAL, and a new pid namespace would
/// break later thread creation). On error nothing is left running; namespaces already
/// entered by this process stay entered (they cannot be left).
pub fn enter(ns: &Namespaces) -> io::Result<Entered> {
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
    let threads = thread_count()?;
    if threads > 1 {
        return Err(Error::msg(
            "enter",
            format!("the process has {threads} threads; creating namespaces needs a single-threaded process"),
        )
        .with_hint("call nsbox::enter() first thing in main, before starting a runtime or any thread; from a running runtime use Sandbox::spawn")
        .into_io());
    }
    join_all(&ns.joins)?;
    out.joined = ns.joins.len();

    let try_unshare = |kind: Namespace, out: &mut Entered| -> io::Result<bool> {
        match nix::sched::unshare(kind.clone_flag()) {
            Ok(()) => {
                out.created.insert(kind);
                Ok(true)
            }
            Err(Errno::EINVAL) if ns.best_effort && kind != Namespace::User => {
                out.skipped.insert(kind);
                Ok(false)
            }
            Err(Errno::EINVAL) if ns.best_effort && kind == Namespace::User && threads == 1 => {
                out.skipped.insert(kind);
                Ok(false)
            }
            Err(e) => Err(unshare_error(kind, e)),
        }
    };

    if ns.kinds.contains(Namespace::User) {
        let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
        if try_unshare(Namespace::User, &mut out)? {
            crate::idmap::map_single(None, uid, gid, ns.uid_inside, ns.gid_inside)?;
        }
    }
    if ns.kinds.contains(Namespace::Mount) && try_unshare(Namespace::Mount, &mut out)? {
        crate::mount::make_root(ns.propagation)?;
    }
    if ns.kinds.contains(Namespace::Uts) && try_unshare(Namespace::Uts, &mut out)? {
        if let Some(h) = &ns.hostname {
            crate::uts::set_hostname(h)?;
        }
        if let Some(d) = &ns.domainname {
            crate::uts::set_domainname(d)?;
        }
    }
    if ns.kinds.contains(Namespace::Ipc) {
        try_unshare(Namespace::Ipc, &mut out)?;
    }
    if ns.kinds.contains(Namespace::Net) && try_unshare(Namespace::Net, &mut out)? {
        crate::net::loopback_up()?;
    }
    if ns.kinds.contains(Namespace::Cgroup) {
        try_unshare(Namespace::Cgroup, &mut out)?;
    }
    if ns.kinds.contains(Namespace::Pid) && try_unshare(Namespace::Pid, &mut out)? {
        out.pid1 = true;
        let mount_proc = ns.mount_proc && out.created.contains(Namespace::Mount);
        fork_pid1(mount_proc, ns.lock_mounts)?;
        out.proc_mounted = mount_proc;
    }
    Ok(out)
}

/// Fork into the new pid namespace. Returns only in the child (pid 1); the parent becomes the
/// waiter and exits as the child did.
fn fork_pid1(mount_proc: bool, lock_mounts: bool) -> io::Result<()> {
    let pipe = |step| {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::new(step, None, e).into_io())
    };
    let (status_r, status_w) = pipe("pipe (status)")?;
    let (ready_r, ready_w) = pipe("pipe (ready)")?;
    // Block the forwarded signals and SIGCHLD before the fork: the waiter takes them with
    // sigwaitinfo, and the child keeps the forwarded ones pending until its handlers exist.
    let mut waited: Vec<i32> = FORWARDED.to_vec();
    waited.push(libc::SIGCHLD);
    let old_mask = crate::sys::sigmask(libc::SIG_BLOCK, &waited);
    let outside = getpid();
    match crate::sys::fork_single_threaded() {
        Err(e) => {
            crate::sys::restore_sigmask(&old_mask);
            Err(Error::new(
                "fork into the pid namespace",
                None,
                crate::error::errno_of(&e).unwrap_or(Errno::EIO),
            )
            .into_io())
        }
        Ok(crate::sys::Fork::Child) => {
            drop(status_r);
            drop(ready_w);
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            // If the waiter dies, so does the namespace. Set before the handshake, so a waiter
            // that died earlier is seen as EOF below.
            crate::sys::set_pdeathsig(libc::SIGKILL)?;
            let mut byte = [0u8; 1];
            loop {
                match nix::unistd::read(&ready_r, &mut byte) {
                    Ok(1) => break,
                    Ok(_) => crate::sys::exit_now(125),
                    Err(Errno::EINTR) => continue,
                    Err(_) => crate::sys::exit_now(125),
                }
            }
            drop(ready_r);
            let _ = outside;
            // Unblock SIGCHLD only; the forwarded signals stay blocked (see the module docs).
            crate::sys::sigmask(libc::SIG_UNBLOCK, &[libc::SIGCHLD]);
            if mount_proc {
                crate::mount::mount_proc()?;
                // Lock it, so that root inside cannot unmount it and see the host's /proc.
                if lock_mounts {
                    crate::child::init::lock_mounts().map_err(|e| {
                        Error::new(
                            "lock the mounts (nested user and mount namespace)",
                            None,
                            Errno::from_raw(e),
                        )
                        .into_io()
                    })?;
                }
            }
            crate::status::set_pid1_status_fd(status_w.into_raw_fd());
            Ok(())
        }
        Ok(crate::sys::Fork::Parent(child)) => {
            drop(status_w);
            drop(ready_r);
            wait_outside(child, status_r, ready_w, &waited)
        }
    }
}

/// The waiter's loop: never returns.
///
/// It waits on a signalfd (SIGCHLD and the forwarded signals, all blocked since before the
/// fork) and on the status pipe. On the pipe, pid 1 reports two things as raw wait statuses:
/// that its main command stopped (job control: Ctrl-Z), and, last, how the command ended.
/// On a stop the waiter takes the terminal back and stops itself with SIGTSTP, so the shell
/// sees a stopped job; when the shell continues it (`fg` sends SIGCONT), the waiter hands the
/// terminal back to the inside and forwards SIGCONT, which pid 1's Supervisor passes on.
fn wait_outside(
    child: Pid,
    status_r: std::os::fd::OwnedFd,
    ready_w: std::os::fd::OwnedFd,
    waited: &[i32],
) -> ! {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::AsFd;

    let _ = setpgid(child, child);
    let tty = crate::tty::Foreground::claim();
    if let Some(t) = &tty {
        t.give_to(child);
    }
    let _ = nix::unistd::write(&ready_w, b"g");
    drop(ready_w);
    let mut mask = SigSet::empty();
    for &sig in waited {
        if let Ok(sig) = Signal::try_from(sig) {
            mask.add(sig);
        }
    }
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
    let _ = nix::fcntl::fcntl(
        &status_r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut reported: Option<i32> = None;
    let mut pipe_open = true;
    // Read whatever pid 1 wrote: act on stops, keep the last final status.
    let drain = |reported: &mut Option<i32>, pipe_open: &mut bool| loop {
        let mut buf = [0u8; 4];
        match nix::unistd::read(&status_r, &mut buf) {
            Ok(4) => {
                let raw = i32::from_ne_bytes(buf);
                if std::os::unix::process::ExitStatusExt::stopped_signal(&crate::status::from_raw(
                    raw,
                ))
                .is_some()
                {
                    if let Some(t) = &tty {
                        t.reclaim();
                    }
                    // Stop like the job inside did; the shell continues us with SIGCONT.
                    let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGTSTP);
                } else {
                    *reported = Some(raw);
                }
            }
            Ok(0) => {
                *pipe_open = false;
                return;
            }
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    };
    let raw_own = loop {
        // Without a signalfd (never expected), fall back to waiting for signals directly.
        let Some(sfd) = &sfd else {
            match crate::sys::sigwaitinfo(waited) {
                Ok((libc::SIGCHLD, _)) => match reap_child(child) {
                    Some(raw) => break raw,
                    None => continue,
                },
                Ok((sig, _)) => {
                    let _ = nix::sys::signal::kill(child, Signal::try_from(sig).ok());
                }
                Err(_) => {}
            }
            continue;
        };
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if pipe_open {
            fds.push(PollFd::new(status_r.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let pipe_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if pipe_ready {
            drain(&mut reported, &mut pipe_open);
        }
        let mut done = None;
        while let Ok(Some(info)) = sfd.read_signal() {
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGCHLD {
                if let Some(raw) = reap_child(child) {
                    done = Some(raw);
                }
            } else {
                if sig == libc::SIGCONT
                    && let Some(t) = &tty
                {
                    // Continued by the shell (`fg`): the terminal goes back inside first.
                    t.give_to(child);
                }
                let _ = nix::sys::signal::kill(child, Signal::try_from(sig).ok());
            }
        }
        if let Some(raw) = done {
            break raw;
        }
    };
    if pipe_open {
        drain(&mut reported, &mut pipe_open);
    }
    if let Some(t) = tty {
        t.restore();
    }
    // The inside's own report wins: pid 1 exits with 128+n where its command died by a signal.
    crate::status::exit_as_status(crate::status::from_raw(reported.unwrap_or(raw_own)))
}

/// Reap pid 1 if it has ended: its raw wait status.
fn reap_child(child: Pid) -> Option<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(crate::status::raw_exited(code as u8)),
        Ok(WaitStatus::Signaled(_, sig, core)) => {
            Some(crate::status::raw_signaled(sig as i32, core))
        }
        Ok(_) | Err(Errno::EINTR) => None,
        Err(_) => Some(crate::status::raw_exited(125)),
    }
}

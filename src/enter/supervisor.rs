//! The async supervisor of an entered process (see [`Supervisor`]).

use std::io;
use std::os::fd::AsFd;
use std::process::{Command, ExitStatus};

use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpid};
use std::os::unix::process::CommandExt;

use std::time::Duration;

use nix::sys::signal::SigmaskHow;
use std::os::fd::OwnedFd;
use tokio::io::unix::AsyncFd;

use crate::caps::Capabilities;
use crate::error::Error;
use crate::limits::Resource;
use crate::seccomp::SeccompProgram;
use crate::signals::{FAULTS, FORWARDED, JOB_STOPS, SignalSet};
use crate::steps::Step;

/// Supervises the main command of an entered process: spawns it, reaps every orphan,
/// forwards signals, and resolves with the main command's exact status.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let status = nsbox::Supervisor::new()
///     .run(std::process::Command::new("make"))
///     .await?;
/// # Ok(()) }
/// ```
///
/// # Reaping and tokio::process
///
/// The supervisor reaps with `waitpid(-1)`, which takes the status of *every* child of the
/// process. That is right for pid 1 of a namespace (or a child subreaper) that owns every
/// child it has, and wrong anywhere else: do not use `tokio::process` or `std::process::Child::wait`
/// in a process that runs a `Supervisor` (their statuses would be stolen and they would fail
/// with ECHILD). In an orchestrator, use [`Sandbox`](crate::Sandbox), which never calls
/// `waitpid(-1)`.
///
/// # Signals
///
/// SIGCHLD arrives coalesced: every delivery is only a wake-up, after which the supervisor
/// reaps with WNOHANG until nothing is left (catatonit issue 4 hung by reaping one child per
/// signal). The main command is also watched through a pidfd, so its end is seen even if a
/// SIGCHLD was merged with another.
///
/// [`FORWARDED`] signals received by this process are sent on to the main
/// command (SIGTSTP, SIGTTIN, SIGTTOU and SIGCONT to its process group: the command's job
/// stops and continues as one), but those the command starts ignoring. [`enter`](crate::enter())
/// leaves them blocked so none is lost before the supervisor
/// starts; `run` installs its handlers first and unblocks them after, on the thread that first
/// polls it: poll `run` from the thread that called `enter` (with `block_on`), so that thread
/// takes them (threads started after `enter` inherit the blocked mask). The synchronous faults
/// (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS) stay blocked and are read from a
/// signalfd, so that only the ones sent with kill(2) are forwarded: raised by the kernel in
/// this process they kill it. They are blocked in the thread that runs `run` and in every
/// thread started after `enter()` (pid 1); a thread of a process that did not enter a pid
/// namespace and started before `run` does not block them, and a fault sent to the process
/// with kill(2) may land there and kill the process.
///
/// # The command's signal state
///
/// The main command starts with the signals this process's caller left ignored still ignored,
/// and with the signal mask the caller gave it ([`SignalSet::inherited_ignored`] and
/// [`SignalSet::inherited_blocked`]: what [`enter`](crate::enter()) found when it began), as
/// under tini, bwrap or unshare(1): `nohup` and `trap ''` work through it. Every other signal
/// has its default action. [`ignored_signals`](Self::ignored_signals) and
/// [`blocked_signals`](Self::blocked_signals) set them instead.
#[derive(Clone, Debug, Default)]
pub struct Supervisor {
    /// Wait for every process when the main command ends, instead of killing the rest.
    wait_all: bool,
    /// What the main command gives up before its exec.
    restrict: super::restrict::Restrict,
    /// What the command starts ignoring and blocking; `None`: what the caller gave us.
    ignored: Option<SignalSet>,
    blocked: Option<SignalSet>,
    /// SIGTERM to what is left when the command ends, SIGKILL this much later (zero: at once).
    exit_grace: Duration,
}

impl Supervisor {
    /// A supervisor that kills what is left when the main command ends.
    pub fn new() -> Self {
        Supervisor::default()
    }

    /// Wait for every process, not only the main command, before resolving (default false:
    /// kill what is left).
    pub fn wait_all(&mut self, on: bool) -> &mut Self {
        self.wait_all = on;
        self
    }

    /// Start the main command in a new session, without the controlling terminal (default
    /// false: an interactive shell needs the terminal). With it, the command cannot open
    /// `/dev/tty`, push keystrokes into the terminal with TIOCSTI, or signal its foreground
    /// group; nor does it get the terminal's foreground.
    pub fn new_session(&mut self, on: bool) -> &mut Self {
        self.restrict.new_session = on;
        self
    }

    /// The capabilities the main command keeps (default [`Capabilities::none`], as a
    /// sandbox's command: even root in the user namespace cannot mount, change the network
    /// or trace processes). [`Capabilities::all`] drops nothing.
    pub fn capabilities(&mut self, caps: Capabilities) -> &mut Self {
        self.restrict.capabilities = caps;
        self
    }

    /// Install nsbox's default syscall filter in the main command (default true; see
    /// [`Sandbox::default_syscall_filter`](crate::Sandbox::default_syscall_filter)).
    pub fn default_syscall_filter(&mut self, on: bool) -> &mut Self {
        self.restrict.default_filter = on;
        self
    }

    /// Let the main command make new user namespaces (default false; see
    /// [`Sandbox::nested_user_namespaces`](crate::Sandbox::nested_user_namespaces)).
    pub fn nested_user_namespaces(&mut self, on: bool) -> &mut Self {
        self.restrict.user_namespaces = on;
        self
    }

    /// Also install a seccomp program of the caller's in the main command (see
    /// [`Sandbox::seccomp`](crate::Sandbox::seccomp)).
    pub fn seccomp(&mut self, program: SeccompProgram) -> &mut Self {
        self.restrict.filters.push(program);
        self
    }

    /// Set a resource limit of the main command: setrlimit(2) in its process just before its
    /// exec (before its syscall filters and its capability drop), as
    /// [`Sandbox::rlimit`](crate::Sandbox::rlimit) does; its children inherit it, this
    /// process (pid 1) does not have it. A later call for the same resource replaces the
    /// earlier one; [`Resource::INFINITY`] is no limit.
    ///
    /// Any process may lower its limits and raise a soft limit up to its hard limit; a hard
    /// limit above this process's needs CAP_SYS_RESOURCE in the initial user namespace, else
    /// [`run`](Self::run) fails with EPERM ([`Step::Rlimit`], naming the limit). A soft
    /// limit above the hard one makes `run` fail with InvalidInput before anything is
    /// spawned.
    ///
    /// ```no_run
    /// use nsbox::{Resource, Supervisor};
    /// # async fn f() -> std::io::Result<()> {
    /// let status = Supervisor::new()
    ///     .rlimit(Resource::Nofile, 1024, 1024)
    ///     .rlimit(Resource::Core, 0, 0)
    ///     .run(std::process::Command::new("make"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn rlimit(&mut self, resource: Resource, soft: u64, hard: u64) -> &mut Self {
        self.restrict.rlimits.retain(|(r, _, _)| *r != resource);
        self.restrict.rlimits.push((resource, soft, hard));
        self
    }

    /// The signals the main command starts ignoring (default:
    /// [`SignalSet::inherited_ignored`]); they are not forwarded to it either.
    /// `SignalSet::empty()` gives every signal its default action.
    pub fn ignored_signals(&mut self, set: SignalSet) -> &mut Self {
        self.ignored = Some(set);
        self
    }

    /// The main command's signal mask when it starts (default:
    /// [`SignalSet::inherited_blocked`]).
    pub fn blocked_signals(&mut self, set: SignalSet) -> &mut Self {
        self.blocked = Some(set);
        self
    }

    /// When the main command has ended, give what is left `grace` to end: SIGTERM to every
    /// process left, then SIGKILL to whatever still runs `grace` later (default zero: SIGKILL
    /// at once). `run` resolves once everything is gone. Ignored with
    /// [`wait_all`](Self::wait_all).
    pub fn exit_grace(&mut self, grace: Duration) -> &mut Self {
        self.exit_grace = grace;
        self
    }

    /// Spawn `cmd` in its own process group (with the terminal's foreground if this process's
    /// group holds it), supervise it and the namespace until it ends, and resolve with its
    /// exact status. As soon as the command runs, this process moves to `/`, so that it does not
    /// keep the caller's working directory busy (the command keeps its own).
    ///
    /// The foreground is handed to the command again whenever this process is continued while
    /// its group holds the terminal (the shell's `fg`), never on a SIGCONT alone (`bg`), and
    /// taken back when the command stops or ends.
    ///
    /// # Errors
    ///
    /// `exec PROGRAM: ...` when the program cannot be run (ErrorKind NotFound for a missing
    /// program, PermissionDenied for a non-executable one); InvalidInput for a signal set that
    /// no program can start with (SIGKILL, a number out of range); errors of the signal
    /// machinery.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future leaves the main command running.
    pub fn run(
        &self,
        cmd: Command,
    ) -> impl std::future::Future<Output = io::Result<ExitStatus>> + Send + 'static {
        run(self.clone(), cmd)
    }
}

async fn run(sv: Supervisor, mut cmd: Command) -> io::Result<ExitStatus> {
    let wait_all = sv.wait_all;
    let pid1 = getpid().as_raw() == 1;
    let ignored = sv
        .ignored
        .unwrap_or_else(SignalSet::inherited_ignored)
        .check("ignored_signals")?;
    let blocked = sv
        .blocked
        .unwrap_or_else(SignalSet::inherited_blocked)
        .check("blocked_signals")?;
    if !pid1 {
        // Orphans of the command must come to us, not to the host's init.
        crate::steps::process::become_subreaper()?;
    }
    let (mut signals, faults) = watch_signals(FORWARDED.bits() & !ignored)?;

    let program = cmd.get_program().to_owned();
    let failed_step = sv.restrict.apply(&mut cmd)?;
    // A new session (setsid in the hook) makes its own group and has no terminal.
    let tty = if sv.restrict.new_session {
        None
    } else {
        cmd.process_group(0);
        super::tty::Foreground::find()
    };
    // Decided once, before the child takes the foreground itself.
    let handing = tty.as_ref().is_some_and(|t| t.ours());
    if let Some(t) = tty.as_ref().filter(|_| handing) {
        crate::child::foreground::take_foreground_before_exec(&mut cmd, t.raw_fd());
    }
    crate::child::foreground::signal_state_before_exec(&mut cmd, ignored, blocked);
    let spawned = cmd.spawn();
    drop(cmd); // and with it the hook's end of the failed-step pipe
    let child = spawned.map_err(|e| match (failed_step.take(), e.raw_os_error()) {
        (Some(step), _) => sv.restrict.step_error(step),
        (None, Some(_)) => Error::from_std(Step::Exec, &e).with_path(&program),
        // std's own refusals (a NUL in the program or an argument) are bad input.
        (None, None) => Error::invalid(Step::Exec, e.to_string()).with_path(&program),
    })?;
    // The command runs in its working directory: we must not keep the caller's busy.
    let _ = std::env::set_current_dir("/");
    let main = Pid::from_raw(child.id() as i32);
    drop(child); // never waited through std: the reaper below owns every status
    let pidfd = rustix::process::Pid::from_raw(main.as_raw())
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))
        .and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
                .map_err(io::Error::from)
        })
        .map_err(|e| Error::from_std(Step::Wait, &e).with_context("(pidfd_open)"))?;
    let pidfd = crate::sys::async_fd(pidfd)?;
    if let Some(t) = tty.as_ref().filter(|_| handing) {
        t.hand(main);
    }

    let mut status = None;
    let raw = loop {
        reap_ready(pidfd.get_ref().as_fd(), main, &mut status);
        if let Some(raw) = status {
            break raw;
        }
        tokio::select! {
            sig = signals.next() => match sig {
                Some(libc::SIGCHLD) => {
                    // Job control: the command stopped (Ctrl-Z). Take the terminal back
                    // and pass the stop outward, so the shell sees a stopped job.
                    if let Ok(Some(stop)) = crate::sys::waitid_pidfd_stopped(pidfd.get_ref().as_fd()) {
                        if let Some(t) = tty.as_ref().filter(|t| t.wanted_by(stop)) {
                            // In the foreground already (`fg` of a running job): the command
                            // gets the terminal and goes on.
                            t.hand(main);
                            forward(None, main, libc::SIGCONT);
                            continue;
                        }
                        if let Some(t) = &tty {
                            t.reclaim();
                        }
                        if !crate::exit::report_stopped(stop) && !pid1 {
                            // We are the outermost process: stop ourselves, by the same
                            // signal (our handler for it set aside meanwhile).
                            crate::sys::stop_self(stop);
                        }
                    }
                }
                // The stream ended (it never does while its handle is open): do not spin on it.
                None => return Err(signals_ended()),
                Some(sig) => forward(tty.as_ref(), main, sig),
            },
            ready = faults.readable() => {
                if let Ok(mut g) = ready {
                    while let Some(sig) = crate::signals::next_signal_of(g.get_inner().as_fd()) {
                        forward(tty.as_ref(), main, sig);
                    }
                    g.clear_ready();
                }
            }
            ready = pidfd.readable() => {
                // An error is the reactor's (it is shutting down), and would come back at once.
                ready?.clear_ready();
            }
        }
    };
    if let Some(t) = tty {
        t.restore();
    }
    if wait_all {
        loop {
            match crate::sys::waitpid_any(true) {
                Ok(Some(_)) => continue,
                Err(_) => break,
                Ok(None) => {
                    let _ = signals.next().await;
                }
            }
        }
    } else {
        if !sv.exit_grace.is_zero() {
            end_in_grace(pid1, sv.exit_grace, &mut signals).await;
        }
        kill_rest(pid1, &mut signals).await?;
    }
    signals.handle().close();
    Ok(crate::status::from_raw(raw))
}

/// Handlers for the forwarded signals of `bits` (and SIGCHLD), unblocked on this thread, and
/// a signalfd for the synchronous faults among them, which stay blocked: raised by the kernel
/// they are forced on the faulting thread anyway (and kill it), sent with kill(2) they wait
/// in the signalfd.
fn watch_signals(bits: u64) -> io::Result<(signal_hook_tokio::Signals, AsyncFd<OwnedFd>)> {
    let handled = (bits & !FAULTS) | (1 << (libc::SIGCHLD - 1));
    let numbers: Vec<i32> = SignalSet::from_bits(handled).iter().collect();
    let signals = signal_hook_tokio::Signals::new(&numbers)?;
    let fault_set = crate::sys::sigset_of_bits(bits & FAULTS);
    crate::signals::mask(SigmaskHow::SIG_BLOCK, &fault_set);
    let sfd = crate::signals::signalfd(&fault_set).map_err(|e| Error::os(Step::Signalfd, e))?;
    let faults = crate::sys::async_fd(sfd.as_fd().try_clone_to_owned()?)?;
    crate::signals::mask(
        SigmaskHow::SIG_UNBLOCK,
        &crate::sys::sigset_of_bits(handled),
    );
    Ok((signals, faults))
}

/// Send `sig` on to the main command: the job-control signals to its process group (Ctrl-Z
/// stops a whole job; what stopped together continues together), the others to the command.
/// SIGCONT first hands the terminal back inside if the shell gave our group the foreground
/// (`fg`), not otherwise (`bg`).
fn forward(tty: Option<&super::tty::Foreground>, main: Pid, sig: i32) {
    if sig == libc::SIGCONT
        && let Some(t) = tty
    {
        t.hand_if_ours(main);
    }
    let job = JOB_STOPS | (1 << (libc::SIGCONT - 1));
    if job & (1 << (sig - 1)) != 0 && crate::sys::kill(-main.as_raw(), sig).is_ok() {
        return;
    }
    let _ = crate::sys::kill(main.as_raw(), sig);
}

/// The main command has ended: SIGTERM to everything left, reaping as it ends, until nothing
/// is left or `grace` is over (the caller then kills what is left). As pid 1, kill(-1)
/// reaches the whole namespace; as a subreaper, each child (orphans come to us) gets it once.
async fn end_in_grace(pid1: bool, grace: Duration, signals: &mut signal_hook_tokio::Signals) {
    let until = tokio::time::Instant::now() + grace;
    let mut termed: Vec<Pid> = Vec::new();
    if pid1 {
        let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    }
    loop {
        if !pid1 {
            for c in list_children() {
                if !termed.contains(&c) {
                    let _ = kill(c, Signal::SIGTERM);
                    termed.push(c);
                }
            }
        }
        loop {
            match crate::sys::waitpid_any(true) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return, // no child left
            }
        }
        tokio::select! {
            _ = signals.next() => {}
            _ = tokio::time::sleep_until(until) => return,
        }
    }
}

fn reap_ready(pidfd: std::os::fd::BorrowedFd<'_>, main: Pid, status: &mut Option<i32>) {
    if status.is_none()
        && let Ok(Some(e)) = crate::sys::waitid_pidfd(pidfd, true)
    {
        *status = Some(e.raw);
    }
    while let Ok(Some((pid, raw))) = crate::sys::waitpid_any(true) {
        if pid == main.as_raw() && status.is_none() {
            *status = Some(raw);
        }
    }
}

/// Kill every process left and reap them all, without a thread (spawn_blocking panics when
/// the process limit is reached) and without spinning: between rounds it waits for the next
/// SIGCHLD. As pid 1, kill(-1) reaches every other process of the namespace; as a subreaper,
/// kill the children, whose orphans then come to us, until none is left. Every process that
/// ends, or whose parent ends while it is a zombie, sends us a SIGCHLD once it is our child,
/// so no round is missed; ECHILD (no child at all) ends it.
async fn kill_rest(pid1: bool, signals: &mut signal_hook_tokio::Signals) -> io::Result<()> {
    if pid1 {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    }
    loop {
        if !pid1 {
            for c in list_children() {
                let _ = kill(c, Signal::SIGKILL);
            }
        }
        loop {
            match crate::sys::waitpid_any(true) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                // ECHILD: nothing is left.
                Err(_) => return Ok(()),
            }
        }
        // Children are left that have not ended yet: wait for the next SIGCHLD.
        loop {
            match signals.next().await {
                Some(libc::SIGCHLD) => break,
                Some(_) => {}
                None => return Err(signals_ended()),
            }
        }
    }
}

fn signals_ended() -> io::Error {
    Error::failed(
        Step::Wait,
        io::ErrorKind::Other,
        "the signal stream ended while processes were left",
    )
    .into()
}

/// The children of every thread of this process (`/proc/self/task/*/children`).
fn list_children() -> Vec<Pid> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                s.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .map(Pid::from_raw),
            );
        }
    }
    out
}

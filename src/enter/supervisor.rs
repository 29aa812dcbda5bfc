//! The async supervisor of an entered process (see [`Supervisor`]).

use std::io;
use std::os::fd::AsFd;
use std::process::{Command, ExitStatus};

use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpid};
use std::os::unix::process::CommandExt;

use crate::caps::Capabilities;
use crate::error::Error;
use crate::seccomp::SeccompProgram;
use crate::signals::FORWARDED;
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
/// command. [`enter`](crate::enter()) leaves them blocked so none is lost before the supervisor
/// starts; `run` installs its handlers first and unblocks them after, on the thread that first
/// polls it: poll `run` from the thread that called `enter` (with `block_on`), so that thread
/// takes them (threads started after `enter` inherit the blocked mask).
#[derive(Clone, Debug, Default)]
pub struct Supervisor {
    /// Wait for every process when the main command ends, instead of killing the rest.
    wait_all: bool,
    /// What the main command gives up before its exec.
    restrict: super::restrict::Restrict,
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

    /// Spawn `cmd` in its own process group (with the terminal's foreground if this process
    /// holds it), supervise it and the namespace until it ends, and resolve with its exact
    /// status.
    ///
    /// # Errors
    ///
    /// `exec PROGRAM: ...` when the program cannot be run (ErrorKind NotFound for a missing
    /// program, PermissionDenied for a non-executable one); errors of the signal machinery.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future leaves the main command running.
    pub fn run(
        &self,
        cmd: Command,
    ) -> impl std::future::Future<Output = io::Result<ExitStatus>> + Send + 'static {
        let wait_all = self.wait_all;
        let restrict = self.restrict.clone();
        run(wait_all, restrict, cmd)
    }
}

async fn run(
    wait_all: bool,
    restrict: super::restrict::Restrict,
    mut cmd: Command,
) -> io::Result<ExitStatus> {
    let pid1 = getpid().as_raw() == 1;
    if !pid1 {
        // Orphans of the command must come to us, not to the host's init.
        crate::steps::process::become_subreaper()?;
    }
    let mut watched: Vec<i32> = FORWARDED.to_vec();
    watched.push(libc::SIGCHLD);
    let mut signals = signal_hook_tokio::Signals::new(&watched)?;
    crate::signals::mask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        &crate::signals::set_of(&watched),
    );

    let program = cmd.get_program().to_owned();
    let failed_step = restrict.apply(&mut cmd)?;
    // A new session (setsid in the hook) makes its own group and has no terminal.
    let tty = if restrict.new_session {
        None
    } else {
        cmd.process_group(0);
        super::tty::Foreground::claim()
    };
    if let Some(t) = &tty {
        crate::child::foreground::take_foreground_before_exec(&mut cmd, t.raw_fd());
    }
    let spawned = cmd.spawn();
    drop(cmd); // and with it the hook's end of the failed-step pipe
    let child = spawned.map_err(|e| match (failed_step.take(), e.raw_os_error()) {
        (Some(step), _) => Error::from(step),
        (None, Some(_)) => Error::from_std(Step::Exec, &e).with_path(&program),
        // std's own refusals (a NUL in the program or an argument) are bad input.
        (None, None) => Error::invalid(Step::Exec, e.to_string()).with_path(&program),
    })?;
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
    if let Some(t) = &tty {
        t.give_to(main);
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
                        if let Some(t) = &tty {
                            t.reclaim();
                        }
                        if !crate::exit::report_stopped(stop) && !pid1 {
                            // We are the outermost process: stop ourselves.
                            let _ = kill(getpid(), Signal::SIGTSTP);
                        }
                    }
                }
                // The stream ended (it never does while its handle is open): do not spin on it.
                None => return Err(signals_ended()),
                Some(sig) => {
                    if sig == libc::SIGCONT
                        && let Some(t) = &tty
                    {
                        // Continued (`fg`): the terminal goes back to the command first.
                        t.give_to(main);
                    }
                    let _ = kill(main, Signal::try_from(sig).ok());
                }
            },
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
        kill_rest(pid1, &mut signals).await?;
    }
    signals.handle().close();
    Ok(crate::status::from_raw(raw))
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

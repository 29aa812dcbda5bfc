//! A running sandbox: [`Child`], and the background reaper.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::stdio::{ChildStderr, ChildStdin, ChildStdout, ParentEnds};
use crate::error::Error;
use crate::proto::control::{Control, ControlSender};
use crate::proto::report::{Report, ReportReceiver};
use crate::steps::Step;
use crate::sys::Exited;

/// Resource usage of a sandbox once it has ended: its init and every process the init
/// reaped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rusage {
    /// User CPU time.
    pub user_time: Duration,
    /// System CPU time.
    pub system_time: Duration,
    /// Maximum resident set size, in bytes.
    pub max_rss_bytes: u64,
    /// What the sandbox's cgroup v2 leaf accounted, with [`Sandbox::cgroup`](crate::Sandbox::cgroup);
    /// `user_time` and `system_time` are then its cpu.stat's (every process that was ever in
    /// the leaf), `max_rss_bytes` stays the largest single process's.
    pub cgroup: Option<crate::cgroup::CgroupStats>,
}

impl From<Exited> for Rusage {
    fn from(e: Exited) -> Self {
        Rusage {
            user_time: e.user_time,
            system_time: e.system_time,
            max_rss_bytes: e.max_rss_bytes,
            cgroup: None,
        }
    }
}

/// The result of a finished sandbox with its output: what [`std::process::Output`] holds,
/// and the sandbox's own facts, which the [`Child`] (consumed by
/// [`wait_with_output`](Child::wait_with_output)) can no longer be asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The command's exact exit status.
    pub status: ExitStatus,
    /// What the command wrote to its stdout, when piped.
    pub stdout: Vec<u8>,
    /// What the command wrote to its stderr, when piped.
    pub stderr: Vec<u8>,
    /// Whether the command wrote more to stdout than the
    /// [`output_limit`](crate::Sandbox::output_limit): `stdout` then holds the first
    /// `output_limit` bytes, and the rest was read and dropped.
    pub stdout_truncated: bool,
    /// The same for stderr.
    pub stderr_truncated: bool,
    /// Whether the sandbox's timeout fired ([`Child::timed_out`]).
    pub timed_out: bool,
    /// The resource usage of the whole sandbox ([`Child::resource_usage`]).
    pub resource_usage: Rusage,
    /// Why the sandbox ended ([`Child::end_reason`]).
    pub end_reason: crate::limits::EndReason,
}

impl From<Output> for std::process::Output {
    fn from(o: Output) -> Self {
        std::process::Output {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

/// What became of the init.
#[derive(Clone, Copy, Debug)]
enum InitState {
    /// Running (or a zombie not yet reaped).
    Running,
    /// Reaped by us.
    Reaped(Exited),
    /// Handed to the background reaper, left running (kill_on_drop false).
    Detached,
}

/// A sandbox whose init runs; kills and reaps it on drop unless detached.
pub(crate) struct Pending {
    pub pid: i32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    report: ReportReceiver,
    control: Option<ControlSender>,
    pub ends: ParentEnds,
    state: InitState,
    /// The sandbox's cgroup leaf, until the init is reaped; then what it accounted.
    pub cgroup: Option<crate::cgroup::Leaf>,
    pub cgroup_stats: Option<crate::cgroup::CgroupStats>,
}

impl Pending {
    /// Take charge of a just-created init. Everything that can fail for lack of a runtime was
    /// done before the clone (the report pipe is registered already); if registering the
    /// pidfd still fails, the init is killed and reaped here, so that nothing is left.
    pub(crate) fn new(
        pid: i32,
        pidfd: OwnedFd,
        report: ReportReceiver,
        control: ControlSender,
        ends: ParentEnds,
    ) -> io::Result<Pending> {
        reap_parked();
        let pidfd = match crate::sys::try_async_fd(pidfd) {
            Ok(p) => p,
            Err((pidfd, e)) => {
                let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
                let _ = crate::sys::waitid_pidfd(pidfd.as_fd(), false);
                return Err(Error::from_std(Step::Spawn, &e)
                    .with_context("(register the init's pidfd with tokio)")
                    .into());
            }
        };
        Ok(Pending {
            pid,
            pidfd: Some(pidfd),
            report,
            control: Some(control),
            ends,
            state: InitState::Running,
            cgroup: None,
            cgroup_stats: None,
        })
    }

    pub(crate) fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|p| p.get_ref().as_fd())
    }

    fn reaped(&self) -> Option<Exited> {
        match self.state {
            InitState::Reaped(e) => Some(e),
            _ => None,
        }
    }

    /// Send `msg` to the init; false when it cannot hear it.
    pub(crate) fn control(&self, msg: Control) -> io::Result<()> {
        match &self.control {
            Some(c) => c.send(msg),
            None => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }

    /// The next report from the init; `None` at EOF (the init is gone).
    pub(crate) async fn recv(&mut self) -> io::Result<Option<Report>> {
        self.report.recv().await
    }

    /// Wait for the init to exit and reap it. Returns how it ended, for messages.
    pub(crate) async fn reap(&mut self) -> String {
        match self.wait_init().await {
            Ok(e) => ExitStatus::from_raw(e.raw).to_string(),
            Err(e) => e.to_string(),
        }
    }

    fn note_reaped(&mut self, e: Exited) -> Exited {
        self.state = InitState::Reaped(e);
        self.control = None;
        e
    }

    /// The init's end once it has been reaped and its leaf (if any) ended: the sandbox has
    /// ended then.
    fn ended(&self) -> Option<Exited> {
        match self.cgroup {
            Some(_) => None,
            None => self.reaped(),
        }
    }

    /// Wait for the init, then for its leaf (kill what is left, wait asynchronously until
    /// it is empty, read it, remove it). Cancel safe: the leaf stays until it is removed.
    async fn wait_init(&mut self) -> io::Result<Exited> {
        let e = self.wait_init_reaped().await?;
        if let Some(leaf) = &mut self.cgroup {
            self.cgroup_stats = leaf.finish().await;
            self.cgroup = None;
        }
        Ok(e)
    }

    async fn wait_init_reaped(&mut self) -> io::Result<Exited> {
        if let Some(e) = self.reaped() {
            return Ok(e);
        }
        let Some(pidfd) = &self.pidfd else {
            return Err(Error::failed(
                Step::Wait,
                io::ErrorKind::Other,
                "the sandbox was already reaped",
            )
            .into());
        };
        loop {
            if let Some(e) = crate::sys::waitid_pidfd(pidfd.get_ref().as_fd(), true)? {
                return Ok(self.note_reaped(e));
            }
            let mut guard = pidfd.readable().await?;
            guard.clear_ready();
        }
    }

    /// The init's end when it has been reaped and its leaf is empty (then read and removed);
    /// `None` while either still runs. Never waits.
    fn try_reap(&mut self) -> io::Result<Option<Exited>> {
        let e = match self.reaped() {
            Some(e) => e,
            None => {
                let Some(pidfd) = &self.pidfd else {
                    return Ok(None);
                };
                match crate::sys::waitid_pidfd(pidfd.get_ref().as_fd(), true)? {
                    Some(e) => self.note_reaped(e),
                    None => return Ok(None),
                }
            }
        };
        if let Some(leaf) = &mut self.cgroup {
            match leaf.try_finish() {
                Some(stats) => {
                    self.cgroup_stats = stats;
                    self.cgroup = None;
                }
                None => return Ok(None),
            }
        }
        Ok(Some(e))
    }

    /// Let the sandbox run on; reap its init in the background when it ends. The control
    /// pipe stays open inside the reaper until then, so the init does not read the drop as
    /// "the parent is gone".
    fn detach(&mut self) {
        if let (InitState::Running, Some(pidfd)) = (self.state, self.pidfd.take()) {
            let keep = Keep {
                control: self.control.take(),
                cgroup: self.cgroup.take(),
            };
            reap_in_background(pidfd, Some(keep));
            self.state = InitState::Detached;
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !matches!(self.state, InitState::Running) {
            return;
        }
        // Ask the init to kill everything, then let go of the control pipe; the init also
        // takes EOF as "kill" when it watches the parent. If the init cannot be told (its
        // pipe is full: it is stuck), kill it through its pidfd; with a pid namespace that
        // kills everything inside too.
        if self.control(Control::Kill).is_err()
            && let Some(pidfd) = self.pidfd()
        {
            let _ = rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
        }
        self.control = None;
        if let Some(pidfd) = self.pidfd.take() {
            reap_in_background(pidfd, None);
        }
    }
}

/// What a sandbox left running keeps until its init is reaped: the control pipe (so that the
/// init does not read its EOF as "the parent is gone") and its cgroup leaf (removed then).
/// Both are only held, for their Drop.
#[derive(Default)]
#[allow(dead_code)]
pub(crate) struct Keep {
    control: Option<ControlSender>,
    cgroup: Option<crate::cgroup::Leaf>,
}

/// Reap a sandbox's init without blocking the caller: a task when a runtime is there, a
/// thread otherwise, and a thread too when the runtime shuts down before the init has
/// exited (the task is dropped then; without the hand-over the init would stay a zombie).
/// `keep` (the control pipe of a sandbox left running) stays open until the init is reaped.
/// Where no thread can be made either, see [`reap_on_thread`].
pub(crate) fn reap_in_background(pidfd: AsyncFd<OwnedFd>, keep: Option<Keep>) {
    /// Owns the pidfd while a task reaps; dropped before the init is reaped (no runtime, or
    /// the task cancelled by a runtime shutdown), it hands the blocking wait to a thread.
    struct Reaper {
        pidfd: Option<AsyncFd<OwnedFd>>,
        keep: Option<Keep>,
    }
    impl Drop for Reaper {
        fn drop(&mut self) {
            if let Some(pidfd) = self.pidfd.take() {
                reap_on_thread(pidfd.into_inner(), self.keep.take());
            }
        }
    }
    reap_parked();
    let mut reaper = Reaper {
        pidfd: Some(pidfd),
        keep,
    };
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        drop(reaper);
        return;
    };
    handle.spawn(async move {
        while let Some(pidfd) = &reaper.pidfd {
            match crate::sys::waitid_pidfd(pidfd.get_ref().as_fd(), true) {
                Ok(Some(_)) | Err(_) => {
                    // Reaped (or not ours to reap): nothing left for a thread to do; the
                    // leaf, if any, goes with `keep`.
                    drop(reaper.pidfd.take());
                    drop(reaper.keep.take());
                    return;
                }
                Ok(None) => {}
            }
            match pidfd.readable().await {
                Ok(mut g) => g.clear_ready(),
                // The reactor is gone: the Reaper's drop hands over to a thread.
                Err(_) => return,
            }
        }
    });
}

/// [`reap_in_background`] for a pidfd not registered with tokio yet (registering it here,
/// when a runtime is there).
pub(crate) fn reap_owned(pidfd: OwnedFd, keep: Option<Keep>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return reap_on_thread(pidfd, keep);
    }
    match crate::sys::try_async_fd(pidfd) {
        Ok(p) => reap_in_background(p, keep),
        Err((pidfd, _)) => reap_on_thread(pidfd, keep),
    }
}

/// An init whose reaping waits: its pidfd, and the control pipe of a sandbox left running.
type Parked = (OwnedFd, Option<Keep>);

/// Inits that could be given neither a task nor a thread while they were left running
/// (kill_on_drop false); each later [`reap_in_background`] reaps those that have ended.
static PARKED: std::sync::Mutex<Vec<Parked>> = std::sync::Mutex::new(Vec::new());

/// Reap, with a blocking wait on a thread of its own, an init that a runtime cannot reap.
///
/// When no thread can be made (the process limit, RLIMIT_NPROC, is reached: std's
/// `thread::spawn` would panic), this never panics:
/// - an init that was told to die (`keep` is `None`: Kill was sent, or the control pipe is
///   closed) is SIGKILLed through its pidfd and waited for here. That wait is short: SIGKILL
///   cannot be blocked or caught, and the kernel's teardown of the init (with a pid
///   namespace, of every process in it, all SIGKILLed by the kernel) takes milliseconds; it
///   replaces a thread that could not be made, not a task of a running runtime.
/// - an init left running (`keep`: kill_on_drop false) must neither be killed nor waited for:
///   it is parked, and each later reap (a dropped or finished sandbox) reaps it once it has
///   ended.
fn reap_on_thread(pidfd: OwnedFd, keep: Option<Keep>) {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some((pidfd, keep))));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("nsbox-reaper".into())
        .spawn(move || {
            let taken = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some((fd, keep)) = taken {
                let _ = crate::sys::waitid_pidfd(fd.as_fd(), false);
                drop(keep);
            }
        });
    if spawned.is_ok() {
        return;
    }
    let Some((pidfd, keep)) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    match keep {
        None => {
            let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
            let _ = crate::sys::waitid_pidfd(pidfd.as_fd(), false);
        }
        Some(keep) => PARKED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((pidfd, Some(keep))),
    }
}

/// Reap the parked inits that have ended.
fn reap_parked() {
    let mut parked = PARKED.lock().unwrap_or_else(|p| p.into_inner());
    parked.retain(|(fd, _)| matches!(crate::sys::waitid_pidfd(fd.as_fd(), true), Ok(None)));
}

/// What the command's report said.
#[derive(Clone, Copy, Debug, Default)]
enum CommandState {
    #[default]
    Running,
    Exited {
        raw: i32,
        timed_out: bool,
        killed: bool,
    },
    /// The report pipe closed without a status: the init died.
    Lost,
}

/// A running sandbox, returned by [`Sandbox::spawn`](crate::Sandbox::spawn). Its methods
/// mirror [`tokio::process::Child`]'s.
///
/// Dropping it (with [`kill_on_drop`](crate::Sandbox::kill_on_drop), the default) kills the
/// whole sandbox and reaps its init in the background.
pub struct Child {
    inner: Pending,
    /// The sandbox's tracing span (its init's pid), for the end.
    span: tracing::Span,
    /// Whether the end was logged (wait and try_wait may both see it).
    logged_end: bool,
    kill_on_drop: bool,
    command: CommandState,
    /// The command's stdin, when piped.
    pub stdin: Option<ChildStdin>,
    /// The command's stdout, when piped.
    pub stdout: Option<ChildStdout>,
    /// The command's stderr, when piped.
    pub stderr: Option<ChildStderr>,
    /// What wait_with_output keeps of each stream.
    pub(crate) output_limit: usize,
    /// The cgroup limits that were not applied (best effort).
    unapplied: Vec<String>,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.inner.pid)
            .finish_non_exhaustive()
    }
}

impl Child {
    pub(crate) fn new(mut inner: Pending, kill_on_drop: bool, span: tracing::Span) -> Child {
        let ends = std::mem::take(&mut inner.ends);
        let unapplied = inner
            .cgroup
            .as_ref()
            .map(|l| l.unapplied.clone())
            .unwrap_or_default();
        Child {
            inner,
            span,
            logged_end: false,
            kill_on_drop,
            command: CommandState::Running,
            stdin: ends.stdin,
            stdout: ends.stdout,
            stderr: ends.stderr,
            output_limit: crate::Sandbox::DEFAULT_OUTPUT_LIMIT,
            unapplied,
        }
    }

    /// The cgroup limit files (`memory.max`, `pids.max`, ...) that were not applied because
    /// their controller was missing, with [`Cgroup::best_effort`](crate::Cgroup::best_effort);
    /// empty otherwise.
    pub fn unapplied_limits(&self) -> &[String] {
        &self.unapplied
    }

    /// The host pid of the sandbox's init (pid 1 inside), while it has not been reaped; `None`
    /// afterwards, as [`tokio::process::Child::id`] does, since the pid may belong to another
    /// process by then.
    pub fn id(&self) -> Option<u32> {
        match self.inner.reaped() {
            Some(_) => None,
            None => Some(self.inner.pid as u32),
        }
    }

    /// A pidfd of the sandbox's init; `None` once it has been reaped.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        if self.inner.reaped().is_some() {
            return None;
        }
        self.inner.pidfd()
    }

    /// Send `sig` to the command (through its init). A no-op once the sandbox has ended.
    ///
    /// # Errors
    ///
    /// InvalidInput for a signal number outside 1..=64; BrokenPipe when the sandbox is gone.
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        if !(1..=64).contains(&sig) {
            return Err(
                Error::invalid(Step::Signal, format!("{sig} is not a signal number")).into(),
            );
        }
        if self.inner.reaped().is_some() {
            return Ok(());
        }
        self.inner.control(Control::Signal(sig as u8))
    }

    /// Kill the command and everything else in the sandbox with SIGKILL (the status then says
    /// so). Does not wait; call [`wait`](Self::wait) for that.
    ///
    /// # Errors
    ///
    /// When neither the init nor the kernel can be told (the init's pidfd rejects SIGKILL).
    pub fn start_kill(&mut self) -> io::Result<()> {
        if self.inner.reaped().is_some() {
            return Ok(());
        }
        if self.inner.control(Control::Kill).is_err()
            && let Some(pidfd) = self.inner.pidfd()
        {
            // The init does not listen any more: kill it (with a pid namespace this kills
            // everything inside too).
            rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL)
                .map_err(|e| Error::os(Step::Signal, e.raw_os_error()))?;
        }
        Ok(())
    }

    /// Kill the sandbox and wait for it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let mut child = nsbox::Sandbox::new("sleep").arg("1000").spawn().await?;
    /// child.kill().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start_kill`](Self::start_kill) and [`wait`](Self::wait).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the kill is sent before the first await; waiting again resumes.
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(|_| ())
    }

    /// Take the init's report of the command: its end, or the pipe's end without one.
    fn on_report(&mut self, report: Option<Report>) {
        match report {
            Some(Report::Exited {
                raw,
                timed_out,
                killed,
            }) => {
                self.command = CommandState::Exited {
                    raw,
                    timed_out,
                    killed,
                }
            }
            Some(_) => {}
            None => self.command = CommandState::Lost,
        }
    }

    /// Wait until the sandbox has ended; the command's exact exit status. Closes stdin first.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let status = nsbox::Sandbox::new("false").spawn().await?.wait().await?;
    /// assert_eq!(status.code(), Some(1));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// When the sandbox's init died before reporting (someone SIGKILLed it): an error saying
    /// so, never a made-up status.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        while let CommandState::Running = self.command {
            let report = self.inner.recv().await?;
            self.on_report(report);
        }
        let init = self.inner.wait_init().await?;
        self.result(init)
    }

    fn result(&mut self, init: Exited) -> io::Result<ExitStatus> {
        let r = self.outcome(init);
        if std::mem::replace(&mut self.logged_end, true) {
            return r;
        }
        let _entered = self.span.enter();
        match &r {
            Ok(status) => tracing::debug!(
                %status,
                timed_out = self.timed_out(),
                cpu_ms = (init.user_time + init.system_time).as_millis() as u64,
                max_rss_kib = init.max_rss_bytes / 1024,
                "sandbox ended"
            ),
            Err(e) => tracing::debug!(error = %e, "sandbox ended without a status"),
        }
        r
    }

    fn outcome(&self, init: Exited) -> io::Result<ExitStatus> {
        match self.command {
            CommandState::Exited { raw, .. } => Ok(ExitStatus::from_raw(raw)),
            _ => Err(Error::failed(
                Step::Wait,
                io::ErrorKind::Other,
                format!(
                    "the sandbox's init (pid {}) died ({}) before reporting the command's status",
                    self.inner.pid,
                    ExitStatus::from_raw(init.raw)
                ),
            )
            .with_hint("something outside killed the init; the command was killed with it")
            .into()),
        }
    }

    /// The status if the sandbox has ended, without waiting. With a
    /// [cgroup](crate::Sandbox::cgroup), the sandbox has ended once its init has been reaped
    /// and its leaf is empty (then read and removed): until then this returns `None`
    /// (after killing what is left in the leaf), and [`wait`](Self::wait) waits for it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let mut child = nsbox::Sandbox::new("sleep").arg("1000").spawn().await?;
    /// assert!(child.try_wait()?.is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait), and waitid(2)'s errors.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let Some(init) = self.inner.try_reap()? else {
            return Ok(None);
        };
        // The init has exited: its report is complete in the pipe.
        while let CommandState::Running = self.command {
            let report = self.inner.report.recv_now()?;
            self.on_report(report);
        }
        self.result(init).map(Some)
    }

    /// Wait, collecting piped stdout and stderr, at most
    /// [`output_limit`](crate::Sandbox::output_limit) bytes of each (64 MiB by default): what
    /// comes after is read and dropped, and [`Output::stdout_truncated`] or
    /// [`Output::stderr_truncated`] says so. The [`Output`] keeps the sandbox's facts
    /// ([`timed_out`](Output::timed_out), [`resource_usage`](Output::resource_usage)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let mut sb = nsbox::Sandbox::new("echo");
    /// sb.arg("hi").stdout(nsbox::Stdio::piped());
    /// let out = sb.spawn().await?.wait_with_output().await?;
    /// assert_eq!(out.stdout, b"hi\n");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait), and read errors on the pipes.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: output read so far is lost with the future.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        /// The first `limit` bytes, and whether there were more (read to the end all the same,
        /// so that the command never blocks on a full pipe).
        async fn read_all(r: Option<pipe::Receiver>, limit: usize) -> io::Result<(Vec<u8>, bool)> {
            let mut v = Vec::new();
            let Some(mut r) = r else {
                return Ok((v, false));
            };
            (&mut r)
                .take(u64::try_from(limit).unwrap_or(u64::MAX))
                .read_to_end(&mut v)
                .await?;
            let dropped = tokio::io::copy(&mut r, &mut tokio::io::sink()).await?;
            Ok((v, dropped > 0))
        }
        let (out, err) = (self.stdout.take(), self.stderr.take());
        let limit = self.output_limit;
        let (status, (stdout, stdout_truncated), (stderr, stderr_truncated)) =
            tokio::try_join!(self.wait(), read_all(out, limit), read_all(err, limit))?;
        Ok(Output {
            status,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            timed_out: self.timed_out(),
            resource_usage: self.resource_usage().unwrap_or_default(),
            end_reason: self
                .end_reason()
                .unwrap_or(crate::limits::EndReason::of(status, Default::default())),
        })
    }

    /// Resource usage of the whole sandbox, once it has ended: the init and every process it
    /// reaped (it kills and reaps all that is left before it exits); with a
    /// [cgroup](crate::Sandbox::cgroup), the CPU times of everything that was ever in the
    /// leaf, and its other statistics in [`Rusage::cgroup`].
    pub fn resource_usage(&self) -> Option<Rusage> {
        let mut usage = Rusage::from(self.inner.ended()?);
        if let Some(cg) = self.inner.cgroup_stats {
            usage.user_time = cg.cpu_user;
            usage.system_time = cg.cpu_system;
            usage.cgroup = Some(cg);
        }
        Some(usage)
    }

    /// Why the sandbox ended, once it has (`None` before, and when the init died before
    /// reporting): the command's own exit or signal, the timeout, the orchestrator's kill, an
    /// rlimit's signal, or (with a [cgroup](crate::Sandbox::cgroup)) the OOM killer or the
    /// process limit. See [`EndReason`](crate::EndReason) for the order.
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let mut child = nsbox::Sandbox::new("sleep").arg("1000").spawn().await?;
    /// child.kill().await?;
    /// assert_eq!(child.end_reason(), Some(nsbox::EndReason::Killed));
    /// # Ok(()) }
    /// ```
    pub fn end_reason(&self) -> Option<crate::limits::EndReason> {
        let CommandState::Exited {
            raw,
            timed_out,
            killed,
        } = self.command
        else {
            return None;
        };
        self.inner.ended()?;
        let facts = crate::limits::EndFacts {
            timed_out,
            killed,
            ..self.end_facts()
        };
        Some(crate::limits::EndReason::of(
            ExitStatus::from_raw(raw),
            facts,
        ))
    }

    /// What the cgroup recorded about the end, when there is one.
    fn end_facts(&self) -> crate::limits::EndFacts {
        let cg = self.inner.cgroup_stats.unwrap_or_default();
        crate::limits::EndFacts {
            oom_kills: cg.oom_kill,
            pids_max_hits: cg.pids_max_hits,
            ..Default::default()
        }
    }

    /// Whether the sandbox's timeout fired.
    pub fn timed_out(&self) -> bool {
        matches!(
            self.command,
            CommandState::Exited {
                timed_out: true,
                ..
            }
        )
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.kill_on_drop {
            self.inner.detach();
        }
        // Otherwise Pending's Drop kills and reaps.
    }
}

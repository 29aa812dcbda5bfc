//! Spawn mode: [`Sandbox`] creates a child in new namespaces from a running (multi-threaded)
//! tokio runtime, and [`Child`] resolves with the command's exact status.
//!
//! - `config`: the builder's settings as data;
//! - [`stdio`]: where the command's streams go;
//! - [`hook`]: the parent-side setup hook and [`NewIdMaps`];
//! - [`prepare`]: everything built before the clone (checked input, C strings, fds);
//! - [`clone`]: the init's creation by a direct clone, and clone errors;
//! - [`launcher`]: the fork server that clones inits for a large orchestrator;
//! - [`child`]: the running sandbox ([`Child`]) and the background reaper.
//!
//! The user-facing documentation (the process tree, the caveats) is on [`Sandbox`].

pub(crate) mod child;
pub(crate) mod clone;
mod config;
pub(crate) mod hook;
pub mod launcher;
pub(crate) mod prepare;
pub(crate) mod stdio;

use crate::caps::Capabilities;
use crate::fs::Filesystem;
#[allow(unused_imports)] // for rustdoc links
use crate::limits::Resource;
use crate::seccomp::SeccompProgram;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

pub use child::{Child, Output, Rusage};
pub use hook::{IdMap, NewIdMaps, SetupContext, SetupHook};
pub use stdio::{ChildStderr, ChildStdin, ChildStdout, Stdio};

use child::Pending;
use config::Config;
use prepare::Prepared;
use tracing::Instrument;

use crate::error::Error;
use crate::ns::Namespaces;
use crate::proto::control::Control;
use crate::proto::report::Report;
use crate::signals::SignalSet;
use crate::steps::Step;

/// A command to run in a sandbox: a builder with the methods of [`tokio::process::Command`]
/// (`arg`, `env`, `current_dir`, `stdin`, ...) plus the sandbox's own (`namespaces`,
/// `timeout`, `setup_hook`, ...), whose [`spawn`](Self::spawn) resolves to a [`Child`].
///
/// Builders never fail: every problem (a NUL in an argument, a bad hostname, a missing
/// program) is reported by [`spawn`](Self::spawn).
///
/// The standard streams take an [`nsbox::Stdio`](Stdio), or anything that converts into one:
/// a `File`, an `OwnedFd`, another sandbox's [`ChildStdout`] (to pipe one into the next), a
/// `tokio::process` or `std::process` child's pipe. A [`std::process::Stdio`] cannot be
/// honoured (it does not say what it holds): write `.stdout(nsbox::Stdio::piped())` instead of
/// `.stdout(std::process::Stdio::piped())`.
///
/// ```no_run
/// use std::time::Duration;
/// use nsbox::{Namespaces, Sandbox, Stdio};
///
/// # async fn f() -> std::io::Result<()> {
/// let mut sb = Sandbox::new("sh");
/// sb.args(["-c", "echo hello from $(hostname)"])
///     .namespaces(Namespaces::all().hostname("build"))
///     .stdout(Stdio::piped())
///     .timeout(Duration::from_secs(600));
/// let out = sb.output().await?;
/// assert!(out.status.success());
/// assert_eq!(out.stdout, b"hello from build\n");
/// # Ok(()) }
/// ```
///
/// # The process tree
///
/// ```text
/// orchestrator ── init (pid 1 of the new pid namespace; host pid = Child::id) ── PROGRAM
/// ```
///
/// The init is created with clone3(2) and `CLONE_PIDFD` (clone(2) + pidfd_open(2) where
/// clone3 is missing), with the namespaces as clone flags, so the orchestrator never unshares
/// anything itself. It runs only async-signal-safe code (see `src/child/`), sets the
/// namespaces up, forks PROGRAM into its own process group, reaps every orphan, forwards
/// signals, reports PROGRAM's raw wait status on a pipe, kills and reaps whatever is left
/// (so that its CPU time is in [`Child::resource_usage`]), and exits. Without a pid namespace
/// the init is a child subreaper, to which orphans come.
///
/// The orchestrator waits only on its own pidfds (never `waitpid(-1)`), so `tokio::process`
/// children in the same process keep working.
///
/// # Safe defaults
///
/// What a sandbox's command may not do unless the caller says so (the README's security
/// section lists what each blocks and what it does not):
///
/// - it starts in a new session, without a controlling terminal ([`new_session`](Sandbox::new_session));
/// - it holds no capability ([`capabilities`](Sandbox::capabilities));
/// - the default syscall filter refuses TIOCSTI, the keyring, new user namespaces, setuid
///   modes and the rest of its list ([`default_syscall_filter`](Sandbox::default_syscall_filter),
///   [`nested_user_namespaces`](Sandbox::nested_user_namespaces));
/// - with a mount namespace, it sees the host read-only with a fresh `/tmp` and `/run`
///   ([`filesystem`](Sandbox::filesystem); [`Filesystem::host`] for the host's mounts as they
///   are), and the kernel's files protected ([`Namespaces::protect_kernel`]);
/// - its environment is the orchestrator's, as with `tokio::process`: use
///   [`env_clear`](Sandbox::env_clear) for an explicit one.
///
/// # Caveats
///
/// - Dropping a [`Child`] (with [`kill_on_drop`](Sandbox::kill_on_drop), the default) kills the
///   whole sandbox and reaps its init in the background.
/// - The terminal is not handed over in spawn mode: PROGRAM runs in its own process group,
///   in the background of any terminal.
/// - Without the [launcher](crate::launcher::start), `spawn()` clones the init from this
///   process on the tokio worker that polls it, and blocks that worker while the kernel copies
///   the process's page tables: measured 0.16 ms from a small process, 40 ms with 1 GiB of
///   memory touched, 90 ms with 3 GiB. Call [`launcher::start`](crate::launcher::start) at
///   the top of `main` to avoid it: through the launcher no worker blocks and `spawn()` stays
///   near 2 ms at every size.
/// - [`output`](Sandbox::output) and [`Child::wait_with_output`] keep at most
///   [`output_limit`](Sandbox::output_limit) bytes of each stream (64 MiB by default).
/// - Joining namespaces ([`Namespaces::join_path`]) happens inside the new user namespace, if
///   one is created: joining a namespace owned by the host's user namespace then fails with
///   EPERM. Join without a new user namespace, or use [`enter`](crate::enter()).
#[derive(Clone)]
pub struct Sandbox {
    cfg: Config,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("program", &self.cfg.program)
            .field("args", &self.cfg.args)
            .field("namespaces", &self.cfg.namespaces)
            .field("timeout", &self.cfg.timeout)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// The default [`output_limit`](Self::output_limit): 64 MiB per stream. Large enough for
    /// the logs of a big compile or test run; small enough that a runaway command (`yes`,
    /// a log loop) cannot take the orchestrator's memory when thousands of sandboxes run.
    pub const DEFAULT_OUTPUT_LIMIT: usize = 64 << 20;

    /// A sandbox that runs `program` (looked up in the sandbox's `PATH` if it has no slash).
    /// It creates no namespace until [`namespaces`](Self::namespaces) says which.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Sandbox {
            cfg: Config::new(program.as_ref()),
        }
    }

    /// Add an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.cfg.args.push(arg.as_ref().to_owned());
        self
    }
    /// Add arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cfg
            .args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    /// Set an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
        self.cfg
            .env
            .insert(key.as_ref().to_owned(), Some(val.as_ref().to_owned()));
        self
    }
    /// Set environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }
    /// Remove an environment variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.cfg.env.insert(key.as_ref().to_owned(), None);
        self
    }
    /// Start from an empty environment.
    pub fn env_clear(&mut self) -> &mut Self {
        self.cfg.env_clear = true;
        self.cfg.env.clear();
        self
    }
    /// The command's working directory (inside the sandbox's mount namespace; a spawn fails
    /// if it is not there). Without one the command starts in the orchestrator's, looked up
    /// by its path in the filesystem view, or in `/` where the view has no such directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cfg.cwd = Some(dir.as_ref().to_owned());
        self
    }
    /// The command's stdin.
    pub fn stdin(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.cfg.stdin = Some(s.into());
        self
    }
    /// The command's stdout.
    pub fn stdout(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.cfg.stdout = Some(s.into());
        self
    }
    /// The command's stderr.
    pub fn stderr(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.cfg.stderr = Some(s.into());
        self
    }
    /// Give the command `fd` as fd number `target` (3 or more). Nothing else is inherited.
    pub fn pass_fd(&mut self, target: RawFd, fd: impl Into<OwnedFd>) -> &mut Self {
        self.cfg.fds.push((target, Arc::new(fd.into())));
        self
    }
    /// Kill the whole sandbox when the [`Child`] is dropped (default true).
    pub fn kill_on_drop(&mut self, on: bool) -> &mut Self {
        self.cfg.kill_on_drop = on;
        self
    }
    /// The namespaces to create or join (a [`Namespaces`] or a reference to one).
    pub fn namespaces(&mut self, ns: impl Into<Namespaces>) -> &mut Self {
        self.cfg.namespaces = ns.into();
        self
    }
    /// After `limit` from the spawn, send SIGTERM to the command, and SIGKILL to the whole
    /// sandbox [`kill_after`](Self::kill_after) later. Enforced by the init itself, whether or
    /// not the child is being waited for. [`Child::timed_out`] tells afterwards.
    pub fn timeout(&mut self, limit: Duration) -> &mut Self {
        self.cfg.timeout = Some(limit);
        self
    }
    /// The grace between the timeout's SIGTERM and SIGKILL (default 5 s).
    pub fn kill_after(&mut self, grace: Duration) -> &mut Self {
        self.cfg.kill_after = grace;
        self
    }
    /// Kill the sandbox when the orchestrator process dies (default true). Watches the process,
    /// not the spawning thread: PR_SET_PDEATHSIG fires when the parent *thread* exits, and a
    /// tokio blocking-pool thread exits after idling, which would kill a healthy sandbox.
    pub fn die_with_parent(&mut self, on: bool) -> &mut Self {
        self.cfg.die_with_parent = on;
        self
    }
    /// When the command ends, wait for every other process of the sandbox instead of killing
    /// them.
    pub fn wait_all(&mut self, on: bool) -> &mut Self {
        self.cfg.wait_all = on;
        self
    }
    /// Start the command in a new session (default true): it has no controlling terminal, so
    /// it cannot open the orchestrator's terminal (`/dev/tty`), inject keystrokes into it with
    /// TIOCSTI, or send ^C/^Z to its foreground group. `false` keeps the orchestrator's
    /// session (the command still gets a process group of its own): only for a trusted
    /// command that must use the terminal.
    pub fn new_session(&mut self, on: bool) -> &mut Self {
        self.cfg.new_session = on;
        self
    }
    /// Set `PR_SET_NO_NEW_PRIVS` for the command (default true): execve never grants
    /// privileges (setuid and setgid bits and file capabilities are ignored), for the command
    /// and everything it starts. `false` lets setuid programs work inside (where the user
    /// namespace maps their owner); the command's bounding set is then emptied instead, so
    /// that no exec brings back a capability it does not keep.
    pub fn no_new_privs(&mut self, on: bool) -> &mut Self {
        self.cfg.no_new_privs = on;
        self
    }
    /// The capabilities the command keeps (default [`Capabilities::none`]: it starts with
    /// none, even as root in its user namespace, and no exec brings them back).
    /// [`Capabilities::all`] drops nothing.
    pub fn capabilities(&mut self, caps: Capabilities) -> &mut Self {
        self.cfg.capabilities = caps;
        self
    }
    /// Install nsbox's default syscall filter in the command (default true): TIOCSTI and
    /// TIOCLINUX ioctls, the keyring, kexec, open_by_handle_at, perf_event_open, userfaultfd,
    /// syslog, acct, quotactl, uselib, modify_ldt, the NUMA memory calls and personality
    /// with other than the default personas fail with EPERM (the README's security section
    /// has the list and the reasons).
    pub fn default_syscall_filter(&mut self, on: bool) -> &mut Self {
        self.cfg.default_filter = on;
        self
    }
    /// Let the command make new user namespaces (default false: the default syscall filter
    /// refuses unshare and clone with CLONE_NEWUSER with EPERM, and clone3 with ENOSYS, so
    /// that callers fall back to clone). In a user namespace of its own a command regains
    /// every capability there; with root mapped to host root it could then mount a cgroup
    /// filesystem and raise its own limits. Needed by commands that sandbox themselves
    /// (bwrap, browsers' sandboxes, nested nsbox).
    pub fn nested_user_namespaces(&mut self, on: bool) -> &mut Self {
        self.cfg.user_namespaces = on;
        self
    }
    /// Also install `program`, a seccomp BPF program of the caller's, in the command, after
    /// the default filter (when on), just before its exec and before its capabilities are
    /// dropped. May be called several times; the kernel takes the strictest answer of all.
    pub fn seccomp(&mut self, program: SeccompProgram) -> &mut Self {
        self.cfg.filters.push(program);
        self
    }
    /// The filesystem the command sees, in the sandbox's mount namespace. Default, with a
    /// mount namespace: the host read-only, with a fresh tmpfs on `/tmp`
    /// ([`Filesystem::sandbox_default`]); name the paths the command may write with
    /// [`Filesystem::writable`]. [`Filesystem::host`] is the host's mounts as they are,
    /// writable as the caller's permissions allow. Without a mount namespace the command
    /// sees the host's, and a filesystem given is an error.
    pub fn filesystem(&mut self, fs: Filesystem) -> &mut Self {
        self.cfg.filesystem = Some(fs);
        self
    }
    /// Create this sandbox through the launcher when one was started with
    /// [`launcher::start`](crate::launcher::start) (default true); false forces a direct clone
    /// from this process.
    pub fn use_launcher(&mut self, on: bool) -> &mut Self {
        self.cfg.use_launcher = on;
        self
    }
    /// The most bytes of each of stdout and stderr that [`output`](Self::output) and
    /// [`Child::wait_with_output`] keep (default [`DEFAULT_OUTPUT_LIMIT`](Self::DEFAULT_OUTPUT_LIMIT),
    /// 64 MiB per stream; `usize::MAX` keeps everything).
    ///
    /// A command that writes more is neither killed nor blocked: the first `bytes` are kept,
    /// the rest is read and dropped, so the command runs to its end with its own status, and
    /// [`Output::stdout_truncated`] (or `stderr_truncated`) says so. Memory stays bounded,
    /// and a full pipe can never stall the command. Bound its time with
    /// [`timeout`](Self::timeout).
    pub fn output_limit(&mut self, bytes: usize) -> &mut Self {
        self.cfg.output_limit = bytes;
        self
    }
    /// Set the command's limit of `resource` to `soft` and `hard` ([`Resource::INFINITY`]
    /// for none), with setrlimit(2) in the command's process just before its exec (after its
    /// working directory, before its syscall filters and its capability drop); the command's
    /// children inherit it, the init does not have it. A later call for the same resource
    /// replaces the earlier one.
    ///
    /// Any process may lower its limits, and raise a soft limit up to its hard limit; raising
    /// a hard limit above the caller's needs CAP_SYS_RESOURCE in the initial user namespace
    /// (host root without a new user namespace), otherwise [`spawn`](Self::spawn) fails with
    /// EPERM ([`Step::Rlimit`]); [`Resource::Nofile`] can never exceed fs.nr_open. A soft
    /// limit above the hard one is refused by `spawn` as invalid input.
    ///
    /// [`Resource::Nproc`] is counted per user namespace since Linux 5.14 and does not bind a
    /// command whose uid is host root: bound a sandbox's processes with a cgroup's pids.max
    /// ([`cgroup`](Self::cgroup)) instead.
    ///
    /// ```no_run
    /// use nsbox::{Resource, Sandbox};
    /// # async fn f() -> std::io::Result<()> {
    /// let mut sb = Sandbox::new("cc");
    /// sb.rlimit(Resource::Cpu, 600, 610)
    ///     .rlimit(Resource::Fsize, 1 << 30, 1 << 30)
    ///     .rlimit(Resource::Core, 0, 0);
    /// # Ok(()) }
    /// ```
    pub fn rlimit(&mut self, resource: crate::limits::Resource, soft: u64, hard: u64) -> &mut Self {
        self.cfg.rlimits.retain(|(r, _, _)| *r != resource);
        self.cfg.rlimits.push((resource, soft, hard));
        self
    }
    /// Put the sandbox in a cgroup v2 leaf of its own, made under `cg`'s parent at spawn with
    /// `cg`'s limits, and removed when the sandbox has ended (after `cgroup.kill` ends
    /// anything left in it). The init is created in the leaf (clone3 `CLONE_INTO_CGROUP`;
    /// on older kernels it joins the leaf before it forks the command), so the whole tree is
    /// in it. [`Child::resource_usage`] then counts from the leaf's cpu.stat (every process
    /// that was ever in it), and [`Child::end_reason`] reads its memory.events and
    /// pids.events. A limit that cannot be applied fails the spawn ([`Step::Cgroup`], with a
    /// hint naming what is missing), unless [`Cgroup::best_effort`](crate::Cgroup::best_effort).
    pub fn cgroup(&mut self, cg: crate::cgroup::Cgroup) -> &mut Self {
        self.cfg.cgroup = Some(cg);
        self
    }
    /// Run `hook` in the orchestrator after the namespaces exist and before the command runs.
    pub fn setup_hook(&mut self, hook: Arc<dyn SetupHook>) -> &mut Self {
        self.cfg.hook = Some(hook);
        self
    }
    /// The signals the command starts ignoring (default none: every disposition is reset to
    /// the default action, which is right for an orchestrator, whose own dispositions belong
    /// to it). Signals sent to the init that the command starts ignoring are not forwarded.
    /// To pass on what this process was given, as tini and bwrap do:
    /// `.ignored_signals(SignalSet::inherited_ignored())`. SIGKILL, SIGSTOP, glibc's 32 and
    /// 33, or a number outside 1 to 64 make [`spawn`](Self::spawn) fail with InvalidInput.
    pub fn ignored_signals(&mut self, set: SignalSet) -> &mut Self {
        self.cfg.ignored_signals = set;
        self
    }
    /// The command's signal mask when it starts (default empty). To pass on this thread's:
    /// `.blocked_signals(SignalSet::blocked_now())`. The same numbers as for
    /// [`ignored_signals`](Self::ignored_signals) are refused.
    pub fn blocked_signals(&mut self, set: SignalSet) -> &mut Self {
        self.cfg.blocked_signals = set;
        self
    }
    /// When the command has ended, give what is left of the sandbox `grace` to end: SIGTERM to
    /// every process left, then SIGKILL to whatever still runs `grace` later (default zero:
    /// SIGKILL at once). The status is the command's either way, available when the sandbox
    /// is gone. Ignored with [`wait_all`](Self::wait_all).
    pub fn exit_grace(&mut self, grace: Duration) -> &mut Self {
        self.cfg.exit_grace = grace;
        self
    }

    /// Create the sandbox and execute the command. Resolves once the command has been
    /// executed.
    ///
    /// # Errors
    ///
    /// Setup and exec failures, naming the step and the path: `exec /no/such/file: No such
    /// file or directory (ENOENT)`, `unshare net namespace: ...`, a hook's error. No process is
    /// left behind.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future half-way kills and reaps the sandbox.
    pub async fn spawn(&mut self) -> io::Result<Child> {
        let span = tracing::debug_span!(
            "sandbox",
            program = ?self.cfg.program,
            pid = tracing::field::Empty
        );
        let pending = self.spawn_in(&span).instrument(span.clone()).await?;
        let mut child = Child::new(pending, self.cfg.kill_on_drop, span);
        child.output_limit = self.cfg.output_limit;
        Ok(child)
    }

    /// The spawn's steps, in `span` (which gets the init's pid): clone, setup hook, exec.
    async fn spawn_in(&self, span: &tracing::Span) -> io::Result<Pending> {
        let prepared = prepare::prepare(&self.cfg)?;
        // To name the mount a failure of the view is about.
        let fs = prepared.spec.fs.clone();
        let mut pending = start(prepared).await?;
        span.record("pid", pending.pid);
        if let Some(hook) = self.cfg.hook.clone() {
            if let Some(pidfd) = pending.pidfd() {
                let ctx = SetupContext {
                    pid: pending.pid as u32,
                    pidfd: pidfd.as_fd(),
                };
                hook.setup(&ctx).await?;
                tracing::debug!("setup hook done");
            }
            let _ = pending.control(Control::Go);
        }
        match pending.recv().await? {
            Some(Report::Execed) => {}
            Some(Report::Failed(e)) => {
                let err = self.cfg.step_error(e, fs.as_ref());
                pending.reap().await;
                tracing::debug!(error = %err, "sandbox setup failed");
                return Err(err);
            }
            Some(Report::Exited { .. }) | None => {
                let what = pending.reap().await;
                tracing::debug!(init = %what, "sandbox init died during setup");
                return Err(Error::failed(
                    Step::Spawn,
                    io::ErrorKind::Other,
                    format!("the sandbox's init died during setup ({what})"),
                )
                .into());
            }
        }
        // `start` already said how the init was created (launcher or direct clone).
        tracing::debug!("sandbox command executed");
        Ok(pending)
    }

    /// Spawn, wait, and return the command's exact status. Stdin is `/dev/null` unless set;
    /// stdout and stderr are inherited unless set.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let mut sb = nsbox::Sandbox::new("sh");
    /// sb.args(["-c", "exit 3"]).namespaces(nsbox::Namespaces::all());
    /// assert_eq!(sb.status().await?.code(), Some(3));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn) and [`Child::wait`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the sandbox: with [`kill_on_drop`](Self::kill_on_drop) (the
    /// default) it is killed; either way its init is reaped in the background.
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut me = self.clone();
        if me.cfg.stdin.is_none() {
            me.cfg.stdin = Some(Stdio::null());
        }
        me.spawn().await?.wait().await
    }

    /// Spawn, collect stdout and stderr (piped unless set), and wait. Stdin is `/dev/null`
    /// unless set. Each stream keeps at most [`output_limit`](Self::output_limit) bytes (64 MiB
    /// by default; the rest is drained and dropped, and the [`Output`] says so). The
    /// [`Output`] also says whether the timeout fired and what the sandbox used.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// let mut sb = nsbox::Sandbox::new("sh");
    /// sb.args(["-c", "echo out; echo err >&2"]);
    /// let out = sb.output().await?;
    /// assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    /// assert!(!out.timed_out);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn) and [`Child::wait_with_output`].
    ///
    /// # Cancel safety
    ///
    /// As [`status`](Self::status); output read so far is lost.
    pub async fn output(&mut self) -> io::Result<Output> {
        let mut me = self.clone();
        me.cfg.stdin.get_or_insert_with(Stdio::null);
        me.cfg.stdout.get_or_insert_with(Stdio::piped);
        me.cfg.stderr.get_or_insert_with(Stdio::piped);
        me.spawn().await?.wait_with_output().await
    }

    /// The program.
    pub fn get_program(&self) -> &OsStr {
        &self.cfg.program
    }

    /// The arguments (without the program).
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.cfg.args.iter().map(OsString::as_os_str)
    }

    /// The environment changes made with [`env`](Self::env) and
    /// [`env_remove`](Self::env_remove): `None` for a removed variable.
    pub fn get_envs(&self) -> impl ExactSizeIterator<Item = (&OsStr, Option<&OsStr>)> {
        self.cfg
            .env
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_deref()))
    }

    /// The working directory, if set.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.cfg.cwd.as_deref()
    }

    /// The namespaces.
    pub fn get_namespaces(&self) -> &Namespaces {
        &self.cfg.namespaces
    }
}

/// Create the init: through the launcher when one runs (and the sandbox allows it), by a
/// direct clone otherwise.
pub(crate) async fn start(p: Prepared) -> io::Result<Pending> {
    let Prepared {
        spec,
        fds,
        kinds,
        use_launcher,
        report_r,
        control_w,
        parent_ends,
        child_ends,
        mut cgroup,
    } = p;
    let launched = if use_launcher {
        // The leaf's directory and cgroup.procs travel with the request too.
        let leaf: Vec<BorrowedFd<'_>> = cgroup
            .as_ref()
            .map(|l| l.borrowed_fds())
            .unwrap_or_default();
        launcher::launch(&spec, &fds, &child_ends, &leaf, &control_w).await
    } else {
        None
    };
    let (pid, pidfd) = match launched {
        Some(r) => {
            let (pid, pidfd) = r.map_err(|e| clone::clone_error(e, kinds))?;
            tracing::debug!(pid, "sandbox init created by the launcher");
            (pid, pidfd)
        }
        None => {
            let (pid, pidfd) =
                clone::clone_init(spec, &fds, 0).map_err(|e| clone::clone_error(e, kinds))?;
            tracing::debug!(pid, "sandbox init created by a direct clone");
            (pid, pidfd)
        }
    };
    // The child has its copies; close the parent's copies of the child's ends now.
    drop(child_ends);
    if let Some(leaf) = &mut cgroup {
        leaf.dir = None;
        leaf.procs = None;
    }
    let mut pending = Pending::new(pid, pidfd, report_r, control_w, parent_ends)?;
    pending.cgroup = cgroup;
    Ok(pending)
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>(_: T) {}
    let mut sb = Sandbox::new("true");
    is_send(async move { sb.spawn().await });
}

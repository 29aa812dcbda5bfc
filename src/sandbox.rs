//! Spawn mode: [`Sandbox`] creates a child in new namespaces from a running (multi-threaded)
//! tokio runtime, and [`Child`] resolves with the command's exact status.
//!
//! ```no_run
//! use std::time::Duration;
//! use nsbox::{Namespaces, Sandbox, Stdio};
//!
//! # async fn f() -> std::io::Result<()> {
//! let mut sb = Sandbox::new("sh");
//! sb.args(["-c", "echo hello from $(hostname)"])
//!     .namespaces(Namespaces::all().hostname("build"))
//!     .stdout(Stdio::piped())
//!     .timeout(Duration::from_secs(600));
//! let out = sb.output().await?;
//! assert!(out.status.success());
//! assert_eq!(out.stdout, b"hello from build\n");
//! # Ok(()) }
//! ```
//!
//! # The process tree
//!
//! ```text
//! orchestrator ── init (pid 1 of the new pid namespace; host pid = Child::id) ── PROGRAM
//! ```
//!
//! The init is created with clone3(2) and `CLONE_PIDFD` (clone(2) + pidfd_open(2) where
//! clone3 is missing), with the namespaces as clone flags, so the orchestrator never unshares
//! anything itself. It runs only async-signal-safe code (see `src/child/`), sets the
//! namespaces up, forks PROGRAM into its own process group, reaps every orphan, forwards
//! signals, reports PROGRAM's raw wait status on a pipe, and exits; with a pid namespace the
//! kernel then kills whatever is left. Without a pid namespace the init is a child subreaper
//! and kills what is left itself.
//!
//! The orchestrator waits only on its own pidfds (never `waitpid(-1)`), so `tokio::process`
//! children in the same process keep working.
//!
//! # Caveats
//!
//! - Dropping a [`Child`] (with [`kill_on_drop`](Sandbox::kill_on_drop), the default) kills the
//!   whole sandbox and reaps its init in the background.
//! - The terminal is not handed over in spawn mode: PROGRAM runs in its own process group,
//!   in the background of any terminal.
//! - Joining namespaces ([`Namespaces::join_path`]) happens inside the new user namespace, if
//!   one is created: joining a namespace owned by the host's user namespace then fails with
//!   EPERM. Join without a new user namespace, or use [`enter`](crate::enter()).

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use crate::child::init::{CTL_GO, CTL_KILL, CTL_SIGNAL, MSG_LEN, Msg, Spec, Step};
use crate::error::{Error, errno_of, invalid};
use crate::namespace::{JoinSource, Namespace, Namespaces, Propagation, join_error_for};
use crate::sys::Rusage;

/// The parent's end of a piped stdin.
pub type ChildStdin = pipe::Sender;
/// The parent's end of a piped stdout.
pub type ChildStdout = pipe::Receiver;
/// The parent's end of a piped stderr.
pub type ChildStderr = pipe::Receiver;

/// Where a standard stream of the sandboxed command goes.
#[derive(Clone, Debug, Default)]
pub struct Stdio(StdioKind);

#[derive(Clone, Debug, Default)]
enum StdioKind {
    #[default]
    Inherit,
    Null,
    Piped,
    Fd(Arc<OwnedFd>),
}

impl Stdio {
    /// The orchestrator's own stream.
    pub fn inherit() -> Self {
        Stdio(StdioKind::Inherit)
    }
    /// `/dev/null`.
    pub fn null() -> Self {
        Stdio(StdioKind::Null)
    }
    /// A pipe whose other end is in [`Child::stdin`], [`Child::stdout`] or [`Child::stderr`].
    pub fn piped() -> Self {
        Stdio(StdioKind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Self {
        Stdio(StdioKind::Fd(Arc::new(fd)))
    }
}

impl From<std::fs::File> for Stdio {
    fn from(f: std::fs::File) -> Self {
        Stdio::from(OwnedFd::from(f))
    }
}

/// What a [`SetupHook`] gets: the sandbox's init, stopped before it sets up its namespaces.
#[derive(Debug)]
pub struct SetupContext<'a> {
    /// The init's pid in the orchestrator's pid namespace.
    pub pid: u32,
    /// A pidfd of the init.
    pub pidfd: BorrowedFd<'a>,
}

/// Parent-side setup, run in the orchestrator after the sandbox's namespaces exist and
/// before the init writes id maps or sets anything up, while the init waits: write
/// multi-range id maps with newuidmap/newgidmap, move a network interface into the network
/// namespace, put the init into a cgroup.
///
/// An error aborts the spawn: the init is killed and reaped, and the error comes back from
/// [`Sandbox::spawn`].
#[async_trait::async_trait]
pub trait SetupHook: Send + Sync {
    /// Do the setup.
    async fn setup(&self, ctx: &SetupContext<'_>) -> io::Result<()>;

    /// Whether the hook writes the user namespace's uid and gid maps itself (then the init
    /// does not write its single-id default maps).
    fn writes_id_maps(&self) -> bool {
        false
    }
}

/// A [`SetupHook`] that writes multi-range id maps with newuidmap(1) and newgidmap(1), so an
/// unprivileged user's subordinate ids (from /etc/subuid, /etc/subgid) are usable inside.
#[derive(Clone, Debug)]
pub struct NewIdMaps {
    /// uid map lines.
    pub uid_maps: Vec<crate::idmap::IdMap>,
    /// gid map lines.
    pub gid_maps: Vec<crate::idmap::IdMap>,
}

#[async_trait::async_trait]
impl SetupHook for NewIdMaps {
    async fn setup(&self, ctx: &SetupContext<'_>) -> io::Result<()> {
        for (prog, maps) in [("newuidmap", &self.uid_maps), ("newgidmap", &self.gid_maps)] {
            let mut cmd = tokio::process::Command::new(prog);
            cmd.arg(ctx.pid.to_string());
            for m in maps {
                cmd.args([
                    m.inside.to_string(),
                    m.outside.to_string(),
                    m.count.to_string(),
                ]);
            }
            let out = cmd.output().await.map_err(|e| {
                Error::new(prog, None, errno_of(&e).unwrap_or(Errno::EIO))
                    .with_hint("install the uidmap package")
                    .into_io()
            })?;
            if !out.status.success() {
                return Err(Error::msg(
                    prog,
                    format!(
                        "{}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                )
                .with_hint("the ranges must be in /etc/subuid and /etc/subgid for this user")
                .into_io());
            }
        }
        Ok(())
    }

    fn writes_id_maps(&self) -> bool {
        true
    }
}

/// A builder for a sandboxed command, mirroring [`tokio::process::Command`].
///
/// Builders never fail: every problem (a NUL in an argument, a bad hostname, a missing
/// program) is reported by [`spawn`](Self::spawn).
#[derive(Clone)]
pub struct Sandbox {
    program: OsString,
    args: Vec<OsString>,
    env_clear: bool,
    env: BTreeMap<OsString, Option<OsString>>,
    cwd: Option<PathBuf>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    fds: Vec<(RawFd, Arc<OwnedFd>)>,
    kill_on_drop: bool,
    namespaces: Namespaces,
    timeout: Option<Duration>,
    kill_after: Duration,
    die_with_parent: bool,
    wait_all: bool,
    no_new_privs: bool,
    hook: Option<Arc<dyn SetupHook>>,
    use_launcher: bool,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("namespaces", &self.namespaces)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox that runs `program` (looked up in the sandbox's `PATH` if it has no slash).
    /// It creates no namespace until [`namespaces`](Self::namespaces) says which.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Sandbox {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env_clear: false,
            env: BTreeMap::new(),
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            fds: Vec::new(),
            kill_on_drop: true,
            namespaces: Namespaces::new(),
            timeout: None,
            kill_after: Duration::from_secs(5),
            die_with_parent: true,
            wait_all: false,
            no_new_privs: false,
            hook: None,
            use_launcher: true,
        }
    }

    /// Add an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }
    /// Add arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    /// Set an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
        self.env
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
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }
    /// Start from an empty environment.
    pub fn env_clear(&mut self) -> &mut Self {
        self.env_clear = true;
        self.env.clear();
        self
    }
    /// The command's working directory (inside the sandbox's mount namespace).
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }
    /// The command's stdin.
    pub fn stdin(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.stdin = Some(s.into());
        self
    }
    /// The command's stdout.
    pub fn stdout(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.stdout = Some(s.into());
        self
    }
    /// The command's stderr.
    pub fn stderr(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.stderr = Some(s.into());
        self
    }
    /// Give the command `fd` as fd number `target` (3 or more). Nothing else is inherited.
    pub fn pass_fd(&mut self, target: RawFd, fd: impl Into<OwnedFd>) -> &mut Self {
        self.fds.push((target, Arc::new(fd.into())));
        self
    }
    /// Kill the whole sandbox when the [`Child`] is dropped (default true).
    pub fn kill_on_drop(&mut self, on: bool) -> &mut Self {
        self.kill_on_drop = on;
        self
    }
    /// The namespaces to create or join.
    pub fn namespaces(&mut self, ns: Namespaces) -> &mut Self {
        self.namespaces = ns;
        self
    }
    /// After `limit` from the spawn, send SIGTERM to the command, and SIGKILL to the whole
    /// sandbox [`kill_after`](Self::kill_after) later. Enforced by the init itself, whether or
    /// not the child is being waited for. [`Child::timed_out`] tells afterwards.
    pub fn timeout(&mut self, limit: Duration) -> &mut Self {
        self.timeout = Some(limit);
        self
    }
    /// The grace between the timeout's SIGTERM and SIGKILL (default 5 s).
    pub fn kill_after(&mut self, grace: Duration) -> &mut Self {
        self.kill_after = grace;
        self
    }
    /// Kill the sandbox when the orchestrator process dies (default true). Watches the process,
    /// not the spawning thread (see DESIGN.md on PR_SET_PDEATHSIG).
    pub fn die_with_parent(&mut self, on: bool) -> &mut Self {
        self.die_with_parent = on;
        self
    }
    /// When the command ends, wait for every other process of the sandbox instead of killing
    /// them.
    pub fn wait_all(&mut self, on: bool) -> &mut Self {
        self.wait_all = on;
        self
    }
    /// Set `PR_SET_NO_NEW_PRIVS` for the command: execve never grants privileges (setuid bits
    /// and file capabilities are ignored).
    pub fn no_new_privs(&mut self, on: bool) -> &mut Self {
        self.no_new_privs = on;
        self
    }
    /// Create this sandbox through the launcher when one was started with
    /// [`launcher::start`](crate::launcher::start) (default true); false forces a direct clone
    /// from this process.
    pub fn use_launcher(&mut self, on: bool) -> &mut Self {
        self.use_launcher = on;
        self
    }
    /// Run `hook` in the orchestrator after the namespaces exist and before the command runs.
    pub fn setup_hook(&mut self, hook: Arc<dyn SetupHook>) -> &mut Self {
        self.hook = Some(hook);
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
        let prepared = self.prepare()?;
        let mut pending = start(prepared).await?;
        if let Some(hook) = self.hook.clone() {
            if let Some(pidfd) = &pending.pidfd {
                let ctx = SetupContext {
                    pid: pending.pid.as_raw() as u32,
                    pidfd: pidfd.get_ref().as_fd(),
                };
                hook.setup(&ctx).await?;
            }
            pending.control_send([CTL_GO, 0]);
        }
        match pending.next_msg().await? {
            Some(Msg::Execed) => {}
            Some(Msg::Error {
                step,
                errno,
                detail,
            }) => {
                let err = self.child_error(step, errno, detail);
                pending.reap().await;
                return Err(err);
            }
            Some(Msg::Exited { .. }) | None => {
                let what = pending.reap().await;
                return Err(Error::msg(
                    "spawn",
                    format!("the sandbox's init died during setup ({what})"),
                )
                .into_io());
            }
        }
        // `start` already said how the init was created (launcher or direct clone).
        tracing::debug!(pid = pending.pid.as_raw(), "sandbox command executed");
        Ok(pending.into_child(self.kill_on_drop))
    }

    /// Spawn, wait, and return the status. Stdin is null unless set.
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut me = self.clone();
        if me.stdin.is_none() {
            me.stdin = Some(Stdio::null());
        }
        me.spawn().await?.wait().await
    }

    /// Spawn, collect stdout and stderr (piped unless set), wait. Stdin is null unless set.
    pub async fn output(&mut self) -> io::Result<Output> {
        let mut me = self.clone();
        me.stdin.get_or_insert_with(Stdio::null);
        me.stdout.get_or_insert_with(Stdio::piped);
        me.stderr.get_or_insert_with(Stdio::piped);
        me.spawn().await?.wait_with_output().await
    }

    fn child_error(&self, step: u32, errno: i32, detail: i32) -> io::Error {
        let errno = Errno::from_raw(errno);
        let Some(step) = Step::from_u32(step) else {
            return Error::new(format!("sandbox setup step {step}"), None, errno).into_io();
        };
        let ns = &self.namespaces;
        let e = |s: &'static str, p: Option<&Path>| Error::new(s, p, errno);
        match step {
            Step::Exec => {
                let mut err = e("exec", Some(Path::new(&self.program)));
                if errno == Errno::ENOENT {
                    err = err.with_hint("no such program at that path or on the sandbox's PATH");
                }
                err.into_io()
            }
            Step::Chdir => e("chdir", self.cwd.as_deref()).into_io(),
            Step::Join => {
                let j = ns.joins.get(detail.max(0) as usize);
                let path = j.and_then(|j| match &j.source {
                    JoinSource::Path(p) => Some(p.clone()),
                    _ => None,
                });
                join_error_for(j.and_then(|j| j.kind), path.as_deref(), errno)
            }
            Step::UidMap => e("write", Some(Path::new("/proc/self/uid_map"))).into_io(),
            Step::GidMap => e("write", Some(Path::new("/proc/self/gid_map"))).into_io(),
            Step::Setgroups => e("write", Some(Path::new("/proc/self/setgroups"))).into_io(),
            Step::MakeRoot => e("make / recursively slave/private", None).into_io(),
            Step::MountProc => e("mount proc on", Some(Path::new("/proc"))).into_io(),
            Step::LockMounts => {
                e("lock the mounts (nested user and mount namespace)", None).into_io()
            }
            Step::Sethostname => e("sethostname", None).into_io(),
            Step::Setdomainname => e("setdomainname", None).into_io(),
            Step::Loopback => e("bring loopback up (SIOCSIFFLAGS lo)", None).into_io(),
            Step::NoNewPrivs => e("prctl PR_SET_NO_NEW_PRIVS", None).into_io(),
            Step::Fds => e("arrange file descriptors", None).into_io(),
            Step::WaitGo => e("wait for the setup hook", None).into_io(),
            Step::Signalfd => e("signalfd", None).into_io(),
            Step::ExecPipe => e("pipe", None).into_io(),
            Step::Fork => e("fork the command", None).into_io(),
            Step::Subreaper => e("prctl PR_SET_CHILD_SUBREAPER", None).into_io(),
        }
    }

    /// Build everything the child needs: checked input, C strings, fds.
    fn prepare(&self) -> io::Result<Prepared> {
        let ns = &self.namespaces;
        ns.validate()?;
        let cstr = |what: &'static str, s: &OsStr| {
            CString::new(s.as_bytes())
                .map_err(|_| invalid(what, format!("{s:?} contains a NUL byte")))
        };
        if self.program.is_empty() {
            return Err(invalid("exec", "the program name is empty"));
        }
        let program = cstr("exec", &self.program)?;
        let mut argv_owned = vec![program.clone()];
        for a in &self.args {
            argv_owned.push(cstr("argument", a)?);
        }
        // The environment the command will see.
        let mut env: BTreeMap<OsString, OsString> = if self.env_clear {
            BTreeMap::new()
        } else {
            std::env::vars_os().collect()
        };
        for (k, v) in &self.env {
            match v {
                Some(v) => {
                    env.insert(k.clone(), v.clone());
                }
                None => {
                    env.remove(k);
                }
            }
        }
        let mut envp_owned = Vec::with_capacity(env.len());
        for (k, v) in &env {
            if k.is_empty() || k.as_bytes().contains(&b'=') {
                return Err(invalid(
                    "environment",
                    format!("invalid variable name {k:?}"),
                ));
            }
            let mut kv = k.clone().into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envp_owned.push(CString::new(kv).map_err(|_| {
                invalid("environment", format!("variable {k:?} contains a NUL byte"))
            })?);
        }
        // Executable lookup, prepared here so the child only tries execve in order.
        let exec_paths = if self.program.as_bytes().contains(&b'/') {
            vec![program]
        } else {
            let Some(path) = env.get(OsStr::new("PATH")) else {
                return Err(Error::msg(
                    "exec",
                    format!(
                        "{:?} has no slash and PATH is not set in the sandbox's environment",
                        self.program
                    ),
                )
                .with_hint("set PATH with Sandbox::env, or give the program's full path")
                .into_io());
            };
            let mut v = Vec::new();
            for dir in path.as_bytes().split(|b| *b == b':') {
                let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
                let mut full = dir.to_vec();
                full.push(b'/');
                full.extend_from_slice(self.program.as_bytes());
                v.push(CString::new(full).map_err(|_| invalid("PATH", "contains a NUL byte"))?);
            }
            v
        };
        let cwd = match &self.cwd {
            Some(d) => Some(cstr("current_dir", d.as_os_str())?),
            None => None,
        };

        let kinds = ns.kinds;
        let userns = kinds.contains(Namespace::User);
        let external_maps = self.hook.as_ref().is_some_and(|h| h.writes_id_maps());
        let (uid_map, gid_map) = if userns && !external_maps {
            let (uid, gid) = (
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            );
            (
                Some(format!("{} {uid} 1\n", ns.uid_inside).into_bytes()),
                Some(format!("{} {gid} 1\n", ns.gid_inside).into_bytes()),
            )
        } else {
            (None, None)
        };

        // Fds: own (report, control, joins) and the command's (stdio, passed).
        let pipe = |what: &'static str| {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| Error::new(what, None, e).into_io())
        };
        let (report_r, report_w) = pipe("pipe (report)")?;
        let (control_r, control_w) = pipe("pipe (control)")?;
        // Our end never blocks an async caller: a stuck init with a full pipe gives EAGAIN
        // (then start_kill falls back to SIGKILL through the pidfd). The init's end stays
        // blocking.
        nix::fcntl::fcntl(
            &control_w,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(|e| Error::new("fcntl O_NONBLOCK (control pipe)", None, e).into_io())?;
        let mut join_fds = Vec::new();
        let mut joins = Vec::new();
        for j in &ns.joins {
            let nstype = j.kind.map_or(0, |k| k.clone_flag().bits());
            let fd = match &j.source {
                JoinSource::Path(p) => Arc::new(crate::namespace::open_namespace(p, j.kind)?),
                JoinSource::Fd(fd) => fd.clone(),
                JoinSource::Pidfd(fd, kinds) => {
                    joins.push((fd.as_raw_fd(), kinds.clone_flags().bits()));
                    join_fds.push(fd.clone());
                    continue;
                }
            };
            joins.push((fd.as_raw_fd(), nstype));
            join_fds.push(fd);
        }

        let mut parent_ends = ParentEnds::default();
        let mut held: Vec<Arc<OwnedFd>> = Vec::new();
        let mut moves = Vec::new();
        for (target, cfg) in [(0, &self.stdin), (1, &self.stdout), (2, &self.stderr)] {
            let src: RawFd = match cfg.as_ref().map(|s| &s.0).unwrap_or(&StdioKind::Inherit) {
                StdioKind::Inherit => target,
                StdioKind::Null => {
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open("/dev/null")
                        .map_err(|e| {
                            Error::new(
                                "open",
                                Some(Path::new("/dev/null")),
                                errno_of(&e).unwrap_or(Errno::EIO),
                            )
                            .into_io()
                        })?;
                    let fd = Arc::new(OwnedFd::from(f));
                    let raw = fd.as_raw_fd();
                    held.push(fd);
                    raw
                }
                StdioKind::Piped => {
                    let (r, w) = pipe("pipe (stdio)")?;
                    let (child_end, parent_end) = if target == 0 { (r, w) } else { (w, r) };
                    let raw = child_end.as_raw_fd();
                    held.push(Arc::new(child_end));
                    match target {
                        0 => parent_ends.stdin = Some(pipe::Sender::from_owned_fd(parent_end)?),
                        1 => parent_ends.stdout = Some(pipe::Receiver::from_owned_fd(parent_end)?),
                        _ => parent_ends.stderr = Some(pipe::Receiver::from_owned_fd(parent_end)?),
                    }
                    raw
                }
                StdioKind::Fd(fd) => {
                    held.push(fd.clone());
                    fd.as_raw_fd()
                }
            };
            moves.push((src, target));
        }
        for (target, fd) in &self.fds {
            if *target < 3 {
                return Err(invalid(
                    "pass_fd",
                    format!("target fd {target} is a standard stream; use stdin/stdout/stderr"),
                ));
            }
            if moves.iter().any(|(_, t)| t == target) {
                return Err(invalid(
                    "pass_fd",
                    format!("target fd {target} given twice"),
                ));
            }
            moves.push((fd.as_raw_fd(), *target));
        }
        let mount_ns = kinds.contains(Namespace::Mount);
        let spec = Spec {
            flags: kinds.clone_flags().bits() as u64,
            argv: argv_owned,
            envp: envp_owned,
            exec_paths,
            cwd,
            hostname: ns.hostname.as_ref().map(|h| h.as_bytes().to_vec()),
            domainname: ns.domainname.as_ref().map(|h| h.as_bytes().to_vec()),
            uid_map,
            gid_map,
            // c_ulong is u64 on every 64-bit Linux target.
            root_propagation: mount_ns.then_some(
                libc::MS_REC
                    | match ns.propagation {
                        Propagation::Slave => libc::MS_SLAVE,
                        Propagation::Private => libc::MS_PRIVATE,
                    },
            ),
            mount_proc: mount_ns && kinds.contains(Namespace::Pid) && ns.mount_proc,
            lock_mounts: ns.lock_mounts,
            net: kinds.contains(Namespace::Net),
            pidns: kinds.contains(Namespace::Pid),
            join_types: joins.iter().map(|(_, t)| *t).collect(),
            targets: moves.iter().map(|(_, t)| *t).collect(),
            wait_for_go: self.hook.is_some(),
            die_with_parent: self.die_with_parent,
            wait_all: self.wait_all,
            no_new_privs: self.no_new_privs,
            timeout_ms: self
                .timeout
                .map(|t| t.as_millis().min(u64::MAX as u128) as u64),
            grace_ms: self.kill_after.as_millis().min(u64::MAX as u128) as u64,
        };
        let mut fds = vec![report_w.as_raw_fd(), control_r.as_raw_fd()];
        fds.extend(joins.iter().map(|(fd, _)| *fd));
        fds.extend(moves.iter().map(|(src, _)| *src));
        Ok(Prepared {
            spec,
            fds,
            kinds,
            use_launcher: self.use_launcher,
            report_r,
            report_w,
            control_r,
            control_w,
            parent_ends,
            _held: (held, join_fds),
        })
    }
}

#[derive(Default)]
struct ParentEnds {
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
}

/// Everything prepared for one clone.
struct Prepared {
    spec: Spec,
    /// The fds that go with the spec, in [`Plan::new`]'s order; borrowed from the fields below.
    fds: Vec<RawFd>,
    kinds: crate::namespace::NamespaceSet,
    use_launcher: bool,
    report_r: OwnedFd,
    report_w: OwnedFd,
    control_r: OwnedFd,
    control_w: OwnedFd,
    parent_ends: ParentEnds,
    _held: (Vec<Arc<OwnedFd>>, Vec<Arc<OwnedFd>>),
}

/// Create the init: through the launcher when one runs (and the sandbox allows it), by a
/// direct clone otherwise.
async fn start(p: Prepared) -> io::Result<Pending> {
    let Prepared {
        spec,
        fds,
        kinds,
        use_launcher,
        report_r,
        report_w,
        control_r,
        control_w,
        parent_ends,
        _held,
    } = p;
    let launched = if use_launcher {
        crate::launcher::launch(&spec, &fds, &control_w).await
    } else {
        None
    };
    let (pid, pidfd) = match launched {
        Some(r) => {
            let (pid, pidfd) = r.map_err(|e| clone_error(e, kinds))?;
            tracing::debug!(pid = pid.as_raw(), "sandbox init created by the launcher");
            (pid, pidfd)
        }
        None => {
            let (pid, pidfd) =
                crate::child::clone_init(spec, &fds, 0).map_err(|e| clone_error(e, kinds))?;
            tracing::debug!(pid = pid.as_raw(), "sandbox init created by a direct clone");
            (pid, pidfd)
        }
    };
    // The child has its copies; close the parent's copies of the child's ends now.
    drop((report_w, control_r, _held));
    let pidfd = crate::sys::async_fd(pidfd)?;
    let report = pipe::Receiver::from_owned_fd(report_r)?;
    Ok(Pending {
        pid,
        pidfd: Some(pidfd),
        report,
        control: Some(control_w),
        buf: [0; MSG_LEN],
        filled: 0,
        ends: parent_ends,
        exited: None,
    })
}

/// The error for a failed clone, naming the namespaces and the likely culprit.
fn clone_error(e: io::Error, kinds: crate::namespace::NamespaceSet) -> io::Error {
    if Error::from_io(&e).is_some() {
        return e;
    }
    let errno = errno_of(&e).unwrap_or(Errno::EIO);
    if kinds.is_empty() {
        return Error::new("clone3", None, errno).into_io();
    }
    // The user namespace is the usual culprit when it is asked for; else the first kind.
    let culprit = if kinds.contains(Namespace::User) {
        Namespace::User
    } else {
        kinds.iter().next().unwrap_or(Namespace::Mount)
    };
    let mut err = Error::new(format!("clone3 with new {kinds} namespaces"), None, errno);
    let hint = match errno {
        // A limit: clone3 does not say which kind hit its own, so name every kind's sysctl
        // (blaming the user namespace sent people to the wrong one).
        Errno::ENOSPC | Errno::EUSERS if kinds.iter().count() > 1 => Some(format!(
            "the limit of one of these kinds of namespaces was reached: see {}",
            kinds
                .iter()
                .map(|k| format!(
                    "/proc/sys/user/max_{}_namespaces",
                    match k {
                        Namespace::Mount => "mnt",
                        k => k.proc_name(),
                    }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => crate::namespace::unshare_hint(culprit, errno),
    };
    if let Some(hint) = hint {
        err = err.with_hint(hint);
    }
    err.into_io()
}

/// A sandbox whose init runs; kills and reaps it on drop unless handed to a [`Child`].
struct Pending {
    pid: Pid,
    pidfd: Option<AsyncFd<OwnedFd>>,
    report: pipe::Receiver,
    control: Option<OwnedFd>,
    buf: [u8; MSG_LEN],
    filled: usize,
    ends: ParentEnds,
    exited: Option<(i32, Rusage)>,
}

impl Pending {
    fn control_send(&self, msg: [u8; 2]) -> bool {
        match &self.control {
            Some(c) => nix::unistd::write(c, &msg).is_ok(),
            None => false,
        }
    }

    /// The next message from the init; `None` at EOF (the init is gone). Cancel safe: a
    /// partial message stays in the buffer.
    async fn next_msg(&mut self) -> io::Result<Option<Msg>> {
        loop {
            if self.filled == MSG_LEN {
                self.filled = 0;
                return Ok(Msg::decode(&self.buf));
            }
            let n = self.report.read(&mut self.buf[self.filled..]).await?;
            if n == 0 {
                return Ok(None);
            }
            self.filled += n;
        }
    }

    /// Wait for the init to exit and reap it. Returns how it ended, for messages.
    async fn reap(&mut self) -> String {
        match self.wait_init().await {
            Ok((raw, _)) => format!("{}", ExitStatus::from_raw(raw)),
            Err(e) => format!("{e}"),
        }
    }

    async fn wait_init(&mut self) -> io::Result<(i32, Rusage)> {
        if let Some(done) = self.exited {
            return Ok(done);
        }
        let Some(pidfd) = &self.pidfd else {
            return Err(invalid("wait", "the sandbox was already reaped"));
        };
        loop {
            if let Some(done) = crate::sys::waitid_pidfd(pidfd.get_ref().as_fd(), true)? {
                self.exited = Some(done);
                self.control = None;
                return Ok(done);
            }
            let mut guard = pidfd.readable().await?;
            guard.clear_ready();
        }
    }

    fn into_child(mut self, kill_on_drop: bool) -> Child {
        let ends = std::mem::take(&mut self.ends);
        Child {
            pid: self.pid,
            stdin: ends.stdin,
            stdout: ends.stdout,
            stderr: ends.stderr,
            inner: self,
            kill_on_drop,
            command_status: None,
            timed_out: false,
            report_eof: false,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.exited.is_some() {
            return;
        }
        // Ask the init to kill everything, then let go of the control pipe; the init also
        // takes EOF as "kill" when it watches the parent.
        self.control_send([CTL_KILL, 0]);
        self.control = None;
        if let Some(pidfd) = self.pidfd.take() {
            reap_in_background(pidfd, None);
        }
    }
}

/// Reap a sandbox's init without blocking the caller: a task when a runtime is there, a
/// thread otherwise, and a thread too when the runtime shuts down before the init has
/// exited (the task is dropped then; without the hand-over the init would stay a zombie).
/// `keep` (the control pipe of a sandbox left running) stays open until the init is reaped.
pub(crate) fn reap_in_background(pidfd: AsyncFd<OwnedFd>, keep: Option<OwnedFd>) {
    /// Owns the pidfd while a task reaps; dropped before the init is reaped (no runtime, or
    /// the task cancelled by a runtime shutdown), it hands the blocking wait to a thread.
    struct Reaper {
        pidfd: Option<AsyncFd<OwnedFd>>,
        keep: Option<OwnedFd>,
    }
    impl Drop for Reaper {
        fn drop(&mut self) {
            if let Some(pidfd) = self.pidfd.take() {
                let fd = pidfd.into_inner();
                let keep = self.keep.take();
                std::thread::spawn(move || {
                    let _keep = keep;
                    let _ = crate::sys::waitid_pidfd(fd.as_fd(), false);
                });
            }
        }
    }
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
                    // Reaped (or not ours to reap): nothing left for a thread to do.
                    drop(reaper.pidfd.take());
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

/// A running sandbox. See the [module docs](self).
pub struct Child {
    pid: Pid,
    inner: Pending,
    kill_on_drop: bool,
    command_status: Option<i32>,
    timed_out: bool,
    report_eof: bool,
    /// The command's stdin, when piped.
    pub stdin: Option<ChildStdin>,
    /// The command's stdout, when piped.
    pub stdout: Option<ChildStdout>,
    /// The command's stderr, when piped.
    pub stderr: Option<ChildStderr>,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Child {
    /// The host pid of the sandbox's init (pid 1 inside).
    pub fn id(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// A pidfd of the sandbox's init; `None` once it has been reaped.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        if self.inner.exited.is_some() {
            return None;
        }
        self.inner.pidfd.as_ref().map(|p| p.get_ref().as_fd())
    }

    /// Send `sig` to the command (through its init). A no-op once the command has ended.
    ///
    /// # Errors
    ///
    /// InvalidInput for a signal number outside 1..=64; BrokenPipe when the sandbox is gone.
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        if !(1..=64).contains(&sig) {
            return Err(invalid("signal", format!("{sig} is not a signal number")));
        }
        if self.inner.exited.is_some() {
            return Ok(());
        }
        let Some(c) = &self.inner.control else {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        };
        nix::unistd::write(c, &[CTL_SIGNAL, sig as u8])
            .map(|_| ())
            .map_err(|e| Error::new("signal the sandbox", None, e).into_io())
    }

    /// Kill the command and everything else in the sandbox with SIGKILL (the status then says
    /// so). Does not wait; call [`wait`](Self::wait) for that.
    pub fn start_kill(&mut self) -> io::Result<()> {
        if self.inner.exited.is_some() {
            return Ok(());
        }
        if !self.inner.control_send([CTL_KILL, 0]) {
            // The init does not listen any more: kill it (with a pid namespace this kills
            // everything inside too).
            if let Some(pidfd) = &self.inner.pidfd {
                crate::sys::pidfd_send_signal(pidfd.get_ref().as_fd(), libc::SIGKILL)?;
            }
        }
        Ok(())
    }

    /// Kill the sandbox and wait for it.
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(|_| ())
    }

    /// Wait until the sandbox has ended; the command's exact exit status. Closes stdin first.
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
        while self.command_status.is_none() && !self.report_eof {
            match self.inner.next_msg().await? {
                Some(Msg::Exited { raw, timed_out }) => {
                    self.command_status = Some(raw);
                    self.timed_out = timed_out;
                }
                Some(_) => {}
                None => self.report_eof = true,
            }
        }
        let (init_raw, _) = self.inner.wait_init().await?;
        self.result(init_raw)
    }

    fn result(&self, init_raw: i32) -> io::Result<ExitStatus> {
        match self.command_status {
            Some(raw) => Ok(ExitStatus::from_raw(raw)),
            None => Err(Error::msg(
                "wait",
                format!(
                    "the sandbox's init (pid {}) died ({}) before reporting the command's status",
                    self.pid,
                    ExitStatus::from_raw(init_raw)
                ),
            )
            .with_hint("something outside killed the init; the command was killed with it")
            .into_io()),
        }
    }

    /// The status if the sandbox has ended, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some((raw, _)) = self.inner.exited {
            return self.result(raw).map(Some);
        }
        let Some(pidfd) = &self.inner.pidfd else {
            return Ok(None);
        };
        let Some(done) = crate::sys::waitid_pidfd(pidfd.get_ref().as_fd(), true)? else {
            return Ok(None);
        };
        self.inner.exited = Some(done);
        self.inner.control = None;
        // The init has exited: its report is complete in the pipe. Read it with read(2)
        // itself, not tokio's try_read, which trusts a readiness cache that a cancelled wait()
        // may have left cleared (it would see nothing and report a dead init).
        while self.command_status.is_none() {
            let mut buf = [0u8; MSG_LEN];
            let rest = MSG_LEN - self.inner.filled;
            match nix::unistd::read(self.inner.report.as_fd(), &mut buf[..rest]) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let f = self.inner.filled;
                    self.inner.buf[f..f + n].copy_from_slice(&buf[..n]);
                    self.inner.filled += n;
                    if self.inner.filled == MSG_LEN {
                        self.inner.filled = 0;
                        if let Some(Msg::Exited { raw, timed_out }) = Msg::decode(&self.inner.buf) {
                            self.command_status = Some(raw);
                            self.timed_out = timed_out;
                        }
                    }
                }
            }
        }
        self.result(done.0).map(Some)
    }

    /// Wait, collecting piped stdout and stderr.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        async fn read_all(r: Option<pipe::Receiver>) -> io::Result<Vec<u8>> {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                r.read_to_end(&mut v).await?;
            }
            Ok(v)
        }
        let (out, err) = (self.stdout.take(), self.stderr.take());
        let (status, stdout, stderr) = tokio::try_join!(self.wait(), read_all(out), read_all(err))?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Resource usage of the whole sandbox (the init and every process it reaped), once it
    /// has ended.
    pub fn resource_usage(&self) -> Option<Rusage> {
        self.inner.exited.map(|(_, ru)| ru)
    }

    /// Whether the sandbox's timeout fired.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.kill_on_drop && self.inner.exited.is_none() {
            // Let it run; reap it in the background when it ends. The control pipe closes,
            // which the init reads as "the parent is gone" only with die-with-parent... so
            // keep the write end open inside the reaper until the init exits.
            let control = self.inner.control.take();
            if let Some(pidfd) = self.inner.pidfd.take() {
                reap_in_background(pidfd, control);
            }
            self.inner.exited = Some((0, Rusage::default()));
        }
        // Otherwise Pending's Drop kills and reaps.
    }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>(_: T) {}
    let mut sb = Sandbox::new("true");
    is_send(async move { sb.spawn().await });
}

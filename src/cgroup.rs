//! cgroup v2: a leaf of its own for each sandbox ([`Cgroup`], given to
//! [`Sandbox::cgroup`](crate::Sandbox::cgroup)), its limits, and what the kernel accounted
//! for the whole tree in it ([`CgroupStats`]).
//!
//! All of this runs in the orchestrator (plain std file calls): the leaf is made and its
//! limits written before the clone, the init is created in it (clone3 `CLONE_INTO_CGROUP`;
//! where that is missing the init writes itself into the leaf's `cgroup.procs`, opened here,
//! before it forks the command), and when the init has been reaped the leaf's statistics
//! are read, `cgroup.kill` ends whatever is left and the leaf is removed.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::steps::Step;

/// Where and with which limits a sandbox gets its cgroup v2 leaf. Each sandbox gets a leaf
/// of its own, `PARENT/nsbox-PID-N`, made at spawn and removed when the sandbox has ended.
///
/// A limit whose controller is not enabled for the parent's children (its
/// `cgroup.subtree_control`) cannot be applied: that is an error by default, whose hint says
/// what is missing; with [`best_effort`](Self::best_effort) the sandbox runs without it and
/// [`Child::unapplied_limits`](crate::Child::unapplied_limits) names it.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let mut cg = nsbox::Cgroup::under("/sys/fs/cgroup/build.slice/actions");
/// cg.memory_max(2 << 30).pids_max(512).cpu_max(200_000, 100_000);
/// let mut sb = nsbox::Sandbox::new("make");
/// sb.cgroup(cg);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cgroup {
    parent: Option<PathBuf>,
    /// (file, value) pairs, in the order given; one per file.
    limits: Vec<(&'static str, String)>,
    best_effort: bool,
    enable_controllers: bool,
}

impl Cgroup {
    /// Leaves under the process's own cgroup v2 (from `/proc/self/cgroup` and the cgroup2
    /// mount), which must be writable by this user (delegated).
    pub fn detect() -> Cgroup {
        Cgroup::default()
    }

    /// Leaves under `parent`, a directory of a cgroup v2 hierarchy.
    pub fn under(parent: impl AsRef<Path>) -> Cgroup {
        Cgroup {
            parent: Some(parent.as_ref().to_owned()),
            ..Cgroup::default()
        }
    }

    fn set(&mut self, file: &'static str, value: String) -> &mut Self {
        self.limits.retain(|(f, _)| *f != file);
        self.limits.push((file, value));
        self
    }

    /// `memory.max`: the hard memory limit in bytes; beyond it the OOM killer acts inside
    /// the leaf ([`EndReason::OutOfMemory`](crate::EndReason::OutOfMemory)).
    pub fn memory_max(&mut self, bytes: u64) -> &mut Self {
        self.set("memory.max", bytes.to_string())
    }
    /// `memory.swap.max`: swap in bytes (0: none).
    pub fn memory_swap_max(&mut self, bytes: u64) -> &mut Self {
        self.set("memory.swap.max", bytes.to_string())
    }
    /// `memory.high`: the throttling threshold in bytes.
    pub fn memory_high(&mut self, bytes: u64) -> &mut Self {
        self.set("memory.high", bytes.to_string())
    }
    /// `pids.max`: the most processes and threads in the leaf; a fork beyond fails with
    /// EAGAIN ([`EndReason::ProcessLimit`](crate::EndReason::ProcessLimit)).
    pub fn pids_max(&mut self, n: u64) -> &mut Self {
        self.set("pids.max", n.to_string())
    }
    /// `cpu.max`: at most `quota_us` of CPU time per `period_us`.
    pub fn cpu_max(&mut self, quota_us: u64, period_us: u64) -> &mut Self {
        self.set("cpu.max", format!("{quota_us} {period_us}"))
    }
    /// `cpu.weight`: the share of CPU against siblings (1 to 10000, default 100).
    pub fn cpu_weight(&mut self, weight: u64) -> &mut Self {
        self.set("cpu.weight", weight.to_string())
    }
    /// `io.max`: one line as the kernel takes it, `MAJ:MIN rbps=N wbps=N riops=N wiops=N`.
    pub fn io_max(&mut self, line: impl Into<String>) -> &mut Self {
        self.set("io.max", line.into())
    }
    /// Let nsbox manage the parent (default false): enable in its `cgroup.subtree_control`
    /// the controllers the limits need that its `cgroup.controllers` offers, and before that,
    /// when this very process lives in the parent (a delegated scope it was started in, say),
    /// move it into a leaf of its own, `PARENT/nsbox-orchestrator-PID`, as nsjail and Bazel
    /// do: the no-internal-processes rule forbids controllers for the children of a cgroup
    /// with processes in it (but the hierarchy's root, which is never left). The move is of
    /// the whole process (every thread) and stays; other processes in the parent make the
    /// enabling fail (EBUSY, with a hint). Nothing is moved when a limit's controller is not
    /// offered at all (that is an error, or best effort, first).
    pub fn enable_controllers(&mut self, on: bool) -> &mut Self {
        self.enable_controllers = on;
        self
    }
    /// Run without the limits that cannot be applied instead of failing (default false).
    pub fn best_effort(&mut self, on: bool) -> &mut Self {
        self.best_effort = on;
        self
    }
}

/// What the cgroup v2 leaf accounted for the whole sandbox (every process that was ever in
/// it, those killed at the end included), read when the sandbox ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// cpu.stat `usage_usec`.
    pub cpu_usage: Duration,
    /// cpu.stat `user_usec`.
    pub cpu_user: Duration,
    /// cpu.stat `system_usec`.
    pub cpu_system: Duration,
    /// memory.peak, in bytes (with the memory controller, Linux 5.19 and later): the most
    /// memory charged to the leaf at once, page cache included.
    pub memory_peak: Option<u64>,
    /// memory.events `oom`: times the leaf hit memory.max.
    pub oom: u64,
    /// memory.events `oom_kill`: processes the OOM killer killed in the leaf.
    pub oom_kill: u64,
    /// pids.peak (with the pids controller, Linux 6.1 and later).
    pub pids_peak: Option<u64>,
    /// pids.events `max`: forks refused at pids.max.
    pub pids_max_hits: u64,
}

/// The controller a limit file needs.
fn controller(file: &str) -> &str {
    file.split('.').next().unwrap_or(file)
}

/// The cgroup2 mount point, from /proc/self/mountinfo.
fn v2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(pre.split_whitespace().nth(4)?))
    })
}

/// This process's own cgroup v2 directory.
fn own_cgroup() -> io::Result<PathBuf> {
    let hint = "this host has no cgroup v2 hierarchy (a cgroup v1 host): nsbox's cgroup \
                limits need cgroup v2; rlimits (Sandbox::rlimit) work everywhere";
    let mount = v2_mount().ok_or_else(|| {
        Error::failed(
            Step::Cgroup,
            io::ErrorKind::NotFound,
            "no cgroup2 filesystem is mounted",
        )
        .with_hint(hint)
    })?;
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| Error::from_std(Step::Cgroup, &e).with_path("/proc/self/cgroup"))?;
    let rel = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| {
            Error::failed(
                Step::Cgroup,
                io::ErrorKind::NotFound,
                "/proc/self/cgroup has no cgroup v2 line",
            )
            .with_hint(hint)
        })?;
    Ok(mount.join(rel.trim_start_matches('/')))
}

fn read(path: &Path) -> io::Result<String> {
    fs::read_to_string(path).map_err(|e| Error::from_std(Step::Cgroup, &e).with_path(path).into())
}

/// `key value` lines (cpu.stat, memory.events, pids.events, cgroup.events).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The hint for a limit whose controller is missing.
fn missing_hint(parent: &Path, ctl: &str, available: &str) -> String {
    if available.split_whitespace().any(|c| c == ctl) {
        format!(
            "enable it for the parent's children: echo +{ctl} > {} (or \
             Cgroup::enable_controllers, which moves this process out of the parent first \
             when it lives there)",
            parent.join("cgroup.subtree_control").display()
        )
    } else {
        format!(
            "the {ctl} controller is not available in {} (its cgroup.controllers: {:?}): it \
             is not delegated to this subtree, or this host runs it on cgroup v1; delegate a \
             subtree with it (systemd-run --user --scope -p Delegate=yes ...), or use \
             Cgroup::best_effort",
            parent.display(),
            available.trim()
        )
    }
}

/// Serializes [`manage_parent`] (concurrent spawns move the process once).
static MANAGE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`Cgroup::enable_controllers`]: move this process out of `parent` into a leaf of its own
/// when it lives there (not the hierarchy's root), then enable `ctls` for the parent's
/// children.
fn manage_parent(parent: &Path, ctls: &[&str]) -> io::Result<()> {
    let _one = MANAGE.lock().unwrap_or_else(|p| p.into_inner());
    let own = own_cgroup()?;
    let is_root = v2_mount().is_some_and(|m| m == own);
    let same = match (fs::canonicalize(&own), fs::canonicalize(parent)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same && !is_root {
        let leaf = parent.join(format!("nsbox-orchestrator-{}", std::process::id()));
        match fs::create_dir(&leaf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::from_std(Step::Cgroup, &e)
                    .with_path(&leaf)
                    .with_context("(a leaf of its own for this process)")
                    .with_hint(
                        "the parent is not delegated to this user: name one that is \
                         (Cgroup::under)",
                    )
                    .into());
            }
        }
        let procs = leaf.join("cgroup.procs");
        if let Err(e) = fs::write(&procs, std::process::id().to_string()) {
            let _ = fs::remove_dir(&leaf);
            return Err(Error::from_std(Step::Cgroup, &e)
                .with_path(&procs)
                .with_context("(move this process into a leaf of its own)")
                .with_hint(
                    "moving needs write access to the common ancestor's cgroup.procs too \
                     (delegation: systemd-run --user --scope -p Delegate=yes)",
                )
                .into());
        }
        tracing::debug!(leaf = %leaf.display(), "moved this process into a leaf of its own");
    }
    let control = parent.join("cgroup.subtree_control");
    for ctl in ctls {
        if let Err(e) = fs::write(&control, format!("+{ctl}")) {
            let mut err = Error::from_std(Step::Cgroup, &e)
                .with_path(&control)
                .with_context(format!("(write \"+{ctl}\")"));
            if e.raw_os_error() == Some(libc::EBUSY) {
                let procs = fs::read_to_string(parent.join("cgroup.procs")).unwrap_or_default();
                let pids: Vec<&str> = procs.split_whitespace().collect();
                err = err.with_hint(format!(
                    "the no-internal-processes rule: {} holds processes ({}), so its children \
                     cannot get controllers; move them into a leaf of their own, or name a \
                     parent without processes",
                    parent.display(),
                    pids.join(" ")
                ));
            }
            return Err(err.into());
        }
    }
    Ok(())
}

/// A sandbox's leaf, made by [`Leaf::create`]. Dropping it reads nothing: it kills what is
/// left in it (cgroup.kill), waits until it is empty and removes it.
#[derive(Debug)]
pub(crate) struct Leaf {
    path: PathBuf,
    /// The leaf's directory (for clone3's CLONE_INTO_CGROUP) and its cgroup.procs (for the
    /// init's join where clone3 cannot place it), until the clone.
    pub dir: Option<OwnedFd>,
    pub procs: Option<OwnedFd>,
    /// The limits that were not applied (best effort).
    pub unapplied: Vec<String>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Leaf {
    /// Make the leaf under the configured parent and write its limits.
    pub(crate) fn create(cg: &Cgroup) -> io::Result<Leaf> {
        let parent = match &cg.parent {
            Some(p) => p.clone(),
            None => own_cgroup()?,
        };
        let subtree = read(&parent.join("cgroup.subtree_control")).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::failed(
                    Step::Cgroup,
                    io::ErrorKind::NotFound,
                    format!("{} is not a cgroup v2 directory", parent.display()),
                )
                .with_hint("name a directory of the cgroup2 mount (see /proc/self/mountinfo)")
                .into()
            } else {
                e
            }
        })?;
        let mut unapplied = Vec::new();
        let mut apply = Vec::new();
        let mut enable: Vec<&str> = Vec::new();
        let available = fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
        for (file, value) in &cg.limits {
            let ctl = controller(file);
            if subtree.split_whitespace().any(|c| c == ctl) {
                apply.push((*file, value));
                continue;
            }
            if cg.enable_controllers && available.split_whitespace().any(|c| c == ctl) {
                if !enable.contains(&ctl) {
                    enable.push(ctl);
                }
                apply.push((*file, value));
                continue;
            }
            if cg.best_effort {
                unapplied.push(file.to_string());
                continue;
            }
            return Err(Error::failed(
                Step::Cgroup,
                io::ErrorKind::Unsupported,
                format!(
                    "{file} needs the {ctl} controller, which is not enabled for the children of {}",
                    parent.display()
                ),
            )
            .with_hint(missing_hint(&parent, ctl, &available))
            .into());
        }
        if cg.enable_controllers {
            manage_parent(&parent, &enable)?;
        }
        let name = format!(
            "nsbox-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = parent.join(name);
        fs::create_dir(&path).map_err(|e| {
            let err = Error::from_std(Step::Cgroup, &e).with_path(&path);
            match e.kind() {
                io::ErrorKind::PermissionDenied => err.with_hint(
                    "the parent cgroup is not delegated to this user: name one that is \
                     (Cgroup::under), e.g. made by systemd-run --user --scope -p Delegate=yes",
                ),
                _ => err,
            }
        })?;
        // From here on, the leaf goes away with `leaf` on any error.
        let mut leaf = Leaf {
            path,
            dir: None,
            procs: None,
            unapplied,
        };
        for (file, value) in apply {
            let p = leaf.path.join(file);
            match fs::write(&p, value.as_bytes()) {
                Ok(()) => {}
                Err(e) if cg.best_effort => {
                    tracing::debug!(file, error = %e, "cgroup limit not applied");
                    leaf.unapplied.push(file.to_string());
                }
                Err(e) => {
                    let mut err = Error::from_std(Step::Cgroup, &e)
                        .with_path(&p)
                        .with_context(format!("(write {value:?})"));
                    if e.kind() == io::ErrorKind::NotFound {
                        err = err.with_hint(
                            "this kernel does not have the file (memory.swap.max needs swap \
                             accounting)",
                        );
                    }
                    return Err(err.into());
                }
            }
        }
        let open = |name: &str, flags: rustix::fs::OFlags| -> io::Result<OwnedFd> {
            let p = leaf.path.join(name);
            rustix::fs::open(
                &p,
                flags | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| {
                Error::os(Step::Cgroup, e.raw_os_error())
                    .with_path(&p)
                    .into()
            })
        };
        leaf.dir = Some(open(
            ".",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        )?);
        leaf.procs = Some(open("cgroup.procs", rustix::fs::OFlags::WRONLY)?);
        Ok(leaf)
    }

    /// The fds the clone needs (the directory, cgroup.procs).
    /// The leaf's fds, borrowed (for the launcher's request).
    pub(crate) fn borrowed_fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.dir
            .iter()
            .chain(self.procs.iter())
            .map(|f| f.as_fd())
            .collect()
    }

    pub(crate) fn fds(&self) -> Option<(RawFd, RawFd)> {
        Some((
            self.dir.as_ref()?.as_raw_fd(),
            self.procs.as_ref()?.as_raw_fd(),
        ))
    }

    /// End the sandbox's cgroup without blocking: kill what is left, wait on cgroup.events
    /// (its change is signalled with POLLPRI, through tokio's reactor) until the leaf is
    /// unpopulated, then read what it accounted and remove it. Cancel safe (the leaf stays
    /// until it is removed); `None` when the statistics cannot be read. Outside a runtime
    /// (or where cgroup.events cannot be registered) the leaf is handed to
    /// [`dispose`](Leaf::dispose) and its statistics read as they are.
    pub(crate) async fn finish(&mut self) -> Option<CgroupStats> {
        self.dir = None;
        self.procs = None;
        if self.path.as_os_str().is_empty() {
            return None;
        }
        if let Err(e) = self.wait_empty().await {
            tracing::debug!(leaf = %self.path.display(), error = %e, "cannot wait for the leaf");
            let stats = self.stats();
            Leaf::dispose(self.take());
            return stats;
        }
        let stats = self.stats();
        self.remove();
        stats
    }

    /// [`finish`](Self::finish) if the leaf is already empty (after a kill); `None` while it
    /// is still populated (nothing waits).
    pub(crate) fn try_finish(&mut self) -> Option<Option<CgroupStats>> {
        self.dir = None;
        self.procs = None;
        if self.path.as_os_str().is_empty() {
            return Some(None);
        }
        self.kill();
        if self.populated() {
            return None;
        }
        let stats = self.stats();
        self.remove();
        Some(stats)
    }

    /// The leaf's contents, leaving an empty one behind (whose Drop does nothing).
    fn take(&mut self) -> Leaf {
        Leaf {
            path: std::mem::take(&mut self.path),
            dir: self.dir.take(),
            procs: self.procs.take(),
            unapplied: std::mem::take(&mut self.unapplied),
        }
    }

    /// End a leaf nobody waits for (a dropped sandbox), never blocking the caller: removed
    /// at once when it is empty after the kill; else a task of the current runtime waits
    /// for it; without one a thread of its own; where no thread can be made it is parked,
    /// and each later leaf's end retries it (cannot panic, cannot block).
    pub(crate) fn dispose(mut leaf: Leaf) {
        retry_parked();
        if leaf.try_finish().is_some() {
            return;
        }
        /// Owns the leaf while a task waits; dropped before the leaf is removed (the task
        /// cancelled by a runtime shutdown), it hands the wait to a thread.
        struct Finisher(Leaf);
        impl Drop for Finisher {
            fn drop(&mut self) {
                if !self.0.path.as_os_str().is_empty() {
                    finish_on_thread(self.0.take());
                }
            }
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return finish_on_thread(leaf);
        };
        let mut f = Finisher(leaf.take());
        handle.spawn(async move {
            if let Ok(()) = f.0.wait_empty().await {
                f.0.remove();
            }
            // Else the Finisher's drop hands the leaf to a thread.
        });
    }

    /// Kill everything in the leaf: cgroup.kill (Linux 5.14; before it, SIGKILL to each
    /// pid of cgroup.procs, again until no new one shows up).
    fn kill(&self) {
        if fs::write(self.path.join("cgroup.kill"), b"1").is_ok() {
            return;
        }
        let mut killed = std::collections::BTreeSet::new();
        loop {
            let procs = fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
            let new: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .filter(|p| killed.insert(*p))
                .collect();
            if new.is_empty() {
                return;
            }
            for pid in new {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }

    /// Kill what is left and wait, on cgroup.events registered with tokio for POLLPRI, until
    /// the leaf is unpopulated. Registered before each check, so no change is missed.
    async fn wait_empty(&self) -> io::Result<()> {
        let events = self.open_events()?;
        let events = crate::sys::try_async_fd_priority(events).map_err(|(_, e)| e)?;
        loop {
            self.kill();
            if !populated_fd(events.get_ref())? {
                return Ok(());
            }
            let mut ready = events.ready(tokio::io::Interest::PRIORITY).await?;
            ready.clear_ready();
        }
    }

    /// The blocking wait for a thread of its own: poll(2) for POLLPRI on cgroup.events.
    /// Bounded: a process that cannot die (stuck in the kernel) leaves the leaf in place,
    /// with a message.
    fn wait_empty_blocking(&self) -> bool {
        let Ok(events) = self.open_events() else {
            return !self.populated();
        };
        for _ in 0..600 {
            self.kill();
            if !populated_fd(&events).unwrap_or(false) {
                return true;
            }
            let mut fds = [rustix::event::PollFd::new(
                &events,
                rustix::event::PollFlags::PRI,
            )];
            let _ = rustix::event::poll(
                &mut fds,
                Some(&rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 100_000_000,
                }),
            );
        }
        tracing::warn!(leaf = %self.path.display(), "cgroup still populated after cgroup.kill");
        false
    }

    fn open_events(&self) -> io::Result<OwnedFd> {
        let p = self.path.join("cgroup.events");
        rustix::fs::open(
            &p,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| {
            Error::os(Step::Cgroup, e.raw_os_error())
                .with_path(&p)
                .into()
        })
    }

    fn stats(&self) -> Option<CgroupStats> {
        let cpu = fs::read_to_string(self.path.join("cpu.stat")).ok()?;
        let usec = |k| Duration::from_micros(field(&cpu, k).unwrap_or(0));
        let text = |f: &str| fs::read_to_string(self.path.join(f)).ok();
        let num = |f: &str| text(f).and_then(|t| t.trim().parse().ok());
        let mem = text("memory.events").unwrap_or_default();
        let pids = text("pids.events").unwrap_or_default();
        Some(CgroupStats {
            cpu_usage: usec("usage_usec"),
            cpu_user: usec("user_usec"),
            cpu_system: usec("system_usec"),
            memory_peak: num("memory.peak"),
            oom: field(&mem, "oom").unwrap_or(0),
            oom_kill: field(&mem, "oom_kill").unwrap_or(0),
            pids_peak: num("pids.peak"),
            pids_max_hits: field(&pids, "max").unwrap_or(0),
        })
    }

    fn populated(&self) -> bool {
        fs::read_to_string(self.path.join("cgroup.events"))
            .map(|t| field(&t, "populated") == Some(1))
            .unwrap_or(false)
    }

    fn remove(&mut self) {
        match fs::remove_dir(&self.path) {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(leaf = %self.path.display(), error = %e, "cgroup leaf not removed")
            }
        }
        self.path = PathBuf::new();
    }
}

/// Whether cgroup.events, read through `fd` from its start (which also acknowledges the
/// change that POLLPRI reported), says populated.
fn populated_fd(fd: &OwnedFd) -> io::Result<bool> {
    let mut buf = [0u8; 256];
    let n = rustix::io::pread(fd, &mut buf, 0).map_err(io::Error::from)?;
    let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
    Ok(field(text, "populated") == Some(1))
}

/// Leaves that could be given neither a task nor a thread (the process limit reached).
static PARKED: std::sync::Mutex<Vec<Leaf>> = std::sync::Mutex::new(Vec::new());

/// Remove the parked leaves that have emptied since.
fn retry_parked() {
    let mut parked = PARKED.lock().unwrap_or_else(|p| p.into_inner());
    parked.retain_mut(|l| l.try_finish().is_none());
}

/// Wait for `leaf` on a thread of its own and remove it; park it where no thread can be made.
fn finish_on_thread(leaf: Leaf) {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(leaf)));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("nsbox-cgroup".into())
        .spawn(move || {
            let taken = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(mut leaf) = taken {
                if leaf.wait_empty_blocking() {
                    leaf.remove();
                } else {
                    // Left in place (with a message): nothing more to do for it.
                    leaf.path = PathBuf::new();
                }
            }
        });
    if spawned.is_ok() {
        return;
    }
    let taken = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(mut leaf) = taken {
        leaf.kill();
        PARKED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(leaf.take());
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            Leaf::dispose(self.take());
        }
    }
}

//! Preparation: everything a sandbox's child needs, built and checked in the orchestrator
//! before the clone (C strings, the PATH search, id map lines, pipes, fds).

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::Arc;

use tokio::net::unix::pipe;

use super::config::Config;
use super::stdio::{ParentEnds, StdioKind};
use crate::error::Error;
use crate::ns::{Namespace, NamespaceSet};
use crate::proto::Spec;
use crate::proto::control::ControlSender;
use crate::proto::report::ReportReceiver;
use crate::proto::spec::Restrictions;
use crate::steps::Step;

/// Everything prepared for one clone.
pub(crate) struct Prepared {
    pub spec: Spec,
    /// The fds that go with the spec, in [`Plan::new`](crate::proto::Plan::new)'s order;
    /// owned by the fields below until the clone is done.
    pub fds: Vec<RawFd>,
    pub kinds: NamespaceSet,
    pub use_launcher: bool,
    /// The report pipe's read end, registered with tokio before the clone (a runtime without
    /// IO then fails here, with nothing created yet).
    pub report_r: ReportReceiver,
    pub control_w: ControlSender,
    pub parent_ends: ParentEnds,
    /// The child's ends (report write end, control read end, stdio, joins, passed fds):
    /// kept open until the clone, closed right after.
    pub child_ends: Vec<Arc<OwnedFd>>,
    /// The sandbox's cgroup leaf (its two fds are in `fds`, owned by the leaf).
    pub cgroup: Option<crate::cgroup::Leaf>,
}

fn cstr(what: &'static str, s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        Error::invalid(Step::Input, format!("{what} {s:?} contains a NUL byte")).into()
    })
}

fn pipe(what: &'static str) -> io::Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| {
        Error::os(Step::Pipe, e.raw_os_error())
            .with_context(format!("({what})"))
            .into()
    })
}

/// The environment the command will see.
fn environment(sb: &Config) -> BTreeMap<OsString, OsString> {
    let mut env: BTreeMap<OsString, OsString> = if sb.env_clear {
        BTreeMap::new()
    } else {
        std::env::vars_os().collect()
    };
    for (k, v) in &sb.env {
        match v {
            Some(v) => env.insert(k.clone(), v.clone()),
            None => env.remove(k),
        };
    }
    env
}

fn envp(env: &BTreeMap<OsString, OsString>) -> io::Result<Vec<CString>> {
    let mut out = Vec::with_capacity(env.len());
    for (k, v) in env {
        if k.is_empty() || k.as_bytes().contains(&b'=') {
            return Err(Error::invalid(
                Step::Input,
                format!("environment: invalid variable name {k:?}"),
            )
            .into());
        }
        let mut kv = k.clone().into_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        out.push(CString::new(kv).map_err(|_| {
            Error::invalid(
                Step::Input,
                format!("environment: variable {k:?} contains a NUL byte"),
            )
        })?);
    }
    Ok(out)
}

/// The paths execve tries, in order: the program itself if it has a slash, else a PATH
/// search done here, so the child only tries execve in order.
fn exec_paths(program: &OsStr, env: &BTreeMap<OsString, OsString>) -> io::Result<Vec<CString>> {
    if program.as_bytes().contains(&b'/') {
        return Ok(vec![cstr("program", program)?]);
    }
    let Some(path) = env.get(OsStr::new("PATH")) else {
        return Err(Error::invalid(
            Step::Exec,
            format!("{program:?} has no slash and PATH is not set in the sandbox's environment"),
        )
        .with_hint("set PATH with Sandbox::env, or give the program's full path")
        .into());
    };
    let mut v = Vec::new();
    for dir in path.as_bytes().split(|b| *b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let mut full = dir.to_vec();
        full.push(b'/');
        full.extend_from_slice(program.as_bytes());
        v.push(
            CString::new(full)
                .map_err(|_| Error::invalid(Step::Input, "PATH contains a NUL byte"))?,
        );
    }
    Ok(v)
}

/// The command's side of one standard stream: the fd it gets (kept in `held`), and the
/// orchestrator's end of a pipe.
fn stdio_source(
    target: RawFd,
    kind: &StdioKind,
    held: &mut Vec<Arc<OwnedFd>>,
    ends: &mut ParentEnds,
) -> io::Result<RawFd> {
    let fd = match kind {
        StdioKind::Inherit => return Ok(target),
        StdioKind::Null => {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| Error::from_std(Step::Fds, &e).with_path("/dev/null"))?;
            Arc::new(OwnedFd::from(f))
        }
        StdioKind::Piped => {
            let (r, w) = pipe("stdio")?;
            let (child_end, parent_end) = if target == 0 { (r, w) } else { (w, r) };
            match target {
                0 => ends.stdin = Some(pipe::Sender::from_owned_fd(parent_end)?),
                1 => ends.stdout = Some(pipe::Receiver::from_owned_fd(parent_end)?),
                _ => ends.stderr = Some(pipe::Receiver::from_owned_fd(parent_end)?),
            }
            Arc::new(child_end)
        }
        StdioKind::Fd(fd) => fd.clone(),
        StdioKind::Failed(e) => {
            let name = ["stdin", "stdout", "stderr"][target as usize % 3];
            return Err(Error::failed(Step::Fds, e.kind(), format!("{name}: {e}")).into());
        }
    };
    let raw = fd.as_raw_fd();
    held.push(fd);
    Ok(raw)
}

/// The command's fds: stdio, then passed fds. Returns (source, target) pairs.
fn command_fds(
    sb: &Config,
    held: &mut Vec<Arc<OwnedFd>>,
    ends: &mut ParentEnds,
) -> io::Result<Vec<(RawFd, RawFd)>> {
    let mut moves = Vec::new();
    for (target, cfg) in [(0, &sb.stdin), (1, &sb.stdout), (2, &sb.stderr)] {
        let kind = cfg.as_ref().map(|s| &s.0).unwrap_or(&StdioKind::Inherit);
        moves.push((stdio_source(target, kind, held, ends)?, target));
    }
    for (target, fd) in &sb.fds {
        if *target < 3 {
            return Err(Error::invalid(
                Step::Input,
                format!(
                    "pass_fd: target fd {target} is a standard stream; use stdin/stdout/stderr"
                ),
            )
            .into());
        }
        if moves.iter().any(|(_, t)| t == target) {
            return Err(Error::invalid(
                Step::Input,
                format!("pass_fd: target fd {target} given twice"),
            )
            .into());
        }
        held.push(fd.clone());
        moves.push((fd.as_raw_fd(), *target));
    }
    Ok(moves)
}

/// Build everything the child needs: checked input, C strings, fds.
pub(crate) fn prepare(sb: &Config) -> io::Result<Prepared> {
    let ns = &sb.namespaces;
    ns.validate()?;
    if sb.program.is_empty() {
        return Err(Error::invalid(Step::Exec, "the program name is empty").into());
    }
    let mut argv = vec![cstr("program", &sb.program)?];
    for a in &sb.args {
        argv.push(cstr("argument", a)?);
    }
    let env = environment(sb);
    let exec_paths = exec_paths(&sb.program, &env)?;
    if sb.default_filter {
        // Compiled once per process; fails only on an architecture it does not know.
        crate::seccomp::default_filter(sb.user_namespaces)?;
    }
    let kinds = ns.kinds;
    let fs = filesystem(sb, kinds.contains(Namespace::Mount), ns.wants_proc())?;
    // Without a directory of the caller's, the command starts in ours. With a view, by path:
    // the view may hide it (a fresh /tmp over an orchestrator working in /tmp), and the
    // directory itself, inherited as it is, would still reach the host's files under the
    // mount that hides them (the host's /tmp and its sockets, read-only but connectable).
    let (cwd, cwd_soft) = match &sb.cwd {
        Some(d) => (Some(cstr("current_dir", d.as_os_str())?), false),
        None if fs.is_some() => (
            std::env::current_dir()
                .ok()
                .and_then(|d| CString::new(d.into_os_string().into_vec()).ok())
                .or_else(|| Some(c"/".to_owned())),
            true,
        ),
        None => (None, false),
    };
    let external_maps = sb.hook.as_ref().is_some_and(|h| h.writes_id_maps());
    let id_maps = (kinds.contains(Namespace::User) && !external_maps).then(|| ns.single_id_maps());

    let (report_r, report_w) = pipe("report")?;
    let report_r = ReportReceiver::new(pipe::Receiver::from_owned_fd(report_r)?);
    let (control_r, control_w) = pipe("control")?;
    // Our end never blocks an async caller; the init's end stays blocking.
    let control_w = ControlSender::new(control_w)?;
    let mut held: Vec<Arc<OwnedFd>> = vec![Arc::new(report_w), Arc::new(control_r)];
    let mut join_types = Vec::new();
    for j in &ns.joins {
        held.push(j.open()?);
        join_types.push(j.nstype());
    }
    let mut parent_ends = ParentEnds::default();
    let moves = command_fds(sb, &mut held, &mut parent_ends)?;
    let rlimits = rlimits(sb)?;
    // Last, so that nothing fails after the leaf is made (it goes away with `cgroup` then).
    let cgroup = match &sb.cgroup {
        Some(cg) => Some(crate::cgroup::Leaf::create(cg)?),
        None => None,
    };
    // The fds in Plan order: report, control, joins (all in `held`, in that order), the
    // cgroup leaf's directory and cgroup.procs, then the command's sources (some of them
    // inherited numbers, not in `held`).
    let mut fds: Vec<RawFd> = held[..2 + join_types.len()]
        .iter()
        .map(|f| f.as_raw_fd())
        .collect();
    if let Some((dir, procs)) = cgroup.as_ref().and_then(|l| l.fds()) {
        fds.extend([dir, procs]);
    }
    fds.extend(moves.iter().map(|(src, _)| *src));
    let spec = Spec {
        namespaces: kinds,
        argv,
        envp: envp(&env)?,
        exec_paths,
        cwd,
        cwd_soft,
        hostname: ns.hostname.as_ref().map(|h| h.as_bytes().to_vec()),
        domainname: ns.domainname.as_ref().map(|h| h.as_bytes().to_vec()),
        id_maps,
        // A view is made private (nothing arrives in it later): from the start, which costs
        // one walk of the mount table instead of two.
        propagation: kinds.contains(Namespace::Mount).then_some(
            if fs.as_ref().is_some_and(|f| f.base != crate::fs::Base::Host) {
                crate::ns::Propagation::Private
            } else {
                ns.propagation
            },
        ),
        mount_proc: ns.wants_proc(),
        // The lock keeps a command that holds CAP_SYS_ADMIN from unmounting the fresh /proc
        // (and seeing the host's beneath it). A command without it (the default) cannot
        // unmount anything, and any mount namespace it makes in a user namespace of its own
        // is a copy with every mount locked: the lock would only cost a copy of the mount
        // tree, which grows with the host's mount table.
        lock_mounts: ns.lock_mounts && sb.capabilities.contains(crate::caps::Capability::SysAdmin),
        join_types,
        targets: moves.iter().map(|(_, t)| *t).collect(),
        wait_for_go: sb.hook.is_some(),
        die_with_parent: sb.die_with_parent,
        wait_all: sb.wait_all,
        no_new_privs: sb.no_new_privs,
        new_session: sb.new_session,
        timeout: sb.timeout,
        grace: sb.kill_after,
        ignored_signals: sb.ignored_signals.check("ignored_signals")?,
        blocked_signals: sb.blocked_signals.check("blocked_signals")?,
        exit_grace: sb.exit_grace,
        restrict: Restrictions {
            protect_kernel: ns.protect_kernel,
            keep_caps: sb.capabilities.mask(),
            default_filter: sb.default_filter,
            user_namespaces: sb.user_namespaces,
            filters: sb.filters.iter().map(|p| p.as_bytes().to_vec()).collect(),
        },
        fs,
        rlimits,
        cgroup: cgroup.is_some(),
    };
    Ok(Prepared {
        spec,
        fds,
        kinds,
        use_launcher: sb.use_launcher,
        report_r,
        control_w,
        parent_ends,
        child_ends: held,
        cgroup,
    })
}

/// The rlimits, checked: a soft limit above its hard one is bad input.
fn rlimits(sb: &Config) -> io::Result<Vec<(crate::limits::Resource, u64, u64)>> {
    crate::limits::check(&sb.rlimits)?;
    Ok(sb.rlimits.clone())
}

/// The prepared filesystem view: the one given, or the default with a mount namespace.
/// `None` when there is nothing to do (the host's mounts as they are). An empty root gets
/// its fresh /proc as one of its mounts.
fn filesystem(
    sb: &Config,
    mount_ns: bool,
    fresh_proc: bool,
) -> io::Result<Option<crate::fs::FsSpec>> {
    if !mount_ns {
        return match sb.filesystem.as_ref().or(sb.namespaces.filesystem.as_ref()) {
            // The host's mounts as they are is what no mount namespace gives.
            None => Ok(None),
            Some(fs) if fs.base == crate::fs::Base::Host && fs.ops.is_empty() => Ok(None),
            Some(_) => Err(Error::invalid(
                Step::Filesystem,
                "a filesystem view needs a new mount namespace (Namespaces::mount)",
            )
            .into()),
        };
    }
    let mut fs = sb
        .filesystem
        .clone()
        .or_else(|| sb.namespaces.filesystem.clone())
        .unwrap_or_else(crate::fs::Filesystem::sandbox_default);
    if fs.base == crate::fs::Base::Empty && fresh_proc {
        fs.proc("/proc");
    }
    if fs.base == crate::fs::Base::HostReadOnly {
        // The host's /dev/shm, /dev/mqueue and /sys belong to the host's IPC and network
        // namespaces: a new namespace gets fresh ones, before the caller's own mounts.
        let kinds = sb.namespaces.kinds();
        let mut fresh = crate::fs::Filesystem::host_read_only();
        let dir = crate::fs::real_dir;
        if kinds.contains(Namespace::Ipc) {
            if dir("/dev/shm") {
                fresh.tmpfs_with("/dev/shm", None, Some(0o1777));
            }
            if dir("/dev/mqueue") {
                fresh.mqueue("/dev/mqueue");
            }
        }
        if kinds.contains(Namespace::Net) && dir("/sys") {
            fresh.sysfs("/sys");
        }
        fresh.ops.append(&mut fs.ops);
        fs.ops = fresh.ops;
    }
    if fs.base == crate::fs::Base::Host && fs.ops.is_empty() {
        return Ok(None);
    }
    let mut spec = fs.prepare()?;
    // The init makes `/` private from the start for a view (see the Spec's propagation).
    spec.make_private = false;
    Ok(Some(spec))
}

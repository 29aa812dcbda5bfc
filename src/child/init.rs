//! The sandbox's init: pid 1 of the sandbox's pid namespace, or a child subreaper without
//! one. Its setup sequence reads like the spec it follows: fds, the setup hook's go, the
//! namespace steps, the signalfd, then the command's fork and the supervision loop.
//!
//! The rule of [`crate::child`] applies to every line.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::proto::Plan;
use crate::proto::control::{Control, ControlReceiver, Received};
use crate::proto::report::{self, Report, ReportSender};
use crate::steps::{self, Step, StepError};
use crate::sys;

use nix::sys::signal::{SigSet, SigmaskHow};

/// Entry point of the cloned child. Never returns.
///
/// # Safety
///
/// Must be called only in the child of the clone, with the plan built by the parent for it.
/// `in_cgroup`: the clone placed it in the sandbox's cgroup leaf already. `from_launcher`:
/// the launcher made it, whose dispositions are all the default but the few it ignores.
pub(crate) unsafe fn run(plan: &Plan, in_cgroup: bool, from_launcher: bool) -> ! {
    // Signals were blocked by the parent thread around the clone, so none of the
    // orchestrator's handlers can run here; reset them before anything else (the launcher's
    // 7 ignored ones, or all 64: 60 calls, about 12 us).
    if from_launcher {
        for sig in crate::spawn::launcher::IGNORED {
            sys::set_default_action(sig);
        }
    } else {
        for sig in 1..65 {
            sys::set_default_action(sig);
        }
    }
    hide_creator(plan);
    if let Err(e) = super::exec::shuffle_fds(plan) {
        // The report fd may not be in place; try the original number too.
        if let Some(&orig) = plan.own_fds.first() {
            // SAFETY: the report pipe's number in the plan, which the clone copied open; at
            // worst the failed shuffle closed it and the write fails with EBADF. We exit next.
            ReportSender(unsafe { BorrowedFd::borrow_raw(orig) }).send(Report::Failed(e));
        }
        sys::exit_immediately(126);
    }
    // SAFETY: the shuffle put the report pipe's write end and the control pipe's read end at
    // these numbers; the init never closes them, and leaves only by _exit (or, in the command's
    // child, by exec, which closes them: they are close-on-exec), so they outlive every use.
    let (report, control) = unsafe {
        (
            ReportSender(BorrowedFd::borrow_raw(plan.report_fd())),
            ControlReceiver(BorrowedFd::borrow_raw(plan.control_fd())),
        )
    };
    if plan.spec.cgroup && !in_cgroup {
        // The clone could not place us in the leaf (no CLONE_INTO_CGROUP): join it through
        // its cgroup.procs, opened by the orchestrator, before anything else runs here.
        // SAFETY: the shuffle put the leaf's cgroup.procs at this number; it stays open.
        let procs = unsafe { BorrowedFd::borrow_raw(plan.cgroup_procs_fd()) };
        if let Err(e) = steps::cgroup::join(procs) {
            fail(report, e);
        }
    }
    if plan.spec.wait_for_go {
        wait_for_go(control);
    }
    if let Err(e) = set_up(plan) {
        report.send(Report::Failed(e));
        sys::exit_immediately(126);
    }
    // Every signal stays blocked in the init; the ones it acts on come through a signalfd.
    crate::signals::mask(SigmaskHow::SIG_SETMASK, &SigSet::all());
    let watched = crate::signals::forwarded_and_sigchld(plan.spec.ignored_signals);
    let sfd = match crate::signals::signalfd(&watched) {
        Ok(fd) => fd,
        Err(e) => fail(report, StepError::new(Step::Signalfd, e)),
    };
    // Non-blocking: see below.
    let exec_flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
    let (exec_r, exec_w) = match rustix::pipe::pipe_with(exec_flags) {
        Ok(p) => p,
        Err(e) => fail(report, StepError::new(Step::Pipe, e.raw_os_error())),
    };
    // From here on untrusted code runs beside us. The init holds a copy of its creator's
    // memory (the orchestrator's, after a direct clone): make it non-dumpable, so that nothing
    // in the sandbox can ptrace it or read /proc/1/mem (that needs CAP_SYS_PTRACE in the user
    // namespace the memory came from, the host's). The command becomes dumpable again at exec.
    // Done after the setup hook, which may need /proc/PID of the init.
    steps::process::not_dumpable();
    // Without a pid namespace the init finds what is left to kill in its list of children.
    // Open it now, while nothing untrusted runs: the command could later take the init's fd
    // limit away (prlimit on its parent) or mount over /proc, and blind it.
    let children = if plan.spec.pidns() {
        None
    } else {
        match rustix::fs::open(
            c"/proc/thread-self/children",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => Some(fd),
            Err(e) => fail(report, StepError::new(Step::Children, e.raw_os_error())),
        }
    };
    let init_pid = rustix::process::getpid().as_raw_nonzero().get();
    // The timeout counts from here, before the command's exec (as "from the spawn" says).
    let start = sys::monotonic_ms();
    // The command shares our memory until its exec (CLONE_VM | CLONE_VFORK): no copy of the
    // init's page tables, which a fork would make for a process that execs at once. Its
    // steps up to the exec are system calls on its own stack.
    let cmd =
        match sys::vfork_run(&mut || super::exec::exec_command(plan, exec_w.as_fd(), init_pid)) {
            Ok(pid) => pid,
            Err(e) => fail(report, StepError::new(Step::Fork, e)),
        };
    drop(exec_w);
    // CLONE_VFORK returned: the command is past its exec's point of no return, or it has
    // exited, and then after writing why to the pipe (one write, atomic). So the pipe says
    // all there is to know now: no need to wait for its end to close at the exec, a second
    // wake-up that, on a busy machine, came only after the command had run.
    if let Some(failed) = report::recv_blocking(exec_r.as_fd()) {
        // The command could not be executed: pass its error on, reap it, leave.
        report.send(failed);
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(cmd, std::ptr::null_mut(), 0) };
        sys::exit_immediately(126);
    }
    drop(exec_r);
    // PROGRAM has its working directory; the init must not keep the caller's busy.
    let _ = rustix::process::chdir(c"/");
    report.send(Report::Execed);
    super::supervise::supervise(plan, report, control, sfd, cmd, start, children)
}

/// The init is a copy of its creator (the orchestrator, or the launcher, a fork of it): its
/// /proc/PID/cmdline and comm would show the orchestrator's argv and thread name to the
/// sandbox (cmdline is readable by anyone). Overwrite this copy's argv and environment areas
/// and rename it.
fn hide_creator(plan: &Plan) {
    let [arg_start, arg_end, env_start, env_end] = plan.memory_areas;
    // SAFETY: the areas are the creator's argv and environment strings, read from its
    // /proc/self/stat before the clone; this process is a copy of it (no CLONE_VM), the areas
    // are in its stack mapping (writable) and nothing here reads them.
    unsafe {
        sys::overwrite_area(arg_start, arg_end, b"nsbox-init\0");
        sys::overwrite_area(env_start, env_end, b"");
    }
    let _ = rustix::thread::set_name(c"nsbox-init");
}

fn fail(report: ReportSender<'_>, e: StepError) -> ! {
    report.send(Report::Failed(e));
    sys::exit_immediately(126)
}

/// Wait until the orchestrator's setup hook is done; leave quietly if it gave up (the hook
/// failed, or the orchestrator is gone).
fn wait_for_go(control: ControlReceiver<'_>) {
    loop {
        match control.recv() {
            Received::Msg(Control::Go) => return,
            Received::Nothing => continue,
            // Anything but Go (a kill, EOF, garbage): the orchestrator gave up; fail closed.
            Received::Msg(_) | Received::Eof | Received::Garbage => sys::exit_immediately(125),
        }
    }
}

/// The namespace steps, in order: id maps, joins, mounts, UTS names, loopback, subreaper.
fn set_up(plan: &Plan) -> Result<(), StepError> {
    let spec = &plan.spec;
    if let Some((uid_map, gid_map)) = &spec.id_maps {
        steps::ids::map_ids(uid_map, gid_map)?;
    }
    for (i, &nstype) in spec.join_types.iter().enumerate() {
        // SAFETY: the shuffle moved the namespace file to this number; nothing else uses or
        // closes it: this is its only owner, and it is closed after the join.
        let fd = unsafe { OwnedFd::from_raw_fd(plan.join_fd(i)) };
        steps::join::setns(fd.as_fd(), nstype, i as u32)?;
    }
    if let Some(p) = spec.propagation {
        steps::mounts::root_propagation(p)?;
        let fs = spec.fs.as_ref();
        if let Some(fs) = fs {
            // An empty root gets its fresh /proc from its own ops.
            steps::fs::build(fs, &plan.fs_slots)?;
        }
        let empty = fs.is_some_and(|f| f.base == crate::fs::Base::Empty);
        if spec.mount_proc && !empty {
            steps::mounts::mount_proc()?;
        }
        // Opened before /proc/sys turns read-only.
        let last_pid = (spec.mount_proc && spec.lock_mounts)
            .then(|| steps::mounts::open_last_pid_in(fs))
            .flatten();
        if spec.restrict.protect_kernel {
            steps::mounts::protect_kernel(fs)?;
        }
        if let Some(fs) = fs.filter(|f| f.base == crate::fs::Base::Empty) {
            steps::fs::pivot(fs)?;
        }
        if spec.mount_proc && spec.lock_mounts {
            steps::mounts::lock_mounts(last_pid.as_ref())?;
        }
    }
    if let Some(h) = &spec.hostname {
        steps::uts::sethostname(h)?;
    }
    if let Some(d) = &spec.domainname {
        steps::uts::setdomainname(d)?;
    }
    if spec.net() {
        steps::net::loopback_up()?;
    }
    if !spec.pidns() {
        // Without a pid namespace, orphans of the command must come to us.
        steps::process::become_subreaper()?;
    }
    Ok(())
}

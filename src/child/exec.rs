//! The fd shuffle, and the command's side of the init's fork, up to its exec.

use std::os::fd::{BorrowedFd, RawFd};

use crate::proto::Plan;
use crate::proto::report::{Report, ReportSender};
use crate::steps::{Step, StepError};

use crate::sys;

/// Move the init's own fds and the command's fds into place and close everything else:
/// every source first to `high_base..` (so that no source is overwritten by a target), then
/// each command fd down to its target, then close_range over the gaps.
pub(crate) fn shuffle_fds(plan: &Plan) -> Result<(), StepError> {
    // The detail is the fd number that could not be made (EBADF: at or above RLIMIT_NOFILE).
    let fail = |at: RawFd| {
        move |errno| StepError {
            step: Step::Fds,
            errno,
            detail: at as u32,
        }
    };
    let sources = plan.own_fds.iter().chain(plan.moves.iter().map(|(s, _)| s));
    for (next, &fd) in (plan.high_base..).zip(sources) {
        sys::dup_onto(fd, next, true).map_err(fail(next))?;
    }
    let base = plan.high_base + plan.own_fds.len() as RawFd;
    for (i, &(_, target)) in plan.moves.iter().enumerate() {
        sys::dup_onto(base + i as RawFd, target, false).map_err(fail(target))?;
    }
    for &(lo, hi) in &plan.close_ranges {
        sys::close_range(lo, hi);
    }
    Ok(())
}

/// The command's side of the fork: becomes PROGRAM, or reports why not on `err_fd` (the
/// exec pipe, close-on-exec) and exits 127.
pub(crate) fn exec_command(plan: &Plan, err_fd: BorrowedFd<'_>, init_pid: i32) -> ! {
    // A session of its own, so that the command has no controlling terminal: it can neither
    // open the orchestrator's /dev/tty (and push keystrokes into it with TIOCSTI) nor signal
    // the terminal's foreground group. Or, when the caller keeps the session, a process group
    // of its own.
    // SAFETY: plain syscalls on our own process.
    unsafe {
        if plan.spec.new_session {
            libc::setsid();
        } else {
            libc::setpgid(0, 0);
        }
    }
    // The init is single-threaded, so this follows the init itself.
    crate::steps::process::die_with_parent_thread();
    // The init may have died before the prctl: then nobody would kill us later. (A parent
    // pid of 0 means the init is outside our pid namespace, which one joined: an orphan
    // there would get that namespace's init, never 0.)
    // SAFETY: plain getppid.
    let ppid = unsafe { libc::getppid() };
    if ppid != init_pid && ppid != 0 {
        sys::exit_immediately(127);
    }
    // What the orchestrator asked for: ignored signals and a mask (by default none).
    crate::signals::start_state(plan.spec.ignored_signals, plan.spec.blocked_signals);
    let report = |e: StepError| -> ! {
        ReportSender(err_fd).send(Report::Failed(e));
        sys::exit_immediately(127)
    };
    if let Some(cwd) = &plan.spec.cwd
        && let Err(e) = rustix::process::chdir(cwd.as_c_str())
    {
        // The orchestrator's directory, where the view has none: `/` (which always is).
        if !plan.spec.cwd_soft || rustix::process::chdir(c"/").is_err() {
            report(StepError::new(Step::Chdir, e.raw_os_error()));
        }
    }
    if plan.spec.no_new_privs
        && let Err(e) = crate::steps::process::no_new_privs()
    {
        report(e);
    }
    // The rlimits before the filters (a caller's filter may refuse prlimit64) and before the
    // capability drop (a privileged caller may raise a hard limit).
    if let Err(e) = crate::steps::rlimits::set_rlimits(&plan.spec.rlimits) {
        report(e);
    }
    // The filters first, while the command may still hold CAP_SYS_ADMIN (installing needs
    // it or no_new_privs), then the capabilities: the caller's own filter sees the prctl and
    // capset calls of the drop.
    for f in &plan.filters {
        if let Err(e) = crate::steps::restrict::install_filter(f) {
            report(e);
        }
    }
    if let Some(keep) = plan.spec.restrict.keep_caps
        && let Err(e) = crate::steps::restrict::drop_capabilities(keep)
    {
        report(e);
    }
    let mut best = libc::ENOENT;
    for path in &plan.spec.exec_paths {
        // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings the plan
        // owns; execve only returns on failure.
        unsafe { libc::execve(path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr()) };
        match nix::errno::Errno::last_raw() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => best = libc::EACCES,
            e => {
                best = e;
                break;
            }
        }
    }
    report(StepError::new(Step::Exec, best))
}

//! The init's supervision loop: reap, report the command's status, forward signals, obey
//! the control pipe, enforce the timeout, and kill what is left.
//!
//! The rule of [`crate::child`] applies to every line.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::signalfd::SignalFd;

use crate::proto::Plan;
use crate::proto::control::{Control, ControlReceiver, Received};
use crate::proto::report::{Report, ReportSender};
use crate::sys;

/// What the loop knows.
struct State {
    /// The command's raw status, once reaped.
    status: Option<i32>,
    /// Whether `Exited` has been sent.
    reported: bool,
    /// Whether the control pipe is still watched (false after EOF).
    watching_control: bool,
    timed_out: bool,
    /// When to send the timeout's SIGTERM, and when its SIGKILL (monotonic ms).
    term_at: Option<u64>,
    kill_at: Option<u64>,
    /// Everything is being killed (timeout, `Kill`, parent gone).
    killing: bool,
    /// The orchestrator's `Kill` (or its death) came while the command ran.
    killed: bool,
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: plain kill(2).
    unsafe { libc::kill(pid, sig) };
}

pub(super) fn supervise(
    plan: &Plan,
    report: ReportSender<'_>,
    control: ControlReceiver<'_>,
    sfd: SignalFd,
    cmd: i32,
    start: u64,
    children: Option<OwnedFd>,
) -> ! {
    let children = children.as_ref().map(AsFd::as_fd);
    let mut st = State {
        status: None,
        reported: false,
        watching_control: true,
        timed_out: false,
        term_at: plan.spec.timeout_ms().map(|t| start.saturating_add(t)),
        kill_at: None,
        killing: false,
        killed: false,
    };
    let grace = crate::proto::spec::millis(plan.spec.grace);
    loop {
        let no_children = reap(cmd, &mut st.status);
        if let (Some(raw), false) = (st.status, st.reported) {
            report.send(Report::Exited {
                raw,
                timed_out: st.timed_out,
                killed: st.killed,
            });
            st.reported = true;
            if !plan.spec.wait_all || st.killing {
                let exit_grace = crate::proto::spec::millis(plan.spec.exit_grace);
                if exit_grace == 0 || st.killing {
                    kill_all(plan, children, cmd, false);
                    finish_killing(plan, children);
                }
                start_exit_grace(plan, children, &mut st, exit_grace);
            }
        }
        if st.reported && st.killing {
            // Killed (timeout, `Kill`, parent gone) after the command's status went out, in
            // wait-all mode: what is left must die too, grandchildren included.
            finish_killing(plan, children);
        }
        if st.reported && no_children {
            sys::exit_immediately(0);
        }
        let now = sys::monotonic_ms();
        if st.term_at.is_some_and(|d| now >= d) {
            st.timed_out = true;
            st.term_at = None;
            if st.status.is_none() {
                kill(cmd, libc::SIGTERM);
            }
            st.kill_at = Some(now.saturating_add(grace));
        }
        if st.kill_at.is_some_and(|d| now >= d) {
            st.kill_at = None;
            st.killing = true;
            kill_all(plan, children, cmd, st.status.is_none());
        }
        let next = match (st.term_at, st.kill_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = next.map_or(-1, |d| d.saturating_sub(now).min(60_000) as libc::c_int);
        let (signals, ctl) = wait(sfd.as_raw_fd(), control, st.watching_control, timeout);
        if signals {
            drain_signals(&sfd, cmd, st.status.is_none());
        }
        if ctl {
            on_control(plan, children, control, cmd, &mut st);
        }
    }
}

/// The command has ended and what is left gets a grace: SIGTERM to all of it now, SIGKILL
/// when the grace is over (or sooner, if a timeout's SIGKILL is due first). The loop exits
/// as soon as no child is left.
fn start_exit_grace(plan: &Plan, children: Option<BorrowedFd<'_>>, st: &mut State, ms: u64) {
    if plan.spec.pidns() {
        kill(-1, libc::SIGTERM);
    } else {
        signal_children(children, libc::SIGTERM);
    }
    st.term_at = None;
    let end = sys::monotonic_ms().saturating_add(ms);
    st.kill_at = Some(st.kill_at.map_or(end, |k| k.min(end)));
}

/// poll(2) on the signalfd and (when watched) the control pipe: which are ready.
fn wait(sfd: i32, control: ControlReceiver<'_>, watch: bool, timeout: libc::c_int) -> (bool, bool) {
    let mut fds = [
        libc::pollfd {
            fd: sfd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: if watch { control.0.as_raw_fd() } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a valid array of two pollfds.
    if unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) } < 0 {
        return match sys::errno() {
            libc::EINTR => (false, false),
            // EINVAL (the command lowered our fd limit below the two fds polled: prlimit on
            // its parent) or ENOMEM would come back at once, a spin: wait without poll.
            _ => wait_without_poll(control, watch, timeout),
        };
    }
    (fds[0].revents != 0, fds[1].revents != 0)
}

/// The wait of [`wait`] without poll(2), which needs no fd limit: sigtimedwait(2) for the
/// signals the signalfd takes, and SIGIO, which the control pipe sends (O_ASYNC, owned by us)
/// when a message or EOF arrives. A signal taken here is raised again (it is blocked, so it
/// stays pending) for the signalfd's reader; SIGIO only says that the control pipe may be
/// read, and the pipe is made non-blocking, so a spurious SIGIO reads nothing.
fn wait_without_poll(
    control: ControlReceiver<'_>,
    watch: bool,
    timeout: libc::c_int,
) -> (bool, bool) {
    let fd = control.0.as_raw_fd();
    // SAFETY: plain fcntl(2) and getpid(2) on our own fd; failures leave the pipe as it was,
    // and then only the timeouts and signals below wake us.
    unsafe {
        libc::fcntl(fd, libc::F_SETOWN, libc::getpid());
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_ASYNC | libc::O_NONBLOCK);
        }
    }
    let mut set = crate::signals::forwarded_and_sigchld(0);
    set.add(nix::sys::signal::Signal::SIGIO);
    let ts = libc::timespec {
        tv_sec: (timeout.max(0) / 1000) as libc::time_t,
        tv_nsec: ((timeout.max(0) % 1000) as libc::c_long) * 1_000_000,
    };
    // SAFETY: a valid signal set and timespec; no siginfo is asked for (null).
    let sig = unsafe {
        libc::sigtimedwait(
            set.as_ref(),
            std::ptr::null_mut(),
            if timeout < 0 { std::ptr::null() } else { &ts },
        )
    };
    match sig {
        libc::SIGIO => (false, watch),
        s if s > 0 => {
            kill(rustix::process::getpid().as_raw_nonzero().get(), s);
            (true, false)
        }
        // The timeout (EAGAIN), or EINTR: the caller looks at its deadlines again.
        _ => (false, false),
    }
}

fn on_control(
    plan: &Plan,
    children: Option<BorrowedFd<'_>>,
    control: ControlReceiver<'_>,
    cmd: i32,
    st: &mut State,
) {
    match control.recv() {
        Received::Msg(Control::Signal(sig)) => {
            if st.status.is_none() {
                kill(cmd, sig as i32);
            }
        }
        Received::Msg(Control::Kill) => {
            st.killed |= st.status.is_none();
            st.killing = true;
            kill_all(plan, children, cmd, st.status.is_none());
        }
        Received::Msg(Control::Go) | Received::Nothing | Received::Garbage => {}
        Received::Eof => {
            // Every write end is closed: the parent process is gone (or dropped us).
            st.watching_control = false;
            if plan.spec.die_with_parent {
                st.killed |= st.status.is_none();
                st.killing = true;
                kill_all(plan, children, cmd, st.status.is_none());
            }
        }
    }
}

fn drain_signals(sfd: &SignalFd, cmd: i32, cmd_alive: bool) {
    while let Some(sig) = crate::signals::next_signal(sfd) {
        if sig != libc::SIGCHLD && cmd_alive {
            kill(cmd, sig);
        }
    }
}

/// Reap every child that has ended; record the command's status. True when no child is left.
fn reap(cmd: i32, status: &mut Option<i32>) -> bool {
    loop {
        match sys::waitpid_any(true) {
            Ok(Some((pid, raw))) => {
                if pid == cmd {
                    *status = Some(raw);
                }
            }
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

/// Kill everything in the sandbox but the init: as pid 1, kill(-1) reaches every other
/// process of the namespace; without a pid namespace, kill our children (orphans come to us
/// as subreaper).
fn kill_all(plan: &Plan, children: Option<BorrowedFd<'_>>, cmd: i32, cmd_alive: bool) {
    if plan.spec.pidns() {
        kill(-1, libc::SIGKILL);
        return;
    }
    if cmd_alive {
        kill(cmd, libc::SIGKILL);
    }
    kill_children(children);
}

/// SIGKILL every child listed in the init's /proc/thread-self/children, opened before the
/// command ran and read from its start each time (pread).
fn kill_children(children: Option<BorrowedFd<'_>>) {
    signal_children(children, libc::SIGKILL);
}

/// Send `sig` to every child listed in the init's /proc/thread-self/children.
fn signal_children(children: Option<BorrowedFd<'_>>, sig: i32) {
    let Some(fd) = children else {
        return;
    };
    let mut buf = [0u8; 4096];
    let mut cur: i32 = 0;
    let mut in_num = false;
    let mut offset = 0u64;
    while let Ok(n) = rustix::io::pread(fd, &mut buf, offset) {
        if n == 0 {
            break;
        }
        offset += n as u64;
        for &c in buf.iter().take(n) {
            if c.is_ascii_digit() {
                cur = cur.saturating_mul(10).saturating_add((c - b'0') as i32);
                in_num = true;
            } else if in_num {
                kill(cur, sig);
                cur = 0;
                in_num = false;
            }
        }
    }
    if in_num {
        kill(cur, sig);
    }
}

/// Kill everything left, reap it, and exit: the init's own wait for every process makes
/// their CPU time and peak RSS part of the init's resource usage (its children's), which the
/// orchestrator reads when it reaps the init. With a pid namespace, kill(-1) reaches every
/// other process of the namespace (were the init to exit first, the kernel would kill them
/// and reap them unaccounted: it ignores SIGCHLD for a dying pid 1); without one, kill the
/// children, whose orphans then come to us as subreaper. Until none is left.
fn finish_killing(plan: &Plan, children: Option<BorrowedFd<'_>>) -> ! {
    loop {
        if plan.spec.pidns() {
            kill(-1, libc::SIGKILL);
        } else {
            kill_children(children);
        }
        if let Err(e) = sys::waitpid_any(false)
            && e != libc::EINTR
        {
            sys::exit_immediately(0);
        }
    }
}

//! The waiter: the process that stays outside a pid namespace made by `enter()`, hands the
//! terminal over, forwards signals, and exits exactly as the inside did.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use nix::unistd::{Pid, setpgid};

use super::tty::Foreground;

/// What pid 1 wrote on the status pipe so far.
struct Inside {
    /// Its final raw status, once written.
    reported: Option<i32>,
    /// Whether the pipe is still open.
    open: bool,
}

/// The waiter's loop: never returns.
///
/// It waits on a signalfd (SIGCHLD and the forwarded signals, all blocked since before the
/// fork) and on the status pipe. On the pipe, pid 1 reports two things as raw wait statuses:
/// that its main command stopped (job control: Ctrl-Z), and, last, how the command ended.
/// On a stop the waiter takes the terminal back (if it had handed it inside) and stops itself
/// by the same signal, so the shell sees a stopped job; when the shell continues it, the
/// waiter hands the terminal inside only if the shell gave it to the waiter's group (`fg`;
/// `bg` leaves it with the shell) and forwards SIGCONT, which pid 1's Supervisor passes on.
pub(super) fn wait_outside(
    child: Pid,
    status_r: OwnedFd,
    ready_w: OwnedFd,
    sfd: SignalFd,
    report: Report,
) -> ! {
    let _ = setpgid(child, child);
    // Before the go: pid 1 is still dumpable, so its namespaces can be read.
    report.started(child);
    let tty = Foreground::find();
    if let Some(t) = &tty {
        t.hand_if_ours(child);
    }
    let _ = rustix::io::write(&ready_w, b"g");
    drop(ready_w);
    // Nothing here needs the caller's working directory: do not keep it busy.
    let _ = rustix::process::chdir(c"/");
    let _ = rustix::fs::fcntl_setfl(&status_r, rustix::fs::OFlags::NONBLOCK);
    let mut inside = Inside {
        reported: None,
        open: true,
    };
    let raw_own = loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if inside.open {
            fds.push(PollFd::new(status_r.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            // Anything else would come back at once (a spin): wait for pid 1 without polling.
            Err(_) => {
                drop(fds);
                break wait_blocking(child);
            }
        }
        let pipe_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if pipe_ready {
            drain(&status_r, &mut inside, tty.as_ref(), child);
        }
        if let Some(raw) = on_signals(&sfd, child, tty.as_ref()) {
            break raw;
        }
    };
    if inside.open {
        drain(&status_r, &mut inside, tty.as_ref(), child);
    }
    if let Some(t) = tty {
        t.restore();
    }
    // The inside's own report wins: pid 1 exits with 128+n where its command died by a signal.
    let status = crate::status::from_raw(inside.reported.unwrap_or(raw_own));
    report.ended(status);
    crate::exit::exit_as_status(status)
}

/// Read whatever pid 1 wrote: act on stops, keep the last final status.
fn drain(status_r: &OwnedFd, inside: &mut Inside, tty: Option<&Foreground>, child: Pid) {
    loop {
        let mut buf = [0u8; 4];
        match rustix::io::read(status_r, &mut buf) {
            Ok(4) => {
                let raw = i32::from_ne_bytes(buf);
                let stopped = crate::status::from_raw(raw).stopped_signal();
                if stopped.is_some_and(|s| !is_stop_signal(s)) {
                    // Not something pid 1 sends: ignore it.
                    continue;
                }
                if let Some(sig) = stopped {
                    if let Some(t) = tty.filter(|t| t.wanted_by(sig)) {
                        // In the foreground already (`fg` of a running job): the terminal
                        // goes inside and the job goes on.
                        t.hand(child);
                        let _ = crate::sys::kill(child.as_raw(), libc::SIGCONT);
                        continue;
                    }
                    if let Some(t) = tty {
                        t.reclaim();
                    }
                    // Stop by the signal the job inside stopped by (the shell sees the same
                    // WSTOPSIG); the shell continues us with SIGCONT.
                    crate::sys::stop_self(sig);
                } else {
                    inside.reported = Some(raw);
                }
            }
            Ok(0) => {
                inside.open = false;
                return;
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => return,
            Err(_) => {
                // A broken pipe stays broken: stop polling it (it would be ready forever).
                inside.open = false;
                return;
            }
        }
    }
}

/// Wait for pid 1 to end, blocking: its raw wait status.
fn wait_blocking(child: Pid) -> i32 {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return crate::status::raw_exited(code as u8),
            Ok(WaitStatus::Signaled(_, sig, core)) => {
                return crate::status::raw_signaled(sig as i32, core);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return crate::status::raw_exited(125),
        }
    }
}

/// Act on every pending signal: forward the forwarded ones, reap pid 1 on SIGCHLD. Pid 1's
/// raw status once it has ended.
fn on_signals(sfd: &SignalFd, child: Pid, tty: Option<&Foreground>) -> Option<i32> {
    let mut done = None;
    while let Some(sig) = crate::signals::next_signal(sfd) {
        if sig == libc::SIGCHLD {
            if let Some(raw) = reap_child(child) {
                done = Some(raw);
            }
            continue;
        }
        if sig == libc::SIGCONT
            && let Some(t) = tty
        {
            // Continued by the shell: with `fg` (our group has the terminal) the terminal goes
            // inside first; with `bg` the shell keeps it.
            t.hand_if_ours(child);
        }
        let _ = crate::sys::kill(child.as_raw(), sig);
    }
    done
}

/// Reap pid 1 if it has ended: its raw wait status.
fn reap_child(child: Pid) -> Option<i32> {
    use nix::errno::Errno;
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(crate::status::raw_exited(code as u8)),
        Ok(WaitStatus::Signaled(_, sig, core)) => {
            Some(crate::status::raw_signaled(sig as i32, core))
        }
        Ok(_) | Err(Errno::EINTR) => None,
        Err(_) => Some(crate::status::raw_exited(125)),
    }
}

/// The signals that stop a job (the only stop reports pid 1 sends).
fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// bubblewrap's JSON reports (`--info-fd`, `--json-status-fd`), written by the waiter.
pub(crate) struct Report {
    pub info: Option<std::sync::Arc<OwnedFd>>,
    pub status: Option<std::sync::Arc<OwnedFd>>,
    /// The namespaces enter() made: the report names those (as bubblewrap does).
    pub created: crate::ns::kind::NamespaceSet,
}

impl Report {
    /// The first object, to both fds; the info fd is closed after it.
    fn started(&self, child: Pid) {
        if self.info.is_none() && self.status.is_none() {
            return;
        }
        let mut json = format!("{{ \"child-pid\": {}", child.as_raw());
        use crate::ns::kind::Namespace as N;
        for (ns, kind, name) in [
            (N::Cgroup, "cgroup", "cgroup"),
            (N::Ipc, "ipc", "ipc"),
            (N::Mount, "mnt", "mnt"),
            (N::Net, "net", "net"),
            (N::Pid, "pid", "pid"),
            (N::Uts, "uts", "uts"),
        ] {
            if !self.created.contains(ns) {
                continue;
            }
            let path = format!("/proc/{}/ns/{name}", child.as_raw());
            if let Ok(st) = rustix::fs::stat(path.as_str()) {
                json.push_str(&format!(", \"{kind}-namespace\": {}", st.st_ino));
            }
        }
        json.push_str(" }\n");
        for fd in self.info.iter().chain(self.status.iter()) {
            write_all(fd, json.as_bytes());
        }
        if let Some(info) = &self.info {
            // Closed now, as bubblewrap does, so that its reader sees EOF: /dev/null takes the
            // number (other copies of the fd in this process live until its exit).
            if let Ok(null) = rustix::fs::open(
                c"/dev/null",
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ) {
                let _ = crate::sys::dup_onto(null.as_raw_fd(), info.as_raw_fd(), true);
            }
        }
    }

    /// The last object, to the status fd.
    fn ended(&self, status: std::process::ExitStatus) {
        let Some(fd) = &self.status else {
            return;
        };
        let json = match (status.code(), status.signal()) {
            (Some(code), _) => format!("{{ \"exit-code\": {code} }}\n"),
            (None, Some(sig)) => format!(
                "{{ \"exit-code\": {}, \"exit-signal\": {sig}, \"core-dumped\": {} }}\n",
                128 + sig,
                status.core_dumped()
            ),
            (None, None) => return,
        };
        write_all(fd, json.as_bytes());
    }
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

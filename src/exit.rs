//! [`exit_as_status`]: leave the process exactly as a child ended.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::OnceLock;

/// The process-wide channel that carries the raw status of pid 1 out of a pid namespace made
/// by [`enter`](crate::enter()); unset when there is none. Set once and never closed: it lives
/// as long as the process.
static PID1_STATUS_FD: OnceLock<OwnedFd> = OnceLock::new();

pub(crate) fn set_pid1_status_fd(fd: OwnedFd) {
    let _ = PID1_STATUS_FD.set(fd);
}

fn pid1_status_fd() -> Option<BorrowedFd<'static>> {
    PID1_STATUS_FD.get().map(AsFd::as_fd)
}

fn write_raw(fd: BorrowedFd<'_>, raw: i32) {
    let buf = raw.to_ne_bytes();
    let mut off = 0;
    while off < buf.len() {
        match rustix::io::write(fd, &buf[off..]) {
            Ok(n) => off += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Tell the process outside that the main command stopped by `sig` (job control), when this is
/// pid 1 of a pid namespace made by [`enter()`](crate::enter()). Returns false when there is
/// nobody to tell.
pub(crate) fn report_stopped(sig: i32) -> bool {
    match pid1_status_fd() {
        Some(fd) => {
            write_raw(fd, ((sig & 0xff) << 8) | 0x7f);
            true
        }
        None => false,
    }
}

/// Exit the calling process exactly as `status` says: with the same exit code, or by the same
/// signal (reset to its default action, unblocked), with the same core flag: without one,
/// `RLIMIT_CORE` is set to 0 so no second core is dumped; with one, the kernel only sets the
/// flag if a dump succeeds, so a one-page core of this process is written into a fresh
/// `$TMPDIR/nsbox-core.PID` directory (never over the program's own core file).
///
/// Inside a pid namespace made by [`enter`](crate::enter()) the process is pid 1 and cannot die
/// by its own signal; there the raw status is written to the process outside, which then
/// reproduces it (and this process exits with `128 + n`, which nobody sees). Where a signal's
/// default action does not kill (SIGCHLD, SIGWINCH, SIGCONT, stop signals), the process exits
/// with `128 + n`.
pub fn exit_as_status(status: ExitStatus) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let outside = pid1_status_fd();
    if let Some(fd) = outside {
        write_raw(fd, status.into_raw());
    }
    if let Some(code) = status.code() {
        std::process::exit(code);
    }
    if let Some(sig) = status.signal() {
        // pid 1 ignores the signals it sends itself: there the waiter outside reproduces the
        // death from the raw status written above.
        if outside.is_none() {
            die_by_signal(sig, status.core_dumped());
        }
        std::process::exit(128 + sig);
    }
    // Stopped or continued: not an end; report failure.
    std::process::exit(1)
}

/// Die by `sig`: reset it to SIG_DFL, unblock it and send it to ourselves. Returns only if the
/// signal did not kill (a signal whose default action is not to terminate).
///
/// With `core_dumped` false, RLIMIT_CORE is set to 0 so no core is written (and the wait
/// status has no core flag). With `core_dumped` true the caller's wait status must carry the
/// core flag, which the kernel sets only when a dump succeeds: the soft RLIMIT_CORE is set to
/// one page (the smallest dump the kernel writes; a truncated dump still sets the flag, and a
/// `|pipe` core_pattern ignores the limit), and the process first moves into a fresh directory
/// `$TMPDIR/nsbox-core.PID`, so a pattern such as `core` never overwrites the core file the
/// program itself left in the working directory. If that directory cannot be made, no core is
/// written and the flag is lost rather than the program's core.
fn die_by_signal(sig: i32, core_dumped: bool) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let dump = core_dumped && enter_core_dir();
    crate::sys::set_default_action(sig);
    let (soft, hard) = if dump {
        let (_, hard) = getrlimit(Resource::RLIMIT_CORE).unwrap_or((0, 0));
        // One page: the kernel skips a dump smaller than that.
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |p| p.max(4096) as u64);
        (hard.min(page), hard)
    } else {
        (0, 0)
    };
    let _ = setrlimit(Resource::RLIMIT_CORE, soft, hard);
    crate::signals::mask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        &crate::signals::set_of(&[sig]),
    );
    if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
        let _ = nix::sys::signal::raise(sig);
        // A process-directed copy in case another thread would take it.
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), sig);
    }
    // Give a pending fatal signal the chance to be acted on.
    std::thread::sleep(std::time::Duration::from_millis(50));
}

/// Make `$TMPDIR/nsbox-core.PID` (mode 0700) and move into it; false if that fails.
fn enter_core_dir() -> bool {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("nsbox-core.{}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).is_ok()
        && std::env::set_current_dir(&dir).is_ok()
}

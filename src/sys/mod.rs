//! Thin wrappers, one per system call that nix does not cover the way nsbox needs.
//!
//! Every `unsafe` block of the parent side lives here (the child side lives in
//! `src/child/`). Each wrapper is named after its syscall and links its man page.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};

use nix::errno::Errno;
use nix::unistd::Pid;

/// `_exit`-free process exit for the parent side: flushes nothing more, runs atexit handlers.
pub(crate) fn exit_now(code: i32) -> ! {
    std::process::exit(code)
}

/// Write all of `buf` to `fd`, retrying on EINTR; errors are ignored (used on the way out).
pub(crate) fn write_all_raw(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid slice for reads of `buf.len()` bytes; a bad fd only
        // makes write(2) fail with EBADF.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if Errno::last() == Errno::EINTR {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// Die by `sig`: reset it to SIG_DFL, unblock it and send it to the calling thread. Returns
/// only if the signal did not kill (pid 1, or a signal whose default action is not to
/// terminate).
///
/// With `core_dumped` false, RLIMIT_CORE is set to 0 so no core is written (and the wait
/// status has no core flag). With `core_dumped` true the caller's wait status must carry the
/// core flag, which the kernel sets only when a dump succeeds: the soft RLIMIT_CORE is set to
/// one page (the smallest dump the kernel writes; a truncated dump still sets the flag, and a
/// `|pipe` core_pattern ignores the limit), and the process first moves into a fresh directory
/// `$TMPDIR/nsbox-core.PID`, so a pattern such as `core` never overwrites the core file the
/// program itself left in the working directory. If that directory cannot be made, no core is
/// written and the flag is lost rather than the program's core.
pub(crate) fn die_by_signal(sig: i32, core_dumped: bool) {
    let dump = core_dumped && enter_core_dir();
    // SAFETY: plain syscalls on process state; every pointer passed is to a local that lives
    // across the call.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if dump {
            libc::getrlimit(libc::RLIMIT_CORE, &mut rl);
            let page = libc::sysconf(libc::_SC_PAGESIZE).max(4096) as libc::rlim_t;
            rl.rlim_cur = rl.rlim_max.min(page);
        }
        libc::setrlimit(libc::RLIMIT_CORE, &rl);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
        // A process-directed copy in case another thread would take it.
        libc::kill(libc::getpid(), sig);
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

/// Result of [`fork`].
pub(crate) enum Fork {
    Parent(Pid),
    Child,
}

/// fork(2).
///
/// # Safety
///
/// The calling process must be single-threaded (the child may then run any code), or the
/// child must only run async-signal-safe code until it execs or exits.
pub(crate) unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: the caller upholds the single-thread rule above.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(Pid::from_raw(pid))),
    }
}

/// fork(2) for a process that has one thread, checked first (`/proc/self/status`): then the
/// child may run any code. Fails with EINVAL in a multi-threaded process.
pub(crate) fn fork_single_threaded() -> io::Result<Fork> {
    if crate::namespace::thread_count()? != 1 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: the process has a single thread (checked just above; nsbox starts none).
    unsafe { fork() }
}

/// pidfd_open(2): a pidfd for `pid`, close-on-exec.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2): send `sig` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a plain syscall; a null siginfo means "as kill(2) would".
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Resource usage of a reaped process (and the descendants it waited for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rusage {
    /// User CPU time.
    pub user_time: std::time::Duration,
    /// System CPU time.
    pub system_time: std::time::Duration,
    /// Maximum resident set size, in bytes.
    pub max_rss_bytes: u64,
}

fn tv(t: libc::timeval) -> std::time::Duration {
    std::time::Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000)
}

/// The raw waitid(2) syscall on a pidfd (`P_PIDFD`), retried on EINTR. Unlike glibc's
/// wrapper it also fills `rusage` when given. Returns the siginfo; `si_pid` is 0 when nothing
/// matched under WNOHANG.
fn waitid_raw(
    pidfd: BorrowedFd<'_>,
    options: libc::c_int,
    rusage: Option<&mut libc::rusage>,
) -> io::Result<libc::siginfo_t> {
    let ru: *mut libc::rusage = match rusage {
        Some(r) => r,
        None => std::ptr::null_mut(),
    };
    loop {
        // SAFETY: siginfo_t is a plain C struct for which all-zero is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` and `ru` (or null, which the kernel accepts) are valid for writes for
        // the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PIDFD,
                pidfd.as_raw_fd(),
                &mut info as *mut libc::siginfo_t,
                options,
                ru,
            )
        };
        if r == 0 {
            return Ok(info);
        }
        if Errno::last() != Errno::EINTR {
            return Err(io::Error::last_os_error());
        }
    }
}

/// waitid(2) on a pidfd (`P_PIDFD`) with `WEXITED` (and `WNOHANG` when `nohang`), through the
/// raw syscall so that the kernel also fills the resource usage. Returns `None` when the
/// process has not exited yet (only with `nohang`).
pub fn waitid_pidfd(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<(i32, Rusage)>> {
    // SAFETY: rusage is a plain C struct for which all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let options = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
    let info = waitid_raw(pidfd, options, Some(&mut ru))?;
    // SAFETY: after a successful waitid the pid and status fields are initialised.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    let raw = crate::status::raw_from_siginfo(info.si_code, status);
    let usage = Rusage {
        user_time: tv(ru.ru_utime),
        system_time: tv(ru.ru_stime),
        max_rss_bytes: (ru.ru_maxrss.max(0) as u64) * 1024,
    };
    Ok(Some((raw, usage)))
}

/// waitid(2) on a pidfd with `WSTOPPED | WNOHANG`: the stopping signal if the process has
/// stopped since last asked (a stop report is consumed once).
pub fn waitid_pidfd_stopped(pidfd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    let info = waitid_raw(pidfd, libc::WSTOPPED | libc::WNOHANG, None)?;
    // SAFETY: after a successful waitid the pid and status fields are initialised.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 || info.si_code != libc::CLD_STOPPED {
        return Ok(None);
    }
    Ok(Some(status))
}

/// Whether clone3(2) works here: 0 unknown, 1 yes, 2 no. Probed once (ENOSYS is permanent).
/// Used by the spawn mode (`Sandbox`), which is merged separately.
static CLONE3: AtomicU8 = AtomicU8::new(0);

pub(crate) fn clone3_known_missing() -> bool {
    CLONE3.load(Ordering::Relaxed) == 2
}

/// Make every later spawn use the clone(2) + pidfd_open(2) fallback, as on a kernel without
/// clone3. For tests of the fallback path only.
#[doc(hidden)]
pub fn force_clone3_fallback() {
    note_clone3_missing();
}

pub(crate) fn note_clone3_missing() {
    CLONE3.store(2, Ordering::Relaxed);
}

pub(crate) fn note_clone3_works() {
    CLONE3.store(1, Ordering::Relaxed);
}

/// setdomainname(2).
pub(crate) fn setdomainname(name: &[u8]) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`, valid for the call.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}

/// Block (`how = SIG_BLOCK`), unblock or set the calling thread's signal mask to `sigs`;
/// returns the previous mask.
pub(crate) fn sigmask(how: libc::c_int, sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; all pointers are to locals valid for the calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(how, &set, &mut old);
        old
    }
}

/// Restore a mask returned by [`sigmask`].
pub(crate) fn restore_sigmask(old: &libc::sigset_t) {
    // SAFETY: `old` is a valid sigset_t.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

/// sigwaitinfo(2) on `sigs` (which must be blocked): the signal number and the sender's pid.
pub(crate) fn sigwaitinfo(sigs: &[i32]) -> io::Result<(i32, i32)> {
    // SAFETY: sigset_t and siginfo_t are plain data; the pointers are to locals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::sigwaitinfo(&set, &mut info);
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((r, info.si_pid()))
    }
}

/// prctl(PR_SET_PDEATHSIG, sig).
pub(crate) fn set_pdeathsig(sig: i32) -> io::Result<()> {
    // SAFETY: a plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// prctl(PR_SET_CHILD_SUBREAPER, 1).
pub(crate) fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: a plain prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// waitpid(-1, WNOHANG): `Ok(Some((pid, raw status)))` for a reaped child, `Ok(None)` when
/// children exist but none has changed state, `Err(ECHILD)` when there are none.
pub(crate) fn reap_any_nohang() -> Result<Option<(Pid, i32)>, Errno> {
    reap_any(libc::WNOHANG)
}

/// waitpid(-1, 0): blocks until a child ends; `Err(ECHILD)` when there are none.
pub(crate) fn reap_any_blocking() -> Result<Option<(Pid, i32)>, Errno> {
    reap_any(0)
}

fn reap_any(flags: libc::c_int) -> Result<Option<(Pid, i32)>, Errno> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call.
        let r = unsafe { libc::waitpid(-1, &mut status, flags) };
        match r {
            0 => return Ok(None),
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return Err(Errno::last()),
            pid => return Ok(Some((Pid::from_raw(pid), status))),
        }
    }
}

/// Register an owned fd with tokio's reactor.
pub(crate) fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the OwnedFd owns a valid open fd; AsyncFd takes ownership and nothing else can
    // close or replace it while it is registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

/// Borrow standard fd `n` (0, 1 or 2) for the life of the process. A closed standard fd only
/// makes the calls on it fail with EBADF.
pub(crate) fn std_fd(n: RawFd) -> BorrowedFd<'static> {
    debug_assert!((0..=2).contains(&n));
    // SAFETY: fds 0..=2 are never closed by nsbox; if the program closed one, operations on
    // the number fail with EBADF rather than touching memory.
    unsafe { BorrowedFd::borrow_raw(n) }
}

/// The arguments of clone3(2) (`struct clone_args`, first version: 64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// What [`clone_pidfd`] returned.
pub(crate) enum Cloned {
    /// In the parent: the child's pid and a pidfd for it.
    Parent(Pid, OwnedFd),
    /// In the child.
    Child,
}

/// Create a child with `flags` (`CLONE_NEW*`) in fork style (no shared memory, SIGCHLD on
/// exit) and get a pidfd for it: clone3(2) with `CLONE_PIDFD`, or, where clone3 is missing
/// (ENOSYS, remembered), clone(2) followed by pidfd_open(2).
///
/// # Safety
///
/// In the child, only async-signal-safe code may run until exec or `_exit` (the caller may be
/// multi-threaded). glibc's fork handlers do not run and its cached thread id is the parent's
/// thread's: the child must not use pthread functions or `raise`.
pub(crate) unsafe fn clone_pidfd(flags: u64) -> io::Result<Cloned> {
    if !clone3_known_missing() {
        let mut pidfd: libc::c_int = -1;
        let args = CloneArgs {
            flags: flags | libc::CLONE_PIDFD as u64,
            pidfd: &mut pidfd as *mut libc::c_int as u64,
            // With CLONE_PARENT the child inherits the caller's exit signal; clone3 insists
            // that exit_signal be 0 then.
            exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
                0
            } else {
                libc::SIGCHLD as u64
            },
            ..Default::default()
        };
        // SAFETY: `args` is a valid clone_args of the size passed; without CLONE_VM the child
        // gets a copy of the address space and returns here with 0, as with fork(2).
        let r = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if r == 0 {
            return Ok(Cloned::Child);
        }
        if r > 0 {
            note_clone3_works();
            // SAFETY: the kernel stored a new pidfd that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            return Ok(Cloned::Parent(Pid::from_raw(r as i32), fd));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(err);
        }
        note_clone3_missing();
    }
    // SAFETY: clone without CLONE_VM and with a null stack behaves as fork(2).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match r {
        0 => Ok(Cloned::Child),
        r if r < 0 => Err(io::Error::last_os_error()),
        pid => {
            let pid = Pid::from_raw(pid as i32);
            match pidfd_open(pid) {
                Ok(fd) => Ok(Cloned::Parent(pid, fd)),
                Err(e) => {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(pid, None);
                    Err(e)
                }
            }
        }
    }
}

/// Block every signal in the calling thread; returns the old mask for [`restore_sigmask`].
pub(crate) fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the pointers are to locals.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Borrow a raw fd the caller knows to be open for the duration of the borrow.
pub(crate) fn borrow_fd<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: callers pass fds they hold open (owned elsewhere) for the borrow's use.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Take ownership of a raw fd just returned by the kernel (dup, SCM_RIGHTS).
pub(crate) fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a new fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Set `sig` to SIG_IGN.
pub(crate) fn ignore_signal(sig: i32) {
    // SAFETY: an all-zero sigaction with SIG_IGN is valid.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

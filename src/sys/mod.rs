//! The syscall layer: one thin wrapper per system call that neither nix nor rustix offers
//! the way nsbox needs it, named after the call and linked to its man page: clone3 with
//! `CLONE_PIDFD` (and its clone + pidfd_open fallback), waitid on a pidfd with the resource
//! usage, waitpid(-1) with the raw status, a fork without atfork handlers, the mount lock's
//! vfork-style helper, the loopback ioctl, sigaction with SIG_DFL/SIG_IGN (and reading it),
//! signal sets and kill(2) for realtime signals, a stop by the default action, dup onto a
//! number, close_range, getcwd into a buffer, `_exit`.
//!
//! This is the bottom layer: it imports nothing from the rest of the crate, and holds no
//! policy. With `src/child/`, it is the only place with `unsafe` code; every block carries a
//! SAFETY comment. The wrappers marked async-signal-safe make one or two raw system calls and
//! touch no allocator or lock, so the child side may call them after a clone.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::{io, time::Duration};

/// The calling thread's errno. Async-signal-safe.
pub(crate) fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot, valid for reads.
    unsafe { *libc::__errno_location() }
}

/// `-1` and errno to an error, anything else to the value (std's `cvt`).
fn cvt(r: libc::c_long) -> Result<libc::c_long, i32> {
    if r < 0 { Err(errno()) } else { Ok(r) }
}

/// The raw wait status (the `int` of wait(2)) from waitid(2)'s `si_code` and `si_status`.
pub(crate) fn raw_status_from_siginfo(code: i32, status: i32) -> i32 {
    match code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        // Stopped/continued do not end a process; keep a recognizable encoding.
        libc::CLD_STOPPED | libc::CLD_TRAPPED => ((status & 0xff) << 8) | 0x7f,
        _ => 0xffff,
    }
}

/// What [`waitid_pidfd`] learned about a process that ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Exited {
    /// Its raw wait status.
    pub raw: i32,
    /// User CPU time of the process and the children it waited for.
    pub user_time: Duration,
    /// System CPU time, likewise.
    pub system_time: Duration,
    /// The largest resident set size among them, in bytes.
    pub max_rss_bytes: u64,
}

fn duration(t: libc::timeval) -> Duration {
    Duration::new(
        t.tv_sec.max(0) as u64,
        (t.tv_usec.clamp(0, 999_999) as u32) * 1000,
    )
}

/// [waitid(2)] on a pidfd (`P_PIDFD`) through the raw syscall, which (unlike glibc's wrapper
/// and nix's) also fills the resource usage; retried on EINTR. `si_pid` is 0 in the returned
/// siginfo when nothing matched under WNOHANG.
///
/// [waitid(2)]: https://man7.org/linux/man-pages/man2/waitid.2.html
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
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: `info` and `ru` (or null, which the kernel accepts) are valid for writes for
        // the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PIDFD,
                pidfd.as_raw_fd(),
                info.as_mut_ptr(),
                options,
                ru,
            )
        };
        match cvt(r) {
            // SAFETY: zero-initialised and then filled by the kernel: a valid siginfo_t.
            Ok(_) => return Ok(unsafe { info.assume_init() }),
            Err(libc::EINTR) => continue,
            Err(e) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// waitid(2) on a pidfd with `WEXITED` (and `WNOHANG` when `nohang`): reaps the process and
/// returns its raw status and resource usage; `None` when it has not exited (only with
/// `nohang`).
pub(crate) fn waitid_pidfd(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<Exited>> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    let options = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
    // SAFETY: all-zero is a valid rusage (plain integers).
    let info = waitid_raw(pidfd, options, Some(unsafe { ru.assume_init_mut() }))?;
    // SAFETY: after a successful waitid the pid and status fields are initialised.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    // SAFETY: zero-initialised, then filled by the kernel.
    let ru = unsafe { ru.assume_init() };
    Ok(Some(Exited {
        raw: raw_status_from_siginfo(info.si_code, status),
        user_time: duration(ru.ru_utime),
        system_time: duration(ru.ru_stime),
        max_rss_bytes: (ru.ru_maxrss.max(0) as u64) * 1024,
    }))
}

/// waitid(2) on a pidfd with `WSTOPPED | WNOHANG`: the stopping signal if the process has
/// stopped since last asked (a stop report is consumed once).
pub(crate) fn waitid_pidfd_stopped(pidfd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    let info = waitid_raw(pidfd, libc::WSTOPPED | libc::WNOHANG, None)?;
    // SAFETY: after a successful waitid the pid and status fields are initialised.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 || info.si_code != libc::CLD_STOPPED {
        return Ok(None);
    }
    Ok(Some(status))
}

/// [waitpid(2)] for any child (`-1`), retried on EINTR: `Ok(Some((pid, raw status)))` for a
/// reaped child, `Ok(None)` under WNOHANG when children exist but none has ended,
/// `Err(ECHILD)` when there are none. nix's waitpid decodes the status; nsbox keeps it raw.
/// Async-signal-safe.
///
/// [waitpid(2)]: https://man7.org/linux/man-pages/man2/waitpid.2.html
pub(crate) fn waitpid_any(nohang: bool) -> Result<Option<(i32, i32)>, i32> {
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call.
        let r = unsafe { libc::waitpid(-1, &mut status, flags) };
        match cvt(r as libc::c_long) {
            Ok(0) => return Ok(None),
            Ok(pid) => return Ok(Some((pid as i32, status))),
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Whether clone3(2) works here: 0 unknown, 1 yes, 2 no. Probed once (ENOSYS is permanent).
static CLONE3: AtomicU8 = AtomicU8::new(0);

/// Make every later clone use the clone(2) + pidfd_open(2) fallback, as on a kernel without
/// clone3. For tests of the fallback path.
pub(crate) fn force_clone3_fallback() {
    CLONE3.store(2, Ordering::Relaxed);
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
    Parent(i32, OwnedFd),
    /// In the child.
    Child,
}

/// Create a child with `flags` (`CLONE_NEW*`, `CLONE_PARENT`) in fork style (no shared
/// memory, SIGCHLD on exit) and get a pidfd for it: [clone3(2)] with `CLONE_PIDFD`, or,
/// where clone3 is missing (ENOSYS, remembered), clone(2) followed by pidfd_open(2).
///
/// # Safety
///
/// In the child, only async-signal-safe code may run until exec or `_exit` (the caller may be
/// multi-threaded). glibc's fork handlers do not run and its cached thread id is the parent's
/// thread's: the child must not use pthread functions or `raise`.
///
/// [clone3(2)]: https://man7.org/linux/man-pages/man2/clone3.2.html
pub(crate) unsafe fn clone_pidfd(flags: u64) -> io::Result<Cloned> {
    if CLONE3.load(Ordering::Relaxed) != 2 {
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
        match cvt(r) {
            Ok(0) => return Ok(Cloned::Child),
            Ok(pid) => {
                CLONE3.store(1, Ordering::Relaxed);
                // SAFETY: the kernel stored a new pidfd that nothing else owns.
                let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
                return Ok(Cloned::Parent(pid as i32, fd));
            }
            Err(libc::ENOSYS) => CLONE3.store(2, Ordering::Relaxed),
            Err(e) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
    match raw_fork_flags(flags as libc::c_ulong) {
        Ok(0) => Ok(Cloned::Child),
        Err(e) => Err(io::Error::from_raw_os_error(e)),
        Ok(pid) => match rustix_pidfd_open(pid) {
            Ok(fd) => Ok(Cloned::Parent(pid, fd)),
            Err(e) => {
                // SAFETY: plain syscalls on our own new child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                Err(e)
            }
        },
    }
}

fn rustix_pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let pid =
        rustix::process::Pid::from_raw(pid).ok_or(io::Error::from_raw_os_error(libc::ESRCH))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// [clone(2)] with only `flags | SIGCHLD` and a null stack: a fork without glibc's atfork
/// handlers (which take malloc locks that another thread of the original process may have
/// held at the clone). Returns 0 in the child. Async-signal-safe.
///
/// [clone(2)]: https://man7.org/linux/man-pages/man2/clone.2.html
pub(crate) fn raw_fork_flags(flags: libc::c_ulong) -> Result<i32, i32> {
    // SAFETY: clone without CLONE_VM and with a null stack behaves as fork(2): the child gets
    // a copy of the address space and returns here with 0.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    cvt(r).map(|pid| pid as i32)
}

/// What the helper of [`open_locked_mount_ns`] hands back through the memory it shares.
struct LockHelper {
    fd: RawFd,
    err: i32,
}

extern "C" fn lock_helper(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `LockHelper`; the parent is suspended until we exit.
    let shared = unsafe { &mut *arg.cast::<LockHelper>() };
    // SAFETY: NUL-terminated path; the fd lands in the fd table we share with the parent.
    let fd = unsafe {
        libc::open(
            c"/proc/self/ns/mnt".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        shared.err = errno();
    } else {
        shared.fd = fd;
    }
    0
}

/// A copy of the caller's mount namespace, owned by a new user namespace whose owner is the
/// caller, as an open fd: a helper made with [clone(2)] `CLONE_VM | CLONE_VFORK | CLONE_FILES
/// | CLONE_NEWUSER | CLONE_NEWNS` (as posix_spawn shares memory: no page tables are copied,
/// and we are suspended until it exits) opens its `/proc/self/ns/mnt` into the fd table we
/// share, and exits. Async-signal-safe; for a single-threaded caller.
pub(crate) fn open_locked_mount_ns() -> Result<OwnedFd, i32> {
    let mut stack = [0u8; 16 * 1024];
    let mut shared = LockHelper { fd: -1, err: 0 };
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::CLONE_FILES
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::SIGCHLD;
    // SAFETY: `lock_helper` runs on `stack` (16-byte aligned top) with a pointer to `shared`,
    // both of which outlive it: CLONE_VFORK suspends us until it has exited.
    let helper = unsafe {
        libc::clone(
            lock_helper,
            top as *mut libc::c_void,
            flags,
            (&mut shared as *mut LockHelper).cast(),
        )
    };
    if helper < 0 {
        return Err(errno());
    }
    // SAFETY: reaping our own (already exited) helper.
    unsafe { while libc::waitpid(helper, std::ptr::null_mut(), 0) < 0 && errno() == libc::EINTR {} }
    std::hint::black_box(&mut stack);
    if shared.fd < 0 {
        return Err(if shared.err != 0 {
            shared.err
        } else {
            libc::EPROTO
        });
    }
    // SAFETY: the helper opened this fd for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(shared.fd) })
}

/// Bring the interface `lo` up: `SIOCGIFFLAGS`, then `SIOCSIFFLAGS` with `IFF_UP |
/// IFF_RUNNING`, on a datagram socket ([netdevice(7)]); neither nix nor rustix has these
/// ioctls. Async-signal-safe.
///
/// [netdevice(7)]: https://man7.org/linux/man-pages/man7/netdevice.7.html
pub(crate) fn loopback_up() -> Result<(), i32> {
    // SAFETY: plain socket call.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(errno());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns (closed on drop).
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: a valid ifreq for these ioctls; the union member read is the one just filled.
    unsafe {
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(errno());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// Set `sig` to its default action ([sigaction(2)]). Async-signal-safe.
///
/// [sigaction(2)]: https://man7.org/linux/man-pages/man2/sigaction.2.html
pub(crate) fn set_default_action(sig: i32) {
    set_action(sig, libc::SIG_DFL);
}

/// Set `sig` to be ignored. Async-signal-safe.
pub(crate) fn ignore_signal(sig: i32) {
    set_action(sig, libc::SIG_IGN);
}

fn set_action(sig: i32, action: libc::sighandler_t) {
    if sig == 32 || sig == 33 {
        // glibc's sigaction refuses the two numbers it keeps for its threads, and a SIG_IGN
        // there would outlive every exec: the kernel's own call takes them. Its struct (handler,
        // flags, restorer, mask) is all zero but the handler for SIG_DFL and SIG_IGN.
        let ksa: [u64; 4] = [action as u64, 0, 0, 0];
        // SAFETY: rt_sigaction(2) reads a valid kernel sigaction of 32 bytes and writes nothing
        // (no old action); the mask size is the kernel's 8 bytes.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                ksa.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        };
        return;
    }
    // SAFETY: an all-zero sigaction is valid; with SIG_DFL or SIG_IGN no handler code is
    // registered. Failures (SIGKILL, reserved signals) are harmless.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = action;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Whether `sig`'s disposition is SIG_IGN ([sigaction(2)] with no new action); false for a
/// number the C library refuses. Async-signal-safe.
///
/// [sigaction(2)]: https://man7.org/linux/man-pages/man2/sigaction.2.html
pub(crate) fn is_ignored(sig: i32) -> bool {
    // SAFETY: sigaction only writes the old action into `old`, a valid all-zero sigaction.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// The signal set of the numbers in `bits` (bit n-1 for signal n), realtime signals included,
/// which nix's `Signal` cannot name ([sigaddset(3)]; numbers the C library reserves are left
/// out). Async-signal-safe.
///
/// [sigaddset(3)]: https://man7.org/linux/man-pages/man3/sigaddset.3.html
pub(crate) fn sigset_of_bits(bits: u64) -> nix::sys::signal::SigSet {
    let mut raw: libc::sigset_t = *nix::sys::signal::SigSet::empty().as_ref();
    for sig in 1..=64 {
        if bits & (1u64 << (sig - 1)) != 0 {
            // SAFETY: `raw` is an initialized sigset_t; a refused number leaves it unchanged.
            unsafe { libc::sigaddset(&mut raw, sig) };
        }
    }
    // SAFETY: `raw` was initialized by sigemptyset (SigSet::empty) and changed by sigaddset.
    unsafe { nix::sys::signal::SigSet::from_sigset_t_unchecked(raw) }
}

/// The numbers in `set` as bits (bit n-1 for signal n; [sigismember(3)]). Async-signal-safe.
///
/// [sigismember(3)]: https://man7.org/linux/man-pages/man3/sigismember.3.html
pub(crate) fn sigset_bits(set: &nix::sys::signal::SigSet) -> u64 {
    let mut bits = 0u64;
    for sig in 1..=64 {
        // SAFETY: `set` is an initialized sigset_t; sigismember only reads it.
        if unsafe { libc::sigismember(set.as_ref(), sig) } == 1 {
            bits |= 1u64 << (sig - 1);
        }
    }
    bits
}

/// [kill(2)] with any signal number (nix's `Signal` cannot name realtime signals).
/// Async-signal-safe.
///
/// [kill(2)]: https://man7.org/linux/man-pages/man2/kill.2.html
pub(crate) fn kill(pid: i32, sig: i32) -> Result<(), i32> {
    // SAFETY: plain kill(2).
    if unsafe { libc::kill(pid, sig) } < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Stop the calling thread's process by `sig` as its default action would, whatever the
/// disposition and the mask say: set SIG_DFL, unblock `sig`, [raise(3)] it, then put the mask
/// and the disposition back once the process has been continued. A stop signal sent to an
/// orphaned process group is discarded by the kernel, as for any process. Async-signal-safe.
///
/// [raise(3)]: https://man7.org/linux/man-pages/man3/raise.3.html
pub(crate) fn stop_self(sig: i32) {
    // SAFETY: sigaction saves and restores the disposition (`old` is a valid sigaction, and
    // restoring it reinstalls exactly what was there); sigprocmask and raise act on this
    // thread only. Nothing is allocated.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        let mut old: libc::sigaction = std::mem::zeroed();
        let saved = libc::sigaction(sig, &dfl, &mut old) == 0;
        let mut one: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut one);
        libc::sigaddset(&mut one, sig);
        let mut old_mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, &mut old_mask);
        libc::raise(sig);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut());
        if saved {
            libc::sigaction(sig, &old, std::ptr::null_mut());
        }
    }
}

/// Borrow a raw fd the caller knows to be open for the duration of the borrow (a standard
/// stream, or an fd a plan laid out). A closed number only makes calls on it fail with EBADF.
pub(crate) fn borrow_fd<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: callers pass fds they hold open for the borrow's use; fd numbers carry no
    // memory safety, a stale one only makes the syscalls fail with EBADF.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Take ownership of a raw fd just returned by the kernel (SCM_RIGHTS, a helper's open).
pub(crate) fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a new fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Register an owned fd with tokio's reactor for readability; on failure the fd comes back
/// with the error, so that the caller can still use it (kill and reap through a pidfd).
pub(crate) fn try_async_fd(
    fd: OwnedFd,
) -> Result<tokio::io::unix::AsyncFd<OwnedFd>, (OwnedFd, io::Error)> {
    // SAFETY: the OwnedFd owns a valid open fd; AsyncFd takes ownership and nothing else can
    // close or replace it while it is registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts())
}

/// Register an owned fd with tokio's reactor for readability.
pub(crate) fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    try_async_fd(fd).map_err(|(_, e)| e)
}

/// [_exit(2)]: leave now, running no user-space cleanup. Async-signal-safe.
///
/// [_exit(2)]: https://man7.org/linux/man-pages/man2/_exit.2.html
pub(crate) fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

/// [close_range(2)] of `[lo, hi]`, or one close(2) at a time up to fd 65535 on kernels
/// before 5.9. Async-signal-safe.
///
/// [close_range(2)]: https://man7.org/linux/man-pages/man2/close_range.2.html
pub(crate) fn close_range(lo: u32, hi: u32) {
    // SAFETY: closing fd numbers the caller does not use; no memory is involved.
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) };
    if r < 0 {
        let mut fd = lo;
        while fd <= hi && fd < 65536 {
            // SAFETY: as above.
            unsafe { libc::close(fd as RawFd) };
            fd += 1;
        }
    }
}

/// [dup3(2)] `fd` onto `target` with close-on-exec when `cloexec`, else dup2(2), which
/// leaves the new fd inherited across exec (`fd` and `target` must differ). Async-signal-safe.
///
/// [dup3(2)]: https://man7.org/linux/man-pages/man2/dup3.2.html
pub(crate) fn dup_onto(fd: RawFd, target: RawFd, cloexec: bool) -> Result<(), i32> {
    // SAFETY: duplicating fd numbers; what was at `target` is closed by the kernel, and the
    // caller's plan says it is not needed.
    let r = unsafe {
        if cloexec {
            libc::dup3(fd, target, libc::O_CLOEXEC)
        } else {
            libc::dup2(fd, target)
        }
    };
    cvt(r as libc::c_long).map(drop)
}

/// [clock_gettime(2)] of CLOCK_MONOTONIC, in milliseconds. Through libc (the vDSO glibc
/// set up before the clone), not rustix: rustix finds the vDSO lazily on first use, which can
/// allocate (reading /proc/self/auxv where PR_GET_AUXV is missing, before Linux 6.4) and that
/// first use would be in a cloned child. Async-signal-safe.
///
/// [clock_gettime(2)]: https://man7.org/linux/man-pages/man2/clock_gettime.2.html
pub(crate) fn monotonic_ms() -> u64 {
    let mut ts = std::mem::MaybeUninit::<libc::timespec>::zeroed();
    // SAFETY: `ts` is valid for writes; CLOCK_MONOTONIC is always supported.
    let ts = unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, ts.as_mut_ptr());
        ts.assume_init()
    };
    (ts.tv_sec.max(0) as u64)
        .saturating_mul(1000)
        .saturating_add(ts.tv_nsec.max(0) as u64 / 1_000_000)
}

/// The `CLONE_NEW*` kind of the namespace behind `fd` ([ioctl_ns(2)] `NS_GET_NSTYPE`), or the
/// errno (ENOTTY: not a namespace file).
///
/// [ioctl_ns(2)]: https://man7.org/linux/man-pages/man2/ioctl_ns.2.html
pub(crate) fn ns_get_nstype(fd: BorrowedFd<'_>) -> Result<u32, i32> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703; // _IO(0xb7, 0x3)
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns an int.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    if r < 0 { Err(errno()) } else { Ok(r as u32) }
}

/// [getcwd(2)] into `buf` (rustix's getcwd allocates): the path, or `None` when it does not
/// fit or the directory is unreachable. Async-signal-safe.
///
/// [getcwd(2)]: https://man7.org/linux/man-pages/man2/getcwd.2.html
pub(crate) fn getcwd(buf: &mut [u8]) -> Option<&std::ffi::CStr> {
    // SAFETY: `buf` is valid for writes of its length; the raw syscall writes a
    // NUL-terminated path and returns its length including the NUL.
    let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    if n <= 0 {
        return None;
    }
    std::ffi::CStr::from_bytes_until_nul(buf).ok()
}

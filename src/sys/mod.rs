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

/// The arguments of clone3(2) (`struct clone_args`, up to its third version: 88 bytes, with
/// `cgroup`; the first 64 bytes are the first version).
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
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3's `CLONE_INTO_CGROUP` (Linux 5.7): the child starts in the cgroup v2 directory
/// given as an fd in `clone_args.cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The size of clone_args without `set_tid`, `set_tid_size` and `cgroup`.
const CLONE_ARGS_SIZE_VER0: usize = 64;

/// What [`clone_pidfd`] returned.
pub(crate) enum Cloned {
    /// In the parent: the child's pid and a pidfd for it.
    Parent(i32, OwnedFd),
    /// In the child; `in_cgroup`: clone3 placed it in the cgroup asked for.
    Child { in_cgroup: bool },
    /// In the parent, after the fallback with `CLONE_PARENT`: the child was made but
    /// pidfd_open(2) failed with `errno`. The child was SIGKILLed; it is the caller's
    /// *parent's* child, which must reap it by `pid` (unreaped, the pid cannot be reused).
    Unreaped { pid: i32, errno: i32 },
}

/// Make pidfd_open(2) fail (ENOSYS) in the clone fallback, as where a seccomp filter refuses
/// it. For tests of that path only.
static FAIL_PIDFD_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// See [`FAIL_PIDFD_OPEN`].
pub(crate) fn force_pidfd_open_failure() {
    FAIL_PIDFD_OPEN.store(true, Ordering::Relaxed);
}

/// Create a child with `flags` (`CLONE_NEW*`, `CLONE_PARENT`) in fork style (no shared
/// memory, SIGCHLD on exit) and get a pidfd for it: [clone3(2)] with `CLONE_PIDFD`, or,
/// where clone3 is missing (ENOSYS, remembered), clone(2) followed by pidfd_open(2).
///
/// `cgroup`, a cgroup v2 directory fd, places the child in it from its start
/// (`CLONE_INTO_CGROUP`); where clone3 lacks it (E2BIG before Linux 5.7 or EINVAL) or is
/// missing, the child is created where the caller is, and [`Cloned::Child`] says so: the
/// child must move itself.
///
/// # Safety
///
/// In the child, only async-signal-safe code may run until exec or `_exit` (the caller may be
/// multi-threaded). glibc's fork handlers do not run and its cached thread id is the parent's
/// thread's: the child must not use pthread functions or `raise`.
///
/// [clone3(2)]: https://man7.org/linux/man-pages/man2/clone3.2.html
pub(crate) unsafe fn clone_pidfd(flags: u64, cgroup: Option<RawFd>) -> io::Result<Cloned> {
    // SAFETY: the caller's promise, passed on.
    match unsafe { clone3_pidfd(flags, cgroup) } {
        // Without CLONE_INTO_CGROUP (a kernel before 5.7, or one that refuses it here).
        Err(e)
            if cgroup.is_some() && matches!(e.raw_os_error(), Some(libc::E2BIG | libc::EINVAL)) =>
        {
            // SAFETY: as above.
            unsafe { clone3_pidfd(flags, None) }
        }
        r => r,
    }
}

/// [`clone_pidfd`] with or without the cgroup.
///
/// # Safety
///
/// As [`clone_pidfd`].
unsafe fn clone3_pidfd(flags: u64, cgroup: Option<RawFd>) -> io::Result<Cloned> {
    if CLONE3.load(Ordering::Relaxed) != 2 {
        let mut pidfd: libc::c_int = -1;
        let into = if cgroup.is_some() {
            CLONE_INTO_CGROUP
        } else {
            0
        };
        let args = CloneArgs {
            flags: flags | libc::CLONE_PIDFD as u64 | into,
            cgroup: cgroup.map_or(0, |fd| fd as u64),
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
        let size = if cgroup.is_some() {
            std::mem::size_of::<CloneArgs>()
        } else {
            CLONE_ARGS_SIZE_VER0
        };
        // SAFETY: `args` is a valid clone_args of at least the size passed (its first
        // version's 64 bytes, or all 88 with `cgroup`); without CLONE_VM the child gets a copy
        // of the address space and returns here with 0, as with fork(2).
        let r = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, size) };
        match cvt(r) {
            Ok(0) => {
                return Ok(Cloned::Child {
                    in_cgroup: cgroup.is_some(),
                });
            }
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
        Ok(0) => Ok(Cloned::Child { in_cgroup: false }),
        Err(e) => Err(io::Error::from_raw_os_error(e)),
        Ok(pid) => match rustix_pidfd_open(pid) {
            Ok(fd) => Ok(Cloned::Parent(pid, fd)),
            Err(e) => {
                // SAFETY: kill(2) of our new child, which nobody has reaped (so the pid is
                // still its own).
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                if flags & libc::CLONE_PARENT as u64 != 0 {
                    // Not our child: waitpid here would fail (ECHILD) and leave a zombie in
                    // our parent, which must reap it.
                    return Ok(Cloned::Unreaped { pid, errno });
                }
                // Our own child, SIGKILLed: it is gone as soon as its exit is done.
                wait_pid(pid);
                Err(e)
            }
        },
    }
}

/// waitpid(2) for the child `pid`, blocking, retried on EINTR; the status is dropped. For a
/// child that was SIGKILLed (its exit takes no longer than the kernel's teardown).
pub(crate) fn wait_pid(pid: i32) {
    // SAFETY: waitpid with a null status pointer, which the kernel accepts.
    while unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) } < 0 && errno() == libc::EINTR {}
}

fn rustix_pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    if FAIL_PIDFD_OPEN.load(Ordering::Relaxed) {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
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

/// The stack of a [`vfork_run`] child, guard page included.
const VFORK_STACK: usize = 256 * 1024;
const GUARD: usize = 4096;

/// What a [`vfork_run`] child runs, with its argument.
struct VforkCall<'a> {
    f: &'a mut dyn FnMut() -> i32,
}

extern "C" fn vfork_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `VforkCall`, alive while the parent is suspended (until
    // we exec or exit); nothing else touches it meanwhile.
    let call = unsafe { &mut *arg.cast::<VforkCall<'_>>() };
    (call.f)()
}

/// Run `f` in a child made with [clone(2)] `CLONE_VM | CLONE_VFORK` on a stack of its own,
/// the way posix_spawn(3) does: no page tables are copied, and the caller is suspended until
/// the child has called execve(2) or exited. `f` must end in an exec or an `_exit` (its
/// return value becomes the exit status), and must not write to memory the caller uses (it
/// shares the caller's memory, and its thread-local errno): only system calls and its own
/// stack. The child has its own fd table, signal dispositions, credentials and rlimits.
/// Returns the child's pid. The child's stack (256 KiB of address space, only the pages it
/// touched in memory) stays mapped until the caller exits: call it once per process.
/// Async-signal-safe; for a single-threaded caller.
pub(crate) fn vfork_run(f: &mut dyn FnMut() -> i32) -> Result<i32, i32> {
    // SAFETY: a fresh private anonymous mapping; unmapped below, after the child is done.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            VFORK_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(errno());
    }
    // SAFETY: the lowest page of our own mapping becomes the guard: an overflow of the
    // child's stack faults there instead of writing into other memory.
    let guarded = unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) };
    let result = if guarded < 0 {
        Err(errno())
    } else {
        let mut call = VforkCall { f };
        let top = (base as usize + VFORK_STACK) & !15;
        // SAFETY: the child runs `vfork_entry` on the mapping (16-byte aligned top) with a
        // pointer to `call`; both outlive it, since CLONE_VFORK suspends us until it has
        // exec'ed or exited. Without CLONE_FILES, CLONE_SIGHAND or CLONE_THREAD it has its
        // own fds, dispositions, creds and rlimits.
        let pid = unsafe {
            libc::clone(
                vfork_entry,
                top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (&mut call as *mut VforkCall<'_>).cast(),
            )
        };
        if pid < 0 { Err(errno()) } else { Ok(pid) }
    };
    if result.is_err() {
        // SAFETY: our own mapping, never used: no child ran on it.
        unsafe { libc::munmap(base, VFORK_STACK) };
    }
    // Otherwise the mapping stays: the child has exec'ed (a new memory) or exited, and the
    // caller (the init, which makes one command) lets its exit unmap it with the rest, which
    // saves a munmap and its TLB flush (about 10 us) per spawn. Its pages are the few the
    // child touched.
    result
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

/// The standard stream `fd` (0, 1 or 2) of this process, borrowed; `None` for another number.
pub(crate) fn std_stream(fd: RawFd) -> Option<BorrowedFd<'static>> {
    // SAFETY: the standard streams are treated as open for the whole process, as std's own
    // `Stdin::as_fd` (a borrow of fd 0 for as long as the handle lives) does; nsbox never
    // closes them. A closed one only makes calls on it fail with EBADF.
    (0..=2)
        .contains(&fd)
        .then(|| unsafe { BorrowedFd::borrow_raw(fd) })
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

/// Register an owned fd with tokio's reactor for priority events (POLLPRI: how a cgroup's
/// `cgroup.events` signals a change). Fails instead of panicking outside a runtime.
pub(crate) fn try_async_fd_priority(
    fd: OwnedFd,
) -> Result<tokio::io::unix::AsyncFd<OwnedFd>, (OwnedFd, io::Error)> {
    if let Err(e) = tokio::runtime::Handle::try_current() {
        return Err((fd, io::Error::other(e)));
    }
    // SAFETY: the OwnedFd owns a valid open fd; AsyncFd takes ownership and nothing else can
    // close or replace it while it is registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::PRIORITY) }
        .map_err(|e| e.into_parts())
}

/// Register an owned fd with tokio's reactor for readability.
pub(crate) fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    try_async_fd(fd).map_err(|(_, e)| e)
}

/// Register an fd that stays open for the life of the process (the launcher's socket, owned
/// by a `static`) with tokio's reactor for readability and writability. Fails instead of
/// panicking outside a runtime.
pub(crate) fn async_fd_static(
    fd: BorrowedFd<'static>,
) -> io::Result<tokio::io::unix::AsyncFd<BorrowedFd<'static>>> {
    tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    // SAFETY: a 'static borrow: the fd is never closed, so it stays open and refers to the same
    // file description for the whole life of the AsyncFd.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(
            fd,
            tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE,
        )
    }
    .map_err(|e| e.into_parts().1)
}

/// [_exit(2)]: leave now, running no user-space cleanup. Async-signal-safe.
///
/// [_exit(2)]: https://man7.org/linux/man-pages/man2/_exit.2.html
pub(crate) fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

/// [close_range(2)] of `[lo, hi]`, or [`close_range_fallback`] where the call fails (ENOSYS:
/// kernels before 5.9, or a seccomp filter that refuses it). Async-signal-safe.
///
/// [close_range(2)]: https://man7.org/linux/man-pages/man2/close_range.2.html
pub(crate) fn close_range(lo: u32, hi: u32) {
    // SAFETY: closing fd numbers the caller does not use; no memory is involved.
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) };
    if r < 0 {
        close_range_fallback(lo, hi);
    }
}

/// What close_range(2) does, without it: close every open fd in `[lo, hi]`. Async-signal-safe
/// (raw system calls on stack buffers, no allocation).
///
/// The open fds are listed from `/proc/self/fd` with getdents64(2) (rustix's `RawDir` over a
/// stack buffer). The listing's offsets are fd numbers, so closing fds already listed skips
/// nothing that comes after them.
///
/// Without `/proc/self/fd` (no `/proc`, or the procfs of a pid namespace this process is not
/// in), every number is closed up to [`fd_number_bound`], the highest number an fd can have.
pub(crate) fn close_range_fallback(lo: u32, hi: u32) {
    if lo > hi {
        return;
    }
    if close_listed(lo, hi).is_err() {
        close_each(lo, hi.min(fd_number_bound().saturating_sub(1)));
    }
}

/// Close the fds in `[lo, hi]` that `/proc/self/fd` lists; `Err` when it cannot be read to
/// the end (the caller then closes every number).
fn close_listed(lo: u32, hi: u32) -> Result<(), ()> {
    use rustix::fs::{Mode, OFlags};
    let dir = rustix::fs::open(
        c"/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(drop)?;
    let own = dir.as_raw_fd() as u32;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = rustix::fs::RawDir::new(&dir, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(drop)?;
        let Some(fd) = parse_u32(entry.file_name().to_bytes()) else {
            continue; // "." and ".."
        };
        if (lo..=hi).contains(&fd) && fd != own {
            // SAFETY: closing an fd number the caller does not use.
            unsafe { libc::close(fd as RawFd) };
        }
    }
    // `dir` itself is closed here.
    Ok(())
}

/// close(2) on every number of `[lo, hi]`.
fn close_each(lo: u32, hi: u32) {
    let mut fd = lo;
    while fd <= hi {
        // SAFETY: closing fd numbers the caller does not use; no memory is involved.
        unsafe { libc::close(fd as RawFd) };
        match fd.checked_add(1) {
            Some(next) => fd = next,
            None => break,
        }
    }
}

/// One more than the highest number an fd of this process can have, as far as can be known
/// without `/proc/self/fd`: the largest of the soft and hard RLIMIT_NOFILE and fs.nr_open.
///
/// Why that bounds every fd: the kernel gives out an fd number (open, dup2, F_DUPFD, a
/// received SCM_RIGHTS fd) only below the soft limit of the moment; the soft limit can never
/// be above the hard limit; only a privileged process can raise the hard limit, and never
/// above fs.nr_open. fs.nr_open is read from `/proc/sys/fs/nr_open` where that is reachable
/// (the procfs of another pid namespace still has it); otherwise its default (1048576, the
/// kernel's NR_OPEN) is used. The one fd this can miss is one opened above a hard limit that
/// was lowered later, or above an fs.nr_open that was lowered later; close_range(2) and
/// `/proc/self/fd` miss nothing. Capped at the kernel's own maximum fd count (`INT_MAX`
/// rounded down to a multiple of the word's bits).
pub(crate) fn fd_number_bound() -> u32 {
    const NR_OPEN_DEFAULT: u64 = 1 << 20;
    const KERNEL_MAX: u64 = (i32::MAX as u64) & !63;
    let limits = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let nr_open = read_nr_open().unwrap_or(NR_OPEN_DEFAULT);
    let bound = [limits.current, limits.maximum]
        .into_iter()
        .map(|l| l.unwrap_or(KERNEL_MAX))
        .fold(nr_open, u64::max);
    bound.min(KERNEL_MAX) as u32
}

/// fs.nr_open, read into a stack buffer. Async-signal-safe.
fn read_nr_open() -> Option<u64> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        c"/proc/sys/fs/nr_open",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 24];
    let n = rustix::io::read(&fd, &mut buf).ok()?;
    let text = buf.get(..n)?;
    let digits = text.strip_suffix(b"\n").unwrap_or(text);
    parse_u32(digits).map(u64::from)
}

/// A decimal number without sign or padding. Async-signal-safe.
fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(n)
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

/// [mount_setattr(2)] setting MOUNT_ATTR_RDONLY on the mount at `path` (and, with
/// `recursive`, every mount under it). The other attributes, locked ones included, stay as
/// they are. ENOSYS before Linux 5.12. Async-signal-safe.
///
/// [mount_setattr(2)]: https://man7.org/linux/man-pages/man2/mount_setattr.2.html
pub(crate) fn mount_setattr_read_only(path: &std::ffi::CStr, recursive: bool) -> Result<(), i32> {
    mount_setattr_raw(libc::AT_FDCWD, path, recursive, 0x1, 0)
}

/// [mount_setattr(2)] on the mount `fd` refers to (with `path` empty: the fd itself, a
/// detached tree from open_tree or an O_PATH fd), setting the MOUNT_ATTR_* bits `set` and
/// clearing `clear`. Async-signal-safe.
pub(crate) fn mount_setattr_fd(
    fd: BorrowedFd<'_>,
    path: &std::ffi::CStr,
    recursive: bool,
    set: u64,
    clear: u64,
) -> Result<(), i32> {
    mount_setattr_raw(fd.as_raw_fd(), path, recursive, set, clear)
}

fn mount_setattr_raw(
    dirfd: RawFd,
    path: &std::ffi::CStr,
    recursive: bool,
    set: u64,
    clear: u64,
) -> Result<(), i32> {
    /// `struct mount_attr` (linux/mount.h).
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = if recursive { AT_RECURSIVE } else { 0 };
    if path.is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    // SAFETY: `path` is NUL-terminated and `attr` a live struct of the size passed.
    let r = unsafe {
        libc::syscall(
            442, // SYS_mount_setattr, the same number on every architecture
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    cvt(r).map(drop)
}

/// [seccomp(2)] SECCOMP_SET_MODE_FILTER with `prog` for the calling thread (the only one:
/// the child side is single-threaded). EACCES without no_new_privs or CAP_SYS_ADMIN.
/// Async-signal-safe.
///
/// [seccomp(2)]: https://man7.org/linux/man-pages/man2/seccomp.2.html
pub(crate) fn seccomp_set_filter(prog: &[libc::sock_filter]) -> Result<(), i32> {
    let Ok(len) = u16::try_from(prog.len()) else {
        return Err(libc::EINVAL);
    };
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points to `len` instructions that outlive the call; the kernel copies
    // them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            &fprog as *const libc::sock_fprog,
        )
    };
    cvt(r).map(drop)
}

/// Overwrite this process's own copy of `[start, end)` with `text` and NULs: the argv or
/// environment area that /proc/PID/cmdline and environ show. For a fresh child that holds a
/// copy of its creator's memory (the init): it must not show the orchestrator's argv to the
/// sandbox. Async-signal-safe.
///
/// # Safety
///
/// `[start, end)` must be mapped and writable in the calling process and used by nothing
/// else of it (the creator's argv and environment, which the init never reads).
pub(crate) unsafe fn overwrite_area(start: usize, end: usize, text: &[u8]) {
    if start == 0 || end <= start {
        return;
    }
    let len = end - start;
    let n = text.len().min(len);
    // SAFETY: the caller guarantees the range is ours to write.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), start as *mut u8, n);
        std::ptr::write_bytes((start + n) as *mut u8, 0, len - n);
    }
}

/// chmod of the file an O_PATH fd refers to, never following a symlink: fchmodat2(2) with
/// AT_EMPTY_PATH (Linux 6.6), else chmod of `/proc/self/fd/N` (the fd's own file; a symlink
/// cannot be there, O_PATH | O_NOFOLLOW of one gives the link, which chmod refuses).
/// Async-signal-safe.
pub(crate) fn fchmod_o_path(fd: BorrowedFd<'_>, mode: u32) -> Result<(), i32> {
    const SYS_FCHMODAT2: libc::c_long = 452;
    // SAFETY: an empty path string and plain integers.
    let r = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH,
        )
    };
    match cvt(r) {
        Err(libc::ENOSYS) => {}
        r => return r.map(drop),
    }
    let mut buf = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut n = fd.as_raw_fd() as u32;
    let mut digits = [0u8; 10];
    let mut k = digits.len();
    loop {
        k -= 1;
        digits[k] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = prefix.len() + digits.len() - k;
    buf[prefix.len()..len].copy_from_slice(&digits[k..]);
    // SAFETY: `buf` is NUL-terminated (zeroed past `len`).
    cvt(unsafe { libc::chmod(buf.as_ptr().cast(), mode) } as libc::c_long).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::process::{Resource, Rlimit};

    /// An fd number above 65536, where the old fallback stopped.
    const HIGH: i32 = 70_000;
    /// An fd below the range closed, which must stay open.
    const LOW: i32 = 100;
    /// The child's exit code when the fd limit cannot be raised to hold `HIGH`.
    const CANNOT_RAISE: i32 = 77;

    /// In a forked child (async-signal-safe code only: this test process has threads), raise
    /// RLIMIT_NOFILE if needed, put /dev/null at `LOW` and `HIGH`, run `close` over
    /// `[200, u32::MAX]`, and exit 0 when `HIGH` is closed and `LOW` open, else with a code
    /// that says what went wrong. Returns the child's exit code.
    fn in_child(close: fn(u32, u32), high: i32) -> i32 {
        match raw_fork_flags(0) {
            Ok(0) => {
                let code = (|| {
                    let want = (high + 1) as u64;
                    let lim = rustix::process::getrlimit(Resource::Nofile);
                    if lim.current.is_some_and(|c| c < want) {
                        let max = lim.maximum.map(|m| m.max(want));
                        let new = Rlimit {
                            current: Some(want),
                            maximum: max,
                        };
                        if rustix::process::setrlimit(Resource::Nofile, new).is_err() {
                            return CANNOT_RAISE;
                        }
                    }
                    // SAFETY: open(2) of a NUL-terminated path.
                    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
                    if null < 0
                        || dup_onto(null, LOW, false).is_err()
                        || dup_onto(null, high, false).is_err()
                    {
                        return 2;
                    }
                    close(200, u32::MAX);
                    // SAFETY: F_GETFD on fd numbers: -1 (EBADF) when closed.
                    let (low, high) = unsafe {
                        (
                            libc::fcntl(LOW, libc::F_GETFD),
                            libc::fcntl(high, libc::F_GETFD),
                        )
                    };
                    match (low >= 0, high >= 0) {
                        (true, false) => 0,
                        (_, true) => 3,
                        (false, false) => 4,
                    }
                })();
                exit_immediately(code)
            }
            Ok(pid) => {
                let mut status = 0;
                // SAFETY: waiting for our own child with a valid status pointer.
                while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 && errno() == libc::EINTR {}
                assert!(libc::WIFEXITED(status), "the child died: {status:#x}");
                libc::WEXITSTATUS(status)
            }
            Err(e) => panic!("fork: errno {e}"),
        }
    }

    fn check(what: &str, close: fn(u32, u32), high: i32) {
        match in_child(close, high) {
            0 => {}
            CANNOT_RAISE => {
                // Straight to stderr, past libtest's capture, as tests/support's skip does.
                let line = format!(
                    "SKIPPED: sys::tests::{what}: RLIMIT_NOFILE cannot be raised above {high} \
                     (the hard limit is lower and CAP_SYS_RESOURCE is missing)\n"
                );
                let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
            }
            3 => panic!("{what}: fd {high} was left open"),
            code => panic!("{what}: the child failed with code {code}"),
        }
    }

    /// What the fallback does when /proc/self/fd cannot be read.
    fn without_proc(lo: u32, hi: u32) {
        close_each(lo, hi.min(fd_number_bound().saturating_sub(1)));
    }

    /// The highest fd number the current soft limit allows.
    fn top_fd() -> i32 {
        let soft = rustix::process::getrlimit(Resource::Nofile).current;
        soft.map_or(i32::MAX, |s| s.min(i32::MAX as u64) as i32) - 1
    }

    #[test]
    fn the_close_range_fallback_closes_fds_above_65536_through_proc() {
        check(
            "the_close_range_fallback_closes_fds_above_65536_through_proc",
            close_range_fallback,
            HIGH,
        );
    }

    #[test]
    fn the_close_range_fallback_closes_fds_above_65536_without_proc() {
        check(
            "the_close_range_fallback_closes_fds_above_65536_without_proc",
            without_proc,
            HIGH,
        );
    }

    #[test]
    fn the_close_range_fallback_closes_the_highest_fd_the_limit_allows() {
        let top = top_fd().min(HIGH);
        check("the highest fd, through /proc", close_range_fallback, top);
        check("the highest fd, without /proc", without_proc, top);
    }

    #[test]
    fn numbers_parse_strictly() {
        assert_eq!(parse_u32(b"1048576"), Some(1 << 20));
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"."), None);
        assert_eq!(parse_u32(b"4294967296"), None);
    }
}

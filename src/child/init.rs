//! The sandbox's child side: everything from the clone to the command's exec, and the init
//! (pid 1 of the sandbox's pid namespace, or a child subreaper without one).
//!
//! The module rule of [`crate::child`] applies to every line here: this code runs in the
//! child of a multi-threaded process. It reads a [`Plan`] built before the clone, makes raw
//! system calls, and leaves only by exec or `_exit`. No allocation, no locks, no panics
//! (no indexing that can fail, no `unwrap`), no Drop.
//!
//! # Protocol with the parent
//!
//! - report pipe (init -> parent, fixed 16-byte [`Msg`]s): `Error{step, errno, detail}` when
//!   setup or exec fails; `Execed` once the command has been executed; `Exited{raw status,
//!   timed_out}` when the command has ended. EOF without `Exited` means the init died.
//! - control pipe (parent -> init, 2-byte messages): `g` go (only when the parent runs a setup
//!   hook), `s<sig>` send a signal to the command, `k` kill the sandbox. EOF means the parent
//!   process is gone (every copy of the write end closed): with die-with-parent, kill.

use std::ffi::{CStr, CString, c_char};
use std::os::fd::RawFd;

use crate::signals::FORWARDED;

/// Declares [`Step`] and its list [`Step::ALL`] from one list of names, so a new step can
/// never be missing from the decoder.
macro_rules! steps {
    ($first:ident, $($name:ident),* $(,)?) => {
        /// The steps the child reports on failure. The parent turns them back into messages.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub(crate) enum Step {
            $first = 1,
            $($name),*
        }

        impl Step {
            /// Every step, in order (numbered from 1), for decoding.
            pub(crate) const ALL: &'static [Step] = &[Step::$first, $(Step::$name),*];
        }
    };
}

steps!(
    Fds,
    WaitGo,
    Setgroups,
    UidMap,
    GidMap,
    Join,
    MakeRoot,
    MountProc,
    Sethostname,
    Setdomainname,
    Loopback,
    Signalfd,
    ExecPipe,
    Fork,
    Chdir,
    NoNewPrivs,
    Exec,
    Subreaper,
    LockMounts,
);

impl Step {
    pub(crate) fn from_u32(v: u32) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| *s as u32 == v)
    }
}

/// A message from the init to the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Msg {
    Error { step: u32, errno: i32, detail: i32 },
    Execed,
    Exited { raw: i32, timed_out: bool },
}

pub(crate) const MSG_LEN: usize = 16;
const TAG_ERROR: u32 = 1;
const TAG_EXECED: u32 = 2;
const TAG_EXITED: u32 = 3;

impl Msg {
    pub(crate) fn encode(self) -> [u8; MSG_LEN] {
        let (tag, a, b, c) = match self {
            Msg::Error {
                step,
                errno,
                detail,
            } => (TAG_ERROR, step as i32, errno, detail),
            Msg::Execed => (TAG_EXECED, 0, 0, 0),
            Msg::Exited { raw, timed_out } => (TAG_EXITED, raw, timed_out as i32, 0),
        };
        let mut out = [0u8; MSG_LEN];
        let words = [tag as i32, a, b, c];
        let mut i = 0;
        while i < 4 {
            let bytes = words[i].to_ne_bytes();
            let mut j = 0;
            while j < 4 {
                out[i * 4 + j] = bytes[j];
                j += 1;
            }
            i += 1;
        }
        out
    }

    pub(crate) fn decode(buf: &[u8; MSG_LEN]) -> Option<Msg> {
        let w = |i: usize| {
            i32::from_ne_bytes([buf[i * 4], buf[i * 4 + 1], buf[i * 4 + 2], buf[i * 4 + 3]])
        };
        match w(0) as u32 {
            TAG_ERROR => Some(Msg::Error {
                step: w(1) as u32,
                errno: w(2),
                detail: w(3),
            }),
            TAG_EXECED => Some(Msg::Execed),
            TAG_EXITED => Some(Msg::Exited {
                raw: w(1),
                timed_out: w(2) != 0,
            }),
            _ => None,
        }
    }
}

pub(crate) const CTL_GO: u8 = b'g';
pub(crate) const CTL_SIGNAL: u8 = b's';
pub(crate) const CTL_KILL: u8 = b'k';

/// What a sandbox is made of, in owned, sendable form: built by the orchestrator, turned into
/// a [`Plan`] by whoever clones (the orchestrator itself, or the launcher after receiving it
/// over its socket).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spec {
    /// `CLONE_NEW*` flags.
    pub flags: u64,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Paths to try with execve, in order (a PATH search prepared beforehand).
    pub exec_paths: Vec<CString>,
    pub cwd: Option<CString>,
    pub hostname: Option<Vec<u8>>,
    pub domainname: Option<Vec<u8>>,
    /// Lines for uid_map and gid_map; `None`: no user namespace, or a hook writes them.
    pub uid_map: Option<Vec<u8>>,
    pub gid_map: Option<Vec<u8>>,
    /// Mount flags for `/` (MS_REC | MS_SLAVE or MS_PRIVATE); `None` without a mount namespace.
    pub root_propagation: Option<u64>,
    pub mount_proc: bool,
    /// Lock the mounts after mounting `/proc` (see [`lock_mounts`]).
    pub lock_mounts: bool,
    pub net: bool,
    pub pidns: bool,
    /// nstype of each namespace to join, in order.
    pub join_types: Vec<i32>,
    /// Target fd numbers of the command's fds (stdio first, then passed fds).
    pub targets: Vec<RawFd>,
    pub wait_for_go: bool,
    pub die_with_parent: bool,
    pub wait_all: bool,
    pub no_new_privs: bool,
    pub timeout_ms: Option<u64>,
    pub grace_ms: u64,
}

/// Everything the child needs, built before the clone from a [`Spec`] and the fds that go
/// with it. Pointers in it point into the `CString`s the spec owns, which the child's copy of
/// memory still holds.
pub(crate) struct Plan {
    pub spec: Spec,
    /// NULL-terminated argv.
    pub argv: Vec<*const c_char>,
    /// NULL-terminated envp.
    pub envp: Vec<*const c_char>,
    /// (fd, nstype) of namespaces to join; the fds are in `own_fds` after the shuffle.
    pub joins: Vec<(RawFd, libc::c_int)>,
    /// Fds the init keeps for itself, moved to `high_base..` (close-on-exec): report,
    /// control, then the join fds.
    pub own_fds: Vec<RawFd>,
    /// (source, target) fds the command gets: stdio and passed fds. Sources are moved to
    /// `high_base + own_fds.len() + i` first, so sources and targets never collide.
    pub moves: Vec<(RawFd, RawFd)>,
    pub high_base: RawFd,
    /// Ranges `[lo, hi]` to close after the shuffle: everything but targets and own fds.
    pub close_ranges: Vec<(libc::c_uint, libc::c_uint)>,
}

impl Plan {
    /// Lay out a plan. `fds` are, in order: the report pipe's write end, the control pipe's
    /// read end, one fd per namespace to join, one source per target. `None` when the count
    /// does not match the spec.
    pub(crate) fn new(spec: Spec, fds: &[RawFd]) -> Option<Plan> {
        let own_count = 2 + spec.join_types.len();
        if fds.len() != own_count + spec.targets.len() {
            return None;
        }
        let own_fds = fds[..own_count].to_vec();
        let joins = own_fds[2..]
            .iter()
            .copied()
            .zip(spec.join_types.iter().copied())
            .collect();
        let moves: Vec<(RawFd, RawFd)> = fds[own_count..]
            .iter()
            .copied()
            .zip(spec.targets.iter().copied())
            .collect();
        let max_fd = fds
            .iter()
            .chain(spec.targets.iter())
            .copied()
            .max()
            .unwrap_or(2);
        let high_base = max_fd.max(2) + 1;
        // Keep the targets and the own block; close everything else.
        let mut keep: Vec<u32> = spec.targets.iter().map(|t| *t as u32).collect();
        keep.extend((0..own_fds.len() as u32).map(|i| high_base as u32 + i));
        keep.sort_unstable();
        keep.dedup();
        let mut close_ranges = Vec::new();
        let mut lo = 0u32;
        for k in keep {
            if k > lo {
                close_ranges.push((lo, k - 1));
            }
            lo = k + 1;
        }
        close_ranges.push((lo, u32::MAX));
        let ptrs = |v: &[CString]| -> Vec<*const c_char> {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Some(Plan {
            argv: ptrs(&spec.argv),
            envp: ptrs(&spec.envp),
            spec,
            joins,
            own_fds,
            moves,
            high_base,
            close_ranges,
        })
    }
}

// --- raw helpers (async-signal-safe) ---

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit never returns and runs no user-space cleanup.
    unsafe { libc::_exit(code) }
}

fn write_all(fd: RawFd, buf: &[u8]) {
    let mut off = 0;
    while off < buf.len() {
        let rest = buf.get(off..).unwrap_or(&[]);
        // SAFETY: `rest` is a valid slice for the call.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return;
        }
        off += n as usize;
    }
}

fn send(report: RawFd, msg: Msg) {
    write_all(report, &msg.encode());
}

fn fail(report: RawFd, step: Step, err: i32, detail: i32) -> ! {
    send(
        report,
        Msg::Error {
            step: step as u32,
            errno: err,
            detail,
        },
    );
    exit(126)
}

fn write_file(path: &CStr, data: &[u8]) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `data` is valid for the call.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let e = errno();
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd) };
    if n < 0 { Err(e) } else { Ok(()) }
}

/// A fork without glibc's atfork handlers (which take malloc locks another thread of the
/// original process may have held at the clone): clone(2) with only SIGCHLD.
fn raw_fork() -> libc::pid_t {
    // SAFETY: clone with no CLONE_VM and a null stack behaves as fork(2).
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        ) as libc::pid_t
    }
}

fn now_ms() -> u64 {
    // SAFETY: an all-zero timespec is valid; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

fn reset_signal_handlers() {
    let mut sig = 1;
    while sig < 65 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: an all-zero sigaction with SIG_DFL is valid.
            let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
            sa.sa_sigaction = libc::SIG_DFL;
            // SAFETY: valid sigaction; failures (reserved signals) are harmless.
            unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) };
        }
        sig += 1;
    }
}

fn set_mask(how: libc::c_int, sigs: &[i32], all: bool) {
    // SAFETY: sigset_t is plain data.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid.
    unsafe {
        if all {
            libc::sigfillset(&mut set);
        } else {
            libc::sigemptyset(&mut set);
        }
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        libc::sigprocmask(how, &set, std::ptr::null_mut());
    }
}

/// Move the init's own fds and the command's fds into place and close everything else.
fn shuffle_fds(plan: &Plan) -> Result<(), i32> {
    let sources = plan.own_fds.iter().chain(plan.moves.iter().map(|(s, _)| s));
    for (next, &fd) in (plan.high_base..).zip(sources) {
        // SAFETY: dup3 onto a number above every fd we need; it closes what was there, which
        // is only an unneeded copy of one of the parent's fds.
        if unsafe { libc::dup3(fd, next, libc::O_CLOEXEC) } < 0 {
            return Err(errno());
        }
    }
    let base = plan.high_base + plan.own_fds.len() as RawFd;
    for (i, &(_, target)) in plan.moves.iter().enumerate() {
        // SAFETY: dup2 of an fd we own onto the target number; clears close-on-exec.
        if unsafe { libc::dup2(base + i as RawFd, target) } < 0 {
            return Err(errno());
        }
    }
    for &(lo, hi) in &plan.close_ranges {
        // SAFETY: closing fds we do not need; close_range(2) never fails for a valid range.
        let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0u32) };
        if r < 0 {
            // Kernels before 5.9: close one by one up to a bound.
            let mut fd = lo;
            while fd <= hi && fd < 65536 {
                // SAFETY: as above.
                unsafe { libc::close(fd as RawFd) };
                fd += 1;
            }
        }
    }
    Ok(())
}

/// What the helper of [`lock_mounts`] hands back through shared memory.
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

/// Lock every mount of the calling process's mount namespace, the fresh `/proc` included.
///
/// A `/proc` mounted inside a new mount namespace lies on top of the host's `/proc` (which
/// is locked there, but visible once the new one is gone): root inside could `umount /proc`
/// and read every host process's command line. Mounts are locked (MNT_LOCKED: they cannot be
/// unmounted or moved) when a mount namespace is copied into a new user namespace. So a
/// helper child makes a new user namespace and a copy of our mount namespace, and we join
/// that copy (we hold every capability in the helper's user namespace: we are its owner, one
/// level up) while staying in our own user namespace, which keeps owning the UTS, network
/// and IPC namespaces: the command stays root over those. The working directory is kept.
///
/// Async-signal-safe; for a single-threaded caller (the init, or pid 1 after `enter`).
pub(crate) fn lock_mounts() -> Result<(), i32> {
    let mut cwd = [0u8; 4096];
    // SAFETY: `cwd` is valid for its length; getcwd(2) writes a NUL-terminated path.
    let have_cwd = unsafe { libc::syscall(libc::SYS_getcwd, cwd.as_mut_ptr(), cwd.len()) } > 0;
    // The helper shares our memory and fd table and we are suspended until it exits
    // (CLONE_VM | CLONE_VFORK | CLONE_FILES, as posix_spawn does): no page tables are copied
    // and nothing waits to be killed. It starts in a new user namespace and a copy of our
    // mount namespace (CLONE_NEWUSER | CLONE_NEWNS), where every mount is locked, opens that
    // namespace for us, and exits; the open fd keeps the namespace alive.
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
    // which outlives it: CLONE_VFORK suspends us until it has exited.
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
    unsafe {
        let mut st = 0;
        while libc::waitpid(helper, &mut st, 0) < 0 && errno() == libc::EINTR {}
    }
    std::hint::black_box(&mut stack);
    let result = if shared.fd < 0 {
        Err(if shared.err != 0 {
            shared.err
        } else {
            libc::EPROTO
        })
    } else {
        // SAFETY: setns on the fd the helper opened for us, then close it.
        unsafe {
            let r = if libc::setns(shared.fd, libc::CLONE_NEWNS) < 0 {
                Err(errno())
            } else {
                Ok(())
            };
            libc::close(shared.fd);
            r
        }
    };
    if result.is_ok() {
        // The helper took the pid after ours; hand it back so the command is still pid 2
        // (best effort: needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over the pid namespace).
        // SAFETY: NUL-terminated path; our own fd.
        unsafe {
            let fd = libc::open(
                c"/proc/sys/kernel/ns_last_pid".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            if fd >= 0 {
                let last = libc::getpid();
                let digit = [b'0' + (last % 10) as u8];
                if last < 10 {
                    libc::write(fd, digit.as_ptr().cast(), 1);
                }
                libc::close(fd);
            }
        }
    }
    if result.is_ok() && have_cwd {
        // setns(CLONE_NEWNS) moved us to the namespace's root; go back where we were.
        // SAFETY: `cwd` is NUL-terminated by getcwd.
        unsafe { libc::chdir(cwd.as_ptr().cast()) };
    }
    result
}

/// Entry point of the cloned child. Never returns.
///
/// # Safety
///
/// Must be called only in the child of the clone, with the plan built by the parent.
pub(crate) unsafe fn run(plan: &Plan) -> ! {
    // Signals were blocked by the parent thread around the clone, so none of the
    // orchestrator's handlers can run here; reset them before anything else.
    reset_signal_handlers();
    let report = plan.high_base;
    if let Err(e) = shuffle_fds(plan) {
        // The report fd may not be in place; try the original number too.
        if let Some(&orig) = plan.own_fds.first() {
            send(
                orig,
                Msg::Error {
                    step: Step::Fds as u32,
                    errno: e,
                    detail: 0,
                },
            );
        }
        exit(126);
    }
    let control = plan.high_base + 1;
    if plan.spec.wait_for_go {
        let mut b = [0u8; 2];
        loop {
            // SAFETY: `b` is valid for 2 bytes.
            let n = unsafe { libc::read(control, b.as_mut_ptr().cast(), 2) };
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            if n != 2 || b[0] != CTL_GO {
                // The parent gave up (hook error or gone): leave quietly.
                exit(125);
            }
            break;
        }
    }
    if let (Some(uid), Some(gid)) = (&plan.spec.uid_map, &plan.spec.gid_map) {
        match write_file(c"/proc/self/setgroups", b"deny") {
            Ok(()) | Err(libc::ENOENT) => {}
            Err(e) => fail(report, Step::Setgroups, e, 0),
        }
        if let Err(e) = write_file(c"/proc/self/uid_map", uid) {
            fail(report, Step::UidMap, e, 0);
        }
        if let Err(e) = write_file(c"/proc/self/gid_map", gid) {
            fail(report, Step::GidMap, e, 0);
        }
    }
    for (i, &(_, nstype)) in plan.joins.iter().enumerate() {
        let fd = plan.high_base + 2 + i as RawFd;
        // SAFETY: setns on an fd we own.
        if unsafe { libc::setns(fd, nstype) } < 0 {
            fail(report, Step::Join, errno(), i as i32);
        }
        // SAFETY: closing our own fd.
        unsafe { libc::close(fd) };
    }
    if let Some(flags) = plan.spec.root_propagation {
        let flags = flags as libc::c_ulong;
        // SAFETY: mount with NUL-terminated strings and null data.
        if unsafe {
            libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
        } < 0
        {
            fail(report, Step::MakeRoot, errno(), 0);
        }
        if plan.spec.mount_proc {
            let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            // SAFETY: as above.
            if unsafe {
                libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    flags,
                    std::ptr::null(),
                )
            } < 0
            {
                fail(report, Step::MountProc, errno(), 0);
            }
            if plan.spec.lock_mounts
                && let Err(e) = lock_mounts()
            {
                fail(report, Step::LockMounts, e, 0);
            }
        }
    }
    if let Some(h) = &plan.spec.hostname {
        // SAFETY: pointer and length describe `h`.
        if unsafe { libc::sethostname(h.as_ptr().cast(), h.len()) } < 0 {
            fail(report, Step::Sethostname, errno(), 0);
        }
    }
    if let Some(d) = &plan.spec.domainname {
        // SAFETY: pointer and length describe `d`.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
            fail(report, Step::Setdomainname, errno(), 0);
        }
    }
    if plan.spec.net
        && let Err(e) = loopback_up()
    {
        fail(report, Step::Loopback, e, 0);
    }
    if !plan.spec.pidns {
        // Without a pid namespace, orphans of the command must come to us.
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) } < 0 {
            fail(report, Step::Subreaper, errno(), 0);
        }
    }
    // Every signal stays blocked in the init; the ones it acts on come through a signalfd.
    set_mask(libc::SIG_SETMASK, &[], true);
    // SAFETY: sigset_t is plain data.
    let mut sfd_set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `sfd_set` is valid.
    unsafe {
        libc::sigemptyset(&mut sfd_set);
        libc::sigaddset(&mut sfd_set, libc::SIGCHLD);
        for s in FORWARDED {
            libc::sigaddset(&mut sfd_set, s);
        }
    }
    // SAFETY: valid mask; a new fd.
    let sfd = unsafe { libc::signalfd(-1, &sfd_set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if sfd < 0 {
        fail(report, Step::Signalfd, errno(), 0);
    }
    let mut exec_pipe = [0 as RawFd; 2];
    // SAFETY: `exec_pipe` has room for two fds.
    if unsafe { libc::pipe2(exec_pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        fail(report, Step::ExecPipe, errno(), 0);
    }
    // From here on untrusted code runs beside us. The init holds a copy of its creator's
    // memory (the orchestrator's, after a direct clone): make it non-dumpable, so that nothing
    // in the sandbox can ptrace it or read /proc/1/mem (that needs CAP_SYS_PTRACE in the user
    // namespace the memory came from, the host's). The command becomes dumpable again at exec.
    // Done after the setup hook, which may need /proc/PID of the init.
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
    let start = now_ms();
    // SAFETY: plain getpid.
    let init_pid = unsafe { libc::getpid() };
    let cmd = raw_fork();
    if cmd < 0 {
        fail(report, Step::Fork, errno(), 0);
    }
    if cmd == 0 {
        exec_command(plan, exec_pipe[1], init_pid);
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(exec_pipe[1]) };
    let mut buf = [0u8; MSG_LEN];
    let n = loop {
        // SAFETY: `buf` is valid for MSG_LEN bytes.
        let n = unsafe { libc::read(exec_pipe[0], buf.as_mut_ptr().cast(), MSG_LEN) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        break n;
    };
    // SAFETY: closing our own fd.
    unsafe { libc::close(exec_pipe[0]) };
    if n == MSG_LEN as isize {
        // The command could not be executed: pass its error on, reap it, leave.
        write_all(report, &buf);
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(cmd, &mut st, 0) };
        exit(126);
    }
    send(report, Msg::Execed);
    supervise(plan, report, control, sfd, cmd, start)
}

/// The command's side of the fork: becomes PROGRAM or reports why not.
fn exec_command(plan: &Plan, err_fd: RawFd, init_pid: libc::pid_t) -> ! {
    // SAFETY: plain syscalls on our own process.
    unsafe {
        libc::setpgid(0, 0);
        // The init is single-threaded, so this follows the init itself.
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        // The init may have died before the prctl: then nobody would kill us later. (A parent
        // pid of 0 means the init is outside our pid namespace, which one joined: an orphan
        // there would get that namespace's init, never 0.)
        let ppid = libc::getppid();
        if ppid != init_pid && ppid != 0 {
            exit(127);
        }
    }
    set_mask(libc::SIG_SETMASK, &[], false);
    let report_err = |step: Step, e: i32| -> ! {
        write_all(
            err_fd,
            &Msg::Error {
                step: step as u32,
                errno: e,
                detail: 0,
            }
            .encode(),
        );
        exit(127)
    };
    if let Some(cwd) = &plan.spec.cwd {
        // SAFETY: NUL-terminated path.
        if unsafe { libc::chdir(cwd.as_ptr()) } < 0 {
            report_err(Step::Chdir, errno());
        }
    }
    if plan.spec.no_new_privs {
        // SAFETY: plain prctl.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } < 0 {
            report_err(Step::NoNewPrivs, errno());
        }
    }
    let mut best = libc::ENOENT;
    for path in &plan.spec.exec_paths {
        // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings the plan
        // owns; execve only returns on failure.
        unsafe { libc::execve(path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr()) };
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => best = libc::EACCES,
            e => {
                best = e;
                break;
            }
        }
    }
    report_err(Step::Exec, best)
}

/// Bring `lo` up (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP) on a datagram socket, as
/// Bazel's linux-sandbox and nsjail do: no `ip` program. Async-signal-safe, so the init and
/// `enter()` share it. The error is the errno.
pub(crate) fn loopback_up() -> Result<(), i32> {
    // SAFETY: plain socket call.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(errno());
    }
    // SAFETY: ifreq is plain data.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as c_char;
    req.ifr_name[1] = b'o' as c_char;
    // SAFETY: valid ifreq for these ioctls; the union member read is the one just filled.
    let r = unsafe {
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req) < 0 {
            -1
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(s, libc::SIOCSIFFLAGS, &req)
        }
    };
    let e = errno();
    // SAFETY: closing our socket.
    unsafe { libc::close(s) };
    if r < 0 { Err(e) } else { Ok(()) }
}

/// Kill everything in the sandbox but the init: as pid 1, kill(-1) reaches every other
/// process of the namespace; without a pid namespace, walk our children (orphans come to us as
/// subreaper) until none is left alive.
fn kill_all(plan: &Plan, cmd: libc::pid_t, cmd_alive: bool) {
    if plan.spec.pidns {
        // SAFETY: plain kill.
        unsafe { libc::kill(-1, libc::SIGKILL) };
        return;
    }
    if cmd_alive {
        // SAFETY: plain kill of our child.
        unsafe { libc::kill(cmd, libc::SIGKILL) };
    }
    kill_children();
}

/// SIGKILL every child listed in /proc/thread-self/children. Returns how many were listed.
fn kill_children() -> usize {
    // SAFETY: NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/proc/thread-self/children".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return 0;
    }
    let mut buf = [0u8; 4096];
    let mut count = 0;
    let mut cur: libc::pid_t = 0;
    let mut in_num = false;
    loop {
        // SAFETY: `buf` is valid.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        for &c in buf.iter().take(n as usize) {
            if c.is_ascii_digit() {
                cur = cur
                    .saturating_mul(10)
                    .saturating_add((c - b'0') as libc::pid_t);
                in_num = true;
            } else if in_num {
                // SAFETY: plain kill.
                unsafe { libc::kill(cur, libc::SIGKILL) };
                count += 1;
                cur = 0;
                in_num = false;
            }
        }
    }
    if in_num {
        // SAFETY: plain kill.
        unsafe { libc::kill(cur, libc::SIGKILL) };
        count += 1;
    }
    // SAFETY: closing our fd.
    unsafe { libc::close(fd) };
    count
}

/// Reap every child that has ended; record the command's status.
fn reap(cmd: libc::pid_t, status: &mut Option<i32>) -> bool {
    loop {
        let mut st = 0;
        // SAFETY: `st` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid > 0 {
            if pid == cmd {
                *status = Some(st);
            }
            continue;
        }
        if pid < 0 && errno() == libc::EINTR {
            continue;
        }
        // 0: children remain; -1 ECHILD: none left.
        return pid < 0;
    }
}

/// Kill everything left and exit. With a pid namespace the kernel does it when pid 1 exits
/// (after kill(-1) from `kill_all`); without one, kill the children, whose orphans then come
/// to us as subreaper, and wait, until none is left.
fn finish_killing(plan: &Plan) -> ! {
    if plan.spec.pidns {
        exit(0);
    }
    loop {
        kill_children();
        let mut st = 0;
        // SAFETY: blocking wait for our children.
        let pid = unsafe { libc::waitpid(-1, &mut st, 0) };
        if pid < 0 && errno() != libc::EINTR {
            exit(0);
        }
    }
}

fn supervise(
    plan: &Plan,
    report: RawFd,
    control: RawFd,
    sfd: RawFd,
    cmd: libc::pid_t,
    start: u64,
) -> ! {
    let mut status: Option<i32> = None;
    let mut reported = false;
    let mut watching_control = true;
    let mut timed_out = false;
    let mut term_deadline = plan.spec.timeout_ms.map(|t| start.saturating_add(t));
    let mut kill_deadline: Option<u64> = None;
    let mut killing = false;
    loop {
        let no_children = reap(cmd, &mut status);
        if let (Some(raw), false) = (status, reported) {
            send(report, Msg::Exited { raw, timed_out });
            reported = true;
            if !plan.spec.wait_all || killing {
                kill_all(plan, cmd, false);
                finish_killing(plan);
            }
        }
        if reported && killing {
            // Killed (timeout, `k`, parent gone) after the command's status went out, in
            // wait-all mode: what is left must die too, grandchildren included.
            finish_killing(plan);
        }
        if reported && no_children {
            exit(0);
        }
        let now = now_ms();
        if let Some(d) = term_deadline
            && now >= d
        {
            timed_out = true;
            term_deadline = None;
            if status.is_none() {
                // SAFETY: plain kill of our child.
                unsafe { libc::kill(cmd, libc::SIGTERM) };
            }
            kill_deadline = Some(now.saturating_add(plan.spec.grace_ms));
        }
        if let Some(d) = kill_deadline
            && now >= d
        {
            kill_deadline = None;
            killing = true;
            kill_all(plan, cmd, status.is_none());
        }
        let next = match (term_deadline, kill_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout: libc::c_int = match next {
            Some(d) => d.saturating_sub(now).min(60_000) as libc::c_int,
            None => -1,
        };
        let mut fds = [
            libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if watching_control { control } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if r < 0 {
            continue;
        }
        if fds[0].revents != 0 {
            drain_signals(sfd, cmd, status.is_none());
        }
        if fds[1].revents != 0 {
            let mut b = [0u8; 2];
            // SAFETY: `b` is valid for 2 bytes.
            let n = unsafe { libc::read(control, b.as_mut_ptr().cast(), 2) };
            if n == 2 && b[0] == CTL_SIGNAL {
                if status.is_none() {
                    // SAFETY: plain kill of our child.
                    unsafe { libc::kill(cmd, b[1] as libc::c_int) };
                }
            } else if n == 2 && b[0] == CTL_KILL {
                killing = true;
                kill_all(plan, cmd, status.is_none());
            } else if n == 0 || (n < 0 && errno() != libc::EINTR && errno() != libc::EAGAIN) {
                // Every write end is closed: the parent process is gone (or dropped us).
                watching_control = false;
                if plan.spec.die_with_parent {
                    killing = true;
                    kill_all(plan, cmd, status.is_none());
                }
            }
        }
    }
}

fn drain_signals(sfd: RawFd, cmd: libc::pid_t, cmd_alive: bool) {
    loop {
        // SAFETY: signalfd_siginfo is plain data.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: `info` is valid for `size` bytes.
        let n = unsafe { libc::read(sfd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
        if n != size as isize {
            return;
        }
        let sig = info.ssi_signo as libc::c_int;
        if sig != libc::SIGCHLD && cmd_alive {
            // SAFETY: plain kill of our child.
            unsafe { libc::kill(cmd, sig) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_decodes_to_itself() {
        for (i, &step) in Step::ALL.iter().enumerate() {
            assert_eq!(step as u32, i as u32 + 1, "steps are numbered 1.. in order");
            assert_eq!(Step::from_u32(step as u32), Some(step));
        }
        assert_eq!(Step::from_u32(0), None);
        assert_eq!(Step::from_u32(Step::ALL.len() as u32 + 1), None);
    }

    #[test]
    fn messages_survive_encoding() {
        for m in [
            Msg::Error {
                step: Step::LockMounts as u32,
                errno: libc::ENOSPC,
                detail: 3,
            },
            Msg::Execed,
            Msg::Exited {
                raw: 0x8b,
                timed_out: true,
            },
            Msg::Exited {
                raw: 3 << 8,
                timed_out: false,
            },
        ] {
            assert_eq!(Msg::decode(&m.encode()), Some(m));
        }
        assert_eq!(Msg::decode(&[0xff; MSG_LEN]), None);
    }
}

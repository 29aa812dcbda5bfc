//! The launcher: a fork server that creates sandboxes for a large orchestrator.
//!
//! fork(2) and clone(2) copy the caller's page tables, so creating a sandbox from a process
//! with gigabytes mapped costs tens of milliseconds (measured here: 36 ms at 1 GiB, 135 ms
//! at 4 GiB, against 1.1 ms at 10 MiB; docs/PERFORMANCE.md). The launcher
//! is forked at the top of `main`, while the process is still small and single-threaded; it
//! then creates every sandbox's init on request, with `CLONE_PARENT`, so the init is the
//! orchestrator's own child: the orchestrator waits on it through the pidfd the launcher sends
//! back, exactly as after a direct clone.
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     nsbox::launcher::start()?; // first thing: before any thread or runtime
//!     let rt = tokio::runtime::Runtime::new()?;
//!     rt.block_on(async {
//!         let status = nsbox::Sandbox::new("true").status().await?;
//!         assert!(status.success());
//!         Ok(())
//!     })
//! }
//! ```
//!
//! # Protocol
//!
//! One `SOCK_SEQPACKET` socket pair. A request is one message: the sandbox's `Spec` in its
//! wire form (`src/proto/wire.rs`) with its fds attached (`SCM_RIGHTS`: report pipe, control pipe, namespaces to
//! join, the command's stdio and passed fds). The answer is one message: the init's pid and
//! an errno (0 on success), with the init's pidfd attached on success.
//!
//! The orchestrator's end is non-blocking and awaited through tokio's reactor (`AsyncFd`), so
//! a spawn needs no thread of its own: where spawn_blocking panicked when the process limit
//! was reached, a spawn now gets the clone's error. One exchange (request, then answer) runs
//! at a time, in the order of an async lock; the launcher is single-threaded and answers in
//! order. A spawn dropped after its request went out leaves the answer to a task that holds
//! the lock until it has read it, then kills and reaps the init it names, so the next
//! exchange never reads another's answer and no init is left behind.
//!
//! # Lifetime
//!
//! The launcher exits when the orchestrator's end of the socket closes (the orchestrator
//! exited) and is killed by PR_SET_PDEATHSIG if the orchestrator's main thread dies first. It
//! ignores the terminal's signals (it sits in its own process group), so Ctrl-C reaches the
//! orchestrator and not it. If it dies anyway, later spawns fail with an error that says so;
//! they never hang.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::{ForkResult, Pid};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::unix::AsyncFd;

use crate::error::{Error, errno_of};
use crate::proto::Spec;
use crate::proto::control::{Control, ControlSender};
use crate::proto::wire::{self, ANSWER_LEN, Answer};
use crate::steps::Step;

struct Launcher {
    pid: Pid,
    /// The orchestrator's end of the socket, non-blocking.
    sock: OwnedFd,
    /// Held from a request's send until its answer has been read: one exchange at a time.
    turn: tokio::sync::Mutex<()>,
    /// The largest request the socket takes in one message: the send buffer the kernel
    /// granted (capped by net.core.wmem_max) less a margin for its own accounting.
    max_request: usize,
}

static LAUNCHER: OnceLock<Launcher> = OnceLock::new();

/// Set when the answer to a request could not be read at all (the launcher stopped answering
/// while no runtime could wait for it): a later exchange could read that answer as its own,
/// so every later sandbox is cloned directly.
static OUT_OF_STEP: AtomicBool = AtomicBool::new(false);

/// Largest request: the serialized spec (argv and environment included).
const MAX_REQUEST: usize = 1 << 20;
/// Most fds one request carries.
const MAX_FDS: usize = 250;
/// How long a drop without a runtime waits for the launcher's answer before giving up on it
/// (the launcher answers as soon as its clone is done; only a stopped launcher takes longer).
const BLOCKING_ANSWER_MS: i64 = 10_000;

/// Start the launcher. Call it first thing in `main`, before any thread or runtime exists;
/// later [`Sandbox::spawn`](crate::Sandbox::spawn) calls use it. Calling it again is a no-op.
///
/// `#[tokio::main]` starts the runtime's threads before the body runs, so start the launcher
/// in a plain `fn main` and run the async part from there:
///
/// ```no_run
/// fn main() -> std::io::Result<()> {
///     nsbox::launcher::start()?;
///     run()
/// }
///
/// #[tokio::main]
/// async fn run() -> std::io::Result<()> {
///     nsbox::Sandbox::new("true").status().await?;
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// When the process already has several threads (fork would copy a process whose locks other
/// threads may hold), or when socketpair/fork fail.
pub fn start() -> io::Result<()> {
    if LAUNCHER.get().is_some() {
        return Ok(());
    }
    crate::ns::require_single_thread("start the launcher").map_err(|e| {
        match Error::from_io(&e) {
            Some(inner) if inner.step() == Step::Threads => {
                io::Error::from(inner.clone().with_hint(
                    "call nsbox::launcher::start() first thing in a plain `fn main`, before any \
                 runtime: #[tokio::main] starts its threads first; put the async code in a \
                 #[tokio::main] function that main calls after start()",
                ))
            }
            _ => e,
        }
    })?;
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::os(Step::Launcher, e as i32).with_context("(socketpair)"))?;
    // Raise the send buffer so large environments fit in one message.
    let _ =
        nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::SndBuf, &(MAX_REQUEST * 2));
    let _ = nix::sys::socket::setsockopt(&theirs, nix::sys::socket::sockopt::SndBuf, &(64 * 1024));
    // SOCK_SEQPACKET refuses (EMSGSIZE) a message larger than the send buffer; the kernel caps
    // what we asked for at net.core.wmem_max, so ask what we got.
    let granted =
        nix::sys::socket::getsockopt(&ours, nix::sys::socket::sockopt::SndBuf).unwrap_or(0);
    let max_request = granted.saturating_sub(4096).min(MAX_REQUEST);
    // Our end is awaited through tokio's reactor; the launcher's end (its own open file
    // description) stays blocking.
    rustix::io::ioctl_fionbio(&ours, true)
        .map_err(|e| Error::os(Step::Launcher, e.raw_os_error()).with_context("(O_NONBLOCK)"))?;
    let parent = nix::unistd::getpid();
    match crate::ns::fork_single_threaded("start the launcher", "the launcher")? {
        ForkResult::Child => {
            drop(ours);
            serve(theirs, parent)
        }
        ForkResult::Parent { child: pid } => {
            drop(theirs);
            let _ = LAUNCHER.set(Launcher {
                pid,
                sock: ours,
                turn: tokio::sync::Mutex::new(()),
                max_request,
            });
            tracing::debug!(pid = pid.as_raw(), "launcher started");
            Ok(())
        }
    }
}

/// The launcher's pid, if one was started.
pub fn pid() -> Option<u32> {
    LAUNCHER.get().map(|l| l.pid.as_raw() as u32)
}

/// Create an init through the launcher. `None` when no launcher was started (the caller then
/// clones directly). `fds` are the request's fds in plan order, each one of `held` (the
/// sandbox's own ends) or a standard stream the command inherits; `control` is the parent's
/// end of the sandbox's control pipe.
pub(crate) async fn launch(
    spec: &Spec,
    fds: &[RawFd],
    held: &[Arc<OwnedFd>],
    extra: &[BorrowedFd<'_>],
    control: &ControlSender,
) -> Option<io::Result<(i32, OwnedFd)>> {
    let launcher = LAUNCHER.get()?;
    let payload = wire::encode(spec);
    if payload.len() > launcher.max_request || fds.len() > MAX_FDS {
        // Too big for one message: the direct clone still works.
        return None;
    }
    if OUT_OF_STEP.load(Ordering::Relaxed) {
        tracing::debug!("the launcher's answers are out of step: cloning directly");
        return None;
    }
    let fds = match borrow_all(fds, held, extra) {
        Ok(f) => f,
        Err(e) => return Some(Err(e)),
    };
    Some(match exchange(launcher, &payload, &fds, control).await {
        Ok(answer) => answer,
        Err(e) => Err(gone(launcher.pid, e)),
    })
}

/// The request's fds, borrowed: from `held`, `extra` (the cgroup leaf's), or the
/// orchestrator's standard streams.
fn borrow_all<'a>(
    fds: &[RawFd],
    held: &'a [Arc<OwnedFd>],
    extra: &[BorrowedFd<'a>],
) -> io::Result<Vec<BorrowedFd<'a>>> {
    fds.iter()
        .map(|&raw| match held.iter().find(|f| f.as_raw_fd() == raw) {
            Some(f) => Ok(f.as_fd()),
            None => extra
                .iter()
                .find(|f| f.as_raw_fd() == raw)
                .copied()
                .or_else(|| crate::sys::std_stream(raw))
                .ok_or_else(|| {
                    Error::failed(
                        Step::Launcher,
                        io::ErrorKind::Other,
                        format!("fd {raw} of the request is not held"),
                    )
                    .into()
                }),
        })
        .collect()
}

/// One exchange. The outer error is the transport's (the launcher is gone), the inner one the
/// clone's.
async fn exchange(
    l: &'static Launcher,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
    control: &ControlSender,
) -> io::Result<io::Result<(i32, OwnedFd)>> {
    // Made before the request goes out: if this future is dropped half-way, the task that
    // reads the answer kills the init through it.
    let control = control.try_clone().map_err(|e| {
        Error::from_std(Step::Launcher, &e).with_context("(dup the sandbox's control pipe)")
    })?;
    let turn = l.turn.lock().await;
    let sock = crate::sys::async_fd_static(l.sock.as_fd()).map_err(|e| {
        Error::failed(
            Step::Launcher,
            io::ErrorKind::Other,
            format!("register its socket with tokio: {e}"),
        )
    })?;
    loop {
        let mut ready = sock.writable().await?;
        match ready.try_io(|s| send_request(s.get_ref().as_fd(), payload, fds)) {
            Ok(sent) => break sent?,
            Err(_would_block) => continue,
        }
    }
    let mut outstanding = Outstanding {
        sock: Some(sock),
        turn: Some(turn),
        control: Some(control),
        in_task: false,
    };
    let raw = outstanding.answer().await?;
    drop(outstanding);
    raw.decode()
}

fn send_request(sock: BorrowedFd<'_>, payload: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !cmsg.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let iov = [IoSlice::new(payload)];
    let n = rustix::net::sendmsg(
        sock,
        &iov,
        &mut cmsg,
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
    )?;
    if n != payload.len() {
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    Ok(())
}

/// An answer as received: its bytes and the fd that came with it.
struct RawAnswer {
    len: usize,
    buf: [u8; ANSWER_LEN],
    fd: Option<OwnedFd>,
}

impl RawAnswer {
    /// Read one answer now (EAGAIN when there is none yet).
    fn recv(sock: BorrowedFd<'_>) -> io::Result<RawAnswer> {
        let mut buf = [0u8; ANSWER_LEN];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let msg = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            rustix::net::recvmsg(
                sock,
                &mut iov,
                &mut cmsg,
                RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
            )?
        };
        let mut fd = None;
        for m in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                for f in fds {
                    // One fd is expected; any other is closed here.
                    fd.get_or_insert(f);
                }
            }
        }
        if msg.bytes == 0 {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        let len = if msg.flags.contains(ReturnFlags::TRUNC) {
            0
        } else {
            msg.bytes
        };
        Ok(RawAnswer { len, buf, fd })
    }

    /// What the answer says. An init without its pidfd (no room for it in our fd table: the
    /// kernel dropped it) or one the launcher could not get a pidfd for is our unreaped child:
    /// it is killed and reaped here, and the spawn fails.
    fn decode(self) -> io::Result<io::Result<(i32, OwnedFd)>> {
        let Some(bytes) = self.buf.get(..self.len) else {
            return Err(io::Error::from_raw_os_error(libc::EPROTO));
        };
        match (Answer::decode(bytes), self.fd) {
            (Some(Answer::Failed(errno)), _) => Ok(Err(io::Error::from_raw_os_error(errno))),
            (Some(Answer::Cloned(pid)), Some(pidfd)) => Ok(Ok((pid, pidfd))),
            (Some(Answer::Cloned(pid)), None) => {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                reap_unreaped(pid);
                Ok(Err(Error::os(Step::Launcher, libc::EMFILE)
                    .with_context(format!("(receive the pidfd of init {pid})"))
                    .into()))
            }
            (Some(Answer::Unreaped { pid, errno }), _) => {
                reap_unreaped(pid);
                Ok(Err(io::Error::from_raw_os_error(errno)))
            }
            (None, _) => Err(io::Error::from_raw_os_error(libc::EPROTO)),
        }
    }

    /// After the spawn that asked for it was dropped: kill and reap the init it names.
    fn dispose(self, control: Option<ControlSender>) {
        if let Ok(Ok((_, pidfd))) = self.decode() {
            if let Some(c) = &control {
                let _ = c.send(Control::Kill);
            }
            drop(control);
            super::child::reap_owned(pidfd, None);
        }
    }
}

/// Reap init `pid`, our child that has no pidfd (it was SIGKILLed): through a pidfd opened
/// now if we can, else by a blocking waitpid, which is short for a SIGKILLed process (and
/// safe: an unreaped child's pid cannot be reused).
fn reap_unreaped(pid: i32) {
    let pidfd = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    match pidfd {
        Some(fd) => super::child::reap_owned(fd, None),
        None => crate::sys::wait_pid(pid),
    }
}

/// A request the launcher has received and whose answer is not read yet. It holds the turn,
/// so no other exchange can start and read this answer as its own. Dropped unanswered (the
/// spawn future was dropped half-way, or waiting failed), it hands itself to a task, which
/// reads the answer and kills and reaps the init; where no task can run (no runtime, or the
/// task dropped at a runtime's shutdown), it reads the answer here, blocking.
struct Outstanding {
    /// `None` once the answer has been read.
    sock: Option<AsyncFd<BorrowedFd<'static>>>,
    turn: Option<tokio::sync::MutexGuard<'static, ()>>,
    control: Option<ControlSender>,
    /// Whether this is the task's own (which must not hand itself on again).
    in_task: bool,
}

impl Outstanding {
    async fn answer(&mut self) -> io::Result<RawAnswer> {
        let Some(sock) = &self.sock else {
            return Err(io::Error::from_raw_os_error(libc::EPROTO));
        };
        let raw = loop {
            let mut ready = sock.readable().await?;
            match ready.try_io(|s| RawAnswer::recv(s.get_ref().as_fd())) {
                Ok(r) => break r?,
                Err(_would_block) => continue,
            }
        };
        self.sock = None;
        self.turn = None;
        Ok(raw)
    }

    async fn finish(mut self) {
        if let Ok(raw) = self.answer().await {
            raw.dispose(self.control.take());
        }
        // Otherwise the drop reads the answer, blocking.
    }

    /// Wait for the answer with poll(2), not the reactor.
    fn answer_blocking(&mut self) -> io::Result<RawAnswer> {
        let Some(sock) = self.sock.take() else {
            return Err(io::Error::from_raw_os_error(libc::EPROTO));
        };
        let fd = sock.into_inner();
        let timeout = rustix::event::Timespec {
            tv_sec: BLOCKING_ANSWER_MS / 1000,
            tv_nsec: 0,
        };
        loop {
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::TimedOut)),
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            match RawAnswer::recv(fd) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        if self.sock.is_none() {
            return;
        }
        if !self.in_task
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let late = Outstanding {
                sock: self.sock.take(),
                turn: self.turn.take(),
                control: self.control.take(),
                in_task: true,
            };
            rt.spawn(late.finish());
            return;
        }
        match self.answer_blocking() {
            Ok(raw) => raw.dispose(self.control.take()),
            // The launcher is gone: later exchanges fail on their own.
            Err(e) if errno_of(&e).is_some_and(|e| e == libc::EPIPE || e == libc::ECONNRESET) => {}
            Err(_) => OUT_OF_STEP.store(true, Ordering::Relaxed),
        }
    }
}

fn gone(pid: Pid, e: io::Error) -> io::Error {
    if Error::from_io(&e).is_some() {
        return e;
    }
    let errno = errno_of(&e).unwrap_or(libc::EIO);
    Error::os(Step::Launcher, errno)
        .with_context(format!("(pid {pid})"))
        .with_hint("the launcher process is gone (killed?); sandboxes cannot be created through it")
        .into()
}

/// The launcher's loop. Never returns.
/// The signals the launcher ignores; every other disposition of its is the default.
pub(crate) const IGNORED: [i32; 7] = [
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGHUP,
    libc::SIGPIPE,
];

fn serve(sock: OwnedFd, parent: Pid) -> ! {
    // Out of the terminal's way: own process group, terminal signals ignored (the inits reset
    // every disposition before anything else).
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // Every disposition to its default once here (the orchestrator's handlers, Rust's
    // SIGPIPE), so that each init made here resets only the ones ignored below.
    for sig in 1..65 {
        crate::sys::set_default_action(sig);
    }
    for sig in IGNORED {
        crate::sys::ignore_signal(sig);
    }
    crate::steps::process::die_with_parent_thread();
    if nix::unistd::getppid() != parent {
        std::process::exit(0);
    }
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut held = HeldMounts::default();
    loop {
        // A request first; the mount namespaces of inits that have exited are let go only
        // while none is waiting.
        if !held.wait_for(&sock) {
            continue;
        }
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let msg = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match rustix::net::recvmsg(&sock, &mut iov, &mut cmsg, RecvFlags::CMSG_CLOEXEC) {
                Ok(m) => m,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => std::process::exit(0),
            }
        };
        if msg.bytes == 0 {
            // The orchestrator is gone.
            std::process::exit(0);
        }
        let mut fds: Vec<OwnedFd> = Vec::new();
        for m in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = m {
                fds.extend(received);
            }
        }
        drop(cmsg);
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let answer = if msg.flags.contains(ReturnFlags::CTRUNC) {
            // No room in our fd table for all of the request's fds.
            Answer::Failed(libc::EMFILE)
        } else {
            match buf.get(..msg.bytes).and_then(wire::decode) {
                None => Answer::Failed(libc::EPROTO),
                Some(spec) => {
                    let new_mount_ns =
                        spec.namespaces.clone_flags() & libc::CLONE_NEWNS as u32 != 0;
                    match super::clone::clone_init(spec, &raw, libc::CLONE_PARENT as u64) {
                        Ok((pid, pidfd)) => {
                            drop(fds);
                            // Before the answer: the orchestrator cannot have reaped it yet.
                            let mnt = new_mount_ns.then(|| held.open(pid)).flatten();
                            send_answer(&sock, Answer::Cloned(pid), Some(pidfd.as_fd()));
                            if let Some(mnt) = mnt {
                                held.hold(pidfd, mnt);
                            }
                            continue;
                        }
                        Err(e) => match e
                            .get_ref()
                            .and_then(|i| i.downcast_ref::<super::clone::Unreaped>())
                        {
                            Some(u) => Answer::Unreaped {
                                pid: u.pid,
                                errno: u.errno,
                            },
                            None => Answer::Failed(errno_of(&e).unwrap_or(libc::EIO)),
                        },
                    }
                }
            }
        };
        drop(fds);
        send_answer(&sock, answer, None);
    }
}

/// The mount namespaces of the launcher's inits, held open until each init has exited.
///
/// When the last process of a mount namespace exits, its exit tears the namespace down:
/// every mount unmounted, an expedited RCU grace period waited for, each filesystem's
/// superblock let go, all before the parent is told of the exit. A default sandbox has some
/// forty mounts; measured here, that is about 100 us of every spawn's latency. Holding a
/// reference moves the teardown out of the init's exit into the launcher, which drops the
/// namespace once the init's pidfd says it has exited, while no request is waiting: the
/// orchestrator gets the exit status sooner, the kernel does the same work (in the
/// launcher's time, on the other CPU when there is one; on a thread of its own, so that a slow
/// teardown never holds up a request). Best effort: a namespace that
/// cannot be opened (the launcher out of fds, or the init already non-dumpable) is torn down
/// by the init as before.
#[derive(Default)]
struct HeldMounts {
    /// (the init's pidfd, its mount namespace).
    held: Vec<(OwnedFd, OwnedFd)>,
    /// The thread that closes the namespaces let go of (started at the first), so that a
    /// slow teardown (a sandbox that left a million files in its /tmp) never delays the
    /// next request; `None` until then, or if it could not be started (then they are
    /// closed here).
    releaser: Option<std::sync::mpsc::Sender<OwnedFd>>,
    releaser_failed: bool,
}

impl HeldMounts {
    /// At most this many namespaces at once (two fds each), so that holding them never takes
    /// the fds a request needs.
    const MAX: usize = 128;

    /// The mount namespace of the launcher's new init `pid`, or `None`.
    fn open(&self, pid: i32) -> Option<OwnedFd> {
        if self.held.len() >= Self::MAX {
            return None;
        }
        let path = format!("/proc/{pid}/ns/mnt");
        rustix::fs::open(
            path.as_str(),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
    }

    fn hold(&mut self, pidfd: OwnedFd, mnt: OwnedFd) {
        self.held.push((pidfd, mnt));
    }

    /// Wait until `sock` has a request (true), letting go of the namespaces of the inits
    /// that have exited while it has none (false: look again).
    fn wait_for(&mut self, sock: &OwnedFd) -> bool {
        use rustix::event::{PollFd, PollFlags, poll};
        if self.held.is_empty() {
            return true; // the recvmsg blocks
        }
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(self.held.len() + 1);
        fds.push(PollFd::new(sock, PollFlags::IN));
        fds.extend(
            self.held
                .iter()
                .map(|(pidfd, _)| PollFd::new(pidfd, PollFlags::IN)),
        );
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return false,
            // Cannot happen with valid fds; do not spin: let everything go.
            Err(_) => {
                drop(fds);
                self.held.clear();
                return true;
            }
        }
        if !fds[0].revents().is_empty() {
            return true;
        }
        let exited: Vec<bool> = fds[1..].iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let all = std::mem::take(&mut self.held);
        for ((pidfd, mnt), gone) in all.into_iter().zip(exited) {
            if gone {
                drop(pidfd);
                self.release(mnt);
            } else {
                self.held.push((pidfd, mnt));
            }
        }
        false
    }

    /// Let go of `mnt`: on the releaser thread, or here if there is none.
    fn release(&mut self, mnt: OwnedFd) {
        if self.releaser.is_none() && !self.releaser_failed {
            let (tx, rx) = std::sync::mpsc::channel::<OwnedFd>();
            // The thread only closes fds; inits cloned meanwhile copy nothing of it but its
            // memory, and run only async-signal-safe code (as after a direct clone from a
            // threaded orchestrator).
            match std::thread::Builder::new()
                .name("nsbox-release".into())
                .stack_size(64 * 1024)
                .spawn(move || rx.into_iter().for_each(drop))
            {
                Ok(_) => self.releaser = Some(tx),
                // At the process limit, say: close here from now on.
                Err(_) => self.releaser_failed = true,
            }
        }
        match &self.releaser {
            Some(tx) => {
                if let Err(back) = tx.send(mnt) {
                    drop(back.0);
                }
            }
            None => drop(mnt),
        }
    }
}

/// Send one answer, with the init's pidfd; the launcher exits when the orchestrator is gone.
fn send_answer(sock: &OwnedFd, answer: Answer, pidfd: Option<BorrowedFd<'_>>) {
    let out = answer.encode();
    let iov = [IoSlice::new(&out)];
    let fds: Vec<BorrowedFd<'_>> = pidfd.into_iter().collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        cmsg.push(SendAncillaryMessage::ScmRights(&fds));
    }
    if rustix::net::sendmsg(sock, &iov, &mut cmsg, SendFlags::NOSIGNAL).is_err() {
        std::process::exit(0);
    }
}

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
//! an errno (0 on success), with the init's pidfd attached on success. Requests are
//! serialized by a lock; the launcher is single-threaded.
//!
//! # Lifetime
//!
//! The launcher exits when the orchestrator's end of the socket closes (the orchestrator
//! exited) and is killed by PR_SET_PDEATHSIG if the orchestrator's main thread dies first. It
//! ignores the terminal's signals (it sits in its own process group), so Ctrl-C reaches the
//! orchestrator and not it. If it dies anyway, later spawns fail with an error that says so;
//! they never hang.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::unistd::{ForkResult, Pid};

use crate::error::{Error, errno_of};
use crate::proto::Spec;
use crate::proto::control::{Control, ControlSender};
use crate::proto::wire::{self, ANSWER_LEN, Answer};
use crate::steps::Step;

struct Launcher {
    pid: Pid,
    sock: Mutex<OwnedFd>,
    /// The largest request the socket takes in one message: the send buffer the kernel
    /// granted (capped by net.core.wmem_max) less a margin for its own accounting.
    max_request: usize,
}

static LAUNCHER: OnceLock<Launcher> = OnceLock::new();

/// Largest request: the serialized spec (argv and environment included).
const MAX_REQUEST: usize = 1 << 20;
/// Most fds one request carries.
const MAX_FDS: usize = 250;

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
                sock: Mutex::new(ours),
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
/// clones directly).
/// `control` is the parent's end of the sandbox's control pipe.
pub(crate) async fn launch(
    spec: &Spec,
    fds: &[RawFd],
    control: &ControlSender,
) -> Option<io::Result<(i32, OwnedFd)>> {
    let launcher = LAUNCHER.get()?;
    let payload = wire::encode(spec);
    if payload.len() > launcher.max_request || fds.len() > MAX_FDS {
        // Too big for one message: the direct clone still works.
        return None;
    }
    // Dup the fds: the blocking task needs owned copies that outlive this borrow.
    let owned: io::Result<Vec<OwnedFd>> = fds
        .iter()
        .map(|&fd| {
            nix::fcntl::fcntl(
                crate::sys::borrow_fd(fd),
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
            )
            .map(crate::sys::own_fd)
            .map_err(|e| {
                Error::os(Step::Launcher, e as i32)
                    .with_context("(dup an fd)")
                    .into()
            })
        })
        .collect();
    let owned = match owned {
        Ok(o) => o,
        Err(e) => return Some(Err(e)),
    };
    let pid = launcher.pid;
    let control = match control.try_clone() {
        Ok(c) => c,
        Err(e) => return Some(Err(e)),
    };
    let request = tokio::task::spawn_blocking(move || request(launcher, &payload, &owned));
    let mut guard = ReapIfCancelled(Some((request, control)));
    let r = match guard.0.as_mut() {
        Some((request, _)) => request.await,
        None => return None,
    };
    guard.0 = None;
    Some(match r {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => Err(gone(pid, e)),
        Err(e) => Err(io::Error::other(e)),
    })
}

type Request = tokio::task::JoinHandle<io::Result<io::Result<(i32, OwnedFd)>>>;

/// Holds a launcher request while [`launch`] awaits it, with a copy of the sandbox's control
/// pipe. If the spawn future is dropped half-way, the request still completes on its blocking
/// thread, and the init it creates is this process's child (CLONE_PARENT) that nobody else
/// knows of: do what dropping a spawned sandbox does (ask the init to kill everything, close
/// the control pipe, reap the init in the background), or it would stay a zombie.
struct ReapIfCancelled(Option<(Request, ControlSender)>);

impl Drop for ReapIfCancelled {
    fn drop(&mut self) {
        let Some((handle, control)) = self.0.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            if let Ok(Ok(Ok((_, pidfd)))) = handle.await {
                let _ = control.send(Control::Kill);
                drop(control);
                if let Ok(pidfd) = crate::sys::async_fd(pidfd) {
                    super::child::reap_in_background(pidfd, None);
                }
            }
        });
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

/// One request. The outer error is the transport's (the launcher is gone), the inner one the
/// clone's.
fn request(
    l: &Launcher,
    payload: &[u8],
    fds: &[OwnedFd],
) -> io::Result<io::Result<(i32, OwnedFd)>> {
    let sock = l.sock.lock().unwrap_or_else(|p| p.into_inner());
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let iov = [IoSlice::new(payload)];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    let mut buf = [0u8; ANSWER_LEN];
    let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
    let (n, received) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut received: Vec<OwnedFd> = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(v) = c {
                received.extend(v.into_iter().map(crate::sys::own_fd));
            }
        }
        (msg.bytes, received)
    };
    if n == 0 {
        return Err(io::Error::from_raw_os_error(libc::EPIPE));
    }
    match Answer::decode(&buf[..n]) {
        Some(Answer::Failed(errno)) => Ok(Err(io::Error::from_raw_os_error(errno))),
        Some(Answer::Cloned(pid)) => {
            let pidfd = received
                .into_iter()
                .next()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?;
            Ok(Ok((pid, pidfd)))
        }
        None => Err(io::Error::from_raw_os_error(libc::EPROTO)),
    }
}

/// The launcher's loop. Never returns.
fn serve(sock: OwnedFd, parent: Pid) -> ! {
    // Out of the terminal's way: own process group, terminal signals ignored (the inits reset
    // every disposition before anything else).
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    for sig in [
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGHUP,
        libc::SIGPIPE,
    ] {
        crate::sys::ignore_signal(sig);
    }
    crate::steps::process::die_with_parent_thread();
    if nix::unistd::getppid() != parent {
        std::process::exit(0);
    }
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let (n, fds) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(Errno::EINTR) => continue,
                Err(_) => std::process::exit(0),
            };
            let mut fds: Vec<OwnedFd> = Vec::new();
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(v) = c {
                        fds.extend(v.into_iter().map(crate::sys::own_fd));
                    }
                }
            }
            (msg.bytes, fds)
        };
        if n == 0 {
            // The orchestrator is gone.
            std::process::exit(0);
        }
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let cloned = match wire::decode(&buf[..n]) {
            None => Err(libc::EPROTO),
            Some(spec) => super::clone::clone_init(spec, &raw, libc::CLONE_PARENT as u64)
                .map_err(|e| errno_of(&e).unwrap_or(libc::EIO)),
        };
        drop(fds);
        let (answer, pidfd) = match cloned {
            Ok((pid, pidfd)) => (Answer::Cloned(pid), Some(pidfd)),
            Err(e) => (Answer::Failed(e), None),
        };
        let out = answer.encode();
        let iov = [IoSlice::new(&out)];
        let pidfd_raw: Vec<RawFd> = pidfd.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&pidfd_raw)];
        let cmsgs: &[ControlMessage] = if pidfd_raw.is_empty() { &[] } else { &cmsg };
        if sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).is_err() {
            std::process::exit(0);
        }
    }
}

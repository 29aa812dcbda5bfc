//! The launcher: a fork server that creates sandboxes for a large orchestrator.
//!
//! fork(2) and clone(2) copy the caller's page tables, so creating a sandbox from a process
//! with gigabytes mapped costs tens of milliseconds (DESIGN.md, "Performance"). The launcher
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
//! One `SOCK_SEQPACKET` socket pair. A request is one message: the sandbox's serialized
//! `Spec` with its fds attached (`SCM_RIGHTS`: report pipe, control pipe, namespaces to
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

use std::ffi::CString;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::unistd::Pid;

use crate::child::init::Spec;
use crate::error::{Error, errno_of};

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
/// # Errors
///
/// When the process already has several threads (fork would copy a process whose locks other
/// threads may hold), or when socketpair/fork fail.
pub fn start() -> io::Result<()> {
    if LAUNCHER.get().is_some() {
        return Ok(());
    }
    let threads = crate::namespace::thread_count()?;
    if threads > 1 {
        return Err(Error::msg(
            "start the launcher",
            format!(
                "the process has {threads} threads; the launcher must be forked while it has one"
            ),
        )
        .with_hint("call nsbox::launcher::start() first thing in main, before starting a runtime")
        .into_io());
    }
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::new("socketpair (launcher)", None, e).into_io())?;
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
    match crate::sys::fork_single_threaded() {
        Err(e) => Err(Error::new(
            "fork the launcher",
            None,
            errno_of(&e).unwrap_or(Errno::EIO),
        )
        .into_io()),
        Ok(crate::sys::Fork::Child) => {
            drop(ours);
            serve(theirs, parent)
        }
        Ok(crate::sys::Fork::Parent(pid)) => {
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
    control: &OwnedFd,
) -> Option<io::Result<(Pid, OwnedFd)>> {
    let launcher = LAUNCHER.get()?;
    let payload = encode(spec);
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
            .map_err(|e| Error::new("dup an fd for the launcher", None, e).into_io())
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

type Request = tokio::task::JoinHandle<io::Result<io::Result<(Pid, OwnedFd)>>>;

/// Holds a launcher request while [`launch`] awaits it, with a copy of the sandbox's control
/// pipe. If the spawn future is dropped half-way, the request still completes on its blocking
/// thread, and the init it creates is this process's child (CLONE_PARENT) that nobody else
/// knows of: do what dropping a spawned sandbox does (ask the init to kill everything, close
/// the control pipe, reap the init in the background), or it would stay a zombie.
struct ReapIfCancelled(Option<(Request, OwnedFd)>);

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
                let _ = nix::unistd::write(&control, &[crate::child::init::CTL_KILL, 0]);
                drop(control);
                if let Ok(pidfd) = crate::sys::async_fd(pidfd) {
                    crate::sandbox::reap_in_background(pidfd, None);
                }
            }
        });
    }
}

fn gone(pid: Pid, e: io::Error) -> io::Error {
    if Error::from_io(&e).is_some() {
        return e;
    }
    let errno = errno_of(&e).unwrap_or(Errno::EIO);
    Error::new(format!("ask the launcher (pid {pid})"), None, errno)
        .with_hint("the launcher process is gone (killed?); sandboxes cannot be created through it")
        .into_io()
}

/// One request. The outer error is the transport's (the launcher is gone), the inner one the
/// clone's.
fn request(
    l: &Launcher,
    payload: &[u8],
    fds: &[OwnedFd],
) -> io::Result<io::Result<(Pid, OwnedFd)>> {
    let sock = l.sock.lock().unwrap_or_else(|p| p.into_inner());
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let iov = [IoSlice::new(payload)];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    let mut buf = [0u8; 8];
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
    if n != 8 {
        return Err(io::Error::from_raw_os_error(libc::EPROTO));
    }
    let pid = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if errno != 0 {
        return Ok(Err(io::Error::from_raw_os_error(errno)));
    }
    let pidfd = received
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?;
    Ok(Ok((Pid::from_raw(pid), pidfd)))
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
    let _ = crate::sys::set_pdeathsig(libc::SIGKILL);
    if nix::unistd::getppid() != parent {
        crate::sys::exit_now(0);
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
                Err(_) => crate::sys::exit_now(0),
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
            crate::sys::exit_now(0);
        }
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let answer = match decode(&buf[..n]) {
            None => Err(libc::EPROTO),
            Some(spec) => crate::child::clone_init(spec, &raw, libc::CLONE_PARENT as u64)
                .map_err(|e| errno_of(&e).map_or(libc::EIO, |e| e as i32)),
        };
        drop(fds);
        let (pid, errno, pidfd) = match answer {
            Ok((pid, pidfd)) => (pid.as_raw(), 0, Some(pidfd)),
            Err(e) => (0, e, None),
        };
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&pid.to_ne_bytes());
        out[4..].copy_from_slice(&errno.to_ne_bytes());
        let iov = [IoSlice::new(&out)];
        let pidfd_raw: Vec<RawFd> = pidfd.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&pidfd_raw)];
        let cmsgs: &[ControlMessage] = if pidfd_raw.is_empty() { &[] } else { &cmsg };
        if sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).is_err() {
            crate::sys::exit_now(0);
        }
    }
}

// --- serialization of a Spec: length-prefixed fields, native endianness (same machine) ---

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_ne_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.0.push(v as u8);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        self.bool(b.is_some());
        if let Some(b) = b {
            self.bytes(b);
        }
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        self.u64(v.unwrap_or(0));
    }
    fn cstrs(&mut self, v: &[CString]) {
        self.u64(v.len() as u64);
        for c in v {
            self.bytes(c.as_bytes());
        }
    }
    fn i32s(&mut self, v: &[i32]) {
        self.u64(v.len() as u64);
        for x in v {
            self.u64(*x as i64 as u64);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bool(&mut self) -> Option<bool> {
        Some(self.take(1)?[0] != 0)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = usize::try_from(self.u64()?).ok()?;
        Some(self.take(n)?.to_vec())
    }
    fn opt_bytes(&mut self) -> Option<Option<Vec<u8>>> {
        Some(if self.bool()? {
            Some(self.bytes()?)
        } else {
            None
        })
    }
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        let some = self.bool()?;
        let v = self.u64()?;
        Some(some.then_some(v))
    }
    fn cstrs(&mut self) -> Option<Vec<CString>> {
        let n = usize::try_from(self.u64()?).ok()?;
        let mut v = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            v.push(CString::new(self.bytes()?).ok()?);
        }
        Some(v)
    }
    fn i32s(&mut self) -> Option<Vec<i32>> {
        let n = usize::try_from(self.u64()?).ok()?;
        let mut v = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            v.push(i32::try_from(self.u64()? as i64).ok()?);
        }
        Some(v)
    }
}

pub(crate) fn encode(s: &Spec) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(4096));
    w.u64(s.flags);
    w.cstrs(&s.argv);
    w.cstrs(&s.envp);
    w.cstrs(&s.exec_paths);
    w.opt_bytes(s.cwd.as_ref().map(|c| c.as_bytes()));
    w.opt_bytes(s.hostname.as_deref());
    w.opt_bytes(s.domainname.as_deref());
    w.opt_bytes(s.uid_map.as_deref());
    w.opt_bytes(s.gid_map.as_deref());
    w.opt_u64(s.root_propagation);
    for b in [s.mount_proc, s.lock_mounts, s.net, s.pidns] {
        w.bool(b);
    }
    w.i32s(&s.join_types);
    w.i32s(&s.targets);
    for b in [s.wait_for_go, s.die_with_parent, s.wait_all, s.no_new_privs] {
        w.bool(b);
    }
    w.opt_u64(s.timeout_ms);
    w.u64(s.grace_ms);
    w.0
}

pub(crate) fn decode(buf: &[u8]) -> Option<Spec> {
    let mut r = Reader(buf);
    let spec = Spec {
        flags: r.u64()?,
        argv: r.cstrs()?,
        envp: r.cstrs()?,
        exec_paths: r.cstrs()?,
        cwd: match r.opt_bytes()? {
            Some(b) => Some(CString::new(b).ok()?),
            None => None,
        },
        hostname: r.opt_bytes()?,
        domainname: r.opt_bytes()?,
        uid_map: r.opt_bytes()?,
        gid_map: r.opt_bytes()?,
        root_propagation: r.opt_u64()?,
        mount_proc: r.bool()?,
        lock_mounts: r.bool()?,
        net: r.bool()?,
        pidns: r.bool()?,
        join_types: r.i32s()?,
        targets: r.i32s()?,
        wait_for_go: r.bool()?,
        die_with_parent: r.bool()?,
        wait_all: r.bool()?,
        no_new_privs: r.bool()?,
        timeout_ms: r.opt_u64()?,
        grace_ms: r.u64()?,
    };
    r.0.is_empty().then_some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Spec {
        Spec {
            flags: 0x7000_0000,
            argv: vec![CString::new("sh").unwrap(), CString::new("-c").unwrap()],
            envp: vec![CString::new("A=b").unwrap()],
            exec_paths: vec![CString::new("/bin/sh").unwrap()],
            cwd: Some(CString::new("/tmp").unwrap()),
            hostname: Some(b"h".to_vec()),
            domainname: None,
            uid_map: Some(b"0 1000 1\n".to_vec()),
            gid_map: Some(b"0 1000 1\n".to_vec()),
            root_propagation: Some(0x84000),
            mount_proc: true,
            lock_mounts: true,
            net: false,
            pidns: true,
            join_types: vec![0, 0x4000_0000],
            targets: vec![0, 1, 2, 7],
            wait_for_go: true,
            die_with_parent: true,
            wait_all: false,
            no_new_privs: true,
            timeout_ms: Some(1500),
            grace_ms: 5000,
        }
    }

    #[test]
    fn a_spec_survives_encoding() {
        let s = sample();
        assert_eq!(decode(&encode(&s)), Some(s));
        assert_eq!(decode(&encode(&Spec::default())), Some(Spec::default()));
    }

    #[test]
    fn truncated_or_padded_requests_are_rejected_without_panicking() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
    }
}

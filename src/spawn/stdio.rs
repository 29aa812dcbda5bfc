//! Where the command's standard streams go.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::net::unix::pipe;

/// The orchestrator's end of a piped stdin: tokio's pipe writer
/// ([`tokio::net::unix::pipe::Sender`]), an `AsyncWrite`.
pub type ChildStdin = pipe::Sender;
/// The orchestrator's end of a piped stdout: tokio's pipe reader
/// ([`tokio::net::unix::pipe::Receiver`]), an `AsyncRead`.
pub type ChildStdout = pipe::Receiver;
/// The orchestrator's end of a piped stderr: tokio's pipe reader, as [`ChildStdout`].
pub type ChildStderr = pipe::Receiver;

/// The orchestrator's ends of piped stdio.
#[derive(Default)]
pub(crate) struct ParentEnds {
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

/// Where a standard stream of the sandboxed command goes: the orchestrator's own, `/dev/null`,
/// a pipe, or an fd of the caller's.
///
/// Every stdio-like value a tokio program holds converts into it: a [`std::fs::File`], an
/// [`OwnedFd`], the pipe ends of another sandbox ([`ChildStdout`] etc., so one sandbox's output
/// can feed another's input), and the pipe ends of a `tokio::process` or `std::process` child.
/// [`std::process::Stdio`] cannot be converted (it does not say what it holds): write
/// `nsbox::Stdio::piped()` (or `null()`, `inherit()`) instead.
///
/// As with [`std::process::Command`], the [`Sandbox`](crate::Sandbox) keeps the fd it was
/// given until it is dropped (it can spawn again): drop the sandbox that writes into a pipe
/// before waiting for the reader to see end-of-file.
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// use nsbox::{Sandbox, Stdio};
/// let mut producer = Sandbox::new("echo");
/// producer.arg("hello").stdout(Stdio::piped());
/// let mut a = producer.spawn().await?;
/// let mut consumer = Sandbox::new("tr");
/// consumer.args(["a-z", "A-Z"]).stdin(a.stdout.take().unwrap());
/// let out = consumer.output().await?;
/// assert_eq!(out.stdout, b"HELLO\n");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Stdio(pub(crate) StdioKind);

#[derive(Clone, Debug, Default)]
pub(crate) enum StdioKind {
    #[default]
    Inherit,
    Null,
    Piped,
    Fd(Arc<OwnedFd>),
    /// A conversion that failed (a pipe end that could not be made blocking); reported by
    /// `spawn`, since builders never fail.
    Failed(Arc<std::io::Error>),
}

impl Stdio {
    fn from_result(r: std::io::Result<OwnedFd>) -> Self {
        match r {
            Ok(fd) => Stdio::from(fd),
            Err(e) => Stdio(StdioKind::Failed(Arc::new(e))),
        }
    }
}

/// Clear O_NONBLOCK: the command expects blocking standard streams.
fn blocking(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(fd)
}

/// Another sandbox's stdout or stderr ([`ChildStdout`], [`ChildStderr`]), or any tokio pipe
/// reader: made blocking, it becomes this command's stream.
impl From<pipe::Receiver> for Stdio {
    fn from(r: pipe::Receiver) -> Self {
        Stdio::from_result(r.into_blocking_fd())
    }
}

/// Another sandbox's stdin ([`ChildStdin`]), or any tokio pipe writer.
impl From<pipe::Sender> for Stdio {
    fn from(w: pipe::Sender) -> Self {
        Stdio::from_result(w.into_blocking_fd())
    }
}

macro_rules! from_process_pipes {
    ($($t:ty => $how:expr),* $(,)?) => {
        $(
            impl From<$t> for Stdio {
                fn from(p: $t) -> Self {
                    Stdio::from_result($how(p))
                }
            }
        )*
    };
}

from_process_pipes! {
    tokio::process::ChildStdin => |p: tokio::process::ChildStdin| p.into_owned_fd().and_then(blocking),
    tokio::process::ChildStdout => |p: tokio::process::ChildStdout| p.into_owned_fd().and_then(blocking),
    tokio::process::ChildStderr => |p: tokio::process::ChildStderr| p.into_owned_fd().and_then(blocking),
    std::process::ChildStdin => |p: std::process::ChildStdin| Ok(OwnedFd::from(p)),
    std::process::ChildStdout => |p: std::process::ChildStdout| Ok(OwnedFd::from(p)),
    std::process::ChildStderr => |p: std::process::ChildStderr| Ok(OwnedFd::from(p)),
}

impl Stdio {
    /// The orchestrator's own stream.
    pub fn inherit() -> Self {
        Stdio(StdioKind::Inherit)
    }
    /// `/dev/null`.
    pub fn null() -> Self {
        Stdio(StdioKind::Null)
    }
    /// A pipe whose other end is in [`Child::stdin`](crate::Child::stdin),
    /// [`Child::stdout`](crate::Child::stdout) or [`Child::stderr`](crate::Child::stderr).
    pub fn piped() -> Self {
        Stdio(StdioKind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Self {
        Stdio(StdioKind::Fd(Arc::new(fd)))
    }
}

impl From<std::fs::File> for Stdio {
    fn from(f: std::fs::File) -> Self {
        Stdio::from(OwnedFd::from(f))
    }
}

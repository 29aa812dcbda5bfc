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
#[derive(Clone, Debug, Default)]
pub struct Stdio(pub(crate) StdioKind);

#[derive(Clone, Debug, Default)]
pub(crate) enum StdioKind {
    #[default]
    Inherit,
    Null,
    Piped,
    Fd(Arc<OwnedFd>),
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

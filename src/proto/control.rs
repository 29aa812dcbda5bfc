//! The orchestrator's messages to the init, on the control pipe: 2-byte messages.
//!
//! `Go` (only when the orchestrator runs a setup hook), `Signal(n)` for the command, `Kill`
//! the whole sandbox. EOF means every copy of the write end is closed: the orchestrator
//! process is gone (with die-with-parent the init then kills the sandbox).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::error::Error;
use crate::steps::Step;

/// A message to the init.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// The setup hook is done: go on.
    Go,
    /// Send this signal (1..=64) to the command.
    Signal(u8),
    /// Kill everything in the sandbox.
    Kill,
}

const LEN: usize = 2;

impl Control {
    fn encode(self) -> [u8; LEN] {
        match self {
            Control::Go => [b'g', 0],
            Control::Signal(s) => [b's', s],
            Control::Kill => [b'k', 0],
        }
    }

    fn decode(b: [u8; LEN]) -> Option<Control> {
        match b {
            [b'g', _] => Some(Control::Go),
            [b's', s] => Some(Control::Signal(s)),
            [b'k', _] => Some(Control::Kill),
            _ => None,
        }
    }
}

/// The orchestrator's sending end: non-blocking, so a stuck init with a full pipe gives
/// EAGAIN instead of blocking an async caller.
#[derive(Debug)]
pub(crate) struct ControlSender(OwnedFd);

impl ControlSender {
    /// Wrap the write end of the control pipe, making it non-blocking.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Self> {
        let fail = |e: rustix::io::Errno| {
            Error::os(Step::Pipe, e.raw_os_error())
                .with_context("(make the control pipe non-blocking)")
        };
        let flags = rustix::fs::fcntl_getfl(&fd).map_err(fail)?;
        rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK).map_err(fail)?;
        Ok(ControlSender(fd))
    }

    /// Send `msg`; an error when the init does not read any more (EPIPE) or its pipe is full.
    pub(crate) fn send(&self, msg: Control) -> io::Result<()> {
        let n = rustix::io::write(&self.0, &msg.encode())
            .map_err(|e| Error::os(Step::Signal, e.raw_os_error()))?;
        if n != LEN {
            return Err(Error::os(Step::Signal, libc::EAGAIN).into());
        }
        Ok(())
    }

    /// A second sending end (the launcher's cancellation guard keeps one).
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        Ok(ControlSender(self.0.try_clone()?))
    }
}

/// What the init read from the control pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Received {
    Msg(Control),
    /// Every write end is closed.
    Eof,
    /// Nothing yet (EINTR, EAGAIN): try again.
    Nothing,
    /// Bytes that are no message (a short read, an unknown tag).
    Garbage,
}

/// The init's receiving end (blocking). Async-signal-safe.
#[derive(Clone, Copy)]
pub(crate) struct ControlReceiver<'a>(pub BorrowedFd<'a>);

impl ControlReceiver<'_> {
    pub(crate) fn recv(self) -> Received {
        let mut b = [0u8; LEN];
        match rustix::io::read(self.0, &mut b) {
            Ok(LEN) => Control::decode(b).map_or(Received::Garbage, Received::Msg),
            Ok(0) => Received::Eof,
            Ok(_) => Received::Garbage,
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => Received::Nothing,
            Err(_) => Received::Eof,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_survive_encoding() {
        for m in [Control::Go, Control::Signal(15), Control::Kill] {
            assert_eq!(Control::decode(m.encode()), Some(m));
        }
        assert_eq!(Control::decode([b'x', 0]), None);
    }
}

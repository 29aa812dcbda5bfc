//! The init's reports to the orchestrator, on the report pipe: fixed 16-byte messages.
//!
//! `Failed{step, errno, detail}` when setup or exec fails (then the init exits); `Execed`
//! once the command has been executed; `Exited{raw status, timed_out, killed}` when the command has
//! ended. EOF without `Exited` means the init died.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use crate::error::Error;
use crate::steps::{Step, StepError};

/// A message from the init.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// A setup step or the exec failed; the init exits.
    Failed(StepError),
    /// The command has been executed.
    Execed,
    /// The command ended with this raw wait status; `killed`: the orchestrator's `Kill` (or
    /// its death) came while the command ran.
    Exited {
        raw: i32,
        timed_out: bool,
        killed: bool,
    },
}

const LEN: usize = 16;
const TAG_FAILED: i32 = 1;
const TAG_EXECED: i32 = 2;
const TAG_EXITED: i32 = 3;

impl Report {
    fn encode(self) -> [u8; LEN] {
        let words: [i32; 4] = match self {
            Report::Failed(e) => [TAG_FAILED, e.step.code() as i32, e.errno, e.detail as i32],
            Report::Execed => [TAG_EXECED, 0, 0, 0],
            Report::Exited {
                raw,
                timed_out,
                killed,
            } => [TAG_EXITED, raw, timed_out as i32, killed as i32],
        };
        let mut out = [0u8; LEN];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_ne_bytes());
        }
        out
    }

    fn decode(buf: &[u8; LEN]) -> Option<Report> {
        let mut w = [0i32; 4];
        for (v, chunk) in w.iter_mut().zip(buf.chunks_exact(4)) {
            *v = i32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        match w[0] {
            TAG_FAILED => Some(Report::Failed(StepError {
                step: Step::from_code(w[1] as u32)?,
                errno: w[2],
                detail: w[3] as u32,
            })),
            TAG_EXECED => Some(Report::Execed),
            TAG_EXITED => Some(Report::Exited {
                raw: w[1],
                timed_out: w[2] != 0,
                killed: w[3] != 0,
            }),
            _ => None,
        }
    }
}

/// The init's (and the command's, until exec) sending end. Async-signal-safe: a fixed-size
/// write on a raw fd, retried on EINTR; errors are ignored (the orchestrator is gone).
#[derive(Clone, Copy)]
pub(crate) struct ReportSender<'a>(pub BorrowedFd<'a>);

impl ReportSender<'_> {
    pub(crate) fn send(self, msg: Report) {
        let buf = msg.encode();
        let fd = self.0;
        let mut off = 0;
        while off < LEN {
            match rustix::io::write(fd, &buf[off..]) {
                Ok(n) => off += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
        }
    }
}

/// Read one report from the init's exec pipe (blocking or not): `None` at EOF or, on a
/// non-blocking fd, when there is nothing to read (the exec succeeded: the pipe is
/// close-on-exec), or on a short or malformed message. Async-signal-safe.
pub(crate) fn recv_blocking(fd: BorrowedFd<'_>) -> Option<Report> {
    let mut buf = [0u8; LEN];
    let mut off = 0;
    while off < LEN {
        match rustix::io::read(fd, &mut buf[off..]) {
            Ok(0) => return None,
            Ok(n) => off += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    Report::decode(&buf)
}

/// The orchestrator's receiving end. Cancel safe: a partial message stays in the buffer.
pub(crate) struct ReportReceiver {
    pipe: pipe::Receiver,
    buf: [u8; LEN],
    filled: usize,
}

impl ReportReceiver {
    pub(crate) fn new(pipe: pipe::Receiver) -> Self {
        ReportReceiver {
            pipe,
            buf: [0; LEN],
            filled: 0,
        }
    }

    fn take(&mut self) -> io::Result<Report> {
        self.filled = 0;
        Report::decode(&self.buf).ok_or_else(|| {
            Error::failed(
                Step::Wait,
                io::ErrorKind::InvalidData,
                "the sandbox's init sent a malformed report",
            )
            .into()
        })
    }

    /// The next report; `None` at EOF (the init is gone).
    pub(crate) async fn recv(&mut self) -> io::Result<Option<Report>> {
        loop {
            if self.filled == LEN {
                return self.take().map(Some);
            }
            let n = self.pipe.read(&mut self.buf[self.filled..]).await?;
            if n == 0 {
                return Ok(None);
            }
            self.filled += n;
        }
    }

    /// The next report without waiting, once the init has exited (its reports are complete
    /// in the pipe). Reads with read(2) itself, not tokio's try_read, which trusts a
    /// readiness cache that a cancelled `recv` may have left cleared.
    pub(crate) fn recv_now(&mut self) -> io::Result<Option<Report>> {
        loop {
            if self.filled == LEN {
                return self.take().map(Some);
            }
            match rustix::io::read(self.pipe.as_fd(), &mut self.buf[self.filled..]) {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => self.filled += n,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_survive_encoding() {
        for m in [
            Report::Failed(StepError {
                step: Step::LockMounts,
                errno: libc::ENOSPC,
                detail: 3,
            }),
            Report::Execed,
            Report::Exited {
                raw: 0x8b,
                timed_out: true,
                killed: false,
            },
            Report::Exited {
                raw: 9,
                timed_out: false,
                killed: true,
            },
        ] {
            assert_eq!(Report::decode(&m.encode()), Some(m));
        }
        assert_eq!(Report::decode(&[0xff; LEN]), None);
    }

    #[test]
    fn an_unknown_step_is_a_malformed_report() {
        let mut bad = Report::Failed(StepError::new(Step::Exec, 2)).encode();
        bad[4..8].copy_from_slice(&999i32.to_ne_bytes());
        assert_eq!(Report::decode(&bad), None);
    }
}

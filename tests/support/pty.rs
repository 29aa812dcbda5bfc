//! A terminal for the tty and job-control tests: what the pty's master shows, read with a
//! deadline, and a guard that kills the whole terminal session on the way out.

use std::io::Read;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::{DEADLINE, pids, stat};

/// Everything read from the master, accumulated, with a deadline on every wait.
pub struct Screen {
    rx: Receiver<Vec<u8>>,
    /// All that was shown so far.
    pub text: String,
}

impl Screen {
    pub fn new(master: std::fs::File) -> Screen {
        let (tx, rx) = channel();
        let mut master = master;
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every slave fd is closed.
            while let Ok(n @ 1..) = master.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Screen {
            rx,
            text: String::new(),
        }
    }

    /// Wait (within [`DEADLINE`]) until the screen shows `want`.
    pub fn expect(&mut self, want: &str) {
        self.expect_after(0, want);
    }

    /// Wait (within [`DEADLINE`]) until the screen shows `want` after byte `from` of what was
    /// shown.
    pub fn expect_after(&mut self, from: usize, want: &str) {
        let start = Instant::now();
        while !self.text.get(from..).is_some_and(|t| t.contains(want)) {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{want:?} not shown after byte {from} within {DEADLINE:?}; screen: {:?}",
                    self.text
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "terminal closed before {want:?} (after byte {from}); screen: {:?}",
                    self.text
                ),
            }
        }
    }
}

/// Kills every process of a terminal session (its leader's pid is the session id) when
/// dropped, so that a failing pty test leaves no shell or stopped job behind. By pid, from
/// `/proc/*/stat`; a no-op when the session is already gone.
pub struct SessionGuard(pub i32);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        for _ in 0..20 {
            let members: Vec<i32> = pids()
                .into_iter()
                .filter_map(stat)
                .filter(|s| s.session == self.0 && s.state != 'Z')
                .map(|s| s.pid)
                .collect();
            if members.is_empty() {
                return;
            }
            for pid in members {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

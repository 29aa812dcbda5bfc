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

    /// Take in whatever the terminal has shown by now, without waiting.
    pub fn refresh(&mut self) {
        while let Ok(bytes) = self.rx.try_recv() {
            self.text.push_str(&String::from_utf8_lossy(&bytes));
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

/// An interactive bash (`bash --norc --noprofile -i`, prompt `PROMPT> `) on a fresh pty, as
/// the session leader with the pty as its controlling terminal (setsid(1) --ctty): the user's
/// job-control shell. Its environment carries the test's marker; everything in its session is
/// killed when it is dropped.
pub struct Shell {
    pub child: std::process::Child,
    /// The shell's pid, which is also its process group and its session.
    pub pid: i32,
    pub screen: Screen,
    master: std::fs::File,
    typist: std::fs::File,
    _session: SessionGuard,
}

impl Shell {
    /// Start it and wait for its first prompt.
    pub fn start(marker: &str) -> Shell {
        use std::process::{Command, Stdio};
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave = pty.slave;
        let mut cmd = Command::new("setsid");
        cmd.args(["--ctty", "bash", "--norc", "--noprofile", "-i"])
            .env(super::MARKER_VAR, marker)
            .env("PS1", "PROMPT> ")
            .env("TERM", "dumb")
            .stdin(Stdio::from(slave.try_clone().expect("dup the pty")))
            .stdout(Stdio::from(slave.try_clone().expect("dup the pty")))
            .stderr(Stdio::from(slave));
        let child = cmd.spawn().expect("spawn an interactive bash");
        // setsid(1) execs in place (its child is not a group leader): this is the shell.
        let pid = child.id() as i32;
        let session = SessionGuard(pid);
        let master = std::fs::File::from(pty.master);
        let typist = master.try_clone().expect("dup the master");
        let mut screen = Screen::new(master.try_clone().expect("dup the master"));
        screen.expect("PROMPT> ");
        Shell {
            child,
            pid,
            screen,
            master,
            typist,
            _session: session,
        }
    }

    /// Type `text` (a line ends with `\n`; `\x1a` is Ctrl-Z, `\x03` Ctrl-C, `\x04` Ctrl-D).
    pub fn type_text(&mut self, text: &str) {
        use std::io::Write;
        self.typist
            .write_all(text.as_bytes())
            .expect("type on the terminal");
    }

    /// The terminal's foreground process group now.
    pub fn foreground(&self) -> i32 {
        use std::os::fd::AsFd;
        nix::unistd::tcgetpgrp(self.master.as_fd())
            .expect("tcgetpgrp")
            .as_raw()
    }

    /// Where the screen's text ends now (for [`Screen::expect_after`]).
    pub fn mark(&mut self) -> usize {
        self.screen.refresh();
        self.screen.text.len()
    }

    /// Type `exit` and wait for the shell to end; fail unless it exits 0.
    pub fn exit(mut self) {
        self.type_text("exit\n");
        let status = super::wait_deadline(&mut self.child, "the interactive shell");
        assert!(
            status.success(),
            "shell: {status:?}; screen: {:?}",
            self.screen.text
        );
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

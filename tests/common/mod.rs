//! Shared helpers for the integration tests: find the nsrun example, run it with a deadline
//! (a bug makes a test fail, never hang), tag every process it starts with a marker, and scan
//! the host's /proc for leftovers.
//!
//! Every process a test starts through [`nsrun`] carries `NSBOX_TEST_MARKER=<unique>` in its
//! environment (inherited by everything it forks), so [`leftovers`] finds whatever is still
//! running, in any namespace, by reading `/proc/*/environ` and `/proc/*/cmdline`.

#![allow(dead_code)] // each test file uses a different part of this module

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long any single child may take before the test gives up on it. A hang guard, never
/// an assertion on speed: a healthy run takes a small fraction of it.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The environment variable that tags every process a test starts.
pub const MARKER_VAR: &str = "NSBOX_TEST_MARKER";

/// The nsrun example binary that `cargo test` built next to this test binary
/// (target/<profile>/deps/X -> target/<profile>/examples/nsrun).
pub fn nsrun_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join("examples").join("nsrun");
    assert!(
        path.is_file(),
        "nsrun example not found at {}: build it with `cargo test` (which builds examples) or \
         `cargo build --example nsrun` for the same profile",
        path.display()
    );
    path
}

/// Whether the tests run as root (euid 0) in the initial user namespace.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The flags that make a namespace creatable for the caller: nothing as root, `-U` (a user
/// namespace, which makes the caller root inside it) otherwise.
pub fn userns_unless_root() -> Vec<&'static str> {
    if is_root() { vec![] } else { vec!["-U"] }
}

/// A marker unique to this test process and call.
pub fn marker(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "nsbox-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fresh scratch directory under the temp dir (writable by any user the tests run as),
/// removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(marker(name));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        // Let an unprivileged process started from here write too.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        Scratch(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `Command` for nsrun with `args`, tagged with `marker`; stdin is closed by default.
pub fn nsrun(marker: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(nsrun_path());
    cmd.args(args).env(MARKER_VAR, marker).stdin(Stdio::null());
    cmd
}

/// What a finished child did.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Read `r` to the end on a thread; the receiver gets the text once the pipe is closed.
fn read_all<R: Read + Send + 'static>(mut r: R) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// Run `cmd` to completion and collect its output, within [`DEADLINE`]. If it does not end
/// in time it is killed (by pid) and the test fails; if it ended but something it left behind
/// still holds its stdout or stderr open, the test fails too.
pub fn run(mut cmd: Command) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = read_all(child.stdout.take().unwrap());
    let err = read_all(child.stderr.take().unwrap());
    let status = wait_deadline(&mut child, &format!("{cmd:?}"));
    let start = Instant::now();
    let text = |rx: Receiver<String>, which: &str| {
        let left = DEADLINE.saturating_sub(start.elapsed());
        rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!("{cmd:?} exited with {status:?} but its {which} is still open: a process was left behind")
        })
    };
    Output {
        status,
        stdout: text(out, "stdout"),
        stderr: text(err, "stderr"),
    }
}

/// Wait for `child` within [`DEADLINE`]; kill it and fail the test if it does not end.
pub fn wait_deadline(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if start.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not end within {DEADLINE:?}; killed it");
            }
            Err(e) => panic!("wait for {what}: {e}"),
        }
    }
}

/// Lines of a child's stdout, read on a thread so that every wait has a deadline.
pub struct Lines {
    rx: Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(stdout: ChildStdout) -> Lines {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Wait (within [`DEADLINE`]) for a line equal to `want`; fail the test on EOF or timeout.
    pub fn expect(&mut self, want: &str) {
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = line == want;
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line {want:?} within {DEADLINE:?}; got {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stdout closed before a line {want:?}; got {:?}", self.seen)
                }
            }
        }
    }

    /// Every remaining line until EOF (within [`DEADLINE`]).
    pub fn rest(&mut self) -> Vec<String> {
        let start = Instant::now();
        let mut out = Vec::new();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(line) => out.push(line),
                Err(RecvTimeoutError::Disconnected) => return out,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("stdout still open after {DEADLINE:?}; got {out:?}")
                }
            }
        }
    }
}

/// The processes (pid, command line) that carry `marker` in their environment or command
/// line and are not zombies, anywhere on the host.
pub fn leftovers(marker: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let p = entry.path();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        if stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
        {
            continue;
        }
        let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(p.join("environ")).unwrap_or_default();
        let has = |hay: &[u8]| hay.windows(marker.len()).any(|w| w == marker.as_bytes());
        if has(&cmdline) || has(&environ) {
            let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, cmd));
        }
    }
    found
}

/// Fail the test if any process tagged with `marker` is still running (and kill those, by
/// pid, so that one failure does not leak into the next test).
pub fn assert_no_leftovers(marker: &str) {
    let left = leftovers(marker);
    for (pid, _) in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// Print a loud `SKIPPED: test: reason` line straight to the process's stderr (bypassing the
/// test harness's output capture, so it shows even when the test passes).
pub fn skipped(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
}

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

    /// Wait until the screen shows `want` after byte `from` of what was shown.
    pub fn expect_after(&mut self, from: usize, want: &str) {
        let start = Instant::now();
        while !self.text.get(from..).is_some_and(|t| t.contains(want)) {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!(
                    "{want:?} not shown after byte {from}; screen: {:?}",
                    self.text
                ),
            }
        }
    }

    /// Wait until the screen shows `want` (within [`DEADLINE`]).
    pub fn expect(&mut self, want: &str) {
        let start = Instant::now();
        while !self.text.contains(want) {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{want:?} not shown within {DEADLINE:?}; screen: {:?}",
                        self.text
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("terminal closed before {want:?}; screen: {:?}", self.text)
                }
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
            let mut found = false;
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                // After "(comm)": state ppid pgrp session ...
                let session = stat
                    .rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().nth(3))
                    .and_then(|s| s.parse::<i32>().ok());
                if session == Some(self.0)
                    && !stat[stat.rfind(')').unwrap_or(0)..].starts_with(") Z")
                {
                    found = true;
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            if !found {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

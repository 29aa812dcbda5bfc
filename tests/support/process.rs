//! Running programs (the examples, nsrun, helpers) from a test: every wait has a deadline
//! ([`DEADLINE`]), every process a test starts through [`nsrun`] is tagged with a marker, and
//! what a failing test leaves is killed by pid.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::{DEADLINE, is_root};

/// The environment variable that tags every process a test starts through [`nsrun`] (and
/// everything those start): [`super::leftovers`] finds them by it.
pub const MARKER_VAR: &str = "NSBOX_TEST_MARKER";

/// The example `name` that `cargo test` built for the same profile as this test binary
/// (target/<profile>/deps/X -> target/<profile>/examples/NAME).
pub fn example_path(name: &str) -> PathBuf {
    let exe = super::self_exe();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{name} example not found at {}: build it with `cargo test` (which builds examples) or \
         `cargo build --example {name}` for the same profile",
        path.display()
    );
    path
}

/// The nsrun example.
pub fn nsrun_path() -> PathBuf {
    example_path("nsrun")
}

/// A `Command` for nsrun with `args`, tagged with `marker`; stdin is closed by default.
pub fn nsrun(marker: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(nsrun_path());
    cmd.args(args).env(MARKER_VAR, marker).stdin(Stdio::null());
    cmd
}

/// The nsrun flags that make a namespace creatable for the caller: nothing as root, `-U` (a
/// user namespace, which makes the caller root inside it) otherwise.
pub fn userns_unless_root() -> Vec<&'static str> {
    if is_root() { vec![] } else { vec!["-U"] }
}

/// `setpriv` arguments that run a program as uid and gid 65534 without supplementary groups
/// (for [`super::reexec`]'s wrapper and the like).
pub const AS_NOBODY: [&str; 6] = [
    "setpriv",
    "--reuid",
    "65534",
    "--regid",
    "65534",
    "--clear-groups",
];

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

/// Run `cmd` to completion and collect its output, within [`DEADLINE`].
pub fn run(cmd: Command) -> Output {
    run_with(cmd, |_| {})
}

/// Run `cmd` with piped stdout and stderr; `during` gets its pid once it has started. If it
/// does not end within [`DEADLINE`] it is killed (by pid) and the test fails; if it ended but
/// something it left behind still holds its stdout or stderr open, the test fails too.
pub fn run_with(mut cmd: Command, during: impl FnOnce(u32)) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")));
    let out = read_all(child.0.stdout.take().unwrap());
    let err = read_all(child.0.stderr.take().unwrap());
    during(child.0.id());
    let status = wait_deadline(&mut child.0, &format!("{cmd:?}"));
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

/// A child process that is SIGKILLed (by pid) and reaped when dropped unless it has been
/// reaped already: a failing test leaves nothing behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Start `cmd` with its stdout piped (its stderr the test's) and read that line by line: the
/// child (killed if the test fails before reaping it) and its lines.
pub fn spawn_lines(mut cmd: Command) -> (KillOnDrop, Lines) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = KillOnDrop(cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")));
    let lines = Lines::new(child.0.stdout.take().unwrap());
    (child, lines)
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

    /// The next line (within [`DEADLINE`]); fail the test on EOF or timeout.
    pub fn next_line(&mut self) -> String {
        self.expect_line("any line", |_| true);
        self.seen.last().cloned().unwrap_or_default()
    }

    /// Wait (within [`DEADLINE`]) for a line equal to `want`; fail the test on EOF or timeout.
    pub fn expect(&mut self, want: &str) {
        self.expect_line(want, |l| l == want);
    }

    /// Wait (within [`DEADLINE`]) for a line that ends with `want` (a child test binary's line,
    /// which libtest may have begun with `test NAME ... `).
    pub fn expect_end(&mut self, want: &str) {
        self.expect_line(want, |l| l.ends_with(want));
    }

    fn expect_line(&mut self, want: &str, hit: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let found = hit(&line);
                    self.seen.push(line);
                    if found {
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
}

/// A process in namespaces of its own, made by unshare(1) with `flags` (after `-Ur` when
/// unprivileged, so that it may), for tests to join. It is `sleep 1000` (after `--fork`, the
/// child of unshare); killed by pid on drop.
pub struct NsHolder {
    unshare: KillOnDrop,
    /// The host pid of the process in the namespaces.
    pub pid: u32,
}

impl NsHolder {
    /// Start it (tagged with `marker` in [`MARKER_VAR`]) and wait until it is in its
    /// namespaces.
    pub fn start(flags: &[&str], marker: &str) -> NsHolder {
        let mut cmd = Command::new("unshare");
        if !is_root() {
            cmd.arg("-Ur");
        }
        cmd.args(flags)
            .args(["sh", "-c", "echo ready; exec sleep 1000"])
            .env(MARKER_VAR, marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut unshare = KillOnDrop(cmd.spawn().expect("start unshare (util-linux)"));
        Lines::new(unshare.0.stdout.take().unwrap()).expect("ready");
        // With --fork the namespaces' process is unshare's child; else unshare itself.
        let id = unshare.0.id();
        let pid = super::first_child(id as i32).map_or(id, |p| p as u32);
        NsHolder { unshare, pid }
    }

    /// Its namespace file of `kind` (`net`, `pid`, `user`, ...).
    pub fn ns(&self, kind: &str) -> String {
        format!("/proc/{}/ns/{kind}", self.pid)
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.0.wait();
    }
}

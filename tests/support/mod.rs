//! The one support module of the integration tests. Every test binary includes it with
//! `#[path = "../support/mod.rs"] mod support;` and uses the part it needs:
//!
//! - here: the hang guard [`DEADLINE`], markers, scratch directories, [`skip`] (the only way a
//!   test skips), and child modes ([`reexec`]: a test re-executes its own binary to run a part
//!   of itself in a process of its own);
//! - [`procs`]: scans of the host's `/proc` (processes carrying a marker, children, zombies,
//!   fds, states), and polling with a deadline;
//! - [`process`]: running programs (the examples, nsrun) with a deadline on every wait;
//! - [`pty`]: a terminal for the tty and job-control tests;
//! - [`sandbox`]: the common `Namespaces` values and async reads and waits with a deadline;
//! - [`harness`]: the libtest-like report of the `harness = false` binaries.
//!
//! Every wait has a deadline so that a bug fails a test instead of hanging it; no assertion is
//! about speed.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of this module

pub mod harness;
pub mod process;
pub mod procs;
pub mod pty;
pub mod sandbox;

pub use process::*;
pub use procs::*;
pub use pty::*;
pub use sandbox::*;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long any single wait may take before the test gives up. A hang guard, never an
/// assertion on speed: a healthy run takes a small fraction of it.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Whether the tests run as root (euid 0) in the initial user namespace.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A marker unique to this test process and call. It is a number (`0.<pid><counter>1`, always
/// of the same length, so that no marker is part of another) so that it can be an extra
/// argument of GNU `sleep` (which adds up its arguments): `sleep 1000 MARKER` carries the
/// marker in its own command line, where [`pids_with_marker`] finds it in any pid namespace.
/// Given in an environment variable ([`MARKER_VAR`]), it tags every process that inherits it,
/// which [`leftovers`] finds.
pub fn marker() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "0.{:08}{:06}1",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fresh path under the temp dir (not created).
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nsbox-test-{}-{name}", marker()))
}

/// A fresh scratch directory under the temp dir, writable by any user (so that an
/// unprivileged process started from here can write too), removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = temp_path(name);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
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

/// Say that test `test` cannot run here, and why: the only way a test skips. Call it, then
/// return from the test.
///
/// The line `SKIPPED: <test>: <reason>` goes straight to the process's stderr, which libtest
/// does not capture (it captures only the `print!` family), so it shows even though libtest
/// then counts the test as passed; `.ci/lib.sh`'s `count_results` turns each such line into a
/// skip. So a test calls this at most once, and only when none of it runs.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED: {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Whether `prog` is a file in one of the directories of `PATH`.
pub fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// The target of the symlink `path` (a `/proc/*/ns/*` name, say), or `<error>`.
pub fn link(path: impl AsRef<Path>) -> String {
    std::fs::read_link(path.as_ref())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

/// The environment variable that selects a child mode (see [`reexec`]).
const CHILD_VAR: &str = "NSBOX_TEST_CHILD";

/// The libtest name of test function `f` declared in module `module` (`module_path!()`): the
/// module path without the crate's name.
pub fn test_name(module: &str, f: &str) -> String {
    match module.split_once("::") {
        Some((_, m)) => format!("{m}::{f}"),
        None => f.to_string(),
    }
}

/// Whether this process runs in child mode `mode`: a test binary re-executed by [`reexec`] (or
/// [`child_command`]) to run a part of a test in a process of its own.
pub fn is_child(mode: &str) -> bool {
    std::env::var_os(CHILD_VAR).is_some_and(|v| v == mode)
}

/// This test binary's own executable.
pub fn self_exe() -> PathBuf {
    std::env::current_exe().expect("current_exe")
}

/// This binary as a child process in child mode `mode`, without arguments (for the
/// `harness = false` binaries, which pick their mode in `main`).
pub fn child_command(mode: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(self_exe());
    cmd.env(CHILD_VAR, mode).stdin(std::process::Stdio::null());
    cmd
}

/// The libtest arguments that run only test `name`, alone, with its output not captured.
pub fn alone_args(name: &str) -> [String; 4] {
    [
        name.to_string(),
        "--exact".to_string(),
        "--nocapture".to_string(),
        "--test-threads=1".to_string(),
    ]
}

/// This libtest binary running only test `name` (from [`test_name`]), alone, in child mode
/// `name`: the test sees [`is_child`]`(name)` and does the child's part. With `wrapper`
/// (`["setpriv", "--reuid", ...]`, say) the binary runs under that program.
///
/// A test uses it for what must not share the test process: a process-wide switch, an exact
/// fd count, a process to SIGKILL, another uid or a namespace with other limits. libtest
/// prints `running 1 test` and `test NAME ... ` on the child's stdout around the test's own
/// output.
pub fn reexec(name: &str, wrapper: &[&str]) -> std::process::Command {
    let mut cmd = match wrapper.split_first() {
        Some((prog, args)) => {
            let mut c = std::process::Command::new(prog);
            c.args(args).arg(self_exe());
            c
        }
        None => std::process::Command::new(self_exe()),
    };
    cmd.args(alone_args(name))
        .env(CHILD_VAR, name)
        .stdin(std::process::Stdio::null());
    cmd
}

/// For a test that must run alone in a process of its own (test function `f` of module
/// `module`, `module_path!()`): in the test process, run it so ([`run_alone`]) and give
/// `true`, and the test returns; in that child, give `false`, and the test goes on.
pub async fn ran_alone(module: &str, f: &str) -> bool {
    let name = test_name(module, f);
    if is_child(&name) {
        return false;
    }
    tokio::task::spawn_blocking(move || run_alone(&name))
        .await
        .expect("the child run");
    true
}

/// Run test `name` alone in a child process ([`reexec`] without a wrapper) and fail unless it
/// passed; its output is shown on failure.
pub fn run_alone(name: &str) -> Output {
    passed_alone(name, reexec(name, &[]))
}

/// Run `cmd` (test `name` re-executed by [`reexec`], set up further by the caller) and fail
/// unless that one test passed; its output is shown on failure, its skip passed on.
pub fn passed_alone(name: &str, cmd: std::process::Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
        "{name}, run alone: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    // Pass on a skip of the child's (its stderr is not the terminal's).
    for line in out.stderr.lines().filter(|l| l.starts_with("SKIPPED: ")) {
        let _ = std::io::stderr()
            .lock()
            .write_all(format!("{line}\n").as_bytes());
    }
    out
}

/// A caller's own seccomp program, as bytes of `struct sock_filter`: getppid fails with
/// EXFULL (a call that cannot fail otherwise), everything else is allowed.
/// `ld [nr]; jeq getppid ? next : allow; ret ERRNO(EXFULL); ret ALLOW`.
pub fn getppid_fails_with_exfull() -> Vec<u8> {
    let insn = |code: u16, jt: u8, jf: u8, k: u32| {
        let mut b = code.to_ne_bytes().to_vec();
        b.extend([jt, jf]);
        b.extend(k.to_ne_bytes());
        b
    };
    [
        insn(0x20, 0, 0, 0),
        insn(0x15, 0, 1, libc::SYS_getppid as u32),
        insn(0x06, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EXFULL as u32),
        insn(0x06, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
    .concat()
}

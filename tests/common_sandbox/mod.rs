//! Shared helpers for the spawn-mode tests (`tests/sandbox_*.rs`): namespaces that work as
//! root and unprivileged, unique markers, reads with a deadline, and scans of the host's
//! `/proc` for leftover processes and zombies.
//!
//! A marker is a number (`0.<pid><counter>1`) so that it can be an extra argument of GNU
//! `sleep` (which adds up its arguments): `sleep 1000 MARKER` carries the marker in its own
//! command line, where [`pids_with_marker`] finds it in any pid namespace.
//!
//! Every wait has a deadline ([`DEADLINE`]) so that a bug fails a test instead of hanging it;
//! no assertion is about speed.

#![allow(dead_code)] // each test file uses a different part of this module

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nsbox::{ChildStdout, Namespaces};
use tokio::io::AsyncReadExt;

/// How long any single wait may take before the test gives up. A hang guard, never an
/// assertion on speed.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Whether the tests run as root (euid 0) in the initial user namespace.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Every namespace nsbox knows (a user namespace included, so it works unprivileged).
pub fn all() -> Namespaces {
    Namespaces::all()
}

/// A pid namespace the caller can create: with a user and a mount namespace (a fresh /proc).
pub fn with_pidns() -> Namespaces {
    Namespaces::new().user(true).mount(true).pid(true).clone()
}

/// No pid namespace (the init is a child subreaper), but a user namespace so that the
/// sandbox is still a sandbox when unprivileged.
pub fn without_pidns() -> Namespaces {
    Namespaces::new().user(true).mount(true).clone()
}

/// Both process-tree shapes, named for messages.
pub fn both_shapes() -> [(&'static str, Namespaces); 2] {
    [
        ("pid namespace", with_pidns()),
        ("no pid namespace", without_pidns()),
    ]
}

/// A marker unique to this test process and call, usable as an extra `sleep` argument.
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
    std::env::temp_dir().join(format!("nsbox-sandbox-test-{}-{name}", marker()))
}

/// A scratch directory under the temp dir, writable by anyone, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        use std::os::unix::fs::PermissionsExt;
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

/// The pids (host view) of every process with `marker` as one of its arguments, and their
/// command lines. The test process itself is never listed.
pub fn pids_with_marker(marker: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
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
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|a| a == marker.as_bytes()) {
            let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, shown));
        }
    }
    found
}

/// Poll until no process carries `marker`, or fail after [`DEADLINE`] (killing what is left,
/// which this test started, by pid).
pub async fn assert_no_marker_left(marker: &str, what: &str) {
    let end = Instant::now() + DEADLINE;
    loop {
        let left = pids_with_marker(marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= end {
            for (pid, _) in &left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!(
                "{what}: processes with marker {marker} still alive after {DEADLINE:?}: {left:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll until at least one process carries `marker` (it has started), or fail.
pub async fn wait_for_marker(marker: &str, what: &str) -> Vec<(i32, String)> {
    let end = Instant::now() + DEADLINE;
    loop {
        let found = pids_with_marker(marker);
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < end,
            "{what}: no process with marker {marker} appeared within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Read `r` until the text read so far contains `needle`; fail at EOF or after [`DEADLINE`].
/// Returns everything read.
pub async fn read_until(r: &mut ChildStdout, needle: &str, what: &str) -> String {
    let mut got = Vec::new();
    let fut = async {
        let mut buf = [0u8; 512];
        loop {
            if String::from_utf8_lossy(&got).contains(needle) {
                return Ok(());
            }
            let n = r.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    let r: std::io::Result<()> = match tokio::time::timeout(DEADLINE, fut).await {
        Ok(r) => r,
        Err(_) => panic!("{what}: no {needle:?} within {DEADLINE:?}"),
    };
    let text = String::from_utf8_lossy(&got).into_owned();
    if let Err(e) = r {
        panic!("{what}: {e} before {needle:?}; read {text:?}");
    }
    text
}

/// Read `r` to EOF with a deadline.
pub async fn read_to_end(r: &mut ChildStdout, what: &str) -> String {
    let mut v = Vec::new();
    match tokio::time::timeout(DEADLINE, r.read_to_end(&mut v)).await {
        Ok(Ok(_)) => String::from_utf8_lossy(&v).into_owned(),
        Ok(Err(e)) => panic!("{what}: read: {e}"),
        Err(_) => panic!(
            "{what}: no EOF within {DEADLINE:?}; read {:?}",
            String::from_utf8_lossy(&v)
        ),
    }
}

/// Await `fut` or fail after [`DEADLINE`].
pub async fn deadline<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: not done within {DEADLINE:?}"),
    }
}

/// The zombie children of this process: (pid, comm).
pub fn zombie_children() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
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
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may hold spaces and parentheses.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat
            .get(stat.find('(').map_or(0, |i| i + 1)..close)
            .unwrap_or("")
            .to_string();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().unwrap_or("");
        let ppid: i32 = rest.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if state == "Z" && ppid == me {
            found.push((pid, comm));
        }
    }
    found
}

/// Poll until this process has no zombie child, or fail after [`DEADLINE`].
pub async fn assert_no_zombie_children(what: &str) {
    let end = Instant::now() + DEADLINE;
    loop {
        let z = zombie_children();
        if z.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "{what}: zombie children of the test process after {DEADLINE:?}: {z:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// The open fds of this process, with what they point to.
pub fn fd_list() -> Vec<(i32, String)> {
    let mut v: Vec<(i32, String)> = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            Some((n, target))
        })
        .collect();
    v.sort();
    v
}

/// Say loudly that a test (or part of one) did not run, and why.
pub fn skipped(test: &str, why: &str) {
    eprintln!("SKIPPED: {test}: {why}");
}

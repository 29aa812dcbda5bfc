//! For the tests of the spawn mode (`Sandbox`): the common `Namespaces` values, and async
//! reads and waits with a deadline.

use std::future::Future;
use std::process::ExitStatus;
use std::time::Duration;

use nsbox::{Child, ChildStdout, Filesystem, Namespaces, Sandbox, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{DEADLINE, pids_with_marker, poll_for, zombie_children};

/// Every namespace nsbox knows (a user namespace included, so it works unprivileged).
pub fn all() -> Namespaces {
    Namespaces::all()
}

/// A pid namespace the caller can create: with a user and a mount namespace (a fresh /proc).
pub fn with_pidns() -> Namespaces {
    let mut ns = Namespaces::new();
    ns.user(true).mount(true).pid(true);
    ns
}

/// No pid namespace (the init is a child subreaper), but a user namespace so that the
/// sandbox is still a sandbox when unprivileged.
pub fn without_pidns() -> Namespaces {
    let mut ns = Namespaces::new();
    ns.user(true).mount(true);
    ns
}

/// Only a user namespace.
pub fn userns_only() -> Namespaces {
    let mut ns = Namespaces::new();
    ns.user(true);
    ns
}

/// No namespace at all (the command still runs under its own init).
pub fn no_namespaces() -> Namespaces {
    Namespaces::new()
}

/// Both process-tree shapes, named for messages.
pub fn both_shapes() -> Vec<(&'static str, Namespaces)> {
    vec![
        ("pid namespace", with_pidns()),
        ("no pid namespace", without_pidns()),
    ]
}

/// Both process-tree shapes and no namespace at all.
pub fn shapes_and_none() -> Vec<(&'static str, Namespaces)> {
    let mut v = both_shapes();
    v.push(("no namespace at all", no_namespaces()));
    v
}

/// Await `fut` or fail after [`DEADLINE`].
pub async fn deadline<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: not done within {DEADLINE:?}"),
    }
}

/// Read `r` until the text read so far contains `needle`; fail at EOF or after [`DEADLINE`].
/// Returns everything read.
pub async fn read_until(r: &mut (impl AsyncRead + Unpin), needle: &str, what: &str) -> String {
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
    let r: std::io::Result<()> = deadline(&format!("{what}: reading up to {needle:?}"), fut).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    if let Err(e) = r {
        panic!("{what}: {e} before {needle:?}; read {text:?}");
    }
    text
}

/// Read `r` to EOF with a deadline.
pub async fn read_to_end(r: &mut (impl AsyncRead + Unpin), what: &str) -> String {
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

/// Poll until at least one process carries `marker` (it has started), or fail.
pub async fn wait_for_marker(marker: &str, what: &str) -> Vec<(i32, String)> {
    wait_for_markers(marker, 1, what).await
}

/// Poll until at least `n` processes carry `marker`, or fail.
pub async fn wait_for_markers(marker: &str, n: usize, what: &str) -> Vec<(i32, String)> {
    poll_for(what, || {
        let found = pids_with_marker(marker);
        if found.len() >= n {
            Ok(found)
        } else {
            Err(format!(
                "{} of {n} processes with marker {marker}: {found:?}",
                found.len()
            ))
        }
    })
    .await
}

/// Poll until no process carries `marker`, or fail after [`DEADLINE`] (killing what is left,
/// which this test started, by pid).
pub async fn assert_no_marker_left(marker: &str, what: &str) {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let left = pids_with_marker(marker);
        if left.is_empty() {
            return;
        }
        if std::time::Instant::now() >= end {
            super::kill_all(&left);
            panic!(
                "{what}: processes with marker {marker} still alive after {DEADLINE:?}: {left:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Poll until this process has no zombie child, or fail after [`DEADLINE`]. (Other tests of
/// the same binary may have a zombie for a moment; a leaked one stays.)
pub async fn assert_no_zombie_children(what: &str) {
    poll_for(what, || {
        let z = zombie_children();
        if z.is_empty() {
            Ok(())
        } else {
            Err(format!("zombie children of the test process: {z:?}"))
        }
    })
    .await
}

/// How many times [`with_growing_timeout`] tries.
pub const TIMEOUT_TRIES: u32 = 8;

/// For a case whose command must be past its setup (a trap installed, say: it then prints a
/// `ready` line) before its timeout fires. `attempt(timeout)` runs the case once and gives
/// `None` when the run was inconclusive (the timeout fired before the command was ready,
/// which only a slow machine causes), or what it found. The first try has `first`, each next
/// one twice the timeout of the one before, up to [`TIMEOUT_TRIES`] tries: the test then
/// asserts on a conclusive run, never on the machine being fast. Inconclusive every time, the
/// test fails.
pub async fn with_growing_timeout<T, F, Fut>(what: &str, first: Duration, mut attempt: F) -> T
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let mut timeout = first;
    for _ in 0..TIMEOUT_TRIES {
        if let Some(found) = attempt(timeout).await {
            return found;
        }
        eprintln!(
            "{what}: the timeout of {timeout:?} fired before the command was ready; again with twice as long"
        );
        timeout *= 2;
    }
    panic!(
        "{what}: inconclusive {TIMEOUT_TRIES} times: the timeout fired before the command was \
         ready even at {:?}",
        timeout / 2
    );
}

/// The shape of the `i`th of many sandboxes: every namespace, a pid namespace, or none, in
/// turn.
pub fn shape_of(i: usize) -> Namespaces {
    match i % 3 {
        0 => all(),
        1 => with_pidns(),
        _ => without_pidns(),
    }
}

/// Spawn `sb` and wait for it, with deadlines; fail the test on an error.
pub async fn spawn_and_wait(what: &str, sb: &mut Sandbox) -> ExitStatus {
    let mut child = deadline(what, sb.spawn())
        .await
        .unwrap_or_else(|e| panic!("{what}: spawn failed: {e}"));
    deadline(what, child.wait())
        .await
        .unwrap_or_else(|e| panic!("{what}: wait: {e}"))
}

/// A sandbox in `ns` running `sleep 1000 MARKER`, once the sleep runs (the marker shows in
/// the host's /proc).
pub async fn running_sleep(ns: Namespaces, marker: &str, what: &str) -> Child {
    let mut sb = Sandbox::new("sleep");
    sb.args(["1000", marker]).namespaces(ns);
    let child = sb
        .spawn()
        .await
        .unwrap_or_else(|e| panic!("{what}: spawn: {e}"));
    wait_for_marker(marker, what).await;
    child
}

/// Spawn `sb` with its stdout piped, and read that until the command says `ready`: the child
/// and its stdout.
pub async fn spawn_until_ready(sb: &mut Sandbox, what: &str) -> (Child, ChildStdout) {
    sb.stdout(Stdio::piped());
    let mut child = sb
        .spawn()
        .await
        .unwrap_or_else(|e| panic!("{what}: spawn: {e}"));
    let mut out = child.stdout.take().expect("piped stdout");
    read_until(&mut out, "ready\n", what).await;
    (child, out)
}

/// On a failing run, SIGKILL (by pid) a sandbox's init and whatever carries `marker`, so that
/// the failure leaves nothing behind (a test of a stuck or blinded init).
pub struct KillOnFailure {
    pub init: i32,
    pub marker: String,
}

impl Drop for KillOnFailure {
    fn drop(&mut self) {
        super::kill_all(&pids_with_marker(&self.marker));
        if !super::reaped(self.init) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.init),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The default view of a sandbox (the host read-only, a fresh /tmp) with `paths` writable:
/// for tests whose command uses a scratch directory, which lives under the host's /tmp.
pub fn writable(paths: &[&std::path::Path]) -> Filesystem {
    let mut fs = Filesystem::sandbox_default();
    for p in paths {
        fs.writable(*p);
    }
    fs
}

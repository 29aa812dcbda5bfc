//! Timeouts: a command that ignores SIGTERM is SIGKILLed after the grace (status SIGKILL,
//! `timed_out()` true, nothing left); a command that exits on SIGTERM dies by it (or exits
//! with its trap's code); a command that ends in time is untouched; the init enforces the
//! timeout even when nobody waits.
//!
//! A command that traps SIGTERM must have installed its trap before the timeout fires; it
//! says `ready` once it has. A run in which the timeout fired before `ready` (only a slow
//! machine does that) is inconclusive and is tried again with twice the timeout
//! (`with_growing_timeout`), so no assertion depends on the machine being fast.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use nsbox::{Namespaces, Sandbox, Stdio};

use crate::support::*;

/// What a timed-out run gave: its status, `timed_out()`, and all it wrote on stdout.
struct Run {
    status: ExitStatus,
    timed_out: bool,
    stdout: String,
}

/// How a test waits for its sandbox.
#[derive(Clone, Copy)]
enum Waiting<'a> {
    /// `wait()` runs all along, beside the read of stdout.
    Along,
    /// Nobody waits until stdout is at EOF (every process of the sandbox has closed it) and no
    /// process carries the marker: the init alone ended them. Only then `wait()`.
    NotUntilGone(&'a str),
}

/// Run `sh -c script` in `ns` with `timeout` and `grace`, read its stdout to the end and wait
/// for it as `waiting` says. `None` if the script did not print `ready` first: the timeout
/// fired before its setup was done.
async fn run_past_ready(
    what: &str,
    ns: Namespaces,
    script: &str,
    (timeout, grace): (Duration, Duration),
    waiting: Waiting<'_>,
) -> Option<Run> {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", script])
        .namespaces(ns)
        .stdout(Stdio::piped())
        .timeout(timeout)
        .kill_after(grace);
    let mut child = sb.spawn().await.expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let (stdout, status) = match waiting {
        Waiting::Along => tokio::join!(read_to_end(&mut out, what), deadline(what, child.wait())),
        Waiting::NotUntilGone(m) => {
            let stdout = read_to_end(&mut out, what).await;
            assert_no_marker_left(m, what).await;
            (stdout, deadline(what, child.wait()).await)
        }
    };
    if !stdout.starts_with("ready\n") {
        return None;
    }
    Some(Run {
        status: status.expect("wait"),
        timed_out: child.timed_out(),
        stdout,
    })
}

/// A command that ignores SIGTERM (the trap is set before `ready`; the sleep, which inherits
/// the ignored SIGTERM, carries the marker) is SIGKILLed after the grace: status SIGKILL,
/// `timed_out()`, nothing left. The first try's timeout and grace are `first`; with
/// `nobody_waits`, nobody waits until it is all over ([`Waiting::NotUntilGone`]).
async fn assert_killed_after_the_grace(first: Duration, nobody_waits: bool) {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let script = format!("trap '' TERM; echo ready; sleep 1000 {m}; echo not-killed");
        let waiting = if nobody_waits {
            Waiting::NotUntilGone(&m)
        } else {
            Waiting::Along
        };
        let run = with_growing_timeout(shape, first, |t| {
            run_past_ready(shape, ns.clone(), &script, (t, first), waiting)
        })
        .await;
        assert_eq!(
            run.status.signal(),
            Some(libc::SIGKILL),
            "{shape}: {:?}",
            run.status
        );
        assert!(run.timed_out, "{shape}: timed_out() is false");
        assert!(
            !run.stdout.contains("not-killed"),
            "{shape}: {:?}",
            run.stdout
        );
        assert_no_marker_left(&m, shape).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_ignores_sigterm_is_killed_after_the_grace() {
    assert_killed_after_the_grace(Duration::from_millis(300), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_exits_on_sigterm_dies_by_it() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let mut sb = Sandbox::new("sleep");
        // A grace far longer than the test: the status must be the SIGTERM, not a SIGKILL.
        // (No setup to race: `sleep` dies by a SIGTERM whenever it comes.)
        sb.args(["1000", &m])
            .namespaces(ns)
            .timeout(Duration::from_millis(200))
            .kill_after(Duration::from_secs(3600));
        let mut child = sb.spawn().await.expect("spawn");
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert_eq!(st.signal(), Some(libc::SIGTERM), "{shape}: {st:?}");
        assert!(child.timed_out(), "{shape}");
        assert_no_marker_left(&m, shape).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_traps_sigterm_exits_with_its_trap_code() {
    for (shape, ns) in both_shapes() {
        let script = "trap 'echo cleanup; exit 42' TERM; echo ready; while :; do sleep 0.05; done";
        let run = with_growing_timeout(shape, Duration::from_millis(300), |t| {
            let grace = Duration::from_secs(3600);
            run_past_ready(shape, ns.clone(), script, (t, grace), Waiting::Along)
        })
        .await;
        assert_eq!(run.status.code(), Some(42), "{shape}: {:?}", run.status);
        assert!(run.timed_out, "{shape}");
        assert!(run.stdout.contains("cleanup"), "{shape}: {:?}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_ends_in_time_is_not_marked_timed_out() {
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", "exit 5"])
            .namespaces(ns)
            .timeout(Duration::from_secs(3600));
        let mut child = sb.spawn().await.expect("spawn");
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert_eq!(st.code(), Some(5), "{shape}: {st:?}");
        assert!(!child.timed_out(), "{shape}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_timeout_is_enforced_while_nobody_waits() {
    assert_killed_after_the_grace(Duration::from_millis(100), true).await;
}

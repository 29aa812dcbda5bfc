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

/// Run `sh -c script` in `ns` with `timeout` and `grace`, read its stdout to the end (EOF once
/// every process of the sandbox is gone; this is not a wait for the child) and only then wait
/// for it. `None` if the script did not print `ready` first: the timeout fired before its
/// setup was done.
async fn run_past_ready(
    what: &str,
    ns: Namespaces,
    script: &str,
    timeout: Duration,
    grace: Duration,
    before_wait: impl AsyncFnOnce(),
) -> Option<Run> {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", script])
        .namespaces(ns)
        .stdout(Stdio::piped())
        .timeout(timeout)
        .kill_after(grace);
    let mut child = sb.spawn().await.expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let stdout = read_to_end(&mut out, what).await;
    if !stdout.starts_with("ready\n") {
        return None;
    }
    before_wait().await;
    let status = deadline(what, child.wait()).await.expect("wait");
    Some(Run {
        status,
        timed_out: child.timed_out(),
        stdout,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_ignores_sigterm_is_killed_after_the_grace() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        // The trap is set before `ready`, and the sleep (which inherits the ignored SIGTERM)
        // carries the marker.
        let script = format!("trap '' TERM; echo ready; sleep 1000 {m}; echo not-killed");
        let run = with_growing_timeout(shape, Duration::from_millis(300), |t| {
            run_past_ready(
                shape,
                ns.clone(),
                &script,
                t,
                Duration::from_millis(300),
                async || {},
            )
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
            run_past_ready(
                shape,
                ns.clone(),
                script,
                t,
                Duration::from_secs(3600),
                async || {},
            )
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
    for (shape, ns) in both_shapes() {
        let m = marker();
        let script = format!("trap '' TERM; echo ready; sleep 1000 {m}");
        // Nobody waits: the sandbox's stdout reaches EOF and its processes are gone before
        // wait() is first called, so the init alone ended them.
        let run = with_growing_timeout(shape, Duration::from_millis(100), |t| {
            run_past_ready(
                shape,
                ns.clone(),
                &script,
                t,
                Duration::from_millis(100),
                async || assert_no_marker_left(&m, shape).await,
            )
        })
        .await;
        assert_eq!(
            run.status.signal(),
            Some(libc::SIGKILL),
            "{shape}: {:?}",
            run.status
        );
        assert!(run.timed_out, "{shape}");
    }
}

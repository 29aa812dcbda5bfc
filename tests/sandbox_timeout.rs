//! Timeouts: a command that ignores SIGTERM is SIGKILLed after the grace (status SIGKILL,
//! `timed_out()` true, nothing left); a command that exits on SIGTERM dies by it (or exits
//! with its trap's code); a command that ends in time is untouched; the init enforces the
//! timeout even when nobody waits.

mod common_sandbox;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common_sandbox::*;
use nsbox::{Sandbox, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_ignores_sigterm_is_killed_after_the_grace() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let mut sb = Sandbox::new("sh");
        // The trap is set before `ready`, and the sleep (which inherits the ignored SIGTERM)
        // carries the marker.
        sb.args([
            "-c",
            &format!("trap '' TERM; echo ready; sleep 1000 {m}; echo not-killed"),
        ])
        .namespaces(ns)
        .stdout(Stdio::piped())
        .timeout(Duration::from_millis(300))
        .kill_after(Duration::from_millis(300));
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        read_until(&mut out, "ready\n", shape).await;
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{shape}: {st:?}");
        assert!(child.timed_out(), "{shape}: timed_out() is false");
        let rest = read_to_end(&mut out, shape).await;
        assert!(!rest.contains("not-killed"), "{shape}: {rest:?}");
        assert_no_marker_left(&m, shape).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_exits_on_sigterm_dies_by_it() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let mut sb = Sandbox::new("sleep");
        // A grace far longer than the test: the status must be the SIGTERM, not a SIGKILL.
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
        let mut sb = Sandbox::new("sh");
        sb.args([
            "-c",
            "trap 'echo cleanup; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .namespaces(ns)
        .stdout(Stdio::piped())
        .timeout(Duration::from_millis(300))
        .kill_after(Duration::from_secs(3600));
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        read_until(&mut out, "ready\n", shape).await;
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert_eq!(st.code(), Some(42), "{shape}: {st:?}");
        assert!(child.timed_out(), "{shape}");
        assert!(read_to_end(&mut out, shape).await.contains("cleanup"));
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
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &format!("trap '' TERM; sleep 1000 {m}")])
            .namespaces(ns)
            .timeout(Duration::from_millis(100))
            .kill_after(Duration::from_millis(100));
        let mut child = sb.spawn().await.expect("spawn");
        wait_for_marker(&m, shape).await;
        // Nobody waits: the init alone must end it.
        assert_no_marker_left(&m, shape).await;
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert_eq!(st.signal(), Some(libc::SIGKILL), "{shape}: {st:?}");
        assert!(child.timed_out());
    }
}

//! The output of a finished sandbox keeps its facts: whether the timeout fired, and what the
//! whole sandbox used.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use nsbox::{Namespaces, Sandbox, Stdio};

use crate::support::*;

fn ns() -> Namespaces {
    with_pidns()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_says_that_the_timeout_fired() {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo started; exec sleep 1000"])
        .namespaces(ns())
        .timeout(Duration::from_millis(50))
        .kill_after(Duration::from_secs(30));
    let out = sb.output().await.expect("output");
    assert!(out.timed_out, "{out:?}");
    // sleep does not trap SIGTERM: it dies by it, whenever the timeout fires.
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_keeps_the_whole_sandboxs_resource_usage() {
    // A child of the command burns CPU, then the command exits: the usage is the sandbox's.
    let mut sb = Sandbox::new("sh");
    sb.args([
        "-c",
        "(i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done) ; echo done",
    ])
    .namespaces(ns())
    .stdout(Stdio::piped());
    let out = sb.output().await.expect("output");
    assert_eq!(out.stdout, b"done\n");
    assert!(!out.timed_out);
    let u = out.resource_usage;
    assert!(u.user_time + u.system_time > Duration::ZERO, "{u:?}");
    assert!(u.max_rss_bytes > 0, "{u:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_with_output_keeps_them_too_and_converts_to_std() {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo out; echo err >&2; exit 4"])
        .namespaces(ns())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = sb.spawn().await.expect("spawn");
    let out = child.wait_with_output().await.expect("wait");
    assert!(!out.timed_out);
    assert!(out.resource_usage.max_rss_bytes > 0);
    let std_out: std::process::Output = out.into();
    assert_eq!(std_out.status.code(), Some(4));
    assert_eq!(
        (&std_out.stdout[..], &std_out.stderr[..]),
        (&b"out\n"[..], &b"err\n"[..])
    );
}

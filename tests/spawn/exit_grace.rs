//! `Sandbox::exit_grace`: when the command ends, what is left gets SIGTERM (a daemon can
//! flush), then SIGKILL when the grace is over; `wait()` resolves as soon as nothing is left.
//! The default stays SIGKILL at once. With and without a pid namespace.

use std::time::Duration;

use nsbox::{Sandbox, Stdio};

use crate::support::*;

/// The command starts a leftover running `leftover` (which tells the command, with SIGUSR1,
/// that it is armed), then exits 3.
fn program(leftover: &str) -> String {
    format!("trap 'exit 3' USR1; ({leftover}) & while :; do sleep 0.05 & wait $!; done")
}

const TRAPS_TERM: &str =
    "trap 'echo got-TERM; exit 0' TERM; kill -USR1 $$; while :; do sleep 0.05 & wait $!; done";

async fn run(
    grace: Option<Duration>,
    leftover: &str,
    shape: &str,
    ns: nsbox::Namespaces,
) -> String {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", &program(leftover)])
        .namespaces(ns)
        .stdout(Stdio::piped());
    if let Some(g) = grace {
        sb.exit_grace(g);
    }
    let out = deadline(shape, sb.output())
        .await
        .unwrap_or_else(|e| panic!("{shape}: {e}"));
    assert_eq!(out.status.code(), Some(3), "{shape}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_grace_the_leftovers_get_sigterm_first() {
    for (shape, ns) in both_shapes() {
        // Far longer than any wait here: the sandbox must end as soon as nothing is left.
        let out = run(Some(Duration::from_secs(1000)), TRAPS_TERM, shape, ns).await;
        assert!(out.contains("got-TERM\n"), "{shape}: {out:?}");
    }
    assert_no_zombie_children("after the sandboxes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_grace_the_leftovers_get_sigkill_at_once() {
    for (shape, ns) in both_shapes() {
        let out = run(None, TRAPS_TERM, shape, ns).await;
        assert!(!out.contains("got-TERM"), "{shape}: {out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_that_ignores_sigterm_is_killed_when_the_grace_is_over() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let leftover = format!("trap '' TERM; kill -USR1 $$; exec sleep 1000 {m}");
        run(Some(Duration::from_millis(200)), &leftover, shape, ns).await;
        assert_no_marker_left(&m, shape).await;
    }
}

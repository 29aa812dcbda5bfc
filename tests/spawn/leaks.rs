//! 1,000 sandboxes, spawned and waited, dropped while running, collected with output, or
//! failing to spawn: afterwards the orchestrator has exactly the fds it had before, no zombie
//! child, and no process of theirs is left. The test runs alone in a child process of this
//! binary (`support::run_alone`), so that no other test opens fds or starts children meanwhile.

use futures::StreamExt;
use nsbox::{Sandbox, Stdio};

use crate::support::*;

async fn one(i: usize, m: &str) {
    let ns = if i.is_multiple_of(2) {
        with_pidns()
    } else {
        without_pidns()
    };
    match i % 4 {
        0 => {
            let mut sb = Sandbox::new("sh");
            sb.args(["-c", &format!("exit {}", i % 256)]).namespaces(ns);
            let st = sb.spawn().await.expect("spawn").wait().await.expect("wait");
            assert_eq!(st.code(), Some((i % 256) as i32));
        }
        1 => {
            let mut sb = Sandbox::new("sleep");
            sb.args(["1000", m]).namespaces(ns).stdout(Stdio::piped());
            let child = sb.spawn().await.expect("spawn");
            drop(child);
        }
        2 => {
            let mut sb = Sandbox::new("sh");
            sb.args(["-c", "echo out; echo err >&2"]).namespaces(ns);
            let out = sb.output().await.expect("output");
            assert_eq!(out.stdout, b"out\n");
            assert_eq!(out.stderr, b"err\n");
        }
        _ => {
            let mut sb = Sandbox::new("/no/such/program");
            sb.namespaces(ns)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            sb.spawn().await.expect_err("spawned a missing program");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_sandboxes_leave_no_fd_no_zombie_and_no_process() {
    if ran_alone(
        module_path!(),
        "a_thousand_sandboxes_leave_no_fd_no_zombie_and_no_process",
    )
    .await
    {
        return;
    }
    let m = marker();
    // Warm up: whatever the runtime opens once (signal driver, ...) is opened now.
    for i in 0..8 {
        one(i, &m).await;
    }
    assert_no_marker_left(&m, "warm-up").await;
    assert_no_zombie_children("warm-up").await;
    // Dropped sandboxes are reaped in the background: count once none is left (no pidfd).
    let before = settled_fds("warm-up").await;

    deadline(
        "1000 sandboxes",
        futures::stream::iter(0..1000)
            .map(|i| {
                let m = m.clone();
                tokio::spawn(async move { one(i, &m).await })
            })
            .buffer_unordered(32)
            .for_each(|r| async move { r.expect("task") }),
    )
    .await;

    assert_no_marker_left(&m, "after 1000 sandboxes").await;
    assert_no_zombie_children("after 1000 sandboxes").await;
    let after = settled_fds("after 1000 sandboxes").await;
    assert_eq!(
        after.len(),
        before.len(),
        "fd leak: {} fds before, {} after\nbefore: {before:?}\nafter: {after:?}",
        before.len(),
        after.len()
    );
}

/// This process's fds once every sandbox has been reaped: no pidfd is open any more (a
/// deadline, not a delay).
async fn settled_fds(what: &str) -> Vec<(i32, String)> {
    poll_for(what, || {
        let now: Vec<(i32, String)> = own_fds().into_iter().collect();
        if now.iter().any(|(_, t)| t.contains("pidfd")) {
            Err(format!("sandboxes not reaped: {now:?}"))
        } else {
            Ok(now)
        }
    })
    .await
}

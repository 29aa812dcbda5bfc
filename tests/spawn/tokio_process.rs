//! Coexistence: tokio::process and std::process children of the orchestrator keep their
//! statuses while sandboxes run in the same process (nsbox never calls waitpid(-1) there).

use std::os::unix::process::ExitStatusExt;

use futures::future::join_all;
use nsbox::{Sandbox, Stdio};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokio_process_children_and_sandboxes_run_side_by_side() {
    // Started first and still running while the sandboxes come and go.
    let mut long = tokio::process::Command::new("sh")
        .args(["-c", "read x; exit 7"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("tokio child");
    let mut std_child = std::process::Command::new("sh")
        .args(["-c", "exit 9"])
        .spawn()
        .expect("std child");
    let mut runs = Vec::new();
    for i in 0..40 {
        runs.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let mut sb = Sandbox::new("sh");
                sb.args(["-c", &format!("exit {i}")])
                    .namespaces(if i % 4 == 0 { all() } else { without_pidns() });
                let st = sb.status().await.expect("sandbox");
                assert_eq!(st.code(), Some(i), "sandbox {i}: {st:?}");
            } else {
                let st = tokio::process::Command::new("sh")
                    .args(["-c", &format!("exit {i}")])
                    .status()
                    .await
                    .expect("tokio::process status");
                assert_eq!(st.code(), Some(i), "tokio child {i}: {st:?}");
            }
        }));
    }
    for r in deadline("side by side", join_all(runs)).await {
        r.expect("task");
    }
    // A sandbox alive while the long tokio child ends.
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo ready; read x; exit 11"])
        .namespaces(all())
        .stdin(Stdio::piped());
    let (mut child, _out) = spawn_until_ready(&mut sb, "sandbox").await;
    drop(long.stdin.take());
    let st = deadline("tokio child", long.wait())
        .await
        .expect("tokio child wait");
    assert_eq!(st.code(), Some(7), "{st:?}");
    let st = deadline("sandbox", child.wait())
        .await
        .expect("sandbox wait");
    assert_eq!(st.code(), Some(11), "{st:?}");
    // The std child was never reaped by anyone else.
    let st = std_child
        .wait()
        .expect("std child wait (ECHILD means stolen)");
    assert_eq!(st.code(), Some(9), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tokio_child_killed_by_a_signal_reports_it_while_sandboxes_run() {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo ready; read x; exit 0"])
        .namespaces(all())
        .stdin(Stdio::piped());
    let (mut child, _out) = spawn_until_ready(&mut sb, "sandbox").await;
    let st = tokio::process::Command::new("sh")
        .args(["-c", "kill -USR1 $$"])
        .status()
        .await
        .expect("tokio child");
    assert_eq!(st.signal(), Some(libc::SIGUSR1), "{st:?}");
    let st = deadline("sandbox", child.wait()).await.expect("wait");
    assert_eq!(st.code(), Some(0), "{st:?}");
}

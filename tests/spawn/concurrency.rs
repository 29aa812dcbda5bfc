//! 200 sandboxes at once on a multi-thread runtime, each spawned from its own task and
//! exiting with its own index % 256: every status comes back to the right child.

use std::collections::HashSet;

use nsbox::Sandbox;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_sandboxes_each_get_their_own_status() {
    const N: usize = 200;
    let mut tasks = Vec::new();
    for i in 0..N {
        let ns = shape_of(i);
        tasks.push(tokio::spawn(async move {
            // A little work before exiting so that many sandboxes overlap.
            let script = format!(
                "i=0; while [ $i -lt 20 ]; do i=$((i+1)); done; exit {}",
                i % 256
            );
            let mut sb = Sandbox::new("sh");
            sb.args(["-c", &script]).namespaces(ns);
            let mut child = sb
                .spawn()
                .await
                .unwrap_or_else(|e| panic!("spawn {i}: {e}"));
            let pid = child.id().expect("the init runs");
            let st = child
                .wait()
                .await
                .unwrap_or_else(|e| panic!("wait {i}: {e}"));
            (i, pid, st)
        }));
    }
    let all_done = deadline("200 sandboxes", futures::future::join_all(tasks)).await;
    let mut pids = HashSet::new();
    for r in all_done {
        let (i, pid, st) = r.expect("task");
        assert_eq!(st.code(), Some((i % 256) as i32), "sandbox {i}: {st:?}");
        pids.insert(pid);
    }
    assert!(pids.len() > 1);
    assert_no_zombie_children("after 200 sandboxes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sandboxes_with_piped_output_get_their_own_output() {
    const N: usize = 64;
    let mut tasks = Vec::new();
    for i in 0..N {
        tasks.push(tokio::spawn(async move {
            let mut sb = Sandbox::new("sh");
            sb.args(["-c", &format!("echo sandbox-{i}; exit {}", i % 7)])
                .namespaces(all().hostname(format!("h{i}")));
            let out = sb
                .output()
                .await
                .unwrap_or_else(|e| panic!("output {i}: {e}"));
            (i, out)
        }));
    }
    for r in deadline("64 sandboxes", futures::future::join_all(tasks)).await {
        let (i, out) = r.expect("task");
        assert_eq!(out.status.code(), Some((i % 7) as i32), "{i}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("sandbox-{i}\n")
        );
    }
}

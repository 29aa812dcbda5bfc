//! Dropping kills: a dropped `Child` takes its whole sandbox with it (also when dropped on a
//! thread without a runtime), a dropped `spawn()` future (cancelled half-way, in a setup hook
//! that never completes) leaves no process and no zombie, and `kill_on_drop(false)` lets the
//! sandbox run to its end.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use nsbox::{Sandbox, SetupContext, SetupHook, Stdio};
use tokio::io::AsyncWriteExt;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_a_child_kills_its_whole_sandbox() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let mut sb = Sandbox::new("sh");
        // The command and a child of it both carry the marker.
        sb.args(["-c", &format!("sleep 1000 {m} & sleep 1000 {m}")])
            .namespaces(ns)
            .stdout(Stdio::piped());
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        let found = wait_for_marker(&m, shape).await;
        assert!(!found.is_empty());
        drop(child);
        assert_no_marker_left(&m, shape).await;
        // Its stdout sees EOF: every writer is gone.
        assert_eq!(read_to_end(&mut out, shape).await, "");
    }
    assert_no_zombie_children("after the drops").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_a_child_on_a_thread_without_a_runtime_kills_and_reaps() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let child = running_sleep(ns, &m, shape).await;
        std::thread::spawn(move || drop(child))
            .join()
            .expect("drop thread");
        assert_no_marker_left(&m, shape).await;
    }
    assert_no_zombie_children("after the drops").await;
}

/// A hook that records the init's pid, says it ran, and then never completes.
struct Forever {
    pid: Arc<AtomicU32>,
    ran: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl SetupHook for Forever {
    async fn setup(&self, ctx: &SetupContext<'_>) -> io::Result<()> {
        self.pid.store(ctx.pid, Ordering::SeqCst);
        self.ran.notify_one();
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_the_spawn_future_half_way_leaves_nothing() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let pid = Arc::new(AtomicU32::new(0));
        let ran = Arc::new(tokio::sync::Notify::new());
        let mut sb = Sandbox::new("sleep");
        sb.args(["1000", &m])
            .namespaces(ns)
            .setup_hook(Arc::new(Forever {
                pid: pid.clone(),
                ran: ran.clone(),
            }));
        // The spawn future is dropped once the hook runs: half-way, in the setup.
        let what = format!("{shape}: the hook running");
        tokio::select! {
            r = sb.spawn() => panic!("{shape}: spawn finished with a hook that never does: {r:?}"),
            () = deadline(&what, ran.notified()) => {}
        }
        let pid = pid.load(Ordering::SeqCst);
        assert_ne!(pid, 0, "{shape}: the hook never ran");
        // The init must be gone and reaped: no /proc entry left (a zombie would keep one).
        until_reaped(pid as i32, &format!("{shape}: the init")).await;
        assert!(pids_with_marker(&m).is_empty(), "{shape}: the command ran");
    }
    assert_no_zombie_children("after the cancelled spawns").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_kill_on_drop_the_sandbox_runs_to_its_end() {
    for (shape, ns) in both_shapes() {
        let scratch = Scratch::new("no-kill-on-drop");
        let done = scratch.path().join("done");
        let mut sb = Sandbox::new("sh");
        // It finishes its work only once told to, after the drop.
        sb.args([
            "-c",
            &format!("echo ready; read go; echo finished > {}", done.display()),
        ])
        .namespaces(ns)
        .filesystem(writable(&[scratch.path()]))
        .stdin(Stdio::piped())
        .kill_on_drop(false);
        let (mut child, mut out) = spawn_until_ready(&mut sb, shape).await;
        let mut stdin = child.stdin.take().unwrap();
        drop(child);
        stdin.write_all(b"go\n").await.expect("tell it to go on");
        drop(stdin);
        poll_for(
            &format!("{shape}: the work done after the drop"),
            || match std::fs::read_to_string(&done) {
                Ok(t) if t == "finished\n" => Ok(()),
                other => Err(format!("{done:?}: {other:?}")),
            },
        )
        .await;
        assert_eq!(read_to_end(&mut out, shape).await, "");
    }
    assert_no_zombie_children("after the sandboxes ended").await;
}

#[test]
fn a_child_dropped_just_before_its_runtime_shuts_down_is_still_reaped() {
    for (shape, ns) in both_shapes() {
        for kill_on_drop in [true, false] {
            let what = format!("{shape}, kill_on_drop {kill_on_drop}");
            let m = marker();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let pid = rt.block_on(async {
                let mut sb = Sandbox::new("sh");
                // Without kill_on_drop the command ends by itself, soon.
                let secs = if kill_on_drop { "1000" } else { "0.2" };
                sb.args(["-c", &format!("sleep {secs} {m}")])
                    .namespaces(ns.clone())
                    .kill_on_drop(kill_on_drop);
                let child = sb.spawn().await.expect("spawn");
                let pid = child.id().expect("the init runs");
                drop(child);
                pid
            });
            // The runtime goes away while the init is (most likely) still exiting: whatever
            // reaps it in the background must not go away with it.
            drop(rt);
            wait_reaped(pid as i32, &what);
            assert!(pids_with_marker(&m).is_empty(), "{what}");
        }
    }
}

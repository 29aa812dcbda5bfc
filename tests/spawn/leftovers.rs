//! Leftover processes: a daemon the command leaves behind (`setsid sleep 1000 &`, also a
//! deeper tree of them) is killed when the command ends, with and without a pid namespace;
//! with `wait_all(true)` the wait lasts until the daemon has ended by itself.

use nsbox::{Sandbox, Stdio};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daemon_left_behind_is_killed_when_the_command_ends() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        // Without job control the background job is not a group leader, so setsid execs sleep
        // in place and $! is the daemon. The command waits until the daemon runs, then ends.
        let script = format!(
            "setsid sleep 1000 {m} & d=$!; \
             until tr '\\0' ' ' < /proc/$d/cmdline 2>/dev/null | grep -q {m}; do sleep 0.01; done; \
             exit 3"
        );
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &script]).namespaces(ns);
        let st = deadline(shape, sb.status()).await.expect("status");
        assert_eq!(st.code(), Some(3), "{shape}: {st:?}");
        assert_no_marker_left(&m, shape).await;
    }
    assert_no_zombie_children("after the sandboxes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tree_of_daemons_left_behind_is_killed_too() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let scratch = Scratch::new("tree");
        let go = scratch.path().join("go");
        // Double-forked daemons, each with two children; the command leaves once the test
        // has seen all six sleeps running and says go.
        let script = format!(
            "for i in 1 2 3; do \
               ( setsid sh -c 'sleep 1000 {m} & sleep 1000 {m} & wait' & ) ; \
             done; \
             until [ -e {go} ]; do sleep 0.01; done; \
             exit 4",
            go = go.display()
        );
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &script])
            .namespaces(ns)
            .filesystem(writable(&[scratch.path()]));
        let mut child = sb.spawn().await.expect("spawn");
        wait_for_markers(&m, 6, &format!("{shape}: the daemons starting")).await;
        std::fs::write(&go, "").unwrap();
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert_eq!(st.code(), Some(4), "{shape}: {st:?}");
        assert_no_marker_left(&m, shape).await;
    }
    assert_no_zombie_children("after the sandboxes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_wait_all_the_wait_lasts_until_the_daemon_ends() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        // The daemon (its $0 is the marker) outlives the command for sure: it waits until the
        // command is gone, then says so on the shared stdout and ends.
        let script = format!(
            "c=$$; setsid sh -c 'while kill -0 '$c' 2>/dev/null; do sleep 0.01; done; \
             echo daemon-done' {m} & echo command-done; exit 3"
        );
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &script])
            .namespaces(ns)
            .stdout(Stdio::piped())
            .wait_all(true);
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert_eq!(st.code(), Some(3), "{shape}: the command's status: {st:?}");
        // The wait returned only once the sandbox was empty: the daemon is gone already
        // (no polling here), and it ended by itself, after printing.
        let left = pids_with_marker(&m);
        assert!(
            left.is_empty(),
            "{shape}: wait returned while the daemon ran: {left:?}"
        );
        let text = read_to_end(&mut out, shape).await;
        assert!(text.contains("command-done"), "{shape}: {text:?}");
        assert!(
            text.contains("daemon-done"),
            "{shape}: the daemon was killed: {text:?}"
        );
    }
    assert_no_zombie_children("after the sandboxes").await;
}

/// Regression (found in review): with `wait_all(true)` and no pid namespace, a kill that comes
/// after the command's status went out (here `Child::kill`) must kill the whole tree left,
/// grandchildren included, not only the init's direct children (whose orphans then come back
/// to the subreaper init and would keep the wait going).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_wait_all_a_kill_after_the_command_ended_kills_the_grandchildren_too() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        // The daemon is a shell that waits for the command to be gone, says so, and then
        // runs a sleep of its own (`; true` keeps sh from exec'ing it): once the command has
        // ended, the sleep is a grandchild of the init.
        let script = format!(
            "c=$$; setsid sh -c 'while kill -0 '$c' 2>/dev/null; do sleep 0.01; done; \
             echo command-gone; sleep 1000 {m}; true' & exit 3"
        );
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &script])
            .namespaces(ns)
            .stdout(Stdio::piped())
            .wait_all(true);
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        read_until(&mut out, "command-gone\n", shape).await;
        wait_for_marker(&m, shape).await;
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "{shape}: wait_all ended while the daemon ran"
        );
        deadline(shape, child.kill()).await.expect("kill");
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert_eq!(
            st.code(),
            Some(3),
            "{shape}: the command's own status: {st:?}"
        );
        assert_no_marker_left(&m, shape).await;
    }
    assert_no_zombie_children("after the sandboxes").await;
}

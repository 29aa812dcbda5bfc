//! A sandbox whose init is stuck (stopped, its control pipe full) is still killed and reaped
//! when its `Child` is dropped: the drop falls back to SIGKILL through the pidfd.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nsbox::Sandbox;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_sandbox_whose_init_is_stopped_and_deaf_kills_and_reaps_it() {
    for (what, ns) in both_shapes() {
        let m = marker();
        let mut sb = Sandbox::new("sleep");
        sb.args(["1000", &m]).namespaces(&ns);
        let child = deadline(what, sb.spawn()).await.expect("spawn");
        let init = child.id().expect("the init runs") as i32;
        let _guard = KillOnFailure {
            init,
            marker: m.clone(),
        };
        kill(Pid::from_raw(init), Signal::SIGSTOP).expect("stop the init");
        poll_for("the init stopped", || match state(init) {
            Some('T') => Ok(()),
            s => Err(format!("state {s:?}")),
        })
        .await;
        // Fill the control pipe: the stopped init reads nothing, so a write fails at last.
        let mut sent = 0u64;
        while child.signal(libc::SIGCONT).is_ok() {
            sent += 1;
            assert!(sent < 1 << 20, "{what}: the control pipe never filled");
        }
        drop(child);
        until_reaped(init, &format!("{what}: the stuck init after the drop")).await;
        assert_no_marker_left(&m, what).await;
    }
}

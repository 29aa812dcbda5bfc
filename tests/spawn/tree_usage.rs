//! The resource usage of the whole tree: a daemon the command leaves behind burns CPU, and
//! its time is in `Child::resource_usage()` (and `Output::resource_usage`) however the
//! sandbox ends: the command exits, the orchestrator kills it, or the timeout fires. The
//! daemon burns until its own `/proc/self/stat` says it has used `BURN_MS` of CPU, then says
//! so and goes on burning: the usage must be at least that (a lower bound the daemon
//! measured, not a timing threshold). Before, with a pid namespace, the kernel killed what
//! was left when the init exited, and autoreaped it: its time was lost.

use std::time::Duration;

use nsbox::{EndReason, Namespaces, Sandbox, Stdio};

use crate::support::*;

const BURN_MS: u64 = 300;

/// A daemon (a subshell in the background) that burns until it has used BURN_MS of CPU,
/// runs `then`, and burns on for ever.
fn daemon(then: &str) -> String {
    format!(
        "tck=$(getconf CLK_TCK); want=$(( {BURN_MS} * tck / 1000 )); \
         ( while :; do read -r s < /proc/self/stat; set -- $s; \
             [ $(( ${{14}} + ${{15}} )) -ge $want ] && break; done; \
           {then}; while :; do :; done ) &"
    )
}

fn cpu(u: nsbox::Rusage) -> Duration {
    u.user_time + u.system_time
}

fn assert_counted(u: nsbox::Rusage, what: &str) {
    assert!(
        cpu(u) >= Duration::from_millis(BURN_MS),
        "{what}: the daemon used at least {BURN_MS} ms of CPU, the sandbox reports {u:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_left_behind_is_counted_when_the_command_exits() {
    for (shape, ns) in both_shapes() {
        // The daemon ends the command (its trap exits 0) once it has burned enough.
        let script = format!("trap 'exit 0' TERM; {} wait", daemon("kill -TERM $$"));
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &script]).namespaces(ns);
        let out = deadline(shape, sb.output()).await.expect("output");
        assert_eq!(out.end_reason, EndReason::Exited(0), "{shape}: {out:?}");
        assert_counted(out.resource_usage, shape);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_left_behind_is_counted_when_the_sandbox_is_killed() {
    for (shape, ns) in both_shapes() {
        let script = format!("{} exec sleep 1000", daemon("echo burned"));
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &script])
            .namespaces(ns)
            .stdout(Stdio::piped());
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        read_until(&mut out, "burned", shape).await;
        deadline(shape, child.kill()).await.expect("kill");
        assert_eq!(child.end_reason(), Some(EndReason::Killed), "{shape}");
        assert_counted(child.resource_usage().expect("usage"), shape);
    }
}

/// One timed-out run: `None` when the timeout fired before the daemon had burned enough
/// (inconclusive: tried again with twice the timeout).
async fn timed_out_run(ns: Namespaces, timeout: Duration, what: &str) -> Option<nsbox::Output> {
    let script = format!("{} exec sleep 1000", daemon("echo burned"));
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", &script])
        .namespaces(ns)
        .timeout(timeout)
        .kill_after(Duration::from_millis(10));
    let out = deadline(what, sb.output()).await.expect("output");
    (out.stdout.starts_with(b"burned")).then_some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_busy_tree_reports_its_cpu_time() {
    for (shape, ns) in both_shapes() {
        let mut timeout = Duration::from_millis(4 * BURN_MS);
        let out = loop {
            if let Some(out) = timed_out_run(ns.clone(), timeout, shape).await {
                break out;
            }
            assert!(
                timeout < DEADLINE / 4,
                "{shape}: the daemon never burned enough"
            );
            timeout *= 2;
        };
        assert!(out.timed_out, "{shape}: {out:?}");
        assert_eq!(out.end_reason, EndReason::TimedOut, "{shape}: {out:?}");
        assert_counted(out.resource_usage, shape);
    }
}

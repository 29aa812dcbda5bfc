//! A sandboxed command cannot see or signal host processes.

use std::collections::BTreeSet;

use crate::support::*;
use crate::{lines, sh};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_cannot_see_or_signal_host_processes() {
    // A host process of the same user, which the sandbox will try to kill.
    let m = marker();
    let mut victim = std::process::Command::new("sleep")
        .args(["1000", &m])
        .spawn()
        .expect("start a host sleep");
    let me = std::process::id().to_string();
    let victim_pid = victim.id().to_string();
    let script = r#"
        for p in /proc/[0-9]*; do echo "pid ${p#/proc/}"; done
        kill -0 "$1" 2>/dev/null && echo "signal test: ok" || echo "signal test: failed"
        kill -KILL "$2" 2>/dev/null && echo "signal victim: ok" || echo "signal victim: failed"
    "#;
    let out = sh("pidns", all(), script, &[&me, &victim_pid]).await;
    assert!(out.status.success(), "{}", out.stderr);
    let got = lines(&out.stdout);
    // Only the init (1) and the shell (2): no host pid, not even the test's.
    let pids: BTreeSet<&str> = got.iter().filter_map(|l| l.strip_prefix("pid ")).collect();
    assert_eq!(pids, BTreeSet::from(["1", "2"]), "{}", out.stdout);
    assert!(got.contains("signal test: failed"), "{}", out.stdout);
    assert!(got.contains("signal victim: failed"), "{}", out.stdout);
    assert!(
        victim.try_wait().expect("try_wait").is_none(),
        "the host process was killed from inside the sandbox"
    );
    victim.kill().expect("kill the host sleep");
    victim.wait().expect("reap the host sleep");
}

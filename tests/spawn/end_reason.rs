//! Why a sandbox ended (`Child::end_reason`, `Output::end_reason`), from its status and what
//! the init recorded: the command's own exit and signal, the timeout, the orchestrator's kill
//! (`kill` and `start_kill`), and the rlimits' SIGXCPU and SIGXFSZ. (The OOM killer and the
//! process limit need a cgroup's controllers: tests/spawn/cgroups.rs.)

use std::time::Duration;

use nsbox::{EndReason, Resource, Sandbox, Stdio};

use crate::support::*;

async fn reason_of(mut sb: Sandbox, what: &str) -> EndReason {
    let mut child = deadline(what, sb.spawn()).await.expect("spawn");
    assert_eq!(child.end_reason(), None, "{what}: no reason while it runs");
    deadline(what, child.wait()).await.expect("wait");
    child.end_reason().expect("a reason once it ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_own_exit_and_signal() {
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", "sleep 0.01; exit 3"]).namespaces(ns.clone());
        assert_eq!(reason_of(sb, shape).await, EndReason::Exited(3), "{shape}");
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", "kill -SEGV $$"])
            .namespaces(ns)
            .rlimit(Resource::Core, 0, 0);
        assert_eq!(
            reason_of(sb, shape).await,
            EndReason::Signaled(libc::SIGSEGV),
            "{shape}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout() {
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("sleep");
        sb.arg("1000")
            .namespaces(ns)
            .timeout(Duration::from_millis(20))
            .kill_after(Duration::from_secs(30));
        let out = deadline(shape, sb.output()).await.expect("output");
        assert!(out.timed_out, "{shape}: {out:?}");
        assert_eq!(out.end_reason, EndReason::TimedOut, "{shape}: {out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrators_kill() {
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", "echo up; exec sleep 1000"])
            .namespaces(ns)
            .stdout(Stdio::piped());
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        read_until(&mut out, "up\n", shape).await;
        deadline(shape, child.kill()).await.expect("kill");
        assert_eq!(child.end_reason(), Some(EndReason::Killed), "{shape}");

        // start_kill, then wait_with_output.
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        read_until(&mut out, "up\n", shape).await;
        child.start_kill().expect("start_kill");
        let o = deadline(shape, child.wait_with_output())
            .await
            .expect("wait");
        assert_eq!(o.end_reason, EndReason::Killed, "{shape}: {o:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_the_command_ended_is_not_the_reason() {
    // The command ends with 0 and the sandbox stays up for its daemon (wait_all); the kill
    // then only ends the daemon.
    let m = marker();
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", &format!("sleep 1000 {m} & exit 0")])
        .namespaces(with_pidns())
        .wait_all(true);
    let mut child = sb.spawn().await.expect("spawn");
    wait_for_marker(&m, "daemon").await;
    // Until the command is reaped by the init, its pid carries no marker: wait for it to be
    // gone from the init's children (the init's only child left is the daemon).
    let init = child.id().expect("pid") as i32;
    poll_for("the command reaped", || {
        let kids = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
            .map_err(|e| e.to_string())?;
        match kids.split_whitespace().count() {
            1 => Ok(()),
            n => Err(format!("{n} children")),
        }
    })
    .await;
    deadline("kill", child.kill()).await.expect("kill");
    assert_eq!(child.end_reason(), Some(EndReason::Exited(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpu_and_file_size_limits() {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "while :; do :; done"])
        .namespaces(with_pidns())
        .rlimit(Resource::Cpu, 1, 30)
        .rlimit(Resource::Core, 0, 0);
    assert_eq!(reason_of(sb, "cpu").await, EndReason::CpuLimit);

    let dir = Scratch::new("fsize-reason");
    let file = std::fs::File::create(dir.path().join("out")).expect("create");
    let mut sb = Sandbox::new("head");
    sb.args(["-c", "65536", "/dev/zero"])
        .namespaces(with_pidns())
        .stdout(file)
        .rlimit(Resource::Fsize, 4096, 4096)
        .rlimit(Resource::Core, 0, 0);
    assert_eq!(reason_of(sb, "fsize").await, EndReason::FileSizeLimit);
}

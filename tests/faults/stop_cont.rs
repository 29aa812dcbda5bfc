//! Fault: SIGSTOP then SIGCONT of the command, sent through `Child::signal` and also directly
//! to the command's host pid (found by scanning /proc for its marker); and SIGSTOP then
//! SIGCONT of the init itself. The command is seen stopped (state `T` in the host's
//! /proc/PID/stat), is fed its input while stopped, and after SIGCONT finishes normally with
//! its own exit status: a stop is neither a death nor a lost status.
//!
//! The command is `sh -c 'read line; echo "got $line"; exit 33' MARKER`, so the marker is its
//! `$0` and in its own command line. With and without a pid namespace.
//!
//! The case "a command that ignores SIGTERM under a timeout is killed after the grace" is
//! already tests/spawn/timeout.rs `a_command_that_ignores_sigterm_is_killed_after_the_grace`
//! (status SIGKILL, `timed_out()`, nothing left); it is not repeated here.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nsbox::{Child, Namespaces, Sandbox, Stdio};
use tokio::io::AsyncWriteExt;

use crate::support::*;

async fn wait_state(pid: i32, want: &[char], what: &str) {
    poll_for(
        &format!("{what}: pid {pid} in state {want:?}"),
        || match state(pid) {
            Some(c) if want.contains(&c) => Ok(()),
            s => Err(format!("state {s:?}")),
        },
    )
    .await
}

const SCRIPT: &str = "read line; echo \"got $line\"; exit 33";

async fn start(ns: Namespaces, m: &str) -> (Child, i32) {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", SCRIPT, m])
        .namespaces(ns)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let child = sb.spawn().await.expect("spawn");
    let found = wait_for_marker(m, "start").await;
    assert_eq!(found.len(), 1, "{found:?}");
    (child, found[0].0)
}

#[derive(Clone, Copy, Debug)]
enum Via {
    /// `Child::signal`, which the init passes to the command.
    ChildSignal,
    /// kill(2) on the command's host pid.
    HostPid,
}

async fn stop_then_continue(shape: &str, ns: Namespaces, via: Via) {
    let what = format!("{shape}, via {via:?}");
    let m = marker();
    let (mut child, pid) = start(ns, &m).await;
    let send = |child: &Child, sig: Signal| match via {
        Via::ChildSignal => child.signal(sig as i32).expect("Child::signal"),
        Via::HostPid => kill(Pid::from_raw(pid), sig).expect("kill the command"),
    };
    // The shell waits in read: sleeping. Stop it.
    wait_state(pid, &['S'], &what).await;
    send(&child, Signal::SIGSTOP);
    wait_state(pid, &['T'], &what).await;
    // Its input arrives while it is stopped; it cannot act on it, and has not ended.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\n").await.expect("write stdin");
    drop(stdin);
    assert_eq!(
        state(pid),
        Some('T'),
        "{what}: left the stopped state by itself"
    );
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "{what}: a stop was taken for an end"
    );
    send(&child, Signal::SIGCONT);
    let mut out = child.stdout.take().unwrap();
    let text = read_to_end(&mut out, &what).await;
    assert_eq!(text, "got hello\n", "{what}");
    let st = deadline(&what, child.wait()).await.expect("wait");
    assert_eq!(st.code(), Some(33), "{what}: {st:?}");
    assert!(!child.timed_out());
    assert_no_marker_left(&m, &what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigstop_and_sigcont_through_child_signal_then_the_command_finishes_normally() {
    for (shape, ns) in both_shapes() {
        stop_then_continue(shape, ns, Via::ChildSignal).await;
    }
    stop_then_continue("all namespaces", all(), Via::ChildSignal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigstop_and_sigcont_to_the_commands_host_pid_then_it_finishes_normally() {
    for (shape, ns) in both_shapes() {
        stop_then_continue(shape, ns, Via::HostPid).await;
    }
    stop_then_continue("all namespaces", all(), Via::HostPid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_init_delivers_the_status_once_continued() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let (mut child, pid) = start(ns, &m).await;
        let init = Pid::from_raw(child.id().expect("the init runs") as i32);
        // SIGSTOP from the parent pid namespace reaches even a pid-1 init.
        kill(init, Signal::SIGSTOP).expect("stop the init");
        wait_state(init.as_raw(), &['T'], shape).await;
        // The command runs on and ends while its init is stopped.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"x\n").await.expect("write stdin");
        drop(stdin);
        // (Not to EOF: the stopped init holds a copy of the command's stdio until it exits.)
        let mut out = child.stdout.take().unwrap();
        assert_eq!(read_until(&mut out, "got x\n", shape).await, "got x\n");
        wait_state(pid, &['Z'], shape).await;
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "{shape}: a status before the stopped init reported it"
        );
        kill(init, Signal::SIGCONT).expect("continue the init");
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert_eq!(st.code(), Some(33), "{shape}: {st:?}");
        assert_no_marker_left(&m, shape).await;
    }
    assert_no_zombie_children("after the stopped inits").await;
}

//! Fault: something outside SIGKILLs a sandbox's init (`kill(Child::id(), SIGKILL)`).
//!
//! The command dies with it (its marker leaves the host's /proc), and `wait()` returns an
//! error that says the sandbox's init died, never a made-up exit status; `try_wait()` says
//! the same; a piped stdout reaches EOF. With and without a pid namespace (without one, the
//! command has PR_SET_PDEATHSIG=SIGKILL on its init).
//!
//! Limitation, documented and not asserted: without a pid namespace, a *grandchild* of the
//! command (a background job of a shell) is not the init's child and has no death signal, so
//! it can outlive an init killed from outside; only a pid namespace (or a cgroup) holds the
//! whole tree. With a pid namespace the kernel kills everything inside when the init dies,
//! which the second test shows.

use std::io;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nsbox::Sandbox;

use crate::support::*;

/// The error `wait()` must give: it names the init, says it died, and how.
fn assert_init_died(what: &str, r: io::Result<std::process::ExitStatus>) {
    let err = match r {
        Ok(st) => panic!("{what}: wait() made up a status {st:?} for a sandbox whose init died"),
        Err(e) => e,
    };
    let text = err.to_string();
    for w in ["wait", "sandbox's init", "died", "SIGKILL"] {
        assert!(text.contains(w), "{what}: error lacks {w:?}: {text}");
    }
    let inner = nsbox::Error::from_io(&err).unwrap_or_else(|| panic!("{what}: not an nsbox error"));
    assert_eq!(inner.step(), nsbox::Step::Wait, "{what}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_the_init_kills_the_command_and_wait_says_the_init_died() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let mut child = running_sleep(ns, &m, shape).await;
        kill(
            Pid::from_raw(child.id().expect("the init runs") as i32),
            Signal::SIGKILL,
        )
        .expect("kill the init");
        let r = deadline(shape, child.wait()).await;
        assert_init_died(shape, r);
        assert_no_marker_left(&m, shape).await;
        // Asked again, the answer is the same error, not a status.
        let again = child.try_wait();
        assert!(
            again
                .as_ref()
                .is_err_and(|e| e.to_string().contains("died")),
            "{shape}: try_wait after wait: {again:?}"
        );
        // Signalling a dead sandbox is a harmless no-op, and kill() does not invent a status.
        child
            .signal(libc::SIGTERM)
            .expect("signal after the init died");
    }
    assert_no_zombie_children("after killing inits").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn try_wait_alone_reports_the_dead_init_as_an_error() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let mut child = running_sleep(ns, &m, shape).await;
        kill(
            Pid::from_raw(child.id().expect("the init runs") as i32),
            Signal::SIGKILL,
        )
        .expect("kill the init");
        // Poll without ever calling wait(): Ok(None) while the init is dying, then the error.
        let r = deadline(shape, async {
            loop {
                match child.try_wait() {
                    Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                    other => return other,
                }
            }
        })
        .await;
        assert_init_died(shape, r.map(|st| st.expect("Some")));
        assert_no_marker_left(&m, shape).await;
    }
    assert_no_zombie_children("after killing inits").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_pid_namespace_the_whole_tree_dies_with_the_init_and_stdout_ends() {
    let shape = "pid namespace";
    let m = marker();
    let mut sb = Sandbox::new("sh");
    // A background job, a setsid daemon and the foreground sleep, all with the marker.
    sb.args([
        "-c",
        &format!("sleep 1000 {m} & setsid sleep 1000 {m} & echo ready; sleep 1000 {m}"),
    ])
    .namespaces(all());
    let (mut child, mut out) = spawn_until_ready(&mut sb, shape).await;
    wait_for_markers(&m, 3, "the three sleeps running").await;
    kill(
        Pid::from_raw(child.id().expect("the init runs") as i32),
        Signal::SIGKILL,
    )
    .expect("kill the init");
    // Every writer of the pipe is dead: EOF, not a hang.
    assert_eq!(read_to_end(&mut out, shape).await, "");
    let r = deadline(shape, child.wait()).await;
    assert_init_died(shape, r);
    assert_no_marker_left(&m, shape).await;
    assert_no_zombie_children("after killing the init").await;
}

//! Forwarded signals (INT TERM HUP QUIT USR1 USR2 WINCH CONT, and a sample of the others:
//! ALRM, ILL and SEGV sent with kill, a realtime signal) sent with `Child::signal` reach the
//! command, which traps them and says so on its piped stdout; the same signals sent to the
//! init's host pid (`Child::id`) are forwarded too. With and without a pid namespace.

use futures::future::join_all;
use nsbox::{FORWARDED, Namespaces, Sandbox, SignalSet};

use crate::support::*;

const SIGNALS: [(&str, i32); 12] = [
    ("INT", libc::SIGINT),
    ("TERM", libc::SIGTERM),
    ("HUP", libc::SIGHUP),
    ("QUIT", libc::SIGQUIT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("WINCH", libc::SIGWINCH),
    ("CONT", libc::SIGCONT),
    ("ALRM", libc::SIGALRM),
    ("ILL", libc::SIGILL),
    ("SEGV", libc::SIGSEGV),
    ("40", 40),
];

#[derive(Clone, Copy, Debug)]
enum Via {
    /// `Child::signal`.
    Api,
    /// kill(2) of the init's host pid: the init forwards it.
    InitPid,
}

async fn one(ns: Namespaces, shape: &str, name: &str, num: i32, code: i32, via: Via) {
    let what = format!("{shape}, SIG{name} via {via:?}");
    // The trap prints and exits with a code of its own; the loop keeps the shell able to run
    // traps promptly (a foreground `sleep` delays them until it ends).
    let script = format!(
        "trap 'echo got {name}; exit {code}' {name}; echo ready; while :; do sleep 0.05; done"
    );
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", &script]).namespaces(ns);
    let (mut child, mut out) = spawn_until_ready(&mut sb, &what).await;
    match via {
        Via::Api => child.signal(num).expect("Child::signal"),
        // SAFETY: plain kill(2) (nix cannot name realtime signals).
        Via::InitPid => assert_eq!(
            unsafe { libc::kill(child.id().expect("the init runs") as i32, num) },
            0,
            "kill the init"
        ),
    }
    let text = read_until(&mut out, &format!("got {name}\n"), &what).await;
    assert!(
        !text.contains("got ") || text.ends_with(&format!("got {name}\n")),
        "{what}: {text:?}"
    );
    let st = deadline(&what, child.wait()).await.expect("wait");
    assert_eq!(st.code(), Some(code), "{what}: {st:?}");
}

#[test]
fn the_forwarded_set_is_every_signal_but_those_that_cannot_be() {
    let not: SignalSet = [libc::SIGCHLD, libc::SIGKILL, libc::SIGSTOP, 32, 33]
        .into_iter()
        .collect();
    let want: Vec<i32> = (1..=64).filter(|s| !not.contains(*s)).collect();
    assert_eq!(FORWARDED.iter().collect::<Vec<_>>(), want);
    for (name, n) in SIGNALS {
        assert!(nsbox::is_forwarded(n), "SIG{name} is not forwarded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_forwarded_signal_reaches_the_command_through_child_signal() {
    let mut runs = Vec::new();
    for (shape, ns) in both_shapes() {
        for (i, (name, num)) in SIGNALS.iter().enumerate() {
            runs.push(one(ns.clone(), shape, name, *num, 40 + i as i32, Via::Api));
        }
    }
    join_all(runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_forwarded_signal_sent_to_the_init_is_forwarded_to_the_command() {
    let mut runs = Vec::new();
    for (shape, ns) in both_shapes() {
        for (i, (name, num)) in SIGNALS.iter().enumerate() {
            runs.push(one(
                ns.clone(),
                shape,
                name,
                *num,
                60 + i as i32,
                Via::InitPid,
            ));
        }
    }
    join_all(runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_untrapped_signal_kills_the_command_and_the_status_says_so() {
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", "echo ready; while :; do sleep 0.05; done"])
            .namespaces(ns);
        let (mut child, _out) = spawn_until_ready(&mut sb, shape).await;
        child.signal(libc::SIGUSR2).unwrap();
        let st = deadline(shape, child.wait()).await.unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGUSR2), "{shape}: {st:?}");
        // Once the sandbox is gone, signalling is a harmless no-op.
        child.signal(libc::SIGTERM).expect("signal after the end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signal_number_out_of_range_is_refused() {
    let mut sb = Sandbox::new("sleep");
    let m = marker();
    sb.args(["1000", &m]).namespaces(with_pidns());
    let mut child = sb.spawn().await.expect("spawn");
    for bad in [0, -1, 65, 1000] {
        let e = child.signal(bad).expect_err("bad signal number accepted");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}: {e}");
    }
    deadline("kill", child.kill()).await.expect("kill");
    assert_no_marker_left(&m, "after kill").await;
}

//! The exit-status matrix through the API: every exit code 0..=255 and deaths by TERM, INT,
//! KILL, USR1 and SEGV come back from `Child::wait` exactly as the bare program gives them
//! (same code, same signal, same core flag), with and without a pid namespace.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use futures::future::join_all;
use nsbox::{Namespaces, Sandbox, Stdio};

use crate::support::*;

fn shapes() -> Vec<(&'static str, Namespaces)> {
    let mut v = shapes_and_none();
    v.push(("every namespace", all()));
    v
}

async fn status_of(ns: &Namespaces, script: &str, dir: Option<&std::path::Path>) -> ExitStatus {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", script]).namespaces(ns.clone());
    if let Some(d) = dir {
        sb.current_dir(d);
        if ns.kinds().contains(nsbox::Namespace::Mount) {
            // The core is written there.
            sb.filesystem(writable(&[d]));
        }
    }
    let mut child = sb.spawn().await.expect("spawn");
    let st = deadline(script, child.wait()).await.expect("wait");
    assert!(!child.timed_out(), "{script}: timed_out without a timeout");
    assert!(
        child.resource_usage().is_some(),
        "{script}: no resource usage after wait"
    );
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_exit_code_comes_back_exactly() {
    for (name, ns) in shapes() {
        let results = join_all((0..=255).map(|code| {
            let ns = ns.clone();
            async move { (code, status_of(&ns, &format!("exit {code}"), None).await) }
        }))
        .await;
        for (code, st) in results {
            assert_eq!(
                st.code(),
                Some(code),
                "{name}: exit {code} came back as {st:?}"
            );
            assert_eq!(st.signal(), None, "{name}: exit {code} came back as {st:?}");
            assert_eq!(st.success(), code == 0, "{name}: {st:?}");
        }
    }
}

/// `sh -c 'kill -SIG $$'` with core dumps allowed (core_pattern may write one into the
/// working directory, `dir`), so that the core flag is whatever this machine gives.
fn kill_self(sig: &str) -> String {
    format!("ulimit -c unlimited 2>/dev/null; kill -{sig} $$; exit 99")
}

/// The status of [`kill_self`] run bare, outside any sandbox, in `dir`.
fn bare(sig: &str, dir: &std::path::Path) -> ExitStatus {
    std::process::Command::new("sh")
        .args(["-c", &kill_self(sig)])
        .current_dir(dir)
        .status()
        .expect("run the bare program")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signal_deaths_come_back_with_the_same_signal_and_core_flag() {
    let scratch = Scratch::new("signals");
    for (sig, num) in [
        ("TERM", libc::SIGTERM),
        ("INT", libc::SIGINT),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
    ] {
        let bare = bare(sig, scratch.path());
        assert_eq!(bare.signal(), Some(num), "bare SIG{sig}: {bare:?}");
        for (name, ns) in shapes() {
            let got = status_of(&ns, &kill_self(sig), Some(scratch.path())).await;
            assert_eq!(
                got.signal(),
                Some(num),
                "{name}: SIG{sig} came back as {got:?}"
            );
            assert_eq!(got.code(), None, "{name}: SIG{sig}: {got:?}");
            assert_eq!(
                got.core_dumped(),
                bare.core_dumped(),
                "{name}: core flag for SIG{sig}: sandbox {got:?}, bare {bare:?}"
            );
        }
    }
}

/// The test above compares the core flag with the bare program's; this one makes sure a set
/// flag is among what it compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_segv_death_with_a_core_dump_comes_back_with_the_core_flag() {
    let scratch = Scratch::new("core");
    if !bare("SEGV", scratch.path()).core_dumped() {
        skip(
            "a_segv_death_with_a_core_dump_comes_back_with_the_core_flag",
            "the bare program gets no core flag for SIGSEGV here (core_pattern, RLIMIT_CORE)",
        );
        return;
    }
    for (name, ns) in shapes() {
        let got = status_of(&ns, &kill_self("SEGV"), Some(scratch.path())).await;
        assert_eq!(got.signal(), Some(libc::SIGSEGV), "{name}: {got:?}");
        assert!(got.core_dumped(), "{name}: no core flag: {got:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_and_output_conveniences_agree_with_wait() {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo out; echo err >&2; exit 3"])
        .namespaces(all().hostname("status-test"));
    let st = deadline("status()", sb.status()).await.expect("status");
    assert_eq!(st.code(), Some(3));
    let out = deadline("output()", sb.output()).await.expect("output");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    // A piped stdout read through Child::stdout and wait() on the same child.
    let mut sb = Sandbox::new("hostname");
    sb.namespaces(all().hostname("status-test"))
        .stdout(Stdio::piped());
    let mut child = sb.spawn().await.expect("spawn");
    let mut out = child.stdout.take().expect("piped stdout");
    let text = read_to_end(&mut out, "hostname").await;
    assert_eq!(text, "status-test\n");
    assert!(deadline("wait", child.wait()).await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_pid_is_given_while_it_runs_and_none_once_it_is_reaped() {
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("true");
        sb.namespaces(&ns);
        let mut child = sb.spawn().await.expect("spawn");
        let pid = child.id().expect("a running sandbox has an init pid");
        assert!(pid > 1, "{shape}: {pid}");
        assert!(child.pidfd().is_some(), "{shape}");
        deadline(shape, child.wait()).await.expect("wait");
        // Reaped: the pid may belong to another process by now (tokio's Child does the same).
        assert_eq!(child.id(), None, "{shape}");
        assert!(child.pidfd().is_none(), "{shape}");
    }
}

//! Smoke: the basic promises in one go. A command in every namespace sees its own hostname,
//! is pid 2 under the init and root of its user namespace, and sees only its sandbox's pids;
//! its exit code and a signal death come back; a missing program and a bad namespace file
//! are spawn errors naming them; a sandbox without namespaces runs.

use std::os::unix::process::ExitStatusExt;

use nsbox::{Namespace, Namespaces, Sandbox, Stdio};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandbox_runs_a_command_and_reports_its_status_and_errors() {
    let mut sb = Sandbox::new("sh");
    // The glob is expanded by sh itself: no other process exists when it runs.
    sb.args([
        "-c",
        "echo host=$(hostname) pid=$$ uid=$(id -u); echo /proc/[0-9]*; exit 7",
    ])
    .namespaces(all().hostname("build"))
    .stdout(Stdio::piped());
    let out = deadline("smoke", sb.output()).await.expect("output");
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "host=build pid=2 uid=0\n/proc/1 /proc/2\n"
    );

    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "kill -SEGV $$"]).namespaces(all());
    let st = deadline("SEGV", sb.status()).await.expect("status");
    assert_eq!(st.signal(), Some(libc::SIGSEGV), "{st:?}");

    let err = deadline(
        "missing program",
        Sandbox::new("/no/such/file").namespaces(all()).spawn(),
    )
    .await
    .expect_err("a missing program fails the spawn");
    assert!(err.to_string().contains("exec /no/such/file"), "{err}");

    let err = deadline(
        "join /etc/passwd",
        Sandbox::new("true")
            .namespaces(Namespaces::new().join_path(Some(Namespace::Net), "/etc/passwd"))
            .spawn(),
    )
    .await
    .expect_err("joining a regular file fails the spawn");
    assert!(err.to_string().contains("/etc/passwd"), "{err}");

    let st = deadline("no namespaces", Sandbox::new("true").status())
        .await
        .expect("status");
    assert!(st.success(), "{st:?}");
}

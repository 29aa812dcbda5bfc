//! Die-with-parent watches the orchestrator process, not the spawning thread: this test
//! re-executed as a child process (the orchestrator) spawns sandboxes from a thread that then
//! exits and from its main runtime; they outlive that thread, and once the child is SIGKILLed
//! none of their processes is left.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use nsbox::Sandbox;

use crate::support::*;

/// The markers come in the environment so that only the sleeps carry them in their command
/// lines, not the child and the sandboxes' inits, which are clones of it.
const THREAD_MARKER: &str = "NSBOX_TEST_THREAD_MARKER";
const MAIN_MARKER: &str = "NSBOX_TEST_MAIN_MARKER";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilling_the_orchestrator_kills_every_sandbox_also_from_an_exited_thread() {
    let name = test_name(
        module_path!(),
        "sigkilling_the_orchestrator_kills_every_sandbox_also_from_an_exited_thread",
    );
    if is_child(&name) {
        return orchestrator().await;
    }
    let (thread_m, main_m) = (marker(), marker());
    let mut cmd = reexec(&name, &[]);
    cmd.env(THREAD_MARKER, &thread_m)
        .env(MAIN_MARKER, &main_m)
        .stdout(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().expect("start the orchestrator"));
    let stdout = child.0.stdout.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || Lines::new(stdout).expect_end("ready"));
    deadline("the orchestrator's ready line", ready)
        .await
        .expect("the orchestrator said ready");
    // Both sandboxes of the exited thread are still running (with and without a pid
    // namespace), and so are the main runtime's.
    let from_thread = pids_with_marker(&thread_m);
    let from_main = pids_with_marker(&main_m);
    assert_eq!(
        from_thread.len(),
        2,
        "the spawning thread's exit killed: {from_thread:?}"
    );
    assert_eq!(from_main.len(), 2, "{from_main:?}");

    child.0.kill().expect("SIGKILL the orchestrator");
    let st = child.0.wait().expect("reap the orchestrator");
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert_no_marker_left(&thread_m, "sandboxes spawned by the exited thread").await;
    assert_no_marker_left(&main_m, "sandboxes spawned by the main runtime").await;
}

/// The child's part: spawn `sleep 1000 MARKER` sandboxes (with and without a pid namespace)
/// from a thread that exits afterwards (its own current-thread runtime; PR_SET_PDEATHSIG
/// would fire there) and from this runtime, say `ready`, and wait to be SIGKILLed.
async fn orchestrator() {
    let thread_m = std::env::var(THREAD_MARKER).expect("the thread's marker");
    let main_m = std::env::var(MAIN_MARKER).expect("the main runtime's marker");
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("thread runtime")
            .block_on(spawn_sleeps(&thread_m));
    })
    .join()
    .expect("spawning thread");
    // From the main runtime, on one of its worker threads.
    tokio::spawn(async move { spawn_sleeps(&main_m).await })
        .await
        .expect("task");
    println!("ready");
    std::io::stdout().flush().expect("flush");
    std::future::pending::<()>().await;
}

async fn spawn_sleeps(marker: &str) {
    for (_, ns) in both_shapes() {
        let mut sb = Sandbox::new("sleep");
        sb.args(["1000", marker]).namespaces(ns);
        let child = sb.spawn().await.expect("spawn");
        // Neither drop (which kills) nor wait: the sandbox must live on, held only by the
        // orchestrator's process, until that process dies.
        std::mem::forget(child);
    }
}

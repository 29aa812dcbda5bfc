//! Die-with-parent watches the orchestrator process, not the spawning thread: a helper
//! process (examples/die_with_parent_helper.rs) spawns sandboxes from a thread that then
//! exits and from its main runtime; they outlive that thread, and once the helper is
//! SIGKILLed none of their processes is left.

mod common_sandbox;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common_sandbox::*;

fn helper_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join("examples").join("die_with_parent_helper");
    assert!(
        path.is_file(),
        "{} not found: build it with `cargo test` (which builds examples) or \
         `cargo build --example die_with_parent_helper`",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilling_the_orchestrator_kills_every_sandbox_also_from_an_exited_thread() {
    let (thread_m, main_m) = (marker(), marker());
    let mut helper = Command::new(helper_path())
        .env("THREAD_MARKER", &thread_m)
        .env("MAIN_MARKER", &main_m)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the helper");
    let pid = nix::unistd::Pid::from_raw(helper.id() as i32);
    let stdout = helper.stdout.take().unwrap();
    let line = deadline(
        "the helper's ready line",
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        }),
    )
    .await
    .expect("reader task");
    let line = match line {
        Ok(l) => l,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("reading the helper: {e}");
        }
    };
    if line != "ready\n" {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let st = helper.wait();
        panic!("the helper said {line:?} and ended: {st:?}");
    }
    // Both sandboxes of the exited thread are still running (with and without a pid
    // namespace), and so are the main runtime's.
    let from_thread = pids_with_marker(&thread_m);
    let from_main = pids_with_marker(&main_m);
    let both_ok = from_thread.len() == 2 && from_main.len() == 2;
    if !both_ok {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = helper.wait();
    }
    assert_eq!(
        from_thread.len(),
        2,
        "the spawning thread's exit killed: {from_thread:?}"
    );
    assert_eq!(from_main.len(), 2, "{from_main:?}");

    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("SIGKILL the helper");
    let st = helper.wait().expect("reap the helper");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    assert_no_marker_left(&thread_m, "sandboxes spawned by the exited thread").await;
    assert_no_marker_left(&main_m, "sandboxes spawned by the main runtime").await;
}

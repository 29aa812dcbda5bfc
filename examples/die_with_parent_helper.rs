//! Test helper for `tests/sandbox_die_with_parent.rs` (not a user-facing example).
//!
//! ```text
//! THREAD_MARKER=.. MAIN_MARKER=.. die_with_parent_helper
//! ```
//!
//! (The markers come in the environment so that only the sleeps carry them in their command
//! lines, not the helper and the sandboxes' inits, which are clones of it.)
//!
//! Starts a multi-thread runtime, spawns sandboxes running `sleep 1000 MARKER` (with and
//! without a pid namespace) from a thread that then exits (its own current-thread runtime,
//! the thread joined) and from the main runtime, prints `ready`, and waits forever. The test
//! SIGKILLs it and checks that no sandbox survives.

use std::io::Write;

use nsbox::{Namespaces, Sandbox};

fn shapes() -> [Namespaces; 2] {
    [
        Namespaces::new().user(true).mount(true).pid(true).clone(),
        Namespaces::new().user(true).mount(true).clone(),
    ]
}

async fn spawn_sleeps(marker: &str) {
    for ns in shapes() {
        let mut sb = Sandbox::new("sleep");
        sb.args(["1000", marker]).namespaces(ns);
        let child = sb.spawn().await.expect("spawn");
        // Neither drop (which kills) nor wait: the sandbox must live on, held only by the
        // orchestrator's process, until that process dies.
        std::mem::forget(child);
    }
}

fn main() {
    let (Ok(thread_marker), Ok(main_marker)) =
        (std::env::var("THREAD_MARKER"), std::env::var("MAIN_MARKER"))
    else {
        eprintln!("usage: THREAD_MARKER=.. MAIN_MARKER=.. die_with_parent_helper");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // From a thread that exits afterwards (PR_SET_PDEATHSIG would fire here).
    let m = thread_marker.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("thread runtime");
        rt.block_on(spawn_sleeps(&m));
    })
    .join()
    .expect("spawning thread");
    rt.block_on(async {
        // From the main runtime, on one of its worker threads.
        let m = main_marker.clone();
        tokio::spawn(async move { spawn_sleeps(&m).await })
            .await
            .expect("task");
        println!("ready");
        std::io::stdout().flush().expect("flush");
        std::future::pending::<()>().await;
    });
}

//! A sandbox's init does not keep the orchestrator's working directory busy: once the command
//! runs, the init has moved to `/` (the command keeps the directory it was given). Read from
//! the init's `/proc/PID/cwd`, which only root may read (the init is not dumpable).

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_moves_to_the_root_once_the_command_runs() {
    let name = test_name(
        module_path!(),
        "the_init_moves_to_the_root_once_the_command_runs",
    );
    if !is_root() {
        skip(
            &name,
            "the init is not dumpable: only root can read its working directory",
        );
        return;
    }
    let scratch = Scratch::new("cwd");
    for (shape, ns) in shapes_and_none() {
        let m = marker();
        let mut sb = nsbox::Sandbox::new("sleep");
        sb.args(["1000", &m])
            .namespaces(ns)
            // The scratch directory is under /tmp, which the default view replaces.
            .filesystem(nsbox::Filesystem::host())
            .current_dir(scratch.path());
        let mut child = deadline(shape, sb.spawn()).await.expect("spawn");
        let (command, _) = wait_for_marker(&m, shape).await[0].clone();
        let init = child.id().expect("the init runs");
        assert_eq!(
            link(format!("/proc/{init}/cwd")),
            "/",
            "{shape}: the init's cwd"
        );
        assert_eq!(
            link(format!("/proc/{command}/cwd")),
            scratch.path().display().to_string(),
            "{shape}: the command's cwd"
        );
        deadline(shape, child.kill()).await.expect("kill");
        assert_no_marker_left(&m, shape).await;
    }
}

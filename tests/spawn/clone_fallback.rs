//! The clone(2) + pidfd_open(2) path, used where clone3 is missing (ENOSYS), gives the same
//! results as clone3. The switch is process-wide, so the test runs alone in a child process of
//! this binary (`support::run_alone`), where it throws the switch.

use std::os::unix::process::ExitStatusExt;

use nsbox::{Sandbox, Stdio};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_made_with_the_clone_fallback_report_exact_statuses() {
    if ran_alone(
        module_path!(),
        "sandboxes_made_with_the_clone_fallback_report_exact_statuses",
    )
    .await
    {
        return;
    }
    nsbox::force_clone3_fallback();
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo $$ $(hostname); exit 9"])
        .namespaces(all().hostname("fallback"))
        .stdout(Stdio::piped());
    let out = deadline("exit 9", sb.output())
        .await
        .expect("spawn with the fallback");
    assert_eq!(out.status.code(), Some(9));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 fallback\n");

    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "kill -USR1 $$"]).namespaces(all());
    let status = deadline("SIGUSR1", sb.status())
        .await
        .expect("spawn with the fallback");
    assert_eq!(status.signal(), Some(libc::SIGUSR1));

    let err = deadline(
        "missing program",
        Sandbox::new("/no/such/program").namespaces(all()).spawn(),
    )
    .await
    .expect_err("a missing program fails the spawn");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("exec /no/such/program"), "{err}");
}

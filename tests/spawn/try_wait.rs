//! `try_wait` after a cancelled `wait` (regression, found in review): tokio's cached readiness
//! of the report pipe, left cleared by the cancelled wait, made try_wait miss the `Exited`
//! report and call the init dead. It must give the command's status.

use std::time::Duration;

use nsbox::{Sandbox, Stdio};

use crate::support::*;

#[tokio::test(flavor = "current_thread")]
async fn try_wait_after_a_cancelled_wait_gives_the_status() {
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("sh");
        // The command ends only when its stdin is closed: after the cancelled wait.
        sb.args(["-c", "read x; exit 3"])
            .namespaces(ns)
            .stdin(Stdio::piped());
        let mut child = sb.spawn().await.expect("spawn");
        let stdin = child.stdin.take().unwrap();
        // A wait cancelled while the command still runs (it cannot end before stdin closes).
        let r = tokio::time::timeout(Duration::from_millis(10), child.wait()).await;
        assert!(
            r.is_err(),
            "{shape}: the command ended with its stdin open: {r:?}"
        );
        drop(stdin);
        // Poll with try_wait only, never yielding to the runtime, so nothing refreshes the
        // readiness tokio cached for the report pipe.
        let status = wait_for(&format!("{shape}: the sandbox ending"), || {
            match child.try_wait() {
                Ok(Some(st)) => Ok(st),
                Ok(None) => Err("try_wait says it runs".to_string()),
                Err(e) => panic!("{shape}: try_wait failed: {e}"),
            }
        });
        assert_eq!(status.code(), Some(3), "{shape}: {status:?}");
        // And it stays so.
        let again = child.try_wait().expect("try_wait again").expect("a status");
        assert_eq!(again.code(), Some(3), "{shape}");
    }
}

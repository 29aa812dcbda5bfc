//! `try_wait` after a cancelled `wait` (regression, found in review): tokio's cached readiness
//! of the report pipe, left cleared by the cancelled wait, made try_wait miss the `Exited`
//! report and call the init dead. It must give the command's status.

mod common_sandbox;

use std::time::{Duration, Instant};

use common_sandbox::*;
use nsbox::Sandbox;

#[tokio::test(flavor = "current_thread")]
async fn try_wait_after_a_cancelled_wait_gives_the_status() {
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", "sleep 0.2; exit 3"]).namespaces(ns);
        let mut child = sb.spawn().await.expect("spawn");
        // A wait cancelled while the command still runs.
        let r = tokio::time::timeout(Duration::from_millis(10), child.wait()).await;
        assert!(r.is_err(), "{shape}: the command ended within 10 ms: {r:?}");
        // Poll with try_wait only, never yielding to the runtime, so nothing refreshes the
        // readiness tokio cached for the report pipe.
        let until = Instant::now() + DEADLINE;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {
                    assert!(Instant::now() < until, "{shape}: the sandbox never ended");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("{shape}: try_wait failed: {e}"),
            }
        };
        assert_eq!(status.code(), Some(3), "{shape}: {status:?}");
        // And it stays so.
        let again = child.try_wait().expect("try_wait again").expect("a status");
        assert_eq!(again.code(), Some(3), "{shape}");
    }
}

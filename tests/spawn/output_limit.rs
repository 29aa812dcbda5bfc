//! output() and wait_with_output() keep at most output_limit bytes of each stream (64 MiB by
//! default): a command that writes more runs to its end with its own status (the rest is read
//! and dropped, so it never blocks on a full pipe) and the Output says which stream went over.

use nsbox::{Sandbox, Stdio};

use crate::support::*;

/// `sh -c` writing `n` zero bytes to stdout, then `err` to stderr, then exiting 4.
fn writer(n: usize) -> Sandbox {
    let mut sb = Sandbox::new("sh");
    sb.args([
        "-c",
        &format!("head -c {n} /dev/zero; echo err >&2; exit 4"),
    ])
    .namespaces(with_pidns());
    sb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_over_the_limit_keeps_its_first_bytes_and_says_so() {
    let out = deadline(
        "1 MB with a 1000-byte limit",
        writer(1_000_000).output_limit(1000).output(),
    )
    .await
    .expect("output");
    assert_eq!(out.status.code(), Some(4), "the command ran to its end");
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.stdout_truncated);
    assert_eq!(out.stderr, b"err\n");
    assert!(!out.stderr_truncated);

    // Exactly the limit is not over it.
    let out = deadline(
        "1000 bytes with a 1000-byte limit",
        writer(1000).output_limit(1000).output(),
    )
    .await
    .expect("output");
    assert_eq!((out.stdout.len(), out.stdout_truncated), (1000, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_with_output_keeps_the_limit_too() {
    let mut sb = writer(5000);
    sb.output_limit(10)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = deadline("spawn", sb.spawn()).await.expect("spawn");
    let out = deadline("wait_with_output", child.wait_with_output())
        .await
        .expect("wait_with_output");
    assert_eq!(out.status.code(), Some(4));
    assert_eq!((out.stdout.len(), out.stdout_truncated), (10, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_limit_is_64_mib_per_stream() {
    assert_eq!(Sandbox::DEFAULT_OUTPUT_LIMIT, 64 << 20);
    let out = deadline("64 MiB and a byte", writer((64 << 20) + 1).output())
        .await
        .expect("output");
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(out.stdout.len(), 64 << 20);
    assert!(out.stdout_truncated);
}

//! An fd number at or above the fd limit (RLIMIT_NOFILE) cannot be made in the sandbox: the
//! spawn fails with an error that names the fd and says that the fd limit was hit, instead of
//! a bare `arrange file descriptors: Bad file descriptor (EBADF)`; nothing is left running.

use nsbox::{Sandbox, Step};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_fd_at_the_fd_limit_is_reported_as_the_fd_limit() {
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    let Ok(target) = i32::try_from(soft) else {
        skip(
            "a_target_fd_at_the_fd_limit_is_reported_as_the_fd_limit",
            "the fd limit is above any fd number",
        );
        return;
    };
    for (what, ns) in shapes_and_none() {
        let m = marker();
        let null = std::fs::File::open("/dev/null").expect("open /dev/null");
        let mut sb = Sandbox::new("sleep");
        sb.args(["1000", &m]).namespaces(ns).pass_fd(target, null);
        let err = deadline(what, sb.spawn())
            .await
            .expect_err("an fd at the limit cannot be made");
        let e = nsbox::Error::from_io(&err).expect("an nsbox error");
        assert_eq!(
            (e.step(), e.errno()),
            (Step::Fds, Some(libc::EBADF)),
            "{what}: {err}"
        );
        let text = err.to_string();
        // The fd named is the target or one of the init's own, which go above it.
        let named: Option<i32> = text
            .split_once("(fd ")
            .and_then(|(_, rest)| rest.split_once(')'))
            .and_then(|(n, _)| n.parse().ok());
        assert!(named.is_some_and(|n| n >= target), "{what}: {text}");
        assert!(text.contains("RLIMIT_NOFILE"), "{what}: {text}");
        assert_no_marker_left(&m, what).await;
    }
}

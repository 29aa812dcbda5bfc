//! A sandboxed command inherits no fd it was not given.

use nsbox::{Sandbox, Stdio};
use tokio::io::AsyncWriteExt;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_inherits_no_fd_it_was_not_given() {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let scratch = Scratch::new("fds");
    let leak = scratch.path().join("leak-probe");
    let given = scratch.path().join("given");
    std::fs::write(&leak, "").unwrap();
    std::fs::write(&given, "").unwrap();
    // Without O_CLOEXEC: an exec in this process would hand them on.
    let leak_fd = open(&leak, OFlag::O_RDONLY, Mode::empty()).expect("open without O_CLOEXEC");
    let (leak_r, leak_w) = nix::unistd::pipe().expect("pipe without O_CLOEXEC");
    for (shape, ns) in both_shapes() {
        let m = marker();
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", "echo ready; read x", &m])
            .namespaces(ns)
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .pass_fd(7, std::fs::File::open(&given).unwrap());
        let (mut child, _out) = spawn_until_ready(&mut sb, shape).await;
        let found = pids_with_marker(&m);
        assert_eq!(found.len(), 1, "{shape}: {found:?}");
        let pid = found[0].0;
        let fds: Vec<(i32, String)> = fds(Some(pid))
            .expect("list the command's fds")
            .into_iter()
            .collect();
        let numbers: Vec<i32> = fds.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [0, 1, 2, 7], "{shape}: {fds:?}");
        assert_eq!(fds[3].1, given.display().to_string(), "{shape}: {fds:?}");
        let leaked = leak.display().to_string();
        assert!(
            !fds.iter().any(|(_, t)| *t == leaked),
            "{shape}: the leak probe is inside: {fds:?}"
        );
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"done\n").await.unwrap();
        drop(stdin);
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert!(st.success(), "{shape}: {st:?}");
    }
    drop((leak_fd, leak_r, leak_w));
}

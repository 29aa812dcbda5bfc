//! fd hygiene: a sandboxed command gets its three standard streams and the fds given with
//! `Sandbox::pass_fd` (at their target numbers), nothing else, even when the orchestrator
//! holds fds opened without O_CLOEXEC; and the sandbox's init holds none of them either.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::stat::Mode;
use nsbox::{Sandbox, Stdio};

use crate::support::*;

/// An fd of this process without close-on-exec, on a file only this test knows.
fn leaky_file(name: &str) -> (OwnedFd, std::path::PathBuf) {
    let path = temp_path(name);
    std::fs::write(&path, "leaked\n").unwrap();
    let fd = nix::fcntl::open(&path, OFlag::O_RDONLY, Mode::empty()).expect("open");
    let flags = FdFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFD).unwrap());
    assert!(
        !flags.contains(FdFlag::FD_CLOEXEC),
        "the leaky fd must not be close-on-exec"
    );
    (fd, path)
}

/// `ls -l /proc/self/fd` in the sandbox: fd number -> link target, without the fd ls opens
/// to list the directory.
async fn fds_seen_inside(mut sb: Sandbox, what: &str) -> BTreeMap<i32, String> {
    sb.args(["-l", "/proc/self/fd"]).stdout(Stdio::piped());
    let mut child = sb.spawn().await.expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let text = read_to_end(&mut out, what).await;
    let st = deadline(what, child.wait()).await.expect("wait");
    assert!(st.success(), "{what}: ls failed: {st:?}: {text}");
    let mut fds = BTreeMap::new();
    for line in text.lines() {
        let Some((left, target)) = line.split_once(" -> ") else {
            continue;
        };
        let Some(fd) = left.split_whitespace().last().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // ls's own directory fd: /proc/<its pid>/fd.
        if target.starts_with("/proc/") && target.ends_with("/fd") {
            continue;
        }
        fds.insert(fd, target.to_string());
    }
    fds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandbox_sees_only_its_standard_streams() {
    let (leak, leak_path) = leaky_file("leak");
    let (pipe_r, pipe_w) = nix::unistd::pipe().expect("pipe without O_CLOEXEC");
    for (shape, ns) in shapes_and_none() {
        let mut sb = Sandbox::new("ls");
        sb.namespaces(ns);
        let fds = fds_seen_inside(sb, shape).await;
        assert_eq!(
            fds.keys().copied().collect::<Vec<_>>(),
            vec![0, 1, 2],
            "{shape}: leaked fds: {fds:?} (the orchestrator holds {} -> {})",
            leak.as_raw_fd(),
            leak_path.display()
        );
    }
    drop((pipe_r, pipe_w));
    let _ = std::fs::remove_file(leak_path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passed_fds_arrive_at_their_target_numbers_and_nothing_else() {
    let (leak, leak_path) = leaky_file("leak2");
    for (shape, ns) in shapes_and_none() {
        let given = temp_path("given");
        std::fs::write(&given, "given content\n").unwrap();
        let f = std::fs::File::open(&given).unwrap();
        let (_r, w) = nix::unistd::pipe().unwrap();
        // Targets that collide with the orchestrator's own fd numbers, and a high one.
        let target_a = leak.as_raw_fd();
        let target_b = 40;
        let mut sb = Sandbox::new("ls");
        sb.namespaces(ns.clone())
            .pass_fd(target_a, f)
            .pass_fd(target_b, w);
        let fds = fds_seen_inside(sb, shape).await;
        assert_eq!(
            fds.keys().copied().collect::<Vec<_>>(),
            {
                let mut v = vec![0, 1, 2, target_a, target_b];
                v.sort();
                v
            },
            "{shape}: {fds:?}"
        );
        assert_eq!(
            fds[&target_a],
            given.display().to_string(),
            "{shape}: fd {target_a} is not the given file: {fds:?}"
        );
        assert!(fds[&target_b].starts_with("pipe:"), "{shape}: {fds:?}");
        // And the passed fd works: read the file through it.
        let f = std::fs::File::open(&given).unwrap();
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &format!("cat /dev/fd/{target_a}")])
            .namespaces(ns)
            .pass_fd(target_a, f);
        let out = deadline(shape, sb.output()).await.expect("output");
        assert_eq!(out.stdout, b"given content\n", "{shape}: {out:?}");
        let _ = std::fs::remove_file(&given);
    }
    let _ = std::fs::remove_file(leak_path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_given_as_stdin_stdout_stderr_is_used() {
    let input = temp_path("stdin");
    std::fs::write(&input, "from a file\n").unwrap();
    let output = temp_path("stdout");
    for (shape, ns) in shapes_and_none() {
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", "cat; echo to-stderr >&2"])
            .namespaces(ns)
            .stdin(std::fs::File::open(&input).unwrap())
            .stdout(std::fs::File::create(&output).unwrap())
            .stderr(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&output)
                    .unwrap(),
            );
        let st = deadline(shape, sb.status()).await.expect("status");
        assert!(st.success(), "{shape}: {st:?}");
        let got = std::fs::read_to_string(&output).unwrap();
        assert!(
            got.contains("from a file\n") && got.contains("to-stderr\n"),
            "{shape}: {got:?}"
        );
    }
    let _ = std::fs::remove_file(input);
    let _ = std::fs::remove_file(output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_init_holds_none_of_the_orchestrators_fds() {
    let (leak, leak_path) = leaky_file("leak3");
    for (i, (shape, ns)) in shapes_and_none().into_iter().enumerate() {
        let m = marker();
        let mut sb = Sandbox::new("sleep");
        sb.args(["1000", &m]).namespaces(ns);
        let mut child = sb.spawn().await.expect("spawn");
        let held = fds(Some(child.id().expect("the init runs") as i32));
        if let (0, Err(e)) = (i, &held) {
            deadline(shape, child.kill()).await.expect("kill");
            skip(
                "the_init_holds_none_of_the_orchestrators_fds",
                &format!("the init's /proc/PID/fd is not readable here ({e}; it is not dumpable)"),
            );
            return;
        }
        let held = held.unwrap_or_else(|e| panic!("{shape}: the init's fds: {e}"));
        assert!(
            !held.values().any(|t| *t == leak_path.display().to_string()),
            "{shape}: the init holds the orchestrator's fd {}: {held:?}",
            leak.as_raw_fd()
        );
        // Beyond the command's standard streams: the report and control pipes, the signalfd
        // and, without a pid namespace, its own list of children; nothing of the
        // orchestrator's.
        let own: Vec<&String> = held.range(3..).map(|(_, t)| t).collect();
        let is_own = |t: &&String| {
            t.starts_with("pipe:")
                || t.contains("signalfd")
                || (t.starts_with("/proc/") && t.ends_with("/children"))
        };
        assert!(
            own.len() <= 4 && own.iter().all(is_own),
            "{shape}: the init holds {held:?}"
        );
        deadline(shape, child.kill()).await.expect("kill");
        assert_no_marker_left(&m, shape).await;
    }
    let _ = std::fs::remove_file(leak_path);
}

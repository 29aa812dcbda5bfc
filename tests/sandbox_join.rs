//! Joining namespaces in spawn mode: a pid namespace joined by the init puts the command in
//! it (regression: the command took its parent pid of 0, the init being outside the joined
//! namespace, for a dead init and exited 127 without running).

mod common_sandbox;

use std::process::{Command, Stdio as StdStdio};
use std::time::{Duration, Instant};

use common_sandbox::*;
use nsbox::{Namespace, Namespaces, Sandbox, Stdio};

/// A process in its own pid namespace (and user namespace when unprivileged), and its host pid.
struct Holder {
    unshare: std::process::Child,
    pid: u32,
}

impl Holder {
    // The child is moved into the Holder, whose Drop kills and waits for it.
    #[allow(clippy::zombie_processes)]
    fn start() -> Holder {
        let mut cmd = Command::new("unshare");
        if !is_root() {
            cmd.arg("-Ur");
        }
        cmd.args(["--pid", "--fork", "sleep", "1000"])
            .stdin(StdStdio::null());
        let mut unshare = cmd.spawn().expect("start unshare (util-linux)");
        let until = Instant::now() + DEADLINE;
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
                    .unwrap_or_default();
            if let Some(pid) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            {
                return Holder { unshare, pid };
            }
            if Instant::now() > until {
                let _ = unshare.kill();
                let _ = unshare.wait();
                panic!("unshare --pid --fork never forked its child");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_pid_namespace_holds_the_command() {
    let holder = Holder::start();
    let ns_file = |kind: &str| format!("/proc/{}/ns/{kind}", holder.pid);
    let mut ns = Namespaces::new();
    if !is_root() {
        // Joining the holder's pid namespace needs CAP_SYS_ADMIN in its user namespace.
        ns.join_path(Some(Namespace::User), ns_file("user"));
    }
    ns.join_path(Some(Namespace::Pid), ns_file("pid"));
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "readlink /proc/self/ns/pid; echo pid $$"])
        .namespaces(ns)
        .stdout(Stdio::piped());
    let out = deadline("join pid", sb.output())
        .await
        .expect("spawn joining a pid namespace");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "status {:?}, output {text:?}",
        out.status
    );
    let want = std::fs::read_link(ns_file("pid")).expect("read the holder's pid namespace");
    assert!(
        text.starts_with(&format!("{}\n", want.display())),
        "the command is not in the joined pid namespace: {text:?} (want {})",
        want.display()
    );
    // The holder's sleep is pid 1 there, so the command has a small pid, not a host one.
    let pid: u32 = text
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("pid "))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert!(pid > 1 && pid != holder.pid, "pid inside: {text:?}");
}

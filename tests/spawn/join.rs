//! Joining namespaces in spawn mode: a pid namespace joined by the init puts the command in
//! it (regression: the command took its parent pid of 0, the init being outside the joined
//! namespace, for a dead init and exited 127 without running).

use nsbox::{Namespace, Namespaces, Sandbox, Stdio};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_pid_namespace_holds_the_command() {
    let holder = NsHolder::start(&["--pid", "--fork"], &marker());
    let ns_file = |kind: &str| holder.ns(kind);
    let mut ns = Namespaces::new();
    if !is_root() {
        // Joining the holder's pid namespace needs CAP_SYS_ADMIN in its user namespace.
        ns = ns.join_path(Some(Namespace::User), ns_file("user")).clone();
    }
    ns = ns.join_path(Some(Namespace::Pid), ns_file("pid")).clone();
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

//! `Sandbox::no_new_privs`: NoNewPrivs is 1 inside by default and with it (also in a
//! grandchild), 0 with `no_new_privs(false)`.

use nsbox::Sandbox;

use crate::run;
use crate::support::*;

/// `NoNewPrivs` in `/proc/self/status` of a command run with `no_new_privs(on)`, in both shapes.
async fn assert_no_new_privs(on: bool, want: &str) {
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("grep");
        sb.args(["NoNewPrivs", "/proc/self/status"])
            .namespaces(ns)
            .no_new_privs(on);
        let out = run(shape, sb).await;
        assert!(out.status.success(), "{shape}: {}", out.stderr);
        assert_eq!(
            out.stdout,
            format!("NoNewPrivs:\t{want}\n"),
            "{shape}, no_new_privs({on})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_new_privs_is_set_for_the_command_by_default_and_when_asked() {
    assert_no_new_privs(true, "1").await;
    // The flag survives exec into the command's own children.
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "sh -c 'grep NoNewPrivs /proc/self/status'"])
        .namespaces(all())
        .no_new_privs(true);
    let out = run("grandchild", sb).await;
    assert_eq!(out.stdout, "NoNewPrivs:\t1\n");
    // And without asking: it is the default.
    let mut sb = Sandbox::new("grep");
    sb.args(["NoNewPrivs", "/proc/self/status"])
        .namespaces(all());
    let out = run("default", sb).await;
    assert_eq!(out.stdout, "NoNewPrivs:\t1\n", "not set by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_new_privs_is_not_set_for_the_command_when_turned_off() {
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    if mine.lines().any(|l| l == "NoNewPrivs:\t1") {
        skip(
            "no_new_privs_is_not_set_for_the_command_when_turned_off",
            "the test process itself runs with no_new_privs, which every child inherits",
        );
        return;
    }
    assert_no_new_privs(false, "0").await;
}

//! The signal state a sandbox's command starts with: by default every disposition is the
//! default action and the mask is empty, whatever the orchestrator itself ignores (Rust's
//! runtime ignores SIGPIPE) or blocks; `ignored_signals` and `blocked_signals` set exactly what
//! the command gets; a set no program can start with is refused by `spawn()`. With and without
//! a pid namespace.

use nsbox::{Sandbox, SignalSet, Stdio};

use crate::support::*;

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// The command's `SigIgn` and `SigBlk`, from its own `/proc/self/status`.
async fn masks(sb: &mut Sandbox, what: &str) -> (u64, u64) {
    sb.args(["/proc/self/status"]).stdout(Stdio::piped());
    let out = deadline(what, sb.output())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("{what}: no {name} in {text:?}"))
    };
    (field("SigIgn:"), field("SigBlk:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_command_ignores_and_blocks_nothing() {
    // This thread blocks a signal and the process ignores SIGPIPE (Rust's runtime) and SIGHUP:
    // none of it reaches the command.
    let mut usr2 = nix::sys::signal::SigSet::empty();
    usr2.add(nix::sys::signal::Signal::SIGUSR2);
    usr2.thread_block().expect("block SIGUSR2");
    let own = std::fs::read_to_string("/proc/thread-self/status").expect("own status");
    assert!(own.contains("SigBlk:\t0000000000000800"), "{own}");
    for (shape, ns) in shapes_and_none() {
        let mut sb = Sandbox::new("cat");
        sb.namespaces(ns);
        let (ignored, blocked) = masks(&mut sb, shape).await;
        assert_eq!(
            (ignored, blocked),
            (0, 0),
            "{shape}: {ignored:x} {blocked:x}"
        );
    }
    usr2.thread_unblock().expect("unblock SIGUSR2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_starts_with_exactly_the_signals_asked_for() {
    let ignored: SignalSet = [libc::SIGINT, libc::SIGHUP, libc::SIGPIPE, 40]
        .into_iter()
        .collect();
    let blocked: SignalSet = [libc::SIGTERM, libc::SIGUSR1, 50].into_iter().collect();
    for (shape, ns) in shapes_and_none() {
        let mut sb = Sandbox::new("cat");
        sb.namespaces(ns)
            .ignored_signals(ignored)
            .blocked_signals(blocked);
        let got = masks(&mut sb, shape).await;
        let want = (
            bit(libc::SIGINT) | bit(libc::SIGHUP) | bit(libc::SIGPIPE) | bit(40),
            bit(libc::SIGTERM) | bit(libc::SIGUSR1) | bit(50),
        );
        assert_eq!(got, want, "{shape}: {got:x?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_no_program_can_start_with_is_refused() {
    for (set, which, words) in [
        (
            vec![libc::SIGKILL],
            "ignored",
            "SIGKILL cannot be ignored or blocked",
        ),
        (
            vec![libc::SIGSTOP],
            "blocked",
            "SIGSTOP cannot be ignored or blocked",
        ),
        (vec![65], "ignored", "65 is not a signal number"),
        (vec![0], "blocked", "0 is not a signal number"),
        (vec![32], "ignored", "reserved by the C library"),
    ] {
        let m = marker();
        let what = format!("{which} {set:?}");
        let set: SignalSet = set.into_iter().collect();
        let mut sb = Sandbox::new("sleep");
        sb.args(["1000", &m]).namespaces(with_pidns());
        if which == "ignored" {
            sb.ignored_signals(set);
        } else {
            sb.blocked_signals(set);
        }
        let err = deadline(&what, sb.spawn()).await.expect_err(&what);
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::InvalidInput,
            "{what}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("{which}_signals: ")) && text.contains(words),
            "{what}: {text}"
        );
        assert!(pids_with_marker(&m).is_empty(), "{what}: the command ran");
    }
}

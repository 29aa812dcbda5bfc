//! PROGRAM starts with the signals nsrun was started ignoring still ignored, and with the
//! signal mask nsrun was given, as under tini, bwrap and unshare(1) (`nohup` and `trap ''`
//! rely on it); and a signal nsrun was started ignoring is not forwarded to PROGRAM. With and
//! without a pid namespace. (The same through an interactive shell is in job_control.rs.)

use std::os::unix::process::CommandExt;

use crate::support::*;

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// The `SigIgn` and `SigBlk` masks in a `/proc/PID/status` text.
fn masks(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {name} in {status:?}"))
    };
    (field("SigIgn:"), field("SigBlk:"))
}

/// Both shapes: with a pid namespace, and without.
fn shapes() -> Vec<Vec<&'static str>> {
    let mut pid = userns_unless_root();
    pid.push("-p");
    vec![pid, userns_unless_root()]
}

/// nsrun with SIGINT and SIGHUP ignored and SIGTERM, SIGUSR1 and a realtime signal blocked.
fn with_signal_state(mut cmd: std::process::Command) -> std::process::Command {
    // SAFETY: signal(2) and sigprocmask(2) are async-signal-safe and allocate nothing; the
    // set is built before the fork.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGUSR1, 40] {
            libc::sigaddset(&mut set, s);
        }
        cmd.pre_exec(move || {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    cmd
}

#[test]
fn program_starts_with_the_ignored_signals_and_the_mask_nsrun_was_given() {
    // What this test process ignores itself goes on too, but SIGPIPE (which Rust's runtime
    // ignores, so nsrun cannot tell whether its caller did) and glibc's reserved 32 and 33
    // (which always start with their default action).
    let own = std::fs::read_to_string("/proc/self/status").expect("own status");
    let inherited = masks(&own).0 & !(bit(libc::SIGPIPE) | bit(32) | bit(33));
    for flags in shapes() {
        let m = marker();
        let mut args = flags.clone();
        args.extend(["--", "cat", "/proc/self/status"]);
        let out = run(with_signal_state(nsrun(&m, &args)));
        assert!(out.status.success(), "nsrun {args:?}: {out:?}");
        let (ignored, blocked) = masks(&out.stdout);
        assert_eq!(
            ignored,
            inherited | bit(libc::SIGINT) | bit(libc::SIGHUP),
            "nsrun {args:?}: SigIgn {ignored:x}"
        );
        assert_eq!(
            blocked,
            bit(libc::SIGTERM) | bit(libc::SIGUSR1) | bit(40),
            "nsrun {args:?}: SigBlk {blocked:x}"
        );
        assert_no_leftovers(&m);
    }
}

#[test]
fn a_signal_nsrun_was_started_ignoring_is_not_forwarded() {
    for flags in shapes() {
        let m = marker();
        // env(1) gives SIGHUP back its default action, and the shell traps it: forwarded, the
        // HUP sent first would be trapped before the TERM sent after it.
        let script = "trap 'echo got-HUP' HUP; trap 'echo got-TERM; exit 0' TERM; echo ready; \
                      while :; do sleep 0.1 & wait $!; done";
        let mut args = flags.clone();
        args.extend(["--", "env", "--default-signal=HUP", "sh", "-c", script]);
        let mut cmd = nsrun(&m, &args);
        // SAFETY: signal(2) is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
        let (mut child, mut lines) = spawn_lines(cmd);
        lines.expect("ready");
        let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("kill -HUP");
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill -TERM");
        assert_eq!(
            lines.next_line(),
            "got-TERM",
            "nsrun {args:?}: {:?}",
            lines.seen
        );
        let status = wait_deadline(&mut child.0, "nsrun");
        assert_eq!(status.code(), Some(0), "nsrun {args:?}: {status:?}");
        assert_no_leftovers(&m);
    }
}

#[test]
fn nohup_nsrun_survives_sighup() {
    for flags in shapes() {
        let m = marker();
        let nsrun = nsrun_path();
        let mut args = vec!["nohup", nsrun.to_str().expect("utf-8 path")];
        args.extend(flags.iter().copied());
        args.extend(["--", "sleep", "1000", &m]);
        let mut cmd = std::process::Command::new("nohup");
        cmd.args(&args[1..])
            .env(MARKER_VAR, &m)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = KillOnDrop(cmd.spawn().expect("spawn nohup nsrun"));
        // nohup and nsrun carry the marker in their arguments too: wait for the sleep itself.
        wait_until("sleep started", || {
            pids_with_marker(&m)
                .iter()
                .any(|(p, _)| stat(*p).is_some_and(|s| s.comm == "sleep"))
        });
        let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("kill -HUP");
        // SIGHUP, ignored, changes nothing; the SIGTERM after it ends the sleep.
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill -TERM");
        let status = wait_deadline(&mut child.0, "nohup nsrun");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{args:?}: {status:?}");
        assert_no_leftovers(&m);
    }
}

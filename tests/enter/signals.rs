//! Each forwarded signal sent to the outer nsrun process reaches PROGRAM, with a pid
//! namespace (outer waiter -> pid 1 -> PROGRAM) and without one (nsrun -> PROGRAM).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::*;

/// PROGRAM: trap SIG, say ready, then wait (interruptibly: `wait` returns on a trapped
/// signal, a foreground `sleep` would not) until the trap reports the signal and exits 0.
fn trap_script(name: &str) -> String {
    format!(
        "trap 'echo got-{name}; exit 0' {name}; echo ready; \
         while :; do sleep 1 & wait $!; done"
    )
}

fn forwarded(sig: Signal, name: &str) {
    let m = marker();
    let mut pid_flags = userns_unless_root();
    pid_flags.push("-p");
    for flags in [pid_flags, userns_unless_root()] {
        let script = trap_script(name);
        let mut args = flags.clone();
        args.extend(["--", "sh", "-c", &script]);
        let (mut child, mut lines) = spawn_lines(nsrun(&m, &args));
        lines.expect("ready");
        kill(Pid::from_raw(child.0.id() as i32), sig).expect("kill nsrun");
        lines.expect(&format!("got-{name}"));
        let status = wait_deadline(&mut child.0, "nsrun");
        assert_eq!(status.code(), Some(0), "nsrun {args:?}: {status:?}");
        assert_no_leftovers(&m);
    }
}

#[test]
fn sigint_sent_to_nsrun_reaches_program() {
    forwarded(Signal::SIGINT, "INT");
}

#[test]
fn sigterm_sent_to_nsrun_reaches_program() {
    forwarded(Signal::SIGTERM, "TERM");
}

#[test]
fn sighup_sent_to_nsrun_reaches_program() {
    forwarded(Signal::SIGHUP, "HUP");
}

#[test]
fn sigquit_sent_to_nsrun_reaches_program() {
    forwarded(Signal::SIGQUIT, "QUIT");
}

#[test]
fn sigusr1_sent_to_nsrun_reaches_program() {
    forwarded(Signal::SIGUSR1, "USR1");
}

#[test]
fn sigusr2_sent_to_nsrun_reaches_program() {
    forwarded(Signal::SIGUSR2, "USR2");
}

#[test]
fn sigwinch_sent_to_nsrun_reaches_program() {
    forwarded(Signal::SIGWINCH, "WINCH");
}

#[test]
fn sigcont_sent_to_nsrun_reaches_program() {
    forwarded(Signal::SIGCONT, "CONT");
}

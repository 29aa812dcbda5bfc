//! Each forwarded signal sent to the outer nsrun process reaches PROGRAM, with a pid
//! namespace (outer waiter -> pid 1 -> PROGRAM) and without one (nsrun -> PROGRAM): the eight
//! of old, and every other one but SIGCHLD, SIGKILL and SIGSTOP (a sample here: faults sent
//! with kill, SIGALRM, SIGPIPE, realtime signals), which used to kill nsrun instead.

use crate::support::*;

/// PROGRAM: trap SIG, say ready, then wait (interruptibly: `wait` returns on a trapped
/// signal, a foreground `sleep` would not) until the trap reports the signal and exits 0.
fn trap_script(name: &str) -> String {
    format!(
        "trap 'echo got-{name}; exit 0' {name}; echo ready; \
         while :; do sleep 1 & wait $!; done"
    )
}

/// kill(2) with any signal number (nix cannot name realtime signals).
fn send(pid: u32, sig: i32) {
    // SAFETY: plain kill(2).
    let r = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(
        r,
        0,
        "kill -{sig} {pid}: {}",
        std::io::Error::last_os_error()
    );
}

fn forwarded(sig: i32, name: &str) {
    let m = marker();
    let mut pid_flags = userns_unless_root();
    pid_flags.push("-p");
    for flags in [pid_flags, userns_unless_root()] {
        let script = trap_script(name);
        let mut args = flags.clone();
        args.extend(["--", "sh", "-c", &script]);
        let (mut child, mut lines) = spawn_lines(nsrun(&m, &args));
        lines.expect("ready");
        send(child.0.id(), sig);
        lines.expect(&format!("got-{name}"));
        let status = wait_deadline(&mut child.0, "nsrun");
        assert_eq!(status.code(), Some(0), "nsrun {args:?}: {status:?}");
        assert_no_leftovers(&m);
    }
}

#[test]
fn sigint_sent_to_nsrun_reaches_program() {
    forwarded(libc::SIGINT, "INT");
}

#[test]
fn sigterm_sent_to_nsrun_reaches_program() {
    forwarded(libc::SIGTERM, "TERM");
}

#[test]
fn sighup_sent_to_nsrun_reaches_program() {
    forwarded(libc::SIGHUP, "HUP");
}

#[test]
fn sigquit_sent_to_nsrun_reaches_program() {
    forwarded(libc::SIGQUIT, "QUIT");
}

#[test]
fn sigusr1_sent_to_nsrun_reaches_program() {
    forwarded(libc::SIGUSR1, "USR1");
}

#[test]
fn sigusr2_sent_to_nsrun_reaches_program() {
    forwarded(libc::SIGUSR2, "USR2");
}

#[test]
fn sigwinch_sent_to_nsrun_reaches_program() {
    forwarded(libc::SIGWINCH, "WINCH");
}

#[test]
fn sigcont_sent_to_nsrun_reaches_program() {
    forwarded(libc::SIGCONT, "CONT");
}

#[test]
fn sigill_sent_with_kill_reaches_program() {
    forwarded(libc::SIGILL, "ILL");
}

#[test]
fn sigsegv_sent_with_kill_reaches_program() {
    forwarded(libc::SIGSEGV, "SEGV");
}

#[test]
fn sigfpe_and_sigbus_sent_with_kill_reach_program() {
    forwarded(libc::SIGFPE, "FPE");
    forwarded(libc::SIGBUS, "BUS");
}

#[test]
fn sigalrm_and_sigpipe_reach_program() {
    forwarded(libc::SIGALRM, "ALRM");
    forwarded(libc::SIGPIPE, "PIPE");
}

#[test]
fn realtime_signals_reach_program() {
    forwarded(40, "40");
    forwarded(64, "64");
}

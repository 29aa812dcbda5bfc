//! Ctrl-C typed at a terminal reaches PROGRAM, and the shell that started nsrun has the
//! terminal's foreground back afterwards (bubblewrap issues 343 and 744 are what happens
//! otherwise).
//!
//! A pty stands in for the terminal: an outer `sh` runs on its slave as a session leader
//! with the slave as its controlling terminal (setsid(1) --ctty, util-linux, does the
//! setsid + TIOCSCTTY), and the test types on the master.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};

use nix::unistd::{Pid, tcgetpgrp};

use crate::support::*;

#[test]
fn ctrl_c_at_a_terminal_reaches_program_and_the_shell_gets_the_foreground_back() {
    ctrl_c(true);
}

#[test]
fn ctrl_c_reaches_program_and_the_foreground_comes_back_without_a_pid_namespace() {
    ctrl_c(false);
}

fn ctrl_c(pid_namespace: bool) {
    let m = marker();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let master: OwnedFd = pty.master;
    let slave: OwnedFd = pty.slave;

    let mut flags = userns_unless_root().join(" ");
    if pid_namespace {
        flags.push_str(" -p");
    }
    let nsrun = nsrun_path();
    // PROGRAM sleeps in short steps: a Ctrl-C that lands before a long `sleep` has started
    // would only run the trap once that sleep ended (sh defers traps until its foreground
    // child is done), which made the test slow, not wrong.
    // The outer shell: run nsrun in the foreground, report its status, then prove it can
    // read from the terminal again (a background group reading would be stopped by SIGTTIN).
    let script = format!(
        "'{nsrun}' {flags} -- sh -c 'trap \"echo got-int; exit 3\" INT; echo ready; while :; do sleep 0.1; done'; \
         echo rc=$?; read line; echo \"read=$line\"",
        nsrun = nsrun.display()
    );
    let mut cmd = Command::new("setsid");
    cmd.args(["--ctty", "sh", "-c", &script])
        .env(MARKER_VAR, &m)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut shell = cmd.spawn().expect("spawn setsid sh");
    // setsid(1) execs in place (the child is not a group leader): this is the shell's pid.
    let shell_pid = Pid::from_raw(shell.id() as i32);
    // Whatever happens below, nothing of this terminal session outlives the test.
    let _session = SessionGuard(shell.id() as i32);
    let master = File::from(master);
    let mut typist = master.try_clone().unwrap();
    let mut screen = Screen::new(master.try_clone().unwrap());

    screen.expect("ready\r\n");
    let fg = tcgetpgrp(master.as_fd()).expect("tcgetpgrp");
    assert_ne!(
        fg, shell_pid,
        "PROGRAM runs but the shell still holds the foreground"
    );

    typist.write_all(&[0x03]).expect("type Ctrl-C");
    screen.expect("got-int\r\n");
    screen.expect("rc=3\r\n");
    let fg = tcgetpgrp(master.as_fd()).expect("tcgetpgrp");
    assert_eq!(fg, shell_pid, "the shell did not get the foreground back");

    typist.write_all(b"still mine\n").expect("type a line");
    screen.expect("read=still mine\r\n");
    let status = wait_deadline(&mut shell, "the outer shell");
    assert_eq!(status.code(), Some(0), "screen: {:?}", screen.text);
    assert_no_leftovers(&m);
}

//! Job control across nsrun: when PROGRAM is stopped (Ctrl-Z, or SIGTSTP), the job-control
//! shell that started nsrun sees a stopped job and gets its terminal back; `fg` resumes
//! PROGRAM with the terminal, and nsrun then exits as PROGRAM did. With and without a pid
//! namespace (the stop crosses pid 1 and the waiter outside in the first case).
//!
//! An interactive bash on a pty (setsid(1) --ctty makes it the session leader with the pty as
//! its controlling terminal) stands in for the user's shell; the test types on the master.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};

use nix::unistd::{Pid, tcgetpgrp};

use crate::support::*;

fn stop_and_fg(pid_namespace: bool) {
    let m = marker();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let master: OwnedFd = pty.master;
    let slave: OwnedFd = pty.slave;
    let mut cmd = Command::new("setsid");
    cmd.args(["--ctty", "bash", "--norc", "--noprofile", "-i"])
        .env(MARKER_VAR, &m)
        .env("PS1", "PROMPT> ")
        .env("TERM", "dumb")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    let mut shell = cmd.spawn().expect("spawn an interactive bash");
    let shell_pid = Pid::from_raw(shell.id() as i32);
    // Whatever happens below, nothing of this terminal session outlives the test.
    let _session = SessionGuard(shell.id() as i32);
    let master = File::from(master);
    let mut typist = master.try_clone().unwrap();
    let mut screen = Screen::new(master.try_clone().unwrap());
    screen.expect("PROMPT> ");

    let mut flags = userns_unless_root().join(" ");
    if pid_namespace {
        flags.push_str(" -p");
    }
    // PROGRAM stops itself the way Ctrl-Z would stop it (SIGTSTP to itself), then says so
    // when resumed and exits 5.
    let line = format!(
        "'{}' {flags} -- sh -c 'echo before-stop; kill -TSTP $$; echo resumed; exit 5'\n",
        nsrun_path().display()
    );
    typist.write_all(line.as_bytes()).expect("type the command");
    screen.expect("before-stop");
    // bash reports the stopped job and prompts again: it has the terminal back.
    screen.expect("Stopped");
    let stopped_at = screen.text.rfind("Stopped").unwrap_or(0);
    screen.expect_after(stopped_at, "PROMPT> ");
    let fg = tcgetpgrp(master.as_fd()).expect("tcgetpgrp");
    assert_eq!(
        fg, shell_pid,
        "the shell does not hold the terminal while the job is stopped"
    );
    typist.write_all(b"fg\n").expect("type fg");
    screen.expect("resumed");
    typist.write_all(b"echo rc=$?\n").expect("type echo");
    screen.expect("rc=5");
    typist.write_all(b"exit\n").expect("type exit");
    let status = wait_deadline(&mut shell, "the interactive shell");
    assert!(
        status.success(),
        "shell: {status:?}; screen: {:?}",
        screen.text
    );
    assert_no_leftovers(&m);
}

#[test]
fn a_stopped_program_gives_the_shell_a_stopped_job_and_fg_resumes_it() {
    stop_and_fg(true);
}

#[test]
fn a_stopped_program_without_a_pid_namespace_gives_the_shell_a_stopped_job_too() {
    stop_and_fg(false);
}

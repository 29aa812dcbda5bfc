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

use nix::sys::signal::{Signal, kill};
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

/// The live processes of this test (its marker in their environment) named `comm`.
fn named(m: &str, comm: &str) -> Vec<Stat> {
    leftovers(m)
        .into_iter()
        .filter_map(|(pid, _)| stat(pid))
        .filter(|s| s.comm == comm && s.state != 'Z')
        .collect()
}

/// Wait for the one live process of this test named `comm` whose parent is `ppid` (any
/// parent: `None`).
fn one_named(m: &str, comm: &str, ppid: Option<i32>) -> Stat {
    wait_for(&format!("the {comm} process"), || {
        let found: Vec<Stat> = named(m, comm)
            .into_iter()
            .filter(|s| ppid.is_none_or(|p| s.ppid == p))
            .collect();
        match &found[..] {
            [one] => Ok(one.clone()),
            other => Err(format!("{other:?}")),
        }
    })
}

/// PROGRAM, named `comm`: the process of this test whose parent is nsrun (pid 1, or nsrun
/// itself without a pid namespace); not a child PROGRAM forks, which bears its name until it
/// execs.
fn program_named(m: &str, comm: &str) -> Stat {
    wait_for(&format!("PROGRAM ({comm})"), || {
        // By its parent's name: pid 1 is not dumpable, so its environment (and the marker
        // in it) cannot be read unprivileged, but its stat can.
        let found: Vec<Stat> = named(m, comm)
            .into_iter()
            .filter(|s| stat(s.ppid).is_some_and(|p| p.comm == "nsrun"))
            .collect();
        match &found[..] {
            [one] => Ok(one.clone()),
            other => Err(format!("{other:?}")),
        }
    })
}

/// A FIFO PROGRAM blocks on (in open(2), stoppable) until the test writes to it: PROGRAM
/// forks nothing meanwhile. (A shell that loops on `sleep` vforks: a stop that lands between
/// its vfork and the child's exec stops the child and leaves the shell waiting for it, in D
/// state, so the job never stops as a whole: under nsrun as under a plain shell.)
fn go_fifo() -> (Scratch, std::path::PathBuf) {
    let dir = Scratch::new("go");
    let go = dir.path().join("go");
    nix::unistd::mkfifo(&go, nix::sys::stat::Mode::from_bits_truncate(0o666)).expect("mkfifo");
    // mkfifo's mode goes through the umask: open it to PROGRAM's uid whatever the umask.
    std::fs::set_permissions(&go, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod the FIFO");
    (dir, go)
}

fn state_is(pid: i32, want: char) -> Result<(), String> {
    match state(pid) {
        Some(s) if s == want => Ok(()),
        other => Err(format!("pid {pid} is {other:?}")),
    }
}

fn nsrun_line(pid_namespace: bool, program: &str) -> String {
    let mut flags = userns_unless_root().join(" ");
    if pid_namespace {
        flags.push_str(" -p");
    }
    format!("'{}' {flags} -- {program}", nsrun_path().display())
}

/// Wait until the terminal's foreground is `pgrp`; fail at once if the shell reports a stopped
/// job after byte `from` of the screen instead (the job stopped again).
fn until_foreground(sh: &mut Shell, pgrp: i32, from: usize, what: &str) {
    wait_for(what, || {
        sh.screen.refresh();
        assert!(
            !sh.screen.text[from..].contains("Stopped"),
            "{what}: the job stopped again; screen: {:?}",
            sh.screen.text
        );
        let fg = sh.foreground();
        if fg == pgrp {
            Ok(())
        } else {
            Err(format!("the foreground is {fg}, not {pgrp}"))
        }
    });
}

/// Ctrl-Z, then `bg`: the job runs on in the background and the shell keeps its terminal
/// (it used to lose it to the job and exit on EOF); `fg` of the running job then lets PROGRAM
/// read the terminal (the hand-over happens when it first tries).
fn ctrl_z_bg_fg(pid_namespace: bool) {
    let m = marker();
    let mut sh = Shell::start(&m);
    let (_dir, go) = go_fifo();
    // `st''art-ok` shows as start-ok only in PROGRAM's output, not in the echoed command.
    // PROGRAM reads the terminal only once the test has written to the go FIFO.
    let program = format!(
        "sh -c 'echo st''art-ok; read go < {}; read line; echo \"got-$line\"'",
        go.display()
    );
    sh.type_text(&format!("{}\n", nsrun_line(pid_namespace, &program)));
    sh.screen.expect("start-ok");
    let job = one_named(&m, "nsrun", Some(sh.pid));
    let prog = program_named(&m, "sh");
    until_foreground(&mut sh, prog.pgrp, 0, "PROGRAM holds the terminal");

    let at = sh.mark();
    sh.type_text("\x1a");
    sh.screen.expect_after(at, "Stopped");
    let stopped_at = sh.screen.text[at..].find("Stopped").unwrap_or(0) + at;
    sh.screen.expect_after(stopped_at, "PROMPT> ");
    wait_for("PROGRAM stopped", || state_is(prog.pid, 'T'));
    assert_eq!(
        sh.foreground(),
        sh.pid,
        "the shell lacks the terminal after ^Z"
    );

    let at = sh.mark();
    sh.type_text("bg\n");
    sh.type_text("echo 'ali've\n");
    sh.screen.expect_after(at, "alive");
    assert_eq!(sh.foreground(), sh.pid, "bg gave the shell's terminal away");
    wait_for("PROGRAM running again after bg", || {
        state(prog.pid)
            .filter(|s| *s != 'T')
            .map(|_| ())
            .ok_or_else(|| "still stopped".to_string())
    });
    wait_for("nsrun running again after bg", || state_is(job.pid, 'S'));

    let at = sh.mark();
    sh.type_text("fg\n");
    wait_until("the shell gave the job the terminal", || {
        sh.foreground() == job.pgrp
    });
    std::fs::write(&go, b"go\n").expect("write the go FIFO");
    until_foreground(
        &mut sh,
        prog.pgrp,
        at,
        "PROGRAM holds the terminal after fg",
    );
    sh.type_text("typed-line\n");
    sh.screen.expect_after(at, "got-typed-line");
    wait_until("nsrun ended", || !alive(job.pid));
    let at = sh.mark();
    sh.type_text("echo rc=$?\n");
    sh.screen.expect_after(at, "rc=0");
    assert_eq!(sh.foreground(), sh.pid);
    sh.exit();
    assert_no_leftovers(&m);
}

#[test]
fn ctrl_z_then_bg_keeps_the_shell_and_fg_hands_the_terminal_back() {
    ctrl_z_bg_fg(true);
}

#[test]
fn ctrl_z_then_bg_keeps_the_shell_without_a_pid_namespace() {
    ctrl_z_bg_fg(false);
}

/// `nsrun ... cat &`: cat stops when it reads the terminal from the background, and so does
/// the job; `fg` then gives cat the terminal (it used to stop again at once).
fn background_start_then_fg(pid_namespace: bool) {
    let m = marker();
    let mut sh = Shell::start(&m);
    sh.type_text(&format!("{} &\n", nsrun_line(pid_namespace, "cat")));
    let job = one_named(&m, "nsrun", Some(sh.pid));
    let cat = one_named(&m, "cat", None);
    wait_for("cat stopped by its read", || state_is(cat.pid, 'T'));
    wait_for("the job stopped with it", || state_is(job.pid, 'T'));
    assert_eq!(
        sh.foreground(),
        sh.pid,
        "a background job took the terminal"
    );

    let at = sh.mark();
    sh.type_text("fg\n");
    until_foreground(&mut sh, cat.pgrp, at, "cat holds the terminal after fg");
    let at = sh.mark();
    sh.type_text("typed-to-cat\n");
    // The terminal's echo, then cat's copy.
    sh.screen
        .expect_after(at, "typed-to-cat\r\ntyped-to-cat\r\n");
    sh.type_text("\x04");
    wait_until("nsrun ended", || !alive(job.pid));
    let at = sh.mark();
    sh.type_text("echo rc=$?\n");
    sh.screen.expect_after(at, "rc=0");
    assert_eq!(sh.foreground(), sh.pid);
    sh.exit();
    assert_no_leftovers(&m);
}

#[test]
fn a_job_started_in_the_background_gets_the_terminal_on_fg() {
    background_start_then_fg(true);
}

#[test]
fn a_job_started_in_the_background_gets_the_terminal_on_fg_without_a_pid_namespace() {
    background_start_then_fg(false);
}

/// SIGTSTP sent to nsrun stops the whole sandbox as one job, PROGRAM included (it used to
/// stop only nsrun); `fg` resumes PROGRAM with the terminal.
fn sigtstp_to_nsrun(pid_namespace: bool) {
    let m = marker();
    let mut sh = Shell::start(&m);
    let (_dir, go) = go_fifo();
    let program = format!("sh -c 'echo st''art-ok; read go < {}'", go.display());
    sh.type_text(&format!("{}\n", nsrun_line(pid_namespace, &program)));
    sh.screen.expect("start-ok");
    let job = one_named(&m, "nsrun", Some(sh.pid));
    let prog = program_named(&m, "sh");
    until_foreground(&mut sh, prog.pgrp, 0, "PROGRAM holds the terminal");

    let at = sh.mark();
    kill(Pid::from_raw(job.pid), Signal::SIGTSTP).expect("kill -TSTP nsrun");
    wait_for("PROGRAM stopped", || state_is(prog.pid, 'T'));
    wait_for("nsrun stopped", || state_is(job.pid, 'T'));
    sh.screen.expect_after(at, "Stopped");
    assert_eq!(sh.foreground(), sh.pid, "the shell lacks the terminal");

    let at = sh.mark();
    sh.type_text("fg\n");
    until_foreground(
        &mut sh,
        prog.pgrp,
        at,
        "PROGRAM holds the terminal after fg",
    );
    wait_for("PROGRAM running again", || {
        state(prog.pid)
            .filter(|s| *s != 'T')
            .map(|_| ())
            .ok_or_else(|| "still stopped".to_string())
    });
    std::fs::write(&go, b"go\n").expect("write the go FIFO");
    wait_until("nsrun ended", || !alive(job.pid));
    let at = sh.mark();
    sh.type_text("echo rc=$?\n");
    sh.screen.expect_after(at, "rc=0");
    sh.exit();
    assert_no_leftovers(&m);
}

#[test]
fn sigtstp_sent_to_nsrun_stops_program_too() {
    sigtstp_to_nsrun(true);
}

#[test]
fn sigtstp_sent_to_nsrun_stops_program_too_without_a_pid_namespace() {
    sigtstp_to_nsrun(false);
}

/// `trap '' INT` before nsrun: PROGRAM starts with SIGINT ignored, as `nohup` and `trap ''`
/// expect (it used to die by its own SIGINT).
fn ignored_at_the_terminal(pid_namespace: bool) {
    let m = marker();
    let mut sh = Shell::start(&m);
    let program = "sh -c 'kill -INT $$; echo sur''vived'";
    let at = sh.mark();
    sh.type_text(&format!(
        "(trap '' INT; exec {})\n",
        nsrun_line(pid_namespace, program)
    ));
    sh.screen.expect_after(at, "survived");
    let at = sh.mark();
    sh.type_text("echo rc=$?\n");
    sh.screen.expect_after(at, "rc=0");
    sh.exit();
    assert_no_leftovers(&m);
}

#[test]
fn a_signal_ignored_by_the_shell_stays_ignored_in_program() {
    ignored_at_the_terminal(true);
}

#[test]
fn a_signal_ignored_by_the_shell_stays_ignored_in_program_without_a_pid_namespace() {
    ignored_at_the_terminal(false);
}

//! The orchestrator example, end to end: a mix of actions (success, exit code, signal,
//! timeout, output on both streams, a missing program) through the built example binary,
//! as the current user and, as root, also as uid 65534; its summary table, progress lines,
//! output directory, exit codes, SIGINT handling, and that no process is left behind.
//!
//! The mix has one timeout (`--timeout` applies to every action): a `sleep 1000`, which must
//! time out. If another action timed out too (only a slow machine makes `true` last a
//! second), the run is inconclusive and is repeated with twice the timeout.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::support::*;

/// The orchestrator as the current user, or as uid/gid 65534 through setpriv; its processes
/// tagged with `marker` in [`MARKER_VAR`] (the sandboxes get it through `--env`).
fn orchestrator(as_nobody: bool, marker: &str, args: &[&str]) -> Command {
    let mut cmd = if as_nobody {
        let mut c = Command::new(AS_NOBODY[0]);
        c.args(&AS_NOBODY[1..]).arg(example_path("orchestrator"));
        c
    } else {
        Command::new(example_path("orchestrator"))
    };
    // The sandboxes get only the environment named: name the marker.
    cmd.args(["--env", MARKER_VAR])
        .args(args)
        .env(MARKER_VAR, marker)
        .current_dir("/")
        .stdin(Stdio::null());
    // SAFETY: signal(2) is async-signal-safe. The orchestrator must see SIGINT with its
    // default disposition even if this test runs with SIGINT ignored (a background job).
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd
}

/// The summary row of `action`: its cells (split on runs of two or more spaces).
fn row<'a>(stdout: &'a str, action: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .find(|l| {
            l.strip_prefix(action)
                .is_some_and(|rest| rest.starts_with("  "))
        })
        .unwrap_or_else(|| panic!("no summary row for {action:?} in:\n{stdout}"));
    row_of(line)
}

/// The cells of a summary line (split on runs of two or more spaces).
fn row_of(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn secs(cell: &str) -> f64 {
    cell.strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a duration: {cell:?}"))
}

const MIX: &str = "\
# the mix of issue 3, item 9
true
exit 3

kill -TERM $$
sleep 1000
echo hi; echo err >&2
/no/such/program --flag
";

/// The actions of [`MIX`] and the status each must get.
const EXPECT: [(&str, &str); 6] = [
    ("true", "exit 0"),
    ("exit 3", "exit 3"),
    ("kill -TERM $$", "signal SIGTERM"),
    ("sleep 1000", "timeout"),
    ("echo hi; echo err >&2", "exit 0"),
    (
        "/no/such/program --flag",
        "error: exec /no/such/program: No such file or directory (ENOENT)",
    ),
];

fn check_mix(as_nobody: bool, extra: &[&str]) {
    let scratch = Scratch::new("mix");
    let file = scratch.path().join("actions.txt");
    std::fs::write(&file, MIX).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let m = marker();
    let mut timeout = 1.0;
    let (out, outdir, ctx) = loop {
        let outdir = scratch.path().join(format!("out-{timeout}"));
        let t = timeout.to_string();
        let mut args = vec![
            "--jobs",
            "3",
            "--timeout",
            &t,
            "--kill-after",
            "1",
            "--file",
            file.to_str().unwrap(),
            "--output-dir",
            outdir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = run(orchestrator(as_nobody, &m, &args));
        let ctx = format!(
            "as_nobody={as_nobody} {extra:?} --timeout {t}\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        let timed_out = out
            .stdout
            .lines()
            .filter(|l| row_of(l).get(1) == Some(&"timeout"));
        if timed_out.count() <= 1 || timeout >= 32.0 {
            break (out, outdir, ctx);
        }
        eprintln!(
            "{ctx}\ninconclusive: more than the sleep timed out; again with twice the timeout"
        );
        timeout *= 2.0;
    };
    assert_eq!(out.status.code(), Some(1), "{ctx}");

    let header = out.stdout.lines().next().unwrap_or("");
    for col in ["ACTION", "STATUS", "WALL", "CPU", "MAX RSS"] {
        assert!(header.contains(col), "no column {col}: {ctx}");
    }
    for (action, status) in EXPECT {
        let cells = row(&out.stdout, action);
        assert_eq!(cells[1], status, "{action}: {ctx}");
        let wall = secs(cells[2]);
        if action == "/no/such/program --flag" {
            // Never ran: no CPU time, no RSS.
            assert_eq!(&cells[3..], ["-", "-"], "{ctx}");
        } else {
            assert!(secs(cells[3]) >= 0.0, "{ctx}");
            assert!(
                cells[4].ends_with("iB") || cells[4].ends_with(" B"),
                "{ctx}"
            );
        }
        if action == "sleep 1000" {
            // Not before the timeout (a slow machine can only make it later).
            assert!(wall >= timeout * 0.9, "timeout after {wall}s: {ctx}");
        }
    }
    assert!(
        out.stdout
            .contains("6 actions: 2 succeeded, 4 failed (1 timed out, 1 error) in "),
        "{ctx}"
    );
    // Failed actions show details under their row; succeeded ones do not without -v.
    assert!(
        out.stdout
            .contains("    timed out: the command ended with signal SIGTERM"),
        "{ctx}"
    );
    assert!(
        out.stdout.contains("(hint: no such program"),
        "the full error under the row: {ctx}"
    );
    assert!(!out.stdout.contains("out| hi"), "{ctx}");

    // Not a terminal: one progress line per action.
    for n in 1..=6 {
        assert!(out.stderr.contains(&format!("[{n}/6] ")), "{ctx}");
    }
    assert!(
        out.stderr.contains("] FAILED: sleep 1000 (timeout, "),
        "{ctx}"
    );
    assert!(out.stderr.contains("] done: true (exit 0, "), "{ctx}");

    // The output directory: action 5 is the echo.
    let read = |name: &str| std::fs::read_to_string(outdir.join(name)).unwrap();
    assert_eq!(read("5.stdout"), "hi\n", "{ctx}");
    assert_eq!(read("5.stderr"), "err\n", "{ctx}");
    assert_eq!(read("1.stdout"), "", "{ctx}");
    assert!(outdir.join("6.stderr").is_file(), "{ctx}");

    assert_no_leftovers(&m);
}

#[test]
fn mix_as_current_user() {
    check_mix(false, &[]);
}

#[test]
fn mix_without_namespaces() {
    check_mix(false, &["--no-namespaces"]);
}

#[test]
fn mix_without_launcher() {
    check_mix(false, &["--no-launcher"]);
}

fn nobody_usable(test: &str) -> bool {
    if !is_root() {
        skip(test, "needs root to switch to uid 65534");
        return false;
    }
    let probe = Command::new(AS_NOBODY[0])
        .args(&AS_NOBODY[1..])
        .arg(example_path("orchestrator"))
        .arg("--help")
        .stdout(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        skip(
            test,
            "setpriv missing or the example is not executable by uid 65534",
        );
        return false;
    }
    true
}

#[test]
fn mix_as_nobody() {
    if nobody_usable("mix_as_nobody") {
        check_mix(true, &[]);
    }
}

#[test]
fn mix_as_nobody_without_namespaces() {
    if nobody_usable("mix_as_nobody_without_namespaces") {
        check_mix(true, &["--no-namespaces"]);
    }
}

#[test]
fn all_succeed_exit_zero_and_verbose_shows_output() {
    let m = marker();
    let out = run(orchestrator(
        false,
        &m,
        &["-v", "-j", "2", "echo one", "echo two >&2", "true"],
    ));
    let ctx = format!("stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.status.code(), Some(0), "{ctx}");
    assert!(out.stdout.contains("    out| one\n"), "{ctx}");
    assert!(out.stdout.contains("    err| two\n"), "{ctx}");
    assert!(
        out.stdout.contains("3 actions: 3 succeeded, 0 failed in "),
        "{ctx}"
    );
    assert_eq!(row(&out.stdout, "echo two >&2")[1], "exit 0", "{ctx}");
    assert_no_leftovers(&m);
}

#[test]
fn usage_errors_exit_125() {
    let m = marker();
    for args in [
        &[][..],
        &["--jobs", "0", "true"],
        &["--timeout", "0", "true"],
        &["--timeout", "soon", "true"],
        &["--bogus", "true"],
        &["--file", "/no/such/actions.txt"],
        &["--no-namespaces", "--net", "true"],
    ] {
        let out = run(orchestrator(false, &m, args));
        assert_eq!(
            out.status.code(),
            Some(125),
            "{args:?}: stdout {:?} stderr {:?}",
            out.stdout,
            out.stderr
        );
    }
    let out = run(orchestrator(false, &m, &["--help"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.contains("--jobs"));
}

/// Run the orchestrator and SIGINT it once `flag` exists (an action has started).
fn interrupted_once(cmd: Command, flag: &std::path::Path) -> Output {
    run_with(cmd, |pid| {
        wait_until("the action that makes the flag starting", || flag.exists());
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
    })
}

#[test]
fn sigint_kills_the_running_sandboxes() {
    let scratch = Scratch::new("sigint");
    let flag = scratch.path().join("started");
    let m = marker();
    // None of them ends by itself within the deadline: only the SIGINT ends this run.
    let first = format!("touch {}; sleep 1000", flag.display());
    let w = scratch.path().display().to_string();
    let cmd = orchestrator(
        false,
        &m,
        &["-j", "2", "-w", &w, &first, "sleep 1001", "sleep 1002"],
    );
    let out = interrupted_once(cmd, &flag);
    let ctx = format!("stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.status.code(), Some(130), "{ctx}");
    assert_eq!(row(&out.stdout, "sleep 1002")[1], "cancelled", "{ctx}");
    assert!(
        out.stdout
            .contains("3 actions: 0 succeeded, 0 failed, 3 cancelled in "),
        "{ctx}"
    );
    assert_no_leftovers(&m);
}

#[test]
fn labels_name_actions_and_long_commands_show_their_end() {
    let m = marker();
    let dir = "/very/long/source/directory/of/a/c/project/that/repeats/itself";
    let a = format!("cc -O2 -I{dir}/lib -I{dir}/include -c {dir}/src/alpha.c -o alpha.o");
    let b = format!("cc -O2 -I{dir}/lib -I{dir}/include -c {dir}/src/bravo.c -o bravo.o");
    let labelled = format!("[lib/charlie.o] sh -c 'exit 4' {dir}/src/charlie.c");
    let out = run(orchestrator(
        false,
        &m,
        &["-j", "2", &a, &b, &labelled, "[ -d / ] && true"],
    ));
    let ctx = format!("stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    // The rows of the two compile commands differ: each shows the end of its command.
    let rows: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with('…')).collect();
    assert_eq!(rows.len(), 2, "{ctx}");
    assert!(
        rows.iter().any(|r| r.contains("alpha.c -o alpha.o")),
        "{ctx}"
    );
    assert!(
        rows.iter().any(|r| r.contains("bravo.c -o bravo.o")),
        "{ctx}"
    );
    // A label names its action, and the failed action's full command is shown under it.
    assert_eq!(row(&out.stdout, "lib/charlie.o")[1], "exit 4", "{ctx}");
    assert!(
        out.stdout
            .contains(&format!("    action: sh -c 'exit 4' {dir}/src/charlie.c")),
        "{ctx}"
    );
    // A shell test in brackets is no label.
    assert_eq!(row(&out.stdout, "[ -d / ] && true")[1], "exit 0", "{ctx}");
    assert!(
        out.stderr.contains("FAILED: lib/charlie.o (exit 4, "),
        "{ctx}"
    );
    assert_no_leftovers(&m);
}

#[test]
fn actions_cut_short_by_sigint_are_cancelled_not_failed() {
    let scratch = Scratch::new("sigint-count");
    let flag = scratch.path().join("second-started");
    let m = marker();
    // -j 1: `exit 5` fails first, then the second action starts and is interrupted; the third
    // never starts.
    let second = format!("touch {}; sleep 1000", flag.display());
    let w = scratch.path().display().to_string();
    let cmd = orchestrator(
        false,
        &m,
        &["-j", "1", "-w", &w, "exit 5", &second, "sleep 1001"],
    );
    let out = interrupted_once(cmd, &flag);
    let ctx = format!("stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.status.code(), Some(130), "{ctx}");
    assert_eq!(row(&out.stdout, "exit 5")[1], "exit 5", "{ctx}");
    assert_eq!(row(&out.stdout, "sleep 1001")[1], "cancelled", "{ctx}");
    assert!(
        out.stdout
            .contains("3 actions: 0 succeeded, 1 failed, 2 cancelled in "),
        "{ctx}"
    );
    assert_no_leftovers(&m);
}

#[test]
fn on_a_narrow_terminal_a_failures_reason_is_never_cut() {
    let m = marker();
    let ws = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 40,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
    let slave = std::fs::File::from(pty.slave);
    let mut screen = Screen::new(std::fs::File::from(pty.master));
    let long = format!("sh -c 'exit 7' {}", "/a/long/path".repeat(8));
    let mut cmd = orchestrator(false, &m, &[&long]);
    cmd.stderr(slave.try_clone().expect("dup the pty"));
    cmd.stdout(Stdio::null());
    let mut child = KillOnDrop(cmd.spawn().expect("spawn the orchestrator"));
    drop(slave);
    // The reason and the time come whole after the shortened name.
    screen.expect("(exit 7, ");
    let status = wait_deadline(&mut child.0, "the orchestrator");
    assert_eq!(status.code(), Some(1));
    let line = screen
        .text
        .split(['\r', '\n'])
        .find(|l| l.contains("FAILED: "))
        .unwrap_or_else(|| panic!("no FAILED line on the terminal: {:?}", screen.text))
        .to_string();
    assert!(
        line.contains("FAILED: …"),
        "the name was not shortened from the left: {line:?}"
    );
    assert!(line.contains("/a/long/path (exit 7, "), "{line:?}");
    assert_no_leftovers(&m);
}

/// An action sees only the fixed PATH and the variables named with `--env`: not a secret of
/// the orchestrator's environment, nor the orchestrator's argv through its init.
#[test]
fn the_orchestrator_passes_only_the_environment_it_names() {
    let m = marker();
    let mut cmd = orchestrator(
        false,
        &m,
        &[
            "--verbose",
            "--env",
            "NSBOX_PASSED",
            "--env",
            "NSBOX_SET=given",
            "env | sort; tr -d '\\0' < /proc/1/cmdline; echo",
        ],
    );
    cmd.env("NSBOX_SECRET", "hunter2")
        .env("NSBOX_PASSED", "yes");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for want in [
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "NSBOX_PASSED=yes",
        "NSBOX_SET=given",
    ] {
        assert!(out.stdout.contains(want), "{want} missing: {}", out.stdout);
    }
    assert!(
        !out.stdout.contains("hunter2"),
        "the secret leaked: {}",
        out.stdout
    );
    assert!(!out.stdout.contains("HOME="), "{}", out.stdout);
    assert!(
        !out.stdout.contains("--env"),
        "the orchestrator's argv is visible: {}",
        out.stdout
    );
}

/// The actions of `--rlimit`: one that writes past its file size limit and one that spins past
/// its CPU limit die of the limit's signal, and their rows say which limit, with its setting
/// under the row; an action within the limits succeeds. Each ends by an event (the signal at
/// the limit), never by a timer of the test's.
fn check_rlimits(as_nobody: bool) {
    let m = marker();
    let out = run(orchestrator(
        as_nobody,
        &m,
        &[
            "--rlimit",
            "fsize=4096",
            "--rlimit",
            "cpu=1",
            "--rlimit",
            "core=0",
            // `exec`: the writer itself is the action's command, not a child of the shell
            // (which would report its SIGXFSZ as exit 153).
            "exec head -c 10000 /dev/zero > /tmp/big",
            "while :; do :; done",
            "head -c 4096 /dev/zero >/tmp/f && wc -c </tmp/f",
            "--verbose",
        ],
    ));
    let ctx = format!(
        "as_nobody={as_nobody}\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(out.status.code(), Some(1), "{ctx}");
    let big = row(&out.stdout, "exec head -c 10000 /dev/zero > /tmp/big");
    assert_eq!(big[1], "file size limit", "{ctx}");
    assert!(
        out.stdout.contains(
            "    file size limit (RLIMIT_FSIZE soft 4096, hard 4096): the command ended with signal SIGXFSZ\n"
        ),
        "{ctx}"
    );
    assert_eq!(
        row(&out.stdout, "while :; do :; done")[1],
        "cpu limit",
        "{ctx}"
    );
    assert!(
        out.stdout.contains(
            "    cpu limit (RLIMIT_CPU soft 1, hard 2): the command ended with signal SIGXCPU\n"
        ),
        "{ctx}"
    );
    // At the limit, not over it: written whole.
    let small = row(
        &out.stdout,
        "head -c 4096 /dev/zero >/tmp/f && wc -c </tmp/f",
    );
    assert_eq!(small[1], "exit 0", "{ctx}");
    assert!(
        out.stdout
            .contains("3 actions: 1 succeeded, 2 failed (2 over a limit) in "),
        "{ctx}"
    );
    assert!(out.stdout.contains("    out| 4096\n"), "{ctx}");
    assert!(out.stderr.contains(" (file size limit, "), "{ctx}");
    assert!(out.stderr.contains(" (cpu limit, "), "{ctx}");
    assert_no_leftovers(&m);
}

#[test]
fn actions_over_their_rlimits_die_and_their_rows_say_which_limit() {
    check_rlimits(false);
}

#[test]
fn actions_over_their_rlimits_as_nobody() {
    if nobody_usable("actions_over_their_rlimits_as_nobody") {
        check_rlimits(true);
    }
}

/// Bad values of the limit options exit 125 before any action runs, with a message naming the
/// option and the value.
#[test]
fn bad_limit_options_exit_125_naming_the_option_and_the_value() {
    let m = marker();
    for (args, words) in [
        (
            &["--rlimit", "fsize=4096:1024", "echo ran"][..],
            &[
                "--rlimit",
                "fsize=4096:1024",
                "the soft limit 4096 is above the hard limit 1024",
            ][..],
        ),
        (
            &["--rlimit", "bogus=1", "echo ran"],
            &["--rlimit", "bogus=1", "unknown limit \"bogus\""],
        ),
        (
            &["--rlimit", "nofile", "echo ran"],
            &["--rlimit", "expected NAME=SOFT[:HARD]"],
        ),
        (
            &["--rlimit", "cpu=soon", "echo ran"],
            &[
                "--rlimit",
                "cpu=soon",
                "\"soon\" is not a number or `unlimited`",
            ],
        ),
        (
            &["--cgroup", "--memory-max", "12Q", "echo ran"],
            &["--memory-max", "12Q", "not a number of bytes"],
        ),
        (
            &["--cgroup", "--pids-max", "0", "echo ran"],
            &["--pids-max", "0"],
        ),
        // The cgroup limits need a leaf.
        (
            &["--memory-max", "1G", "echo ran"],
            &["--cgroup-parent", "--cgroup"],
        ),
        (
            &["--pids-max", "10", "echo ran"],
            &["--cgroup-parent", "--cgroup"],
        ),
        (
            &["--best-effort-limits", "echo ran"],
            &["--cgroup-parent", "--cgroup"],
        ),
        (
            &["--cgroup", "--cgroup-parent", "/sys/fs/cgroup", "echo ran"],
            &["--cgroup-parent", "--cgroup", "cannot be used with"],
        ),
    ] {
        let out = run(orchestrator(false, &m, args));
        let ctx = format!("{args:?}: stdout {:?} stderr {:?}", out.stdout, out.stderr);
        assert_eq!(out.status.code(), Some(125), "{ctx}");
        assert!(out.stdout.is_empty(), "an action ran: {ctx}");
        for w in words {
            assert!(out.stderr.contains(w), "stderr lacks {w:?}: {ctx}");
        }
    }
    assert_no_leftovers(&m);
}

/// An orchestrator working in a directory the default view hides (under /tmp, which the view
/// replaces with a fresh tmpfs): its actions start in `/`, as with bubblewrap, not in the
/// hidden directory. Inherited as it was, the directory still showed the host's files in it
/// (read-only, but a socket there could be connected to), and its path did not exist in the
/// view (a pyenv shim failed on `cd "$PWD"`).
#[test]
fn an_orchestrator_in_a_hidden_directory_starts_its_actions_in_the_root() {
    let dir = temp_path("hidden-cwd");
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Scratch(dir.clone());
    std::fs::write(dir.join("host-file"), "").unwrap();
    let m = marker();
    let action =
        "pwd; if [ -e host-file ]; then echo 'host file: seen'; else echo 'host file: hidden'; fi";
    let out = orchestrator(false, &m, &["-v", action])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert!(lines.contains(&"out| host file: hidden"), "{stdout}");
    assert!(lines.contains(&"out| /"), "not started in /: {stdout}");
}

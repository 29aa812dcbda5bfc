//! The orchestrator example, end to end: a mix of actions (success, exit code, signal,
//! timeout, output on both streams, a missing program) through the built example binary,
//! as the current user and, as root, also as uid 65534; its summary table, progress lines,
//! output directory, exit codes, SIGINT handling, and that no process is left behind.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A hang guard, never an assertion on speed.
const DEADLINE: Duration = Duration::from_secs(60);
const MARKER_VAR: &str = "NSBOX_ORCH_TEST_MARKER";

/// target/<profile>/deps/X -> target/<profile>/examples/orchestrator
fn orchestrator_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join("examples").join("orchestrator");
    assert!(
        path.is_file(),
        "orchestrator example not found at {}: build it with `cargo test` (which builds \
         examples) or `cargo build --example orchestrator` for the same profile",
        path.display()
    );
    path
}

fn marker(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "nsbox-orch-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A scratch directory any user may write to, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(marker(name));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The orchestrator as the current user, or as uid/gid 65534 through setpriv.
fn orchestrator(as_nobody: bool, marker: &str, args: &[&str]) -> Command {
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(orchestrator_path());
        c
    } else {
        Command::new(orchestrator_path())
    };
    cmd.args(args)
        .env(MARKER_VAR, marker)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Run to completion within [`DEADLINE`]; `during` runs once the child has started.
fn run_with(mut cmd: Command, during: impl FnOnce(u32)) -> Output {
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = reader(child.stdout.take().map(|r| Box::new(r) as _));
    let err = reader(child.stderr.take().map(|r| Box::new(r) as _));
    during(child.id());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not end within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn run(cmd: Command) -> Output {
    run_with(cmd, |_| {})
}

/// Live processes carrying `marker` in their environment (the sandboxes inherit it).
fn leftovers(marker: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let p = entry.path();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        if stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
        {
            continue;
        }
        let environ = std::fs::read(p.join("environ")).unwrap_or_default();
        if environ
            .windows(marker.len())
            .any(|w| w == marker.as_bytes())
        {
            let cmd = std::fs::read(p.join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    found
}

fn assert_no_leftovers(marker: &str) {
    // The sandboxes die with their init; give the kernel a moment to finish.
    let start = Instant::now();
    let mut left = leftovers(marker);
    while !left.is_empty() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
        left = leftovers(marker);
    }
    for (pid, _) in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
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
sleep 5
echo hi; echo err >&2
/no/such/program --flag
";

fn check_mix(as_nobody: bool, extra: &[&str]) {
    let scratch = Scratch::new("mix");
    let file = scratch.0.join("actions.txt");
    std::fs::write(&file, MIX).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let outdir = scratch.0.join("out");
    let m = marker("mix");
    let mut args = vec![
        "--jobs",
        "3",
        "--timeout",
        "1",
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
        "as_nobody={as_nobody} {extra:?}\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(out.status.code(), Some(1), "{ctx}");

    let header = out.stdout.lines().next().unwrap_or("");
    for col in ["ACTION", "STATUS", "WALL", "CPU", "MAX RSS"] {
        assert!(header.contains(col), "no column {col}: {ctx}");
    }
    let expect = [
        ("true", "exit 0"),
        ("exit 3", "exit 3"),
        ("kill -TERM $$", "signal SIGTERM"),
        ("sleep 5", "timeout"),
        ("echo hi; echo err >&2", "exit 0"),
        (
            "/no/such/program --flag",
            "error: exec /no/such/program: No such file or directory (ENOENT)",
        ),
    ];
    for (action, status) in expect {
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
        if action == "sleep 5" {
            assert!((0.9..4.0).contains(&wall), "timeout after {wall}s: {ctx}");
        } else {
            assert!(wall < 4.0, "{action} took {wall}s: {ctx}");
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
    assert!(out.stderr.contains("] FAILED: sleep 5 (timeout, "), "{ctx}");
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
        eprintln!("SKIPPED: {test}: needs root to switch to uid 65534");
        return false;
    }
    let probe = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(orchestrator_path())
        .arg("--help")
        .stdout(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: {test}: setpriv missing or the example is not executable by uid 65534");
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
    let m = marker("ok");
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
    let m = marker("usage");
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

#[test]
fn sigint_kills_the_running_sandboxes() {
    let scratch = Scratch::new("sigint");
    let flag = scratch.0.join("started");
    let m = marker("sigint");
    let first = format!("touch {}; sleep 30", flag.display());
    let cmd = orchestrator(false, &m, &["-j", "2", &first, "sleep 31", "sleep 32"]);
    let start = Instant::now();
    let out = run_with(cmd, |pid| {
        while !flag.exists() {
            assert!(start.elapsed() < DEADLINE, "the first action never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
    });
    let ctx = format!("stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.status.code(), Some(130), "{ctx}");
    assert!(start.elapsed() < Duration::from_secs(20), "{ctx}");
    assert_eq!(row(&out.stdout, "sleep 32")[1], "cancelled", "{ctx}");
    assert!(
        out.stdout
            .contains("3 actions: 0 succeeded, 0 failed, 3 cancelled in "),
        "{ctx}"
    );
    assert_no_leftovers(&m);
}

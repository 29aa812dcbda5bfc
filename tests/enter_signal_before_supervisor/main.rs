//! No signal is lost between `enter()` and the Supervisor's start: a SIGUSR1 sent to the outer
//! process while pid 1 has not yet installed any handler stays pending (enter leaves the
//! forwarded signals blocked) and reaches the main command once the Supervisor runs.
//!
//! `harness = false`: `enter()` needs a single-threaded process. The test re-runs this binary
//! in child mode, which enters user, mount and pid namespaces, says `entered`, waits for a go
//! file, and only then starts its Supervisor. The test sends the signal, waits until it is
//! pending in pid 1 (its host pid's `/proc/PID/status`), and only then writes the go file.

#[path = "../support/mod.rs"]
mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use nsbox::{Namespaces, Supervisor, enter, exit_as_status};

use support::*;

const CHILD: &str = "signal-before-supervisor";
const GO_VAR: &str = "NSBOX_TEST_GO_FILE";

fn child(go: PathBuf) -> ! {
    let mut ns = Namespaces::new();
    ns.user(true).mount(true).pid(true);
    if let Err(e) = enter(&ns) {
        eprintln!("child: enter: {e}");
        std::process::exit(125);
    }
    println!("entered");
    // No handler and no runtime yet: a signal now would be dropped by pid 1 if it were not
    // blocked. Wait for the test to have sent it (a deadline: the test's own ends first).
    let until = std::time::Instant::now() + 2 * DEADLINE;
    while !go.exists() {
        if std::time::Instant::now() > until {
            std::process::exit(124);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // If the pending SIGUSR1 arrives after the trap is set, the trap exits 7; before it, sh
    // dies by SIGUSR1. Lost, the command would never end (the test's deadline catches that).
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "trap 'exit 7' USR1; sleep 1000 & wait; exit 0"]);
    match rt.block_on(Supervisor::new().run(cmd)) {
        Ok(status) => exit_as_status(status),
        Err(e) => {
            eprintln!("child: supervisor: {e}");
            std::process::exit(125)
        }
    }
}

/// Whether signal `sig` is pending for the whole process `pid` (`ShdPnd` in its status).
fn pending(pid: i32, sig: i32) -> Result<(), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .ok_or_else(|| format!("no ShdPnd in /proc/{pid}/status"))?;
    if mask & (1 << (sig - 1)) != 0 {
        Ok(())
    } else {
        Err(format!(
            "signal {sig} not pending in pid {pid} (ShdPnd {mask:x})"
        ))
    }
}

fn a_signal_sent_before_the_supervisor_starts_reaches_the_command() -> Result<(), String> {
    let go = temp_path("go");
    let mut cmd = child_command(CHILD);
    cmd.env(GO_VAR, &go).stdout(Stdio::piped());
    let mut proc = KillOnDrop(cmd.spawn().map_err(|e| e.to_string())?);
    let result = (|| {
        let mut lines = Lines::new(proc.0.stdout.take().ok_or("no stdout")?);
        lines.expect("entered");
        // The child forked: pid 1 of the new pid namespace is its child, with signals blocked.
        let outer = proc.0.id() as i32;
        let pid1 = wait_for("pid 1 of the child's pid namespace", || {
            first_child(outer).ok_or_else(|| "no child yet".to_string())
        });
        // The outer process forwards it to pid 1, which has no handler yet.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(outer),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .map_err(|e| e.to_string())?;
        wait_for("SIGUSR1 pending in pid 1", || pending(pid1, libc::SIGUSR1));
        std::fs::write(&go, b"go").map_err(|e| e.to_string())?;
        let st = wait_deadline(&mut proc.0, "the child");
        if st.code() == Some(7) || st.signal() == Some(libc::SIGUSR1) {
            Ok(())
        } else {
            Err(format!("the command ended with {st:?}"))
        }
    })();
    let _ = std::fs::remove_file(&go);
    result
}

fn main() -> ExitCode {
    if is_child(CHILD) {
        let go = std::env::var_os(GO_VAR).expect("the go file");
        child(PathBuf::from(go));
    }
    let mut h = harness::Harness::from_args();
    h.check(
        "a_signal_sent_before_the_supervisor_starts_reaches_the_command",
        a_signal_sent_before_the_supervisor_starts_reaches_the_command,
    );
    h.finish()
}

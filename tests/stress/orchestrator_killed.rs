//! Fault: the orchestrator is SIGKILLed in the middle of a stress run (issue 5, item 2).
//!
//! This binary, re-executed in its stress mode (`--count 1000000 --marker M`), runs a long
//! stream of sandboxes, 64 at once, every command line carrying the marker. Once marker
//! processes exist, the test SIGKILLs it and checks, with a deadline, that no process with the
//! marker is left: die-with-parent must take down every sandbox (its init, its command, the
//! daemons it left) and the launcher, whichever stage each sandbox was at. Once without the
//! launcher (the inits are clones of the orchestrator), once with it (clones of the launcher,
//! with CLONE_PARENT).
//!
//! The launcher is a copy of the stress process, so it carries the marker in its command line
//! too. An init overwrites its copy of the orchestrator's command line (it shows
//! `nsbox-init`, so that the sandbox never sees the orchestrator's argv): the inits are
//! counted as the `nsbox-init` processes started after the stress run, and any of them
//! surviving is caught like a sandboxed command.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Run the stress with `--launcher` or not, SIGKILL it mid-run, and require that nothing
/// carrying its marker survives.
pub fn kill_mid_run(launcher: bool) -> Result<(), String> {
    let marker = marker();
    let mut cmd = Command::new(self_exe());
    cmd.args(["--count", "1000000", "--marker", &marker])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if launcher {
        cmd.arg("--launcher");
    }
    let mut stress = KillOnDrop(
        cmd.spawn()
            .map_err(|e| format!("start the stress run: {e}"))?,
    );
    let since = start_time(stress.0.id() as i32).ok_or("no start time for the stress run")?;
    let leftovers = |marker: &str| {
        let mut v = leftovers(marker);
        v.extend(inits_since(since));
        v
    };

    // Wait until the run is in full swing: many marker processes besides the stress itself.
    let end = Instant::now() + DEADLINE;
    loop {
        let seen = leftovers(&marker).len();
        if seen >= 40 {
            break;
        }
        if let Ok(Some(st)) = stress.0.try_wait() {
            return Err(format!("the stress run ended early ({st}) before the kill"));
        }
        if Instant::now() >= end {
            return Err(format!(
                "the stress run never got going: {seen} marker processes after {DEADLINE:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A little longer, so that sandboxes are caught at every stage (spawning, running, timing
    // out, being dropped). Not a threshold: the check below holds whenever the kill comes.
    std::thread::sleep(Duration::from_millis(300));
    let before = leftovers(&marker).len();
    stress
        .0
        .kill()
        .map_err(|e| format!("SIGKILL the stress run: {e}"))?;
    stress
        .0
        .wait()
        .map_err(|e| format!("reap the stress run: {e}"))?;

    let killed = Instant::now();
    let mut left = leftovers(&marker);
    while !left.is_empty() && killed.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(50));
        left = leftovers(&marker);
    }
    let took = killed.elapsed();
    if !left.is_empty() {
        // Clean up what this test started before failing.
        kill_all(&left);
        return Err(format!(
            "{} of the orchestrator's sandbox processes survived its SIGKILL by {took:?} \
             (launcher {launcher}):\n{}",
            left.len(),
            left.iter()
                .map(|(p, c)| format!("  {p}: {c}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    println!(
        "launcher {launcher}: {before} marker processes at the SIGKILL, none left after {took:?}"
    );
    Ok(())
}

/// When `pid` started (field 22 of /proc/PID/stat, in clock ticks since boot).
fn start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The live sandbox inits (`nsbox-init`) started at or after `since`.
fn inits_since(since: u64) -> Vec<(i32, String)> {
    pids()
        .into_iter()
        .filter(|&p| alive(p))
        .filter(|&p| stat(p).is_some_and(|s| s.comm == "nsbox-init"))
        .filter(|&p| start_time(p).is_some_and(|t| t >= since))
        .map(|p| (p, "nsbox-init".to_string()))
        .collect()
}

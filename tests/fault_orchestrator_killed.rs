//! Fault: the orchestrator is SIGKILLed in the middle of a stress run (issue 5, item 2).
//!
//! The stress example (`examples/stress.rs`, built by `cargo test` next to the tests:
//! target/<profile>/deps/X -> target/<profile>/examples/stress) runs a long stream of
//! sandboxes, 64 at once, every command line carrying a marker. Once marker processes exist,
//! the test SIGKILLs it and checks, with a deadline, that no process with the marker is left:
//! die-with-parent must take down every sandbox (its init, its command, the daemons it left)
//! and the launcher, whichever stage each sandbox was at. Once without the launcher (the inits
//! are clones of the orchestrator), once with it (clones of the launcher, with CLONE_PARENT).
//!
//! The inits and the launcher are copies of the stress process, so they carry the marker in
//! their command line too: any of them surviving is caught like a sandboxed command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long the stress run may take to get going, and the survivors to disappear. A hang
/// guard, not a speed assertion.
const DEADLINE: Duration = Duration::from_secs(60);

fn stress_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join("examples").join("stress");
    assert!(
        path.is_file(),
        "stress example not found at {}: build it with `cargo test` (which builds examples) or \
         `cargo build --example stress` for the same profile",
        path.display()
    );
    path
}

fn marker() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "nsbox-fault-killed-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Processes (but `except`) with `marker` in their command line, or in the environment
/// variable the stress example gives every sandbox (`NSBOX_STRESS_MARKER=MARKER-i`, inherited
/// by every process of the sandbox), with their command lines.
fn with_marker(marker: &str, except: u32) -> Vec<(u32, String)> {
    let m = marker.as_bytes();
    let var = format!("NSBOX_STRESS_MARKER={marker}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != except)
        .filter_map(|p| {
            let c = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let found = c.windows(m.len()).any(|w| w == m)
                || std::fs::read(format!("/proc/{p}/environ"))
                    .is_ok_and(|e| e.split(|b| *b == 0).any(|a| a.starts_with(var.as_bytes())));
            found.then(|| {
                (
                    p,
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .trim()
                        .to_owned(),
                )
            })
        })
        .collect()
}

/// The stress process, SIGKILLed and reaped if the test fails before it does so itself.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn kill_mid_run(launcher: bool) {
    let marker = marker();
    let mut cmd = Command::new(stress_path());
    cmd.args(["--count", "1000000", "--marker", &marker])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if launcher {
        cmd.arg("--launcher");
    }
    let mut stress = KillOnDrop(cmd.spawn().expect("start the stress example"));
    let pid = stress.0.id();

    // Wait until the run is in full swing: many marker processes besides the stress itself.
    let t0 = Instant::now();
    let mut seen = 0;
    while t0.elapsed() < DEADLINE {
        seen = with_marker(&marker, pid).len();
        if seen >= 40 {
            break;
        }
        if let Ok(Some(st)) = stress.0.try_wait() {
            panic!("the stress example ended early ({st}) before the kill");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        seen >= 40,
        "the stress run never got going: {seen} marker processes after {DEADLINE:?}"
    );
    // A little longer, so that sandboxes are caught at every stage (spawning, running,
    // timing out, being dropped).
    std::thread::sleep(Duration::from_millis(300));
    let before = with_marker(&marker, pid).len();
    stress.0.kill().expect("SIGKILL the stress example");
    stress.0.wait().expect("reap the stress example");

    let t1 = Instant::now();
    let mut left = with_marker(&marker, pid);
    while !left.is_empty() && t1.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(50));
        left = with_marker(&marker, pid);
    }
    let took = t1.elapsed();
    if !left.is_empty() {
        // Clean up what this test started before failing.
        for (p, _) in &left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*p as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    assert!(
        left.is_empty(),
        "{} of the orchestrator's sandbox processes survived its SIGKILL by {took:?} \
         (launcher {launcher}):\n{}",
        left.len(),
        left.iter()
            .map(|(p, c)| format!("  {p}: {c}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "launcher {launcher}: {before} marker processes at the SIGKILL, none left after {took:?}"
    );
}

#[test]
fn orchestrator_sigkilled_mid_stress_leaves_nothing() {
    kill_mid_run(false);
}

#[test]
fn orchestrator_sigkilled_mid_stress_leaves_nothing_with_launcher() {
    kill_mid_run(true);
}

//! No signal is lost between `enter()` and the Supervisor's start: a SIGUSR1 sent to the outer
//! process while pid 1 has not yet installed any handler stays pending (enter leaves the
//! forwarded signals blocked) and reaches the main command once the Supervisor runs.
//!
//! `harness = false`: `enter()` needs a single-threaded process. The test re-runs this binary
//! in child mode (NSBOX_PENDING_SIGNAL_CHILD=<go file>), which enters user, mount and pid
//! namespaces, says `entered`, waits for the go file, and only then starts its Supervisor.
//! Prints `N passed, N failed`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nsbox::{Namespaces, Supervisor, enter, exit_as_status};

const DEADLINE: Duration = Duration::from_secs(60);

fn child(go: PathBuf) -> ! {
    let mut ns = Namespaces::new();
    ns.user(true).mount(true).pid(true);
    if let Err(e) = enter(&ns) {
        eprintln!("child: enter: {e}");
        std::process::exit(125);
    }
    println!("entered");
    // No handler and no runtime yet: a signal now would be dropped by pid 1 if it were not
    // blocked. Wait for the test to have sent it.
    let until = Instant::now() + DEADLINE;
    while !go.exists() {
        if Instant::now() > until {
            std::process::exit(124);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // If the pending SIGUSR1 arrives after the trap is set, the trap exits 7; before it,
    // sh dies by SIGUSR1. Lost, the command would sleep and exit 0.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "trap 'exit 7' USR1; sleep 5 & wait; exit 0"]);
    match rt.block_on(Supervisor::new().run(cmd)) {
        Ok(status) => exit_as_status(status),
        Err(e) => {
            eprintln!("child: supervisor: {e}");
            std::process::exit(125)
        }
    }
}

fn a_signal_sent_before_the_supervisor_starts_reaches_the_command() -> Result<(), String> {
    let go = std::env::temp_dir().join(format!("nsbox-pending-signal-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let mut proc = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env("NSBOX_PENDING_SIGNAL_CHILD", &go)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let result = (|| {
        let mut line = String::new();
        BufReader::new(proc.stdout.take().ok_or("no stdout")?)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if line.trim() != "entered" {
            return Err(format!("child said {line:?}"));
        }
        // The outer process forwards it to pid 1, which has no handler yet.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(proc.id() as i32),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .map_err(|e| e.to_string())?;
        // Give the waiter the chance to forward it before pid 1 goes on (not a threshold:
        // a late forward only makes the test weaker, never wrong).
        std::thread::sleep(Duration::from_millis(100));
        std::fs::write(&go, b"go").map_err(|e| e.to_string())?;
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = proc.try_wait().map_err(|e| e.to_string())? {
                return if st.code() == Some(7) || st.signal() == Some(libc::SIGUSR1) {
                    Ok(())
                } else {
                    Err(format!(
                        "the signal was lost: the command ended with {st:?}"
                    ))
                };
            }
            if Instant::now() > until {
                return Err("the child never ended".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })();
    if result.is_err() {
        let _ = proc.kill();
    }
    let _ = proc.wait();
    let _ = std::fs::remove_file(&go);
    result
}

fn main() {
    if let Some(go) = std::env::var_os("NSBOX_PENDING_SIGNAL_CHILD") {
        child(PathBuf::from(go));
    }
    let name = "a signal sent before the supervisor starts reaches the command";
    let (passed, failed) = match a_signal_sent_before_the_supervisor_starts_reaches_the_command() {
        Ok(()) => {
            println!("test {name} ... ok");
            (1, 0)
        }
        Err(e) => {
            println!("test {name} ... FAILED: {e}");
            (0, 1)
        }
    };
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

//! Scans of the host's `/proc`: processes carrying a marker, this process's children and
//! zombies, fds, process states; and polling with a deadline (a hang guard, not a delay).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::DEADLINE;

/// The fields of `/proc/PID/stat` the tests look at.
#[derive(Clone, Debug)]
pub struct Stat {
    pub pid: i32,
    /// The command name, without its parentheses (it may hold spaces and parentheses).
    pub comm: String,
    /// `R`, `S`, `T`, `Z`, ...
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
}

/// `/proc/PID/stat` of `pid`, if it exists.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid pgrp session ...
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let mut num = || rest.next()?.parse::<i32>().ok();
    let (ppid, pgrp, session) = (num()?, num()?, num()?);
    Some(Stat {
        pid,
        comm: text.get(open + 1..close)?.to_string(),
        state,
        ppid,
        pgrp,
        session,
    })
}

/// The state letter of `pid`, if it exists.
pub fn state(pid: i32) -> Option<char> {
    stat(pid).map(|s| s.state)
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z')
}

/// Whether `pid` is gone and reaped: no `/proc` entry (a zombie keeps one).
pub fn reaped(pid: i32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Every pid in the host's `/proc`.
pub fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// `/proc/PID/cmdline` (NUL-separated arguments).
pub fn cmdline(pid: i32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/cmdline")).ok()
}

/// `/proc/PID/environ` (NUL-separated `NAME=value`; unreadable for a process that is not
/// dumpable or not ours).
pub fn environ(pid: i32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ")).ok()
}

/// The command line of `pid`, its arguments joined by spaces.
pub fn cmdline_text(pid: i32) -> String {
    cmdline(pid)
        .map(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .trim_end()
                .to_owned()
        })
        .unwrap_or_default()
}

/// The children of this process, in any state (zombies included).
pub fn children() -> Vec<Stat> {
    let me = std::process::id() as i32;
    pids()
        .into_iter()
        .filter_map(stat)
        .filter(|s| s.ppid == me)
        .collect()
}

/// The zombie children of this process.
pub fn zombie_children() -> Vec<Stat> {
    children().into_iter().filter(|s| s.state == 'Z').collect()
}

/// The processes (pid, command line) with `marker` as one of their arguments, in any pid
/// namespace. This process is never listed.
pub fn pids_with_marker(marker: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|&p| {
            cmdline(p).is_some_and(|c| c.split(|b| *b == 0).any(|a| a == marker.as_bytes()))
        })
        .map(|p| (p, cmdline_text(p)))
        .collect()
}

/// The live processes (pid, command line) with `marker` anywhere in their command line or
/// their environment (where [`super::MARKER_VAR`] puts it for everything a test starts),
/// zombies and this process excepted.
pub fn leftovers(marker: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let has = |hay: &[u8]| hay.windows(marker.len()).any(|w| w == marker.as_bytes());
    pids()
        .into_iter()
        .filter(|&p| p != me && alive(p))
        .filter(|&p| cmdline(p).is_some_and(|c| has(&c)) || environ(p).is_some_and(|e| has(&e)))
        .map(|p| (p, cmdline_text(p)))
        .collect()
}

/// SIGKILL each of `procs`, by pid (what a failing test started, so that one failure does not
/// leak into the next test).
pub fn kill_all(procs: &[(i32, String)]) {
    for (pid, _) in procs {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Wait (within [`DEADLINE`]) until no process carries `marker` ([`leftovers`]); otherwise kill
/// them and fail the test.
pub fn assert_no_leftovers(marker: &str) {
    let end = Instant::now() + DEADLINE;
    loop {
        let left = leftovers(marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= end {
            kill_all(&left);
            panic!("processes left behind after {DEADLINE:?}: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The open fds of process `pid` (`None`: this process), with what they point to.
pub fn fds(pid: Option<i32>) -> std::io::Result<BTreeMap<i32, String>> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}/fd"),
        None => "/proc/self/fd".to_string(),
    };
    Ok(std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((n, target.display().to_string()))
        })
        .collect())
}

/// The open fds of this process.
pub fn own_fds() -> BTreeMap<i32, String> {
    fds(None).expect("read /proc/self/fd")
}

/// Poll `f` (every few ms, blocking the thread) until it gives `Ok`; fail the test with
/// `what` and the last `Err` if it does not within [`DEADLINE`].
pub fn wait_for<T>(what: &str, f: impl FnMut() -> Result<T, String>) -> T {
    try_wait_for(what, f).unwrap_or_else(|e| panic!("{e}"))
}

/// [`wait_for`] that gives the failure back instead of failing the test.
pub fn try_wait_for<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let end = Instant::now() + DEADLINE;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= end => {
                return Err(format!("{what}: not within {DEADLINE:?}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// [`wait_for`] for async tests: the same poll, sleeping on the runtime.
pub async fn poll_for<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= end => panic!("{what}: not within {DEADLINE:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// `Ok` once `pid` is reaped ([`reaped`]), else what it is now: for [`wait_for`] and
/// [`poll_for`].
pub fn reaped_or_why(pid: i32) -> Result<(), String> {
    if reaped(pid) {
        Ok(())
    } else {
        Err(format!("pid {pid} is still there: {:?}", stat(pid)))
    }
}

/// Wait (within [`DEADLINE`], blocking the thread) until `pid` is reaped.
pub fn wait_reaped(pid: i32, what: &str) {
    wait_for(what, || reaped_or_why(pid))
}

/// Wait (within [`DEADLINE`]) until `pid` is reaped.
pub async fn until_reaped(pid: i32, what: &str) {
    poll_for(what, || reaped_or_why(pid)).await
}

/// The first child of `pid` (from `/proc/PID/task/PID/children`), if any.
pub fn first_child(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The mount points of this process's mount namespace (field 5 of `/proc/self/mountinfo`).
pub fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .collect()
}

/// Wait (within [`DEADLINE`], blocking the thread) until `done` holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    wait_for(what, || {
        if done() {
            Ok(())
        } else {
            Err("not yet".into())
        }
    })
}

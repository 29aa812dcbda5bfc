//! The stress run: many sandboxes of mixed outcomes at once, to prove that nothing is lost and
//! nothing leaks (issue 5, item 1).
//!
//! ```text
//! stress [--count N | --short] [--concurrency N] [--launcher] [--marker STR] [--no-userns]
//! cargo test --release --test stress -- --count 10000   # the full run: 10,000 sandboxes
//! cargo test --test stress -- --short                   # CI's short mode: 1,000 sandboxes
//! ```
//!
//! Sandbox `i` does what `i % 20` says (see [`Kind::of`]), with its parameters (exit code,
//! signal, namespaces) taken from `i / 20`, so a run is the same every time: exit codes
//! 0..=255, signal deaths (TERM, KILL, USR1, SEGV), timeouts (a `sleep` killed by SIGTERM, and
//! a command that ignores SIGTERM and is SIGKILLed after the grace; if the timeout fires before
//! that command got to ignore SIGTERM, which a loaded machine can cause, it is counted apart), children dropped while
//! running, spawns cancelled half-way, leftover daemons (killed, or waited for with
//! `wait_all`), commands that flood stdout (read fully, never read and dropped, never read
//! under a timeout), stdin and stdout round trips, `Child::kill` and `Child::signal`. Two
//! sandboxes in three have every namespace (`Namespaces::all()`: the init is pid 1 of a new
//! pid namespace); one in three has only a user namespace (the init is a child subreaper).
//!
//! Every command line carries the marker (`sh -c SCRIPT MARKER-i`) and every sandbox's
//! environment has `NSBOX_STRESS_MARKER=MARKER-i`, which all its processes inherit, so that any
//! process a sandbox leaves behind shows in `/proc/*/cmdline` or `/proc/*/environ`. Checked
//! and printed at the end:
//!
//! - wrong statuses: each status is computed from `i` and compared exactly (the code, or the
//!   signal, and `Child::timed_out`); an error or a hang (a sandbox not done after 120 s)
//!   counts as wrong too;
//! - zombies: children of this process in state Z, once every sandbox has been waited for or
//!   dropped (the background reapers of dropped children get a deadline to finish);
//! - leaked processes: processes with the marker in their command line (this process and its
//!   launcher excepted), live children other than the launcher, and, right after `wait()`,
//!   any process left by the very sandbox that was waited for;
//! - leaked fds: entries of `/proc/self/fd` after the run minus before it;
//! - RSS growth: `VmRSS` at the end minus after a warm-up of 200 sandboxes (or 3 x the
//!   concurrency, if more: the working set grows with the concurrency).
//!
//! Targets: 0, 0, 0, 0 and under 5 MiB. The last line is
//! `stress: N sandboxes, wrong statuses 0, zombies 0, leaked processes 0, leaked fds 0, rss
//! growth 1.2 MiB: PASS` (or FAIL); the exit status is 0 on PASS, 1 on FAIL, 2 on a usage
//! error. Progress goes to stderr every 10%.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use nsbox::{Child, Namespaces, Sandbox, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::support::{
    children, cmdline, cmdline_text, environ, leftovers as marked, own_fds, pids,
};

/// Run many sandboxes of mixed outcomes and check that nothing is lost or leaked.
#[derive(Parser, Debug)]
#[command(name = "stress")]
pub struct Args {
    /// How many sandboxes.
    #[arg(long, default_value_t = 10_000, conflicts_with = "short")]
    count: usize,
    /// How many at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The short mode (CI): 1,000 sandboxes.
    #[arg(long)]
    short: bool,
    /// Start nsbox's launcher (a fork server) first thing, and create every sandbox through it.
    #[arg(long)]
    launcher: bool,
    /// The string every sandboxed command line carries (default: unique to this run).
    #[arg(long)]
    marker: Option<String>,
    /// No user namespace (root only): every other namespace as usual.
    #[arg(long)]
    no_userns: bool,
    /// Sandboxes run before the RSS baseline is taken (at least 3 x the concurrency).
    #[arg(long, default_value_t = 200)]
    warmup: usize,
}

/// The per-sandbox hang guard: a sandbox not done by then counts as a wrong status.
const HANG: Duration = Duration::from_secs(120);
/// How long the leak scans wait for background reapers and dying processes.
const SETTLE: Duration = Duration::from_secs(30);
/// How much a flooding command writes.
const FLOOD: usize = 10_000_000;
/// Every sandbox gets `NSBOX_STRESS_MARKER=MARKER-i` in its environment, which every process
/// it starts inherits (a `sleep` has no room for the marker in its command line).
pub const MARKER_VAR: &str = "NSBOX_STRESS_MARKER";
const SIGNALS: [i32; 4] = [libc::SIGTERM, libc::SIGKILL, libc::SIGUSR1, libc::SIGSEGV];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    ExitCode,
    DirectExec,
    SignalDeath,
    Timeout,
    TimeoutIgnoresTerm,
    Dropped,
    CancelledSpawn,
    DaemonKilled,
    DaemonWaited,
    FloodRead,
    FloodDropped,
    FloodTimeout,
    Output,
    StdinRoundTrip,
    Kill,
    ForwardTerm,
}

impl Kind {
    fn of(i: usize) -> Kind {
        match i % 20 {
            0..=2 => Kind::ExitCode,
            3 => Kind::DirectExec,
            4 | 5 => Kind::SignalDeath,
            6 => Kind::Timeout,
            7 => Kind::TimeoutIgnoresTerm,
            8 => Kind::Dropped,
            9 => Kind::CancelledSpawn,
            10 | 11 => Kind::DaemonKilled,
            12 => Kind::DaemonWaited,
            13 => Kind::FloodRead,
            14 => Kind::FloodDropped,
            15 => Kind::FloodTimeout,
            16 => Kind::Output,
            17 => Kind::StdinRoundTrip,
            18 => Kind::Kill,
            _ => Kind::ForwardTerm,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::ExitCode => "exit code 0..=255 (sh -c 'exit N')",
            Kind::DirectExec => "true / false executed directly",
            Kind::SignalDeath => "signal death (TERM, KILL, USR1, SEGV)",
            Kind::Timeout => "timeout: sleep gets SIGTERM",
            Kind::TimeoutIgnoresTerm => "timeout: ignores SIGTERM, SIGKILL after grace",
            Kind::Dropped => "Child dropped while running",
            Kind::CancelledSpawn => "spawn() future dropped half-way",
            Kind::DaemonKilled => "setsid daemon left behind: killed",
            Kind::DaemonWaited => "setsid daemon left behind: wait_all",
            Kind::FloodRead => "10 MB to stdout, read fully",
            Kind::FloodDropped => "10 MB to stdout, never read, dropped",
            Kind::FloodTimeout => "10 MB to stdout, never read, timeout",
            Kind::Output => "output(): stdout, stderr, exit code",
            Kind::StdinRoundTrip => "100 kB through stdin and stdout",
            Kind::Kill => "Child::kill while running",
            Kind::ForwardTerm => "Child::signal(SIGTERM) while running",
        }
    }
}

/// What sandbox `i` must end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Code(i32),
    Signal(i32),
    TimedOut(i32),
}

#[derive(Default)]
struct Tally {
    runs: usize,
    wrong: usize,
    leftovers: usize,
}

struct Shared {
    marker: String,
    no_userns: bool,
    count: usize,
    started: Instant,
    done: AtomicUsize,
    wrong: AtomicUsize,
    cancelled_mid_spawn: AtomicUsize,
    slow_start: AtomicUsize,
    tally: Mutex<BTreeMap<Kind, Tally>>,
    failures: Mutex<Vec<String>>,
}

impl Shared {
    fn record(&self, i: usize, kind: Kind, wrong: Option<String>, leftovers: usize) {
        {
            let mut t = self.tally.lock().unwrap();
            let e = t.entry(kind).or_default();
            e.runs += 1;
            e.leftovers += leftovers;
            if wrong.is_some() {
                e.wrong += 1;
            }
        }
        if let Some(w) = wrong {
            self.wrong.fetch_add(1, Ordering::Relaxed);
            let mut f = self.failures.lock().unwrap();
            if f.len() < 20 {
                f.push(format!("#{i} {kind:?}: {w}"));
            }
            if f.len() <= 5 {
                eprintln!("stress: wrong: #{i} {kind:?}: {w}");
            }
        }
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if done * 10 / self.count != (done - 1) * 10 / self.count {
            eprintln!(
                "stress: {:3}% ({done}/{}) in {:.1}s, wrong statuses so far {}, rss {} KiB",
                done * 100 / self.count,
                self.count,
                self.started.elapsed().as_secs_f64(),
                self.wrong.load(Ordering::Relaxed),
                rss_kib()
            );
        }
    }

    /// The marker argument of sandbox `i`: `MARKER-i`.
    fn tag(&self, i: usize) -> String {
        format!("{}-{i}", self.marker)
    }

    fn namespaces(&self, i: usize) -> Namespaces {
        let (round, slot) = (i / 20, i % 20);
        let with_pidns = (round + slot) % 3 != 2;
        match (with_pidns, self.no_userns) {
            (true, false) => Namespaces::all(),
            (true, true) => Namespaces::all().user(false).clone(),
            (false, false) => Namespaces::new().user(true).clone(),
            (false, true) => Namespaces::new().mount(true).clone(),
        }
    }
}

fn sh(shared: &Shared, i: usize, script: &str) -> Sandbox {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", script])
        .arg(shared.tag(i))
        .env(MARKER_VAR, shared.tag(i))
        .namespaces(shared.namespaces(i))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    sb
}

fn check(expect: Expect, r: io::Result<ExitStatus>, timed_out: bool) -> Option<String> {
    let st = match r {
        Ok(st) => st,
        Err(e) => return Some(format!("expected {expect:?}, got error: {e}")),
    };
    let got_ok = match expect {
        Expect::Code(c) => st.code() == Some(c) && !timed_out,
        Expect::Signal(s) => st.signal() == Some(s) && !timed_out,
        Expect::TimedOut(s) => st.signal() == Some(s) && timed_out,
    };
    (!got_ok).then(|| format!("expected {expect:?}, got {st} (timed_out {timed_out})"))
}

async fn wait_checked(child: &mut Child, expect: Expect) -> Option<String> {
    let r = child.wait().await;
    check(expect, r, child.timed_out())
}

/// Run sandbox `i`; a description of what was wrong, if anything, and how many of its
/// processes were left right after it was waited for.
async fn run_one(shared: &Shared, i: usize) -> (Option<String>, usize) {
    let (round, slot) = (i / 20, i % 20);
    let tag = shared.tag(i);
    match Kind::of(i) {
        Kind::ExitCode => {
            let code = ((round * 3 + slot) % 256) as i32;
            let mut sb = sh(shared, i, "exit \"$1\"");
            sb.arg(code.to_string());
            (check(Expect::Code(code), sb.status().await, false), 0)
        }
        Kind::DirectExec => {
            let (prog, code) = if round % 2 == 0 {
                ("true", 0)
            } else {
                ("false", 1)
            };
            let mut sb = Sandbox::new(prog);
            sb.arg(&tag)
                .env(MARKER_VAR, &tag)
                .namespaces(shared.namespaces(i));
            (check(Expect::Code(code), sb.status().await, false), 0)
        }
        Kind::SignalDeath => {
            let sig = SIGNALS[(round * 2 + slot) % SIGNALS.len()];
            let mut sb = sh(shared, i, "ulimit -c 0; kill -s \"$1\" $$; sleep 10");
            sb.arg(signal_name(sig));
            (check(Expect::Signal(sig), sb.status().await, false), 0)
        }
        Kind::Timeout => {
            let mut sb = sh(shared, i, "sleep 1000; :");
            sb.timeout(Duration::from_millis(100 + (round % 3) as u64 * 100))
                .kill_after(Duration::from_millis(200));
            spawn_wait(&mut sb, Expect::TimedOut(libc::SIGTERM)).await
        }
        Kind::TimeoutIgnoresTerm => {
            // env ignores SIGTERM before sh runs; sh says "ready" once it runs. A SIGTERM
            // before that (the timeout firing while the command is still starting, on a
            // loaded machine) can kill it: that is counted apart, not as a wrong status.
            let mut sb = Sandbox::new("env");
            sb.args([
                "--ignore-signal=TERM",
                "sh",
                "-c",
                "echo ready; while :; do sleep 1; done",
            ])
            .arg(&tag)
            .env(MARKER_VAR, &tag)
            .namespaces(shared.namespaces(i))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .timeout(Duration::from_millis(1000))
            .kill_after(Duration::from_millis(200));
            match sb.spawn().await {
                Ok(mut child) => {
                    let mut stdout = child.stdout.take();
                    let read = async {
                        let mut v = Vec::new();
                        if let Some(r) = stdout.as_mut() {
                            let _ = r.read_to_end(&mut v).await;
                        }
                        v
                    };
                    let (out, r) = tokio::join!(read, child.wait());
                    let ready = out.starts_with(b"ready\n");
                    if !ready
                        && r.as_ref()
                            .is_ok_and(|st| st.signal() == Some(libc::SIGTERM))
                    {
                        shared.slow_start.fetch_add(1, Ordering::Relaxed);
                        return (None, 0);
                    }
                    (
                        check(Expect::TimedOut(libc::SIGKILL), r, child.timed_out()),
                        0,
                    )
                }
                Err(e) => (Some(format!("spawn: {e}")), 0),
            }
        }
        Kind::Dropped => {
            let mut sb = sh(shared, i, "sleep 1000 & sleep 1000; :");
            match sb.spawn().await {
                Ok(child) => {
                    tokio::time::sleep(Duration::from_millis((round % 20) as u64)).await;
                    drop(child);
                    (None, 0)
                }
                Err(e) => (Some(format!("spawn: {e}")), 0),
            }
        }
        Kind::CancelledSpawn => {
            let mut sb = sh(shared, i, "sleep 1000; :");
            let delay = Duration::from_millis((round % 8) as u64);
            tokio::select! {
                r = sb.spawn() => match r {
                    Ok(child) => drop(child),
                    Err(e) => return (Some(format!("spawn: {e}")), 0),
                },
                _ = tokio::time::sleep(delay) => {
                    shared.cancelled_mid_spawn.fetch_add(1, Ordering::Relaxed);
                }
            }
            (None, 0)
        }
        Kind::DaemonKilled => {
            let mut sb = sh(
                shared,
                i,
                "setsid sh -c 'while :; do sleep 1; done' \"$0\" & exit 3",
            );
            let r = spawn_wait(&mut sb, Expect::Code(3)).await;
            (r.0, r.1 + leftovers(&tag))
        }
        Kind::DaemonWaited => {
            let mut sb = sh(shared, i, "setsid sh -c 'sleep 0.2; :' \"$0\" & exit 4");
            sb.wait_all(true);
            let r = spawn_wait(&mut sb, Expect::Code(4)).await;
            (r.0, r.1 + leftovers(&tag))
        }
        Kind::FloodRead => {
            // Read through a small buffer and count: collecting 10 MB per sandbox would
            // measure malloc's appetite, not nsbox's.
            let mut sb = sh(shared, i, "head -c \"$1\" /dev/zero; :");
            sb.arg(FLOOD.to_string()).stdout(Stdio::piped());
            match sb.spawn().await {
                Ok(mut child) => {
                    let mut stdout = child.stdout.take();
                    let read = async {
                        let mut n = 0;
                        let mut buf = vec![0u8; 64 * 1024];
                        if let Some(r) = stdout.as_mut() {
                            loop {
                                match r.read(&mut buf).await? {
                                    0 => break,
                                    k => n += k,
                                }
                            }
                        }
                        io::Result::Ok(n)
                    };
                    let (n, wrong) = tokio::join!(read, wait_checked(&mut child, Expect::Code(0)));
                    match n {
                        Ok(n) if n != FLOOD => {
                            (Some(format!("read {n} bytes, expected {FLOOD}")), 0)
                        }
                        Ok(_) => (wrong, 0),
                        Err(e) => (Some(format!("read stdout: {e}")), 0),
                    }
                }
                Err(e) => (Some(format!("spawn: {e}")), 0),
            }
        }
        Kind::FloodDropped => {
            let mut sb = sh(shared, i, "head -c \"$1\" /dev/zero; :");
            sb.arg(FLOOD.to_string()).stdout(Stdio::piped());
            match sb.spawn().await {
                Ok(child) => {
                    tokio::time::sleep(Duration::from_millis(5 + (round % 20) as u64)).await;
                    drop(child);
                    (None, 0)
                }
                Err(e) => (Some(format!("spawn: {e}")), 0),
            }
        }
        Kind::FloodTimeout => {
            let mut sb = sh(shared, i, "head -c \"$1\" /dev/zero; :");
            sb.arg(FLOOD.to_string())
                .stdout(Stdio::piped())
                .timeout(Duration::from_millis(200))
                .kill_after(Duration::from_millis(200));
            match sb.spawn().await {
                Ok(mut child) => {
                    let _unread = child.stdout.take();
                    (
                        wait_checked(&mut child, Expect::TimedOut(libc::SIGTERM)).await,
                        0,
                    )
                }
                Err(e) => (Some(format!("spawn: {e}")), 0),
            }
        }
        Kind::Output => {
            let code = ((round * 7 + 1) % 256) as i32;
            let mut sb = sh(shared, i, "echo out \"$0\"; echo err >&2; exit \"$1\"");
            sb.arg(code.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            match sb.output().await {
                Ok(out) => {
                    let want = format!("out {tag}\n");
                    if out.stdout != want.as_bytes() || out.stderr != b"err\n" {
                        (
                            Some(format!(
                                "stdout {:?} stderr {:?}",
                                String::from_utf8_lossy(&out.stdout),
                                String::from_utf8_lossy(&out.stderr)
                            )),
                            0,
                        )
                    } else {
                        (check(Expect::Code(code), Ok(out.status), false), 0)
                    }
                }
                Err(e) => (Some(format!("output: {e}")), 0),
            }
        }
        Kind::StdinRoundTrip => {
            let mut sb = sh(shared, i, "cat; exit 7");
            sb.stdin(Stdio::piped()).stdout(Stdio::piped());
            let data: Vec<u8> = (0..100_000).map(|k| (k * 31 + i) as u8).collect();
            match sb.spawn().await {
                Ok(mut child) => {
                    let mut stdin = child.stdin.take();
                    let write = async {
                        if let Some(s) = stdin.as_mut() {
                            s.write_all(&data).await?;
                        }
                        drop(stdin);
                        io::Result::Ok(())
                    };
                    match tokio::try_join!(write, child.wait_with_output()) {
                        Ok((_, out)) if out.stdout != data => (
                            Some(format!("round trip gave {} bytes back", out.stdout.len())),
                            0,
                        ),
                        Ok((_, out)) => (check(Expect::Code(7), Ok(out.status), false), 0),
                        Err(e) => (Some(format!("round trip: {e}")), 0),
                    }
                }
                Err(e) => (Some(format!("spawn: {e}")), 0),
            }
        }
        Kind::Kill => {
            let mut sb = sh(shared, i, "sleep 1000; :");
            match sb.spawn().await {
                Ok(mut child) => {
                    tokio::time::sleep(Duration::from_millis((round % 10) as u64)).await;
                    if let Err(e) = child.start_kill() {
                        return (Some(format!("start_kill: {e}")), 0);
                    }
                    (
                        wait_checked(&mut child, Expect::Signal(libc::SIGKILL)).await,
                        0,
                    )
                }
                Err(e) => (Some(format!("spawn: {e}")), 0),
            }
        }
        Kind::ForwardTerm => {
            let mut sb = sh(shared, i, "sleep 1000; :");
            match sb.spawn().await {
                Ok(mut child) => {
                    tokio::time::sleep(Duration::from_millis((round % 10) as u64)).await;
                    if let Err(e) = child.signal(libc::SIGTERM) {
                        return (Some(format!("signal: {e}")), 0);
                    }
                    (
                        wait_checked(&mut child, Expect::Signal(libc::SIGTERM)).await,
                        0,
                    )
                }
                Err(e) => (Some(format!("spawn: {e}")), 0),
            }
        }
    }
}

async fn spawn_wait(sb: &mut Sandbox, expect: Expect) -> (Option<String>, usize) {
    match sb.spawn().await {
        Ok(mut child) => (wait_checked(&mut child, expect).await, 0),
        Err(e) => (Some(format!("spawn: {e}")), 0),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "TERM",
        libc::SIGKILL => "KILL",
        libc::SIGUSR1 => "USR1",
        libc::SIGSEGV => "SEGV",
        _ => "0",
    }
}

// --- /proc scans (tests/support's, narrowed to this run) ---

/// Processes of sandbox `tag` (`MARKER-i`): an argument equal to it, or the environment
/// variable set to it. (Exact: `MARKER-1` is part of `MARKER-10`.)
fn leftovers(tag: &str) -> usize {
    let var = format!("{MARKER_VAR}={tag}");
    pids()
        .into_iter()
        .filter(|&p| {
            cmdline(p).is_some_and(|c| c.split(|b| *b == 0).any(|a| a == tag.as_bytes()))
                || environ(p).is_some_and(|c| c.split(|b| *b == 0).any(|a| a == var.as_bytes()))
        })
        .count()
}

/// Live processes with `marker` in their command line or environment, but `except`; with
/// their command lines. (A process whose environment is not readable, such as a non-dumpable
/// init, is found by its command line or as a live child.)
fn marker_processes(marker: &str, except: &[i32]) -> Vec<(i32, String)> {
    marked(marker)
        .into_iter()
        .filter(|(p, _)| !except.contains(p))
        .collect()
}

fn fd_list() -> Vec<String> {
    own_fds()
        .into_iter()
        .map(|(n, target)| format!("{n} -> {target}"))
        .collect()
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn run_range(shared: &Arc<Shared>, range: std::ops::Range<usize>, concurrency: usize) {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in range {
        let permit = sem.clone().acquire_owned().await.expect("semaphore closed");
        let shared = shared.clone();
        set.spawn(async move {
            let (wrong, left) = match tokio::time::timeout(HANG, run_one(&shared, i)).await {
                Ok(r) => r,
                Err(_) => (Some(format!("hung: not done after {HANG:?}")), 0),
            };
            shared.record(i, Kind::of(i), wrong, left);
            drop(permit);
        });
        while let Some(r) = set.try_join_next() {
            r.expect("a sandbox task panicked");
        }
    }
    while let Some(r) = set.join_next().await {
        r.expect("a sandbox task panicked");
    }
}

async fn run(args: Args) -> bool {
    let count = if args.short { 1000 } else { args.count };
    let me = std::process::id() as i32;
    let launcher = nsbox::launcher::pid().map(|p| p as i32);
    let marker = args.marker.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("nsbox-stress-{me}-{nanos}")
    });
    let shared = Arc::new(Shared {
        marker: marker.clone(),
        no_userns: args.no_userns,
        count: count.max(1),
        started: Instant::now(),
        done: AtomicUsize::new(0),
        wrong: AtomicUsize::new(0),
        cancelled_mid_spawn: AtomicUsize::new(0),
        slow_start: AtomicUsize::new(0),
        tally: Mutex::new(BTreeMap::new()),
        failures: Mutex::new(Vec::new()),
    });
    eprintln!(
        "stress: {count} sandboxes, concurrency {}, launcher {}, uid {}, marker {marker}, load {}",
        args.concurrency,
        launcher.map_or("no".to_owned(), |p| format!("pid {p}")),
        nix::unistd::getuid(),
        load()
    );
    let load_before = load();
    let fds_before = own_fds().len();
    let fd_list_before = fd_list();

    // The working set grows with the concurrency, so the baseline waits for 3 rounds of it.
    let warmup = args.warmup.max(3 * args.concurrency).min(count);
    run_range(&shared, 0..warmup, args.concurrency).await;
    let rss_warm = rss_kib();
    run_range(&shared, warmup..count, args.concurrency).await;
    let elapsed = shared.started.elapsed();
    let load_after = load();

    // Let the background reapers and the dying processes finish, with a deadline.
    let except: Vec<i32> = std::iter::once(me).chain(launcher).collect();
    let settle_start = Instant::now();
    let (zombies, marked, live_children, fds_after) = loop {
        let kids = children();
        let zombies = kids.iter().filter(|s| s.state == 'Z').count();
        let live: Vec<i32> = kids
            .iter()
            .filter(|s| s.state != 'Z' && Some(s.pid) != launcher)
            .map(|s| s.pid)
            .collect();
        let marked = marker_processes(&marker, &except);
        let fds = own_fds().len();
        let clean = zombies == 0 && live.is_empty() && marked.is_empty() && fds <= fds_before;
        if clean || settle_start.elapsed() > SETTLE {
            break (zombies, marked, live, fds);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let settle = settle_start.elapsed();
    let rss_end = rss_kib();

    let wrong = shared.wrong.load(Ordering::Relaxed);
    let tally = shared.tally.lock().unwrap();
    let after_wait: usize = tally.values().map(|t| t.leftovers).sum();
    let leaked_processes = marked.len() + live_children.len() + after_wait;
    let leaked_fds = fds_after.saturating_sub(fds_before);
    let growth_mib = (rss_end as f64 - rss_warm as f64) / 1024.0;
    let pass = wrong == 0
        && zombies == 0
        && leaked_processes == 0
        && leaked_fds == 0
        && growth_mib < 5.0
        && tally.values().map(|t| t.runs).sum::<usize>() == count;

    println!(
        "{:<46} {:>6} {:>6} {:>9}",
        "kind", "runs", "wrong", "leftover"
    );
    for (kind, t) in tally.iter() {
        println!(
            "{:<46} {:>6} {:>6} {:>9}",
            kind.describe(),
            t.runs,
            t.wrong,
            t.leftovers
        );
    }
    println!();
    let rows: Vec<(&str, String)> = vec![
        ("sandboxes", count.to_string()),
        ("concurrency", args.concurrency.to_string()),
        (
            "launcher",
            if launcher.is_some() { "yes" } else { "no" }.to_owned(),
        ),
        ("uid", nix::unistd::getuid().to_string()),
        (
            "duration",
            format!(
                "{:.1} s ({:.0} sandboxes/s)",
                elapsed.as_secs_f64(),
                count as f64 / elapsed.as_secs_f64().max(1e-9)
            ),
        ),
        (
            "load before / after",
            format!("{load_before} / {load_after}"),
        ),
        (
            "spawns cancelled half-way",
            shared
                .cancelled_mid_spawn
                .load(Ordering::Relaxed)
                .to_string(),
        ),
        (
            "SIGTERM before the command ignored it",
            format!(
                "{} (the timeout fired while the command was still starting: load, not a \
                 wrong status)",
                shared.slow_start.load(Ordering::Relaxed)
            ),
        ),
        ("wrong statuses (target 0)", wrong.to_string()),
        ("zombies (target 0)", zombies.to_string()),
        (
            "leaked processes (target 0)",
            format!(
                "{leaked_processes} (marker {}, live children {}, left right after wait {after_wait})",
                marked.len(),
                live_children.len()
            ),
        ),
        (
            "leaked fds (target 0)",
            format!("{leaked_fds} ({fds_before} before, {fds_after} after)"),
        ),
        (
            "rss growth (target < 5 MiB)",
            format!(
                "{growth_mib:.1} MiB ({rss_warm} KiB after {warmup} sandboxes, {rss_end} KiB at the end)"
            ),
        ),
        ("settle time", format!("{:.1} s", settle.as_secs_f64())),
    ];
    for (k, v) in rows {
        println!("{k:<38} {v}");
    }
    let failures = shared.failures.lock().unwrap();
    for f in failures.iter() {
        println!("wrong: {f}");
    }
    for (p, c) in marked.iter().take(10) {
        println!("leaked: pid {p}: {c}");
    }
    for p in live_children.iter().take(10) {
        println!("leaked: live child pid {p}: {}", cmdline_text(*p));
    }
    if leaked_fds > 0 {
        for l in fd_list() {
            if !fd_list_before.contains(&l) {
                println!("leaked fd: {l}");
            }
        }
    }
    println!(
        "stress: {count} sandboxes, wrong statuses {wrong}, zombies {zombies}, leaked processes \
         {leaked_processes}, leaked fds {leaked_fds}, rss growth {growth_mib:.1} MiB: {}",
        if pass { "PASS" } else { "FAIL" }
    );
    pass
}

/// The stress run with `args` (the process's own arguments), started first thing in `main`
/// (the launcher, with `--launcher`, must start while the process has one thread). Exits 0 on
/// PASS, 1 on FAIL, 2 on a usage error.
pub fn main(args: Vec<String>) -> ExitCode {
    let args = Args::parse_from(args);
    if args.launcher
        && let Err(e) = nsbox::launcher::start()
    {
        eprintln!("stress: start the launcher: {e}");
        return ExitCode::from(2);
    }
    if args.no_userns && !nix::unistd::geteuid().is_root() {
        eprintln!("stress: --no-userns needs root");
        return ExitCode::from(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let pass = rt.block_on(run(args));
    drop(rt);
    if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

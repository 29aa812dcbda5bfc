//! orchestrator: run a list of shell actions concurrently, each in its own sandbox, and print
//! a summary table (action, status, wall time, CPU time, max RSS).
//!
//! ```text
//! orchestrator [OPTIONS] [ACTION]...
//! orchestrator [OPTIONS] --file PATH
//! ```
//!
//! Actions come from `--file` (one per line; blank lines and lines starting with `#` are
//! skipped; `-` reads stdin) or from the command line, one argument each. An action may
//! start with a label in brackets, `[lib/foo.o] cc -O2 -c lib/foo.c -o lib/foo.o`: the label
//! names it in the progress and the summary (without one, the end of the command does, since
//! that is what tells build commands apart). Like make(1), an
//! action without shell syntax (`gcc -c a.c`) is executed directly and anything else
//! (`cd src && make`, `exit 3`, `echo $HOME`) runs as `sh -c ACTION`; `--always-shell`
//! turns the shortcut off. A program that cannot be executed is then a spawn error
//! (`error: exec ...`) rather than the shell's exit 127.
//!
//! Every action gets its own [`Sandbox`]: by default new user, mount, pid (with a fresh
//! `/proc`), uts, ipc and network namespaces (`Namespaces::all()`: the network holds only
//! `lo`), and sees the host's files read-only with a fresh tmpfs on `/tmp` (`--writable PATH`
//! lets it write PATH, `--host-fs` everywhere this process may). An action's environment is only `PATH=/usr/local/bin:/usr/bin:/bin` and the
//! variables named with `--env` (never the orchestrator's whole environment, which may hold
//! credentials). `--net` keeps the host's network; `--no-namespaces` creates none (the action still
//! runs under its own reaper, which kills what it leaves behind). Stdin is `/dev/null`;
//! stdout and stderr are captured. The sandboxes are created through the launcher (a fork
//! server started first thing in `main`) unless `--no-launcher` is given.
//!
//! Resource limits: `--rlimit NAME=SOFT[:HARD]` (repeatable) sets an rlimit of every action
//! (NAME as prlimit(1) spells it: nofile, nproc, cpu, fsize, core, as, stack, memlock; each
//! value a number or `unlimited`; `NAME=N` sets both limits to N, but `cpu=N` gets the hard
//! limit N+1, so that the soft limit's SIGXCPU ends the action before the hard limit's
//! SIGKILL). `--cgroup-parent DIR` puts each action in a cgroup v2 leaf of its own under DIR
//! (`--cgroup`: under this process's own cgroup), with `--memory-max BYTES` (K, M, G, T
//! suffixes) and `--pids-max N` as its memory.max and pids.max; a limit whose controller is
//! not enabled for DIR's children fails every action (the error says what is missing) unless
//! `--best-effort-limits` is given, which runs them without it and warns once. An action ended
//! by a limit says so in its status: `cpu limit` (SIGXCPU), `file size limit` (SIGXFSZ), `out
//! of memory` (the leaf's OOM kill), `process limit` (a fork refused at pids.max), with the
//! limit's setting and how the command ended under its row. The rlimit reasons are read from
//! the signal that killed the action's command itself: a shell that runs the writer as a child
//! reports it as `exit 153` (128 + SIGXFSZ); `exec` the last command to see the reason.
//!
//! While it runs, a progress bar is drawn on stderr when stderr is a terminal, and one line
//! per finished action is printed otherwise:
//!
//! ```text
//! [ 3/10] done: make -j8 (exit 0, 1.20s)
//! ```
//!
//! At the end the summary table goes to stdout, with the captured output of every failed
//! action (of every action with `--verbose`) under its row; `--output-dir DIR` also writes
//! `DIR/N.stdout` and `DIR/N.stderr` for every action (N is its 1-based position).
//!
//! Exit status: 0 when every action succeeded (exit 0), 1 otherwise, 125 on a usage error
//! (bad option, unreadable action file, no action given), 130 when interrupted (SIGINT: the
//! running sandboxes are killed and the summary is printed).
//!
//! ```text
//! cargo run --example orchestrator -- --jobs 4 --timeout 60 'make -C a' 'make -C b' 'cargo test'
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use nsbox::{Cgroup, EndReason, Filesystem, Namespaces, Resource, Rusage, Sandbox, Stdio};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc};

#[derive(Parser, Debug)]
#[command(
    name = "orchestrator",
    group = clap::ArgGroup::new("leaf").args(["cgroup_parent", "cgroup"]),
    about = "Run shell actions concurrently, each in its own set of Linux namespaces, and summarize",
    after_help = "Exit status: 0 if every action exited 0; 1 otherwise; 125 on a usage error; \
                  130 when interrupted.\n\n\
                  An action without shell syntax is executed directly (like make); anything \
                  else runs as `sh -c ACTION`."
)]
struct Args {
    /// Read the actions from PATH, one per line (`#` comments and blank lines skipped; `-` is stdin; `[LABEL] ACTION` names one)
    #[arg(short = 'f', long, value_name = "PATH", conflicts_with = "actions")]
    file: Option<PathBuf>,
    /// How many actions run at once [default: the number of CPUs]
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Time limit per action in seconds (fractions allowed): SIGTERM, then SIGKILL after --kill-after
    #[arg(short = 't', long, value_name = "SECS", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Grace between a timeout's SIGTERM and the SIGKILL of the whole sandbox, in seconds
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "5")]
    kill_after: Duration,
    /// Keep the host's network (no new network namespace)
    #[arg(long)]
    net: bool,
    /// Create no namespaces at all (each action still runs under its own reaper)
    #[arg(long, conflicts_with_all = ["net", "hostname"])]
    no_namespaces: bool,
    /// Hostname inside the sandboxes
    #[arg(long, value_name = "NAME")]
    hostname: Option<OsString>,
    /// Pass the environment variable NAME (from this process's environment) or set NAME=VALUE in every action; repeatable. Actions get only PATH=/usr/local/bin:/usr/bin:/bin and these, never this process's whole environment
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Let the actions write PATH (by default they see the host read-only, with a fresh /tmp); repeatable
    #[arg(
        short = 'w',
        long,
        value_name = "PATH",
        conflicts_with = "no_namespaces"
    )]
    writable: Vec<PathBuf>,
    /// Let the actions write wherever this process may (the host's mounts as they are)
    #[arg(long, conflicts_with_all = ["no_namespaces", "writable"])]
    host_fs: bool,
    /// Run every action with `sh -c`, even one without shell syntax
    #[arg(long)]
    always_shell: bool,
    /// Clone every sandbox from this process instead of through the launcher (a fork server
    /// started before the runtime, see nsbox::launcher)
    #[arg(long)]
    no_launcher: bool,
    /// Also write each action's stdout and stderr to DIR/N.stdout and DIR/N.stderr
    #[arg(short = 'o', long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Show the output of every action in the summary (not only of the failed ones)
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Set each action's rlimit NAME (nofile, nproc, cpu, fsize, core, as, stack, memlock) to SOFT and HARD (numbers or `unlimited`; without HARD both are SOFT, but cpu=N gets the hard limit N+1, so that SIGXCPU comes before SIGKILL); repeatable
    #[arg(long, value_name = "NAME=SOFT[:HARD]", value_parser = parse_rlimit)]
    rlimit: Vec<(Resource, u64, u64)>,
    /// Put each action in a cgroup v2 leaf of its own under DIR (a cgroup v2 directory this user may write, with the controllers of the limits enabled for its children)
    #[arg(long, value_name = "DIR", conflicts_with = "cgroup")]
    cgroup_parent: Option<PathBuf>,
    /// Like --cgroup-parent, with this process's own cgroup v2 as the parent
    #[arg(long)]
    cgroup: bool,
    /// memory.max of each action's leaf in bytes (K, M, G, T: powers of 1024); needs --cgroup-parent or --cgroup
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, requires = "leaf")]
    memory_max: Option<u64>,
    /// pids.max of each action's leaf: its most processes and threads, the sandbox's init included; needs --cgroup-parent or --cgroup
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), requires = "leaf")]
    pids_max: Option<u64>,
    /// Run without the cgroup limits whose controller is missing (a warning names them) instead of failing every action
    #[arg(long, requires = "leaf")]
    best_effort_limits: bool,
    /// The actions (instead of --file)
    #[arg(value_name = "ACTION")]
    actions: Vec<String>,
}

/// The fixed PATH, then each `--env`: `NAME=VALUE` as given, `NAME` from this process's
/// environment (skipped when unset). A secret in the orchestrator's environment (a token,
/// SSH_AUTH_SOCK) reaches an action only when named.
fn action_env(names: &[String]) -> Vec<(OsString, OsString)> {
    let mut env: BTreeMap<OsString, OsString> = BTreeMap::new();
    env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
    for e in names {
        match e.split_once('=') {
            Some((k, v)) => {
                env.insert(k.into(), v.into());
            }
            None => {
                if let Some(v) = std::env::var_os(e) {
                    env.insert(e.into(), v);
                }
            }
        }
    }
    env.into_iter().collect()
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(v).map_err(|_| format!("{s:?} is not a valid number of seconds"))
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_secs(s)?;
    if d.is_zero() {
        return Err("the timeout must be more than 0".into());
    }
    Ok(d)
}

/// A limit's value as the summary shows it.
fn show_limit(v: u64) -> String {
    if v == Resource::INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// `NAME=SOFT[:HARD]` of `--rlimit` ([`Resource::parse_setting`]).
fn parse_rlimit(s: &str) -> Result<(Resource, u64, u64), String> {
    Resource::parse_setting(s)
}

/// A number of bytes, with an optional K, M, G or T (powers of 1024).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a number of bytes (as 536870912, 512M or 2G)");
    let (digits, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Everything an action's task needs, shared.
struct Config {
    namespaces: Option<Namespaces>,
    /// The actions' filesystem view (with namespaces).
    filesystem: Option<Filesystem>,
    /// The actions' whole environment.
    env: Vec<(OsString, OsString)>,
    timeout: Option<Duration>,
    kill_after: Duration,
    always_shell: bool,
    /// `--rlimit`, in order (one per resource).
    rlimits: Vec<(Resource, u64, u64)>,
    /// The leaf's parent and limits, with `--cgroup-parent` or `--cgroup`.
    cgroup: Option<Cgroup>,
    /// `--memory-max` and `--pids-max`, for the summary.
    memory_max: Option<u64>,
    pids_max: Option<u64>,
}

/// How an action ended.
#[derive(Debug)]
enum Outcome {
    /// The command ended on its own.
    Exited(ExitStatus),
    /// The timeout fired (the status is how the command died then).
    TimedOut(ExitStatus),
    /// Spawn or wait failed.
    Error(String),
    /// Never finished: the orchestrator was interrupted.
    Cancelled,
}

/// The record of one action.
struct Report {
    outcome: Outcome,
    /// Why it ended, once it has.
    end_reason: Option<EndReason>,
    /// The cgroup limits not applied (`--best-effort-limits` without their controller).
    unapplied: Vec<String>,
    /// The setting of the limit that ended it (`RLIMIT_CPU soft 1, hard 2`).
    setting: Option<String>,
    wall: Option<Duration>,
    usage: Option<Rusage>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Report {
    fn success(&self) -> bool {
        matches!(self.outcome, Outcome::Exited(s) if s.success())
    }

    /// The limit that ended the action: `cpu limit`, `file size limit`, `out of memory`,
    /// `process limit`; `None` for an end of its own, a timeout, an error.
    fn limit(&self) -> Option<&'static str> {
        if !matches!(self.outcome, Outcome::Exited(_)) {
            return None;
        }
        match self.end_reason? {
            EndReason::CpuLimit => Some("cpu limit"),
            EndReason::FileSizeLimit => Some("file size limit"),
            EndReason::OutOfMemory => Some("out of memory"),
            EndReason::ProcessLimit => Some("process limit"),
            _ => None,
        }
    }

    /// The status column: `exit N`, `signal NAME`, `timeout`, a limit (`cpu limit`, `file
    /// size limit`, `out of memory`, `process limit`), `error: message`, `cancelled`.
    fn status(&self) -> String {
        if let Some(limit) = self.limit() {
            return limit.into();
        }
        match &self.outcome {
            Outcome::Exited(s) => describe(*s),
            Outcome::TimedOut(_) => "timeout".into(),
            // The table shows the first line, without the hint; the full text goes below.
            Outcome::Error(msg) => {
                let first = msg.lines().next().unwrap_or("");
                let short = first.split(" (hint: ").next().unwrap_or(first);
                format!("error: {short}")
            }
            Outcome::Cancelled => "cancelled".into(),
        }
    }
}

fn describe(s: ExitStatus) -> String {
    if let Some(code) = s.code() {
        return format!("exit {code}");
    }
    let Some(sig) = s.signal() else {
        return format!("{s}");
    };
    let name = nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("{sig}"));
    if s.core_dumped() {
        format!("signal {name} (core dumped)")
    } else {
        format!("signal {name}")
    }
}

/// Shell syntax that makes an action go through `sh -c` (GNU make's list, plus quoting).
const SHELL_CHARS: &[char] = &[
    '#', ';', '"', '\'', '*', '?', '[', ']', '&', '|', '<', '>', '(', ')', '{', '}', '$', '`', '^',
    '~', '!', '\\', '=', '%', '\n',
];

/// Shell builtins and keywords: as a first word, they need the shell.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "alias", "bg", "break", "case", "cd", "command", "continue", "declare", "do", "done",
    "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi", "for", "function",
    "getopts", "hash", "if", "jobs", "local", "read", "readonly", "return", "set", "shift",
    "source", "test", "[", "then", "times", "trap", "type", "typeset", "ulimit", "umask",
    "unalias", "unset", "until", "wait", "while",
];

/// The sandbox for one action: the program itself when the action is plain words, else
/// `sh -c ACTION`.
fn sandbox_for(action: &str, cfg: &Config) -> Sandbox {
    let words: Vec<&str> = action.split_ascii_whitespace().collect();
    let direct = !cfg.always_shell
        && !action.contains(SHELL_CHARS)
        && words.first().is_some_and(|w| !SHELL_WORDS.contains(w));
    let mut sb = if direct {
        let mut sb = Sandbox::new(words[0]);
        sb.args(&words[1..]);
        sb
    } else {
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", action]);
        sb
    };
    sb.env_clear()
        .envs(cfg.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_after(cfg.kill_after);
    if let Some(ns) = &cfg.namespaces {
        sb.namespaces(ns.clone());
    }
    if let Some(fs) = &cfg.filesystem {
        sb.filesystem(fs.clone());
    }
    if let Some(t) = cfg.timeout {
        sb.timeout(t);
    }
    for &(resource, soft, hard) in &cfg.rlimits {
        sb.rlimit(resource, soft, hard);
    }
    if let Some(cg) = &cfg.cgroup {
        sb.cgroup(cg.clone());
    }
    sb
}

/// What set the limit that ended an action, for the line under its row.
fn limit_setting(reason: EndReason, cfg: &Config) -> Option<String> {
    let rlimit = |r: Resource| {
        cfg.rlimits
            .iter()
            .find(|(x, _, _)| *x == r)
            .map(|&(r, soft, hard)| {
                format!(
                    "{} soft {}, hard {}",
                    r.name(),
                    show_limit(soft),
                    show_limit(hard)
                )
            })
    };
    match reason {
        EndReason::CpuLimit => rlimit(Resource::Cpu),
        EndReason::FileSizeLimit => rlimit(Resource::Fsize),
        EndReason::OutOfMemory => cfg.memory_max.map(|m| format!("memory.max {}", bytes(m))),
        EndReason::ProcessLimit => cfg.pids_max.map(|n| format!("pids.max {n}")),
        _ => None,
    }
}

async fn read_all(r: Option<nsbox::ChildStdout>) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(mut r) = r {
        // A read error only truncates the capture; the status is what matters.
        let _ = r.read_to_end(&mut v).await;
    }
    v
}

/// Run one action to completion.
async fn run_action(action: &str, cfg: &Config) -> Report {
    let start = Instant::now();
    let mut child = match sandbox_for(action, cfg).spawn().await {
        Ok(child) => child,
        Err(e) => {
            return Report {
                outcome: Outcome::Error(e.to_string()),
                end_reason: None,
                unapplied: Vec::new(),
                setting: None,
                wall: Some(start.elapsed()),
                usage: None,
                stdout: Vec::new(),
                stderr: Vec::new(),
            };
        }
    };
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let (status, stdout, stderr) = tokio::join!(child.wait(), read_all(out), read_all(err));
    let wall = start.elapsed();
    let outcome = match status {
        Ok(s) if child.timed_out() => Outcome::TimedOut(s),
        Ok(s) => Outcome::Exited(s),
        Err(e) => Outcome::Error(format!("wait: {e}")),
    };
    let end_reason = child.end_reason();
    Report {
        outcome,
        end_reason,
        unapplied: child.unapplied_limits().to_vec(),
        setting: end_reason.and_then(|r| limit_setting(r, cfg)),
        wall: Some(wall),
        usage: child.resource_usage(),
        stdout,
        stderr,
    }
}

enum Event {
    Started(usize),
    Done(usize, Box<Report>),
}

/// The terminal's width in columns (of stderr), 80 if unknown.
fn term_width() -> usize {
    // SAFETY: TIOCGWINSZ writes a winsize into the valid, zeroed struct we pass.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            return ws.ws_col as usize;
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(80)
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// An action as one line (a file's lines are already single lines; arguments may not be).
fn one_line(action: &str) -> String {
    action.replace('\n', "⏎")
}

/// `s` cut to its last `max` characters, with an ellipsis in front when cut: the end of a
/// build command (`... -o lib/foo.o lib/foo.c`) is what tells actions apart.
fn clip_left(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let mut t = String::from("…");
    t.extend(s.chars().skip(n - max.saturating_sub(1)));
    t
}

/// One action: the command, and the label that names it in the progress and the summary.
#[derive(Clone, Debug)]
struct Action {
    label: Option<String>,
    command: String,
}

impl Action {
    /// `[LABEL] COMMAND` (a label has no space and is followed by one), or just COMMAND. A
    /// shell test such as `[ -f x ] && make` has a space after the bracket, so it is no label.
    fn parse(text: &str) -> Action {
        if let Some(rest) = text.strip_prefix('[')
            && let Some((label, command)) = rest.split_once(']')
            && !label.is_empty()
            && !label.contains(char::is_whitespace)
            && command.starts_with(char::is_whitespace)
            && !command.trim().is_empty()
        {
            return Action {
                label: Some(label.to_string()),
                command: command.trim_start().to_string(),
            };
        }
        Action {
            label: None,
            command: text.to_string(),
        }
    }

    /// What names the action: its label, or the command on one line.
    fn name(&self) -> String {
        match &self.label {
            Some(l) => l.clone(),
            None => one_line(&self.command),
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Progress on stderr: a bar redrawn with `\r` on a terminal, plain lines otherwise.
struct Progress {
    actions: Arc<Vec<Action>>,
    tty: bool,
    total: usize,
    done: usize,
    failed: usize,
    start: Instant,
    running: BTreeMap<usize, Instant>,
    drawn: bool,
    last_draw: Instant,
}

impl Progress {
    fn started(&mut self, idx: usize) {
        self.running.insert(idx, Instant::now());
        self.draw(false);
    }

    fn finished(&mut self, action: &Action, r: &Report) {
        self.done += 1;
        if !r.success() {
            self.failed += 1;
        }
        let width = self.total.to_string().len();
        let wall = r.wall.map(secs).unwrap_or_else(|| "-".into());
        let head = format!(
            "[{:>width$}/{}] {}: ",
            self.done,
            self.total,
            if r.success() { "done" } else { "FAILED" },
        );
        let tail = format!(" ({}, {wall})", r.status());
        let name = action.name();
        let mut err = std::io::stderr().lock();
        if self.tty {
            // Failures scroll above the bar; successes only move it. On a narrow terminal
            // only the action's name is shortened (from the left, keeping its end): the
            // reason is never cut.
            if !r.success() {
                self.clear(&mut err);
                let room = term_width()
                    .saturating_sub(1 + head.chars().count() + tail.chars().count())
                    .max(16);
                let _ = writeln!(err, "{head}{}{tail}", clip_left(&name, room));
            }
        } else {
            let _ = writeln!(err, "{head}{name}{tail}");
        }
        drop(err);
        self.draw(false);
    }

    fn clear(&mut self, err: &mut impl Write) {
        if self.drawn {
            let _ = write!(err, "\r\x1b[K");
            self.drawn = false;
        }
    }

    /// Redraw the bar: `[=====>    ] 3/10  2 running  1 failed  4.2s  sleep 5 (3.1s)`, the
    /// last part being the action that has been running longest.
    fn draw(&mut self, force: bool) {
        // At most 20 redraws a second, however many actions start and end.
        if !self.tty
            || (!force && self.drawn && self.last_draw.elapsed() < Duration::from_millis(50))
        {
            return;
        }
        self.last_draw = Instant::now();
        let cols = term_width().saturating_sub(1).max(20);
        let slots = 20;
        let filled = (self.done * slots).checked_div(self.total).unwrap_or(slots);
        let mut bar = "=".repeat(filled);
        if filled < slots {
            bar.push('>');
            bar.push_str(&" ".repeat(slots - filled - 1));
        }
        let mut text = format!(
            "[{bar}] {}/{}  {} running",
            self.done,
            self.total,
            self.running.len()
        );
        if self.failed > 0 {
            text.push_str(&format!("  {} failed", self.failed));
        }
        text.push_str(&format!("  {:.1}s", self.start.elapsed().as_secs_f64()));
        // Name the action that has been running longest.
        if let Some((idx, since)) = self.running.iter().min_by_key(|(_, t)| **t) {
            let secs = format!(" ({:.1}s)", since.elapsed().as_secs_f64());
            let room = cols.saturating_sub(text.chars().count() + 2 + secs.len());
            if room >= 8 {
                let name = self.actions.get(*idx).map(Action::name).unwrap_or_default();
                text.push_str(&format!("  {}{secs}", clip_left(&name, room)));
            }
        }
        text = clip(&text, cols);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{text}");
        let _ = err.flush();
        self.drawn = true;
    }

    fn finish(&mut self) {
        let mut err = std::io::stderr().lock();
        self.clear(&mut err);
        let _ = err.flush();
    }
}

/// The summary table on stdout, with captured output under the rows that want it.
fn print_summary(
    actions: &[Action],
    reports: &[Report],
    verbose: bool,
    elapsed: Duration,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let rows: Vec<[String; 5]> = actions
        .iter()
        .zip(reports)
        .map(|(a, r)| {
            let cpu = r
                .usage
                .map(|u| secs(u.user_time + u.system_time))
                .unwrap_or_else(|| "-".into());
            let rss = r
                .usage
                .map(|u| bytes(u.max_rss_bytes))
                .unwrap_or_else(|| "-".into());
            [
                clip_left(&a.name(), 48),
                clip(&r.status(), 64),
                r.wall.map(secs).unwrap_or_else(|| "-".into()),
                cpu,
                rss,
            ]
        })
        .collect();
    let header = ["ACTION", "STATUS", "WALL", "CPU", "MAX RSS"];
    let mut w = header.map(|h| h.chars().count());
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        // Text columns left-aligned, numbers right-aligned.
        format!(
            "{:<a$}  {:<b$}  {:>c$}  {:>d$}  {:>e$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            a = w[0],
            b = w[1],
            c = w[2],
            d = w[3],
            e = w[4]
        )
        .trim_end()
        .to_string()
    };
    writeln!(out, "{}", line(header))?;
    for ((row, r), action) in rows.iter().zip(reports).zip(actions) {
        writeln!(out, "{}", line(row.each_ref().map(|s| s.as_str())))?;
        if !verbose && r.success() {
            continue;
        }
        if action.label.is_some() || action.name().chars().count() > 48 {
            writeln!(out, "    action: {}", one_line(&action.command))?;
        }
        match &r.outcome {
            Outcome::Error(msg) => writeln!(out, "    error: {msg}")?,
            Outcome::TimedOut(s) => writeln!(
                out,
                "    timed out: the command ended with {}",
                describe(*s)
            )?,
            Outcome::Exited(s) => {
                if let Some(limit) = r.limit() {
                    let setting = r
                        .setting
                        .as_ref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "    {limit}{setting}: the command ended with {}",
                        describe(*s)
                    )?;
                }
            }
            _ => {}
        }
        for (tag, text) in [("out", &r.stdout), ("err", &r.stderr)] {
            for l in String::from_utf8_lossy(text).lines() {
                writeln!(out, "    {tag}| {l}")?;
            }
        }
    }
    let ok = reports.iter().filter(|r| r.success()).count();
    // An action that never ran to its end because of Ctrl-C is cancelled, not failed.
    let count = |f: fn(&Outcome) -> bool| reports.iter().filter(|r| f(&r.outcome)).count();
    let timeouts = count(|o| matches!(o, Outcome::TimedOut(_)));
    let errors = count(|o| matches!(o, Outcome::Error(_)));
    let limits = reports.iter().filter(|r| r.limit().is_some()).count();
    let cancelled = count(|o| matches!(o, Outcome::Cancelled));
    let mut tail = Vec::new();
    for (n, what) in [
        (timeouts, "timed out"),
        (limits, "over a limit"),
        (errors, if errors == 1 { "error" } else { "errors" }),
    ] {
        if n > 0 {
            tail.push(format!("{n} {what}"));
        }
    }
    let tail = if tail.is_empty() {
        String::new()
    } else {
        format!(" ({})", tail.join(", "))
    };
    let cancelled = if cancelled > 0 {
        format!(", {cancelled} cancelled")
    } else {
        String::new()
    };
    writeln!(
        out,
        "{} action{}: {ok} succeeded, {} failed{tail}{cancelled} in {}",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        reports.len() - ok - count(|o| matches!(o, Outcome::Cancelled)),
        secs(elapsed)
    )?;
    out.flush()
}

/// The actions of `--file` (or stdin for `-`).
fn read_actions(path: &PathBuf) -> std::io::Result<Vec<Action>> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        std::fs::File::open(path)?.read_to_string(&mut text)?;
    }
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(Action::parse)
        .collect())
}

fn usage_error(msg: impl std::fmt::Display) -> ! {
    eprintln!("orchestrator: {msg}");
    std::process::exit(125)
}

fn main() {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            std::process::exit(if usage { 125 } else { 0 });
        }
    };
    let actions = match &args.file {
        Some(path) => read_actions(path)
            .unwrap_or_else(|e| usage_error(format!("read {}: {e}", path.display()))),
        None => args.actions.iter().map(|a| Action::parse(a)).collect(),
    };
    if actions.is_empty() && args.file.is_none() {
        usage_error("no action given (arguments or --file PATH); see --help");
    }
    if let Some(dir) = &args.output_dir
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        usage_error(format!("create {}: {e}", dir.display()));
    }
    // The launcher forks while the process is small and single-threaded, before the runtime;
    // the sandboxes' inits are still this process's children. Without it, each spawn clones
    // from here, which works just as well but costs more as the process grows.
    if !args.no_launcher
        && let Err(e) = nsbox::launcher::start()
    {
        eprintln!("orchestrator: warning: no launcher, cloning directly: {e}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| usage_error(format!("start the tokio runtime: {e}")));
    std::process::exit(rt.block_on(run(args, actions)));
}

/// The cgroup of `--cgroup-parent` or `--cgroup`, with the limits.
fn cgroup(args: &Args) -> Option<Cgroup> {
    let mut cg = match (&args.cgroup_parent, args.cgroup) {
        (Some(dir), _) => Cgroup::under(dir),
        (None, true) => Cgroup::detect(),
        (None, false) => return None,
    };
    if let Some(m) = args.memory_max {
        cg.memory_max(m);
    }
    if let Some(n) = args.pids_max {
        cg.pids_max(n);
    }
    cg.best_effort(args.best_effort_limits);
    Some(cg)
}

async fn run(args: Args, actions: Vec<Action>) -> i32 {
    let jobs = args.jobs.map(|j| j as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let namespaces = if args.no_namespaces {
        None
    } else {
        let mut ns = Namespaces::all();
        ns.net(!args.net);
        if let Some(h) = &args.hostname {
            ns.hostname(h.clone());
        }
        Some(ns)
    };
    let filesystem = namespaces.as_ref().map(|_| {
        if args.host_fs {
            return Filesystem::host();
        }
        let mut fs = Filesystem::sandbox_default();
        for w in &args.writable {
            fs.writable(w.clone());
        }
        fs
    });
    let cfg = Arc::new(Config {
        filesystem,
        namespaces,
        env: action_env(&args.env),
        timeout: args.timeout,
        kill_after: args.kill_after,
        always_shell: args.always_shell,
        rlimits: args.rlimit.clone(),
        cgroup: cgroup(&args),
        memory_max: args.memory_max,
        pids_max: args.pids_max,
    });
    let actions = Arc::new(actions);
    let start = Instant::now();

    // A feeder task takes a permit of the semaphore for each action in list order and spawns
    // the action's task with it; each task reports on the channel. On cancel, the feeder
    // aborts its tasks and waits for them: dropping a task's Child kills its sandbox.
    let limit = Arc::new(Semaphore::new(jobs));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (cancel_tx, mut cancel_rx) = tokio::sync::oneshot::channel::<()>();
    let feeder = {
        let (actions, cfg) = (actions.clone(), cfg.clone());
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let feed = async {
                for idx in 0..actions.len() {
                    let Ok(permit) = limit.clone().acquire_owned().await else {
                        return;
                    };
                    let (tx, cfg, actions) = (tx.clone(), cfg.clone(), actions.clone());
                    tasks.spawn(async move {
                        let _permit = permit;
                        let _ = tx.send(Event::Started(idx));
                        let report = run_action(&actions[idx].command, &cfg).await;
                        let _ = tx.send(Event::Done(idx, Box::new(report)));
                    });
                }
            };
            let mut cancelled = false;
            tokio::select! {
                _ = feed => {}
                Ok(()) = &mut cancel_rx => cancelled = true,
            }
            if !cancelled {
                let all = async { while tasks.join_next().await.is_some() {} };
                tokio::select! {
                    _ = all => return,
                    Ok(()) = &mut cancel_rx => {}
                }
            }
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        })
    };
    let mut progress = Progress {
        actions: actions.clone(),
        tty: std::io::stderr().is_terminal(),
        total: actions.len(),
        done: 0,
        failed: 0,
        start,
        running: BTreeMap::new(),
        drawn: false,
        last_draw: start,
    };
    let mut reports: Vec<Option<Report>> = actions.iter().map(|_| None).collect();
    let mut save_failed = false;
    let mut warned_unapplied = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(Event::Started(idx)) => progress.started(idx),
                Some(Event::Done(idx, report)) => {
                    progress.running.remove(&idx);
                    if let Some(dir) = &args.output_dir {
                        let n = idx + 1;
                        for (ext, data) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
                            let path = dir.join(format!("{n}.{ext}"));
                            if let Err(e) = std::fs::write(&path, data) {
                                progress.finish();
                                eprintln!("orchestrator: write {}: {e}", path.display());
                                save_failed = true;
                            }
                        }
                    }
                    if !report.unapplied.is_empty() && !warned_unapplied {
                        warned_unapplied = true;
                        progress.finish();
                        eprintln!(
                            "orchestrator: warning: the actions run without {} (--best-effort-limits: \
                             the controller is not enabled for the cgroup parent's children)",
                            report.unapplied.join(", ")
                        );
                    }
                    progress.finished(&actions[idx], &report);
                    reports[idx] = Some(*report);
                }
                None => break,
            },
            _ = tick.tick(), if progress.tty => progress.draw(true),
            _ = &mut ctrl_c => {
                interrupted = true;
                break;
            }
        }
    }
    if interrupted {
        let _ = cancel_tx.send(());
    }
    // Wait for the feeder: on cancel, until every aborted task has dropped its sandbox.
    let _ = feeder.await;
    if interrupted {
        progress.finish();
        eprintln!("orchestrator: interrupted; the running actions were killed");
    }
    progress.finish();

    let reports: Vec<Report> = reports
        .into_iter()
        .map(|r| {
            r.unwrap_or(Report {
                outcome: Outcome::Cancelled,
                end_reason: None,
                unapplied: Vec::new(),
                setting: None,
                wall: None,
                usage: None,
                stdout: Vec::new(),
                stderr: Vec::new(),
            })
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = print_summary(
        &actions,
        &reports,
        args.verbose,
        start.elapsed(),
        &mut stdout,
    ) {
        eprintln!("orchestrator: write the summary: {e}");
        return 1;
    }
    if interrupted {
        130
    } else if save_failed || !reports.iter().all(Report::success) {
        1
    } else {
        0
    }
}

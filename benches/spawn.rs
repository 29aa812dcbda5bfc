//! Spawn benchmark (issue 4): nsbox against the kernel floor, `tokio::process`, unshare(1) and
//! bubblewrap.
//!
//! ```text
//! cargo bench --bench spawn              # the full run (a few minutes; about 5 GiB of RAM)
//! cargo bench --bench spawn -- --smoke   # every code path, few iterations, 16 MiB only
//! cargo bench --bench spawn -- --no-rss  # skip the 1 GiB / 4 GiB section
//! ```
//!
//! What it measures, for `/bin/true`:
//!
//! - spawn-to-exit latency (median, p90, run count), every variant interleaved in rounds so
//!   that a change of machine load hits them all alike;
//! - throughput (spawns/s) at concurrency 1, 8 and 64 (threads for the floor, tokio tasks on a
//!   multi-threaded runtime for the rest);
//! - the latency of nsbox with user+pid+mount+uts+ipc at a bench RSS of ~16 MiB, 1 GiB and
//!   4 GiB, with a direct clone and (when nsbox has one) through the launcher;
//! - the Pss of the init of one idle sandbox (`sleep 100`).
//!
//! The floor is the same sandbox with the least work: clone(2) with the same `CLONE_NEW*`
//! flags; in the child, the setup steps nsbox's init runs for those flags, called straight
//! from `nsbox::steps` (id maps, `/` recursively slave, a fresh `/proc`, the mount lock, `lo`
//! up), then fork, execve, waitpid, `_exit`: no init loop, no report pipe, no signalfd.
//!
//! Every comparison is a ratio of figures from the same run; the targets of issue 4 are printed
//! with "met" or "NOT met". Nothing here asserts on timing: a slow machine gives slow figures,
//! never a failure. Run it on a quiet machine (the load average is printed).

use std::ffi::{CString, c_char};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Instant;

use nsbox::{Filesystem, Namespaces, Sandbox};

// ---------------------------------------------------------------------------------------------
// The launcher switch: the only place that knows whether nsbox has a launcher (issue 4 item 3).

/// Start nsbox's launcher (fork server) if nsbox has one; true if it runs. Called first thing
/// in `main`, before any thread exists and while the process is small.
fn start_launcher() -> io::Result<bool> {
    nsbox::launcher::start()?;
    Ok(true)
}

/// Whether this sandbox goes through the launcher (`false` forces the direct clone).
fn set_launcher(sb: &mut Sandbox, on: bool) {
    sb.use_launcher(on);
}

// ---------------------------------------------------------------------------------------------
// Options.

#[derive(Clone)]
struct Opts {
    smoke: bool,
    rss: bool,
    /// Only the latency rounds (no throughput, RSS or mount-table sections): for profiling
    /// one spawn at a time.
    latency_only: bool,
    /// Keep only the variants whose key contains one of these (`floor/Five`, `nsbox/Six`,
    /// `launcher`, `bwrap`...); empty: all.
    only: Vec<String>,
}

impl Opts {
    fn parse() -> Opts {
        let mut o = Opts {
            smoke: false,
            rss: true,
            latency_only: false,
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--smoke" => o.smoke = true,
                "--no-rss" => o.rss = false,
                "--latency-only" => o.latency_only = true,
                "--only" => {
                    let list = args.next().unwrap_or_default();
                    o.only.extend(list.split(',').map(String::from));
                }
                // cargo bench passes --bench; libtest filters do not apply here.
                "--bench" => {}
                "-h" | "--help" => {
                    println!(
                        "usage: spawn [--smoke] [--no-rss] [--latency-only] [--only KEY,...]\n  \
                         --smoke   few iterations, 16 MiB RSS only: checks that every path \
                         runs\n  --no-rss  skip the 1 GiB and 4 GiB latency section\n  \
                         --latency-only  only the latency rounds, one spawn at a time (for \
                         profiling)\n  --only    keep the \
                         variants whose key contains one of these words (floor/Five, \
                         nsbox/Six/launcher, tokio, unshare, bwrap...)"
                    );
                    std::process::exit(0);
                }
                other => eprintln!("spawn bench: ignoring argument {other:?}"),
            }
        }
        o
    }
    /// Latency: rounds, runs per variant per round, warm-up runs.
    fn latency_plan(&self) -> (usize, usize, usize) {
        if self.smoke { (2, 3, 1) } else { (30, 20, 10) }
    }
    /// Throughput: spawns per cell, repetitions (the median is reported).
    fn throughput_plan(&self) -> (usize, usize) {
        if self.smoke { (64, 1) } else { (256, 3) }
    }
}

// ---------------------------------------------------------------------------------------------
// Flag sets.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flags {
    /// No namespace.
    None,
    /// user pid mount uts ipc.
    Five,
    /// user pid mount uts ipc net.
    Six,
}

impl Flags {
    const ALL: [Flags; 3] = [Flags::None, Flags::Five, Flags::Six];

    fn name(self) -> &'static str {
        match self {
            Flags::None => "none",
            Flags::Five => "user+pid+mnt+uts+ipc",
            Flags::Six => "all six",
        }
    }
    fn clone_flags(self) -> libc::c_int {
        let five = libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC;
        match self {
            Flags::None => 0,
            Flags::Five => five,
            Flags::Six => five | libc::CLONE_NEWNET,
        }
    }
    fn namespaces(self) -> Namespaces {
        // NSBOX_BENCH_NO_LOCK=1 measures nsbox with Namespaces::lock_mounts(false), the
        // configuration comparable with the issue's floor (which does not lock the mounts).
        let lock = std::env::var_os("NSBOX_BENCH_NO_LOCK").is_none();
        let mut five = Namespaces::new();
        five.user(true)
            .pid(true)
            .mount(true)
            .uts(true)
            .ipc(true)
            .lock_mounts(lock);
        match self {
            Flags::None => Namespaces::new(),
            Flags::Five => five,
            Flags::Six => five.net(true).clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The floor: clone + the init's least work + fork/exec/wait, straight against libc.

/// Everything the floor's child needs, built before any clone (the child of a multi-threaded
/// process may only make async-signal-safe calls).
struct FloorPlan {
    flags: libc::c_ulong,
    user: bool,
    mount: bool,
    mount_proc: bool,
    /// Lock the mounts (the fresh /proc included) as nsbox does: join a copy of the mount
    /// namespace made in a nested user namespace.
    lock: bool,
    net: bool,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    path: CString,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    _owned: Vec<CString>,
}

// SAFETY: the raw pointers point into `_owned`, which the plan owns and never changes; the plan
// is only read.
unsafe impl Send for FloorPlan {}
// SAFETY: as above.
unsafe impl Sync for FloorPlan {}

impl FloorPlan {
    fn new(flags: Flags, lock: bool) -> FloorPlan {
        let f = flags.clone_flags();
        // SAFETY: getuid and getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let path = CString::new("/bin/true").unwrap();
        let mut owned = vec![path.clone()];
        // The same environment nsbox passes (the whole inherited one).
        for (k, v) in std::env::vars_os() {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            if let Ok(c) = CString::new(kv) {
                owned.push(c);
            }
        }
        let argv = vec![owned[0].as_ptr(), std::ptr::null()];
        let envp = owned[1..]
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        FloorPlan {
            flags: f as libc::c_ulong,
            user: f & libc::CLONE_NEWUSER != 0,
            mount: f & libc::CLONE_NEWNS != 0,
            mount_proc: f & libc::CLONE_NEWNS != 0 && f & libc::CLONE_NEWPID != 0,
            lock: lock && f & libc::CLONE_NEWNS != 0 && f & libc::CLONE_NEWPID != 0,
            net: f & libc::CLONE_NEWNET != 0,
            uid_map: format!("0 {uid} 1\n").into_bytes(),
            gid_map: format!("0 {gid} 1\n").into_bytes(),
            path,
            argv,
            envp,
            _owned: owned,
        }
    }

    /// One sandbox: clone, wait. Err if the clone fails or the child does not exit 0.
    fn run_once(&self) -> io::Result<()> {
        // SAFETY: fork-style clone (no CLONE_VM, null stack); the child only runs
        // `floor_child`, which makes raw syscalls and leaves by _exit.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                self.flags | libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: we are the child of the clone above.
            unsafe { floor_child(self) }
        }
        let st = waitpid(pid as libc::pid_t);
        if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "floor child failed: {} (exit codes 10, 12, 13, 14, 16, 17 name the step)",
                ExitStatus::from_raw(st)
            )))
        }
    }
}

fn waitpid(pid: libc::pid_t) -> libc::c_int {
    let mut st = 0;
    loop {
        // SAFETY: `st` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return st;
    }
}

/// The floor's init: the same setup steps nsbox's init runs for these flags (the crate's own
/// implementation of each step, `nsbox::steps`), then fork, exec, wait. Async-signal-safe;
/// leaves by `_exit`, with an exit code naming the step that failed.
///
/// # Safety
///
/// Only in the child of [`FloorPlan::run_once`]'s clone.
unsafe fn floor_child(p: &FloorPlan) -> ! {
    use nsbox::steps;
    let exit = |code| -> ! {
        // SAFETY: _exit never returns and runs no user-space cleanup.
        unsafe { libc::_exit(code) }
    };
    if p.user && steps::ids::map_ids(&p.uid_map, &p.gid_map).is_err() {
        exit(10);
    }
    if p.mount && steps::mounts::root_propagation(nsbox::Propagation::Slave).is_err() {
        exit(12);
    }
    if p.mount_proc && steps::mounts::mount_proc().is_err() {
        exit(13);
    }
    if p.lock && steps::mounts::lock_mounts(steps::mounts::open_last_pid().as_ref()).is_err() {
        exit(17);
    }
    if p.net && steps::net::loopback_up().is_err() {
        exit(14);
    }
    // SAFETY: raw syscalls on buffers the plan owns; every path ends in _exit or execve.
    unsafe {
        let cmd = libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        );
        if cmd == 0 {
            libc::execve(p.path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
            libc::_exit(127);
        }
        if cmd < 0 {
            libc::_exit(16);
        }
        let mut st = 0;
        while libc::waitpid(cmd as libc::pid_t, &mut st, 0) < 0 {}
        libc::_exit(if libc::WIFEXITED(st) {
            libc::WEXITSTATUS(st)
        } else {
            128
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Variants.

#[derive(Clone)]
enum Kind {
    Floor(Arc<FloorPlan>),
    Tokio(Vec<String>),
    Nsbox(Flags, bool),
    /// nsbox with a filesystem view.
    NsboxFs(Flags, bool, Arc<Filesystem>),
}

/// A typical hermetic view, as bubblewrap arguments: an empty root, ten read-only binds of
/// the host's directories (those that exist), the merged-/usr symlinks, a tmpfs /tmp, a
/// minimal /dev and a fresh /proc.
fn hermetic_args() -> Vec<String> {
    let mut a = Vec::new();
    let mut binds = 0;
    for d in [
        "/usr", "/etc", "/opt", "/var", "/srv", "/media", "/mnt", "/home", "/boot", "/run",
        "/root", "/work",
    ] {
        if binds < 10 && std::path::Path::new(d).is_dir() {
            a.extend(["--ro-bind".into(), d.into(), d.into()]);
            binds += 1;
        }
    }
    for l in ["bin", "sbin", "lib", "lib64"] {
        let host = std::path::Path::new("/").join(l);
        if let Ok(t) = std::fs::read_link(&host) {
            a.extend([
                "--symlink".into(),
                t.display().to_string(),
                host.display().to_string(),
            ]);
        }
    }
    a.extend(["--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc"].map(String::from));
    a
}

/// The same view for nsbox.
fn hermetic_view() -> Filesystem {
    let a = hermetic_args();
    let mut fs = Filesystem::empty();
    let mut i = 0;
    while i < a.len() {
        match a[i].as_str() {
            "--ro-bind" => drop(fs.ro_bind(&a[i + 1], &a[i + 2])),
            "--symlink" => drop(fs.symlink(&a[i + 1], &a[i + 2])),
            "--tmpfs" => drop(fs.tmpfs(&a[i + 1])),
            "--dev" => drop(fs.dev(&a[i + 1])),
            // A new pid namespace mounts /proc itself.
            _ => {}
        }
        i += if matches!(a[i].as_str(), "--ro-bind" | "--symlink") {
            3
        } else {
            2
        };
    }
    fs
}

struct Variant {
    key: String,
    label: String,
    flags: Option<Flags>,
    kind: Kind,
    skipped: Option<String>,
    lat_us: Vec<f64>,
    /// CPU time per spawn of each latency batch (this process and every reaped descendant).
    cpu_us: Vec<f64>,
    /// The median latency of each round's batch, for ratios paired by round.
    round_med: Vec<f64>,
    thr: [Vec<f64>; 3],
}

const CONCURRENCY: [usize; 3] = [1, 8, 64];

fn check(st: ExitStatus) -> io::Result<()> {
    if st.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("/bin/true: {st}")))
    }
}

fn sandbox(flags: Flags, launcher: bool) -> Sandbox {
    let mut sb = Sandbox::new("/bin/true");
    let mut ns = flags.namespaces();
    // Knobs to see what each default costs (docs/PERFORMANCE.md): NSBOX_BENCH_HOST_FS=1 (the
    // host's mounts as they are), NSBOX_BENCH_NO_PROTECT=1 (the kernel's files unprotected),
    // NSBOX_BENCH_NO_FILTER=1 (no syscall filter), NSBOX_BENCH_ALL_CAPS=1 (no capability drop).
    let knob = |k: &str| std::env::var_os(k).is_some();
    if knob("NSBOX_BENCH_NO_PROTECT") {
        ns.protect_kernel(false);
    }
    sb.namespaces(ns);
    if knob("NSBOX_BENCH_HOST_FS") {
        sb.filesystem(Filesystem::host());
    }
    if knob("NSBOX_BENCH_NO_FILTER") {
        sb.default_syscall_filter(false);
    }
    if knob("NSBOX_BENCH_ALL_CAPS") {
        sb.capabilities(nsbox::Capabilities::all());
    }
    set_launcher(&mut sb, launcher);
    sb
}

/// The sandbox of an nsbox variant.
fn nsbox_sandbox(kind: &Kind) -> Sandbox {
    match kind {
        Kind::NsboxFs(flags, launcher, fs) => {
            let mut sb = sandbox(*flags, *launcher);
            sb.filesystem((**fs).clone());
            sb
        }
        Kind::Nsbox(flags, launcher) => sandbox(*flags, *launcher),
        _ => Sandbox::new("/bin/true"),
    }
}

async fn tokio_once(argv: &[String]) -> io::Result<()> {
    let st = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .await?;
    check(st)
}

async fn nsbox_once(sb: &mut Sandbox) -> io::Result<()> {
    check(sb.status().await?)
}

/// `k` sequential spawns; the latency of each, in microseconds.
fn latency_batch(rt: &tokio::runtime::Runtime, kind: &Kind, k: usize) -> io::Result<Vec<f64>> {
    let us = |t: Instant| t.elapsed().as_secs_f64() * 1e6;
    match kind {
        Kind::Floor(plan) => {
            let mut v = Vec::with_capacity(k);
            for _ in 0..k {
                let t = Instant::now();
                plan.run_once()?;
                v.push(us(t));
            }
            Ok(v)
        }
        Kind::Tokio(argv) => {
            let argv = argv.clone();
            rt.block_on(rt.spawn(async move {
                let mut v = Vec::with_capacity(k);
                for _ in 0..k {
                    let t = Instant::now();
                    tokio_once(&argv).await?;
                    v.push(us(t));
                }
                Ok(v)
            }))?
        }
        Kind::Nsbox(..) | Kind::NsboxFs(..) => {
            let mut sb = nsbox_sandbox(kind);
            rt.block_on(rt.spawn(async move {
                let mut v = Vec::with_capacity(k);
                for _ in 0..k {
                    let t = Instant::now();
                    nsbox_once(&mut sb).await?;
                    v.push(us(t));
                }
                Ok(v)
            }))?
        }
    }
}

/// `total` spawns by `conc` concurrent workers; spawns per second.
fn throughput(
    rt: &tokio::runtime::Runtime,
    kind: &Kind,
    conc: usize,
    total: usize,
) -> io::Result<f64> {
    let per = total.div_ceil(conc);
    let t = Instant::now();
    match kind {
        Kind::Floor(plan) => std::thread::scope(|s| {
            let hs: Vec<_> = (0..conc)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..per {
                            plan.run_once()?;
                        }
                        io::Result::Ok(())
                    })
                })
                .collect();
            for h in hs {
                h.join()
                    .map_err(|_| io::Error::other("floor thread panicked"))??;
            }
            io::Result::Ok(())
        })?,
        Kind::Tokio(argv) => rt.block_on(async {
            let hs: Vec<_> = (0..conc)
                .map(|_| {
                    let argv = argv.clone();
                    tokio::spawn(async move {
                        for _ in 0..per {
                            tokio_once(&argv).await?;
                        }
                        io::Result::Ok(())
                    })
                })
                .collect();
            for h in hs {
                h.await??;
            }
            io::Result::Ok(())
        })?,
        Kind::Nsbox(..) | Kind::NsboxFs(..) => rt.block_on(async {
            let hs: Vec<_> = (0..conc)
                .map(|_| {
                    let mut sb = nsbox_sandbox(kind);
                    tokio::spawn(async move {
                        for _ in 0..per {
                            nsbox_once(&mut sb).await?;
                        }
                        io::Result::Ok(())
                    })
                })
                .collect();
            for h in hs {
                h.await??;
            }
            io::Result::Ok(())
        })?,
    }
    Ok((per * conc) as f64 / t.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// Statistics and machine facts.

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s
}

fn median(v: &[f64]) -> Option<f64> {
    let s = sorted(v);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

fn p90(v: &[f64]) -> Option<f64> {
    let s = sorted(v);
    if s.is_empty() {
        return None;
    }
    let i = ((s.len() as f64 * 0.9).ceil() as usize).clamp(1, s.len()) - 1;
    Some(s[i])
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A `Key: N kB` field of a /proc file, in KiB.
fn proc_kib(path: &str, key: &str) -> io::Result<u64> {
    let s = std::fs::read_to_string(path)?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no {key} in {path}")))
}

/// CPU time (user + system, microseconds) of this process, of its reaped descendants and of
/// the launcher (not our child, so read from the schedstat of each of its threads: it clones
/// the inits, and tears down the mount namespaces it holds for them).
fn cpu_us() -> f64 {
    // Every thread of the launcher (it closes held namespaces on a thread of its own).
    let launcher = nsbox::launcher::pid()
        .and_then(|pid| std::fs::read_dir(format!("/proc/{pid}/task")).ok())
        .map_or(0.0, |tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
                .sum::<f64>()
                / 1000.0
        });
    let get = |who| {
        // SAFETY: an all-zero rusage is valid; getrusage fills it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid out-pointer.
        unsafe { libc::getrusage(who, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    };
    get(libc::RUSAGE_SELF) + get(libc::RUSAGE_CHILDREN) + launcher
}

fn rss_kib() -> u64 {
    proc_kib("/proc/self/status", "VmRSS:").unwrap_or(0)
}

fn fmt_us(v: Option<f64>) -> String {
    match v {
        Some(x) if x >= 10_000.0 => format!("{:.1} ms", x / 1000.0),
        Some(x) => format!("{x:.0} us"),
        None => "-".into(),
    }
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.2}"))
}

// ---------------------------------------------------------------------------------------------
// Sections.

fn build_variants(launcher: bool) -> Vec<Variant> {
    let mut v = Vec::new();
    let mut add = |key: &str, label: String, flags: Option<Flags>, kind: Kind| {
        v.push(Variant {
            key: key.into(),
            label,
            flags,
            kind,
            skipped: None,
            lat_us: Vec::new(),
            cpu_us: Vec::new(),
            round_med: Vec::new(),
            thr: Default::default(),
        })
    };
    for f in Flags::ALL {
        add(
            &format!("floor/{f:?}"),
            format!("a. floor, {}", f.name()),
            Some(f),
            Kind::Floor(Arc::new(FloorPlan::new(f, false))),
        );
    }
    // The same, with the mounts locked as nsbox locks them (not part of issue 4's floor):
    // separates nsbox's own overhead from the kernel's cost of the locking.
    for f in [Flags::Five, Flags::Six] {
        add(
            &format!("floorlock/{f:?}"),
            format!("a'. floor + lock, {}", f.name()),
            Some(f),
            Kind::Floor(Arc::new(FloorPlan::new(f, true))),
        );
    }
    add(
        "tokio",
        "b. tokio::process /bin/true".into(),
        None,
        Kind::Tokio(vec!["/bin/true".into()]),
    );
    let letters = [(Flags::None, "c"), (Flags::Five, "d"), (Flags::Six, "e")];
    for (f, letter) in letters {
        add(
            &format!("nsbox/{f:?}/direct"),
            format!("{letter}. nsbox, {} (direct clone)", f.name()),
            Some(f),
            Kind::Nsbox(f, false),
        );
        if launcher {
            add(
                &format!("nsbox/{f:?}/launcher"),
                format!("{letter}. nsbox, {} (launcher)", f.name()),
                Some(f),
                Kind::Nsbox(f, true),
            );
        }
    }
    let view = Arc::new(hermetic_view());
    add(
        "hermetic/nsbox/direct",
        "g. nsbox, all six, hermetic view (direct clone)".into(),
        Some(Flags::Six),
        Kind::NsboxFs(Flags::Six, false, view.clone()),
    );
    if launcher {
        add(
            "hermetic/nsbox/launcher",
            "g. nsbox, all six, hermetic view (launcher)".into(),
            Some(Flags::Six),
            Kind::NsboxFs(Flags::Six, true, view),
        );
    }
    let mut bw: Vec<String> = ["bwrap", "--unshare-all"].map(String::from).to_vec();
    bw.extend(hermetic_args());
    bw.push("/bin/true".into());
    add(
        "hermetic/bwrap",
        "g. bwrap --unshare-all, the same hermetic view".into(),
        None,
        Kind::Tokio(bw),
    );
    // The same namespaces as d (user+pid+mnt+uts+ipc) and as e (the same and net), for
    // unshare(1) and bubblewrap: every ratio compares like with like.
    let tool = |argv: &[&str]| Kind::Tokio(argv.iter().map(|s| s.to_string()).collect());
    add(
        "unshare/Five",
        "f. unshare -Urpfiu --mount-proc (as d)".into(),
        None,
        tool(&["unshare", "-Urpfiu", "--mount-proc", "/bin/true"]),
    );
    add(
        "unshare/Six",
        "f. unshare -Urpfiun --mount-proc (as e)".into(),
        None,
        tool(&["unshare", "-Urpfiun", "--mount-proc", "/bin/true"]),
    );
    add(
        "bwrap/Five",
        "f. bwrap --unshare-all --share-net --dev-bind / / --proc /proc (as d)".into(),
        None,
        tool(&[
            "bwrap",
            "--unshare-all",
            "--share-net",
            "--dev-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "/bin/true",
        ]),
    );
    add(
        "bwrap/Six",
        "f. bwrap --unshare-all --dev-bind / / --proc /proc (as e)".into(),
        None,
        tool(&[
            "bwrap",
            "--unshare-all",
            "--dev-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "/bin/true",
        ]),
    );
    v
}

/// Try each variant once; a missing tool or a failing variant is reported and skipped.
fn probe(rt: &tokio::runtime::Runtime, vs: &mut [Variant]) {
    for v in vs.iter_mut() {
        if let Err(e) = latency_batch(rt, &v.kind, 1) {
            let tool = match &v.kind {
                Kind::Tokio(argv) if argv[0] != "/bin/true" => Some(argv[0].clone()),
                _ => None,
            };
            let why = match (&tool, e.kind()) {
                (Some(t), io::ErrorKind::NotFound) => format!("{t}: not installed, skipped"),
                _ => format!("{}: failed ({e}), skipped", v.label),
            };
            println!("{why}");
            v.skipped = Some(why);
        }
    }
}

fn run_latency(rt: &tokio::runtime::Runtime, vs: &mut [Variant], opts: &Opts) {
    let (rounds, per, warm) = opts.latency_plan();
    for v in vs.iter_mut().filter(|v| v.skipped.is_none()) {
        let _ = latency_batch(rt, &v.kind, warm);
    }
    for _ in 0..rounds {
        for v in vs.iter_mut().filter(|v| v.skipped.is_none()) {
            let cpu = cpu_us();
            match latency_batch(rt, &v.kind, per) {
                Ok(mut l) => {
                    v.cpu_us.push((cpu_us() - cpu) / per as f64);
                    v.round_med.extend(median(&l));
                    v.lat_us.append(&mut l);
                }
                Err(e) => {
                    println!("{}: failed during the run ({e}), skipped", v.label);
                    v.skipped = Some(e.to_string());
                }
            }
        }
    }
}

fn run_throughput(rt: &tokio::runtime::Runtime, vs: &mut [Variant], opts: &Opts) {
    let (total, reps) = opts.throughput_plan();
    for _ in 0..reps {
        for (ci, &c) in CONCURRENCY.iter().enumerate() {
            for v in vs.iter_mut().filter(|v| v.skipped.is_none()) {
                match throughput(rt, &v.kind, c, total) {
                    Ok(t) => v.thr[ci].push(t),
                    Err(e) => {
                        println!("{}: failed at concurrency {c} ({e}), skipped", v.label);
                        v.skipped = Some(e.to_string());
                    }
                }
            }
        }
    }
}

fn find<'a>(vs: &'a [Variant], key: &str) -> Option<&'a Variant> {
    vs.iter().find(|v| v.key == key && v.skipped.is_none())
}

fn lat_median(vs: &[Variant], key: &str) -> Option<f64> {
    find(vs, key).and_then(|v| median(&v.lat_us))
}

fn thr_median(vs: &[Variant], key: &str, ci: usize) -> Option<f64> {
    find(vs, key).and_then(|v| median(&v.thr[ci]))
}

/// The median over rounds of `a`'s figure / `b`'s figure in the same round. The batches of one
/// round run back to back, so a change of the machine's load between rounds cancels out.
fn paired(a: &[f64], b: &[f64]) -> Option<f64> {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&r)
}

fn paired_lat(vs: &[Variant], a: &str, b: &str) -> Option<f64> {
    paired(&find(vs, a)?.round_med, &find(vs, b)?.round_med)
}

fn paired_thr(vs: &[Variant], a: &str, b: &str, ci: usize) -> Option<f64> {
    paired(&find(vs, a)?.thr[ci], &find(vs, b)?.thr[ci])
}

fn print_main_table(vs: &[Variant]) {
    println!();
    println!(
        "{:<44} {:>9} {:>9} {:>5} {:>7} {:>7} {:>8} | {:>8} {:>8} {:>8} {:>7}",
        "variant (/bin/true)",
        "median",
        "p90",
        "runs",
        "/floor",
        "paired",
        "cpu",
        "c=1 /s",
        "c=8 /s",
        "c=64 /s",
        "c8/fl"
    );
    println!("{}", "-".repeat(135));
    for v in vs {
        if v.skipped.is_some() {
            println!("{:<44} skipped", v.label);
            continue;
        }
        let floor_key = v.flags.map(|f| format!("floor/{f:?}"));
        let own = median(&v.lat_us);
        let ratio = match &floor_key {
            Some(k) if !v.key.starts_with("floor") => {
                lat_median(vs, k).zip(own).map(|(f, o)| o / f)
            }
            _ => None,
        };
        let thr: Vec<Option<f64>> = (0..3).map(|ci| median(&v.thr[ci])).collect();
        let (pair, c8) = match &floor_key {
            Some(k) if !v.key.starts_with("floor") => {
                (paired_lat(vs, &v.key, k), paired_thr(vs, &v.key, k, 1))
            }
            _ => (None, None),
        };
        let t = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.0}"));
        println!(
            "{:<44} {:>9} {:>9} {:>5} {:>7} {:>7} {:>8} | {:>8} {:>8} {:>8} {:>7}",
            v.label,
            fmt_us(own),
            fmt_us(p90(&v.lat_us)),
            v.lat_us.len(),
            fmt_ratio(ratio),
            fmt_ratio(pair),
            fmt_us(median(&v.cpu_us)),
            t(thr[0]),
            t(thr[1]),
            t(thr[2]),
            fmt_ratio(c8),
        );
    }
    println!(
        "\nmedian, p90: spawn-to-exit latency; /floor: median latency / the floor's with the same \
         namespaces;\npaired: the same ratio taken round by round (the median of the rounds' ratios), \
         robust to a changing machine load;\ncpu: CPU time per spawn (median over batches) of this process and every \
         process it reaped, and of the launcher;\nc=N /s: spawns per second with N \
         concurrent spawners (median of repetitions); c8/fl: throughput at concurrency 8 / the \
         floor's, paired by repetition."
    );
}

struct RssRow {
    target: &'static str,
    rss_kib: u64,
    lat: Vec<(String, Vec<f64>)>,
    pss: Vec<(String, io::Result<(u64, u64)>)>,
}

/// The Pss and private memory (KiB) of the init of one idle sandbox (`sleep 100`, pid ns).
fn idle_init_memory(rt: &tokio::runtime::Runtime, launcher: bool) -> io::Result<(u64, u64)> {
    rt.block_on(async {
        let mut sb = Sandbox::new("sleep");
        sb.arg("100").namespaces(Flags::Five.namespaces());
        set_launcher(&mut sb, launcher);
        let mut child = sb.spawn().await?;
        let path = format!("/proc/{}/smaps_rollup", child.id().unwrap_or(0));
        let pss = proc_kib(&path, "Pss:");
        let private = proc_kib(&path, "Private_Clean:")
            .and_then(|c| Ok(c + proc_kib(&path, "Private_Dirty:")?));
        child.kill().await.ok();
        let explain = |e: io::Error| match e.kind() {
            // The init makes itself non-dumpable: only CAP_SYS_PTRACE reads its smaps.
            io::ErrorKind::PermissionDenied => {
                io::Error::other("smaps_rollup unreadable (the init is non-dumpable): run as root")
            }
            _ => e,
        };
        Ok((pss.map_err(explain)?, private.map_err(explain)?))
    })
}

/// Grow the process's RSS to about `target` bytes: a Vec written every 4 KiB.
fn grow_to(hold: &mut Vec<Vec<u8>>, target: u64) {
    let have = rss_kib() * 1024;
    if have >= target {
        return;
    }
    let n = (target - have) as usize;
    let mut v = vec![0u8; n];
    for i in (0..n).step_by(4096) {
        v[i] = 1;
    }
    std::hint::black_box(&v);
    hold.push(v);
}

fn run_rss(rt: &tokio::runtime::Runtime, opts: &Opts, launcher: bool) -> Vec<RssRow> {
    const MIB: u64 = 1 << 20;
    let sizes: &[(&str, u64)] = if opts.smoke || !opts.rss {
        &[("16 MiB", 16 * MIB)]
    } else {
        &[
            ("16 MiB", 16 * MIB),
            ("1 GiB", 1024 * MIB),
            ("4 GiB", 4096 * MIB),
        ]
    };
    let mut kinds: Vec<(String, Kind)> = vec![
        (
            "floor".into(),
            Kind::Floor(Arc::new(FloorPlan::new(Flags::Five, false))),
        ),
        ("tokio".into(), Kind::Tokio(vec!["/bin/true".into()])),
        ("d direct".into(), Kind::Nsbox(Flags::Five, false)),
    ];
    if launcher {
        kinds.push(("d launcher".into(), Kind::Nsbox(Flags::Five, true)));
    }
    let mut hold = Vec::new();
    let mut rows = Vec::new();
    for &(name, bytes) in sizes {
        grow_to(&mut hold, bytes);
        let (rounds, per) = match (opts.smoke, bytes > 16 * MIB) {
            (true, _) => (1, 3),
            (false, false) => (5, 40),
            (false, true) => (5, 8),
        };
        let mut lat: Vec<(String, Vec<f64>)> =
            kinds.iter().map(|(n, _)| (n.clone(), Vec::new())).collect();
        for (_, k) in &kinds {
            let _ = latency_batch(rt, k, 1);
        }
        for _ in 0..rounds {
            for (i, (_, k)) in kinds.iter().enumerate() {
                match latency_batch(rt, k, per) {
                    Ok(mut l) => lat[i].1.append(&mut l),
                    Err(e) => println!("{name}: {}: {e}", kinds[i].0),
                }
            }
        }
        let mut pss = vec![("direct".to_string(), idle_init_memory(rt, false))];
        if launcher {
            pss.push(("launcher".into(), idle_init_memory(rt, true)));
        }
        rows.push(RssRow {
            target: name,
            rss_kib: rss_kib(),
            lat,
            pss,
        });
    }
    rows
}

fn print_rss(rows: &[RssRow]) {
    println!();
    let Some(first) = rows.first() else { return };
    print!("{:<8} {:>9}", "RSS", "VmRSS");
    for (n, _) in &first.lat {
        print!(" | {:>26}", format!("{n}: median p90 runs"));
    }
    println!(" | idle init Pss / private");
    for r in rows {
        print!("{:<8} {:>6} MiB", r.target, r.rss_kib / 1024);
        for (_, l) in &r.lat {
            print!(
                " | {:>26}",
                format!("{} {} {}", fmt_us(median(l)), fmt_us(p90(l)), l.len())
            );
        }
        let pss: Vec<String> = r
            .pss
            .iter()
            .map(|(n, m)| match m {
                Ok((p, pr)) => format!("{n} {p} / {pr} KiB"),
                Err(e) => format!("{n} failed: {e}"),
            })
            .collect();
        println!(" | {}", pss.join(", "));
    }
}

fn target_line(name: &str, value: Option<f64>, limit: f64, le: bool, what: String) {
    let verdict = match value {
        None => "not measured".to_string(),
        Some(v) if (le && v <= limit) || (!le && v >= limit) => "met".into(),
        Some(_) => "NOT met".into(),
    };
    let op = if le { "<=" } else { ">=" };
    // Three decimals, so that a figure just over the limit does not print as the limit.
    let shown = value.map_or("-".into(), |v| format!("{v:.3}"));
    println!("  {name:<46} {shown:>7} {op} {limit:<5} {verdict:<12} {what}");
}

fn print_targets(vs: &[Variant], rows: &[RssRow], launcher: bool) {
    println!("\ntargets (ratios from this run; every comparison with the same namespaces):");
    let modes: &[&str] = if launcher {
        &["direct", "launcher"]
    } else {
        &["direct"]
    };
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    println!(
        " (latency and throughput ratios paired by round; then the medians and their plain ratio)"
    );
    for mode in modes {
        println!(" nsbox {mode}:");
        let lat_targets = [
            ("d / floor(same flags), latency", "Five", "floor/Five", 1.0),
            ("e / floor(same flags), latency", "Six", "floor/Six", 1.0),
            (
                "d / bwrap(same namespaces), latency",
                "Five",
                "bwrap/Five",
                0.5,
            ),
            (
                "e / bwrap(same namespaces), latency",
                "Six",
                "bwrap/Six",
                0.5,
            ),
            (
                "d / unshare(same namespaces), latency",
                "Five",
                "unshare/Five",
                0.6,
            ),
            (
                "e / unshare(same namespaces), latency",
                "Six",
                "unshare/Six",
                0.6,
            ),
            ("c / tokio::process, latency", "None", "tokio", 1.3),
        ];
        for (name, f, other, limit) in lat_targets {
            let key = format!("nsbox/{f}/{mode}");
            let (a, b) = (lat_median(vs, &key), lat_median(vs, other));
            target_line(
                name,
                paired_lat(vs, &key, other),
                limit,
                true,
                format!(
                    "{} vs {} ({})",
                    fmt_us(a),
                    fmt_us(b),
                    fmt_ratio(ratio(a, b))
                ),
            );
        }
        for (letter, f) in [("d", "Five"), ("e", "Six")] {
            let key = format!("nsbox/{f}/{mode}");
            let other = format!("floorlock/{f}");
            let (a, b) = (lat_median(vs, &key), lat_median(vs, &other));
            target_line(
                &format!("({letter} / floor + locked mounts, latency)"),
                paired_lat(vs, &key, &other),
                1.25,
                true,
                format!(
                    "{} vs {} ({}); not an issue 4 target",
                    fmt_us(a),
                    fmt_us(b),
                    fmt_ratio(ratio(a, b))
                ),
            );
        }
        for (letter, f) in [("d", "Five"), ("e", "Six")] {
            let key = format!("nsbox/{f}/{mode}");
            let fl_key = format!("floor/{f}");
            let t = thr_median(vs, &key, 1);
            let fl = thr_median(vs, &fl_key, 1);
            let n = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.0}"));
            target_line(
                &format!("{letter} / floor, throughput at concurrency 8"),
                paired_thr(vs, &key, &fl_key, 1),
                1.5,
                false,
                format!(
                    "{} vs {} spawns/s ({})",
                    n(t),
                    n(fl),
                    fmt_ratio(ratio(t, fl))
                ),
            );
        }
        let cpu = |key: &str| find(vs, key).and_then(|v| median(&v.cpu_us));
        for (letter, f) in [("d", "Five"), ("e", "Six")] {
            let key = format!("nsbox/{f}/{mode}");
            let fl_key = format!("floor/{f}");
            let (a, b) = (cpu(&key), cpu(&fl_key));
            target_line(
                &format!("{letter} / floor, CPU per spawn"),
                ratio(a, b),
                1.0,
                true,
                format!("{} vs {}", fmt_us(a), fmt_us(b)),
            );
            let (t8, t64) = (thr_median(vs, &key, 1), thr_median(vs, &key, 2));
            let n = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.0}"));
            target_line(
                &format!("{letter}: throughput at concurrency 64 / at 8"),
                ratio(t64, t8),
                1.0,
                false,
                format!("{} vs {} spawns/s", n(t64), n(t8)),
            );
        }
        let col = format!("d {mode}");
        let at = |name: &str| {
            rows.iter()
                .find(|r| r.target == name)
                .and_then(|r| r.lat.iter().find(|(n, _)| *n == col))
                .and_then(|(_, l)| median(l))
        };
        let (small, big) = (at("16 MiB"), at("4 GiB"));
        target_line(
            "d latency at 4 GiB RSS / at 16 MiB",
            ratio(big, small),
            1.2,
            true,
            format!("{} vs {}", fmt_us(big), fmt_us(small)),
        );
        let pss = rows
            .first()
            .and_then(|r| r.pss.iter().find(|(n, _)| n == mode))
            .and_then(|(_, m)| m.as_ref().ok())
            .map(|(p, _)| *p as f64 / 1024.0);
        target_line(
            "idle init Pss (MiB, at 16 MiB RSS)",
            pss,
            1.0,
            true,
            pss.map_or(String::new(), |p| format!("{:.0} KiB", p * 1024.0)),
        );
    }
}

/// Child mode `--mount-table-child EXTRA RUNS`: in a private mount namespace holding EXTRA
/// more tmpfs mounts, print the median latency of RUNS sandboxes (all six namespaces, the
/// default filesystem view, direct clone) and the size of the mount table.
fn mount_table_child(extra: usize, runs: usize) -> io::Result<()> {
    let fail = |what: &str| io::Error::other(format!("{what}: {}", io::Error::last_os_error()));
    // SAFETY: plain syscalls on this single-threaded process, before any runtime.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(fail("unshare(CLONE_NEWNS)"));
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(fail("make / private"));
        }
        let base = c"/mnt";
        if libc::mount(
            c"tmpfs".as_ptr(),
            base.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        ) != 0
        {
            return Err(fail("tmpfs on /mnt"));
        }
        for i in 0..extra {
            let d = CString::new(format!("/mnt/{i}")).expect("no NUL");
            if libc::mkdir(d.as_ptr(), 0o755) != 0
                || libc::mount(
                    c"tmpfs".as_ptr(),
                    d.as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                ) != 0
            {
                return Err(fail("an extra tmpfs"));
            }
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?
        .lines()
        .count();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let v = latency_batch(&rt, &Kind::Nsbox(Flags::Six, false), runs + 2)?;
    let m = median(&v[2..]).unwrap_or(0.0);
    // The floor with the same namespaces, for scale: the kernel's copy of the mount table at
    // the clone, the walk that makes it slave, and its teardown grow with it for both.
    let floor = Kind::Floor(Arc::new(FloorPlan::new(Flags::Six, false)));
    let f = latency_batch(&rt, &floor, runs + 2)?;
    let fm = median(&f[2..]).unwrap_or(0.0);
    println!("{mounts} {m:.0} {fm:.0}");
    Ok(())
}

/// The latency of a default sandbox as the host's mount table grows (the bench's own private
/// mount namespace, as root): (mounts, median us, the floor's median us) for about 20, 200
/// and 2,000 mounts.
fn run_mount_table(opts: &Opts) -> Vec<(usize, f64, f64)> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        println!(
            "
mount table: SKIPPED (needs root to make mounts in a private mount namespace)"
        );
        return Vec::new();
    }
    let host = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|s| s.lines().count())
        .unwrap_or(20);
    let runs = if opts.smoke { 3 } else { 40 };
    let mut out = Vec::new();
    for total in [20usize, 200, 2000] {
        let extra = total.saturating_sub(host + 1);
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(_) => break,
        };
        let o = std::process::Command::new(exe)
            .args(["--mount-table-child", &extra.to_string(), &runs.to_string()])
            .output();
        match o {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let mut w = text.split_whitespace();
                if let (Some(n), Some(us), Some(floor)) = (w.next(), w.next(), w.next()) {
                    out.push((
                        n.parse().unwrap_or(0),
                        us.parse().unwrap_or(0.0),
                        floor.parse().unwrap_or(0.0),
                    ));
                }
            }
            Ok(o) => println!(
                "mount table {total}: failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => println!("mount table {total}: {e}"),
        }
    }
    println!(
        "
mount table (a default sandbox, all six namespaces, direct clone; the floor, all six):"
    );
    for (n, us, floor) in &out {
        println!("  {n:>5} mounts  {us:>8.0} us   floor {floor:>8.0} us");
    }
    out
}

/// The filesystem view's targets: the hermetic view against bwrap with the same arguments,
/// and the cost of a large mount table.
fn print_view_targets(vs: &[Variant], table: &[(usize, f64, f64)], launcher: bool) {
    println!("\nfilesystem view targets (ratios from this run):");
    let modes: &[&str] = if launcher {
        &["direct", "launcher"]
    } else {
        &["direct"]
    };
    for mode in modes {
        let key = format!("hermetic/nsbox/{mode}");
        let (a, b) = (lat_median(vs, &key), lat_median(vs, "hermetic/bwrap"));
        target_line(
            &format!("g {mode} / bwrap, the same hermetic view"),
            paired_lat(vs, &key, "hermetic/bwrap"),
            0.5,
            true,
            format!("{} vs {}", fmt_us(a), fmt_us(b)),
        );
    }
    let first = table.first().copied();
    let last = table.last().copied();
    target_line(
        "latency at ~2000 mounts / at ~20",
        first.zip(last).map(|(f, l)| l.1 / f.1),
        1.2,
        true,
        first.zip(last).map_or(String::new(), |(f, l)| {
            format!(
                "{:.0} us at {} vs {:.0} us at {}; the floor's: {:.2}",
                l.1,
                l.0,
                f.1,
                f.0,
                l.2 / f.2
            )
        }),
    );
}

fn main() -> io::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--mount-table-child") {
        let n = |i: usize| argv.get(i).and_then(|a| a.parse().ok()).unwrap_or(0);
        return mount_table_child(n(2), n(3).max(1));
    }
    // First thing: the launcher must fork while the process is small and single-threaded.
    let launcher = match start_launcher() {
        Ok(on) => on,
        Err(e) => {
            println!("launcher: failed to start ({e}); measuring the direct clone only");
            false
        }
    };
    let opts = Opts::parse();
    let started = Instant::now();
    let load_before = loadavg();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    println!(
        "nsbox spawn bench{}: uid {uid}, {} cpus, load average {load_before}, launcher: {}, \
         VmRSS {} MiB",
        if opts.smoke { " (smoke)" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if launcher { "running" } else { "not available" },
        rss_kib() / 1024
    );

    let mut vs = build_variants(launcher);
    if !opts.only.is_empty() {
        vs.retain(|v| opts.only.iter().any(|w| v.key.contains(w.as_str())));
    }
    probe(&rt, &mut vs);
    run_latency(&rt, &mut vs, &opts);
    if opts.latency_only {
        print_main_table(&vs);
        return Ok(());
    }
    run_throughput(&rt, &mut vs, &opts);
    print_main_table(&vs);
    let rows = run_rss(&rt, &opts, launcher);
    print_rss(&rows);
    let table = run_mount_table(&opts);
    print_targets(&vs, &rows, launcher);
    print_view_targets(&vs, &table, launcher);
    println!(
        "\nload average {load_before} before, {} after; {:.0} s",
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

//! nsrun: run a program in new namespaces under a pid-1 supervisor, and exit as it did.
//!
//! ```text
//! nsrun [OPTIONS] [--] PROGRAM [ARGS...]
//! ```
//!
//! Exit status: PROGRAM's own (the same code, or death by the same signal); 125 when nsrun
//! itself fails; 126 when PROGRAM cannot be executed; 127 when it is not found. `--help` and
//! `--version` print and exit 0.
//!
//! PROGRAM starts with the signals nsrun was started ignoring still ignored, and with the
//! signal mask nsrun was given (as under tini, bwrap or unshare(1)); every signal nsrun gets
//! but SIGCHLD (and those ignored) is forwarded to it.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use nsbox::{
    Capabilities, Capability, Filesystem, Namespace, Namespaces, Resource, SeccompProgram,
    Supervisor, Upper, enter, exit_as_status,
};

#[derive(Parser, Debug)]
#[command(
    name = "nsrun",
    version,
    about = "Run PROGRAM in new Linux namespaces under a pid-1 reaper; exit as PROGRAM did",
    after_help = "Exit status: PROGRAM's (same code, or death by the same signal); 125 if nsrun fails; 126 if PROGRAM cannot be executed; 127 if it is not found."
)]
struct Args {
    /// New user namespace (your ids become --map-user/--map-group inside)
    #[arg(short = 'U', long)]
    user: bool,
    /// New pid namespace (implies --mount, for a fresh /proc)
    #[arg(short = 'p', long)]
    pid: bool,
    /// New mount namespace, / made recursively slave
    #[arg(short = 'm', long)]
    mount: bool,
    /// New network namespace with lo up
    #[arg(short = 'n', long)]
    net: bool,
    /// New UTS namespace
    #[arg(short = 'u', long)]
    uts: bool,
    /// New IPC namespace
    #[arg(short = 'i', long)]
    ipc: bool,
    /// All of user, pid, mount, net, uts and ipc
    #[arg(short = 'a', long)]
    all: bool,
    /// Hostname inside (implies --uts)
    #[arg(long, value_name = "NAME")]
    hostname: Option<OsString>,
    /// NIS domain name inside (implies --uts)
    #[arg(long, value_name = "NAME")]
    domainname: Option<OsString>,
    /// Your uid inside the user namespace
    #[arg(long, value_name = "ID", default_value_t = 0)]
    map_user: u32,
    /// Your gid inside the user namespace
    #[arg(long, value_name = "ID", default_value_t = 0)]
    map_group: u32,
    /// Skip namespace kinds this kernel lacks instead of failing
    #[arg(long)]
    best_effort: bool,
    /// When PROGRAM ends, wait for every process left instead of killing them
    #[arg(long)]
    wait_all: bool,
    /// When PROGRAM ends, send SIGTERM to every process left and SIGKILL SECS later [default: SIGKILL at once]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    exit_grace: Option<Duration>,
    /// Start PROGRAM in a new session, without the terminal (it cannot inject keystrokes with TIOCSTI or signal your shell)
    #[arg(long)]
    new_session: bool,
    /// Let PROGRAM keep the capability CAP (as CAP_NET_ADMIN or net_admin; ALL keeps every one); repeatable. By default it has none
    #[arg(long, value_name = "CAP")]
    cap_add: Vec<String>,
    /// Let PROGRAM make new user namespaces (the default syscall filter refuses them)
    #[arg(long)]
    allow_userns: bool,
    /// Do not install the default syscall filter (TIOCSTI, keyring, kexec and the rest refused)
    #[arg(long)]
    no_syscall_filter: bool,
    /// Also install the seccomp BPF program read from file descriptor FD (an array of struct sock_filter); repeatable
    #[arg(long, value_name = "FD")]
    seccomp: Vec<i32>,
    /// Leave /proc/sys, /sys and the like writable and /proc/kcore and the like visible in a new mount namespace
    #[arg(long)]
    no_protect_kernel: bool,
    /// Set PROGRAM's resource limit NAME (nofile, nproc, cpu, fsize, core, as, stack, memlock) to SOFT and HARD (a number or `unlimited`; without HARD both are SOFT, but cpu=N gets the hard limit N+1, so that SIGXCPU comes before SIGKILL); repeatable
    #[arg(long, value_name = "NAME=SOFT[:HARD]", value_parser = parse_rlimit)]
    rlimit: Vec<(Resource, u64, u64)>,
    /// Join the namespace KIND (user, mnt, uts, ipc, net, pid, cgroup) at PATH first; repeatable
    #[arg(long, value_name = "KIND:PATH", value_parser = parse_join)]
    join: Vec<(Namespace, PathBuf)>,
    /// The program to run
    #[arg(required = true)]
    program: OsString,
    /// Its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("expected a number of seconds (0 or more), got {s:?}"))
}

/// `NAME=SOFT[:HARD]` of `--rlimit` ([`Resource::parse_setting`]).
fn parse_rlimit(s: &str) -> Result<(Resource, u64, u64), String> {
    Resource::parse_setting(s)
}

fn parse_join(s: &str) -> Result<(Namespace, PathBuf), String> {
    let (kind, path) = s
        .split_once(':')
        .ok_or_else(|| format!("expected KIND:PATH, got {s:?}"))?;
    let kind = Namespace::from_name(kind).ok_or_else(|| {
        format!("unknown namespace kind {kind:?} (user, mnt, uts, ipc, net, pid, cgroup)")
    })?;
    Ok((kind, PathBuf::from(path)))
}

fn namespaces(a: &Args) -> Namespaces {
    let mut ns = Namespaces::new();
    ns.user(a.user || a.all)
        .pid(a.pid || a.all)
        .mount(a.mount || a.pid || a.all)
        .net(a.net || a.all)
        .uts(a.uts || a.all)
        .ipc(a.ipc || a.all)
        .map_user(a.map_user)
        .map_group(a.map_group)
        .best_effort(a.best_effort)
        .protect_kernel(!a.no_protect_kernel);
    if let Some(h) = &a.hostname {
        ns.hostname(h.clone());
    }
    if let Some(d) = &a.domainname {
        ns.domainname(d.clone());
    }
    for (kind, path) in &a.join {
        ns.join_path(Some(*kind), path.clone());
    }
    ns
}

/// The supervisor of PROGRAM, with what it keeps and the filters it gets. The seccomp
/// programs are read before enter(), from fds of the caller.
fn supervisor(a: &Args, cap_drop: &[String]) -> Result<Supervisor, String> {
    let mut sup = Supervisor::new();
    sup.wait_all(a.wait_all)
        .new_session(a.new_session)
        .default_syscall_filter(!a.no_syscall_filter)
        .nested_user_namespaces(a.allow_userns);
    let mut caps = Capabilities::none();
    for name in &a.cap_add {
        caps = if name.eq_ignore_ascii_case("all") {
            Capabilities::all()
        } else {
            caps.with(name.parse::<Capability>().map_err(|e| e.to_string())?)
        };
    }
    for name in cap_drop {
        if name.eq_ignore_ascii_case("all") {
            caps = Capabilities::none();
        } else if caps == Capabilities::all() {
            return Err(format!(
                "--cap-drop {name}: after --cap-add ALL, drop with a list of --cap-add instead"
            ));
        } else {
            let c: Capability = name.parse().map_err(|e: io::Error| e.to_string())?;
            caps = Capability::ALL
                .iter()
                .copied()
                .filter(|k| *k != c && caps.contains(*k))
                .collect();
        }
    }
    sup.capabilities(caps);
    for &(resource, soft, hard) in &a.rlimit {
        sup.rlimit(resource, soft, hard);
    }
    if let Some(grace) = a.exit_grace {
        sup.exit_grace(grace);
    }
    for &fd in &a.seccomp {
        let bytes = read_fd(fd).map_err(|e| format!("--seccomp {fd}: {e}"))?;
        sup.seccomp(SeccompProgram::from_bytes(bytes).map_err(|e| format!("--seccomp {fd}: {e}"))?);
    }
    Ok(sup)
}

/// Everything in the caller's fd `fd`, which is then closed.
fn read_fd(fd: i32) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: F_GETFD only asks whether the number is open.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an open file descriptor above 2",
        ));
    }
    // SAFETY: the caller handed this fd to nsrun for it to read and close; nothing else in
    // this process uses it.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// bubblewrap's filesystem options, taken out of the command line in their order (the
/// order is the mounts' order) before clap sees the rest. Any of them makes the view an empty
/// root, as in bubblewrap; `--ro-host` starts from the host read-only instead.
#[derive(Clone, Default)]
struct FsArgs {
    fs: Option<Filesystem>,
    /// `--proc /proc` was given: a fresh /proc (pid 1 mounts it).
    proc: bool,
    /// bubblewrap's other options that are not nsrun's own.
    chdir: Option<OsString>,
    /// `--setenv`/`--unsetenv`/`--clearenv` in order: (name, Some(value)), (name, None),
    /// or ("", None) for a clear.
    env: Vec<(OsString, Option<OsString>)>,
    argv0: Option<OsString>,
    block_fd: Option<i32>,
    json_status_fd: Option<i32>,
    info_fd: Option<i32>,
    die_with_parent: bool,
    cgroup: bool,
    share_net: bool,
    cap_drop: Vec<String>,
}

/// bubblewrap's options nsrun refuses (rather than ignore), and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "--as-pid-1",
        "nsrun always runs its own pid 1, which reaps and forwards signals",
    ),
    ("--userns-block-fd", "nsrun writes the id maps itself"),
    ("--userns", "joining a user namespace: use --join user:PATH"),
    ("--userns2", "not supported"),
    ("--pidns", "joining a pid namespace: use --join pid:PATH"),
    ("--exec-label", "no security label support"),
    ("--file-label", "no security label support"),
    ("--lock-file", "not supported"),
    ("--level-prefix", "not supported"),
];

/// bubblewrap's options that are nsrun's own under another name: (bwrap, nsrun, values).
const ALIASES: &[(&str, &[&str], usize)] = &[
    ("--unshare-user", &["-U"], 0),
    ("--unshare-user-try", &["-U", "--best-effort"], 0),
    ("--unshare-ipc", &["-i"], 0),
    ("--unshare-pid", &["-p"], 0),
    ("--unshare-net", &["-n"], 0),
    ("--unshare-uts", &["-u"], 0),
    ("--unshare-all", &["-U", "-p", "-n", "-u", "-i"], 0),
    ("--uid", &["--map-user"], 1),
    ("--gid", &["--map-group"], 1),
    ("--add-seccomp-fd", &["--seccomp"], 1),
    // nsbox refuses new user namespaces inside by default.
    ("--disable-userns", &[], 0),
];

/// Options of bubblewrap's that build the filesystem, with their number of values.
const FS_OPTIONS: &[(&str, usize)] = &[
    ("--bind", 2),
    ("--bind-try", 2),
    ("--dev-bind", 2),
    ("--dev-bind-try", 2),
    ("--ro-bind", 2),
    ("--ro-bind-try", 2),
    ("--remount-ro", 1),
    ("--tmpfs", 1),
    ("--dev", 1),
    ("--proc", 1),
    ("--mqueue", 1),
    ("--dir", 1),
    ("--symlink", 2),
    ("--chmod", 2),
    ("--perms", 1),
    ("--size", 1),
    ("--file", 2),
    ("--bind-data", 2),
    ("--ro-bind-data", 2),
    ("--overlay-src", 1),
    ("--overlay", 3),
    ("--tmp-overlay", 1),
    ("--ro-overlay", 1),
    ("--ro-host", 0),
];

fn octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).map_err(|_| format!("{s:?} is not an octal mode"))
}

/// Split bubblewrap's filesystem options out of `argv`: returns them as a view and the rest
/// for clap. Scanning stops at `--` or at PROGRAM (the first word that is neither an option
/// nor the value of one).
fn take_fs_args(argv: Vec<OsString>) -> Result<(FsArgs, Vec<OsString>), String> {
    use clap::CommandFactory;
    let cmd = Args::command();
    let takes_value = |name: &str| {
        cmd.get_arguments().any(|a| {
            a.get_long().is_some_and(|l| name == format!("--{l}")) && a.get_action().takes_values()
        })
    };
    let mut rest = Vec::new();
    let mut out = FsArgs::default();
    let mut fs: Option<Filesystem> = None;
    let (mut perms, mut size): (Option<u32>, Option<u64>) = (None, None);
    let mut overlay_src: Vec<PathBuf> = Vec::new();
    let mut it = argv.into_iter();
    if let Some(a0) = it.next() {
        rest.push(a0);
    }
    // `--args FD` splices NUL-separated arguments in at its place.
    let mut pending: std::collections::VecDeque<OsString> = std::collections::VecDeque::new();
    let next = |it: &mut std::vec::IntoIter<OsString>,
                pending: &mut std::collections::VecDeque<OsString>| {
        pending.pop_front().or_else(|| it.next())
    };
    while let Some(arg) = next(&mut it, &mut pending) {
        let s = arg.to_string_lossy().into_owned();
        if s == "--" || !s.starts_with('-') {
            rest.push(arg);
            rest.extend(pending.drain(..));
            rest.extend(it);
            break;
        }
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(o, _)| *o == s) {
            return Err(format!("{s}: {why}"));
        }
        if let Some(&(_, ours, n)) = ALIASES.iter().find(|(o, _, _)| *o == s) {
            rest.extend(ours.iter().map(OsString::from));
            for _ in 0..n {
                rest.push(next(&mut it, &mut pending).ok_or_else(|| format!("{s} needs a value"))?);
            }
            continue;
        }
        let mut value =
            |what: &str| next(&mut it, &mut pending).ok_or_else(|| format!("{s} needs {what}"));
        match s.as_str() {
            "--args" => {
                let fd = value("an fd")?;
                let fd: i32 = fd
                    .to_string_lossy()
                    .parse()
                    .map_err(|_| format!("--args {fd:?}: not an fd"))?;
                let data = read_fd(fd).map_err(|e| format!("--args {fd}: {e}"))?;
                let words: Vec<OsString> = data
                    .split(|&b| b == 0)
                    .filter(|w| !w.is_empty())
                    .map(|w| {
                        OsString::from(
                            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(w),
                        )
                    })
                    .collect();
                for w in words.into_iter().rev() {
                    pending.push_front(w);
                }
                continue;
            }
            "--chdir" => out.chdir = Some(value("a directory")?),
            "--setenv" => {
                let k = value("a name and a value")?;
                let v = value("a name and a value")?;
                out.env.push((k, Some(v)));
            }
            "--unsetenv" => out.env.push((value("a name")?, None)),
            "--clearenv" => out.env.push((OsString::new(), None)),
            "--argv0" => out.argv0 = Some(value("a value")?),
            "--block-fd" => {
                let fd = value("an fd")?;
                out.block_fd = Some(
                    fd.to_string_lossy()
                        .parse()
                        .map_err(|_| format!("--block-fd {fd:?}: not an fd"))?,
                );
            }
            "--json-status-fd" | "--info-fd" => {
                let fd = value("an fd")?;
                let fd: i32 = fd
                    .to_string_lossy()
                    .parse()
                    .map_err(|_| format!("{s} {fd:?}: not an fd"))?;
                if s == "--info-fd" {
                    out.info_fd = Some(fd);
                } else {
                    out.json_status_fd = Some(fd);
                }
            }
            "--sync-fd" => {
                // Kept open by nsrun's processes (never PROGRAM) until the sandbox is gone,
                // so that its reader sees EOF then.
                let fd = value("an fd")?;
                let fd: i32 = fd
                    .to_string_lossy()
                    .parse()
                    .map_err(|_| format!("--sync-fd {fd:?}: not an fd"))?;
                // SAFETY: F_SETFD on a number the caller gave; a closed one fails with EBADF.
                if fd < 3 || unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
                    return Err(format!(
                        "--sync-fd {fd}: not an open file descriptor above 2"
                    ));
                }
            }
            "--die-with-parent" => out.die_with_parent = true,
            "--unshare-cgroup" | "--unshare-cgroup-try" => out.cgroup = true,
            "--share-net" => out.share_net = true,
            "--cap-drop" => out
                .cap_drop
                .push(value("a capability")?.to_string_lossy().into_owned()),
            _ => {}
        }
        if matches!(
            s.as_str(),
            "--sync-fd"
                | "--json-status-fd"
                | "--info-fd"
                | "--chdir"
                | "--setenv"
                | "--unsetenv"
                | "--clearenv"
                | "--argv0"
                | "--block-fd"
                | "--die-with-parent"
                | "--unshare-cgroup"
                | "--unshare-cgroup-try"
                | "--share-net"
                | "--cap-drop"
        ) {
            continue;
        }
        let Some(&(name, n)) = FS_OPTIONS.iter().find(|(o, _)| *o == s) else {
            let value = takes_value(&s) && !s.contains('=');
            rest.push(arg);
            if value && let Some(v) = next(&mut it, &mut pending) {
                rest.push(v);
            }
            continue;
        };
        let mut v: Vec<OsString> = Vec::new();
        for _ in 0..n {
            v.push(next(&mut it, &mut pending).ok_or_else(|| format!("{name} needs {n} values"))?);
        }
        let p = |i: usize| PathBuf::from(&v[i]);
        let view = fs.get_or_insert_with(|| {
            if name == "--ro-host" {
                Filesystem::host_read_only()
            } else {
                Filesystem::empty()
            }
        });
        match name {
            "--ro-host" => {}
            "--bind" => drop(view.bind(p(0), p(1))),
            "--bind-try" => drop(view.bind_try(p(0), p(1))),
            "--dev-bind" => drop(view.dev_bind(p(0), p(1))),
            "--dev-bind-try" => drop(view.dev_bind_try(p(0), p(1))),
            "--ro-bind" => drop(view.ro_bind(p(0), p(1))),
            "--ro-bind-try" => drop(view.ro_bind_try(p(0), p(1))),
            "--remount-ro" => drop(view.remount_ro(p(0))),
            "--tmpfs" => drop(view.tmpfs_with(p(0), size.take(), perms.take())),
            "--dev" => drop(view.dev(p(0))),
            "--proc" if p(0) == Path::new("/proc") => out.proc = true,
            "--proc" => return Err("--proc: only /proc (pid 1 mounts it)".into()),
            "--mqueue" => drop(view.mqueue(p(0))),
            "--dir" => drop(view.dir(p(0), perms.take().unwrap_or(0o755))),
            "--symlink" => drop(view.symlink(p(0), p(1))),
            "--chmod" => drop(view.chmod(p(1), octal(&v[0].to_string_lossy())?)),
            "--perms" => perms = Some(octal(&v[0].to_string_lossy())?),
            "--size" => {
                size = Some(
                    v[0].to_string_lossy()
                        .parse()
                        .map_err(|_| format!("--size {:?}: not a number of bytes", v[0]))?,
                )
            }
            "--file" | "--bind-data" | "--ro-bind-data" => {
                let fd: i32 = v[0]
                    .to_string_lossy()
                    .parse()
                    .map_err(|_| format!("{name} {:?}: not an fd", v[0]))?;
                let data = read_fd(fd).map_err(|e| format!("{name} {fd}: {e}"))?;
                let mode = perms.take().unwrap_or(0o644);
                if name == "--ro-bind-data" {
                    view.ro_file(p(1), data, mode);
                } else {
                    view.file(p(1), data, mode);
                }
            }
            "--overlay-src" => overlay_src.push(p(0)),
            "--overlay" | "--tmp-overlay" | "--ro-overlay" => {
                // Later sources are higher layers; the view takes the top first.
                let lowers: Vec<PathBuf> = overlay_src.drain(..).rev().collect();
                let (upper, dst) = match name {
                    "--overlay" => (
                        Upper::Dir {
                            upper: p(0),
                            work: p(1),
                        },
                        p(2),
                    ),
                    "--tmp-overlay" => (Upper::Tmpfs, p(0)),
                    _ => (Upper::ReadOnly, p(0)),
                };
                view.overlay(lowers, upper, dst);
            }
            _ => unreachable!("every option of FS_OPTIONS is handled"),
        }
    }
    out.fs = fs;
    Ok((out, rest))
}

/// bubblewrap's options that shape PROGRAM's command: its directory, environment and argv0;
/// `--block-fd` waits for EOF (or a byte) on the fd first.
fn apply_command_args(a: &FsArgs, cmd: &mut Command) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    if let Some(d) = &a.chdir {
        cmd.current_dir(d);
    }
    for (k, v) in &a.env {
        match v {
            Some(v) => drop(cmd.env(k, v)),
            None if k.is_empty() => drop(cmd.env_clear()),
            None => drop(cmd.env_remove(k)),
        }
    }
    if let Some(a0) = &a.argv0 {
        cmd.arg0(a0);
    }
    if let Some(fd) = a.block_fd {
        read_fd(fd).map_err(|e| format!("--block-fd {fd}: {e}"))?;
    }
    Ok(())
}

fn fail(code: i32, err: &dyn std::fmt::Display) -> ! {
    eprintln!("nsrun: {err}");
    std::process::exit(code)
}

pub fn main() {
    // A usage error is nsrun failing: 125, as env(1) and timeout(1) do (clap would exit 2,
    // which PROGRAM could have returned too). --help and --version still exit 0.
    let (fs_args, argv) = match take_fs_args(std::env::args_os().collect()) {
        Ok(x) => x,
        Err(e) => fail(125, &e),
    };
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            std::process::exit(125)
        }
        Err(e) => e.exit(),
    };
    let sup = match supervisor(&args, &fs_args.cap_drop) {
        Ok(s) => s,
        Err(e) => fail(125, &e),
    };
    if fs_args.die_with_parent {
        // The waiter dies with the process that started nsrun, and pid 1 with the waiter.
        // SAFETY: prctl with plain integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    }
    let mut ns = namespaces(&args);
    if fs_args.cgroup {
        ns.cgroup(true);
    }
    if fs_args.share_net {
        ns.net(false);
    }
    if let Some(fs) = fs_args.fs.clone() {
        // A view needs a mount namespace of its own.
        ns.mount(true).filesystem(fs);
    }
    if fs_args.proc {
        ns.mount(true).pid(true);
    }
    for (name, fd) in [
        ("--json-status-fd", fs_args.json_status_fd),
        ("--info-fd", fs_args.info_fd),
    ] {
        let Some(fd) = fd else { continue };
        if !ns.kinds().contains(Namespace::Pid) {
            fail(
                125,
                &format_args!("{name}: needs a new pid namespace (-p or --unshare-pid)"),
            );
        }
        // SAFETY: F_GETFD only asks whether the number is open.
        if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            fail(
                125,
                &format_args!("{name} {fd}: not an open file descriptor above 2"),
            );
        }
        // SAFETY: the caller handed this open fd to nsrun for it; nothing else here owns it.
        let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        if name == "--info-fd" {
            ns.info_fd(owned);
        } else {
            ns.json_status_fd(owned);
        }
    }
    let entered = match enter(ns) {
        Ok(e) => e,
        Err(e) => fail(125, &e),
    };
    if !entered.skipped().is_empty() {
        eprintln!(
            "nsrun: skipped (not supported by this kernel): {}",
            entered.skipped()
        );
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(125, &format_args!("start runtime: {e}")),
    };
    let mut cmd = Command::new(&args.program);
    cmd.args(&args.args);
    if let Err(e) = apply_command_args(&fs_args, &mut cmd) {
        eprintln!("nsrun: {e}");
        exit_as_status(std::os::unix::process::ExitStatusExt::from_raw(125 << 8));
    }
    let result = rt.block_on(sup.run(cmd));
    match result {
        Ok(status) => exit_as_status(status),
        Err(e) => {
            let nsbox_err = nsbox::Error::from_io(&e);
            let code = match e.kind() {
                // A step before the exec (an rlimit above the hard limit, say) is nsrun's
                // failure, however its errno reads.
                _ if nsbox_err.is_some_and(|n| n.step() != nsbox::Step::Exec) => 125,
                io::ErrorKind::NotFound => 127,
                io::ErrorKind::PermissionDenied => 126,
                _ if nsbox_err.and_then(|n| n.errno()) == Some(libc::ENOEXEC) => 126,
                _ => 125,
            };
            // Exit through the pid-1 channel so the waiter outside exits with the same code.
            eprintln!("nsrun: {e}");
            exit_as_status(std::os::unix::process::ExitStatusExt::from_raw(code << 8))
        }
    }
}

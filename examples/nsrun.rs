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
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use nsbox::{Namespace, Namespaces, Supervisor, enter, exit_as_status};

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
        .best_effort(a.best_effort);
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

fn fail(code: i32, err: &dyn std::fmt::Display) -> ! {
    eprintln!("nsrun: {err}");
    std::process::exit(code)
}

fn main() {
    // A usage error is nsrun failing: 125, as env(1) and timeout(1) do (clap would exit 2,
    // which PROGRAM could have returned too). --help and --version still exit 0.
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            std::process::exit(125)
        }
        Err(e) => e.exit(),
    };
    let entered = match enter(namespaces(&args)) {
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
    let mut supervisor = Supervisor::new();
    supervisor.wait_all(args.wait_all);
    if let Some(grace) = args.exit_grace {
        supervisor.exit_grace(grace);
    }
    let result = rt.block_on(supervisor.run(cmd));
    match result {
        Ok(status) => exit_as_status(status),
        Err(e) => {
            let code = match e.kind() {
                io::ErrorKind::NotFound => 127,
                io::ErrorKind::PermissionDenied => 126,
                _ if nsbox::Error::from_io(&e).and_then(|n| n.errno()) == Some(libc::ENOEXEC) => {
                    126
                }
                _ => 125,
            };
            // Exit through the pid-1 channel so the waiter outside exits with the same code.
            eprintln!("nsrun: {e}");
            exit_as_status(std::os::unix::process::ExitStatusExt::from_raw(code << 8))
        }
    }
}

//! nsrun: run a program in new namespaces under a pid-1 supervisor, and exit as it did.
//!
//! ```text
//! nsrun [OPTIONS] [--] PROGRAM [ARGS...]
//! ```
//!
//! Exit status: PROGRAM's own (the same code, or death by the same signal); 125 when nsrun
//! itself fails; 126 when PROGRAM cannot be executed; 127 when it is not found.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use nsbox::{
    Capabilities, Capability, Namespace, Namespaces, SeccompProgram, Supervisor, enter,
    exit_as_status,
};

#[derive(Parser, Debug)]
#[command(
    name = "nsrun",
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
fn supervisor(a: &Args) -> Result<Supervisor, String> {
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
    sup.capabilities(caps);
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
    let sup = match supervisor(&args) {
        Ok(s) => s,
        Err(e) => fail(125, &e),
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
    let result = rt.block_on(sup.run(cmd));
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

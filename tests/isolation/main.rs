//! What a sandboxed command cannot do to the host, through the API (`Sandbox`), one file per
//! property, as root and as an unprivileged user (every sandbox has a user namespace, so both
//! modes run the same checks):
//!
//! - see or signal host processes (pid namespace: /proc lists only the sandbox's pids;
//!   `kill` of the test process or of a host process of the same user fails): `processes`;
//! - reach a socket listening on the host's loopback (own network namespace): `network`;
//! - change the host's hostname (its own UTS namespace changes; without one, sethostname is
//!   refused): `hostname`;
//! - mount or unmount anything visible on the host: `mounts`;
//! - use a capability in the host's user namespace (full CapEff, but relative to its own user
//!   namespace: mknod, chown to an unmapped id, /etc/shadow when unprivileged all fail):
//!   `capabilities`;
//! - write the host's files (the default view: the host read-only, a fresh /tmp), see what
//!   an empty root was not given, or mount through a symlink: `filesystem`;
//! - inherit an fd it was not given (an fd opened without O_CLOEXEC by the test): `fds`;
//! - read its init's environment or memory, or ptrace it: `init_access`;
//! - and `Sandbox::no_new_privs`: NoNewPrivs is 1 inside by default, 0 with `no_new_privs(false)`: `no_new_privs`;
//! - write the kernel's files (`/proc/sys`, `/sys`, the cgroup filesystem) or read
//!   `/proc/kcore` and the like: `kernel_files`;
//! - make the calls of the default syscall filter (TIOCSTI, also through the 32-bit ABI,
//!   the keyring, personality flags), or escape a caller's own filter: `syscall_filter`;
//! - unmount the fresh /proc to see the host's /proc beneath it (the mounts are locked):
//!   `proc_lock`.
//!
//! Programs used inside: sh, coreutils, util-linux (mount, umount), hostname, bash (its
//! /dev/tcp), /usr/bin/python3 (ctypes, for ptrace; that test says SKIPPED without it).

#[path = "../support/mod.rs"]
mod support;

mod capabilities;
mod fds;
mod filesystem;
mod hostname;
mod init_access;
mod kernel_files;
mod mounts;
mod network;
mod no_new_privs;
mod proc_lock;
mod processes;
mod syscall_filter;
mod terminal;

use std::collections::BTreeSet;
use std::process::ExitStatus;

use nsbox::{Namespaces, Sandbox};

use support::deadline;

/// What a sandboxed command did.
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run `sh -c script` with extra positional arguments in `ns`, with a deadline.
pub async fn sh(what: &str, ns: Namespaces, script: &str, args: &[&str]) -> Out {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", script, "sh"]).args(args).namespaces(ns);
    run(what, sb).await
}

/// [`sh`] with every capability of the sandbox's user namespace kept and the host's mounts
/// as they are: what the namespaces alone stop, with the default capability drop and
/// filesystem view out of the way.
pub async fn sh_all_caps(what: &str, ns: Namespaces, script: &str, args: &[&str]) -> Out {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", script, "sh"])
        .args(args)
        .namespaces(ns)
        .capabilities(nsbox::Capabilities::all())
        .filesystem(nsbox::Filesystem::host());
    run(what, sb).await
}

pub async fn run(what: &str, mut sb: Sandbox) -> Out {
    let out = deadline(what, sb.output())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    Out {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn lines(s: &str) -> BTreeSet<String> {
    s.lines().map(str::to_string).collect()
}

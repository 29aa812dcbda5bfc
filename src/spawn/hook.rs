//! The parent-side setup hook, and the one nsbox ships: newuidmap/newgidmap.

use std::io;
use std::os::fd::BorrowedFd;

use crate::error::Error;
use crate::steps::Step;

/// What a [`SetupHook`] gets: the sandbox's init, stopped before it sets up its namespaces.
#[derive(Debug)]
pub struct SetupContext<'a> {
    /// The init's pid in the orchestrator's pid namespace.
    pub pid: u32,
    /// A pidfd of the init.
    pub pidfd: BorrowedFd<'a>,
}

/// Parent-side setup, run in the orchestrator after the sandbox's namespaces exist and
/// before the init writes id maps or sets anything up, while the init waits: write
/// multi-range id maps with newuidmap/newgidmap, move a network interface into the network
/// namespace, put the init into a cgroup.
///
/// An error aborts the spawn: the init is killed and reaped, and the error comes back from
/// [`Sandbox::spawn`](crate::Sandbox::spawn).
#[async_trait::async_trait]
pub trait SetupHook: Send + Sync {
    /// Do the setup.
    async fn setup(&self, ctx: &SetupContext<'_>) -> io::Result<()>;

    /// Whether the hook writes the user namespace's uid and gid maps itself (then the init
    /// does not write its single-id default maps).
    fn writes_id_maps(&self) -> bool {
        false
    }
}

/// One line of a uid or gid map: `inside outside count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id outside (in the parent user namespace).
    pub outside: u32,
    /// Number of ids.
    pub count: u32,
}

impl IdMap {
    /// Map the single id `outside` to `inside`.
    pub fn single(inside: u32, outside: u32) -> Self {
        IdMap {
            inside,
            outside,
            count: 1,
        }
    }
}

/// A [`SetupHook`] that writes multi-range id maps with newuidmap(1) and newgidmap(1), so an
/// unprivileged user's subordinate ids (from /etc/subuid, /etc/subgid) are usable inside.
///
/// setgroups(2) is denied in the sandbox's user namespace by default, as with the single-id
/// maps: newgidmap leaves it allowed, and a process inside could then drop the caller's
/// supplementary groups and read a file whose group permissions deny one of them (a file
/// `rw----r--` of group `noaccess`). `allow_setgroups` allows it, for programs that must
/// set their groups inside (package managers, su).
#[derive(Clone, Debug)]
pub struct NewIdMaps {
    /// uid map lines.
    pub uid_maps: Vec<IdMap>,
    /// gid map lines.
    pub gid_maps: Vec<IdMap>,
    /// Leave setgroups(2) allowed inside (default false: `deny` is written to
    /// `/proc/PID/setgroups` before the gid map).
    pub allow_setgroups: bool,
}

impl NewIdMaps {
    /// These maps, with setgroups denied.
    pub fn new(uid_maps: Vec<IdMap>, gid_maps: Vec<IdMap>) -> Self {
        NewIdMaps {
            uid_maps,
            gid_maps,
            allow_setgroups: false,
        }
    }
}

#[async_trait::async_trait]
impl SetupHook for NewIdMaps {
    async fn setup(&self, ctx: &SetupContext<'_>) -> io::Result<()> {
        if !self.allow_setgroups {
            // Before the gid map, after which it can no longer change; newgidmap leaves a
            // `deny` in place.
            let path = format!("/proc/{}/setgroups", ctx.pid);
            std::fs::write(&path, "deny")
                .map_err(|e| Error::from_std(Step::Setgroups, &e).with_path(&path))?;
        }
        for (prog, maps) in [("newuidmap", &self.uid_maps), ("newgidmap", &self.gid_maps)] {
            let mut cmd = tokio::process::Command::new(prog);
            cmd.arg(ctx.pid.to_string());
            for m in maps {
                cmd.args([
                    m.inside.to_string(),
                    m.outside.to_string(),
                    m.count.to_string(),
                ]);
            }
            let out = cmd.output().await.map_err(|e| {
                Error::from_std(Step::Hook, &e)
                    .with_path(prog)
                    .with_hint("install the uidmap package")
            })?;
            if !out.status.success() {
                return Err(Error::failed(
                    Step::Hook,
                    io::ErrorKind::Other,
                    format!(
                        "{prog} {}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                )
                .with_hint("the ranges must be in /etc/subuid and /etc/subgid for this user")
                .into());
            }
        }
        Ok(())
    }

    fn writes_id_maps(&self) -> bool {
        true
    }
}

//! Mount propagation and `/proc`.

use std::io;
use std::path::Path;

use nix::mount::{MsFlags, mount};

use crate::error::Error;
use crate::namespace::Propagation;

/// Make `/` and everything under it slave (events flow in from the host, never out) or
/// private. Call it right after creating a mount namespace: many distributions make `/`
/// shared, and a mount made inside would otherwise appear on the host.
pub fn make_root(propagation: Propagation) -> io::Result<()> {
    let flags = MsFlags::MS_REC
        | match propagation {
            Propagation::Slave => MsFlags::MS_SLAVE,
            Propagation::Private => MsFlags::MS_PRIVATE,
        };
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).map_err(|e| {
        Error::new(
            match propagation {
                Propagation::Slave => "make / rslave",
                Propagation::Private => "make / rprivate",
            },
            None,
            e,
        )
        .into_io()
    })
}

/// Mount a fresh procfs on `/proc` (nosuid, nodev, noexec).
///
/// Only [`enter`](crate::enter()) and the sandbox's child call this, and only after they made a
/// new mount namespace themselves: it can never cover the host's `/proc`.
pub(crate) fn mount_proc() -> io::Result<()> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| {
        let mut err = Error::new("mount proc on", Some(Path::new("/proc")), e);
        if e == nix::errno::Errno::EPERM {
            err = err.with_hint(
                "the host's /proc has locked submounts or the pid namespace is not owned by \
                 the current user namespace",
            );
        }
        err.into_io()
    })
}

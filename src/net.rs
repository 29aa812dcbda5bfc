//! Network namespace setup: loopback up without the `ip` program.

use std::io;

use crate::error::{Error, errno_of};

/// Bring `lo` up in the current network namespace (ioctl SIOCSIFFLAGS).
pub fn loopback_up() -> io::Result<()> {
    crate::sys::loopback_up().map_err(|e| {
        Error::new(
            "bring loopback up (SIOCSIFFLAGS lo)",
            None,
            errno_of(&e).unwrap_or(nix::errno::Errno::EIO),
        )
        .into_io()
    })
}

//! Network namespace setup: loopback up without the `ip` program.

use std::io;

use crate::error::Error;

/// Bring `lo` up in the current network namespace (ioctl SIOCSIFFLAGS).
pub fn loopback_up() -> io::Result<()> {
    crate::child::init::loopback_up().map_err(|e| {
        Error::new(
            "bring loopback up (SIOCSIFFLAGS lo)",
            None,
            nix::errno::Errno::from_raw(e),
        )
        .into_io()
    })
}

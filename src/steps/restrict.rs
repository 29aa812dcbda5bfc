//! What the command gives up just before its exec: system calls (seccomp filters) and
//! capabilities.

use rustix::io::Errno;
use rustix::thread::{CapabilitySet, CapabilitySets};

use super::{Step, StepError, fail};

/// Install one seccomp filter. Installing needs no_new_privs or CAP_SYS_ADMIN in the current
/// user namespace; without either (an unprivileged caller without a user namespace), set
/// no_new_privs, which the kernel requires for exactly this, and try again.
pub fn install_filter(prog: &[libc::sock_filter]) -> Result<(), StepError> {
    match crate::sys::seccomp_set_filter(prog) {
        Err(libc::EACCES) => {
            super::process::no_new_privs()?;
            crate::sys::seccomp_set_filter(prog).map_err(|e| StepError::new(Step::Seccomp, e))
        }
        r => r.map_err(|e| StepError::new(Step::Seccomp, e)),
    }
}

/// Keep only the capabilities in `keep` (a mask of capability numbers): permitted,
/// effective, inheritable and ambient (so that the kept ones survive the exec of a program
/// run as a non-root uid), and, unless no_new_privs is set, the bounding set, so that no
/// exec brings the others back (root's exec, setuid-root programs, file capabilities).
///
/// With no_new_privs (a sandbox's default) the kernel already refuses every capability an
/// exec would add to the permitted set, so the bounding set is left as it is: emptying it
/// takes one prctl(2) per capability, each a new set of credentials (about 60 us in all,
/// against 0.4 us for no_new_privs).
///
/// Without CAP_SETPCAP (an unprivileged caller without a user namespace) the bounding set
/// cannot change; such a process has no capability to drop.
pub fn drop_capabilities(keep: u64) -> Result<(), StepError> {
    let step = fail(Step::Capabilities);
    let now = rustix::thread::capabilities(None).map_err(&step)?;
    let no_new_privs = rustix::thread::no_new_privs().map_err(&step)?;
    if !no_new_privs && now.effective.contains(CapabilitySet::SETPCAP) {
        for n in 0..64u32 {
            if keep & (1 << n) != 0 {
                continue;
            }
            let cap = CapabilitySet::from_bits_retain(1 << n);
            match rustix::thread::remove_capability_from_bounding_set(cap) {
                Ok(()) => {}
                // Past the kernel's last capability.
                Err(Errno::INVAL) => break,
                Err(e) => return Err(step(e)),
            }
        }
    }
    let kept = CapabilitySet::from_bits_retain(keep) & now.permitted;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: kept,
            permitted: kept,
            inheritable: kept,
        },
    )
    .map_err(&step)?;
    match rustix::thread::clear_ambient_capability_set() {
        // Before Linux 4.3 there is no ambient set.
        Ok(()) | Err(Errno::INVAL) => {}
        Err(e) => return Err(step(e)),
    }
    for n in 0..64u32 {
        if kept.bits() & (1 << n) != 0 {
            let cap = CapabilitySet::from_bits_retain(1 << n);
            rustix::thread::configure_capability_in_ambient_set(cap, true).map_err(&step)?;
        }
    }
    Ok(())
}

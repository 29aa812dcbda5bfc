//! Hostname and NIS domain name in a UTS namespace.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

use crate::error::{Error, invalid};
use crate::namespace::UTS_NAME_MAX;

fn check(step: &'static str, name: &OsStr) -> io::Result<()> {
    if name.as_bytes().contains(&0) || name.len() > UTS_NAME_MAX {
        return Err(invalid(
            step,
            format!("{name:?} must be at most {UTS_NAME_MAX} bytes without NUL"),
        ));
    }
    Ok(())
}

/// sethostname(2).
pub fn set_hostname(name: &OsStr) -> io::Result<()> {
    check("sethostname", name)?;
    nix::unistd::sethostname(name).map_err(|e| Error::new("sethostname", None, e).into_io())
}

/// setdomainname(2).
pub fn set_domainname(name: &OsStr) -> io::Result<()> {
    check("setdomainname", name)?;
    crate::sys::setdomainname(name.as_bytes())
        .map_err(|e| Error::new("setdomainname", None, e).into_io())
}

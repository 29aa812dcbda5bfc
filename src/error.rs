//! The error type: which step failed, on which path, with which errno, and a hint.
//!
//! Every fallible function in nsbox returns [`std::io::Result`]. The [`std::io::Error`]
//! carries an [`Error`] as its inner error (reach it with [`Error::from_io`]), and its
//! [`kind`](std::io::Error::kind) is derived from the errno, so callers can match on
//! `ErrorKind::NotFound` or `ErrorKind::PermissionDenied` as usual.
//!
//! ```
//! let err = nsbox::Error::new("sethostname", None, nix::errno::Errno::EPERM).into_io();
//! assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
//! assert_eq!(nsbox::Error::from_io(&err).unwrap().errno(), Some(libc::EPERM));
//! assert!(err.to_string().starts_with("sethostname: "));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// A failed step of namespace setup or process creation.
#[derive(Debug, Clone)]
pub struct Error {
    step: Cow<'static, str>,
    path: Option<PathBuf>,
    errno: Option<Errno>,
    message: Option<Cow<'static, str>>,
    hint: Option<Cow<'static, str>>,
}

impl Error {
    /// An error of `step` (for example `"unshare user namespace"`), on `path` if any, with `errno`.
    pub fn new(step: impl Into<Cow<'static, str>>, path: Option<&Path>, errno: Errno) -> Self {
        Error {
            step: step.into(),
            path: path.map(Path::to_path_buf),
            errno: Some(errno),
            message: None,
            hint: None,
        }
    }

    /// An error that has no errno (invalid input, a protocol violation).
    pub fn msg(step: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            step: step.into(),
            path: None,
            errno: None,
            message: Some(message.into()),
            hint: None,
        }
    }

    /// Attach a path.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Attach a hint telling the user what to do about it.
    pub fn with_hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The step that failed.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// The path involved, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The raw errno, if the failure came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.errno.map(|e| e as i32)
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The nsbox error inside an [`io::Error`], if it is one.
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref().and_then(|e| e.downcast_ref::<Error>())
    }

    /// Wrap into an [`io::Error`] whose kind follows the errno.
    pub fn into_io(self) -> io::Error {
        let kind = match self.errno {
            Some(e) => io::Error::from_raw_os_error(e as i32).kind(),
            None => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.step)?;
        if let Some(path) = &self.path {
            write!(f, " {}", path.display())?;
        }
        match (&self.message, self.errno) {
            (Some(m), _) => write!(f, ": {m}")?,
            (None, Some(e)) => write!(f, ": {} ({e:?})", e.desc())?,
            (None, None) => {}
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        e.into_io()
    }
}

/// Shorthand: an [`io::Error`] for `step` on `path` with `errno`.
pub(crate) fn step_err(
    step: impl Into<Cow<'static, str>>,
    path: Option<&Path>,
    errno: Errno,
) -> io::Error {
    Error::new(step, path, errno).into_io()
}

/// Shorthand: an invalid-input [`io::Error`] for `step`.
pub(crate) fn invalid(
    step: impl Into<Cow<'static, str>>,
    message: impl Into<Cow<'static, str>>,
) -> io::Error {
    Error::msg(step, message).into_io()
}

/// The errno of an [`io::Error`] produced by std or by nsbox.
pub(crate) fn errno_of(err: &io::Error) -> Option<Errno> {
    err.raw_os_error()
        .or_else(|| Error::from_io(err).and_then(Error::errno))
        .map(Errno::from_raw)
}

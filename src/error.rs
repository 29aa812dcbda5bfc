//! The error type: which step failed, on which path, with which errno, and a hint.
//!
//! Every fallible function in nsbox returns [`std::io::Result`]. The [`std::io::Error`]
//! carries an [`Error`] as its inner error (reach it with [`Error::from_io`], or
//! `err.get_ref()` and `downcast_ref::<nsbox::Error>()`), and its
//! [`kind`](std::io::Error::kind) follows the errno, so callers can match on
//! `ErrorKind::NotFound` or `ErrorKind::PermissionDenied` as usual. Only bad input is
//! `InvalidInput`.
//!
//! ```no_run
//! # async fn f() {
//! let err = nsbox::Sandbox::new("/no/such/program").spawn().await.unwrap_err();
//! assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
//! let e = nsbox::Error::from_io(&err).unwrap();
//! assert_eq!(e.step(), nsbox::Step::Exec);
//! assert_eq!(e.errno(), Some(libc::ENOENT));
//! // exec /no/such/program: No such file or directory (ENOENT) (hint: ...)
//! println!("{err}");
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::ns::kind::Namespace;
use crate::steps::{Step, StepError};

/// A failed step of namespace setup or process creation. Its `Display` (and its `Debug`,
/// which prints the same line) reads `STEP [PATH]: WHAT (ERRNO) (hint: HINT)`.
#[derive(Clone)]
pub struct Error {
    step: Step,
    namespace: Option<Namespace>,
    context: Option<Cow<'static, str>>,
    path: Option<PathBuf>,
    errno: Option<i32>,
    message: Option<Cow<'static, str>>,
    hint: Option<Cow<'static, str>>,
    kind: io::ErrorKind,
}

impl Error {
    /// `errno` in `step`, with the step's own path and the table's hint.
    pub(crate) fn os(step: Step, errno: i32) -> Error {
        Error {
            step,
            namespace: None,
            context: None,
            path: step.fixed_path().map(PathBuf::from),
            errno: Some(errno),
            message: None,
            hint: step.hint(errno, None),
            kind: io::Error::from_raw_os_error(errno).kind(),
        }
    }

    /// The errno of a std or nix [`io::Error`] in `step` (EIO when it has none).
    pub(crate) fn from_std(step: Step, err: &io::Error) -> Error {
        Error::os(step, errno_of(err).unwrap_or(libc::EIO))
    }

    /// Bad input in `step`: InvalidInput, no errno.
    pub(crate) fn invalid(step: Step, message: impl Into<Cow<'static, str>>) -> Error {
        Error::failed(step, io::ErrorKind::InvalidInput, message)
    }

    /// A failure without an errno that is not bad input (a helper program failed, the init
    /// died during setup).
    pub(crate) fn failed(
        step: Step,
        kind: io::ErrorKind,
        message: impl Into<Cow<'static, str>>,
    ) -> Error {
        Error {
            step,
            namespace: None,
            context: None,
            path: None,
            errno: None,
            message: Some(message.into()),
            hint: None,
            kind,
        }
    }

    /// Attach a path.
    pub(crate) fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Words that follow the step's text (`clone3` `with new user,net namespaces`).
    pub(crate) fn with_context(mut self, context: impl Into<Cow<'static, str>>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Attach the namespace kind the step was about; the table's hint follows it.
    pub(crate) fn with_namespace(mut self, ns: Option<Namespace>) -> Self {
        self.namespace = ns;
        if let Some(e) = self.errno {
            self.hint = self.step.hint(e, ns).or(self.hint);
        }
        self
    }

    /// Replace the hint.
    pub(crate) fn with_hint(mut self, hint: impl Into<Cow<'static, str>>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The step that failed.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The namespace kind the step was about ([`Step::Unshare`], [`Step::Join`]).
    pub fn namespace(&self) -> Option<Namespace> {
        self.namespace
    }

    /// The path involved, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The raw errno, if the failure came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The nsbox error inside an [`io::Error`], if it is one.
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref().and_then(|e| e.downcast_ref::<Error>())
    }
}

impl From<StepError> for Error {
    fn from(e: StepError) -> Error {
        let err = Error::os(e.step, e.errno);
        match e.step {
            // The fd shuffle names the fd number it could not make.
            Step::Fds if e.detail > 0 => err.with_context(format!("(fd {})", e.detail)),
            _ => err,
        }
    }
}

impl From<StepError> for io::Error {
    fn from(e: StepError) -> io::Error {
        Error::from(e).into()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.step.text(self.namespace))?;
        if let Some(c) = &self.context {
            write!(f, " {c}")?;
        }
        if let Some(path) = &self.path {
            write!(f, " {}", path.display())?;
        }
        match (&self.message, self.errno) {
            (Some(m), _) => write!(f, ": {m}")?,
            (None, Some(e)) => {
                let errno = nix::errno::Errno::from_raw(e);
                write!(f, ": {} ({errno:?})", errno.desc())?
            }
            (None, None) => {}
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// The same readable line as `Display`: a `main() -> io::Result<()>` that returns an nsbox
/// error prints it as `Error: Custom { kind: NotFound, error: exec /x: ... }`.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind, e)
    }
}

/// The errno of an [`io::Error`] produced by std, nix, rustix or nsbox.
pub(crate) fn errno_of(err: &io::Error) -> Option<i32> {
    err.raw_os_error()
        .or_else(|| Error::from_io(err).and_then(Error::errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_follows_the_errno() {
        let e: io::Error = Error::os(Step::Exec, libc::ENOENT).into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e: io::Error = Error::os(Step::Sethostname, libc::EPERM).into();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let e: io::Error = Error::invalid(Step::Input, "bad").into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e: io::Error = Error::failed(Step::Hook, io::ErrorKind::Other, "failed").into();
        assert_eq!(e.kind(), io::ErrorKind::Other);
    }

    #[test]
    fn the_step_is_reachable_through_get_ref() {
        let e: io::Error = Error::os(Step::MountProc, libc::EPERM).into();
        let inner = e.get_ref().unwrap().downcast_ref::<Error>().unwrap();
        assert_eq!(inner.step(), Step::MountProc);
        assert_eq!(inner.path(), Some(Path::new("/proc")));
        assert!(inner.hint().is_some());
    }

    #[test]
    fn debug_prints_the_readable_line() {
        let e = Error::os(Step::Exec, libc::ENOENT).with_path("/no/such");
        assert_eq!(format!("{e:?}"), e.to_string());
        assert!(
            e.to_string().starts_with("exec /no/such: No such file"),
            "{e}"
        );
        let io: io::Error = e.into();
        assert!(
            format!("{io:?}").contains("exec /no/such: No such file"),
            "{io:?}"
        );
    }
}

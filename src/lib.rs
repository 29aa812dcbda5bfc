//! nsbox runs commands inside fresh Linux namespaces under a pid-1 reaper and hands async
//! callers the exact wait status of the command.
//!
//! Two ways in:
//!
//! 1. **Spawn** ([`Sandbox`]): from a running multi-threaded runtime, create a child in new
//!    namespaces under a small synchronous pid-1 init, and await its exact status. A large
//!    orchestrator starts the [`launcher`] first thing in `main`, so that spawn cost does not
//!    grow with its memory.
//! 2. **Enter** ([`enter()`]): at the top of `main`, before any thread exists, the process moves
//!    itself into new namespaces (with a pid namespace it forks: the original process waits
//!    outside and exits as the inside did). Then it starts a tokio runtime and a
//!    [`Supervisor`] runs the main command, reaps orphans and forwards signals.
//!
//! Both modes run the same setup steps (id maps, mounts, hostname, loopback, joins), and a
//! failure of any step is an [`Error`] naming its [`Step`], path, errno and a hint. The
//! process trees are described in the docs of [`Sandbox`], [`launcher`], [`enter()`] and
//! [`Supervisor`], and with the protocols in `docs/ARCHITECTURE.md`.
//!
//! `#[tokio::main]` starts its worker threads before `main`'s body runs, and the launcher
//! must be forked while the process has one thread: start it in a plain `fn main`, then run
//! the async part.
//!
//! ```no_run
//! use nsbox::{Namespaces, Sandbox, Stdio};
//!
//! fn main() -> std::io::Result<()> {
//!     nsbox::launcher::start()?; // before any thread: the fork server stays small
//!     orchestrate()
//! }
//!
//! #[tokio::main]
//! async fn orchestrate() -> std::io::Result<()> {
//!     let mut sb = Sandbox::new("sh");
//!     sb.args(["-c", "hostname"])
//!         .namespaces(Namespaces::all().hostname("build"))
//!         .stdout(Stdio::piped());
//!     let out = sb.output().await?;
//!     assert_eq!(out.stdout, b"build\n");
//!     Ok(())
//! }
//! ```
//!
//! ```no_run
//! use nsbox::{Namespaces, Supervisor, enter, exit_as_status};
//!
//! fn main() -> std::io::Result<()> {
//!     let _entered = enter(Namespaces::all().hostname("demo"))?;
//!     let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//!     let mut cmd = std::process::Command::new("sh");
//!     cmd.args(["-c", "hostname; echo $$"]);
//!     let status = rt.block_on(Supervisor::new().run(cmd))?;
//!     exit_as_status(status)
//! }
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod caps;
mod cgroup;
mod child;
mod enter;
mod error;
mod exit;
mod fs;
mod limits;
mod ns;
mod proto;
mod seccomp;
mod signals;
mod spawn;
mod status;
#[doc(hidden)]
pub mod steps;
mod sys;

pub use caps::{Capabilities, Capability};
pub use cgroup::{Cgroup, CgroupStats};
pub use enter::supervisor::Supervisor;
pub use enter::{Entered, enter};
pub use error::Error;
pub use exit::exit_as_status;
pub use fs::{Filesystem, Upper};
pub use limits::{EndReason, Resource};
pub use ns::{
    Namespace, NamespaceSet, Namespaces, Propagation, UTS_NAME_MAX, setns_fd, setns_path,
    setns_pidfd, thread_count, unshare,
};
pub use seccomp::SeccompProgram;
pub use signals::{FORWARDED, SignalSet, is_forwarded};
pub use spawn::launcher;
pub use spawn::{
    Child, ChildStderr, ChildStdin, ChildStdout, IdMap, NewIdMaps, Output, Rusage, Sandbox,
    SetupContext, SetupHook, Stdio,
};
pub use steps::Step;

/// Make every later spawn use the clone(2) + pidfd_open(2) fallback, as on a kernel without
/// clone3. For tests of that path only; not part of the API.
#[doc(hidden)]
pub fn force_clone3_fallback() {
    sys::force_clone3_fallback();
}

/// Make pidfd_open(2) fail (ENOSYS) in the clone(2) fallback, as where a seccomp filter
/// refuses it. For tests of that path only; not part of the API.
#[doc(hidden)]
pub fn force_pidfd_open_failure() {
    sys::force_pidfd_open_failure();
}

/// The README's code blocks, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

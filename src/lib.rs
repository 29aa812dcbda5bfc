//! nsbox runs commands inside fresh Linux namespaces under a pid-1 reaper and hands async
//! callers the exact wait status of the command.
//!
//! Two ways in:
//!
//! 1. **Enter** ([`enter()`]): at the top of `main`, before any thread exists, the process moves
//!    itself into new namespaces (with a pid namespace it forks: the original process waits
//!    outside and exits as the inside did). Then it starts a tokio runtime and a
//!    [`Supervisor`] runs the main command, reaps orphans and forwards signals.
//! 2. **Spawn** ([`Sandbox`]): from a running multi-threaded runtime, create a child in new
//!    namespaces under a small synchronous pid-1 init, and await its exact status. A large
//!    orchestrator starts the [`launcher`] first thing in `main`, so that spawn cost does not
//!    grow with its memory.
//!
//! The process trees and the protocols are described in the docs of [`enter`](mod@enter),
//! [`supervisor`], [`sandbox`] and [`launcher`], and in `docs/ARCHITECTURE.md`.
//!
//! ```no_run
//! use nsbox::{Namespaces, Sandbox, Stdio};
//!
//! fn main() -> std::io::Result<()> {
//!     nsbox::launcher::start()?; // before any thread: the fork server stays small
//!     let rt = tokio::runtime::Runtime::new()?;
//!     rt.block_on(async {
//!         let mut sb = Sandbox::new("sh");
//!         sb.args(["-c", "hostname"])
//!             .namespaces(Namespaces::all().hostname("build"))
//!             .stdout(Stdio::piped());
//!         let out = sb.output().await?;
//!         assert_eq!(out.stdout, b"build\n");
//!         Ok(())
//!     })
//! }
//! ```
//!
//! ```no_run
//! use nsbox::{Namespaces, Supervisor, enter, exit_as_status};
//!
//! fn main() -> std::io::Result<()> {
//!     let _entered = enter(&Namespaces::all().hostname("demo"))?;
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

mod child;
pub mod enter;
mod error;
pub mod idmap;
pub mod launcher;
pub mod mount;
mod namespace;
pub mod net;
pub mod sandbox;
mod signals;
pub mod status;
pub mod supervisor;
pub mod sys;
pub mod tty;
pub mod uts;

pub use enter::{Entered, enter};
pub use error::Error;
pub use namespace::{
    Join, JoinSource, Namespace, NamespaceSet, Namespaces, Propagation, UTS_NAME_MAX, setns_fd,
    setns_path, setns_pidfd, thread_count, unshare,
};
pub use sandbox::{
    Child, ChildStderr, ChildStdin, ChildStdout, NewIdMaps, Sandbox, SetupContext, SetupHook, Stdio,
};
pub use signals::{FORWARDED, is_forwarded};
pub use status::exit_as_status;
pub use supervisor::{ExitPolicy, Supervisor};
pub use sys::Rusage;

/// The README's code blocks, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

//! Code that runs in a child between clone and exec, and the sandbox's pid-1 init.
//!
//! # The rule
//!
//! Everything in this module runs in the child of a possibly multi-threaded process, where
//! only async-signal-safe code may run: no allocation or freeing, no locks, no panics (no
//! indexing that can fail, no `unwrap`), no logging, no `format!`, no Drop but an
//! [`OwnedFd`](std::os::fd::OwnedFd)'s close(2). It reads a [`Plan`](crate::proto::Plan)
//! built before the clone, runs the setup [`steps`](crate::steps) (which follow the same
//! rule), makes system calls through rustix, [`crate::sys`] or libc, and leaves only by exec
//! or `_exit`. Failures go back to the orchestrator as a fixed-size
//! [`Report`](crate::proto::report::Report) on the report pipe.
//!
//! - [`init`]: the init's setup sequence and its supervision loop;
//! - [`exec`]: the fd shuffle and the command's side of the fork, up to its exec;
//! - [`foreground`]: the Supervisor's pre-exec hook that takes the terminal.

pub(crate) mod exec;
pub(crate) mod foreground;
pub(crate) mod init;
mod supervise;

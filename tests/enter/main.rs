//! `enter()` and the `Supervisor` through the nsrun example (`src/bin/nsrun.rs` via `examples/nsrun.rs`, built by
//! `cargo test`), one file per behaviour: exit statuses, forwarded signals, Ctrl-C at a
//! terminal, job control, reaping, and what nsrun isolates. Every process a test starts
//! carries a marker in its environment, and none may be left.
//!
//! enter() itself needs a single-threaded process, which libtest is not: its other tests are
//! the `harness = false` binaries tests/enter_refuses_threads/ and
//! tests/enter_signal_before_supervisor/.

#[path = "../support/mod.rs"]
mod support;

mod bwrap_compat;
mod cwd;
mod exit_grace;
mod exit_status;
mod inherited_signals;
mod isolation;
mod job_control;
mod pid1_access;
mod process_limit;
mod reaping;
mod restrictions;
mod rlimits;
mod signals;
mod tty;

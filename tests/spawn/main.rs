//! The spawn mode (`Sandbox`), one file per behaviour: statuses, timeouts, signals, fds, the
//! setup hook, joining namespaces, dropping, leaks, leftover processes, `try_wait`,
//! concurrency, die-with-parent, the clone(2) fallback, coexistence with tokio::process,
//! stdio conversions, the output's facts, the launcher's hint, the tracing span, and the
//! orchestrator example end to end.
//!
//! Tests that must not share this process (a process-wide switch, an exact fd count, a process
//! to SIGKILL) run a part of themselves in a child process of this binary
//! (`support::reexec`).

#[path = "../support/mod.rs"]
mod support;

mod cgroups;
mod clone_fallback;
mod concurrency;
mod die_with_parent;
mod drop;
mod end_reason;
mod exit_grace;
mod fds;
mod hook;
mod init_cwd;
mod join;
mod launcher_hint;
mod leaks;
mod leftovers;
mod orchestrator_example;
mod output_facts;
mod output_limit;
mod rlimits;
mod signal_state;
mod signals;
mod smoke;
mod status;
mod stdio_conversions;
mod timeout;
mod tokio_process;
mod tracing_span;
mod tree_usage;
mod try_wait;

//! Faults, one file per kind: a sandbox's init SIGKILLed from outside, signals that arrive
//! while `spawn()` is half-way, and SIGSTOP/SIGCONT of the command and of the init. (The
//! orchestrator SIGKILLed mid-run is the stress binary's test, tests/stress/.)

#[path = "../support/mod.rs"]
mod support;

mod fd_limit;
mod init_blinded;
mod init_killed;
mod signals_during_spawn;
mod stop_cont;
mod stuck_init_dropped;

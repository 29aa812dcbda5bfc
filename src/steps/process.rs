//! Settings of the process itself that setup needs.

use rustix::process::{DumpableBehavior, Signal};

use super::{Step, StepError, fail};

/// Become a child subreaper, so that orphans come to us (an init without a pid namespace,
/// or a Supervisor that is not pid 1).
pub fn become_subreaper() -> Result<(), StepError> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(fail(Step::Subreaper))
}

/// Set `PR_SET_NO_NEW_PRIVS`: execve never grants privileges again.
pub fn no_new_privs() -> Result<(), StepError> {
    rustix::thread::set_no_new_privs(true).map_err(fail(Step::NoNewPrivs))
}

/// Make the calling process non-dumpable: nothing of the same uid can ptrace it or read its
/// memory through /proc (the init holds a copy of the orchestrator's memory). Cannot fail.
pub fn not_dumpable() {
    let _ = rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable);
}

/// SIGKILL the calling process when its parent thread exits (a single-threaded parent: the
/// parent process). Cannot fail.
pub fn die_with_parent_thread() {
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
}

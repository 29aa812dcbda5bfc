//! The signal-forwarding policy shared by every mode.

/// The signals nsbox forwards to the main command: the ones a user or a supervisor sends to
/// ask a program to do something (tini forwards all but SIGCHLD and the fault and terminal
/// signals; these are the ones that matter in practice).
pub const FORWARDED: [i32; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

/// Whether `sig` is forwarded.
pub fn is_forwarded(sig: i32) -> bool {
    FORWARDED.contains(&sig)
}

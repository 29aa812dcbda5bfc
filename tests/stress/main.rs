//! The reliability stress run (issue 5) and the test that SIGKILLs it mid-run. `harness =
//! false`: the stress run must start nsbox's launcher while the process has one thread.
//!
//! - With any of the stress run's options (`--short`, `--count N`, `--launcher`, ...; see
//!   `run.rs` and docs/RELIABILITY.md), the binary is the stress run:
//!   `cargo test --test stress -- --short` is CI's short mode, run as root and as uid 65534,
//!   with and without `--launcher`.
//! - Otherwise (`cargo test`, with libtest's options and filters) it runs its tests: an
//!   orchestrator SIGKILLed in the middle of a stress run (this binary re-executed in stress
//!   mode) leaves nothing, with and without the launcher.

#[path = "../support/mod.rs"]
mod support;

mod orchestrator_killed;
mod run;

use std::process::ExitCode;

/// The options that make this binary the stress run.
const STRESS_OPTIONS: [&str; 9] = [
    "--short",
    "--count",
    "--concurrency",
    "--launcher",
    "--marker",
    "--no-userns",
    "--warmup",
    "--help",
    "-h",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let stress = args.iter().skip(1).any(|a| {
        STRESS_OPTIONS
            .iter()
            .any(|o| a == o || a.starts_with(&format!("{o}=")))
    });
    if stress {
        return run::main(args);
    }
    let mut h = support::harness::Harness::from_args();
    h.check("orchestrator_sigkilled_mid_stress_leaves_nothing", || {
        orchestrator_killed::kill_mid_run(false)
    });
    h.check(
        "orchestrator_sigkilled_mid_stress_leaves_nothing_with_launcher",
        || orchestrator_killed::kill_mid_run(true),
    );
    h.finish()
}

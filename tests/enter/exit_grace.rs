//! `--exit-grace SECS`: when PROGRAM ends, what is left gets SIGTERM (a daemon can flush),
//! then SIGKILL SECS later; nsrun exits as soon as nothing is left. Without it, what is left
//! gets SIGKILL at once, as before. With and without a pid namespace.

use crate::support::*;

/// PROGRAM starts a leftover that runs `leftover` (after saying it is set up, with SIGUSR1 to
/// PROGRAM), then exits 3.
fn program(leftover: &str) -> String {
    format!("trap 'exit 3' USR1; ({leftover}) & while :; do sleep 0.1 & wait $!; done")
}

fn shapes() -> Vec<Vec<&'static str>> {
    let mut pid = userns_unless_root();
    pid.push("-p");
    vec![pid, userns_unless_root()]
}

/// A leftover that says `got-TERM` on SIGTERM and exits, once PROGRAM knows it is armed.
const TRAPS_TERM: &str =
    "trap 'echo got-TERM; exit 0' TERM; kill -USR1 $$; while :; do sleep 0.1 & wait $!; done";

#[test]
fn with_a_grace_the_leftovers_get_sigterm_first() {
    for flags in shapes() {
        let m = marker();
        let mut args = flags.clone();
        // A grace far longer than any wait here: nsrun must end as soon as nothing is left.
        let script = program(TRAPS_TERM);
        args.extend(["--exit-grace", "1000", "--", "sh", "-c", &script]);
        let out = run(nsrun(&m, &args));
        assert_eq!(out.status.code(), Some(3), "nsrun {args:?}: {out:?}");
        assert!(out.stdout.contains("got-TERM"), "nsrun {args:?}: {out:?}");
        assert_no_leftovers(&m);
    }
}

#[test]
fn without_a_grace_the_leftovers_get_sigkill_at_once() {
    for flags in shapes() {
        let m = marker();
        let mut args = flags.clone();
        let script = program(TRAPS_TERM);
        args.extend(["--", "sh", "-c", &script]);
        let out = run(nsrun(&m, &args));
        assert_eq!(out.status.code(), Some(3), "nsrun {args:?}: {out:?}");
        assert!(!out.stdout.contains("got-TERM"), "nsrun {args:?}: {out:?}");
        assert_no_leftovers(&m);
    }
}

#[test]
fn a_leftover_that_ignores_sigterm_is_killed_when_the_grace_is_over() {
    for flags in shapes() {
        let m = marker();
        let mut args = flags.clone();
        let leftover = format!("trap '' TERM; kill -USR1 $$; exec sleep 1000 {m}");
        let script = program(&leftover);
        args.extend(["--exit-grace", "0.2", "--", "sh", "-c", &script]);
        let out = run(nsrun(&m, &args));
        assert_eq!(out.status.code(), Some(3), "nsrun {args:?}: {out:?}");
        assert_no_leftovers(&m);
    }
}

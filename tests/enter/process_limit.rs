//! The Supervisor needs no new thread to kill and reap what is left when its command ends: a
//! command that takes its supervisor's process limit away (RLIMIT_NPROC 0, with prlimit on its
//! parent) made it panic ("OS can't spawn worker thread", from spawn_blocking); now nsrun
//! exits as the command did and kills the daemon it left.

use std::process::Command;

use crate::support::*;

/// nsrun with `flags` and a command that lowers nsrun's process limit to 0, leaves a daemon
/// tagged with the marker, and exits 3. As root, nsrun runs as uid 65534: root's real uid is
/// exempt from RLIMIT_NPROC.
fn at_the_limit(flags: &[&str]) {
    let m = marker();
    let script =
        format!("prlimit --pid $PPID --nproc=0:0 || exit 99; setsid sleep 1000 {m} & exit 3");
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["--", "sh", "-c", &script]);
    let cmd = if is_root() {
        let mut cmd = Command::new(AS_NOBODY[0]);
        cmd.args(&AS_NOBODY[1..])
            .arg(nsrun_path())
            .args(&args)
            .env(MARKER_VAR, &m)
            .stdin(std::process::Stdio::null());
        cmd
    } else {
        nsrun(&m, &args)
    };
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(3), "{flags:?}: {out:?}");
    assert_no_leftovers(&m);
}

#[test]
fn a_supervisor_at_its_process_limit_still_kills_what_is_left_and_exits_as_its_command() {
    let name =
        "a_supervisor_at_its_process_limit_still_kills_what_is_left_and_exits_as_its_command";
    if !on_path("prlimit") || !on_path("setsid") {
        skip(name, "prlimit or setsid (util-linux) is not installed");
        return;
    }
    if is_root() && !on_path(AS_NOBODY[0]) {
        skip(
            name,
            "setpriv is not installed (needed to leave root's exemption)",
        );
        return;
    }
    // A subreaper (no pid namespace), and pid 1 of a pid namespace (in a user namespace, as
    // uid 65534 outside).
    at_the_limit(&[]);
    at_the_limit(&["-U", "-p"]);
}

//! nsrun's `--rlimit NAME=SOFT[:HARD]` (through `Supervisor::rlimit`): PROGRAM starts with the
//! limits (and its children inherit them), with and without a pid namespace; bad values exit
//! 125 with a message that names the option and the value, and a limit the kernel refuses
//! exits 125 naming the limit, never 126 (PROGRAM could not be executed).

use crate::support::*;

/// The soft and hard values of the `/proc/self/limits` row that starts with `row`.
fn limit<'a>(limits: &'a str, row: &str) -> [&'a str; 2] {
    let line = limits
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("no {row:?} row in:\n{limits}"));
    let mut values = line[row.len()..].split_whitespace();
    [values.next().unwrap(), values.next().unwrap()]
}

/// /proc/self/limits of PROGRAM (a `cat` started by the shell nsrun runs) under `flags`.
fn limits_under(flags: &[&str]) -> String {
    let m = marker();
    let mut args = flags.to_vec();
    args.extend(["--", "sh", "-c", "cat /proc/self/limits"]);
    let out = run(nsrun(&m, &args));
    assert_eq!(out.status.code(), Some(0), "nsrun {args:?}: {out:?}");
    assert_no_leftovers(&m);
    out.stdout
}

#[test]
fn nsruns_program_gets_the_rlimits_it_is_given() {
    for ns in [userns_unless_root(), vec!["-U", "-p"]] {
        let mut flags = ns.clone();
        flags.extend(["--rlimit", "nofile=64"]);
        let limits = limits_under(&flags);
        assert_eq!(limit(&limits, "Max open files"), ["64", "64"], "{flags:?}");

        let mut flags = ns.clone();
        flags.extend([
            "--rlimit",
            "nofile=32:64",
            "--rlimit=core=0",
            "--rlimit",
            "cpu=100",
            "--rlimit",
            "FSIZE=1048576:unlimited",
        ]);
        let limits = limits_under(&flags);
        assert_eq!(limit(&limits, "Max open files"), ["32", "64"], "{flags:?}");
        assert_eq!(
            limit(&limits, "Max core file size"),
            ["0", "0"],
            "{flags:?}"
        );
        // cpu=N: SIGXCPU at N seconds, SIGKILL a second later.
        assert_eq!(limit(&limits, "Max cpu time"), ["100", "101"], "{flags:?}");
        assert_eq!(
            limit(&limits, "Max file size"),
            ["1048576", "unlimited"],
            "{flags:?}"
        );
    }
}

#[test]
fn a_later_rlimit_of_the_same_resource_replaces_the_earlier() {
    let limits = limits_under(&["--rlimit", "nofile=64", "--rlimit", "nofile=48"]);
    assert_eq!(limit(&limits, "Max open files"), ["48", "48"]);
}

/// nsrun with `args` must exit 125 before PROGRAM runs, saying every one of `words`.
fn refused(args: &[&str], words: &[&str]) {
    let m = marker();
    let out = run(nsrun(&m, args));
    assert_eq!(out.status.code(), Some(125), "nsrun {args:?}: {out:?}");
    assert!(
        out.stdout.is_empty(),
        "PROGRAM ran: nsrun {args:?}: {out:?}"
    );
    for w in words {
        assert!(
            out.stderr.contains(w),
            "nsrun {args:?}: stderr lacks {w:?}: {:?}",
            out.stderr
        );
    }
    assert_no_leftovers(&m);
}

#[test]
fn a_soft_rlimit_above_its_hard_one_exits_125() {
    refused(
        &["--rlimit", "nofile=64:32", "--", "echo", "ran"],
        &[
            "--rlimit",
            "nofile=64:32",
            "the soft limit 64 is above the hard limit 32",
        ],
    );
    refused(
        &["--rlimit", "fsize=unlimited:4096", "--", "echo", "ran"],
        &["fsize=unlimited:4096", "above the hard limit 4096"],
    );
}

#[test]
fn bad_rlimit_values_exit_125_naming_the_option_and_the_value() {
    for (value, why) in [
        ("nofile", "expected NAME=SOFT[:HARD]"),
        ("bogus=1", "unknown limit \"bogus\""),
        ("nofile=lots", "\"lots\" is not a number or `unlimited`"),
        ("nofile=1:", "\"\" is not a number"),
        ("nofile=-1", "\"-1\" is not a number"),
    ] {
        refused(
            &["--rlimit", value, "--", "echo", "ran"],
            &["--rlimit", value, why],
        );
    }
}

#[test]
fn an_rlimit_the_kernel_refuses_exits_125_naming_the_limit() {
    // RLIMIT_NOFILE never goes above fs.nr_open, not even for root: setrlimit fails with
    // EPERM in PROGRAM's process, before its exec.
    for ns in [userns_unless_root(), vec!["-U", "-p"]] {
        let mut args = ns.clone();
        args.extend(["--rlimit", "nofile=unlimited", "--", "echo", "ran"]);
        refused(
            &args,
            &[
                "setrlimit",
                "RLIMIT_NOFILE",
                "unlimited",
                "EPERM",
                "nr_open",
            ],
        );
    }
}

//! nsrun exits exactly as PROGRAM did: every exit code, and death by the same signal with
//! the same core flag, with and without a pid namespace (where pid 1 cannot die by its own
//! signal and the waiter outside must reproduce the status).

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};

use crate::support::*;

/// The namespace flags of the two modes: with a pid namespace (the forked waiter path) and
/// without one (nsrun is the supervisor itself).
fn modes() -> Vec<Vec<&'static str>> {
    let mut pid = userns_unless_root();
    pid.push("-p");
    vec![pid, userns_unless_root()]
}

fn exit_codes(range: std::ops::RangeInclusive<u8>) {
    let m = marker();
    for flags in modes() {
        for code in range.clone() {
            let script = format!("exit {code}");
            let mut args = flags.clone();
            args.extend(["--", "sh", "-c", &script]);
            let out = run(nsrun(&m, &args));
            assert_eq!(
                out.status.code(),
                Some(code as i32),
                "nsrun {args:?}: {:?}, stderr {:?}",
                out.status,
                out.stderr
            );
            assert_eq!(out.status.signal(), None);
        }
    }
    assert_no_leftovers(&m);
}

#[test]
fn exit_codes_0_to_63_come_out_unchanged() {
    exit_codes(0..=63);
}

#[test]
fn exit_codes_64_to_127_come_out_unchanged() {
    exit_codes(64..=127);
}

#[test]
fn exit_codes_128_to_191_come_out_unchanged() {
    exit_codes(128..=191);
}

#[test]
fn exit_codes_192_to_255_come_out_unchanged() {
    exit_codes(192..=255);
}

/// Run `sh -c 'kill -SIG $$'` (so PROGRAM dies by SIG) with RLIMIT_CORE unlimited in `dir`,
/// bare or through nsrun with `flags`; return the status and, through nsrun, its pid.
fn die_by(sig: &str, dir: &std::path::Path, m: &str, flags: Option<&[&str]>) -> ExitStatus {
    let script = format!("kill -{sig} $$");
    // `ulimit -c unlimited` in a shell that then execs the real command: no unsafe pre_exec.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -c unlimited 2>/dev/null || ulimit -c \"$(ulimit -H -c)\"; exec \"$@\"")
        .arg("sh");
    if let Some(flags) = flags {
        cmd.arg(nsrun_path()).args(flags).arg("--");
    }
    cmd.args(["sh", "-c", &script])
        .current_dir(dir)
        // nsrun writes the one-page core that carries the core flag under TMPDIR.
        .env("TMPDIR", dir)
        .env(MARKER_VAR, m)
        .stdin(std::process::Stdio::null());
    run(cmd).status
}

#[test]
fn signal_deaths_are_reproduced_with_the_same_signal_and_core_flag() {
    let m = marker();
    let scratch = Scratch::new("signals");
    for (name, num) in [
        ("TERM", libc::SIGTERM),
        ("INT", libc::SIGINT),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
    ] {
        let bare = die_by(name, scratch.path(), &m, None);
        assert_eq!(bare.signal(), Some(num), "bare sh: {bare:?}");
        for flags in modes() {
            let got = die_by(name, scratch.path(), &m, Some(&flags));
            assert_eq!(
                got.signal(),
                Some(num),
                "nsrun {flags:?} for SIG{name}: {got:?}"
            );
            assert_eq!(got.code(), None, "nsrun {flags:?} for SIG{name}: {got:?}");
            assert_eq!(
                got.core_dumped(),
                bare.core_dumped(),
                "core flag of nsrun {flags:?} for SIG{name}: {got:?}, bare: {bare:?}"
            );
        }
    }
    assert_no_leftovers(&m);
}

/// The test above compares the core flag with the bare program's; this one makes sure a set
/// flag is among what it compared.
#[test]
fn a_segv_death_with_a_core_dump_is_reproduced_with_the_core_flag() {
    let m = marker();
    let scratch = Scratch::new("core-flag");
    if !die_by("SEGV", scratch.path(), &m, None).core_dumped() {
        let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
        skip(
            "a_segv_death_with_a_core_dump_is_reproduced_with_the_core_flag",
            &format!(
                "this machine gives no core flag even without nsrun (core_pattern {:?})",
                pattern.trim()
            ),
        );
        return;
    }
    for flags in modes() {
        let got = die_by("SEGV", scratch.path(), &m, Some(&flags));
        assert_eq!(
            got.signal(),
            Some(libc::SIGSEGV),
            "nsrun {flags:?}: {got:?}"
        );
        assert!(got.core_dumped(), "nsrun {flags:?}: no core flag: {got:?}");
    }
    assert_no_leftovers(&m);
}

#[test]
fn the_programs_own_core_file_is_not_overwritten_by_nsrun() {
    let m = marker();
    let scratch = Scratch::new("core-file");
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let bare = die_by("SEGV", scratch.path(), &m, None);
    let core = scratch.path().join("core");
    if pattern.trim() != "core" || !bare.core_dumped() || !core.is_file() {
        skip(
            "the_programs_own_core_file_is_not_overwritten_by_nsrun",
            &format!(
                "needs core_pattern \"core\" and a core flag; have {:?}, {bare:?}",
                pattern.trim()
            ),
        );
        return;
    }
    std::fs::remove_file(&core).unwrap();
    // PROGRAM (a shell, whose core is large) dumps `core` into the working directory; nsrun's
    // own one-page core, which carries the flag, must go elsewhere.
    let got = die_by("SEGV", scratch.path(), &m, Some(&userns_unless_root()));
    assert!(got.core_dumped(), "{got:?}");
    let len = std::fs::metadata(&core).map(|md| md.len()).unwrap_or(0);
    let page = 4096;
    assert!(
        len > page,
        "the program's core in the working directory is {len} bytes: replaced by nsrun's?"
    );
    assert_no_leftovers(&m);
}

#[test]
fn nsrun_version_prints_the_version_and_exits_0() {
    let out = run(nsrun(&marker(), &["--version"]));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("nsrun {}\n", env!("CARGO_PKG_VERSION")),
        "{out:?}"
    );
}

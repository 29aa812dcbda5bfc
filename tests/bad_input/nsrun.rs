//! Bad input through nsrun: each gets its exit code (125 nsrun failed, 126 cannot execute,
//! 127 not found) and a message naming the step and the path, and leaves no process behind.

use std::process::Command;

use crate::serial_blocking;
use crate::support::*;

/// Run nsrun with `args` (tagged with a fresh marker), expect `code` and every one of `words`
/// in its stderr, and that no process is left.
fn expect_failure(args: &[&str], code: i32, words: &[&str]) -> Output {
    let m = marker();
    let mut cmd = nsrun(&m, args);
    // A PATH whose every directory is searchable: with an unsearchable one (say /root/bin
    // for uid 65534) a PATH search ends in EACCES, as execvp(3) and env(1) report too.
    cmd.env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    let out = run(cmd);
    check(&m, args, out, code, words)
}

fn check(m: &str, args: &[&str], out: Output, code: i32, words: &[&str]) -> Output {
    assert_eq!(out.status.code(), Some(code), "nsrun {args:?}: {out:?}");
    assert!(out.stdout.is_empty(), "nsrun {args:?}: {out:?}");
    for w in words {
        assert!(
            out.stderr.contains(w),
            "nsrun {args:?}: stderr lacks {w:?}: {:?}",
            out.stderr
        );
    }
    assert!(out.stderr.starts_with("nsrun: "), "{:?}", out.stderr);
    assert_no_leftovers(m);
    out
}

fn with_and_without_pidns() -> [Vec<&'static str>; 2] {
    let mut pid = userns_unless_root();
    pid.push("-p");
    [pid, userns_unless_root()]
}

#[test]
fn a_missing_program_exits_127_naming_exec_and_the_path() {
    let _serial = serial_blocking();
    let scratch = Scratch::new("missing");
    let prog = scratch.path().join("no-such-program");
    let p = prog.display().to_string();
    for flags in with_and_without_pidns() {
        let mut args = flags.clone();
        args.extend(["--", &p, "arg"]);
        expect_failure(&args, 127, &["exec", &p, "ENOENT"]);
    }
    // A bare name is looked up on PATH.
    let mut args = userns_unless_root();
    args.extend(["--", "nsbox-no-such-program-on-path"]);
    expect_failure(&args, 127, &["exec", "nsbox-no-such-program-on-path"]);
}

#[test]
fn a_file_without_execute_permission_exits_126_naming_exec_and_the_path() {
    let _serial = serial_blocking();
    let scratch = Scratch::new("noexec");
    let prog = scratch.path().join("not-executable");
    std::fs::write(&prog, "#!/bin/sh\necho should not run\n").unwrap();
    let p = prog.display().to_string();
    for flags in with_and_without_pidns() {
        let mut args = flags.clone();
        args.extend(["--", &p]);
        expect_failure(&args, 126, &["exec", &p, "EACCES"]);
    }
}

#[test]
fn a_hostname_over_64_bytes_exits_125_naming_sethostname() {
    let _serial = serial_blocking();
    let long = "h".repeat(65);
    let mut args = userns_unless_root();
    args.extend(["--hostname", &long, "--", "true"]);
    expect_failure(&args, 125, &["sethostname", "65 bytes"]);
    let mut args = userns_unless_root();
    args.extend(["--domainname", &long, "--", "true"]);
    expect_failure(&args, 125, &["setdomainname", "65 bytes"]);
    // 64 bytes is the limit, and fine.
    let ok = "h".repeat(64);
    let mut args = userns_unless_root();
    args.extend(["--hostname", &ok, "--", "cat", "/proc/sys/kernel/hostname"]);
    let m = marker();
    let out = run(nsrun(&m, &args));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("{ok}\n"));
}

#[test]
fn a_hostname_with_a_nul_is_refused_naming_sethostname() {
    // A NUL cannot travel in argv, so this is the library's check, reached by nsrun through
    // the same enter(). It fails before enter() touches the kernel (and before its thread
    // check: this test process has several threads).
    for (ns, step) in [
        (nsbox::Namespaces::new().hostname("a\0b"), "sethostname"),
        (nsbox::Namespaces::new().domainname("a\0b"), "setdomainname"),
    ] {
        let err = nsbox::enter(ns).expect_err("a NUL in a UTS name must be refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        let text = err.to_string();
        assert!(text.starts_with(step) && text.contains("NUL"), "{text}");
    }
}

#[test]
fn join_on_a_file_that_is_not_a_namespace_exits_125_naming_the_join_and_the_path() {
    let _serial = serial_blocking();
    let scratch = Scratch::new("join-bad");
    let file = scratch.path().join("not-a-namespace");
    std::fs::write(&file, "").unwrap();
    let f = file.display().to_string();
    let join = format!("net:{f}");
    expect_failure(
        &["--join", &join, "--", "true"],
        125,
        &["join net namespace", &f, "EINVAL"],
    );
    let mut args = vec!["--join", &join];
    args.extend(with_and_without_pidns()[0].iter().copied());
    args.extend(["--", "true"]);
    expect_failure(&args, 125, &["join net namespace", &f]);
    let missing = format!("net:{f}.missing");
    expect_failure(
        &["--join", &missing, "--", "true"],
        125,
        &["join net namespace", &format!("{f}.missing"), "ENOENT"],
    );
    // A usage error is nsrun failing too: 125, not clap's 2 (which PROGRAM may return).
    let m = marker();
    let args = ["--join", "bogus:/proc/self/ns/net", "--", "true"];
    let out = run(nsrun(&m, &args));
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        out.stderr.contains("--join") && out.stderr.contains("bogus"),
        "{out:?}"
    );
    assert_no_leftovers(&m);
}

#[test]
fn a_namespace_the_caller_may_not_create_exits_125_with_eperm_and_a_hint() {
    let _serial = serial_blocking();
    let m = marker();
    // Unprivileged and without -U, a network namespace needs CAP_SYS_ADMIN. As root, drop to
    // nobody for this one run.
    let nsrun_args = ["-n", "--", "true"];
    let out = if is_root() {
        let mut cmd = Command::new(AS_NOBODY[0]);
        cmd.args(&AS_NOBODY[1..])
            .arg(nsrun_path())
            .args(nsrun_args)
            .env(MARKER_VAR, &m)
            .stdin(std::process::Stdio::null());
        run(cmd)
    } else {
        run(nsrun(&m, &nsrun_args))
    };
    check(
        &m,
        &nsrun_args,
        out,
        125,
        &["unshare net namespace", "EPERM", "hint:", "--user"],
    );
}

#[test]
fn join_of_a_fifo_exits_125_at_once_naming_it() {
    let _serial = serial_blocking();
    let scratch = Scratch::new("nsrun-join-fifo");
    let fifo = scratch.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let join = format!("net:{}", fifo.display());
    let out = expect_failure(
        &["--join", &join, "--", "true"],
        125,
        &[
            "join net namespace",
            &fifo.display().to_string(),
            "not a namespace file",
        ],
    );
    assert!(out.stderr.contains("hint:"), "{out:?}");
}

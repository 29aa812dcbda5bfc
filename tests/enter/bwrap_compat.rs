//! nsrun takes bubblewrap's filesystem options with bubblewrap's meaning: the same argument
//! lists given to `bwrap` and to `nsrun` show the same files, the same modes, the same
//! writability and the same mount flags. Two differences are deliberate and left out of the
//! comparison: nsrun's /proc has the kernel's files protected (read-only or hidden), and its
//! /dev/shm is a tmpfs of its own, writable by any uid (bubblewrap's is a directory of /dev,
//! mode 755).

use crate::support::*;

const PROBE: &str = r#"
    ls -A / | tr '\n' ' '; echo
    ls -A /dev | tr '\n' ' '; echo
    for p in /work /work/x /work/y /tmp /dev; do [ -e "$p" ] && stat -c '%n %a' "$p"; done
    for p in / /usr /tmp /dev /src /work/y; do
        [ -d "$p" ] || continue
        (: > "$p/.nsbox-w") 2>/dev/null && echo "$p writable" || echo "$p read-only"
        rm -f "$p/.nsbox-w" 2>/dev/null
    done
    cut -d' ' -f5,6 /proc/self/mountinfo | grep -v -e '^/proc/' -e '^/dev/shm ' | sort
"#;

/// One deliberate difference: nsrun's device nodes are read-only mounts (a device is read and
/// written all the same; its inode, the host's, cannot be chmod'ed or touched), where bwrap's
/// are read-write. Checked in `probe_output` (lines `PATH FLAGS`), then set aside: the output
/// with those lines' `ro,` as bwrap's `rw,`.
fn devices_as_bwraps(probe_output: &str) -> String {
    let devices = ["full", "null", "random", "tty", "urandom", "zero"];
    probe_output
        .lines()
        .map(|l| {
            let dev = devices.iter().any(|d| l.starts_with(&format!("/dev/{d} ")));
            if dev {
                assert!(l.contains(" ro,"), "a writable device node mount: {l}");
                format!("{}\n", l.replacen(" ro,", " rw,", 1))
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

fn layout(src: &str) -> Vec<String> {
    let mut a: Vec<String> = ["--ro-bind", "/usr", "/usr"].map(String::from).to_vec();
    for d in ["bin", "sbin", "lib", "lib64"] {
        let host = std::path::Path::new("/").join(d);
        match std::fs::read_link(&host) {
            Ok(t) => a.extend([
                "--symlink".into(),
                t.display().to_string(),
                host.display().to_string(),
            ]),
            Err(_) if host.is_dir() => a.extend([
                "--ro-bind".into(),
                host.display().to_string(),
                host.display().to_string(),
            ]),
            Err(_) => {}
        }
    }
    a.extend(
        [
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--mqueue",
            "/dev/mqueue",
            "--bind",
            src,
            "/src",
            "--dir",
            "/work/x",
            "--perms",
            "0700",
            "--dir",
            "/work/y",
            "--remount-ro",
            "/usr",
        ]
        .map(String::from),
    );
    a
}

#[test]
fn bwrap_and_nsrun_given_the_same_arguments_show_the_same_view() {
    let test = "bwrap_and_nsrun_given_the_same_arguments_show_the_same_view";
    if !on_path("bwrap") {
        skip(test, "bubblewrap (bwrap) is not installed");
        return;
    }
    let scratch = Scratch::new("bwrap-compat");
    let _ = std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    );
    let src = scratch.path().display().to_string();
    let args = layout(&src);
    let mut bwrap = std::process::Command::new("bwrap");
    bwrap
        .args([
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-ipc",
        ])
        .args(&args)
        .args(["/bin/sh", "-c", PROBE])
        .stdin(std::process::Stdio::null());
    let theirs = run(bwrap);
    if !theirs.status.success() {
        skip(
            test,
            &format!("bwrap cannot run here: {}", theirs.stderr.trim()),
        );
        return;
    }
    let m = marker();
    let mut ours_args: Vec<&str> = vec!["-U", "-p", "-n", "-u", "-i"];
    ours_args.extend(args.iter().map(String::as_str));
    ours_args.extend(["--", "/bin/sh", "-c", PROBE]);
    let ours = run(nsrun(&m, &ours_args));
    assert_eq!(ours.status.code(), Some(0), "{ours:?}");
    let ours_stdout = devices_as_bwraps(&ours.stdout);
    assert_eq!(
        ours_stdout, theirs.stdout,
        "nsrun:\n{}\nbwrap:\n{}",
        ours.stdout, theirs.stdout
    );
    assert_no_leftovers(&m);
}

/// `--ro-host`: the host read-only as the base (nsbox's, not bubblewrap's), with mounts on
/// top; a filesystem option nsrun does not know of is not silently dropped.
#[test]
fn nsrun_builds_a_read_only_host_view_and_refuses_what_it_cannot_do() {
    let m = marker();
    let out = run(nsrun(
        &m,
        &[
            "-U",
            "--ro-host",
            "--tmpfs",
            "/tmp",
            "--",
            "sh",
            "-c",
            "(: > /usr/.nsbox-w) 2>&1 | grep -c 'Read-only'; echo x > /tmp/y && cat /tmp/y",
        ],
    ));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "1\nx\n", "{out:?}");
    let out = run(nsrun(
        &m,
        &["-U", "-p", "--proc", "/elsewhere", "--", "true"],
    ));
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(out.stderr.contains("--proc"), "{out:?}");
    assert_no_leftovers(&m);
}

/// bubblewrap's other options that nsrun takes (namespaces, ids, directory, environment,
/// `--argv0`) give the same answers as bwrap's; one it does not take is refused
/// with its name, never ignored.
#[test]
fn bwraps_other_options_mean_the_same_in_nsrun() {
    let test = "bwraps_other_options_mean_the_same_in_nsrun";
    if !on_path("bwrap") {
        skip(test, "bubblewrap (bwrap) is not installed");
        return;
    }
    let probe = r#"echo "$0 $(id -u) $(id -g) $(pwd) FOO=$FOO HOME=${HOME-unset}"; ls /sys/class/net | wc -l; readlink /proc/self/ns/net | cut -c1-4"#;
    let args = [
        "--unshare-all",
        "--share-net",
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--ro-bind",
        "/",
        "/",
        "--tmpfs",
        "/tmp",
        "--chdir",
        "/tmp",
        "--setenv",
        "FOO",
        "bar",
        "--unsetenv",
        "HOME",
    ];
    let mut bwrap = std::process::Command::new("bwrap");
    bwrap
        .args(args)
        .args(["sh", "-c", probe])
        .stdin(std::process::Stdio::null());
    let theirs = run(bwrap);
    if !theirs.status.success() {
        skip(
            test,
            &format!("bwrap cannot run here: {}", theirs.stderr.trim()),
        );
        return;
    }
    let m = marker();
    let mut ours_args: Vec<&str> = args.to_vec();
    ours_args.extend(["sh", "-c", probe]);
    let ours = run(nsrun(&m, &ours_args));
    assert_eq!(ours.status.code(), Some(0), "{ours:?}");
    let ours_stdout = devices_as_bwraps(&ours.stdout);
    assert_eq!(
        ours_stdout, theirs.stdout,
        "nsrun:\n{}\nbwrap:\n{}",
        ours.stdout, theirs.stdout
    );
    assert!(
        ours.stdout
            .starts_with("sh 1000 1000 /tmp FOO=bar HOME=unset\n"),
        "{ours:?}"
    );
    // --argv0 (bubblewrap 0.9 and later).
    let out = run(nsrun(&m, &["--argv0", "renamed", "sh", "-c", "echo $0"]));
    assert_eq!(out.stdout, "renamed\n", "{out:?}");
    let out = run(nsrun(&m, &["--as-pid-1", "true"]));
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(out.stderr.contains("--as-pid-1"), "{out:?}");
    assert_no_leftovers(&m);
}

/// `--json-status-fd` and `--info-fd` write bubblewrap's objects with bubblewrap's keys (the
/// pid and namespace inodes differ, of course); a death by a signal adds the exact signal.
#[test]
fn the_json_status_is_bubblewraps_plus_the_signal() {
    let test = "the_json_status_is_bubblewraps_plus_the_signal";
    if !on_path("bwrap") {
        skip(test, "bubblewrap (bwrap) is not installed");
        return;
    }
    // Numbers out, and nsbox's extra fields: what is left must be bubblewrap's.
    let shape = |s: &str| -> String {
        let mut out = String::new();
        let mut digits = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                if !digits {
                    out.push('N');
                }
                digits = true;
            } else {
                digits = false;
                out.push(c);
            }
        }
        out.replace(", \"exit-signal\": N, \"core-dumped\": false", "")
    };
    let m = marker();
    for (script, code) in [("exit 3", 3), ("kill -TERM $$", 128 + libc::SIGTERM)] {
        let json = |prog: &str, args: &[&str]| {
            let cmd = "exec 3>&1 1>/dev/null; exec \"$0\" \"$@\"";
            let mut c = std::process::Command::new("sh");
            c.args(["-c", cmd, prog]).args(args);
            c.env(MARKER_VAR, &m).stdin(std::process::Stdio::null());
            run(c)
        };
        let theirs = json(
            "bwrap",
            &[
                "--unshare-user",
                "--unshare-pid",
                "--dev-bind",
                "/",
                "/",
                "--json-status-fd",
                "3",
                "sh",
                "-c",
                script,
            ],
        );
        if theirs.stdout.is_empty() {
            skip(
                test,
                &format!("bwrap cannot run here: {}", theirs.stderr.trim()),
            );
            return;
        }
        let nsrun = nsrun_path();
        let ours = json(
            nsrun.to_str().unwrap(),
            &[
                "--unshare-user",
                "--unshare-pid",
                "--json-status-fd",
                "3",
                "sh",
                "-c",
                script,
            ],
        );
        assert_eq!(
            shape(&ours.stdout),
            shape(&theirs.stdout),
            "nsrun:\n{}\nbwrap:\n{}",
            ours.stdout,
            theirs.stdout
        );
        assert!(
            ours.stdout.contains(&format!("\"exit-code\": {code}")),
            "{}",
            ours.stdout
        );
        if code > 128 {
            assert!(
                ours.stdout
                    .contains(&format!("\"exit-signal\": {}", libc::SIGTERM)),
                "{}",
                ours.stdout
            );
        }
    }
    // --info-fd: the first object only.
    let mut c = std::process::Command::new("sh");
    c.args([
        "-c",
        "exec 3>&1 1>/dev/null; exec \"$0\" -U -p --info-fd 3 -- true",
    ])
    .arg(nsrun_path())
    .env(MARKER_VAR, &m)
    .stdin(std::process::Stdio::null());
    let info = run(c);
    assert_eq!(info.stdout.lines().count(), 1, "{info:?}");
    assert!(info.stdout.starts_with("{ \"child-pid\": "), "{info:?}");
    assert!(!info.stdout.contains("exit-code"), "{info:?}");
    let out = run(nsrun(&m, &["-U", "-p", "--info-fd", "1", "--", "true"]));
    assert_eq!(out.status.code(), Some(125), "fd 1 is refused: {out:?}");
    assert_no_leftovers(&m);
}

/// `--file FD DEST` and `--ro-bind-data FD DEST` put the bytes read from FD into the view
/// (the second read-only), with `--perms`.
#[test]
fn files_from_fds_land_in_the_view() {
    let m = marker();
    let mut c = std::process::Command::new("sh");
    c.args([
        "-c",
        "exec \"$0\" -U -p --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib \
         --symlink usr/lib64 /lib64 --perms 0600 --file 3 /etc/one --ro-bind-data 4 /etc/two \
         -- /bin/sh -c 'cat /etc/one /etc/two; stat -c %a /etc/one; (echo x > /etc/two) 2>/dev/null && echo written || echo refused' \
         3<<EOF3 4<<EOF4\nfirst\nEOF3\nsecond\nEOF4",
    ])
    .arg(nsrun_path())
    .env(MARKER_VAR, &m)
    .stdin(std::process::Stdio::null());
    let out = run(c);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, "first\nsecond\n600\nrefused\n", "{out:?}");
    assert_no_leftovers(&m);
}

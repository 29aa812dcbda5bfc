//! nsrun's PROGRAM gives up what a sandbox's command gives up: no capability (`--cap-add`
//! keeps some), the default syscall filter (`--no-syscall-filter` turns it off), a seccomp
//! program of the caller's (`--seccomp FD`), the kernel's files read-only
//! (`--no-protect-kernel`), and, with `--new-session`, the terminal's session.

use std::os::unix::process::CommandExt;

use crate::support::*;

const PROBE: &str = r#"
    grep -E '^(CapEff|Seccomp):' /proc/self/status
    set -- $(cat /proc/$$/stat)
    [ "$6" = "$$" ] && echo "session leader" || echo "in the caller's session"
    echo "ppid $PPID"
    (: 3>>/proc/sys/kernel/core_uses_pid) 2>/dev/null && echo "sysctl open" || echo "sysctl refused"
"#;

fn probe(extra: &[&str], seccomp: Option<&std::path::Path>) -> String {
    let m = marker();
    let mut args = vec!["-U", "-p"];
    args.extend_from_slice(extra);
    args.extend(["--", "sh", "-c", PROBE]);
    let mut cmd = nsrun(&m, &args);
    if let Some(p) = seccomp {
        let f = std::fs::File::open(p).expect("the program file");
        let fd = std::os::fd::OwnedFd::from(f);
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        // SAFETY: in the forked child, dup2 onto fd 3 (or, when the file is fd 3 already,
        // clear its close-on-exec flag), which nsrun reads and closes.
        unsafe {
            cmd.pre_exec(move || {
                let r = if raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, 3)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let out = run(cmd);
        drop(fd);
        assert_eq!(out.status.code(), Some(0), "nsrun {extra:?}: {out:?}");
        assert_no_leftovers(&m);
        return out.stdout;
    }
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "nsrun {extra:?}: {out:?}");
    assert_no_leftovers(&m);
    out.stdout
}

#[test]
fn nsruns_program_starts_without_capabilities_and_under_the_default_filter() {
    let out = probe(&[], None);
    assert!(out.contains("CapEff:\t0000000000000000\n"), "{out}");
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    assert!(out.contains("in the caller's session\n"), "{out}");
    assert!(out.contains("sysctl refused\n"), "{out}");
}

#[test]
fn nsruns_options_keep_capabilities_drop_the_filter_and_start_a_session() {
    let out = probe(
        &[
            "--cap-add",
            "net_admin",
            "--no-syscall-filter",
            "--new-session",
            "--no-protect-kernel",
        ],
        None,
    );
    assert!(out.contains("CapEff:\t0000000000001000\n"), "{out}");
    if nix::unistd::getuid().is_root() {
        // Mapped to host root, only the protection refused it.
        assert!(out.contains("sysctl open\n"), "{out}");
    }
    assert!(out.contains("Seccomp:\t0\n"), "{out}");
    assert!(out.contains("session leader\n"), "{out}");
}

#[test]
fn nsrun_installs_a_seccomp_program_read_from_an_fd() {
    let prog = getppid_fails_with_exfull();
    let scratch = Scratch::new("seccomp");
    let path = scratch.path().join("prog.bpf");
    std::fs::write(&path, prog).unwrap();
    let _ = std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    );
    let out = probe(&["--seccomp", "3"], Some(&path));
    // getppid(2) cannot fail, so the shell takes the filter's -EXFULL as its parent's pid.
    assert!(out.contains(&format!("ppid -{}\n", libc::EXFULL)), "{out}");
}

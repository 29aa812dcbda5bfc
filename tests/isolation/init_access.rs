//! A sandboxed command cannot read its init's environment or memory, or ptrace it.

use std::path::Path;

use nsbox::Sandbox;

use crate::support::*;
use crate::{lines, run, sh};

/// Inside: the command's parent is the init (pid 1 with a pid namespace, its host pid
/// without). Read its environ and memory, ptrace it; then the same on a child of its own,
/// which must work (so the probe itself is sound).
const PTRACE_PROBE: &str = r#"
import ctypes, errno, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
def name(e): return errno.errorcode.get(e, str(e))
def probe(what, f):
    try:
        f(); print(what, "ok")
    except OSError as e:
        print(what, "denied", name(e.errno))
def attach(what, pid):
    r = libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    print(what, "ok" if r == 0 else "denied " + name(ctypes.get_errno()))
init = os.getppid()
probe("init environ", lambda: open("/proc/%d/environ" % init, "rb").read())
probe("init mem", lambda: open("/proc/%d/mem" % init, "rb").close())
attach("init ptrace", init)
kid = os.fork()
if kid == 0:
    time.sleep(1000); os._exit(0)
probe("kid environ", lambda: open("/proc/%d/environ" % kid, "rb").read())
probe("kid mem", lambda: open("/proc/%d/mem" % kid, "rb").close())
attach("kid ptrace", kid)
os.kill(kid, signal.SIGKILL)
"#;

/// The same /proc probes as [`PTRACE_PROBE`]'s, in sh: the init's `environ` (read) and `mem`
/// (opened), then a child's of its own as the control.
const PROC_PROBE: &str = r#"
    init=$PPID
    sleep 1000 & kid=$!
    for who in init kid; do
        eval pid=\$$who
        if cat /proc/$pid/environ >/dev/null 2>&1; then echo "$who environ ok"; else echo "$who environ denied"; fi
        if (exec 3</proc/$pid/mem) 2>/dev/null; then echo "$who mem ok"; else echo "$who mem denied"; fi
    done
    kill $kid
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_cannot_read_its_inits_environment_or_memory() {
    for (shape, ns) in [
        ("all namespaces", all()),
        ("no pid namespace", without_pidns()),
    ] {
        let out = sh(shape, ns, PROC_PROBE, &[]).await;
        assert!(out.status.success(), "{shape}: {}", out.stderr);
        assert_eq!(
            lines(&out.stdout),
            lines("init environ denied\ninit mem denied\nkid environ ok\nkid mem ok\n"),
            "{shape}: {}",
            out.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_cannot_ptrace_its_init_or_read_its_memory() {
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        skip(
            "a_sandboxed_command_cannot_ptrace_its_init_or_read_its_memory",
            "/usr/bin/python3 is missing (the /proc half is also \
             a_sandboxed_command_cannot_read_its_inits_environment_or_memory)",
        );
        return;
    }
    for (shape, ns) in [
        ("all namespaces", all()),
        ("no pid namespace", without_pidns()),
    ] {
        let mut sb = Sandbox::new(python);
        sb.args(["-c", PTRACE_PROBE]).namespaces(ns);
        let out = run(shape, sb).await;
        assert!(out.status.success(), "{shape}: {}", out.stderr);
        let got = lines(&out.stdout);
        for want in [
            "init environ denied EACCES",
            "init mem denied EACCES",
            "init ptrace denied EPERM",
            "kid environ ok",
            "kid mem ok",
            "kid ptrace ok",
        ] {
            assert!(got.contains(want), "{shape}: no {want:?} in {}", out.stdout);
        }
    }
}

/// The init is a copy of the orchestrator, and /proc/PID/cmdline is readable by anyone: it
/// must show neither the orchestrator's argv (here the test binary's path and arguments) nor
/// its thread name. This binary clones directly (the init is a copy of the test process);
/// tests/spawn_launcher checks the launcher's inits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_init_shows_neither_the_orchestrators_argv_nor_its_name() {
    let me = std::env::args().next().expect("argv[0]");
    let base = Path::new(&me)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for (shape, ns) in shapes_and_none() {
        let out = sh(
            shape,
            ns,
            r#"tr '\0' ' ' < /proc/$PPID/cmdline; echo; cat /proc/$PPID/comm"#,
            &[],
        )
        .await;
        assert!(out.status.success(), "{shape}: {}", out.stderr);
        assert!(!out.stdout.contains(&base), "{shape}: {}", out.stdout);
        let got: Vec<&str> = out.stdout.lines().map(str::trim).collect();
        assert_eq!(got, ["nsbox-init", "nsbox-init"], "{shape}: {}", out.stdout);
    }
}

//! What a sandboxed command cannot do to the host, through the API (`Sandbox`), each a test,
//! as root and as an unprivileged user (every sandbox has a user namespace, so both modes
//! run the same checks):
//!
//! - see or signal host processes (pid namespace: /proc lists only the sandbox's pids;
//!   `kill` of the test process or of a host process of the same user fails);
//! - reach a socket listening on the host's loopback (own network namespace);
//! - change the host's hostname (its own UTS namespace changes; without one, sethostname is
//!   refused);
//! - mount or unmount anything visible on the host;
//! - use a capability in the host's user namespace (full CapEff, but relative to its own user
//!   namespace: mknod, chown to an unmapped id, /etc/shadow when unprivileged all fail);
//! - inherit an fd it was not given (an fd opened without O_CLOEXEC by the test);
//! - ptrace its init or read its memory (/proc/1/environ, /proc/1/mem, PTRACE_ATTACH);
//! - and `Sandbox::no_new_privs`: NoNewPrivs is 1 inside with it, 0 without.
//!
//! - unmount the fresh /proc to see the host's /proc beneath it (the mounts are locked).
//!
//! Programs used inside: sh, coreutils, util-linux (mount, umount), hostname, bash (its
//! /dev/tcp), /usr/bin/python3 (ctypes, for ptrace; the ptrace part says SKIPPED without it).

mod common_sandbox;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitStatus;

use common_sandbox::*;
use nsbox::{Namespaces, Sandbox, Stdio};
use tokio::io::AsyncWriteExt;

struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Run `sh -c script` with extra positional arguments in `ns`, with a deadline.
async fn sh(what: &str, ns: Namespaces, script: &str, args: &[&str]) -> Out {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", script, "sh"]).args(args).namespaces(ns);
    run(what, sb).await
}

async fn run(what: &str, mut sb: Sandbox) -> Out {
    let out = deadline(what, sb.output())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    Out {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn lines(s: &str) -> BTreeSet<String> {
    s.lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_cannot_see_or_signal_host_processes() {
    // A host process of the same user, which the sandbox will try to kill.
    let m = marker();
    let mut victim = std::process::Command::new("sleep")
        .args(["1000", &m])
        .spawn()
        .expect("start a host sleep");
    let me = std::process::id().to_string();
    let victim_pid = victim.id().to_string();
    let script = r#"
        for p in /proc/[0-9]*; do echo "pid ${p#/proc/}"; done
        kill -0 "$1" 2>/dev/null && echo "signal test: ok" || echo "signal test: failed"
        kill -KILL "$2" 2>/dev/null && echo "signal victim: ok" || echo "signal victim: failed"
    "#;
    let out = sh("pidns", all(), script, &[&me, &victim_pid]).await;
    assert!(out.status.success(), "{}", out.stderr);
    let got = lines(&out.stdout);
    // Only the init (1) and the shell (2): no host pid, not even the test's.
    let pids: BTreeSet<&str> = got.iter().filter_map(|l| l.strip_prefix("pid ")).collect();
    assert_eq!(pids, BTreeSet::from(["1", "2"]), "{}", out.stdout);
    assert!(got.contains("signal test: failed"), "{}", out.stdout);
    assert!(got.contains("signal victim: failed"), "{}", out.stdout);
    assert!(
        victim.try_wait().expect("try_wait").is_none(),
        "the host process was killed from inside the sandbox"
    );
    victim.kill().expect("kill the host sleep");
    victim.wait().expect("reap the host sleep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandbox_with_its_own_network_namespace_cannot_reach_the_hosts_loopback() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on 127.0.0.1");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let script = r#"
        if exec 3<>"/dev/tcp/127.0.0.1/$1"; then echo connected; else echo "no connection"; fi
    "#;
    let probe = |ns: Namespaces| {
        let mut sb = Sandbox::new("bash");
        sb.args(["-c", script, "bash", &port]).namespaces(ns);
        sb
    };
    // Control: without a network namespace the probe does connect, and the host accepts it.
    let out = run("no netns", probe(Namespaces::new().user(true).clone())).await;
    assert_eq!(out.stdout, "connected\n", "control: {}", out.stderr);
    deadline("accept the control connection", async {
        loop {
            match listener.accept() {
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    })
    .await;
    // With its own network namespace: refused by its own lo, and nothing reaches the host.
    let out = run("netns", probe(all())).await;
    assert_eq!(out.stdout, "no connection\n", "{}", out.stderr);
    assert!(
        out.stderr.contains("Connection refused"),
        "{:?}",
        out.stderr
    );
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host listener got a connection from the sandbox: {other:?}"),
    }
}

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").expect("read the host's hostname")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_cannot_change_the_hosts_hostname() {
    let before = host_hostname();
    // With a UTS namespace: the command's sethostname changes only its own.
    let out = sh(
        "uts",
        all().hostname("nsbox-iso-set").clone(),
        "hostname nsbox-iso-changed && cat /proc/sys/kernel/hostname",
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "nsbox-iso-changed\n");
    assert_eq!(host_hostname(), before, "the host's hostname changed");
    // Without a UTS namespace (only a user namespace), sethostname needs CAP_SYS_ADMIN in the
    // host's user namespace and is refused. The name tried is the host's own, so a wrongful
    // success would be caught without changing anything.
    let out = sh(
        "no uts",
        Namespaces::new().user(true).clone(),
        "hostname \"$1\"",
        &[before.trim_end()],
    )
    .await;
    assert!(
        !out.status.success(),
        "sethostname on the host's UTS namespace succeeded: {}",
        out.stderr
    );
    assert_eq!(host_hostname(), before, "the host's hostname changed");
}

/// The host's mount points, from /proc/self/mountinfo.
fn host_mount_points() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_cannot_mount_or_unmount_anything_visible_on_the_host() {
    let scratch = Scratch::new("mounts");
    let s = scratch.path().display().to_string();
    std::fs::create_dir(scratch.path().join("inside")).unwrap();
    std::fs::create_dir(scratch.path().join("host")).unwrap();
    let inside = format!("{s}/inside");
    let host = format!("{s}/host");
    // As root the test also mounts a tmpfs on the host, which the sandbox then unmounts.
    let host_mounted = if is_root() {
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "nsbox-iso-host", &host])
            .status()
            .expect("mount");
        assert!(st.success(), "mount a tmpfs on the host");
        std::fs::write(format!("{host}/host-file"), "host\n").unwrap();
        true
    } else {
        skipped(
            "unmount a host mount from inside",
            "needs root to make a host mount (the tmpfs-inside half runs)",
        );
        false
    };
    let before = host_mount_points();
    let script = r#"
        mount -t tmpfs nsbox-iso-inside "$1" && echo inside > "$1/file" && mkdir "$1/sub" &&
            mount -t tmpfs nsbox-iso-sub "$1/sub" && umount "$1/sub" && echo "mounted inside"
        if [ -e "$2/host-file" ]; then umount -l "$2" && echo "unmounted host"; fi
        grep -c nsbox-iso-inside /proc/self/mountinfo
    "#;
    let mut shapes = vec![("user namespace", all())];
    if is_root() {
        // Without a user namespace the host's mounts are not locked inside: the unmount
        // succeeds there, and only propagation (/ made rslave) keeps the host intact.
        shapes.push(("no user namespace", Namespaces::new().mount(true).clone()));
    }
    for (shape, ns) in shapes {
        let out = sh(shape, ns, script, &[&inside, &host]).await;
        assert!(out.status.success(), "{shape}: {}", out.stderr);
        assert!(
            out.stdout.starts_with("mounted inside\n"),
            "{shape}: {}{}",
            out.stdout,
            out.stderr
        );
        assert!(out.stdout.ends_with("1\n"), "{shape}: {}", out.stdout);
        assert_eq!(host_mount_points(), before, "{shape}: host mounts changed");
        assert!(
            !Path::new(&format!("{inside}/file")).exists(),
            "{shape}: the inside tmpfs's file is visible on the host"
        );
        if host_mounted {
            assert!(
                Path::new(&format!("{host}/host-file")).exists(),
                "{shape}: the host's tmpfs is gone"
            );
        }
    }
    if host_mounted {
        let st = std::process::Command::new("umount")
            .arg(&host)
            .status()
            .expect("umount");
        assert!(st.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_holds_no_capability_in_the_hosts_user_namespace() {
    let scratch = Scratch::new("caps");
    let s = scratch.path().display().to_string();
    std::fs::write(scratch.path().join("mine"), "").unwrap();
    let script = r#"
        grep CapEff /proc/self/status
        echo "uid_map $(cat /proc/self/uid_map)"
        echo "userns $(readlink /proc/self/ns/user)"
        mknod "$1/null" c 1 3 2>/dev/null && echo "mknod: ok" || echo "mknod: failed"
        chown 12345 "$1/mine" 2>/dev/null && echo "chown: ok" || echo "chown: failed"
        cat /etc/shadow >/dev/null 2>&1 && echo "shadow: ok" || echo "shadow: failed"
    "#;
    let out = sh("caps", all(), script, &[&s]).await;
    assert!(out.status.success(), "{}", out.stderr);
    let get = |key: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key:?} in {}", out.stdout))
            .trim()
            .to_string()
    };
    // Full capabilities...
    let cap = u64::from_str_radix(&get("CapEff:"), 16).expect("CapEff is hex");
    assert_ne!(cap, 0, "no capability at all inside: {}", out.stdout);
    // ...in a user namespace of its own, where only the caller's id is mapped...
    let uid = nix::unistd::getuid().as_raw();
    let map: Vec<String> = get("uid_map")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(map, ["0", &uid.to_string(), "1"], "{}", out.stdout);
    let host_userns = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(get("userns"), host_userns.display().to_string());
    // ...so nothing that needs a capability in the host's user namespace works.
    assert_eq!(get("mknod:"), "failed", "a device node was made");
    assert!(!scratch.path().join("null").exists());
    assert_eq!(get("chown:"), "failed", "chown to an unmapped id worked");
    if is_root() {
        // Root inside maps to root outside: /etc/shadow's owner check passes by plain
        // permission bits, without a capability. Not a leak of a capability.
        skipped(
            "/etc/shadow unreadable inside",
            "the test runs as root, whose id the sandbox maps to itself",
        );
    } else {
        assert_eq!(get("shadow:"), "failed", "/etc/shadow was readable");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_inherits_no_fd_it_was_not_given() {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let scratch = Scratch::new("fds");
    let leak = scratch.path().join("leak-probe");
    let given = scratch.path().join("given");
    std::fs::write(&leak, "").unwrap();
    std::fs::write(&given, "").unwrap();
    // Without O_CLOEXEC: an exec in this process would hand them on.
    let leak_fd = open(&leak, OFlag::O_RDONLY, Mode::empty()).expect("open without O_CLOEXEC");
    let (leak_r, leak_w) = nix::unistd::pipe().expect("pipe without O_CLOEXEC");
    for (shape, ns) in both_shapes() {
        let m = marker();
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", "echo ready; read x", &m])
            .namespaces(ns)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .pass_fd(7, std::fs::File::open(&given).unwrap());
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        read_until(&mut out, "ready\n", shape).await;
        let found = pids_with_marker(&m);
        assert_eq!(found.len(), 1, "{shape}: {found:?}");
        let pid = found[0].0;
        let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("list the command's fds")
            .flatten()
            .map(|e| {
                let n = e.file_name().to_str().unwrap().parse().unwrap();
                let t = std::fs::read_link(e.path()).unwrap_or_default();
                (n, t.display().to_string())
            })
            .collect();
        fds.sort();
        let numbers: Vec<i32> = fds.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [0, 1, 2, 7], "{shape}: {fds:?}");
        assert_eq!(fds[3].1, given.display().to_string(), "{shape}: {fds:?}");
        let leaked = leak.display().to_string();
        assert!(
            !fds.iter().any(|(_, t)| *t == leaked),
            "{shape}: the leak probe is inside: {fds:?}"
        );
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"done\n").await.unwrap();
        drop(stdin);
        let st = deadline(shape, child.wait()).await.expect("wait");
        assert!(st.success(), "{shape}: {st:?}");
    }
    drop((leak_fd, leak_r, leak_w));
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_cannot_ptrace_its_init_or_read_its_memory() {
    let python = Path::new("/usr/bin/python3");
    for (shape, ns) in [
        ("all namespaces", all()),
        ("no pid namespace", without_pidns()),
    ] {
        if !python.exists() {
            skipped(
                "ptrace of the init",
                "/usr/bin/python3 is missing; only the /proc checks run",
            );
            let out = sh(
                shape,
                ns,
                "cat /proc/$PPID/environ >/dev/null && echo environ-ok; \
                 cat /proc/$PPID/mem >/dev/null 2>&1; head -c1 /proc/$PPID/mem >/dev/null && echo mem-ok; true",
                &[],
            )
            .await;
            assert!(!out.stdout.contains("ok"), "{shape}: {}", out.stdout);
            continue;
        }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_new_privs_is_set_for_the_command_only_when_asked() {
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_nnp = mine.lines().any(|l| l == "NoNewPrivs:\t1");
    for (on, want) in [(true, "1"), (false, "0")] {
        if !on && host_nnp {
            skipped(
                "NoNewPrivs 0 without the option",
                "the test process itself runs with no_new_privs, which every child inherits",
            );
            continue;
        }
        for (shape, ns) in both_shapes() {
            let mut sb = Sandbox::new("grep");
            sb.args(["NoNewPrivs", "/proc/self/status"])
                .namespaces(ns)
                .no_new_privs(on);
            let out = run(shape, sb).await;
            assert!(out.status.success(), "{shape}: {}", out.stderr);
            assert_eq!(
                out.stdout,
                format!("NoNewPrivs:\t{want}\n"),
                "{shape}, no_new_privs({on})"
            );
        }
    }
    // The flag survives exec into the command's own children.
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "sh -c 'grep NoNewPrivs /proc/self/status'"])
        .namespaces(all())
        .no_new_privs(true);
    let out = run("grandchild", sb).await;
    assert_eq!(out.stdout, "NoNewPrivs:\t1\n");
}

/// With user, mount and pid namespaces the command is root of its user namespace, which owns
/// its UTS, network and IPC namespaces. Beneath the fresh /proc lies the host's /proc (nsbox
/// keeps the host's root), so if the command could unmount /proc it would see every host
/// process again (`unshare -Urpf --mount-proc` has that hole). The init therefore joins a copy
/// of its mount namespace made in a nested user namespace, where every mount is MNT_LOCKED:
/// umount, even lazy, fails, and the host's processes stay hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unmounting_proc_inside_does_not_reveal_host_processes() {
    let me = std::process::id().to_string();
    let out = sh(
        "umount /proc",
        all(),
        "umount /proc 2>/dev/null; umount -l /proc 2>/dev/null; [ -e /proc/$1 ] && echo visible || echo hidden",
        &[&me],
    )
    .await;
    assert_eq!(
        out.stdout, "hidden\n",
        "the test process (host pid {me}) is visible inside after umount /proc"
    );
}

/// The control of the test above: with `Namespaces::lock_mounts(false)` the fresh /proc can be
/// unmounted, and the host's /proc beneath it shows the test process. So the lock is what
/// hides it, and the option does what it says.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_mount_lock_unmounting_proc_reveals_the_hosts_proc() {
    let me = std::process::id().to_string();
    let out = sh(
        "umount /proc, unlocked",
        all().lock_mounts(false).clone(),
        "umount /proc 2>/dev/null || umount -l /proc; [ -e /proc/$1 ] && echo visible || echo hidden",
        &[&me],
    )
    .await;
    assert_eq!(
        out.stdout, "visible\n",
        "without the lock, umount /proc should reveal the host's /proc (pid {me})"
    );
}

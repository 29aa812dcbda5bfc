//! The launcher (fork server): sandboxes created through it behave like direct ones, the init
//! is the orchestrator's own child, a dead launcher gives a clear error (never a hang), and
//! the launcher ends with the orchestrator.
//!
//! `harness = false`: the launcher must be started while the process has one thread, which
//! libtest's harness does not allow. Reports like libtest (`support::harness`) and exits
//! non-zero on failure.

#[path = "../support/mod.rs"]
mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitCode, Stdio as StdStdio};

use nsbox::{Sandbox, Stdio};

use support::*;

/// Whether `pid` has ended (a zombie counts as ended), or what it is still.
fn ended(pid: u32) -> Result<(), String> {
    if alive(pid as i32) {
        Err(format!("pid {pid} is alive: {:?}", stat(pid as i32)))
    } else {
        Ok(())
    }
}

async fn sandboxes_made_by_the_launcher_report_exact_statuses() -> Result<(), String> {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo $$ $(hostname); exit 5"])
        .namespaces(all().hostname("launched"))
        .stdout(Stdio::piped());
    let out = sb.output().await.map_err(|e| e.to_string())?;
    if out.status.code() != Some(5) || out.stdout != b"2 launched\n" {
        return Err(format!(
            "got {:?} {:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "kill -TERM $$"]).namespaces(all());
    let st = sb.status().await.map_err(|e| e.to_string())?;
    if st.signal() != Some(libc::SIGTERM) {
        return Err(format!("expected SIGTERM, got {st:?}"));
    }
    let err = Sandbox::new("/no/such/prog")
        .spawn()
        .await
        .err()
        .ok_or("spawn of a missing program succeeded")?;
    if !err.to_string().contains("exec /no/such/prog") {
        return Err(format!("unclear error: {err}"));
    }
    Ok(())
}

async fn a_request_too_big_for_the_launcher_socket_falls_back_to_a_direct_clone()
-> Result<(), String> {
    // 12 arguments of 100 KiB: more than one launcher message may carry.
    let big = "x".repeat(100 * 1024);
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo $#", "sh"]);
    for _ in 0..12 {
        sb.arg(&big);
    }
    sb.stdout(Stdio::piped());
    let out = sb.output().await.map_err(|e| e.to_string())?;
    if !out.status.success() || out.stdout != b"12\n" {
        return Err(format!(
            "got {:?} {:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(())
}

async fn the_init_is_the_orchestrators_own_child() -> Result<(), String> {
    let mut sb = Sandbox::new("sleep");
    sb.arg("100").namespaces(all());
    let mut child = sb.spawn().await.map_err(|e| e.to_string())?;
    let ppid = stat(child.id().expect("the init runs") as i32)
        .ok_or("no /proc entry for the init")?
        .ppid as u32;
    let ours = std::process::id();
    child.kill().await.map_err(|e| e.to_string())?;
    if ppid != ours {
        return Err(format!(
            "init's parent is {ppid}, expected the orchestrator {ours}"
        ));
    }
    Ok(())
}

async fn many_concurrent_spawns_through_the_launcher_all_report_right() -> Result<(), String> {
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        tasks.push(tokio::spawn(async move {
            let mut sb = Sandbox::new("sh");
            sb.args(["-c", &format!("exit {i}")]).namespaces(all());
            (i, sb.status().await)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.map_err(|e| e.to_string())?;
        let st = r.map_err(|e| e.to_string())?;
        if st.code() != Some(i as i32) {
            return Err(format!("sandbox {i} exited {st:?}"));
        }
    }
    Ok(())
}

async fn a_dead_launcher_gives_a_clear_error_and_direct_spawns_still_work() -> Result<(), String> {
    let pid = nsbox::launcher::pid().ok_or("no launcher")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(|e| e.to_string())?;
    poll_for("the killed launcher ending", || ended(pid)).await;
    let r = tokio::time::timeout(DEADLINE, Sandbox::new("true").status()).await;
    let err = match r {
        Err(_) => return Err("spawn hung after the launcher died".into()),
        Ok(Ok(st)) => return Err(format!("spawn through a dead launcher succeeded: {st:?}")),
        Ok(Err(e)) => e,
    };
    if !err.to_string().contains("launcher") {
        return Err(format!("error does not name the launcher: {err}"));
    }
    let st = Sandbox::new("true")
        .use_launcher(false)
        .status()
        .await
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err(format!("direct spawn failed: {st:?}"));
    }
    Ok(())
}

/// The safe defaults hold for the launcher's sandboxes as for direct ones: default signal
/// dispositions and an empty mask, no capability, no_new_privs, the
/// default syscall filter, /proc/sys read-only, and an init that shows neither the
/// orchestrator's argv nor the launcher's.
async fn the_launchers_sandboxes_get_the_safe_defaults() -> Result<(), String> {
    let script = r#"
        grep -E '^(SigBlk|SigIgn|CapEff|NoNewPrivs|Seccomp):' /proc/self/status
        grep -c ' /proc/sys ro,' /proc/self/mountinfo
        tr -d '\0' < /proc/1/cmdline; echo
    "#;
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", script]).namespaces(all());
    let out = tokio::time::timeout(DEADLINE, sb.output())
        .await
        .map_err(|_| "timed out")?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // No signal ignored or blocked: the launcher ignores seven (and the test process SIGPIPE),
    // its inits reset those.
    let want = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n1\nnsbox-init\n";
    if text != want {
        return Err(format!(
            "expected {want:?}, got {text:?} ({})",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Child mode: a fresh orchestrator that uses up its process limit (RLIMIT_NPROC 0, as a
/// non-root uid: root's real uid is exempt) and its launcher's, then spawns through the
/// launcher and directly, and drops a running sandbox outside the runtime (its reaper can
/// get no thread). Each spawn must fail with the clone's EAGAIN, nothing may panic, and the
/// dropped sandbox's init must be reaped. Prints one line per step.
const NPROC_CHILD: &str = "launcher-nproc";

fn nproc_child() -> ExitCode {
    if nix::unistd::geteuid().is_root() {
        // Root's real uid is exempt from RLIMIT_NPROC: become an ordinary user first.
        let nobody = nix::unistd::Uid::from_raw(65534);
        let nogroup = nix::unistd::Gid::from_raw(65534);
        nix::unistd::setgroups(&[]).expect("setgroups");
        nix::unistd::setresgid(nogroup, nogroup, nogroup).expect("setresgid");
        nix::unistd::setresuid(nobody, nobody, nobody).expect("setresuid");
    }
    nsbox::launcher::start().expect("start the launcher");
    let launcher = nsbox::launcher::pid().expect("the launcher's pid") as i32;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Running before the limit; dropped after it, outside the runtime.
    let running = rt
        .block_on(
            Sandbox::new("sleep")
                .arg("1000")
                .use_launcher(false)
                .spawn(),
        )
        .expect("spawn before the limit");
    let init = running.id().expect("the init runs") as i32;
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    for pid in [0, launcher] {
        // SAFETY: prlimit(2) with a valid new limit and no old-limit pointer.
        let r = unsafe { libc::prlimit(pid, libc::RLIMIT_NPROC, &zero, std::ptr::null_mut()) };
        assert_eq!(r, 0, "prlimit {pid}: {}", std::io::Error::last_os_error());
    }
    for (how, use_launcher) in [("through the launcher", true), ("directly", false)] {
        let r = rt.block_on(Sandbox::new("true").use_launcher(use_launcher).status());
        match r {
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && e.to_string().contains("RLIMIT_NPROC") =>
            {
                println!("spawn {how}: {e}");
            }
            other => panic!("spawn {how} at the process limit gave {other:?}"),
        }
    }
    drop(running);
    if !reaped(init) {
        panic!(
            "the dropped sandbox's init {init} was not reaped: {:?}",
            stat(init)
        );
    }
    println!("dropped sandbox reaped");
    ExitCode::SUCCESS
}

fn at_the_process_limit_spawn_fails_and_nothing_panics() -> Result<(), String> {
    let out = run(child_command(NPROC_CHILD));
    let want = [
        "spawn through the launcher: clone3: Try again (EAGAIN) (hint: the process limit",
        "spawn directly: clone3: Try again (EAGAIN) (hint: the process limit",
        "dropped sandbox reaped",
    ];
    if !out.status.success() || want.iter().any(|w| !out.stdout.contains(w)) {
        return Err(format!(
            "{:?}\nstdout:\n{}\nstderr:\n{}",
            out.status, out.stdout, out.stderr
        ));
    }
    Ok(())
}

/// Child mode: clone3 and pidfd_open both refused (as under a seccomp filter that answers
/// ENOSYS), switched before the launcher starts so that it inherits the switches. The
/// launcher's init is then this process's child (CLONE_PARENT) without a pidfd: the spawn
/// must fail with the errno and leave no zombie here.
const PIDFD_CHILD: &str = "launcher-no-pidfd";

fn no_pidfd_child() -> ExitCode {
    nsbox::force_clone3_fallback();
    nsbox::force_pidfd_open_failure();
    nsbox::launcher::start().expect("start the launcher");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (how, use_launcher) in [("through the launcher", true), ("directly", false)] {
        let r = rt.block_on(
            Sandbox::new("sleep")
                .arg("1000")
                .namespaces(all())
                .use_launcher(use_launcher)
                .spawn(),
        );
        match r {
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSYS)
                    || nsbox::Error::from_io(&e).and_then(nsbox::Error::errno)
                        == Some(libc::ENOSYS) =>
            {
                println!("spawn {how}: {e}");
            }
            other => panic!("spawn {how} without pidfd_open gave {other:?}"),
        }
        // The init may be reaped by a background task: let the runtime run until it is.
        rt.block_on(poll_for(
            &format!("no zombie after the spawn {how}"),
            || match zombie_children() {
                z if z.is_empty() => Ok(()),
                z => Err(format!("zombies: {z:?}")),
            },
        ));
        println!("no zombie after the spawn {how}");
    }
    ExitCode::SUCCESS
}

fn an_init_the_launcher_cannot_get_a_pidfd_for_leaves_no_zombie() -> Result<(), String> {
    let out = run(child_command(PIDFD_CHILD));
    let want = [
        "no zombie after the spawn through the launcher",
        "no zombie after the spawn directly",
    ];
    if !out.status.success() || want.iter().any(|w| !out.stdout.contains(w)) {
        return Err(format!(
            "{:?}\nstdout:\n{}\nstderr:\n{}",
            out.status, out.stdout, out.stderr
        ));
    }
    Ok(())
}

/// A sandbox with a cgroup leaf, made through the launcher: the leaf's fds travel with the
/// request, the command runs in the leaf, and the leaf is gone afterwards (root only: a
/// cgroup v2 parent is made for the test, and removed).
async fn a_sandbox_with_a_cgroup_leaf_is_made_through_the_launcher() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        skip(
            "a_sandbox_with_a_cgroup_leaf_is_made_through_the_launcher",
            "making a cgroup v2 parent needs root here",
        );
        return Ok(());
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let Some(mount) = info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split_whitespace().next()? == "cgroup2")
            .then(|| pre.split_whitespace().nth(4).map(std::path::PathBuf::from))
            .flatten()
    }) else {
        skip(
            "a_sandbox_with_a_cgroup_leaf_is_made_through_the_launcher",
            "no cgroup2 filesystem is mounted",
        );
        return Ok(());
    };
    let parent = mount.join(format!("nsbox-test-launcher-{}", std::process::id()));
    std::fs::create_dir(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            if let Ok(d) = std::fs::read_dir(&self.0) {
                for e in d.flatten().filter(|e| e.path().is_dir()) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _remove = Remove(parent.clone());
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "grep '^0::' /proc/self/cgroup"])
        .namespaces(all())
        .cgroup(nsbox::Cgroup::under(&parent));
    let out = tokio::time::timeout(DEADLINE, sb.output())
        .await
        .map_err(|_| "timed out")?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !text.contains("nsbox-test-launcher-") {
        return Err(format!(
            "{:?}: {text:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let leaves = std::fs::read_dir(&parent)
        .map_err(|e| e.to_string())?
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    if leaves != 0 {
        return Err(format!("{leaves} leaves left in {}", parent.display()));
    }
    Ok(())
}

const CHILD: &str = "launcher-orchestrator";

/// Child mode: start a launcher, print its pid, wait to be killed.
fn orchestrator_child() -> ! {
    nsbox::launcher::start().expect("start launcher");
    println!("{}", nsbox::launcher::pid().expect("pid"));
    loop {
        std::thread::park();
    }
}

fn the_launcher_ends_when_the_orchestrator_is_killed() -> Result<(), String> {
    let mut cmd = child_command(CHILD);
    cmd.stdout(StdStdio::piped());
    let mut child = KillOnDrop(cmd.spawn().map_err(|e| e.to_string())?);
    let line = Lines::new(child.0.stdout.take().ok_or("no stdout")?).next_line();
    let launcher: u32 = line
        .trim()
        .parse()
        .map_err(|_| format!("bad pid line {line:?}"))?;
    child.0.kill().map_err(|e| e.to_string())?;
    child.0.wait().map_err(|e| e.to_string())?;
    try_wait_for("the launcher ending with its orchestrator", || {
        ended(launcher)
    })
    .inspect_err(|_| kill_all(&[(launcher as i32, String::new())]))
}

/// The fds of the launcher that are links to `target` (a namespace such as `mnt:[4026532000]`).
fn launcher_links_to(target: &str) -> Result<usize, String> {
    let pid = nsbox::launcher::pid().ok_or("no launcher")?;
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| e.to_string())?;
    Ok(dir
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_str() == Some(target))
        .count())
}

/// The launcher holds each sandbox's mount namespace while the sandbox runs (so that the
/// namespace's teardown is not part of the init's exit) and lets go of it once the init has
/// exited: no namespace, and no fd, is kept for longer.
async fn the_launcher_holds_a_sandboxs_mount_namespace_until_the_init_exits() -> Result<(), String>
{
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "readlink /proc/self/ns/mnt; read x"])
        .namespaces(all())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = sb.spawn().await.map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut out = tokio::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut ns = String::new();
    tokio::time::timeout(DEADLINE, out.read_line(&mut ns))
        .await
        .map_err(|_| "timed out reading the namespace")?
        .map_err(|e| e.to_string())?;
    let ns = ns.trim().to_string();
    if !ns.starts_with("mnt:[") {
        return Err(format!("not a mount namespace: {ns:?}"));
    }
    let held = launcher_links_to(&ns)?;
    if held != 1 {
        return Err(format!(
            "the launcher holds {held} fds of {ns} while the sandbox runs, not 1"
        ));
    }
    stdin.write_all(b"\n").await.map_err(|e| e.to_string())?;
    drop(stdin);
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .map_err(|_| "timed out waiting")?
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the sandbox failed: {status:?}"));
    }
    // The launcher lets go when it sees the init's pidfd readable, on its own time: wait for
    // that event, up to the deadline.
    let start = std::time::Instant::now();
    while launcher_links_to(&ns)? != 0 {
        if start.elapsed() > DEADLINE {
            return Err(format!(
                "the launcher still holds {ns} after the sandbox ended"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Ok(())
}

fn main() -> ExitCode {
    if is_child(CHILD) {
        orchestrator_child();
    }
    if is_child(NPROC_CHILD) {
        return nproc_child();
    }
    if is_child(PIDFD_CHILD) {
        return no_pidfd_child();
    }
    nsbox::launcher::start().expect("start the launcher first thing in main");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let mut h = harness::Harness::from_args();
    h.check(
        "sandboxes_made_by_the_launcher_report_exact_statuses",
        || rt.block_on(sandboxes_made_by_the_launcher_report_exact_statuses()),
    );
    h.check(
        "a_request_too_big_for_the_launcher_socket_falls_back_to_a_direct_clone",
        || rt.block_on(a_request_too_big_for_the_launcher_socket_falls_back_to_a_direct_clone()),
    );
    h.check("the_init_is_the_orchestrators_own_child", || {
        rt.block_on(the_init_is_the_orchestrators_own_child())
    });
    h.check(
        "many_concurrent_spawns_through_the_launcher_all_report_right",
        || rt.block_on(many_concurrent_spawns_through_the_launcher_all_report_right()),
    );
    h.check(
        "a_sandbox_with_a_cgroup_leaf_is_made_through_the_launcher",
        || rt.block_on(a_sandbox_with_a_cgroup_leaf_is_made_through_the_launcher()),
    );
    h.check(
        "the_launcher_holds_a_sandboxs_mount_namespace_until_the_init_exits",
        || rt.block_on(the_launcher_holds_a_sandboxs_mount_namespace_until_the_init_exits()),
    );
    h.check("the_launchers_sandboxes_get_the_safe_defaults", || {
        rt.block_on(the_launchers_sandboxes_get_the_safe_defaults())
    });
    // Kills this process's launcher: after every check that needs it.
    h.check(
        "a_dead_launcher_gives_a_clear_error_and_direct_spawns_still_work",
        || rt.block_on(a_dead_launcher_gives_a_clear_error_and_direct_spawns_still_work()),
    );
    h.check(
        "the_launcher_ends_when_the_orchestrator_is_killed",
        the_launcher_ends_when_the_orchestrator_is_killed,
    );
    h.check(
        "at_the_process_limit_spawn_fails_and_nothing_panics",
        at_the_process_limit_spawn_fails_and_nothing_panics,
    );
    h.check(
        "an_init_the_launcher_cannot_get_a_pidfd_for_leaves_no_zombie",
        an_init_the_launcher_cannot_get_a_pidfd_for_leaves_no_zombie,
    );
    h.finish()
}

//! The launcher (fork server): sandboxes created through it behave like direct ones, the init
//! is the orchestrator's own child, a dead launcher gives a clear error (never a hang), and
//! the launcher ends with the orchestrator.
//!
//! `harness = false`: the launcher must be started while the process has one thread, which
//! libtest's harness does not allow. Prints `N passed, N failed` and exits non-zero on failure.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio as StdStdio};
use std::time::{Duration, Instant};

use nsbox::{Namespaces, Sandbox, Stdio};

fn ppid_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn alive(pid: u32) -> bool {
    // A zombie counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rfind(')').and_then(|i| s.get(i + 2..i + 3)) != Some("Z"),
        Err(_) => false,
    }
}

async fn sandboxes_made_by_the_launcher_report_exact_statuses() -> Result<(), String> {
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo $$ $(hostname); exit 5"])
        .namespaces(Namespaces::all().hostname("launched"))
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
    sb.args(["-c", "kill -TERM $$"])
        .namespaces(Namespaces::all());
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
    sb.arg("100").namespaces(Namespaces::all());
    let mut child = sb.spawn().await.map_err(|e| e.to_string())?;
    let ppid = ppid_of(child.id()).ok_or("no /proc entry for the init")?;
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
            sb.args(["-c", &format!("exit {i}")])
                .namespaces(Namespaces::all());
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = tokio::time::timeout(Duration::from_secs(30), Sandbox::new("true").status()).await;
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

/// Child mode: start a launcher, print its pid, wait to be killed.
fn orchestrator_child() -> ! {
    nsbox::launcher::start().expect("start launcher");
    println!("{}", nsbox::launcher::pid().expect("pid"));
    std::thread::sleep(Duration::from_secs(100));
    std::process::exit(0)
}

fn the_launcher_ends_when_the_orchestrator_is_killed() -> Result<(), String> {
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env("NSBOX_LAUNCHER_TEST_CHILD", "1")
        .stdout(StdStdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let launcher: u32 = line
        .trim()
        .parse()
        .map_err(|_| format!("bad pid line {line:?}"))?;
    child.kill().map_err(|e| e.to_string())?;
    child.wait().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(launcher) {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(launcher as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(format!("launcher {launcher} outlived its orchestrator"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn main() {
    if std::env::var_os("NSBOX_LAUNCHER_TEST_CHILD").is_some() {
        orchestrator_child();
    }
    nsbox::launcher::start().expect("start the launcher first thing in main");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let mut results: Vec<(&str, Result<(), String>)> = Vec::new();
    rt.block_on(async {
        results.push((
            "sandboxes made by the launcher report exact statuses",
            sandboxes_made_by_the_launcher_report_exact_statuses().await,
        ));
        results.push((
            "a request too big for the launcher socket falls back to a direct clone",
            a_request_too_big_for_the_launcher_socket_falls_back_to_a_direct_clone().await,
        ));
        results.push((
            "the init is the orchestrator's own child",
            the_init_is_the_orchestrators_own_child().await,
        ));
        results.push((
            "many concurrent spawns through the launcher all report right",
            many_concurrent_spawns_through_the_launcher_all_report_right().await,
        ));
        results.push((
            "a dead launcher gives a clear error and direct spawns still work",
            a_dead_launcher_gives_a_clear_error_and_direct_spawns_still_work().await,
        ));
    });
    results.push((
        "the launcher ends when the orchestrator is killed",
        the_launcher_ends_when_the_orchestrator_is_killed(),
    ));
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    for (name, r) in &results {
        match r {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => println!("test {name} ... FAILED: {e}"),
        }
    }
    println!("{} passed, {} failed", results.len() - failed, failed);
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

//! rlimits (`Sandbox::rlimit`): each of the eight is what the command's `/proc/self/limits`
//! shows; RLIMIT_FSIZE kills a writer with SIGXFSZ, RLIMIT_CPU a busy loop with SIGXCPU,
//! RLIMIT_NOFILE makes the next open fail with EMFILE; a hard limit above the caller's (with
//! a new user namespace, where nobody holds CAP_SYS_RESOURCE of the host) and RLIMIT_NOFILE
//! above fs.nr_open (for root too) fail the spawn with EPERM, named, and leave nothing; a
//! soft limit above its hard one is bad input.

use std::os::unix::process::ExitStatusExt;

use nsbox::{Resource, Sandbox, Stdio};

use crate::support::*;

/// The caller's own (soft, hard) limit of `r`, as rustix reads it (`None`: unlimited).
fn own_limit(r: rustix::process::Resource) -> (Option<u64>, Option<u64>) {
    let l = rustix::process::getrlimit(r);
    (l.current, l.maximum)
}

/// `want` clamped under the caller's hard limit of `r`, so that any uid may set it.
fn under_own(r: rustix::process::Resource, (soft, hard): (u64, u64)) -> (u64, u64) {
    let hard = own_limit(r).1.map_or(hard, |h| h.min(hard));
    (soft.min(hard), hard)
}

/// The (soft, hard) columns of the line of `/proc/PID/limits` that starts with `name`.
fn limits_line(limits: &str, name: &str) -> Option<(String, String)> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let mut cols = line[name.len()..].split_whitespace();
    Some((cols.next()?.to_string(), cols.next()?.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_is_what_the_command_sees() {
    use rustix::process::Resource as R;
    let want = [
        (Resource::Nofile, R::Nofile, "Max open files", (64, 128)),
        (Resource::Nproc, R::Nproc, "Max processes", (1000, 2000)),
        (Resource::Cpu, R::Cpu, "Max cpu time", (500, 1000)),
        (
            Resource::Fsize,
            R::Fsize,
            "Max file size",
            (1 << 30, 1 << 31),
        ),
        (Resource::Core, R::Core, "Max core file size", (0, 1 << 20)),
        (Resource::As, R::As, "Max address space", (1 << 40, 1 << 41)),
        (
            Resource::Stack,
            R::Stack,
            "Max stack size",
            (4 << 20, 8 << 20),
        ),
        (
            Resource::Memlock,
            R::Memlock,
            "Max locked memory",
            (32 << 10, 64 << 10),
        ),
    ];
    for (shape, ns) in shapes_and_none() {
        let mut sb = Sandbox::new("cat");
        sb.arg("/proc/self/limits")
            .namespaces(ns)
            .stdout(Stdio::piped());
        let mut expected = Vec::new();
        for (res, raw, name, v) in want {
            let (soft, hard) = under_own(raw, v);
            sb.rlimit(res, soft, hard);
            expected.push((name, soft, hard));
        }
        let out = deadline(shape, sb.output()).await.expect("output");
        assert!(out.status.success(), "{shape}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for (name, soft, hard) in expected {
            assert_eq!(
                limits_line(&text, name),
                Some((soft.to_string(), hard.to_string())),
                "{shape}: {name} in\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinity_is_unlimited() {
    let (_, hard) = own_limit(rustix::process::Resource::Fsize);
    if hard.is_some() {
        return skip(
            &test_name(module_path!(), "infinity_is_unlimited"),
            "this process's RLIMIT_FSIZE hard limit is not unlimited",
        );
    }
    let mut sb = Sandbox::new("cat");
    sb.arg("/proc/self/limits")
        .namespaces(userns_only())
        .rlimit(Resource::Fsize, 4096, Resource::INFINITY)
        .stdout(Stdio::piped());
    let out = sb.output().await.expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        limits_line(&text, "Max file size"),
        Some(("4096".to_string(), "unlimited".to_string())),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_past_the_file_size_limit_is_killed_by_sigxfsz() {
    for (shape, ns) in both_shapes() {
        let dir = Scratch::new("fsize");
        let path = dir.path().join("out");
        let file = std::fs::File::create(&path).expect("create");
        let mut sb = Sandbox::new("head");
        sb.args(["-c", "65536", "/dev/zero"])
            .namespaces(ns)
            .stdout(file)
            .rlimit(Resource::Fsize, 4096, 4096)
            .rlimit(Resource::Core, 0, 0);
        let status = deadline(shape, sb.status()).await.expect("status");
        assert_eq!(status.signal(), Some(libc::SIGXFSZ), "{shape}: {status:?}");
        let len = std::fs::metadata(&path).expect("stat").len();
        assert_eq!(len, 4096, "{shape}: the file stops at the limit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_loop_past_the_cpu_limit_is_killed_by_sigxcpu() {
    // One second of CPU time (not of the clock), then SIGXCPU (the hard limit is above).
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "while :; do :; done"])
        .namespaces(with_pidns())
        .rlimit(Resource::Cpu, 1, 30)
        .rlimit(Resource::Core, 0, 0);
    let mut child = sb.spawn().await.expect("spawn");
    let status = deadline("cpu limit", child.wait()).await.expect("wait");
    assert_eq!(status.signal(), Some(libc::SIGXCPU), "{status:?}");
    // (No bound on its CPU time here: rusage's times are sampled by tick and came out as
    // 947 ms for a loop that the kernel's exact runtime stopped at 1 s.)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_past_the_fd_limit_fails_with_emfile() {
    for (shape, ns) in both_shapes() {
        // 0, 1 and 2 are open: 3 is the last number under a limit of 4.
        let mut sb = Sandbox::new("sh");
        sb.args([
            "-c",
            "exec 3</dev/null; echo three; exec 4</dev/null; echo four",
        ])
        .namespaces(ns)
        .rlimit(Resource::Nofile, 4, 4)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let out = deadline(shape, sb.output()).await.expect("output");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(stdout, "three\n", "{shape}: {out:?}");
        assert!(
            stderr.contains("Too many open files"),
            "{shape}: EMFILE expected: {stderr}"
        );
        assert!(!out.status.success(), "{shape}: {out:?}");
    }
}

/// The spawn fails at the Rlimit step with EPERM, naming the limit, and leaves nothing.
async fn assert_refused(mut sb: Sandbox, what: &str) {
    let m = marker();
    sb.arg(&m);
    let err = deadline(what, sb.spawn()).await.expect_err(what);
    let e = nsbox::Error::from_io(&err).unwrap_or_else(|| panic!("{what}: {err}"));
    assert_eq!(e.step(), nsbox::Step::Rlimit, "{what}: {err}");
    assert_eq!(e.errno(), Some(libc::EPERM), "{what}: {err}");
    let text = err.to_string();
    assert!(text.contains("RLIMIT_NOFILE"), "{what}: {text}");
    assert!(
        e.hint()
            .is_some_and(|h| h.contains("CAP_SYS_RESOURCE") && h.contains("nr_open")),
        "{what}: {text}"
    );
    assert!(pids_with_marker(&m).is_empty(), "{what}: left running");
    assert!(zombie_children().is_empty(), "{what}: zombies left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_limit_above_the_callers_is_eperm() {
    let (_, hard) = own_limit(rustix::process::Resource::Nofile);
    let hard = hard.expect("RLIMIT_NOFILE always has a hard limit");
    // In a new user namespace nobody holds CAP_SYS_RESOURCE of the host: root neither.
    let mut sb = Sandbox::new("sleep");
    sb.arg("1000")
        .namespaces(userns_only())
        .rlimit(Resource::Nofile, hard, hard + 1);
    assert_refused(sb, "hard limit above the caller's").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nofile_above_nr_open_is_eperm_even_for_root() {
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .expect("read fs.nr_open")
        .trim()
        .parse()
        .expect("fs.nr_open");
    let mut sb = Sandbox::new("sleep");
    sb.arg("1000")
        .namespaces(no_namespaces())
        .rlimit(Resource::Nofile, 64, nr_open + 1);
    assert_refused(sb, "RLIMIT_NOFILE above fs.nr_open").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_limit_above_the_hard_one_is_bad_input() {
    let mut sb = Sandbox::new("true");
    sb.rlimit(Resource::Core, 10, 5);
    let err = sb.spawn().await.expect_err("soft above hard");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("RLIMIT_CORE"), "{err}");
}

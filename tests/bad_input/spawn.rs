//! Bad input through the API: each comes back from `spawn()` as an io::Error that names the
//! step and the path (and a hint where one helps), and leaves no process behind (the test
//! process has no child at all afterwards: these tests run one at a time).

use std::io;
use std::os::unix::fs::PermissionsExt;

use nsbox::{Namespace, Namespaces, Sandbox};

use crate::support::*;
use crate::{nothing_left, serial};

/// Spawn, expect an error, check it mentions every piece of `expect`, check nothing is left.
async fn bad(
    what: &str,
    mut sb: Sandbox,
    kind: Option<io::ErrorKind>,
    expect: &[&str],
) -> io::Error {
    let m = marker();
    sb.arg(&m);
    let err = match deadline(what, sb.spawn()).await {
        Ok(mut child) => {
            let _ = child.kill().await;
            panic!("{what}: spawn succeeded");
        }
        Err(e) => e,
    };
    let msg = err.to_string();
    eprintln!("{what}: {msg}");
    if let Some(k) = kind {
        assert_eq!(err.kind(), k, "{what}: {msg}");
    }
    for piece in expect {
        assert!(
            msg.contains(piece),
            "{what}: {msg:?} does not mention {piece:?}"
        );
    }
    if let Err(e) = nothing_left(&m).await {
        panic!("{what}: {e}");
    }
    err
}

fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
        .or_else(|| nsbox::Error::from_io(e).and_then(|e| e.errno()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_program_is_an_exec_error_naming_it() {
    let _serial = serial().await;
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("/no/such/file");
        sb.namespaces(ns.clone());
        let e = bad(
            shape,
            sb,
            Some(io::ErrorKind::NotFound),
            &["exec", "/no/such/file", "No such file"],
        )
        .await;
        assert_eq!(errno(&e), Some(libc::ENOENT));
        // Not on PATH either (a PATH of searchable directories: one the caller may not
        // search would make it EACCES, as execvp(3) does).
        let mut sb = Sandbox::new("no-such-program-anywhere");
        sb.env("PATH", "/usr/bin:/bin").namespaces(ns);
        let e = bad(
            shape,
            sb,
            Some(io::ErrorKind::NotFound),
            &["exec", "no-such-program-anywhere"],
        )
        .await;
        assert_eq!(errno(&e), Some(libc::ENOENT));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_that_is_not_executable_is_refused() {
    let _serial = serial().await;
    let scratch = Scratch::new("noexec");
    let path = scratch.path().join("script");
    std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new(&path);
        sb.namespaces(ns).filesystem(writable(&[scratch.path()]));
        let p = path.display().to_string();
        let e = bad(
            shape,
            sb,
            Some(io::ErrorKind::PermissionDenied),
            &["exec", &p, "Permission denied"],
        )
        .await;
        assert_eq!(errno(&e), Some(libc::EACCES));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostname_over_64_bytes_is_refused() {
    let _serial = serial().await;
    let mut sb = Sandbox::new("true");
    sb.namespaces(all().hostname("h".repeat(65)));
    bad(
        "65-byte hostname",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["hostname", "64"],
    )
    .await;
    // 64 bytes is fine.
    let mut sb = Sandbox::new("hostname");
    sb.namespaces(all().hostname("h".repeat(64)));
    let out = deadline("64-byte hostname", sb.output())
        .await
        .expect("64 bytes");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "h".repeat(64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostname_with_a_nul_byte_is_refused() {
    let _serial = serial().await;
    let mut sb = Sandbox::new("true");
    sb.namespaces(all().hostname("a\0b"));
    bad(
        "NUL in hostname",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["hostname", "NUL"],
    )
    .await;
    let mut sb = Sandbox::new("true");
    sb.namespaces(all().domainname("a\0b"));
    bad(
        "NUL in domainname",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["domainname", "NUL"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joining_a_file_that_is_not_a_namespace_is_refused() {
    let _serial = serial().await;
    let mut sb = Sandbox::new("true");
    sb.namespaces(Namespaces::new().join_path(Some(Namespace::Net), "/etc/passwd"));
    bad("join /etc/passwd", sb, None, &["/etc/passwd"]).await;
    let mut sb = Sandbox::new("true");
    sb.namespaces(Namespaces::new().join_path(None, "/etc/passwd"));
    bad("join /etc/passwd, any kind", sb, None, &["/etc/passwd"]).await;
    let mut sb = Sandbox::new("true");
    sb.namespaces(Namespaces::new().join_path(Some(Namespace::Net), "/no/such/ns"));
    let e = bad(
        "join /no/such/ns",
        sb,
        Some(io::ErrorKind::NotFound),
        &["/no/such/ns"],
    )
    .await;
    assert_eq!(errno(&e), Some(libc::ENOENT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joining_a_fifo_or_a_namespace_of_another_kind_is_refused_without_blocking() {
    let _serial = serial().await;
    let scratch = Scratch::new("join-fifo");
    let fifo = scratch.path().join("not-a-namespace");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let fifo_text = fifo.display().to_string();
    for kind in [None, Some(Namespace::Net)] {
        let mut sb = Sandbox::new("true");
        sb.namespaces(Namespaces::new().join_path(kind, &fifo));
        // Opening a FIFO for reading blocks until a writer comes; the deadline catches a hang.
        let e = bad(
            "join a FIFO",
            sb,
            Some(io::ErrorKind::InvalidInput),
            &[&fifo_text, "not a namespace file"],
        )
        .await;
        assert_eq!(errno(&e), Some(libc::EINVAL));
    }
    let mut sb = Sandbox::new("true");
    sb.namespaces(Namespaces::new().join_path(Some(Namespace::Net), "/proc/self/ns/uts"));
    bad(
        "join a UTS namespace as a network one",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["/proc/self/ns/uts", "it is a uts namespace"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_the_caller_may_not_create_fails_with_eperm_and_a_hint() {
    let _serial = serial().await;
    let name = test_name(
        module_path!(),
        "a_namespace_the_caller_may_not_create_fails_with_eperm_and_a_hint",
    );
    if is_root() {
        // As root: the same case run as uid 65534 (this very test, re-executed with setpriv).
        let mut cmd = reexec(&name, &AS_NOBODY);
        cmd.current_dir(std::env::temp_dir());
        let out = tokio::task::spawn_blocking(move || run(cmd))
            .await
            .expect("the child run");
        let text = format!("{}{}", out.stdout, out.stderr);
        if !out.status.success()
            && text.contains("Permission denied")
            && !text.contains("running 1 test")
        {
            skip(
                &name,
                &format!("uid 65534 cannot run {}: {text}", self_exe().display()),
            );
            return;
        }
        assert!(out.status.success(), "as uid 65534: {text}");
        assert!(text.contains("1 passed"), "as uid 65534: {text}");
        return;
    }
    let mut sb = Sandbox::new("true");
    sb.namespaces(Namespaces::new().net(true));
    let e = bad(
        "net namespace without a user namespace",
        sb,
        Some(io::ErrorKind::PermissionDenied),
        &["net", "hint", "user namespace"],
    )
    .await;
    assert_eq!(errno(&e), Some(libc::EPERM));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nul_byte_in_an_argument_or_the_environment_is_refused() {
    let _serial = serial().await;
    let mut sb = Sandbox::new("echo");
    sb.arg("a\0b").namespaces(all());
    bad(
        "NUL in an argument",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["argument", "NUL"],
    )
    .await;
    let mut sb = Sandbox::new("true");
    sb.env("X", "a\0b").namespaces(all());
    bad(
        "NUL in an env value",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["NUL"],
    )
    .await;
    let mut sb = Sandbox::new("true");
    sb.env("A=B", "c").namespaces(all());
    bad(
        "= in an env name",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["A=B"],
    )
    .await;
    let mut sb = Sandbox::new("tr\0ue");
    sb.namespaces(all());
    bad(
        "NUL in the program",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["NUL"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_program_is_refused() {
    let _serial = serial().await;
    let mut sb = Sandbox::new("");
    sb.namespaces(all());
    bad(
        "empty program",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["empty"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_current_dir_is_a_chdir_error_naming_it() {
    let _serial = serial().await;
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("true");
        sb.current_dir("/no/such/dir").namespaces(ns);
        let e = bad(
            shape,
            sb,
            Some(io::ErrorKind::NotFound),
            &["chdir", "/no/such/dir"],
        )
        .await;
        assert_eq!(errno(&e), Some(libc::ENOENT));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_program_name_without_path_and_no_path_variable_is_refused() {
    let _serial = serial().await;
    let mut sb = Sandbox::new("true");
    sb.env_clear().namespaces(all());
    bad("no PATH", sb, None, &["PATH"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_passed_fd_on_a_standard_stream_number_is_refused() {
    let _serial = serial().await;
    let f = std::fs::File::open("/dev/null").unwrap();
    let mut sb = Sandbox::new("true");
    sb.pass_fd(1, f).namespaces(all());
    bad(
        "pass_fd 1",
        sb,
        Some(io::ErrorKind::InvalidInput),
        &["pass_fd"],
    )
    .await;
}

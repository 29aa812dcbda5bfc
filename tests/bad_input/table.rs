//! Bad input, as a table: every public entry point given invalid input returns a clear
//! `io::Error` (its kind, and words naming the step and the path), never panics (each row
//! runs under `catch_unwind`), never hangs (each row has a deadline; expiry fails the row),
//! and leaves nothing running (no process carrying the row's marker, no child of the test
//! process, not even a zombie).
//!
//! Entry points: `Sandbox::spawn` (builder input checked before the clone, and failures of
//! the child's setup steps), `nsbox::setns_path`, `nsbox::idmap::write_uid_map` and
//! `write_gid_map`, `nsbox::enter` (in this multi-threaded process only for input refused
//! before any thread check; otherwise in the nsrun example, which calls it single-threaded),
//! and namespace limits of 0 (`user.max_{user,net}_namespaces` set to 0 inside a nested user
//! namespace made by `unshare -Ur`) both through nsrun (`enter`) and through the API
//! (`Sandbox::spawn` in this test binary re-executed as a helper inside that namespace).
//!
//! Every row runs as root and as an unprivileged user. The namespace-limit rows are a test of
//! their own, which says SKIPPED when unshare(1) cannot make a user namespace here.
//!
//! Rows that tests/bad_input/nsrun.rs already has (a missing program, a file without execute
//! permission, nsrun --join on a regular or a missing file, a UTS name with a NUL given to
//! enter(), EPERM for a namespace without a user namespace) are not repeated.

use std::future::Future;
use std::io::{self, ErrorKind};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use futures::FutureExt;
use nsbox::{Filesystem, Namespace, Namespaces, Sandbox};

use crate::support::*;
use crate::{nothing_left, serial};

type RowFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

struct Row {
    name: String,
    /// The expected kind; `None` when the kind is not the point (a process exit status).
    kind: Option<ErrorKind>,
    /// Words the message must contain: the step, the path, the errno name, the hint.
    words: Vec<String>,
    /// The marker of any process the row may start.
    marker: String,
    run: Box<dyn FnOnce() -> RowFuture + Send>,
}

fn row(
    name: impl Into<String>,
    kind: Option<ErrorKind>,
    words: &[&str],
    marker: &str,
    run: impl FnOnce() -> RowFuture + Send + 'static,
) -> Row {
    Row {
        name: name.into(),
        kind,
        words: words.iter().map(|w| w.to_string()).collect(),
        marker: marker.to_string(),
        run: Box::new(run),
    }
}

/// A row that spawns `sb` (a `sleep 1000 MARKER` with something wrong) and expects an error.
fn spawn_row(
    name: &str,
    kind: ErrorKind,
    words: &[&str],
    m: &str,
    sb: impl FnOnce(&mut Sandbox) + Send + 'static,
) -> Row {
    let mm = m.to_string();
    row(name, Some(kind), words, m, move || {
        Box::pin(async move {
            let mut s = Sandbox::new("sleep");
            s.args(["1000", &mm]).namespaces(all());
            sb(&mut s);
            match s.spawn().await {
                Ok(mut child) => {
                    let _ = child.kill().await;
                    Err(io::Error::other("UNEXPECTED SUCCESS: spawn succeeded"))
                }
                Err(e) => Err(e),
            }
        })
    })
}

fn ready(r: io::Result<()>) -> RowFuture {
    Box::pin(std::future::ready(r))
}

/// A process-level row: run `cmd`, expect exit 125, and turn its stderr into the error text.
fn process_row(name: &str, words: &[&str], m: &str, cmd: std::process::Command) -> Row {
    row(name, None, words, m, move || {
        Box::pin(async move {
            let out = tokio::task::spawn_blocking(move || run(cmd))
                .await
                .map_err(io::Error::other)?;
            let text = format!("exit {:?}: {}{}", out.status.code(), out.stdout, out.stderr);
            if out.status.code() == Some(125) {
                Err(io::Error::other(text))
            } else {
                Err(io::Error::other(format!("WRONG EXIT (want 125): {text}")))
            }
        })
    })
}

/// A command line run in a nested user namespace (made by `unshare -Ur`) where
/// `user.max_{limit}_namespaces` is set to 0 first; `exec "$@"` then runs `prog args`.
fn under_limit(limit: &str, prog: &Path, args: &[&str], m: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(limit_wrapper(limit).iter().skip(1))
        .arg(prog)
        .args(args)
        .env(MARKER_VAR, m)
        .stdin(std::process::Stdio::null());
    cmd
}

/// `unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_LIMIT_namespaces && exec "$@"' sh`: what
/// runs a command (the arguments after it) under that limit.
fn limit_wrapper(limit: &str) -> [String; 6] {
    [
        "unshare".into(),
        "-Ur".into(),
        "sh".into(),
        "-c".into(),
        format!("echo 0 > /proc/sys/user/max_{limit}_namespaces && exec \"$@\""),
        "sh".into(),
    ]
}

/// Whether `unshare -Ur` works here (a user namespace for the test's user).
fn unshare_works() -> bool {
    std::process::Command::new("unshare")
        .args(["-Ur", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// The kind of namespace (`user` or `net`) the child of the namespace-limit test spawns.
const LIMIT_VAR: &str = "NSBOX_TEST_LIMIT";

/// The child's part of the namespace-limit test, inside a nested user namespace whose limit
/// of that kind is 0: spawn a sandbox with that kind of namespace through the API and print
/// the error on a `HELPER-ERROR:` line for the table's row to check.
async fn spawn_under_a_namespace_limit() {
    let kind = std::env::var(LIMIT_VAR).expect("the kind of limit");
    let ns = match kind.as_str() {
        "user" => userns_only(),
        "net" => userns_only().net(true).clone(),
        other => panic!("unknown kind of limit {other}"),
    };
    let mut sb = Sandbox::new("true");
    sb.namespaces(ns);
    match sb.status().await {
        Ok(st) => println!("HELPER-UNEXPECTED-SUCCESS: {st:?}"),
        Err(e) => println!("HELPER-ERROR: kind={:?} {e}", e.kind()),
    }
}

/// The row for `Sandbox::spawn` under a namespace limit of 0: test `test` re-executed (as its
/// child) under the limit.
fn api_under_limit_row(test: &str, limit: &'static str, words: &[&str]) -> Row {
    let m = marker();
    let wrapper = limit_wrapper(limit);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut cmd = reexec(test, &wrapper);
    cmd.env(LIMIT_VAR, limit).env(MARKER_VAR, &m);
    row(
        format!("Sandbox::spawn with max_{limit}_namespaces=0 (child process)"),
        None,
        words,
        &m,
        move || {
            Box::pin(async move {
                let out = tokio::task::spawn_blocking(move || run(cmd))
                    .await
                    .map_err(io::Error::other)?;
                // libtest prints the child's line after "test NAME ... ".
                let line = out
                    .stdout
                    .find("HELPER-ERROR:")
                    .and_then(|i| out.stdout[i..].lines().next());
                match line {
                    Some(l) => Err(io::Error::other(l.to_string())),
                    None => Err(io::Error::other(format!(
                        "HELPER FAILED: {:?} {} {}",
                        out.status, out.stdout, out.stderr
                    ))),
                }
            })
        },
    )
}

fn table(scratch: &Path) -> Vec<Row> {
    use ErrorKind::*;
    let file = scratch.join("regular-file");
    std::fs::write(&file, "").unwrap();
    let missing = scratch.join("no-such-dir");
    let (f, mi) = (file.display().to_string(), missing.display().to_string());
    let long = "h".repeat(65);
    let mut rows = Vec::new();

    // Sandbox::spawn: input checked before any clone.
    let m = marker();
    rows.push(row(
        "empty program",
        Some(InvalidInput),
        &["exec", "empty"],
        &m,
        || Box::pin(async { Sandbox::new("").namespaces(all()).spawn().await.map(drop) }),
    ));
    let m = marker();
    rows.push(spawn_row(
        "a cgroup parent that is not a cgroup v2 directory",
        NotFound,
        &[
            "cgroup",
            "/proc",
            "not a cgroup v2 directory",
            "cgroup2 mount",
        ],
        &m,
        |s| {
            s.cgroup(nsbox::Cgroup::under("/proc"));
        },
    ));
    rows.push(spawn_row(
        "a cgroup parent that is a regular file",
        NotADirectory,
        &["cgroup", "/etc/passwd/cgroup.subtree_control", "ENOTDIR"],
        &m,
        |s| {
            s.cgroup(nsbox::Cgroup::under("/etc/passwd"));
        },
    ));
    rows.push(spawn_row(
        "a soft rlimit above its hard one",
        InvalidInput,
        &["rlimit", "NOFILE", "100", "10"],
        &m,
        |s| {
            s.rlimit(nsbox::Resource::Nofile, 100, 10);
        },
    ));
    rows.push(spawn_row(
        "NUL in an argument",
        InvalidInput,
        &["argument", "NUL"],
        &m,
        |s| {
            s.arg("a\0b");
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "NUL in an env key",
        InvalidInput,
        &["environment", "NUL"],
        &m,
        |s| {
            s.env("NSBOX\0KEY", "v");
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "NUL in an env value",
        InvalidInput,
        &["environment", "NSBOX_KEY", "NUL"],
        &m,
        |s| {
            s.env("NSBOX_KEY", "v\0w");
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "'=' in an env key",
        InvalidInput,
        &["environment", "invalid variable name", "A=B"],
        &m,
        |s| {
            s.env("A=B", "v");
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "empty env key",
        InvalidInput,
        &["environment", "invalid variable name"],
        &m,
        |s| {
            s.env("", "v");
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "relative program with PATH unset (env_clear)",
        InvalidInput,
        &["exec", "\"sleep\"", "PATH is not set", "hint:"],
        &m,
        |s| {
            s.env_clear();
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "relative program with PATH removed (env_remove)",
        InvalidInput,
        &["exec", "PATH is not set"],
        &m,
        |s| {
            s.env_remove("PATH");
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "pass_fd with target 2",
        InvalidInput,
        &["pass_fd", "target fd 2", "standard stream"],
        &m,
        |s| {
            s.pass_fd(2, std::fs::File::open("/dev/null").unwrap());
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "pass_fd with target -1",
        InvalidInput,
        &["pass_fd", "target fd -1"],
        &m,
        |s| {
            s.pass_fd(-1, std::fs::File::open("/dev/null").unwrap());
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "pass_fd with the same target twice",
        InvalidInput,
        &["pass_fd", "given twice"],
        &m,
        |s| {
            s.pass_fd(5, std::fs::File::open("/dev/null").unwrap());
            s.pass_fd(5, std::fs::File::open("/dev/null").unwrap());
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "hostname of 65 bytes",
        InvalidInput,
        &["sethostname", "65 bytes", "at most 64"],
        &m,
        move |s| {
            s.namespaces(all().hostname("h".repeat(65)));
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "hostname with a NUL",
        InvalidInput,
        &["sethostname", "NUL"],
        &m,
        |s| {
            s.namespaces(all().hostname("a\0b"));
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "domainname of 65 bytes",
        InvalidInput,
        &["setdomainname", "65 bytes"],
        &m,
        move |s| {
            s.namespaces(all().domainname("d".repeat(65)));
        },
    ));
    let m = marker();
    let mi2 = mi.clone();
    rows.push(spawn_row(
        "join_path on a missing file",
        NotFound,
        &["join net namespace", &mi, "ENOENT"],
        &m,
        move |s| {
            s.namespaces(Namespaces::new().join_path(Some(Namespace::Net), &mi2));
        },
    ));

    // Sandbox::spawn: failures of the child's setup steps.
    let m = marker();
    let mi2 = mi.clone();
    rows.push(spawn_row(
        "missing working directory",
        NotFound,
        &["chdir", &mi, "ENOENT"],
        &m,
        move |s| {
            s.current_dir(&mi2);
        },
    ));
    let m = marker();
    let f2 = f.clone();
    rows.push(spawn_row(
        "working directory that is a file",
        NotADirectory,
        &["chdir", &f, "ENOTDIR"],
        &m,
        move |s| {
            // The file is in a scratch directory under /tmp, which the default view hides.
            s.current_dir(&f2).filesystem(Filesystem::host());
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "uid map with inside id u32::MAX",
        InvalidInput,
        &["write", "/proc/self/uid_map", "EINVAL"],
        &m,
        |s| {
            s.namespaces(all().map_user(u32::MAX));
        },
    ));
    let m = marker();
    rows.push(spawn_row(
        "gid map with inside id u32::MAX",
        InvalidInput,
        &["write", "/proc/self/gid_map", "EINVAL"],
        &m,
        |s| {
            s.namespaces(all().map_group(u32::MAX));
        },
    ));
    let m = marker();
    let f2 = f.clone();
    rows.push(spawn_row(
        "join_path on a file that is not a namespace",
        InvalidInput,
        &["join net namespace", &f, "EINVAL", "not a namespace"],
        &m,
        move |s| {
            s.namespaces(all().join_path(Some(Namespace::Net), &f2));
        },
    ));

    // Functions called in this process. None of them may change it: each fails first.
    let m = marker();
    let f2 = PathBuf::from(&f);
    rows.push(row(
        "setns_path on a file that is not a namespace",
        Some(InvalidInput),
        &["join net namespace", &f, "EINVAL", "not a namespace"],
        &m,
        move || ready(nsbox::setns_path(&f2, Some(Namespace::Net))),
    ));
    let m = marker();
    let mi2 = PathBuf::from(&mi);
    rows.push(row(
        "setns_path on a missing file",
        Some(NotFound),
        &["join net namespace", &mi, "ENOENT"],
        &m,
        move || ready(nsbox::setns_path(&mi2, Some(Namespace::Net))),
    ));
    let m = marker();
    rows.push(row(
        "setns_path on a namespace of another kind",
        Some(InvalidInput),
        &["join net namespace", "/proc/self/ns/uts", "EINVAL"],
        &m,
        || {
            ready(nsbox::setns_path(
                Path::new("/proc/self/ns/uts"),
                Some(Namespace::Net),
            ))
        },
    ));
    let m = marker();
    rows.push(row(
        "enter() with a hostname of 65 bytes (refused before the thread check)",
        Some(InvalidInput),
        &["sethostname", "65 bytes"],
        &m,
        move || ready(nsbox::enter(Namespaces::new().hostname(long)).map(drop)),
    ));

    // enter() in a single-threaded process: the nsrun example.
    let m = marker();
    rows.push(process_row(
        "enter() joining a directory, not a namespace (nsrun --join net:/)",
        &["nsrun: join net namespace /:", "EINVAL"],
        &m,
        nsrun(&m, &["--join", "net:/", "--", "sleep", "1000", &m]),
    ));
    let m = marker();
    rows.push(process_row(
        "enter() with uid map inside id u32::MAX (nsrun -U --map-user 4294967295)",
        &["write uid_map", "/proc/self/uid_map", "EINVAL"],
        &m,
        nsrun(
            &m,
            &["-U", "--map-user", "4294967295", "--", "sleep", "1000", &m],
        ),
    ));

    rows
}

/// The namespace-limit rows: namespace limits of 0, in a nested user namespace, through nsrun
/// (`enter()`) and through the API (`Sandbox::spawn` in this test re-executed as its child).
fn limit_table(test: &str) -> Vec<Row> {
    let nsrun = nsrun_path();
    let m = marker();
    let mut rows = vec![process_row(
        "enter() with max_user_namespaces=0 (nsrun -U)",
        &["unshare user namespace", "ENOSPC", "max_user_namespaces"],
        &m,
        under_limit("user", &nsrun, &["-U", "--", "sleep", "1000", &m], &m),
    )];
    let m = marker();
    rows.push(process_row(
        "enter() with max_net_namespaces=0 (nsrun -U -n)",
        &["unshare net namespace", "ENOSPC", "max_net_namespaces"],
        &m,
        under_limit("net", &nsrun, &["-U", "-n", "--", "sleep", "1000", &m], &m),
    ));
    rows.push(api_under_limit_row(
        test,
        "user",
        &[
            "clone3 with new user namespaces",
            "ENOSPC",
            "max_user_namespaces",
        ],
    ));
    rows.push(api_under_limit_row(
        test,
        "net",
        &[
            "clone3 with new user,net namespaces",
            "ENOSPC",
            "max_net_namespaces",
        ],
    ));
    rows
}

/// Run every row of `rows`: its result must be the expected error, and nothing may be left.
async fn check_rows(rows: Vec<Row>) {
    let total = rows.len();
    let mut failures = Vec::new();
    for r in rows {
        let fut = AssertUnwindSafe(async move { (r.run)().await }).catch_unwind();
        let result = match tokio::time::timeout(DEADLINE, fut).await {
            Err(_) => Err(format!("HUNG: no result within {DEADLINE:?}")),
            Ok(Err(_)) => Err("PANICKED".to_string()),
            Ok(Ok(Ok(()))) => Err("UNEXPECTED SUCCESS".to_string()),
            Ok(Ok(Err(e))) => {
                let text = e.to_string();
                let mut bad = Vec::new();
                if let Some(k) = r.kind
                    && e.kind() != k
                {
                    bad.push(format!("kind {:?}, want {k:?}", e.kind()));
                }
                for w in &r.words {
                    if !text.contains(w.as_str()) {
                        bad.push(format!("lacks {w:?}"));
                    }
                }
                if bad.is_empty() {
                    eprintln!("ok: {}: {text}", r.name);
                    Ok(())
                } else {
                    Err(format!("{}: {text}", bad.join(", ")))
                }
            }
        };
        let left = nothing_left(&r.marker).await;
        if let Err(e) = result.and(left) {
            failures.push(format!("{}: {e}", r.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_input_gets_a_clear_error_and_leaves_nothing_running() {
    let _serial = serial().await;
    let scratch = Scratch::new("bad-input");
    check_rows(table(scratch.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_limit_of_0_gets_a_clear_error_naming_the_limit() {
    let name = test_name(
        module_path!(),
        "a_namespace_limit_of_0_gets_a_clear_error_naming_the_limit",
    );
    if is_child(&name) {
        return spawn_under_a_namespace_limit().await;
    }
    let _serial = serial().await;
    if !unshare_works() {
        skip(
            &name,
            "`unshare -Ur true` fails here: no user namespace for this user",
        );
        return;
    }
    check_rows(limit_table(&name)).await;
}

//! Every stdio-like value a tokio program holds becomes a sandbox's stream: another
//! sandbox's pipe ends, a tokio::process or std::process child's pipes, a File, an OwnedFd.

use std::io::{Read, Seek, Write};
use std::os::fd::OwnedFd;

use nsbox::{Namespaces, Sandbox, Stdio};

use crate::support::*;

fn ns() -> Namespaces {
    with_pidns()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sandbox_pipes_into_another() {
    let mut producer = Sandbox::new("sh");
    producer
        .args(["-c", "echo hello; echo world"])
        .namespaces(ns())
        .stdout(Stdio::piped());
    let mut a = producer.spawn().await.expect("spawn the producer");
    let mut consumer = Sandbox::new("tr");
    consumer
        .args(["a-z", "A-Z"])
        .namespaces(ns())
        .stdin(a.stdout.take().expect("piped stdout"));
    let out = consumer.output().await.expect("run the consumer");
    assert_eq!(out.stdout, b"HELLO\nWORLD\n");
    assert!(a.wait().await.expect("wait the producer").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_feeds_another_through_its_stdin_pipe() {
    // The consumer's piped stdin end is handed to the producer as its stdout.
    let mut consumer = Sandbox::new("wc");
    consumer
        .arg("-l")
        .namespaces(ns())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut b = consumer.spawn().await.expect("spawn the consumer");
    let mut producer = Sandbox::new("sh");
    producer
        .args(["-c", "echo 1; echo 2; echo 3"])
        .namespaces(ns())
        .stdout(b.stdin.take().expect("piped stdin"));
    assert!(producer.status().await.expect("producer").success());
    // The Sandbox holds the pipe's write end (as std's Command holds its Stdio) until it is
    // dropped: only then does the reader see EOF.
    drop(producer);
    let out = b.wait_with_output().await.expect("consumer output");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
}

/// What `cat` in a sandbox prints when its stdin is `input`.
async fn cat_of(input: impl Into<Stdio>) -> Vec<u8> {
    let mut sb = Sandbox::new("cat");
    sb.namespaces(ns()).stdin(input);
    sb.output().await.expect("cat").stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokio_process_child_pipes_into_a_sandbox() {
    let mut echo = tokio::process::Command::new("echo")
        .arg("from tokio")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn echo");
    assert_eq!(
        cat_of(echo.stdout.take().expect("stdout")).await,
        b"from tokio\n"
    );
    assert!(echo.wait().await.expect("wait echo").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_std_process_child_pipes_into_a_sandbox() {
    let mut echo = std::process::Command::new("echo")
        .arg("from std")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn echo");
    assert_eq!(
        cat_of(echo.stdout.take().expect("stdout")).await,
        b"from std\n"
    );
    assert!(echo.wait().expect("wait echo").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_and_an_owned_fd_become_streams() {
    let mut out_file = tempfile_in_tmp("out");
    let err_file = tempfile_in_tmp("err");
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo to-file; echo to-fd >&2"])
        .namespaces(ns())
        .stdout(out_file.try_clone().expect("dup"))
        .stderr(OwnedFd::from(err_file.try_clone().expect("dup")));
    assert!(sb.status().await.expect("status").success());
    let mut text = String::new();
    out_file.rewind().expect("rewind");
    out_file.read_to_string(&mut text).expect("read");
    assert_eq!(text, "to-file\n");
    let mut err = err_file;
    let mut text = String::new();
    err.rewind().expect("rewind");
    err.read_to_string(&mut text).expect("read");
    assert_eq!(text, "to-fd\n");
}

/// A file in TMPDIR, unlinked at once (only the open file is needed).
fn tempfile_in_tmp(tag: &str) -> std::fs::File {
    let path = std::env::temp_dir().join(format!("nsbox-stdio-{}-{tag}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("create a scratch file");
    std::fs::remove_file(&path).expect("unlink the scratch file");
    f.flush().expect("flush");
    f
}

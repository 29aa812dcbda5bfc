//! A sandbox with its own network namespace cannot reach the host's loopback.

use nsbox::{Namespaces, Sandbox};

use crate::run;
use crate::support::*;

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

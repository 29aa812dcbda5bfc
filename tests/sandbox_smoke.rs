use nsbox::{Namespaces, Sandbox, Stdio};
use std::os::unix::process::ExitStatusExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smoke() {
    let mut sb = Sandbox::new("sh");
    sb.args([
        "-c",
        "echo host=$(hostname) pid=$$ uid=$(id -u); ls /proc | grep -c '^[0-9]'; exit 7",
    ])
    .namespaces(Namespaces::all().hostname("build"))
    .stdout(Stdio::piped());
    let out = sb.output().await.unwrap();
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(7));
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "kill -SEGV $$"])
        .namespaces(Namespaces::all());
    let st = sb.status().await.unwrap();
    assert_eq!(st.signal(), Some(11));
    let err = Sandbox::new("/no/such/file")
        .namespaces(Namespaces::all())
        .spawn()
        .await
        .unwrap_err();
    println!("{err}");
    let err = Sandbox::new("true")
        .namespaces(Namespaces::new().join_path(Some(nsbox::Namespace::Net), "/etc/passwd"))
        .spawn()
        .await
        .unwrap_err();
    println!("{err}");
    let st = Sandbox::new("true").status().await.unwrap();
    assert!(st.success());
}

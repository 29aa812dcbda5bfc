//! A sandboxed command holds no capability in the host's user namespace: CapEff is full but
//! relative to its own user namespace, so mknod, chown to an unmapped id and, unprivileged,
//! reading /etc/shadow fail.

use crate::sh_all_caps;
use crate::support::*;

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
    "#;
    let out = sh_all_caps("caps", all(), script, &[&s]).await;
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unprivileged_sandboxed_command_cannot_read_etc_shadow() {
    if is_root() {
        // Root inside maps to root outside: /etc/shadow's owner check passes by plain
        // permission bits, without a capability. Not a leak of a capability.
        skip(
            "an_unprivileged_sandboxed_command_cannot_read_etc_shadow",
            "the test runs as root, whose id the sandbox maps to itself",
        );
        return;
    }
    let out = sh_all_caps(
        "shadow",
        all(),
        "cat /etc/shadow >/dev/null 2>&1 && echo ok || echo failed",
        &[],
    )
    .await;
    assert_eq!(
        out.stdout, "failed\n",
        "/etc/shadow was readable: {}",
        out.stderr
    );
}

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

const CAPS: &str = r#"
    grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status
    hostname nsbox-caps-set 2>/dev/null && echo "sethostname: ok" || echo "sethostname: failed"
"#;

/// The capability sets of `out` by name (`CapEff` and so on), as numbers.
fn sets(out: &crate::Out) -> std::collections::BTreeMap<String, u64> {
    out.stdout
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), u64::from_str_radix(v.trim(), 16).ok()?))
        })
        .collect()
}

/// By default the command holds no capability in any set, even as root in its own user
/// namespace, so it cannot even set the hostname of its own UTS namespace; a capability it
/// is given is the only one it holds, and survives the exec of a non-root uid (ambient).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_starts_with_no_capability_and_keeps_only_those_it_is_given() {
    use nsbox::{Capabilities, Capability, Sandbox};
    let admin = 1u64 << Capability::SysAdmin as u32;
    for uid in [0, 1000] {
        for (keep, want) in [
            (Capabilities::none(), 0),
            (Capabilities::none().with(Capability::SysAdmin), admin),
        ] {
            let what = format!("uid {uid} inside, keep {keep:?}");
            let mut sb = Sandbox::new("sh");
            sb.args(["-c", CAPS])
                .namespaces(all().map_user(uid).clone())
                .capabilities(keep);
            let out = crate::run(&what, sb).await;
            assert!(out.status.success(), "{what}: {}", out.stderr);
            let sets = sets(&out);
            for set in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
                assert_eq!(sets.get(set), Some(&want), "{what}: {set}: {}", out.stdout);
            }
            assert_eq!(sets.get("CapInh"), Some(&want), "{what}: {}", out.stdout);
            let set = if want == 0 { "failed" } else { "ok" };
            assert!(
                out.stdout.contains(&format!("sethostname: {set}")),
                "{what}: {}",
                out.stdout
            );
        }
    }
}

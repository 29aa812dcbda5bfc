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
    grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status
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
    for (uid, nnp) in [(0, true), (1000, true), (0, false), (1000, false)] {
        for (keep, want) in [
            (Capabilities::none(), 0),
            (Capabilities::none().with(Capability::SysAdmin), admin),
        ] {
            let what = format!("uid {uid} inside, keep {keep:?}, no_new_privs({nnp})");
            let mut sb = Sandbox::new("sh");
            sb.args(["-c", CAPS])
                .namespaces(all().map_user(uid).clone())
                .capabilities(keep)
                .no_new_privs(nnp);
            let out = crate::run(&what, sb).await;
            assert!(out.status.success(), "{what}: {}", out.stderr);
            let sets = sets(&out);
            for set in ["CapEff", "CapPrm", "CapAmb"] {
                assert_eq!(sets.get(set), Some(&want), "{what}: {set}: {}", out.stdout);
            }
            // The bounding set is emptied only without no_new_privs; with it (the default)
            // the kernel refuses every capability an exec would add, which
            // an_exec_brings_no_capability_back checks with a file capability.
            if !nnp {
                assert_eq!(sets.get("CapBnd"), Some(&want), "{what}: {}", out.stdout);
            }
            let nnp_line = format!("NoNewPrivs:\t{}", u8::from(nnp));
            assert!(
                out.stdout.lines().any(|l| l == nnp_line),
                "{what}: {}",
                out.stdout
            );
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

/// The attack the bounding set (or no_new_privs) stops: a program with a file capability
/// (here CAP_NET_RAW, as ping has on many systems) would give it to whoever runs it. Run as
/// uid 1000 inside, with the default capabilities, the program gets nothing: with
/// no_new_privs (the default) it runs without the capability (the kernel refuses the gain),
/// without no_new_privs its exec fails with EPERM (the bounding set is empty). The control keeps every capability without no_new_privs: the same
/// program then holds CAP_NET_RAW, so the file capability is real and the test can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exec_brings_no_capability_back() {
    use nsbox::{Capabilities, Sandbox};
    use std::os::unix::ffi::OsStrExt;
    const NAME: &str = "an_exec_brings_no_capability_back";
    if !is_root() {
        skip(
            NAME,
            "only a file capability set by host root applies in the sandbox's user namespace, \
             and only root may set one",
        );
        return;
    }
    // Under /var/tmp: the default view hides the host's /tmp.
    let dir = std::path::PathBuf::from(format!(
        "/var/tmp/nsbox-test-{}-filecap",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Scratch(dir.clone());
    let prog = dir.join("grep");
    std::fs::copy("/usr/bin/grep", &prog)
        .or_else(|_| std::fs::copy("/bin/grep", &prog))
        .unwrap();
    // struct vfs_cap_data, revision 2, effective: CAP_NET_RAW (13) permitted.
    let mut cap = Vec::new();
    for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&word.to_le_bytes());
    }
    let path = std::ffi::CString::new(prog.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            cap.as_ptr().cast(),
            cap.len(),
            0,
        )
    };
    if r != 0 {
        skip(
            NAME,
            &format!(
                "cannot set a file capability under /var/tmp: {}",
                std::io::Error::last_os_error()
            ),
        );
        return;
    }
    let net_raw = 1u64 << 13;
    for (caps, nnp, want) in [
        (Capabilities::none(), true, 0),
        (Capabilities::none(), false, 0),
        (Capabilities::all(), false, net_raw),
    ] {
        let what = format!("uid 1000 inside, {caps:?}, no_new_privs({nnp})");
        let mut sb = Sandbox::new(&prog);
        sb.args(["-E", "^Cap(Prm|Eff):", "/proc/self/status"])
            .namespaces(all().map_user(1000).clone())
            .capabilities(caps)
            .no_new_privs(nnp);
        if !nnp && want == 0 {
            // The kernel refuses the exec of a program whose file capabilities the bounding
            // set cuts short (it is marked effective: it expects to hold them all): EPERM, and
            // nothing ran with a capability.
            let err = deadline(&what, sb.output()).await.expect_err(&what);
            let e = err
                .get_ref()
                .and_then(|i| i.downcast_ref::<nsbox::Error>())
                .unwrap_or_else(|| panic!("{what}: not an nsbox error: {err}"));
            assert_eq!(
                (e.step(), e.errno()),
                (nsbox::Step::Exec, Some(libc::EPERM)),
                "{what}: {err}"
            );
            continue;
        }
        let out = crate::run(&what, sb).await;
        assert!(out.status.success(), "{what}: {}", out.stderr);
        let sets = sets(&out);
        for set in ["CapPrm", "CapEff"] {
            assert_eq!(sets.get(set), Some(&want), "{what}: {set}: {}", out.stdout);
        }
    }
}

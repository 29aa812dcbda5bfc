//! The parent-side setup hook: it runs after the sandbox's namespaces exist and before the
//! command, while the init waits; an error from it aborts the spawn cleanly (the error comes
//! back from spawn(), no process is left); and `NewIdMaps` maps a subordinate id range with
//! newuidmap/newgidmap, so that the command sees both ranges and can chown to a subordinate
//! id. As root the same maps root's own id plus root's /etc/subuid range.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use nsbox::IdMap;
use nsbox::{NewIdMaps, Sandbox, SetupContext, SetupHook, Stdio};

use crate::support::*;

/// A hook that records the init's pid, checks what the brief promises about the moment it
/// runs, then fails or hands over to an inner hook.
struct Probe {
    pid: Arc<AtomicU32>,
    fail: bool,
    inner: Option<NewIdMaps>,
}

#[async_trait::async_trait]
impl SetupHook for Probe {
    async fn setup(&self, ctx: &SetupContext<'_>) -> io::Result<()> {
        self.pid.store(ctx.pid, Ordering::SeqCst);
        // The namespaces exist already: the init's user namespace is not ours.
        let theirs = std::fs::read_link(format!("/proc/{}/ns/user", ctx.pid));
        let ours = std::fs::read_link("/proc/self/ns/user")?;
        if let Ok(theirs) = theirs {
            assert_ne!(
                theirs, ours,
                "the hook ran before the user namespace existed"
            );
        }
        // Nothing is mapped yet: the init waits for us.
        let map = std::fs::read_to_string(format!("/proc/{}/uid_map", ctx.pid))?;
        assert_eq!(map, "", "the init wrote its uid map before the hook ran");
        if self.fail {
            return Err(io::Error::other("the probe hook says no"));
        }
        match &self.inner {
            Some(h) => h.setup(ctx).await,
            None => Ok(()),
        }
    }

    fn writes_id_maps(&self) -> bool {
        self.inner.is_some()
    }
}

async fn assert_process_gone(pid: u32, what: &str) {
    assert_ne!(pid, 0, "{what}: the hook never ran");
    until_reaped(pid as i32, &format!("{what}: the init gone (not a zombie)")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_hook_aborts_the_spawn_and_leaves_nothing() {
    for (shape, ns) in both_shapes() {
        let m = marker();
        let pid = Arc::new(AtomicU32::new(0));
        let mut sb = Sandbox::new("sleep");
        sb.args(["1000", &m])
            .namespaces(ns)
            .setup_hook(Arc::new(Probe {
                pid: pid.clone(),
                fail: true,
                inner: None,
            }));
        let err = deadline(shape, sb.spawn())
            .await
            .expect_err("spawn despite a failing hook");
        assert!(
            err.to_string().contains("the probe hook says no"),
            "{shape}: {err}"
        );
        assert_process_gone(pid.load(Ordering::SeqCst), shape).await;
        assert!(pids_with_marker(&m).is_empty(), "{shape}: the command ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hook_that_succeeds_runs_before_the_command_with_the_inits_pid() {
    let pid = Arc::new(AtomicU32::new(0));
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "cat /proc/self/uid_map; exit 6"])
        .namespaces(with_pidns())
        .stdout(Stdio::piped())
        .setup_hook(Arc::new(Probe {
            pid: pid.clone(),
            fail: false,
            inner: None,
        }));
    let child = deadline("spawn", sb.spawn()).await.expect("spawn");
    assert_eq!(Some(pid.load(Ordering::SeqCst)), child.id());
    let out = deadline("wait", child.wait_with_output())
        .await
        .expect("wait");
    assert_eq!(out.status.code(), Some(6));
    // The init's own single-id map, written after the hook.
    let lines = parse_map(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(lines.len(), 1, "{out:?}");
    assert_eq!(lines[0].outside, nix::unistd::getuid().as_raw());
}

fn parse_map(text: &str) -> Vec<IdMap> {
    text.lines()
        .filter_map(|l| {
            let n: Vec<u32> = l
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            (n.len() == 3).then(|| IdMap {
                inside: n[0],
                outside: n[1],
                count: n[2],
            })
        })
        .collect()
}

/// The caller's subordinate range in `file` (/etc/subuid or /etc/subgid), by name or id.
fn sub_range(file: &str, id: u32, name: Option<&str>) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if who == id.to_string() || Some(who) == name {
            Some((start.parse().ok()?, count.parse().ok()?))
        } else {
            None
        }
    })
}

/// The maps for the caller: its own id to 0 and up to 65536 subordinate ids from 1, or why
/// not.
fn caller_maps() -> Result<NewIdMaps, String> {
    if !on_path("newuidmap") || !on_path("newgidmap") {
        return Err("newuidmap/newgidmap not found: install the uidmap package".into());
    }
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name);
    let group = nix::unistd::Group::from_gid(gid)
        .ok()
        .flatten()
        .map(|g| g.name);
    let Some((us, uc)) = sub_range("/etc/subuid", uid.as_raw(), user.as_deref()) else {
        return Err(format!("no /etc/subuid entry for uid {uid} ({user:?})"));
    };
    // newgidmap looks the ranges up by the user's name too.
    let Some((gs, gc)) = sub_range("/etc/subgid", uid.as_raw(), user.as_deref()) else {
        return Err(format!(
            "no /etc/subgid entry for user {uid} ({user:?}, group {group:?})"
        ));
    };
    if uc < 1001 || gc < 1001 {
        return Err(format!(
            "subordinate ranges too small to hold id 1000: {uc}, {gc}"
        ));
    }
    Ok(NewIdMaps::new(
        vec![
            IdMap::single(0, uid.as_raw()),
            IdMap {
                inside: 1,
                outside: us,
                count: uc.min(65536),
            },
        ],
        vec![
            IdMap::single(0, gid.as_raw()),
            IdMap {
                inside: 1,
                outside: gs,
                count: gc.min(65536),
            },
        ],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_id_maps_makes_a_subordinate_range_usable_inside() {
    let test = "new_id_maps_makes_a_subordinate_range_usable_inside";
    let maps = match caller_maps() {
        Ok(m) => m,
        Err(why) => {
            skip(test, &why);
            return;
        }
    };
    let scratch = Scratch::new("idmap");
    let d = scratch.path().display().to_string();
    // A tmpfs of the sandbox's own (owned by its user namespace), a file in it chowned to a
    // subordinate id, and both maps as the command sees them.
    let script = format!(
        "mount -t tmpfs tmpfs {d} && touch {d}/f && chown 1000:1000 {d}/f && \
         echo owner=$(stat -c %u:%g {d}/f) && echo uid_map && cat /proc/self/uid_map && \
         echo gid_map && cat /proc/self/gid_map && echo id=$(id -u):$(id -g)"
    );
    let pid = Arc::new(AtomicU32::new(0));
    let mut sb = Sandbox::new("sh");
    // The command mounts and chowns: it keeps its capabilities.
    sb.args(["-c", &script])
        .namespaces(with_pidns())
        .capabilities(nsbox::Capabilities::all())
        .filesystem(nsbox::Filesystem::host())
        .setup_hook(Arc::new(Probe {
            pid: pid.clone(),
            fail: false,
            inner: Some(maps.clone()),
        }));
    let out = deadline(test, sb.output())
        .await
        .expect("spawn with NewIdMaps");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}\n{text}\n{err}");
    assert!(text.contains("owner=1000:1000\n"), "{text}\n{err}");
    assert!(text.contains("id=0:0\n"), "{text}");
    let (u, g) = text
        .split_once("gid_map\n")
        .map(|(a, b)| (a.split_once("uid_map\n").map_or("", |x| x.1), b))
        .unwrap();
    let mut u = parse_map(u);
    let mut g = parse_map(g.split("id=").next().unwrap_or(""));
    u.sort_by_key(|m| m.inside);
    g.sort_by_key(|m| m.inside);
    assert_eq!(u, maps.uid_maps, "uid_map inside: {text}");
    assert_eq!(g, maps.gid_maps, "gid_map inside: {text}");
    // Nothing of it is left on the host: the tmpfs was the sandbox's.
    assert!(!scratch.path().join("f").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_id_maps_with_a_range_the_caller_does_not_own_fails_cleanly() {
    let test = "new_id_maps_with_a_range_the_caller_does_not_own_fails_cleanly";
    if let Err(why) = caller_maps() {
        skip(test, &why);
        return;
    }
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let m = marker();
    let pid = Arc::new(AtomicU32::new(0));
    let mut sb = Sandbox::new("sleep");
    sb.args(["1000", &m])
        .namespaces(with_pidns())
        .setup_hook(Arc::new(Probe {
            pid: pid.clone(),
            fail: false,
            inner: Some(NewIdMaps::new(
                vec![
                    IdMap::single(0, uid),
                    IdMap {
                        inside: 1,
                        outside: 3_000_000_000,
                        count: 10,
                    },
                ],
                vec![IdMap::single(0, gid)],
            )),
        }));
    let err = deadline(test, sb.spawn())
        .await
        .expect_err("mapped a range nobody owns");
    let msg = err.to_string();
    assert!(msg.contains("newuidmap"), "{msg}");
    assert_process_gone(pid.load(Ordering::SeqCst), test).await;
    assert!(pids_with_marker(&m).is_empty(), "the command ran");
}

/// setgroups(2) is denied inside by default (newgidmap leaves it allowed, and the command
/// could drop a supplementary group that a file's permissions deny), even for a command that
/// kept every capability; `allow_setgroups` allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_id_maps_denies_setgroups_unless_allowed() {
    let test = "new_id_maps_denies_setgroups_unless_allowed";
    let maps = match caller_maps() {
        Ok(m) => m,
        Err(why) => {
            skip(test, &why);
            return;
        }
    };
    if !std::path::Path::new("/usr/bin/python3").exists() {
        skip(test, "/usr/bin/python3 is not installed");
        return;
    }
    let probe = r#"
import os
print(open("/proc/self/setgroups").read().strip())
try:
    os.setgroups([]); print("setgroups ok")
except OSError as e:
    print("setgroups", e.errno)
"#;
    for (allow, want) in [
        (false, format!("deny\nsetgroups {}\n", libc::EPERM)),
        (true, "allow\nsetgroups ok\n".to_string()),
    ] {
        let mut maps = maps.clone();
        maps.allow_setgroups = allow;
        let mut sb = Sandbox::new("/usr/bin/python3");
        sb.args(["-c", probe])
            .namespaces(with_pidns())
            .capabilities(nsbox::Capabilities::all())
            .setup_hook(Arc::new(maps));
        let out = deadline(test, sb.output())
            .await
            .expect("spawn with NewIdMaps");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text,
            want,
            "allow_setgroups {allow}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

//! cgroup v2 leaves (`Sandbox::cgroup`). What cgroup v2 gives without controllers is tested
//! wherever a cgroup2 hierarchy is mounted and this process (root) can make a parent of its
//! own in it: the whole tree in a leaf of its own from the init's start (clone3's
//! CLONE_INTO_CGROUP, and the clone(2) fallback's join), the leaf removed afterwards,
//! cpu.stat counting a daemon killed at the end, cgroup.kill ending a process that escaped
//! an init killed from outside, and the clear error (or the best-effort report) for a limit
//! whose controller is missing. The limits themselves (memory.max's OOM kill, pids.max) need
//! their controllers and print SKIPPED where they are missing (this project's machine runs
//! them on cgroup v1).
//!
//! Every cgroup a test makes is under a parent `TestParent` made for it, which its Drop
//! empties (cgroup.kill) and removes, also when the test fails. No other cgroup is touched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nsbox::{Cgroup, EndReason, Sandbox, SetupContext, SetupHook, Stdio};

use crate::support::*;

/// A parent cgroup made by this test, removed with everything under it on drop.
struct TestParent {
    path: PathBuf,
    /// Its path relative to the hierarchy's root, as /proc/PID/cgroup shows it.
    rel: String,
}

fn v2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(pre.split_whitespace().nth(4)?))
    })
}

impl TestParent {
    /// `None` (after printing SKIPPED for `test`) where no parent can be made.
    fn new(test: &str) -> Option<TestParent> {
        let name = test_name(module_path!(), test);
        if !is_root() {
            skip(
                &name,
                "making a cgroup v2 parent needs root here (no delegated subtree)",
            );
            return None;
        }
        let Some(mount) = v2_mount() else {
            skip(&name, "no cgroup2 filesystem is mounted");
            return None;
        };
        let leafname = format!("nsbox-test-{}", marker());
        let path = mount.join(&leafname);
        if let Err(e) = std::fs::create_dir(&path) {
            skip(&name, &format!("cannot make {}: {e}", path.display()));
            return None;
        }
        // The process's own v2 cgroup must be the hierarchy's root for `rel` to be simple.
        Some(TestParent {
            rel: format!("/{leafname}"),
            path,
        })
    }

    fn leaves(&self) -> Vec<String> {
        std::fs::read_dir(&self.path)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Enable `ctl` for this parent's children when the hierarchy's root offers it.
    fn enable(&self, ctl: &str) -> bool {
        std::fs::write(self.path.join("cgroup.subtree_control"), format!("+{ctl}")).is_ok()
    }
}

fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .map(|t| t.lines().any(|l| l == "populated 1"))
        .unwrap_or(false)
}

impl Drop for TestParent {
    fn drop(&mut self) {
        for leaf in self.leaves() {
            let dir = self.path.join(leaf);
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
            wait_until("a leftover leaf emptied", || !populated(&dir));
            let _ = std::fs::remove_dir(&dir);
        }
        let _ = std::fs::write(self.path.join("cgroup.kill"), "1");
        wait_until("the test parent emptied", || !populated(&self.path));
        if let Err(e) = std::fs::remove_dir(&self.path) {
            eprintln!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// The v2 line of `/proc/PID/cgroup` text.
fn v2_line(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("<none>")
        .to_string()
}

/// Run `cat /proc/self/cgroup` in a leaf under `parent`; the command's v2 cgroup.
async fn cgroup_of_command(parent: &TestParent, what: &str) -> String {
    let mut sb = Sandbox::new("cat");
    sb.arg("/proc/self/cgroup")
        .namespaces(with_pidns())
        .cgroup(Cgroup::under(&parent.path))
        .stdout(Stdio::piped());
    let out = deadline(what, sb.output()).await.expect("output");
    assert!(out.status.success(), "{what}: {out:?}");
    v2_line(&String::from_utf8_lossy(&out.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_tree_runs_in_a_leaf_of_its_own_which_is_removed_afterwards() {
    let Some(parent) =
        TestParent::new("the_whole_tree_runs_in_a_leaf_of_its_own_which_is_removed_afterwards")
    else {
        return;
    };
    for (shape, ns) in shapes_and_none() {
        let mut sb = Sandbox::new("sh");
        sb.args([
            "-c",
            "cat /proc/self/cgroup; (cat /proc/self/cgroup) &  wait",
        ])
        .namespaces(ns)
        .cgroup(Cgroup::under(&parent.path))
        .stdout(Stdio::piped());
        let out = deadline(shape, sb.output()).await.expect("output");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("0::"))
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 2, "{shape}: {text}");
        let prefix = format!("{}/nsbox-{}-", parent.rel, std::process::id());
        assert!(
            lines[0].starts_with(&prefix),
            "{shape}: {lines:?}, want {prefix}*"
        );
        assert_eq!(lines[0], lines[1], "{shape}: a child is in the same leaf");
        assert!(
            parent.leaves().is_empty(),
            "{shape}: leaf left: {:?}",
            parent.leaves()
        );
        let cg = out.resource_usage.cgroup.expect("the leaf's statistics");
        assert!(cg.cpu_usage > Duration::ZERO, "{shape}: {cg:?}");
    }
}

/// A hook that records the init's v2 cgroup while the init waits for it (before any setup).
struct SeeInit(std::sync::Mutex<String>);

#[async_trait::async_trait]
impl SetupHook for SeeInit {
    async fn setup(&self, ctx: &SetupContext<'_>) -> std::io::Result<()> {
        let text = std::fs::read_to_string(format!("/proc/{}/cgroup", ctx.pid))?;
        *self.0.lock().unwrap() = v2_line(&text);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_starts_in_the_leaf() {
    let Some(parent) = TestParent::new("the_init_starts_in_the_leaf") else {
        return;
    };
    let hook = Arc::new(SeeInit(Default::default()));
    let mut sb = Sandbox::new("true");
    sb.namespaces(with_pidns())
        .cgroup(Cgroup::under(&parent.path))
        .setup_hook(hook.clone());
    let status = deadline("hook", sb.status()).await.expect("status");
    assert!(status.success());
    let seen = hook.0.lock().unwrap().clone();
    assert!(
        seen.starts_with(&format!("{}/nsbox-", parent.rel)),
        "the init's cgroup before its setup: {seen}"
    );
    assert!(parent.leaves().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clone_fallback_joins_the_leaf() {
    if ran_alone(module_path!(), "the_clone_fallback_joins_the_leaf").await {
        return;
    }
    let Some(parent) = TestParent::new("the_clone_fallback_joins_the_leaf") else {
        return;
    };
    nsbox::force_clone3_fallback();
    let cg = cgroup_of_command(&parent, "fallback").await;
    assert!(cg.starts_with(&format!("{}/nsbox-", parent.rel)), "{cg}");
    assert!(parent.leaves().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_stat_counts_a_daemon_killed_at_the_end() {
    let Some(parent) = TestParent::new("cpu_stat_counts_a_daemon_killed_at_the_end") else {
        return;
    };
    const BURN_MS: u64 = 300;
    let script = format!(
        "tck=$(getconf CLK_TCK); want=$(( {BURN_MS} * tck / 1000 )); \
         ( while :; do read -r s < /proc/self/stat; set -- $s; \
             [ $(( ${{14}} + ${{15}} )) -ge $want ] && break; done; \
           echo burned; while :; do :; done ) & exec sleep 1000"
    );
    for (shape, ns) in both_shapes() {
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &script])
            .namespaces(ns)
            .cgroup(Cgroup::under(&parent.path))
            .stdout(Stdio::piped());
        let mut child = sb.spawn().await.expect("spawn");
        let mut out = child.stdout.take().unwrap();
        read_until(&mut out, "burned", shape).await;
        deadline(shape, child.kill()).await.expect("kill");
        let u = child.resource_usage().expect("usage");
        let cg = u.cgroup.expect("the leaf's statistics");
        assert!(
            cg.cpu_usage >= Duration::from_millis(BURN_MS),
            "{shape}: {cg:?}"
        );
        assert!(
            cg.cpu_user + cg.cpu_system >= Duration::from_millis(BURN_MS),
            "{shape}: {cg:?}"
        );
        assert_eq!((u.user_time, u.system_time), (cg.cpu_user, cg.cpu_system));
        assert!(parent.leaves().is_empty(), "{shape}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_kill_ends_what_outlived_an_init_killed_from_outside() {
    let Some(parent) =
        TestParent::new("cgroup_kill_ends_what_outlived_an_init_killed_from_outside")
    else {
        return;
    };
    // Without a pid namespace, a grandchild outlives an init SIGKILLed from outside (README,
    // known limits): only the leaf holds it.
    let m = marker();
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", &format!("(setsid sleep 1000 {m} &); exec sleep 1000")])
        .namespaces(without_pidns())
        .cgroup(Cgroup::under(&parent.path));
    let mut child = sb.spawn().await.expect("spawn");
    wait_for_marker(&m, "grandchild").await;
    let pid = child.id().expect("pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
        .expect("kill the init");
    let err = deadline("wait", child.wait())
        .await
        .expect_err("the init died");
    assert!(err.to_string().contains("died"), "{err}");
    assert_no_marker_left(&m, "the leaf's processes").await;
    assert!(
        parent.leaves().is_empty(),
        "leaf left: {:?}",
        parent.leaves()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_without_its_controller_is_an_error_naming_it() {
    let Some(parent) = TestParent::new("a_limit_without_its_controller_is_an_error_naming_it")
    else {
        return;
    };
    let m = marker();
    let mut cg = Cgroup::under(&parent.path);
    cg.memory_max(64 << 20);
    let mut sb = Sandbox::new("sleep");
    sb.args(["1000", &m]).cgroup(cg);
    let err = sb
        .spawn()
        .await
        .expect_err("memory.max without the memory controller");
    let e = nsbox::Error::from_io(&err).expect("an nsbox error");
    assert_eq!(e.step(), nsbox::Step::Cgroup, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("memory.max") && text.contains("memory controller"),
        "{text}"
    );
    assert!(e.hint().is_some_and(|h| h.contains("memory")), "{text}");
    assert!(parent.leaves().is_empty(), "leaf left after the error");
    assert!(pids_with_marker(&m).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_effort_runs_without_and_names_the_limits_not_applied() {
    let Some(parent) = TestParent::new("best_effort_runs_without_and_names_the_limits_not_applied")
    else {
        return;
    };
    let mut cg = Cgroup::under(&parent.path);
    cg.memory_max(64 << 20).pids_max(64).best_effort(true);
    let mut sb = Sandbox::new("true");
    sb.cgroup(cg);
    let mut child = sb.spawn().await.expect("best effort");
    assert_eq!(child.unapplied_limits(), ["memory.max", "pids.max"]);
    assert!(child.wait().await.expect("wait").success());
    assert!(parent.leaves().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_parent_is_named() {
    let mut sb = Sandbox::new("true");
    sb.cgroup(Cgroup::under("/no/such/cgroup"));
    let err = sb.spawn().await.expect_err("missing parent");
    assert_eq!(
        nsbox::Error::from_io(&err).map(|e| e.step()),
        Some(nsbox::Step::Cgroup)
    );
    assert!(err.to_string().contains("/no/such/cgroup"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_max_oom_kill_is_the_reason() {
    let test = "memory_max_oom_kill_is_the_reason";
    let Some(parent) = TestParent::new(test) else {
        return;
    };
    if !parent.enable("memory") {
        return skip(
            &test_name(module_path!(), test),
            "the memory controller is not available in cgroup v2 here",
        );
    }
    let mut cg = Cgroup::under(&parent.path);
    cg.memory_max(32 << 20)
        .memory_swap_max(0)
        .best_effort(false);
    let mut sb = Sandbox::new("sh");
    sb.args([
        "-c",
        "a=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived",
    ])
    .namespaces(with_pidns())
    .cgroup(cg)
    .stdout(Stdio::piped());
    let out = deadline(test, sb.output()).await.expect("output");
    let cg = out.resource_usage.cgroup.expect("stats");
    assert!(cg.oom_kill > 0, "{cg:?}");
    assert_eq!(out.end_reason, EndReason::OutOfMemory, "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pids_max_is_the_reason() {
    let test = "pids_max_is_the_reason";
    let Some(parent) = TestParent::new(test) else {
        return;
    };
    if !parent.enable("pids") {
        return skip(
            &test_name(module_path!(), test),
            "the pids controller is not available in cgroup v2 here",
        );
    }
    let mut cg = Cgroup::under(&parent.path);
    cg.pids_max(8);
    let mut sb = Sandbox::new("sh");
    sb.args([
        "-c",
        "i=0; while [ $i -lt 20 ]; do sleep 1000 & i=$((i+1)); done; wait",
    ])
    .namespaces(with_pidns())
    .cgroup(cg);
    let mut child = sb.spawn().await.expect("spawn");
    deadline(test, child.wait()).await.expect("wait");
    let cg = child
        .resource_usage()
        .and_then(|u| u.cgroup)
        .expect("stats");
    assert!(cg.pids_max_hits > 0, "{cg:?}");
    assert_eq!(child.end_reason(), Some(EndReason::ProcessLimit));
}

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

/// A FUSE mount served by this test, by hand: it answers FUSE_INIT and then reads requests
/// without answering them. A process whose request has been read waits for the answer in
/// uninterruptible sleep, SIGKILL or not (the kernel's request_wait_answer), so a leaf
/// holding it cannot become empty until the test [`release`](Self::release)s it (closing
/// /dev/fuse aborts the connection and ends every request). Its Drop releases, unmounts and
/// removes the mount point, also when the test fails.
struct StuckFuse {
    dev: Option<std::fs::File>,
    dir: PathBuf,
}

impl StuckFuse {
    /// `None` (after printing SKIPPED for `test`) where no FUSE mount can be made.
    fn new(test: &str) -> Option<StuckFuse> {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let name = test_name(module_path!(), test);
        let dev = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
        {
            Ok(f) => f,
            Err(e) => {
                skip(&name, &format!("cannot open /dev/fuse: {e}"));
                return None;
            }
        };
        let dir = temp_path("fuse");
        std::fs::create_dir(&dir).expect("mount point");
        let opts = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
            dev.as_raw_fd()
        );
        if let Err(e) = nix::mount::mount(
            Some("nsbox-test"),
            &dir,
            Some("fuse"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(opts.as_str()),
        ) {
            let _ = std::fs::remove_dir(&dir);
            skip(&name, &format!("cannot mount a FUSE filesystem: {e}"));
            return None;
        }
        let mut fuse = StuckFuse {
            dev: Some(dev),
            dir,
        };
        // FUSE_INIT (opcode 26): answer with protocol 7.31.
        let (opcode, unique) = fuse.read_request();
        assert_eq!(opcode, 26, "the first request is FUSE_INIT");
        let mut reply = Vec::new();
        reply.extend_from_slice(&(16u32 + 64).to_ne_bytes());
        reply.extend_from_slice(&0i32.to_ne_bytes());
        reply.extend_from_slice(&unique.to_ne_bytes());
        let mut init = [0u8; 64];
        init[0..4].copy_from_slice(&7u32.to_ne_bytes());
        init[4..8].copy_from_slice(&31u32.to_ne_bytes());
        // FUSE_PARALLEL_DIROPS: lookups in the root are not serialized on its lock, so each
        // process's lookup reaches this server.
        init[12..16].copy_from_slice(&(1u32 << 18).to_ne_bytes());
        init[20..24].copy_from_slice(&4096u32.to_ne_bytes()); // max_write
        reply.extend_from_slice(&init);
        fuse.dev
            .as_ref()
            .unwrap()
            .write_all(&reply)
            .expect("answer FUSE_INIT");
        Some(fuse)
    }

    /// The next request: its opcode and unique id (blocks until one comes).
    fn read_request(&mut self) -> (u32, u64) {
        use std::io::Read;
        use std::os::fd::AsFd;
        // The hang guard: a request that never comes fails the test.
        let dev = self.dev.as_ref().expect("not released");
        let mut fds = [nix::poll::PollFd::new(
            dev.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = u16::try_from(DEADLINE.as_millis()).unwrap_or(u16::MAX);
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).expect("poll");
        assert!(n > 0, "no FUSE request within {ms} ms");
        let mut buf = vec![0u8; 1 << 17];
        let n = self
            .dev
            .as_ref()
            .expect("not released")
            .read(&mut buf)
            .expect("read a FUSE request");
        assert!(n >= 40, "a request header: {n} bytes");
        let opcode = u32::from_ne_bytes(buf[4..8].try_into().unwrap());
        let unique = u64::from_ne_bytes(buf[8..16].try_into().unwrap());
        (opcode, unique)
    }

    /// Wait until a process is stuck: a lookup has been read and is left unanswered.
    fn hold_a_lookup(&mut self) {
        let (opcode, _) = self.read_request();
        assert_eq!(opcode, 1, "a FUSE_LOOKUP");
    }

    /// Abort the connection: every request ends (ECONNABORTED), its process wakes up.
    fn release(&mut self) {
        drop(self.dev.take());
    }
}

impl Drop for StuckFuse {
    fn drop(&mut self) {
        self.release();
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Dropping sandboxes whose leaves cannot empty yet (a process in uninterruptible sleep
/// until the test releases it) neither blocks the caller nor starves the runtime: on a
/// single-threaded runtime, the drops return while the leaves are still populated, a task
/// of the same runtime then releases the processes, and the leaves are removed in the
/// background. (A leaf's synchronous wait in the drop would block the only thread, the
/// releasing task could not run, and the leaves would be left behind.)
#[tokio::test(flavor = "current_thread")]
async fn dropping_sandboxes_whose_leaves_are_slow_to_empty_never_blocks_the_runtime() {
    let test = "dropping_sandboxes_whose_leaves_are_slow_to_empty_never_blocks_the_runtime";
    let Some(parent) = TestParent::new(test) else {
        return;
    };
    let Some(mut fuse) = StuckFuse::new(test) else {
        return;
    };
    let mut children = Vec::new();
    for i in 0..3 {
        let mut sb = Sandbox::new("cat");
        sb.arg(fuse.dir.join(format!("f{i}")))
            .namespaces(with_pidns())
            .filesystem(nsbox::Filesystem::host())
            .cgroup(Cgroup::under(&parent.path));
        children.push(sb.spawn().await.expect("spawn"));
        fuse.hold_a_lookup();
    }
    let leaves = parent.leaves();
    assert_eq!(leaves.len(), 3, "{leaves:?}");
    drop(children);
    // Nothing has released the processes yet: the leaves are all still there and populated.
    for leaf in &leaves {
        assert!(populated(&parent.path.join(leaf)), "{leaf} emptied early");
    }
    let released = tokio::spawn(async move {
        fuse.release();
        fuse
    });
    let fuse = deadline("the releasing task", released)
        .await
        .expect("task");
    poll_for("the leaves removed in the background", || {
        let left = parent.leaves();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
    drop(fuse);
}

/// wait() waits for the leaf to empty without blocking the runtime: with the init killed
/// from outside and a process left in the leaf in uninterruptible sleep, wait() (on a
/// single-threaded runtime) lets another future run, which releases the process; then
/// wait() ends and the leaf is gone.
#[tokio::test(flavor = "current_thread")]
async fn wait_lets_the_runtime_run_while_the_leaf_empties() {
    let test = "wait_lets_the_runtime_run_while_the_leaf_empties";
    let Some(parent) = TestParent::new(test) else {
        return;
    };
    let Some(mut fuse) = StuckFuse::new(test) else {
        return;
    };
    let m = marker();
    let file = fuse.dir.join("f");
    let mut sb = Sandbox::new("sh");
    sb.args([
        "-c",
        &format!("(setsid cat {} &); exec sleep 1000 {m}", file.display()),
    ])
    .namespaces(without_pidns())
    .filesystem(nsbox::Filesystem::host())
    .cgroup(Cgroup::under(&parent.path));
    let mut child = sb.spawn().await.expect("spawn");
    fuse.hold_a_lookup();
    wait_for_marker(&m, "the command").await;
    let pid = child.id().expect("pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
        .expect("kill the init");
    // The release waits until wait() has reaped the init (so wait() is then on the leaf),
    // and checks that wait() has not returned: a wait that blocked the thread would only
    // let it run once it had given up on the leaf.
    let wait_done = std::cell::Cell::new(false);
    let (waited, ()) = tokio::join!(
        async {
            let r = deadline("wait", child.wait()).await;
            wait_done.set(true);
            r
        },
        async {
            until_reaped(pid, "the init").await;
            assert!(
                !wait_done.get(),
                "wait() returned while the leaf was populated"
            );
            fuse.release();
        }
    );
    let err = waited.expect_err("the init died");
    assert!(err.to_string().contains("died"), "{err}");
    assert!(
        parent.leaves().is_empty(),
        "leaf left: {:?}",
        parent.leaves()
    );
    assert!(child.resource_usage().is_some());
}

/// Cgroup::enable_controllers with the orchestrator living in the parent (the case of the
/// no-internal-processes rule): a child process of this test, moved into the test's parent,
/// spawns a sandbox there; it is moved into `PARENT/nsbox-orchestrator-PID` first and the
/// sandbox gets its leaf beside it. (No controller can be enabled on this project's machine,
/// so the enabling itself is not exercised here; a limit whose controller is not offered
/// fails before anything moves.)
#[test]
fn enable_controllers_moves_the_orchestrator_out_of_the_parent_first() {
    let test = "enable_controllers_moves_the_orchestrator_out_of_the_parent_first";
    let name = test_name(module_path!(), test);
    if is_child(&name) {
        let parent = PathBuf::from(std::env::var_os("NSBOX_TEST_CG_PARENT").expect("parent"));
        std::fs::write(parent.join("cgroup.procs"), std::process::id().to_string())
            .expect("move into the test's parent");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            // A limit whose controller is not offered: an error, and nothing moved.
            let mut cg = Cgroup::under(&parent);
            cg.enable_controllers(true).memory_max(64 << 20);
            let mut sb = Sandbox::new("true");
            sb.cgroup(cg);
            let err = sb.spawn().await.expect_err("memory is not offered");
            assert!(err.to_string().contains("memory"), "{err}");
            let own = v2_line(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
            println!("after-error {own}");
            let mut cg = Cgroup::under(&parent);
            cg.enable_controllers(true);
            let mut sb = Sandbox::new("cat");
            sb.arg("/proc/self/cgroup")
                .cgroup(cg)
                .stdout(Stdio::piped());
            let out = sb.output().await.expect("output");
            assert!(out.status.success(), "{out:?}");
            print!("sandbox {}", String::from_utf8_lossy(&out.stdout));
            let own = v2_line(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
            println!("orchestrator {own}");
        });
        return;
    }
    let Some(parent) = TestParent::new(test) else {
        return;
    };
    let mut cmd = reexec(&name, &[]);
    cmd.env("NSBOX_TEST_CG_PARENT", &parent.path);
    let mut pid = 0;
    let out = run_with(cmd, |p| pid = p);
    let stdout = &out.stdout;
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{out:?}"
    );
    let line = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(key).map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
    };
    assert_eq!(line("after-error "), parent.rel, "moved on an error");
    assert_eq!(
        line("orchestrator "),
        format!("{}/nsbox-orchestrator-{pid}", parent.rel)
    );
    assert!(
        line("0::").starts_with(&format!("{}/nsbox-{pid}-", parent.rel)),
        "{stdout}"
    );
    // The orchestrator's leaf stays (empty now that it has exited), the sandbox's is gone.
    assert_eq!(parent.leaves(), [format!("nsbox-orchestrator-{pid}")]);
}

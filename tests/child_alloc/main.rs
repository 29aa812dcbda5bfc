//! Nothing allocates after the clone: the sandbox's init, the command's side of its fork
//! and the mount-lock helper run in the child of a multi-threaded process, where malloc's
//! locks may be held forever by a thread that does not exist there.
//!
//! This binary's global allocator counts every allocation and free made in a process other
//! than the test process (a cloned child that has not exec'd yet: after exec the allocator is
//! gone) into a counter in a shared anonymous mapping, which the children inherit. Each test
//! spawns sandboxes of one shape through every code path of the init (setup, exec and chdir
//! failures, the hook's wait, signals, kill, the timeout, orphans) and asserts that the
//! counter did not move. A control test forks a child that allocates, and sees the counter
//! move, so the detector itself is proven.
//!
//! A seccomp filter makes `prctl(PR_GET_AUXV)` fail with EINVAL in this process and its
//! children, as on kernels before 6.4: there, a library that sets itself up lazily by reading
//! `/proc/self/auxv` allocates (rustix's vDSO lookup did so in the init's first
//! clock_gettime), and this test sees it.
//!
//! Sandboxes are created by direct clone: no launcher runs in this binary (the launcher is a
//! fork of a single-threaded process, where allocating is allowed).

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::time::Duration;

use nsbox::{Namespaces, Sandbox, SetupContext, SetupHook, Stdio};

struct Counting;

/// The test process's pid, once the detector is armed (0 before).
static PARENT: AtomicI32 = AtomicI32::new(0);
/// The shared counter (in a MAP_SHARED page the children inherit).
static SHARED: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

fn note() {
    let parent = PARENT.load(Ordering::Relaxed);
    if parent == 0 {
        return;
    }
    // SAFETY: getpid has no preconditions (glibc does not cache it).
    if unsafe { libc::getpid() } != parent {
        let p = SHARED.load(Ordering::Relaxed);
        if !p.is_null() {
            // SAFETY: `p` points into the shared page mapped once and never unmapped.
            unsafe { (*p).fetch_add(1, Ordering::Relaxed) };
        }
    }
}

// SAFETY: every method forwards to the system allocator with the same arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded as given.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded as given.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded as given.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PR_GET_AUXV: u32 = 0x4155_5856;

/// Make prctl(PR_GET_AUXV) fail with EINVAL in every thread of this process and in its
/// children (seccomp with TSYNC; needs no_new_privs, which this test process may set).
/// Returns whether the filter is in force.
fn disable_pr_get_auxv() -> bool {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let prog = [
        ins(LD_W_ABS, 0, 0, 4), // arch
        ins(JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        ins(LD_W_ABS, 0, 0, 0), // nr
        ins(JEQ_K, 0, 3, libc::SYS_prctl as u32),
        ins(LD_W_ABS, 0, 0, 16), // args[0], low word
        ins(JEQ_K, 0, 1, PR_GET_AUXV),
        ins(RET_K, 0, 0, ERRNO | libc::EINVAL as u32),
        ins(RET_K, 0, 0, ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain prctl/seccomp calls; `fprog` points at `prog`, alive for the calls.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return false;
        }
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &fprog as *const libc::sock_fprog,
        ) != 0
        {
            return false;
        }
        let mut buf = [0u8; 64];
        libc::prctl(PR_GET_AUXV as i32, buf.as_mut_ptr(), buf.len(), 0, 0) == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
    }
}

/// Arm the detector (once per process): the shared counter, the parent pid, the filter.
fn counter() -> &'static AtomicU64 {
    static ARMED: OnceLock<&'static AtomicU64> = OnceLock::new();
    ARMED.get_or_init(|| {
        // SAFETY: a fresh shared anonymous mapping of one page, never unmapped.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap the shared counter");
        let c = p.cast::<AtomicU64>();
        SHARED.store(c, Ordering::SeqCst);
        // SAFETY: the getpid syscall has no preconditions.
        PARENT.store(unsafe { libc::getpid() }, Ordering::SeqCst);
        assert!(
            disable_pr_get_auxv(),
            "could not make prctl(PR_GET_AUXV) fail with seccomp"
        );
        // SAFETY: the page is mapped, aligned and lives for the rest of the process.
        unsafe { &*c }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    counter();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The tests of this binary run one at a time under this lock, so that one test's children
/// are not counted in another's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `f` and assert that no child allocated meanwhile.
fn no_child_allocates(what: &str, f: impl FnOnce(&tokio::runtime::Runtime)) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rt = runtime();
    let before = counter().load(Ordering::SeqCst);
    f(&rt);
    drop(rt); // background reapers finish
    let after = counter().load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "{what}: {} allocations or frees in a child after the clone",
        after - before
    );
}

fn shapes() -> Vec<(&'static str, Namespaces)> {
    let mut all = Namespaces::all();
    all.hostname("alloc").domainname("alloc.test");
    let mut unlocked = Namespaces::all();
    unlocked.lock_mounts(false);
    let mut no_pidns = Namespaces::new();
    no_pidns.user(true).mount(true).net(true);
    vec![
        ("all namespaces, names set", all),
        ("all namespaces, mounts unlocked", unlocked),
        ("no pid namespace", no_pidns),
        ("no namespaces", Namespaces::new()),
    ]
}

#[test]
fn the_detector_sees_a_forked_child_allocate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = counter().load(Ordering::SeqCst);
    let mut cmd = std::process::Command::new("true");
    // SAFETY: deliberately not async-signal-safe: this is the control that proves the
    // detector sees an allocation in a forked child. The test process may deadlock only if
    // another thread holds malloc's lock at the fork, which the test tolerates (it is the
    // point of the rule being tested elsewhere).
    unsafe {
        cmd.pre_exec(|| {
            let v = std::hint::black_box(vec![1u8; 64]);
            drop(v);
            Ok(())
        });
    }
    let st = cmd.status().expect("spawn true");
    assert!(st.success(), "{st:?}");
    let after = counter().load(Ordering::SeqCst);
    assert!(
        after > before,
        "the control child's allocation was not counted"
    );
}

#[test]
fn sandboxes_that_exit_signal_and_time_out_allocate_nothing_after_the_clone() {
    for (name, ns) in shapes() {
        no_child_allocates(name, |rt| {
            rt.block_on(async {
                let mut sb = Sandbox::new("sh");
                sb.args(["-c", "sleep 0 & exit 3"]).namespaces(&ns);
                assert_eq!(sb.status().await.expect("spawn").code(), Some(3), "{name}");

                let mut sb = Sandbox::new("sleep");
                sb.arg("1000").namespaces(&ns);
                let mut child = sb.spawn().await.expect("spawn sleep");
                child.signal(libc::SIGTERM).expect("signal");
                let st = child.wait().await.expect("wait");
                assert_eq!(st.signal(), Some(libc::SIGTERM), "{name}");

                let mut child = sb.spawn().await.expect("spawn sleep");
                child.kill().await.expect("kill");

                let mut sb = Sandbox::new("sleep");
                sb.arg("1000")
                    .namespaces(&ns)
                    .timeout(Duration::from_millis(1))
                    .kill_after(Duration::from_millis(1));
                let mut child = sb.spawn().await.expect("spawn sleep");
                child.wait().await.expect("wait");
                assert!(child.timed_out(), "{name}");

                let mut sb = Sandbox::new("sh");
                sb.args(["-c", "echo out"])
                    .namespaces(&ns)
                    .no_new_privs(true)
                    .wait_all(true)
                    .stdout(Stdio::piped());
                let out = sb.output().await.expect("output");
                assert_eq!(out.stdout, b"out\n", "{name}");

                // rlimits, set in the command's process before its exec.
                let mut sb = Sandbox::new("sh");
                sb.args(["-c", "exit 4"])
                    .namespaces(&ns)
                    .rlimit(nsbox::Resource::Core, 0, 0)
                    .rlimit(nsbox::Resource::Nofile, 64, 64);
                assert_eq!(sb.status().await.expect("spawn").code(), Some(4), "{name}");
            });
        });
    }
}

#[test]
fn failed_setups_and_execs_allocate_nothing_after_the_clone() {
    for (name, ns) in shapes() {
        no_child_allocates(name, |rt| {
            rt.block_on(async {
                let mut sb = Sandbox::new("/no/such/program");
                sb.namespaces(&ns);
                sb.spawn().await.expect_err("spawned a missing program");

                let mut sb = Sandbox::new("true");
                sb.namespaces(&ns).current_dir("/no/such/dir");
                sb.spawn()
                    .await
                    .expect_err("chdir into a missing directory");

                let mut sb = Sandbox::new("true");
                let mut join = ns.clone();
                join.join_path(None, "/proc/self/ns/net");
                sb.namespaces(join);
                // Joining may fail (EPERM inside a new user namespace) or succeed: both
                // paths run in the init; only allocation is asserted.
                if let Ok(mut c) = sb.spawn().await {
                    c.wait().await.expect("wait");
                }

                // An rlimit refused (RLIMIT_NOFILE above fs.nr_open).
                let mut sb = Sandbox::new("true");
                sb.namespaces(&ns)
                    .rlimit(nsbox::Resource::Nofile, 64, u64::MAX - 1);
                sb.spawn()
                    .await
                    .expect_err("RLIMIT_NOFILE above fs.nr_open");
            });
        });
    }
}

struct Nothing;

#[async_trait::async_trait]
impl SetupHook for Nothing {
    async fn setup(&self, _: &SetupContext<'_>) -> std::io::Result<()> {
        Ok(())
    }
}

struct Refuse;

#[async_trait::async_trait]
impl SetupHook for Refuse {
    async fn setup(&self, _: &SetupContext<'_>) -> std::io::Result<()> {
        Err(std::io::Error::other("refused"))
    }
}

#[test]
fn sandboxes_waiting_for_a_setup_hook_allocate_nothing_after_the_clone() {
    for (name, ns) in shapes() {
        no_child_allocates(name, |rt| {
            rt.block_on(async {
                let mut sb = Sandbox::new("true");
                sb.namespaces(&ns).setup_hook(std::sync::Arc::new(Nothing));
                assert!(sb.status().await.expect("status").success(), "{name}");
                sb.setup_hook(std::sync::Arc::new(Refuse));
                sb.spawn().await.expect_err("the hook refused");
            });
        });
    }
}

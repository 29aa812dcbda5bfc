//! The fresh /proc cannot be unmounted to see the host's beneath it (the mounts are locked).

use crate::sh_all_caps;
use crate::support::*;

/// With user, mount and pid namespaces the command is root of its user namespace, which owns
/// its UTS, network and IPC namespaces. Beneath the fresh /proc lies the host's /proc (nsbox
/// keeps the host's root), so if the command could unmount /proc it would see every host
/// process again (`unshare -Urpf --mount-proc` has that hole). The init therefore joins a copy
/// of its mount namespace made in a nested user namespace, where every mount is MNT_LOCKED:
/// umount, even lazy, fails, and the host's processes stay hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unmounting_proc_inside_does_not_reveal_host_processes() {
    let me = std::process::id().to_string();
    let out = sh_all_caps(
        "umount /proc",
        all(),
        "umount /proc 2>/dev/null; umount -l /proc 2>/dev/null; [ -e /proc/$1 ] && echo visible || echo hidden",
        &[&me],
    )
    .await;
    assert_eq!(
        out.stdout, "hidden\n",
        "the test process (host pid {me}) is visible inside after umount /proc"
    );
}

/// The control of the test above: with `Namespaces::lock_mounts(false)` the fresh /proc can be
/// unmounted, and the host's /proc beneath it shows the test process. So the lock is what
/// hides it, and the option does what it says.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_mount_lock_unmounting_proc_reveals_the_hosts_proc() {
    let me = std::process::id().to_string();
    let out = sh_all_caps(
        "umount /proc, unlocked",
        all().lock_mounts(false).clone(),
        "umount /proc 2>/dev/null || umount -l /proc; [ -e /proc/$1 ] && echo visible || echo hidden",
        &[&me],
    )
    .await;
    assert_eq!(
        out.stdout, "visible\n",
        "without the lock, umount /proc should reveal the host's /proc (pid {me})"
    );
}

/// Without CAP_SYS_ADMIN (the default) the sandbox skips the lock: nothing can be unmounted,
/// even in a user and mount namespace of the command's own (allowed here), whose copy of the
/// mounts the kernel locks, so the host's processes stay hidden all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_cap_sys_admin_proc_cannot_be_unmounted_either() {
    let me = std::process::id().to_string();
    let script = r#"
        umount /proc 2>/dev/null; umount -l /proc 2>/dev/null
        [ -e /proc/$1 ] && echo "visible" || echo "hidden"
        [ -x /usr/bin/python3 ] || { echo "nested hidden"; exit 0; }
        /usr/bin/python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
# A user and mount namespace of its own, without an exec: every capability there.
assert libc.unshare(0x10000000 | 0x00020000) == 0, ctypes.get_errno()
libc.umount2(b"/proc", 2)
print("nested", "visible" if os.path.exists("/proc/" + sys.argv[1]) else "hidden")
' "$1"
    "#;
    let mut sb = nsbox::Sandbox::new("sh");
    sb.args(["-c", script, "sh", &me])
        .namespaces(all())
        .nested_user_namespaces(true);
    let out = crate::run("default capabilities", sb).await;
    assert_eq!(out.stdout, "hidden\nnested hidden\n", "{}", out.stderr);
}

//! A sandboxed command cannot mount or unmount anything visible on the host.

use std::collections::BTreeSet;
use std::path::Path;

use nsbox::Namespaces;

use crate::sh_all_caps;
use crate::support::*;

/// The host's mount points.
pub fn host_mount_points() -> BTreeSet<String> {
    mount_points().into_iter().collect()
}

/// The tests of this file compare the host's mount table before and after, and one of them
/// mounts on the host: they run one at a time.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The shapes to try: with a user namespace (the host's mounts are locked inside) and, as
/// root, also without one, where the host's mounts are not locked inside and only
/// propagation (/ made rslave) keeps the host intact.
fn shapes() -> Vec<(&'static str, Namespaces)> {
    let mut shapes = vec![("user namespace", all())];
    if is_root() {
        shapes.push(("no user namespace", Namespaces::new().mount(true).clone()));
    }
    shapes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mount_made_inside_is_not_visible_on_the_host() {
    let _one = one_at_a_time().await;
    let scratch = Scratch::new("mounts");
    let inside = scratch.path().join("inside");
    std::fs::create_dir(&inside).unwrap();
    let inside = inside.display().to_string();
    let before = host_mount_points();
    let script = r#"
        mount -t tmpfs nsbox-iso-inside "$1" && echo inside > "$1/file" && mkdir "$1/sub" &&
            mount -t tmpfs nsbox-iso-sub "$1/sub" && umount "$1/sub" && echo "mounted inside"
        grep -c nsbox-iso-inside /proc/self/mountinfo
    "#;
    for (shape, ns) in shapes() {
        let out = sh_all_caps(shape, ns, script, &[&inside]).await;
        assert!(out.status.success(), "{shape}: {}", out.stderr);
        assert_eq!(
            out.stdout, "mounted inside\n1\n",
            "{shape}: {}{}",
            out.stdout, out.stderr
        );
        assert_eq!(host_mount_points(), before, "{shape}: host mounts changed");
        assert!(
            !Path::new(&format!("{inside}/file")).exists(),
            "{shape}: the inside tmpfs's file is visible on the host"
        );
    }
}

/// Unmounts `0` when dropped, so that a failing test leaves no mount behind.
struct Unmount(String);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_mount_unmounted_from_inside_stays_on_the_host() {
    if !is_root() {
        skip(
            "a_host_mount_unmounted_from_inside_stays_on_the_host",
            "needs root to make a mount on the host",
        );
        return;
    }
    let _one = one_at_a_time().await;
    let scratch = Scratch::new("host-mount");
    let host = scratch.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let host = host.display().to_string();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "nsbox-iso-host", &host])
        .status()
        .expect("mount");
    assert!(st.success(), "mount a tmpfs on the host");
    let unmount = Unmount(host.clone());
    std::fs::write(format!("{host}/host-file"), "host\n").unwrap();
    let before = host_mount_points();
    let script = r#"
        [ -e "$1/host-file" ] && echo "sees the host's mount"
        umount -l "$1" 2>/dev/null && echo "unmounted it inside"; true
    "#;
    for (shape, ns) in shapes() {
        let out = sh_all_caps(shape, ns, script, &[&host]).await;
        assert!(out.status.success(), "{shape}: {}", out.stderr);
        assert!(
            out.stdout.starts_with("sees the host's mount\n"),
            "{shape}: {}{}",
            out.stdout,
            out.stderr
        );
        assert_eq!(host_mount_points(), before, "{shape}: host mounts changed");
        assert!(
            Path::new(&format!("{host}/host-file")).exists(),
            "{shape}: the host's tmpfs is gone"
        );
    }
    drop(unmount);
    assert!(!host_mount_points().contains(&host), "the test's umount");
}

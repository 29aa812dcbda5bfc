//! The filesystem view (`Sandbox::filesystem`): the default (the host read-only, a fresh
//! /tmp), writable paths, an empty root built from mounts, each kind of mount, a hermetic
//! compile, destinations that would leave the root, and nothing left on the host.

use std::path::Path;

use nsbox::{Filesystem, Sandbox, Upper};

use crate::support::*;
use crate::{Out, run};

async fn sh_in(what: &str, fs: Filesystem, script: &str, args: &[&str]) -> Out {
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", script, "sh"])
        .args(args)
        .namespaces(all())
        .filesystem(fs);
    run(what, sb).await
}

/// An empty root with what a shell and coreutils need: /usr read-only and the merged-/usr
/// symlinks (or binds where /bin is a directory).
fn minimal_root() -> Filesystem {
    let mut fs = Filesystem::empty();
    fs.ro_bind("/usr", "/usr");
    for d in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
        let host = Path::new("/").join(d);
        match std::fs::read_link(&host) {
            Ok(target) => {
                fs.symlink(target, &host);
            }
            Err(_) if host.is_dir() => {
                fs.ro_bind(&host, &host);
            }
            Err(_) => {}
        }
    }
    fs.ro_bind_try("/etc/ld.so.cache", "/etc/ld.so.cache")
        .dev("/dev")
        .tmpfs("/tmp");
    fs
}

/// The default: the host's files read-only (a scratch directory of the caller's cannot be
/// written, though its permissions allow it), a fresh /tmp that the host never sees, and a
/// path named writable can be written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn by_default_the_host_is_read_only_and_tmp_is_fresh() {
    let scratch = Scratch::new("fs-default");
    // A directory the caller may write, outside /tmp (which the view replaces): /var/tmp is
    // world-writable, so this works as uid 65534 too.
    let outside = Path::new("/var/tmp").join(format!("nsbox-fs-{}", marker()));
    std::fs::create_dir(&outside).unwrap();
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0);
        }
    }
    let _remove = Remove(&outside);
    let writable_dir = scratch.path().join("out");
    std::fs::create_dir(&writable_dir).unwrap();
    let _ = std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    );
    let _ = std::fs::set_permissions(
        &writable_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    );
    let marker_name = format!("nsbox-fs-{}", marker());
    let script = r#"
        err=$(sh -c ': > "$1/nsbox-fs-probe"' sh "$1" 2>&1) && echo "cwd: written" || echo "cwd: ${err##*: }"
        echo inside > "/tmp/$2" && echo "tmp: written"
        echo out > "$3/file" && echo "writable: written"
        ls -A /tmp
    "#;
    let mut sb = Sandbox::new("sh");
    let mut fs = Filesystem::sandbox_default();
    fs.writable(&writable_dir);
    sb.args(["-c", script, "sh"])
        .args([
            outside.to_str().unwrap(),
            &marker_name,
            writable_dir.to_str().unwrap(),
        ])
        .namespaces(all())
        .filesystem(fs);
    let out = run("default view", sb).await;
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("cwd: Read-only file system"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("tmp: written"), "{}", out.stdout);
    assert!(out.stdout.contains("writable: written"), "{}", out.stdout);
    // The fresh /tmp holds only what the command made; the host's /tmp never sees it.
    assert!(
        out.stdout.lines().any(|l| l == marker_name),
        "{}",
        out.stdout
    );
    assert!(!Path::new("/tmp").join(&marker_name).exists());
    assert!(!outside.join("nsbox-fs-probe").exists());
    assert_eq!(
        std::fs::read_to_string(writable_dir.join("file")).unwrap(),
        "out\n"
    );
}

/// An empty root holds only what was given: no /etc/passwd, no home, /usr read-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_root_holds_only_the_mounts_given() {
    let script = r#"
        ls -A /
        [ -e /etc/passwd ] && echo "passwd: visible" || echo "passwd: absent"
        err=$(sh -c ': > /usr/nsbox-probe' 2>&1) && echo "usr: written" || echo "usr: ${err##*: }"
        echo x > /tmp/x && echo "tmp: written"
        echo "pid $$"
        [ -e /proc/1/status ] && echo "proc: mounted"
    "#;
    let out = sh_in("empty root", minimal_root(), script, &[]).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let top: Vec<&str> = out
        .stdout
        .lines()
        .take_while(|l| !l.contains(':') && !l.starts_with("pid"))
        .collect();
    for want in ["usr", "dev", "tmp", "proc"] {
        assert!(top.contains(&want), "/ lacks {want}: {}", out.stdout);
    }
    for absent in ["home", "root", "var", "work"] {
        assert!(!top.contains(&absent), "/ shows {absent}: {}", out.stdout);
    }
    assert!(out.stdout.contains("passwd: absent"), "{}", out.stdout);
    assert!(
        out.stdout.contains("usr: Read-only file system"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("tmp: written"), "{}", out.stdout);
    assert!(out.stdout.contains("pid 2\n"), "{}", out.stdout);
    assert!(out.stdout.contains("proc: mounted"), "{}", out.stdout);
}

/// Every kind of mount, in one empty root.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kind_of_mount_does_what_it_says() {
    let scratch = Scratch::new("fs-kinds");
    let s = scratch.path();
    let _ = std::fs::set_permissions(s, std::os::unix::fs::PermissionsExt::from_mode(0o755));
    let lower = s.join("lower");
    std::fs::create_dir(&lower).unwrap();
    std::fs::write(lower.join("base"), "from the lower\n").unwrap();
    let hidden = s.join("hidden");
    std::fs::create_dir(&hidden).unwrap();
    std::fs::write(hidden.join("secret"), "secret\n").unwrap();
    std::fs::write(s.join("secret-file"), "secret\n").unwrap();
    let mut fs = minimal_root();
    fs.dir("/data/sub", 0o711)
        .symlink("data/sub", "/link")
        .file("/data/hello", "hello\n", 0o640)
        .ro_file("/data/frozen", "frozen\n", 0o644)
        .tmpfs_with("/small", Some(64 * 1024), Some(0o700))
        .ro_bind(s, "/scratch")
        .hide("/scratch/hidden")
        .hide("/scratch/secret-file")
        .bind_try("/no/such/source", "/never")
        .overlay([&lower], Upper::Tmpfs, "/ov")
        .tmpfs("/rw")
        .dir("/rw/x", 0o755)
        .remount_ro("/rw")
        .chmod("/data", 0o750);
    let script = r#"
        stat -c '%n %a' /data /data/sub /data/hello /small
        readlink /link
        cat /data/hello
        (echo x > /data/frozen) 2>/dev/null && echo "frozen: written" || echo "frozen: refused"
        ls -A /scratch/hidden | wc -l
        wc -c < /scratch/secret-file
        [ -e /never ] && echo "never: present" || echo "never: absent"
        cat /ov/base; echo new > /ov/added && echo "ov: written"
        (: > /rw/y) 2>/dev/null && echo "rw: written" || echo "rw: refused"
        grep -c ' /small ' /proc/self/mountinfo
        for d in null zero full random urandom tty ptmx pts shm fd stdin stdout stderr; do
            [ -e /dev/$d ] || [ -L /dev/$d ] || echo "dev: $d missing"
        done
        echo x > /dev/null && head -c 3 /dev/zero | wc -c
        echo shm > /dev/shm/f && echo "shm: written"
    "#;
    let out = sh_in("kinds", fs, script, &[]).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let want = [
        "/data 750",
        "/data/sub 711",
        "/data/hello 640",
        "/small 700",
        "data/sub",
        "hello",
        "frozen: refused",
        "0",
        "0",
        "never: absent",
        "from the lower",
        "ov: written",
        "rw: refused",
        "1",
    ];
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..want.len()], &want[..], "{}", out.stdout);
    assert!(!out.stdout.contains("dev: "), "{}", out.stdout);
    assert!(out.stdout.contains("\n3\nshm: written\n"), "{}", out.stdout);
    // The overlay's upper was a tmpfs: the lower is untouched.
    assert!(!lower.join("added").exists());
}

/// A compile in an empty root (the toolchain read-only, the sources read-only, only the
/// output directory writable) gives the same object as outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hermetic_compile_gives_the_same_object_as_outside() {
    let test = "a_hermetic_compile_gives_the_same_object_as_outside";
    if !on_path("cc") {
        skip(test, "no C compiler (cc) on PATH");
        return;
    }
    let scratch = Scratch::new("fs-cc");
    let src = scratch.path().join("src");
    let out_dir = scratch.path().join("out");
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&out_dir).unwrap();
    let _ = std::fs::set_permissions(
        &out_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    );
    let _ = std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    );
    std::fs::write(src.join("a.c"), "int square(int x) { return x * x; }\n").unwrap();
    let host = std::process::Command::new("cc")
        .args(["-O2", "-c", "a.c", "-o"])
        .arg(out_dir.join("host.o"))
        .current_dir(&src)
        .status()
        .unwrap();
    assert!(host.success());
    let mut fs = minimal_root();
    fs.ro_bind(&src, "/src").bind(&out_dir, "/out");
    // cc is a symlink through /etc/alternatives on Debian, which the root does not hold:
    // run what it points to.
    let cc = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("cc"))
                .find(|c| c.exists())
        })
        .and_then(|c| std::fs::canonicalize(c).ok())
        .expect("cc on PATH");
    let mut sb = Sandbox::new(&cc);
    sb.args(["-O2", "-c", "a.c", "-o", "/out/inside.o"])
        .current_dir("/src")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .namespaces(all())
        .filesystem(fs);
    let out = run(test, sb).await;
    assert!(out.status.success(), "{}", out.stderr);
    let a = std::fs::read(out_dir.join("host.o")).unwrap();
    let b = std::fs::read(out_dir.join("inside.o")).unwrap();
    assert!(!a.is_empty());
    assert!(
        a == b,
        "the objects differ ({} and {} bytes)",
        a.len(),
        b.len()
    );
}

/// A destination is never resolved through a symlink: one made inside the view, or one on
/// the host under a host base, makes the spawn fail naming the mount, and nothing is mounted
/// where the link points.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_destination_through_a_symlink_is_refused() {
    let mut fs = minimal_root();
    fs.symlink("/", "/escape").tmpfs("/escape/usr");
    let mut sb = Sandbox::new("true");
    sb.namespaces(all()).filesystem(fs);
    let err = deadline("symlink in the view", sb.status())
        .await
        .expect_err("a mount through a symlink");
    let msg = err.to_string();
    assert!(msg.contains("filesystem view"), "{msg}");
    assert!(msg.contains("/escape/usr"), "{msg}");
    assert!(msg.contains("ELOOP") || msg.contains("ENOTDIR"), "{msg}");

    let scratch = Scratch::new("fs-link");
    let link = scratch.path().join("link");
    std::os::unix::fs::symlink("/", &link).unwrap();
    let mut fs = Filesystem::host();
    fs.tmpfs(link.join("etc"));
    let mut sb = Sandbox::new("true");
    sb.namespaces(all()).filesystem(fs);
    let err = deadline("symlink on the host", sb.status())
        .await
        .expect_err("a mount through a host symlink");
    assert!(err.to_string().contains("filesystem view"), "{err}");
}

/// A missing source is an error naming it; the `_try` variants skip it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_source_is_named_and_try_skips_it() {
    let mut fs = minimal_root();
    fs.ro_bind("/no/such/source", "/x");
    let mut sb = Sandbox::new("true");
    sb.namespaces(all()).filesystem(fs);
    let err = deadline("missing source", sb.status()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("/no/such/source"), "{err}");
}

/// Building views leaves nothing on the host: its mount table is the same afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_mount_of_a_view_is_visible_on_the_host() {
    let _one = crate::mounts::one_at_a_time().await;
    let before = crate::mounts::host_mount_points();
    let mut fs = minimal_root();
    fs.tmpfs("/a").overlay(["/usr"], Upper::Tmpfs, "/b");
    let out = sh_in("empty", fs, "grep -c . /proc/self/mountinfo", &[]).await;
    assert!(out.status.success(), "{}", out.stderr);
    let out = sh_in("host read-only", Filesystem::sandbox_default(), "true", &[]).await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(crate::mounts::host_mount_points(), before);
}

/// On the host's own view a missing mount point is an error, never a directory made on the
/// host behind the caller's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_host_view_creates_no_mount_point_on_the_host() {
    let scratch = Scratch::new("fs-host-create");
    let missing = scratch.path().join("missing");
    let mut fs = Filesystem::host();
    fs.tmpfs(&missing);
    let mut sb = Sandbox::new("true");
    sb.namespaces(all()).filesystem(fs);
    let err = deadline("missing mount point", sb.status())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(!missing.exists(), "a directory was made on the host");
}

/// With the host read-only, a new IPC namespace gets a fresh /dev/shm (a file made there
/// does not appear on the host's) and a new network namespace a fresh, read-only /sys (its
/// /sys/class/net lists only the namespace's own loopback).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_ipc_and_network_namespaces_get_their_own_shm_and_sys() {
    let name = format!("nsbox-shm-{}", marker());
    let script = r#"
        : > "/dev/shm/$1" && echo "shm: written"
        ls /sys/class/net | tr '\n' ' '; echo
        (: > /sys/nsbox-probe) 2>/dev/null && echo "sys: written" || echo "sys: refused"
    "#;
    let out = sh_in(
        "fresh shm and sys",
        Filesystem::sandbox_default(),
        script,
        &[&name],
    )
    .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("shm: written"), "{}", out.stdout);
    assert!(out.stdout.contains("\nlo \n"), "{}", out.stdout);
    assert!(out.stdout.contains("sys: refused"), "{}", out.stdout);
    if Path::new("/dev/shm").is_dir() {
        assert!(
            !Path::new("/dev/shm").join(&name).exists(),
            "the host's /dev/shm got it"
        );
    }
}

/// A writable path through a symlink is refused: an earlier sandbox that could write its
/// parent may have planted the link (here: `w/sub` replaced by a link to a victim directory),
/// and the next sandbox's `w/sub/out` would then be the victim's. Nothing is written there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writable_path_through_a_planted_symlink_is_refused() {
    let scratch = Scratch::new("fs-planted");
    let w = scratch.path().join("w");
    let victim = scratch.path().join("victim");
    std::fs::create_dir_all(victim.join("out")).unwrap();
    std::fs::create_dir_all(&w).unwrap();
    std::os::unix::fs::symlink(&victim, w.join("sub")).unwrap();
    let out_dir = w.join("sub").join("out");
    let mut fs = Filesystem::sandbox_default();
    fs.writable(&out_dir);
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo pwned > \"$0/pwned\"", out_dir.to_str().unwrap()])
        .namespaces(all())
        .filesystem(fs);
    let err = deadline("planted symlink", sb.status()).await.unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(err.to_string().contains("ELOOP"), "{err}");
    assert!(!victim.join("out").join("pwned").exists());
}

/// A file the command makes cannot be setuid or setgid (with root mapped to host root, such a
/// file in a writable path would be a setuid-root program on the host), whichever call sets
/// the mode; a plain mode works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandbox_cannot_make_a_setuid_file() {
    let scratch = Scratch::new("fs-setuid");
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let _ = std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    let script = r#"
        cp /bin/true "$0/t" && chmod 0755 "$0/t" && echo "plain: ok"
        chmod 4755 "$0/t" 2>/dev/null && echo "setuid: ok" || echo "setuid: refused"
        chmod 2755 "$0/t" 2>/dev/null && echo "setgid: ok" || echo "setgid: refused"
        stat -c %a "$0/t"
    "#;
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", script, out.to_str().unwrap()])
        .namespaces(all())
        .filesystem(crate::support::writable(&[&out]));
    let o = run("setuid", sb).await;
    assert!(o.status.success(), "{}", o.stderr);
    assert_eq!(
        o.stdout, "plain: ok\nsetuid: refused\nsetgid: refused\n755\n",
        "{}",
        o.stderr
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("t"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o6000, 0, "the host file is setuid/setgid: {mode:o}");
}

/// The default view hides the host's /run (sockets of docker, systemd, D-Bus: a read-only
/// mount does not stop connect(2)).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_view_hides_the_hosts_run() {
    if !Path::new("/run").is_dir()
        || std::fs::read_dir("/run").map_or(true, |mut d| d.next().is_none())
    {
        skip(
            "the_default_view_hides_the_hosts_run",
            "the host's /run is missing or empty",
        );
        return;
    }
    let out = sh_in(
        "run",
        Filesystem::sandbox_default(),
        "ls -A /run | wc -l",
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "0\n", "{}", out.stdout);
}

/// A mount made on the host after the sandbox started does not appear in its read-only view
/// (with slave propagation it arrived writable, with its own flags).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_mount_made_later_does_not_appear_in_the_view() {
    if !nix::unistd::getuid().is_root() {
        skip(
            "a_host_mount_made_later_does_not_appear_in_the_view",
            "needs root to make a mount on the host",
        );
        return;
    }
    let _one = crate::mounts::one_at_a_time().await;
    let scratch = Scratch::new("fs-late");
    let late = scratch.path().join("late");
    std::fs::create_dir(&late).unwrap();
    let ready = scratch.path().join("ready");
    let go = scratch.path().join("go");
    let script = r#"echo started > "$0"; while [ ! -e "$1" ]; do sleep 0.05; done; grep -c " $2 " /proc/self/mountinfo"#;
    let mut sb = Sandbox::new("sh");
    // ready and go travel through a writable path; late, in it, is watched.
    let view = crate::support::writable(&[scratch.path()]);
    sb.args([
        "-c",
        script,
        ready.to_str().unwrap(),
        go.to_str().unwrap(),
        late.to_str().unwrap(),
    ])
    .namespaces(all())
    .filesystem(view)
    .stdout(nsbox::Stdio::piped());
    let mut child = sb.spawn().await.expect("spawn");
    poll_for("the sandbox started", || {
        if ready.exists() {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    // A mount on the host, undone below.
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "nsbox-late", late.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(&go, "").unwrap();
    let mut out = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    let _ = deadline("wait", child.wait()).await;
    let _ = std::process::Command::new("umount").arg(&late).status();
    assert_eq!(out, "0\n", "the host's later mount is visible inside");
}

/// Overlays with an upper directory of the caller's (changes land there, the lower is
/// untouched) and read-only ones (two lowers, the first on top; nothing can be written).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlays_with_an_upper_directory_and_read_only_ones() {
    let scratch = Scratch::new("fs-overlay");
    let s = scratch.path();
    let _ = std::fs::set_permissions(s, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    let (top, bottom, upper, work) = (
        s.join("top"),
        s.join("bottom"),
        s.join("upper"),
        s.join("work"),
    );
    for d in [&top, &bottom, &upper, &work] {
        std::fs::create_dir(d).unwrap();
        let _ = std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    }
    std::fs::write(top.join("f"), "top\n").unwrap();
    std::fs::write(bottom.join("f"), "bottom\n").unwrap();
    std::fs::write(bottom.join("g"), "only bottom\n").unwrap();
    let mut fs = minimal_root();
    fs.overlay(
        [&bottom],
        Upper::Dir {
            upper: upper.clone(),
            work: work.clone(),
        },
        "/rw",
    )
    .overlay([&top, &bottom], Upper::ReadOnly, "/ro");
    let script = r#"
        echo new > /rw/added && echo changed > /rw/g && echo "rw: written"
        cat /ro/f /ro/g
        (: > /ro/x) 2>/dev/null && echo "ro: written" || echo "ro: refused"
    "#;
    let out = sh_in("overlays", fs, script, &[]).await;
    if out.stderr.contains("overlay") && !out.status.success() {
        skip(
            "overlays_with_an_upper_directory_and_read_only_ones",
            &format!("overlayfs refused here: {}", out.stderr.trim()),
        );
        return;
    }
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout, "rw: written\ntop\nonly bottom\nro: refused\n",
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("added")).unwrap(),
        "new\n"
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("g")).unwrap(),
        "changed\n"
    );
    assert_eq!(
        std::fs::read_to_string(bottom.join("g")).unwrap(),
        "only bottom\n"
    );
    assert!(!bottom.join("added").exists());
}

/// A device bind keeps device nodes usable; a plain bind makes them unusable (nodev).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_device_bind_keeps_devices_usable_and_a_plain_bind_does_not() {
    let mut fs = minimal_root();
    fs.dev_bind("/dev/null", "/devnull")
        .bind("/dev/null", "/plainnull")
        .dev_bind_try("/no/such/device", "/never");
    let script = r#"
        echo x > /devnull && echo "dev bind: usable"
        (echo x > /plainnull) 2>/dev/null && echo "plain bind: usable" || echo "plain bind: refused"
        [ -e /never ] && echo "never: present" || echo "never: absent"
    "#;
    let out = sh_in("device binds", fs, script, &[]).await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout, "dev bind: usable\nplain bind: refused\nnever: absent\n",
        "{}",
        out.stderr
    );
}

/// The attack on `chmod` (and `dir`): while views are built, a directory the view binds is
/// raced by a loop that swaps an entry with a symlink to a file outside (renameat2
/// RENAME_EXCHANGE). A chmod by path would follow the symlink and change the outside file's
/// mode (an attack review did, in one to three runs); through the resolved fd it never can.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chmod_in_a_view_never_follows_a_symlink_swapped_in() {
    use std::os::unix::fs::PermissionsExt;
    // Outside /tmp: an empty root is built on a tmpfs over /tmp, which hides it.
    let base = Path::new("/var/tmp").join(format!("nsbox-chmod-race-{}", marker()));
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _remove = Remove(base.clone());
    let w = base.join("w");
    let victim = base.join("victim");
    std::fs::create_dir_all(w.join("x")).unwrap();
    std::fs::write(&victim, "secret\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&victim, w.join("lnk")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, w) = (stop.clone(), w.clone());
        std::thread::spawn(move || {
            let (a, b) = (w.join("x"), w.join("lnk"));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &a,
                    rustix::fs::CWD,
                    &b,
                    rustix::fs::RenameFlags::EXCHANGE,
                );
            }
        })
    };
    for _ in 0..400 {
        let mut fs = Filesystem::empty();
        fs.bind(&w, "/w").chmod("/w/x", 0o777).dir("/w/x/d", 0o777);
        let mut sb = Sandbox::new("/nonexistent-program-of-the-race");
        sb.namespaces(all()).filesystem(fs);
        // The spawn fails either way (ELOOP when the link was there, then a missing
        // program); only the victim matters.
        let _ = deadline("race", sb.status()).await;
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o7777;
        if mode != 0o600 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = swapper.join();
            panic!("the file outside the view changed to {mode:o}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
}

/// The setuid rules hold for mknod(2) and mknodat(2) too, which make a regular file with any
/// mode, and io_uring, whose operations (an openat with O_CREAT among them) no syscall filter
/// sees, is refused: found by an attack review, where each made a setuid-root file in a
/// writable path. Through python's ctypes, with the raw numbers (x86_64).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mknod_and_io_uring_cannot_make_a_setuid_file() {
    const NAME: &str = "mknod_and_io_uring_cannot_make_a_setuid_file";
    // Debian's python (CI installs it), not a version manager's shim on PATH.
    const PYTHON: &str = "/usr/bin/python3";
    if !cfg!(target_arch = "x86_64") || !Path::new(PYTHON).exists() {
        skip(
            NAME,
            "needs /usr/bin/python3 on x86_64 (the test uses the raw syscall numbers)",
        );
        return;
    }
    let scratch = Scratch::new("fs-mknod");
    let out = scratch.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let _ = std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    let script = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1].encode()
def call(name, *args):
    r = libc.syscall(*args)
    print(name, "ok" if r >= 0 else os.strerror(ctypes.get_errno()))
call("mknod plain", 133, d + b"/plain", 0o100755, 0)
call("mknod setuid", 133, d + b"/m1", 0o104755, 0)
call("mknodat setgid", 259, -100, d + b"/m2", 0o102755, 0)
params = ctypes.create_string_buffer(120)
call("io_uring_setup", 425, 4, params)
"#;
    let mut sb = Sandbox::new(PYTHON);
    sb.args(["-c", script, out.to_str().unwrap()])
        .namespaces(all())
        .filesystem(crate::support::writable(&[&out]));
    let o = run("mknod", sb).await;
    assert!(o.status.success(), "{}", o.stderr);
    assert_eq!(
        o.stdout,
        "mknod plain ok\nmknod setuid Operation not permitted\nmknodat setgid Operation not \
         permitted\nio_uring_setup Function not implemented\n",
        "{}",
        o.stderr
    );
    for f in ["m1", "m2"] {
        assert!(!out.join(f).exists(), "{f} was made");
    }
}

/// A minimal /dev's device nodes are read-only mounts: the sandbox reads and writes the
/// devices, but cannot change their inodes, which are the host's (as root, mapped to host
/// root, it owns them: an attack review set the host's /dev/null's times, and could have
/// chmod'ed it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minimal_dev_cannot_change_the_hosts_device_nodes() {
    let script = r#"
        echo x > /dev/null && echo "write: ok"
        [ "$(head -c 3 /dev/zero | od -An -tx1 | tr -d ' ')" = 000000 ] && echo "read: ok"
        for f in null zero tty; do
            if err=$(chmod 666 /dev/$f 2>&1); then echo "chmod $f: ok"; else echo "chmod $f: ${err##*: }"; fi
            if err=$(touch -c /dev/$f 2>&1); then echo "touch $f: ok"; else echo "touch $f: ${err##*: }"; fi
        done
    "#;
    let before = std::fs::metadata("/dev/null").unwrap();
    let out = sh_in("dev", minimal_root(), script, &[]).await;
    assert!(out.status.success(), "{}", out.stderr);
    let mut want = String::from("write: ok\nread: ok\n");
    for f in ["null", "zero", "tty"] {
        want.push_str(&format!(
            "chmod {f}: Read-only file system\ntouch {f}: Read-only file system\n"
        ));
    }
    assert_eq!(out.stdout, want, "{}", out.stderr);
    use std::os::unix::fs::MetadataExt;
    let after = std::fs::metadata("/dev/null").unwrap();
    assert_eq!(
        (after.mode(), after.mtime(), after.mtime_nsec()),
        (before.mode(), before.mtime(), before.mtime_nsec()),
        "the host's /dev/null changed"
    );
}

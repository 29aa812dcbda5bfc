//! What nsrun isolates, seen from both sides: hostname and domain name, the network (only
//! lo, up, and TCP over 127.0.0.1 works), ids (uid 0 with setgroups denied), mounts, the
//! host's /proc, and joining an existing network namespace with --join.
//!
//! Needs only programs of an essential or required Debian 12 package: dash (sh), coreutils,
//! util-linux (unshare), mount, perl-base.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

fn flags(extra: &[&'static str]) -> Vec<&'static str> {
    let mut f = userns_unless_root();
    f.extend_from_slice(extra);
    f
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn hostname_and_domainname_are_set_inside_and_unchanged_outside() {
    let m = marker();
    let (host_before, domain_before) = (
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/domainname"),
    );
    let hostname = "nsbox-inside-host";
    let domainname = "nsbox-inside-domain";
    for extra in [&[][..], &["-p"][..]] {
        let mut args = flags(extra);
        args.extend([
            "--hostname",
            hostname,
            "--domainname",
            domainname,
            "--",
            "cat",
            "/proc/sys/kernel/hostname",
            "/proc/sys/kernel/domainname",
        ]);
        let out = run(nsrun(&m, &args));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(out.stdout, format!("{hostname}\n{domainname}\n"), "{out:?}");
    }
    assert_eq!(read("/proc/sys/kernel/hostname"), host_before);
    assert_eq!(read("/proc/sys/kernel/domainname"), domain_before);
    assert_no_leftovers(&m);
}

/// PROGRAM for the network test, in perl-base: the interfaces of /proc/net/dev, the flags
/// of lo (SIOCGIFFLAGS), and one line sent over TCP from a client to a listener on
/// 127.0.0.1 (an ephemeral port).
const NET_PROBE: &str = r#"
use strict; use Socket; use IO::Socket::INET;
open(my $dev, '<', '/proc/net/dev') or die "open /proc/net/dev: $!";
my @ifs = map { /^\s*([^:\s]+):/ ? ($1) : () } <$dev>;
print "interfaces=@ifs\n";
socket(my $s, PF_INET, SOCK_DGRAM, 0) or die "socket: $!";
my $req = pack('a16 x24', 'lo');
ioctl($s, 0x8913, $req) or die "SIOCGIFFLAGS lo: $!";
my $flags = unpack('x16 S', $req);
print 'lo-up=', ($flags & 1) ? 'yes' : 'no', "\n";
my $l = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp')
    or die "listen: $!";
my $port = $l->sockport;
my $pid = fork() // die "fork: $!";
if ($pid == 0) {
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
        or die "connect: $!";
    print $c "hello over loopback\n";
    exit 0;
}
my $a = $l->accept or die "accept: $!";
my $line = <$a>;
print "tcp=$line";
waitpid($pid, 0);
"#;

#[test]
fn a_new_network_namespace_holds_only_lo_which_is_up_and_carries_tcp() {
    let m = marker();
    let mut args = flags(&["-n"]);
    args.extend(["--", "perl", "-e", NET_PROBE]);
    let out = run(nsrun(&m, &args));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["interfaces=lo", "lo-up=yes", "tcp=hello over loopback"],
        "{out:?}"
    );
    assert_no_leftovers(&m);
}

#[test]
fn the_caller_is_uid_0_inside_a_user_namespace_with_setgroups_denied() {
    let m = marker();
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let script =
        "id -u; id -g; cat /proc/self/setgroups; cat /proc/self/uid_map /proc/self/gid_map";
    for (map, want_uid, want_gid) in [
        (vec![], 0, 0),
        (
            vec!["--map-user", "1000", "--map-group", "2000"],
            1000,
            2000,
        ),
    ] {
        let mut args = vec!["-U"];
        args.extend(map);
        args.extend(["--", "sh", "-c", script]);
        let out = run(nsrun(&m, &args));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let lines: Vec<String> = out
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            lines,
            [
                want_uid.to_string(),
                want_gid.to_string(),
                "deny".to_string(),
                format!("{want_uid} {uid} 1"),
                format!("{want_gid} {gid} 1"),
            ],
            "{out:?}"
        );
    }
    assert_no_leftovers(&m);
}

#[test]
fn a_tmpfs_mounted_inside_does_not_appear_outside() {
    let m = marker();
    let scratch = Scratch::new("mount");
    let dir = scratch.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    let d = dir.display().to_string();
    let script = format!(
        "mount -t tmpfs nsbox-test '{d}' && echo inside > '{d}/file' && \
         grep -q ' {d} ' /proc/self/mountinfo && echo mounted; read x; echo bye"
    );
    // The command keeps its capabilities: this is about the mount namespace alone.
    let mut args = flags(&["-m", "--cap-add", "all"]);
    args.extend(["--", "sh", "-c", &script]);
    let mut cmd = nsrun(&m, &args);
    cmd.stdin(Stdio::piped());
    let (mut child, mut lines) = spawn_lines(cmd);
    lines.expect("mounted");
    // While the mount exists inside, the host sees neither it nor the file in it.
    assert!(
        !mount_points().contains(&d),
        "{d} appears in the host's mountinfo"
    );
    assert!(
        !dir.join("file").exists(),
        "a file written inside the tmpfs is visible outside"
    );
    drop(child.0.stdin.take());
    lines.expect("bye");
    let status = wait_deadline(&mut child.0, "nsrun");
    assert_eq!(status.code(), Some(0));
    assert!(!mount_points().contains(&d));
    assert_no_leftovers(&m);
}

/// The /proc line of this process's mountinfo, which must never change.
fn proc_mount_lines() -> Vec<String> {
    read("/proc/self/mountinfo")
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some("/proc"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_hosts_proc_is_untouched_by_a_pid_namespace() {
    let m = marker();
    let before = proc_mount_lines();
    let init_before = read("/proc/1/stat");
    let init_comm = init_before.split_whitespace().nth(1).unwrap().to_owned();
    let mut args = flags(&["-p"]);
    args.extend([
        "--",
        "sh",
        "-c",
        "cat /proc/1/comm; echo pid=$$; echo ready; read x",
    ]);
    let mut cmd = nsrun(&m, &args);
    cmd.stdin(Stdio::piped());
    let (mut child, mut lines) = spawn_lines(cmd);
    lines.expect("ready");
    // Inside: a fresh /proc in which pid 1 is nsrun and PROGRAM is pid 2.
    assert_eq!(lines.seen, ["nsrun", "pid=2", "ready"]);
    // Outside, while the inside is running: the same /proc mount, the host's pid 1.
    assert_eq!(proc_mount_lines(), before);
    assert_eq!(
        read("/proc/1/stat").split_whitespace().nth(1),
        Some(&*init_comm)
    );
    let _ = child.0.stdin.take().unwrap().write_all(b"\n");
    let status = wait_deadline(&mut child.0, "nsrun");
    assert_eq!(status.code(), Some(0));
    assert_eq!(proc_mount_lines(), before);
    let init_after = read("/proc/1/stat");
    assert_eq!(init_after.split_whitespace().nth(1), Some(&*init_comm));
    assert_no_leftovers(&m);
}

#[test]
fn join_net_puts_program_in_that_network_namespace() {
    let m = marker();
    // Unprivileged, the holder's user namespace owns its network namespace.
    let holder = NsHolder::start(&["-n"], &m);
    let want = link(holder.ns("net"));
    assert_ne!(
        want,
        link("/proc/self/ns/net"),
        "unshare did not make a network namespace"
    );
    let (join_user, join_net) = (
        format!("user:{}", holder.ns("user")),
        format!("net:{}", holder.ns("net")),
    );
    for extra in [&[][..], &["-p"][..]] {
        let mut args: Vec<&str> = Vec::new();
        if !is_root() {
            // An unprivileged caller may join only through the user namespace that owns it.
            args.extend(["--join", &join_user]);
        }
        args.extend(["--join", &join_net]);
        args.extend_from_slice(extra);
        args.extend(["--", "readlink", "/proc/self/ns/net"]);
        let out = run(nsrun(&m, &args));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_eq!(out.stdout.trim_end(), want, "{args:?}: {out:?}");
    }
    drop(holder);
    assert_no_leftovers(&m);
}

#[test]
fn join_net_accepts_a_bind_mounted_namespace_file() {
    if !is_root() {
        skip(
            "join_net_accepts_a_bind_mounted_namespace_file",
            "bind-mounting a namespace file (unshare --net=FILE) needs root; \
             join_net_puts_program_in_that_network_namespace covers --join unprivileged",
        );
        return;
    }
    let m = marker();
    let scratch = Scratch::new("join-file");
    let file = scratch.path().join("netns");
    std::fs::write(&file, "").unwrap();
    let f = file.display().to_string();
    let made = run({
        let mut c = Command::new("unshare");
        c.arg(format!("--net={f}")).arg("true");
        c
    });
    assert_eq!(made.status.code(), Some(0), "unshare --net={f}: {made:?}");
    // Unmount even if an assertion below fails, so the scratch dir can be removed.
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let mut c = Command::new("umount");
            c.arg(&self.0);
            let out = run(c);
            assert!(
                std::thread::panicking() || out.status.success(),
                "umount {}: {out:?}",
                self.0
            );
        }
    }
    let unmount = Unmount(f.clone());
    // The bind mount shows the namespace's own inode: net:[INODE] is its readlink name.
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).unwrap());
    let want = format!("net:[{ino}]");
    let join = format!("net:{f}");
    let out = run(nsrun(
        &m,
        &["--join", &join, "--", "readlink", "/proc/self/ns/net"],
    ));
    drop(unmount);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout.trim_end(), want);
    assert_ne!(want, link("/proc/self/ns/net"));
    assert_no_leftovers(&m);
}

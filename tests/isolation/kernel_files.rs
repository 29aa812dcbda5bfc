//! The kernel's files are protected in a sandbox with a mount namespace (by default): a
//! sandbox mapped to host root (a root caller) could otherwise flip host-wide sysctls
//! (`kernel.core_pattern` runs a program as real root at the next crash), open
//! `/sys/power/state` or `/proc/sysrq-trigger` for writing, move itself out of its cgroup,
//! or read `/proc/kcore`. Each attack only opens the file for writing (`: 3>>FILE`), which
//! changes nothing even where it succeeds, and reports how it failed. The command keeps every
//! capability here: the protection must hold without the capability drop.

use crate::sh_all_caps;
use crate::support::*;
use std::path::Path;

const ATTACKS: &str = r#"
    for f in /proc/sys/kernel/core_uses_pid /proc/sys/vm/drop_caches /proc/sysrq-trigger \
             /sys/power/state /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/unified/cgroup.procs; do
        [ -e "$f" ] || continue
        if err=$(sh -c ': 3>>"$1"' sh "$f" 2>&1); then echo "open $f: ok"
        else echo "open $f: ${err##*: }"; fi
    done
    for f in kcore kallsyms timer_list; do
        if [ -e /proc/$f ]; then echo "$f $(wc -c < /proc/$f)"; else echo "$f missing"; fi
    done
    echo "acpi $(ls -A /proc/acpi 2>/dev/null | wc -l)"
    # Every hider is read-only, the binds of the first one too: a chmod through a file hider
    # would reach the host's /dev/null (666 is its mode: nothing changes where it succeeds).
    for f in kcore kallsyms keys key-users timer_list sched_debug latency_stats kpagecount              kpageflags kpagecgroup slabinfo vmallocinfo pagetypeinfo; do
        [ -e /proc/$f ] || continue
        echo "hidden $f $(wc -c < /proc/$f)"
        if err=$(chmod 666 /proc/$f 2>&1); then echo "chmod $f: ok"; else echo "chmod $f: ${err##*: }"; fi
    done
    for d in /proc/acpi /proc/scsi /sys/firmware /sys/devices/virtual/powercap; do
        [ -d $d ] || continue
        echo "dir $d $(ls -A $d | wc -l)"
        if err=$(mkdir $d/x 2>&1); then echo "mkdir $d: ok"; else echo "mkdir $d: ${err##*: }"; fi
    done
"#;

fn check(shape: &str, out: &crate::Out) {
    assert!(out.status.success(), "{shape}: {}", out.stderr);
    let opened: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("open "))
        .collect();
    assert!(
        opened.iter().any(|l| l.starts_with("open /proc/sys/")),
        "{shape}: no attack ran: {}",
        out.stdout
    );
    for l in &opened {
        assert!(!l.ends_with(": ok"), "{shape}: {l}");
        if nix::unistd::getuid().is_root() {
            // As root the file permissions would let it through: only the read-only mount
            // stops it.
            assert!(l.ends_with("Read-only file system"), "{shape}: {l}");
        }
    }
    for f in ["kcore", "kallsyms", "timer_list"] {
        // Hidden under /dev/null, where the kernel has it.
        let want = if Path::new("/proc").join(f).exists() {
            format!("{f} 0")
        } else {
            format!("{f} missing")
        };
        assert!(
            out.stdout.lines().any(|l| l == want),
            "{shape}: {want:?} expected: {}",
            out.stdout
        );
    }
    assert!(
        out.stdout.lines().any(|l| l == "acpi 0"),
        "{shape}: /proc/acpi is not hidden: {}",
        out.stdout
    );
    let lines = |prefix: &str| -> Vec<String> {
        out.stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    };
    let (hidden, dirs) = (lines("hidden "), lines("dir "));
    // More than one of each kind, so that the binds of the first hider are checked too.
    assert!(
        hidden.len() >= 2 && dirs.len() >= 2,
        "{shape}: {}",
        out.stdout
    );
    for l in hidden.iter().chain(&dirs) {
        assert!(l.ends_with(" 0"), "{shape}: not hidden: {l}");
    }
    for l in lines("chmod ").iter().chain(&lines("mkdir ")) {
        assert!(!l.ends_with(": ok"), "{shape}: {l}");
        if nix::unistd::getuid().is_root() {
            assert!(l.ends_with("Read-only file system"), "{shape}: {l}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kernels_files_are_read_only_or_hidden_in_a_sandbox() {
    for (shape, ns) in both_shapes() {
        let out = sh_all_caps(shape, ns, ATTACKS, &[]).await;
        check(shape, &out);
    }
}

/// The control: with `protect_kernel(false)` (and as root) the same opens succeed and
/// /proc/kcore is the real one, so the test above sees the protection, not an accident.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_protection_root_can_open_the_hosts_sysctls() {
    if !nix::unistd::getuid().is_root() {
        skip(
            "without_the_protection_root_can_open_the_hosts_sysctls",
            "only host root's sandbox may open the host's sysctls",
        );
        return;
    }
    let out = sh_all_caps(
        "unprotected",
        all().protect_kernel(false).clone(),
        ATTACKS,
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("open /proc/sys/kernel/core_uses_pid: ok"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("kallsyms 0\n"), "{}", out.stdout);
}

//! nsrun does not keep the caller's working directory busy: once PROGRAM runs, the processes
//! of nsrun (the waiter outside, pid 1 or the subreaper) move to `/`, so the file system
//! PROGRAM was started in can be unmounted while it runs (PROGRAM itself has left it). The
//! test runs in a mount namespace of its own (unshare(1), with a user namespace when
//! unprivileged), where it mounts a tmpfs to start nsrun in.

use crate::support::*;

/// Kills (by pid) whatever carries the marker when dropped: a failed run leaves nothing.
struct KillMarked(String);

impl Drop for KillMarked {
    fn drop(&mut self) {
        kill_all(&leftovers(&self.0));
    }
}

fn unmountable(pid_namespace: bool) {
    let m = marker();
    let _guard = KillMarked(m.clone());
    let scratch = Scratch::new("cwd");
    let dir = scratch.path().join("mnt");
    let fifo = scratch.path().join("fifo");
    std::fs::create_dir(&dir).expect("mkdir");
    let mut flags = userns_unless_root();
    if pid_namespace {
        flags.push("-p");
    }
    // As root, pid 1's working directory can be read too (it is not dumpable).
    let check_pid1 = pid_namespace && is_root();
    let script = format!(
        r#"set -e
mount -t tmpfs nsbox-cwd '{dir}'
cd '{dir}'
mkfifo '{fifo}'
'{nsrun}' {flags} -- sh -c 'cd /; echo ready; exec sleep 1000 {m}' > '{fifo}' &
read line < '{fifo}'
cd /
# nsrun leaves the directory right after PROGRAM has started: wait for that (20 s at most,
# well within the test's deadline, so that the script always gets to kill nsrun), not for
# time.
n=0
until [ "$(readlink /proc/$!/cwd)" = / ] || [ $n -ge 2000 ]; do n=$((n + 1)); sleep 0.01; done
if {check_pid1}; then
    read pid1 rest < /proc/$!/task/$!/children || true
    n=0
    until [ "$(readlink /proc/$pid1/cwd)" = / ] || [ $n -ge 2000 ]; do n=$((n + 1)); sleep 0.01; done
    echo "pid1-cwd=$(readlink /proc/$pid1/cwd)"
fi
if umount '{dir}'; then echo umounted; else echo busy; fi
kill $!
wait $! || true
"#,
        dir = dir.display(),
        fifo = fifo.display(),
        nsrun = nsrun_path().display(),
        flags = flags.join(" "),
    );
    let mut cmd = std::process::Command::new("unshare");
    if !is_root() {
        cmd.arg("-Ur");
    }
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env(MARKER_VAR, &m)
        .stdin(std::process::Stdio::null());
    let out = run(cmd);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.contains("umounted\n"), "{out:?}");
    if check_pid1 {
        assert!(out.stdout.contains("pid1-cwd=/\n"), "{out:?}");
    }
    assert_no_leftovers(&m);
}

#[test]
fn the_callers_working_directory_can_be_unmounted_while_program_runs() {
    unmountable(true);
}

#[test]
fn the_callers_working_directory_can_be_unmounted_without_a_pid_namespace() {
    unmountable(false);
}

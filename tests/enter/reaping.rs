//! The supervisor reaps orphans (no zombie is left) and, when PROGRAM ends, kills what is
//! left by default or waits for it with --wait-all; nothing tagged with the test's marker
//! survives nsrun.

use crate::support::*;

/// PROGRAM makes 100 orphans (a subshell starts a short sleep in the background and exits,
/// so the sleep is reparented to the supervisor), then polls its /proc until no process
/// whose parent is the supervisor is a zombie or a sleep, or until 600 polls have passed,
/// and prints what it saw last. Pure sh: a `read` of each /proc/PID/stat.
const ORPHANS: &str = r#"
sup=$PPID
i=0
while [ $i -lt 100 ]; do ( sleep 0.2 & ); i=$((i+1)); done
echo made=$i
n=0
while :; do
  z=0; s=0
  for f in /proc/[0-9]*/stat; do
    read -r line < "$f" 2>/dev/null || continue
    rest=${line##*) }
    set -- $rest
    [ "$2" = "$sup" ] || continue
    [ "$1" = Z ] && z=$((z+1))
    case "$line" in *"(sleep)"*) s=$((s+1));; esac
  done
  n=$((n+1))
  if [ $z -eq 0 ] && [ $s -eq 0 ]; then break; fi
  if [ $n -ge 600 ]; then break; fi
  sleep 0.05
done
echo zombies=$z sleeps=$s
"#;

fn orphans_reaped(flags: Vec<&str>) {
    let m = marker();
    let mut args = flags.clone();
    args.extend(["--", "sh", "-c", ORPHANS]);
    let out = run(nsrun(&m, &args));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["made=100", "zombies=0 sleeps=0"], "{out:?}");
    assert_no_leftovers(&m);
}

#[test]
fn a_hundred_orphans_are_reaped_by_pid_1_and_no_zombie_is_left() {
    let mut flags = userns_unless_root();
    flags.push("-p");
    orphans_reaped(flags);
}

#[test]
fn a_hundred_orphans_are_reaped_by_the_subreaper_without_a_pid_namespace() {
    orphans_reaped(userns_unless_root());
}

fn daemon_killed(flags: Vec<&str>) {
    let m = marker();
    let mut args = flags.clone();
    // The daemon holds no pipe of ours, so nothing but a /proc scan would notice it.
    args.extend([
        "--",
        "sh",
        "-c",
        "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo started; exit 4",
    ]);
    let out = run(nsrun(&m, &args));
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(out.stdout, "started\n");
    assert_no_leftovers(&m);
}

#[test]
fn a_setsid_daemon_is_killed_when_program_ends_in_a_pid_namespace() {
    let mut flags = userns_unless_root();
    flags.push("-p");
    daemon_killed(flags);
}

#[test]
fn a_setsid_daemon_is_killed_when_program_ends_without_a_pid_namespace() {
    daemon_killed(userns_unless_root());
}

fn daemon_waited_for(flags: Vec<&str>) {
    let m = marker();
    let scratch = Scratch::new("wait-all");
    let done = scratch.path().join("done");
    // The daemon outlives PROGRAM for sure: it waits until PROGRAM is gone, then writes.
    let script = format!(
        "main=$$; setsid sh -c \"while kill -0 $main 2>/dev/null; do sleep 0.05; done; \
         echo daemon-done > '{}'\" </dev/null >/dev/null 2>&1 & echo started; exit 5",
        done.display()
    );
    let mut args = flags.clone();
    args.extend(["--wait-all", "--", "sh", "-c", &script]);
    let out = run(nsrun(&m, &args));
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let written = std::fs::read_to_string(&done).unwrap_or_default();
    assert_eq!(
        written, "daemon-done\n",
        "nsrun --wait-all returned before the daemon ended: {out:?}"
    );
    assert_no_leftovers(&m);
}

#[test]
fn wait_all_waits_for_a_setsid_daemon_in_a_pid_namespace() {
    let mut flags = userns_unless_root();
    flags.push("-p");
    daemon_waited_for(flags);
}

#[test]
fn wait_all_waits_for_a_setsid_daemon_without_a_pid_namespace() {
    daemon_waited_for(userns_unless_root());
}

//! The command cannot reach nsrun's pid 1 through /proc: pid 1 is non-dumpable, so the
//! command (root in its user namespace, but with no capability where pid 1's memory comes
//! from) can neither open its fds (a forged stop report on the status pipe would stop the
//! waiter outside forever), nor read its environment, nor ptrace it.

use crate::support::*;

const ATTACK: &str = r#"
for f in /proc/1/fd/*; do
    if [ -e "$f" ] && printf '\177\023\000\000' 2>/dev/null >"$f"; then echo "WROTE $f"; fi
done
if cat /proc/1/environ >/dev/null 2>&1; then echo READ-ENVIRON; fi
if cat /proc/1/maps >/dev/null 2>&1; then echo READ-MAPS; fi
echo done
"#;

#[test]
fn the_command_cannot_open_pid1s_fds_or_read_its_environment() {
    for extra in [&["-p"][..], &["-p", "-n", "-m"][..]] {
        let m = marker();
        let mut args = vec!["-U"];
        args.extend_from_slice(extra);
        args.extend(["--", "sh", "-c", ATTACK]);
        let out = run(nsrun(&m, &args));
        assert_eq!(out.status.code(), Some(0), "nsrun {extra:?}: {out:?}");
        assert_eq!(
            out.stdout, "done\n",
            "nsrun {extra:?}: the command reached pid 1: {out:?}"
        );
        assert_no_leftovers(&m);
    }
}

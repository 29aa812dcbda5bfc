//! Without a pid namespace, the command cannot blind its init: taking the init's fd limit
//! away (prlimit on its parent) or mounting over /proc does not stop the init from finding
//! and killing what the command leaves behind, so `wait()` returns and nothing survives.

use nsbox::{Capabilities, Sandbox};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_whose_fd_limit_or_proc_the_command_took_still_kills_what_is_left() {
    if !on_path("prlimit") {
        skip(
            "an_init_whose_fd_limit_or_proc_the_command_took_still_kills_what_is_left",
            "prlimit (util-linux) is not installed",
        );
        return;
    }
    for (what, attack) in [
        ("fd limit 0", "prlimit --pid $PPID --nofile=0:0"),
        ("a tmpfs over /proc", "mount -t tmpfs blind /proc"),
    ] {
        let m = marker();
        let script = format!("{attack} || exit 99; setsid sleep 1000 {m} & exit 0");
        let mut sb = Sandbox::new("sh");
        // The attack needs CAP_SYS_ADMIN (mount) and CAP_SYS_RESOURCE (prlimit) in the
        // sandbox's user namespace, which a command no longer has by default: keep them, to
        // show that the init does not depend on the default.
        sb.args(["-c", &script])
            .namespaces(without_pidns())
            .capabilities(Capabilities::all());
        let mut child = deadline(what, sb.spawn()).await.expect("spawn");
        let _guard = KillOnFailure {
            init: child.id().expect("the init runs") as i32,
            marker: m.clone(),
        };
        let st = deadline(what, child.wait()).await.expect("wait");
        assert_eq!(st.code(), Some(0), "{what}: the attack itself failed");
        assert_no_marker_left(&m, &format!("{what}: the daemon killed")).await;
    }
}

/// A command that lowers its init's fd limit below the two fds the init polls (prlimit on its
/// parent) made poll(2) fail with EINVAL at once, every time: the init spun at full speed for
/// the rest of the sandbox's life. Now it waits without poll, blocked (state S), and still
/// forwards signals and obeys the control pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_whose_fd_limit_the_command_lowered_blocks_instead_of_spinning() {
    if !on_path("prlimit") {
        skip(
            "an_init_whose_fd_limit_the_command_lowered_blocks_instead_of_spinning",
            "prlimit (util-linux) is not installed",
        );
        return;
    }
    for (what, ns) in both_shapes() {
        let m = marker();
        let script = format!(
            "prlimit --pid $PPID --nofile=0:0 || exit 99
             trap 'echo hup' HUP
             trap 'echo usr1; exit 7' USR1
             sleep 1000 {m} &
             echo lowered
             while :; do wait $!; done"
        );
        let mut sb = Sandbox::new("sh");
        sb.args(["-c", &script])
            .namespaces(ns)
            .stdout(nsbox::Stdio::piped());
        let mut child = deadline(what, sb.spawn()).await.expect("spawn");
        let init = child.id().expect("the init runs") as i32;
        let _guard = KillOnFailure {
            init,
            marker: m.clone(),
        };
        let mut out = child.stdout.take().expect("stdout");
        read_until(&mut out, "lowered\n", what).await;
        // Wake the init once: it forwards SIGHUP (the trap's line shows it did), then polls
        // again, where the lowered limit bites.
        child.signal(libc::SIGHUP).expect("signal");
        read_until(&mut out, "hup\n", what).await;
        poll_for(
            &format!("{what}: the init blocked, not spinning"),
            || match state(init) {
                Some('S') => Ok(()),
                s => Err(format!("the init's state is {s:?}")),
            },
        )
        .await;
        // The control pipe still reaches it.
        child.signal(libc::SIGUSR1).expect("signal");
        let st = deadline(what, child.wait()).await.expect("wait");
        assert_eq!(st.code(), Some(7), "{what}");
        assert_no_marker_left(&m, &format!("{what}: the sleep killed")).await;
    }
}

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

//! A sandboxed command cannot change the host's hostname.

use nsbox::Namespaces;

use crate::sh_all_caps;
use crate::support::*;

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").expect("read the host's hostname")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sandboxed_command_cannot_change_the_hosts_hostname() {
    let before = host_hostname();
    // With a UTS namespace: the command's sethostname changes only its own.
    let out = sh_all_caps(
        "uts",
        all().hostname("nsbox-iso-set").clone(),
        "hostname nsbox-iso-changed && cat /proc/sys/kernel/hostname",
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "nsbox-iso-changed\n");
    assert_eq!(host_hostname(), before, "the host's hostname changed");
    // Without a UTS namespace (only a user namespace), sethostname needs CAP_SYS_ADMIN in the
    // host's user namespace and is refused. The name tried is the host's own, so a wrongful
    // success would be caught without changing anything.
    let out = sh_all_caps(
        "no uts",
        Namespaces::new().user(true).clone(),
        "hostname \"$1\"",
        &[before.trim_end()],
    )
    .await;
    assert!(
        !out.status.success(),
        "sethostname on the host's UTS namespace succeeded: {}",
        out.stderr
    );
    assert_eq!(host_hostname(), before, "the host's hostname changed");
}

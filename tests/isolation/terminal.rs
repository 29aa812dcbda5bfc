//! The command has no controlling terminal (spawn mode starts it in a new session): it cannot
//! open the orchestrator's terminal, so it cannot push keystrokes into the user's shell with
//! TIOCSTI (the CVE-2017-5226 class) or signal the terminal's foreground group.
//!
//! The orchestrator here is this test binary re-executed as the leader of a new session
//! whose controlling terminal is a pty, as an orchestrator started from a shell has one.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use nsbox::{Namespaces, Sandbox, Stdio};

use crate::support::*;

/// Whether the command could open /dev/tty, as it says on its stdout; `new_session` `None`:
/// the default.
async fn opens_dev_tty(ns: &Namespaces, new_session: Option<bool>) -> String {
    let mut sb = Sandbox::new("sh");
    sb.args([
        "-c",
        "if (exec 3</dev/tty) 2>/dev/null; then echo OPENED; else echo REFUSED; fi",
    ])
    .namespaces(ns)
    .stdout(Stdio::piped());
    if let Some(on) = new_session {
        sb.new_session(on);
    }
    let out = deadline("the /dev/tty probe", sb.output())
        .await
        .expect("run the probe");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_sandboxed_command_cannot_open_the_orchestrators_terminal() {
    let name = test_name(
        module_path!(),
        "a_sandboxed_command_cannot_open_the_orchestrators_terminal",
    );
    if is_child(&name) {
        // The control: this process itself has the terminal.
        assert!(
            std::fs::File::open("/dev/tty").is_ok(),
            "the orchestrator has no controlling terminal"
        );
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            for (what, ns) in [
                ("every namespace", all()),
                ("no pid namespace", without_pidns()),
                ("no namespace", no_namespaces()),
            ] {
                assert_eq!(
                    opens_dev_tty(&ns, None).await,
                    "REFUSED",
                    "{what}, by default"
                );
                assert_eq!(opens_dev_tty(&ns, Some(true)).await, "REFUSED", "{what}");
                // Keeping the session (opt-in) keeps the terminal: the probe works.
                assert_eq!(
                    opens_dev_tty(&ns, Some(false)).await,
                    "OPENED",
                    "{what}, new_session(false)"
                );
            }
        });
        return;
    }
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = pty.slave.as_raw_fd();
    let mut cmd = reexec(&name, &[]);
    // SAFETY: setsid and ioctl are async-signal-safe; `slave` is open in the child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    passed_alone(&name, cmd);
    drop(pty);
}

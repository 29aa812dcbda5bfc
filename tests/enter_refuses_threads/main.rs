//! enter() from a process with two threads fails with a clear error and changes nothing.
//!
//! A `harness = false` target: libtest would run this on a thread of its own, and the point
//! is to control exactly how many threads the process has. It reports like libtest
//! (`support::harness`) and exits non-zero if any check fails.

#[path = "../support/mod.rs"]
mod support;

use std::io::ErrorKind;
use std::process::ExitCode;
use std::sync::mpsc::channel;

use nsbox::{Namespaces, enter, thread_count};

use support::link;

fn main() -> ExitCode {
    let mut h = support::harness::Harness::from_args();

    // A second thread that stays alive (blocked on a channel) for the whole check.
    let (release, hold) = channel::<()>();
    let helper = std::thread::spawn(move || {
        let _ = hold.recv();
    });
    let threads = thread_count().unwrap_or(0);
    let before = (link("/proc/self/ns/user"), link("/proc/self/ns/net"));

    h.check(
        "a_process_with_two_threads_is_refused_with_a_clear_error",
        || {
            if threads != 2 {
                return Err(format!(
                    "expected 2 threads, /proc/self/status says {threads}"
                ));
            }
            let mut ns = Namespaces::new();
            ns.user(true).net(true);
            let err = match enter(&ns) {
                Ok(e) => return Err(format!("enter() succeeded in a threaded process: {e:?}")),
                Err(e) => e,
            };
            let text = err.to_string();
            if err.kind() == ErrorKind::InvalidInput {
                return Err(format!(
                    "kind {:?}: a threaded caller is not bad input: {text}",
                    err.kind()
                ));
            }
            for want in ["enter", "2 threads", "single-threaded", "hint:"] {
                if !text.contains(want) {
                    return Err(format!("message lacks {want:?}: {text}"));
                }
            }
            let inner = nsbox::Error::from_io(&err).ok_or("not an nsbox::Error inside")?;
            if inner.step() != nsbox::Step::Threads || inner.errno().is_some() {
                return Err(format!("step {:?} errno {:?}", inner.step(), inner.errno()));
            }
            Ok(())
        },
    );

    h.check(
        "best_effort_does_not_turn_the_refusal_into_a_skip",
        || match enter(Namespaces::new().user(true).best_effort(true)) {
            Ok(e) => Err(format!("enter() succeeded: {e:?}")),
            Err(e) if e.to_string().contains("single-threaded") => Ok(()),
            Err(e) => Err(format!("unexpected error: {e}")),
        },
    );

    h.check("a_refused_enter_leaves_the_namespaces_unchanged", || {
        let after = (link("/proc/self/ns/user"), link("/proc/self/ns/net"));
        if after == before {
            Ok(())
        } else {
            Err(format!("before {before:?}, after {after:?}"))
        }
    });

    h.check(
        "enter_with_nothing_to_do_succeeds_even_when_threaded",
        || match enter(Namespaces::new()) {
            Ok(e) if e.is_pid1() => Err("enter() with nothing to do made this pid 1".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        },
    );

    let _ = release.send(());
    let _ = helper.join();
    h.finish()
}

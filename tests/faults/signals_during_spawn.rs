//! Fault: signals that arrive while `spawn()` is half-way.
//!
//! 1. At the orchestrator: a thread floods the test process with SIGUSR1 (which has a
//!    `tokio::signal` handler) while 200 sandboxes spawn and finish. Every spawn succeeds and
//!    every status is the sandbox's own: no EINTR leaks out as a spawn error, and no handler
//!    of the orchestrator runs in a half-made child (the clone happens with every signal
//!    blocked, and the child resets the handlers before it unblocks anything).
//! 2. At the init, during setup: a [`SetupHook`] (which runs while the init waits for it) sends
//!    the init a signal by pidfd or by kill(2) on `ctx.pid`.
//!
//!    What is right, and asserted: the init keeps every signal blocked from the clone on, so a
//!    signal sent during setup is neither lost nor acted on by the half-made init. A
//!    *forwarded* signal (SIGTERM, SIGUSR1, SIGALRM, ... see `nsbox::FORWARDED`) stays pending
//!    and is forwarded to the command as soon as the command has been executed, exactly as if
//!    it had been sent a moment later: the spawn succeeds, and a command without a handler for
//!    it dies by it (status = that signal). A signal the command starts ignoring
//!    (`Sandbox::ignored_signals`) is not forwarded, as it would not be once the sandbox runs:
//!    the command runs to its own end even after resetting that signal's disposition.
//!    SIGKILL is the exception nothing can block: the init dies, and `spawn()` returns an
//!    error saying the init died during setup, with nothing left behind.
//!
//! With and without a pid namespace.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nsbox::{Sandbox, SetupContext, SetupHook};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signal_flood_at_the_orchestrator_during_200_spawns_changes_nothing() {
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .expect("install a SIGUSR1 handler");
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let drain = tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let flooder = std::thread::spawn(move || {
        let me = nix::unistd::getpid();
        let mut sent = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            kill(me, Signal::SIGUSR1).expect("kill(getpid(), SIGUSR1)");
            sent += 1;
            // As dense as the scheduler allows, without starving the spawning threads.
            std::thread::yield_now();
        }
        sent
    });

    const N: usize = 200;
    let mut tasks = Vec::new();
    for i in 0..N {
        let ns = shape_of(i);
        tasks.push(tokio::spawn(async move {
            // Half exit with a code, half die by a signal of their own.
            let (script, want_code, want_sig) = if i % 2 == 0 {
                (format!("exit {}", i % 256), Some((i % 256) as i32), None)
            } else {
                ("kill -TERM $$".to_string(), None, Some(libc::SIGTERM))
            };
            let mut sb = Sandbox::new("sh");
            sb.args(["-c", &script]).namespaces(ns);
            let r = match sb.spawn().await {
                Ok(mut child) => child.wait().await.map_err(|e| format!("wait: {e}")),
                Err(e) => Err(format!("spawn: {e}")),
            };
            (i, r, want_code, want_sig)
        }));
    }
    let results = deadline(
        "200 sandboxes under a flood",
        futures::future::join_all(tasks),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let sent = flooder.join().expect("flooder");
    let mut wrong = Vec::new();
    for r in results {
        let (i, r, code, sig) = r.expect("task");
        match r {
            Ok(st) if st.code() == code && st.signal() == sig => {}
            Ok(st) => wrong.push(format!("{i}: {st:?}, want code {code:?} signal {sig:?}")),
            Err(e) => wrong.push(format!("{i}: {e}")),
        }
    }
    assert!(wrong.is_empty(), "{} wrong of {N}: {wrong:#?}", wrong.len());
    // The flood was real and the handler saw it (the count coalesces; at least one arrived).
    assert!(sent > 0);
    deadline("a SIGUSR1 seen by the handler", async {
        while received.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    eprintln!(
        "flood: {sent} SIGUSR1 sent, {} handler wake-ups, {N} sandboxes right",
        received.load(Ordering::Relaxed)
    );
    drain.abort();
    assert_no_zombie_children("after the flood").await;
}

/// How the hook sends its signal to the waiting init.
#[derive(Clone, Copy, Debug)]
enum Via {
    Pidfd,
    Kill,
}

/// A hook that signals the init while the init waits for it, then lets the setup go on.
struct SignalInit {
    sig: i32,
    via: Via,
}

#[async_trait::async_trait]
impl SetupHook for SignalInit {
    async fn setup(&self, ctx: &SetupContext<'_>) -> io::Result<()> {
        match self.via {
            Via::Pidfd => {
                // SAFETY: a plain syscall on a pidfd the context lends us; a null siginfo
                // means "as kill(2) would".
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        std::os::fd::AsRawFd::as_raw_fd(&ctx.pidfd),
                        self.sig,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                };
                if r < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            }
            Via::Kill => kill(
                Pid::from_raw(ctx.pid as i32),
                Signal::try_from(self.sig).map_err(io::Error::from)?,
            )
            .map_err(io::Error::from),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_signal_sent_to_the_init_during_setup_reaches_the_command() {
    for (shape, ns) in both_shapes() {
        for (sig, via) in [
            (libc::SIGTERM, Via::Pidfd),
            (libc::SIGTERM, Via::Kill),
            (libc::SIGUSR1, Via::Pidfd),
            (libc::SIGUSR1, Via::Kill),
            (libc::SIGALRM, Via::Pidfd),
            (libc::SIGALRM, Via::Kill),
        ] {
            let what = format!("{shape}, signal {sig} via {via:?}");
            let m = marker();
            let mut sb = Sandbox::new("sleep");
            sb.args(["1000", &m])
                .namespaces(ns.clone())
                .setup_hook(Arc::new(SignalInit { sig, via }));
            let st = spawn_and_wait(&what, &mut sb).await;
            assert_eq!(st.signal(), Some(sig), "{what}: {st:?}");
            assert_no_marker_left(&m, &what).await;
        }
    }
    assert_no_zombie_children("after the signalled setups").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signal_the_command_ignores_sent_during_setup_is_not_forwarded() {
    for (shape, ns) in both_shapes() {
        for via in [Via::Pidfd, Via::Kill] {
            let what = format!("{shape}, SIGALRM via {via:?}");
            // The command starts with SIGALRM ignored, and env(1) gives it back its default
            // action before the shell runs: forwarded, it would kill the command (or trip
            // the trap); not forwarded, the command runs to its own end.
            let mut sb = Sandbox::new("env");
            sb.args([
                "--default-signal=ALRM",
                "sh",
                "-c",
                "trap 'exit 7' ALRM; sleep 0.2; exit 9",
            ])
            .namespaces(ns.clone())
            .ignored_signals([libc::SIGALRM].into_iter().collect())
            .setup_hook(Arc::new(SignalInit {
                sig: libc::SIGALRM,
                via,
            }));
            let st = spawn_and_wait(&what, &mut sb).await;
            assert_eq!(st.code(), Some(9), "{what}: {st:?}");
        }
    }
    assert_no_zombie_children("after the signalled setups").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_the_init_during_setup_fails_the_spawn_and_leaves_nothing() {
    for (shape, ns) in both_shapes() {
        for via in [Via::Pidfd, Via::Kill] {
            let what = format!("{shape}, SIGKILL via {via:?}");
            let m = marker();
            let mut sb = Sandbox::new("sleep");
            sb.args(["1000", &m])
                .namespaces(ns.clone())
                .setup_hook(Arc::new(SignalInit {
                    sig: libc::SIGKILL,
                    via,
                }));
            let err = match deadline(&what, sb.spawn()).await {
                Ok(c) => panic!("{what}: spawn succeeded with a killed init: {c:?}"),
                Err(e) => e,
            };
            let text = err.to_string();
            for w in ["spawn", "init died during setup", "SIGKILL"] {
                assert!(text.contains(w), "{what}: error lacks {w:?}: {text}");
            }
            assert!(pids_with_marker(&m).is_empty(), "{what}: the command ran");
        }
    }
    assert_no_zombie_children("after the killed setups").await;
}

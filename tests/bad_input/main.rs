//! Bad input, through every entry point: the API (`spawn`: one test per kind of bad input),
//! nsrun (exit codes 125, 126, 127 and messages), and a table of every entry point's bad
//! inputs (`table`). Each comes back as a clear error naming the step and the path, and leaves
//! no process behind: not even a child of the test process, so these tests run one at a time
//! ([`serial`]).

#[path = "../support/mod.rs"]
mod support;

mod nsrun;
mod spawn;
mod table;

use tokio::sync::{Mutex, MutexGuard};

use support::{DEADLINE, children, pids_with_marker};

static SERIAL: Mutex<()> = Mutex::const_new(());

/// One test at a time, so that "no child of the test process" is exact.
pub async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// [`serial`] for the tests that are not async.
pub fn serial_blocking() -> MutexGuard<'static, ()> {
    SERIAL.blocking_lock()
}

/// Poll until neither a child of this process (in any state, a zombie included) nor a process
/// with `marker` is left; after [`DEADLINE`], what is left.
pub async fn nothing_left(marker: &str) -> Result<(), String> {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let (kids, marked) = (children(), pids_with_marker(marker));
        if kids.is_empty() && marked.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= end {
            return Err(format!(
                "left running: children {kids:?}, marked {marked:?}"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
